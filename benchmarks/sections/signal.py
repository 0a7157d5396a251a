"""signal: correlate2d 'same' 'fill' against OpenCV and scipy.signal, with rconv's thread
scaling, and corr2d against the d2l loop."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import (
    RUN,
    add_stat,
    emit,
    lib,
    rconv_table,
    rconv_threads,
    report,
    time_blocks,
    versus,
)

# the book's loop, as `python -m rconv` runs it
from rconv.__main__ import _d2l_corr2d as d2l_corr2d


def _at_level(level, threads: int):
    """A block's setup: rconv's thread count, and its SIMD level (None: the process's)."""
    set_threads = rconv_threads(threads)

    def setup() -> None:
        set_threads()
        rconv._rconv._set_simd_level(level)

    return setup


def run(rows: list, quick: bool) -> None:
    cv2, ss = lib.cv2, lib.ss
    # on an AVX-512 CPU, the same call at the avx2 level too (rconv's private level override):
    # avx512/2 = avx2 time / avx512 time, same run
    levels = rconv._rconv.simd_level() == "avx512"
    table = rconv_table(
        46,
        ("GF/s", "gflops", 6, "f"),
        ("Nthr/1", "threads_speedup", 17, "r"),
        *([("512/avx2", "avx512_speedup", 17, "r")] if levels else []),
        *versus("cv2", width=7),
        *versus("scipy"),
    )
    table.header("signal: correlate2d 'same' 'fill' (Nthr/1 = 1-thread time / N-thread time)")
    size = 1024 if quick else 2048
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((size, size)).astype(dtype)
        for k in (3, 7, 15):
            w = rng.standard_normal((k, k)).astype(dtype)
            f = partial(rconv.correlate2d, x, w, "same")
            fns = {"rconv": f, "rconv_1thread": f}
            setup = {
                "rconv": _at_level(None, RUN.threads),
                "rconv_1thread": _at_level(None, 1),
            }
            if levels:
                fns["rconv_avx2"] = f
                setup["rconv_avx2"] = _at_level("avx2", RUN.threads)
            if cv2 is not None:
                fns["cv2"] = partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT)
            if ss is not None:
                fns["scipy"] = partial(ss.correlate2d, x, w, "same")
            t = time_blocks(
                fns,
                calls={"scipy": 1 if k > 3 else 2},
                setup=setup,
            )
            _at_level(None, RUN.threads)()
            row = {
                "group": "signal",
                "case": f"correlate2d same fill {size}x{size} {k}x{k} {np.dtype(dtype).name}",
            }
            report(row, t, ratios=("cv2", "scipy"))
            row["gflops"] = 2.0 * size * size * k * k / t.medians["rconv"] / 1e9
            add_stat(row, "threads_speedup", t.ratios["rconv_1thread"])
            if levels:
                add_stat(row, "avx512_speedup", t.ratios["rconv_avx2"])
            emit(rows, table, row)
    x = rng.standard_normal((128, 128))
    k = rng.standard_normal((3, 3))
    t = time_blocks(
        {"rconv": partial(rconv.corr2d, x, k), "d2l_loop": partial(d2l_corr2d, x, k)},
        calls={"d2l_loop": 1},
    )
    row = report({"group": "signal", "case": "corr2d valid 128x128 3x3 float64"}, t)
    table = rconv_table(46, *versus("d2l_loop", "d2l ms", "vs d2l loop"))
    table.header()
    emit(rows, table, row)
