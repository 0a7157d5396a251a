"""rconv benchmarks: ratios against the references, measured in one run.

Usage::

    python benchmarks/bench.py [--threads N] [--quick] [--json PATH]

Every reference runs in the same process and the same run as rconv, with the same thread
count: OpenBLAS/OpenMP are pinned through their environment variables before NumPy is
imported and OpenCV through ``cv2.setNumThreads``. Times are the best of several repeats.
Ratios > 1 mean rconv is faster. Machines are shared and noisy: compare ratios, not times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from functools import partial


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="threads for rconv and references")
    p.add_argument("--quick", action="store_true", help="fewer repeats, smaller sizes")
    p.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results.json"))
    return p.parse_args()


ARGS = _parse()
THREADS = ARGS.threads or len(os.sched_getaffinity(0))
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

import numpy as np  # noqa: E402

import rconv  # noqa: E402

try:
    import scipy.signal as ss
except ImportError:  # pragma: no cover - bench extra not installed
    ss = None
try:
    import cv2

    cv2.setNumThreads(THREADS)
except ImportError:  # pragma: no cover
    cv2 = None


def best(f, reps: int) -> float:
    """Best wall time of `reps` calls after one warm-up call."""
    f()
    t_best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        t_best = min(t_best, time.perf_counter() - t0)
    return t_best


def d2l_corr2d(x, k):
    h, w = k.shape
    y = np.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = (x[i : i + h, j : j + w] * k).sum()
    return y


def bench_signal(rows: list, quick: bool) -> None:
    size = 1024 if quick else 2048
    reps = 3 if quick else 7
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        x = rng.standard_normal((size, size)).astype(dtype)
        for k in (3, 7, 15):
            w = rng.standard_normal((k, k)).astype(dtype)
            flops = 2.0 * size * size * k * k
            rconv.set_num_threads(THREADS)
            t = best(partial(rconv.correlate2d, x, w, "same"), reps)
            rconv.set_num_threads(1)
            t1 = best(partial(rconv.correlate2d, x, w, "same"), reps)
            rconv.set_num_threads(THREADS)
            row = {
                "group": "signal",
                "case": f"correlate2d same fill {size}x{size} {k}x{k} {np.dtype(dtype).name}",
                "rconv_ms": t * 1e3,
                "gflops": flops / t / 1e9,
                "threads_speedup": t1 / t,
            }
            if cv2 is not None:
                tc = best(partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT), reps)
                row["cv2_ms"] = tc * 1e3
                row["vs_cv2"] = tc / t
            if ss is not None:
                ts = best(partial(ss.correlate2d, x, w, "same"), 1 if k > 3 or not quick else 2)
                row["scipy_ms"] = ts * 1e3
                row["vs_scipy"] = ts / t
            rows.append(row)
            _print_row(row)
    x = rng.standard_normal((128, 128))
    k = rng.standard_normal((3, 3))
    t = best(lambda: rconv.corr2d(x, k), reps)
    tl = best(lambda: d2l_corr2d(x, k), 1)
    row = {
        "group": "signal",
        "case": "corr2d valid 128x128 3x3 float64",
        "rconv_ms": t * 1e3,
        "d2l_loop_ms": tl * 1e3,
        "vs_d2l_loop": tl / t,
    }
    rows.append(row)
    _print_row(row)


COLUMNS = [
    ("case", "{:<46}"),
    ("rconv_ms", "{:>9.2f}"),
    ("gflops", "{:>7.1f}"),
    ("threads_speedup", "{:>7.2f}"),
    ("vs_scipy", "{:>9.1f}"),
    ("vs_cv2", "{:>7.2f}"),
    ("vs_d2l_loop", "{:>9.0f}"),
]
HEADER = ["case", "rconv ms", "GF/s", "Nthr/1", "vs scipy", "vs cv2", "vs d2l"]


def _print_header() -> None:
    widths = [46, 9, 7, 7, 9, 7, 9]
    print(
        " ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(HEADER, widths))
        )
    )


def _print_row(row: dict) -> None:
    cells = []
    for (key, fmt), width in zip(COLUMNS, [46, 9, 7, 7, 9, 7, 9]):
        cells.append(fmt.format(row[key]) if key in row else "-".rjust(width))
    print(" ".join(cells), flush=True)


def main() -> None:
    print(
        f"rconv {rconv.__version__}, {THREADS} thread(s) for rconv and every reference "
        f"(OPENBLAS_NUM_THREADS=OMP_NUM_THREADS={THREADS}"
        f"{f', cv2.setNumThreads({THREADS})' if cv2 is not None else ''}); "
        f"numpy {np.__version__}"
        f"{', scipy ' + __import__('scipy').__version__ if ss is not None else ''}"
        f"{', opencv ' + cv2.__version__ if cv2 is not None else ''}"
    )
    print("ratios = reference time / rconv time (> 1: rconv faster); best of repeats\n")
    _print_header()
    rows: list = []
    bench_signal(rows, ARGS.quick)
    out = {
        "threads": THREADS,
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "rows": rows,
    }
    with open(ARGS.json, "w") as f:
        json.dump(out, f, indent=1)
    print(f"\nwrote {ARGS.json}")


if __name__ == "__main__":
    main()
