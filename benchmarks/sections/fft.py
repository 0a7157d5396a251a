"""fft: large kernels, rconv (method='auto') against scipy's FFT path and OpenCV; the 'auto'
sweep; with ``--huge``, the memory of one call on a 16384x16384 image."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import (
    RUN,
    add_stat,
    emit,
    fresh_process,
    lib,
    rconv_table,
    report,
    time_blocks,
    timed_row,
)


def run(rows: list, quick: bool) -> None:
    """Large kernels: rconv (method='auto') against scipy's FFT path and OpenCV, then the
    'auto' sweep: its time against the faster of 'direct' and 'fft' (same round)."""
    cv2, ss = lib.cv2, lib.ss
    table = rconv_table(
        52, ("vs fftconvolve", "vs_scipy_fft", 17, "r"), ("vs cv2", "vs_cv2", 17, "r")
    )
    table.header("fft: large kernels, method='auto', 'same' 'fill'")
    rng = np.random.default_rng(2)
    cases = [(1024, 63, np.float64)] + [
        (2048 if not quick else 1024, k, dt) for k in (15, 31) for dt in (np.float32, np.float64)
    ]
    for n, k, dt in cases:
        x = rng.standard_normal((n, n)).astype(dt)
        w = rng.standard_normal((k, k)).astype(dt)
        fns = {"rconv": partial(rconv.correlate2d, x, w, "same")}
        if ss is not None:
            # fftconvolve convolves: flip the kernel to get the same correlation
            fns["scipy_fft"] = partial(ss.fftconvolve, x, w[::-1, ::-1].copy(), "same")
        if cv2 is not None:
            fns["cv2"] = partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT)
        case = (
            f"auto same fill {n}x{n} {k}x{k} {np.dtype(dt).name} "
            f"({rconv.choose_conv_method(x, w, 'same')})"
        )
        emit(rows, table, timed_row("fft", case, fns))
    sizes = [64, 256, 1024] + ([] if quick else [4096])
    kernels = [3, 7, 15, 31, 63, 127]
    print(
        "\n'auto' sweep (float64, 'same', 'fill'): ms for direct / fft / auto; "
        "median over rounds of auto / min(direct, fft)"
    )
    worst = 0.0
    for n in sizes:
        x = rng.standard_normal((n, n))
        cells = []
        for k in kernels:
            w = rng.standard_normal((k, k))
            work = n * n * k * k
            # the slow direct products: one call per block, at most 2 rounds for the largest
            opts: dict = {}
            if work > 2e9:
                opts = {"calls": 1, "warmup": {"direct": 0 if work > 5e10 else 1}}
            if work > 5e10:
                opts["rounds"] = min(RUN.rounds, 2)
            t = time_blocks(
                {
                    m: partial(rconv.correlate2d, x, w, "same", method=m)
                    for m in ("direct", "fft", "auto")
                },
                baseline=None,
                **opts,
            )
            per_round = [
                a / min(d, f)
                for a, d, f in zip(t.rounds["auto"], t.rounds["direct"], t.rounds["fft"])
            ]
            row = report({"group": "auto", "case": f"{n}x{n} k{k}"}, t)
            add_stat(row, "auto_vs_best", per_round)
            rows.append(row)
            worst = max(worst, row["auto_vs_best"])
            cells.append(
                f"k{k}: {row['direct_ms']:.2f}/{row['fft_ms']:.2f}/{row['auto_ms']:.2f} "
                f"({row['auto_vs_best']:.2f})"
            )
        print(f"{n:5d}: " + "  ".join(cells), flush=True)
    print(f"worst auto / best: {worst:.2f}")


def run_huge(rows: list) -> None:
    """16384x16384 float32 with 5x5 and 63x63 kernels ('auto'): peak memory growth of the
    call (VmHWM, fresh process) against input + output. One call per process: no ratio."""
    table = rconv_table(52, ("extraMiB", "extra_mib", 9, "f"), ("outMiB", "output_mib", 8, "f"))
    table.header("huge: memory high-water of one call (fresh process)")
    for k in (5, 63):
        grow, nin, nout, t, method = fresh_process(f"""
x = np.ones((16384, 16384), np.float32)
w = np.ones(({k}, {k}), np.float32) / {k * k}
before = hwm()
t = time.perf_counter()
out = rconv.correlate2d(x, w, "same")
t = time.perf_counter() - t
print(hwm() - before, x.nbytes, out.nbytes, t, rconv.choose_conv_method(x, w, "same"))
""")
        row = {
            "group": "huge",
            "case": f"16384x16384 float32 {k}x{k} same ({method})",
            "rconv_ms": float(t) * 1e3,
            "extra_mib": int(grow) / 2**20,
            "output_mib": int(nout) / 2**20,
        }
        emit(rows, table, row)
