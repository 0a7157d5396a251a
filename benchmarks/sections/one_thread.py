"""one_thread: the conv, transposed-conv and a signal row with every library on one thread
(users under ``threadpool_limits(1)``), and the thread scaling of both."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import RUN, all_threads, emit, lib, rconv_table, timed_row, versus
from benchmarks.sections.nn import CONV_LAYERS, TRANSPOSED_LAYERS, conv_rows, transposed_rows

ONE_TABLE = rconv_table(
    48,
    *versus("ref", width=8),
    ("rconv Nthr/1", "rconv_scaling", 12, "f"),
    ("ref Nthr/1", "ref_scaling", 10, "f"),
)


def run(rows: list, quick: bool) -> None:
    """The conv, transposed-conv and a signal row with every library on one thread (users
    under ``threadpool_limits(1)``), and the thread scaling of both (the 1-thread time over
    the same row's time at --threads, from the nn section of this run when it ran)."""
    if RUN.threads == 1:
        return
    cv2 = lib.cv2
    ONE_TABLE.header(
        f"one thread: every library on 1 thread (ref: torch, cv2 for the signal row); "
        f"Nthr/1 = 1-thread time / {RUN.threads}-thread time"
    )
    same = {(r.get("group"), r.get("case")): r for r in rows}
    rng = np.random.default_rng(0)
    all_threads(1)
    try:
        out = []
        for layer in [] if quick else CONV_LAYERS:
            out += conv_rows(layer, rng, group="one_thread")
        for layer in TRANSPOSED_LAYERS[:1] if quick else TRANSPOSED_LAYERS:
            out += transposed_rows(layer, rng, group="one_thread")
        size = 1024 if quick else 2048
        x = rng.standard_normal((size, size), dtype=np.float32)
        w = rng.standard_normal((7, 7), dtype=np.float32)
        fns = {"rconv": partial(rconv.correlate2d, x, w, "same")}
        if cv2 is not None:
            fns["cv2"] = partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT)
        case = f"correlate2d same fill {size}x{size} 7x7 float32"
        out.append(timed_row("one_thread", case, fns))
    finally:
        all_threads(RUN.threads)
    for row in out:
        ref = "cv2" if "cv2_ms" in row else "torch"
        if f"{ref}_ms" in row:
            row["ref_ms"] = row[f"{ref}_ms"]
            row["vs_ref"], row["vs_ref_range"] = row[f"vs_{ref}"], row[f"vs_{ref}_range"]
        base = same.get(("nn", row["case"])) or same.get(("signal", row["case"]))
        if base is not None:
            row["rconv_scaling"] = row["rconv_ms"] / base["rconv_ms"]
            if f"{ref}_ms" in row and f"{ref}_ms" in base:
                row["ref_scaling"] = row[f"{ref}_ms"] / base[f"{ref}_ms"]
        emit(rows, ONE_TABLE, row)
