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
    p.add_argument(
        "--huge",
        action="store_true",
        help="also check memory on a 16384x16384 float32 image (needs ~3 GiB, slow)",
    )
    p.add_argument(
        "--only",
        choices=["signal", "fft", "nn", "dask"],
        default=None,
        help="run one group of benchmarks",
    )
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
torch = F = None


def _import_torch() -> None:
    """Import torch only for the nn section: its import (OpenMP/oneDNN thread pools) slowed
    the memory-bound float64 signal cases by up to 2x when it happened first."""
    global torch, F
    try:
        import torch as _torch
        import torch.nn.functional as _F
    except ImportError:  # pragma: no cover - torch is optional and large
        return
    _torch.set_num_threads(THREADS)
    torch, F = _torch, _F


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


def bench_fft(rows: list, quick: bool) -> None:
    """Large kernels: rconv (method='auto') against scipy's FFT path and OpenCV, then the
    'auto' sweep: its time against the faster of 'direct' and 'fft'."""
    reps = 2 if quick else 5
    rng = np.random.default_rng(2)
    cases = [(1024, 63, np.float64)] + [
        (2048 if not quick else 1024, k, dt) for k in (15, 31) for dt in (np.float32, np.float64)
    ]
    for n, k, dt in cases:
        x = rng.standard_normal((n, n)).astype(dt)
        w = rng.standard_normal((k, k)).astype(dt)
        t = best(partial(rconv.correlate2d, x, w, "same"), reps)
        row = {
            "group": "fft",
            "case": f"auto same fill {n}x{n} {k}x{k} {np.dtype(dt).name} "
            f"({rconv.choose_conv_method(x, w, 'same')})",
            "rconv_ms": t * 1e3,
        }
        if ss is not None:
            # fftconvolve convolves: flip the kernel to get the same correlation
            wf = w[::-1, ::-1].copy()
            row["vs_scipy_fft"] = best(partial(ss.fftconvolve, x, wf, "same"), reps) / t
        if cv2 is not None:
            tc = best(partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT), reps)
            row["vs_cv2"] = tc / t
        rows.append(row)
        _print_row(row)
    sizes = [64, 256, 1024] + ([] if quick else [4096])
    kernels = [3, 7, 15, 31, 63, 127]
    print(
        "\n'auto' sweep (float64, 'same', 'fill'): ms for direct / fft / auto; "
        "auto / min(direct, fft)"
    )
    worst = 0.0
    for n in sizes:
        x = rng.standard_normal((n, n))
        cells = []
        for k in kernels:
            w = rng.standard_normal((k, k))
            r = 1 if n * n * k * k > 2e9 else reps
            td = best(partial(rconv.correlate2d, x, w, "same", method="direct"), r)
            tf = best(partial(rconv.correlate2d, x, w, "same", method="fft"), r)
            ta = best(partial(rconv.correlate2d, x, w, "same", method="auto"), r)
            ratio = ta / min(td, tf)
            worst = max(worst, ratio)
            cells.append(f"k{k}: {td * 1e3:.2f}/{tf * 1e3:.2f}/{ta * 1e3:.2f} ({ratio:.2f})")
            rows.append(
                {
                    "group": "auto",
                    "case": f"{n}x{n} k{k}",
                    "direct_ms": td * 1e3,
                    "fft_ms": tf * 1e3,
                    "auto_ms": ta * 1e3,
                    "auto_vs_best": ratio,
                }
            )
        print(f"{n:5d}: " + "  ".join(cells), flush=True)
    print(f"worst auto / best: {worst:.2f}")


def bench_huge(rows: list) -> None:
    """16384x16384 float32 with 5x5 and 63x63 kernels ('auto'): peak memory growth of the
    call (VmHWM, fresh process) against input + output."""
    import subprocess

    for k in (5, 63):
        code = f"""
import time, numpy as np, rconv
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
rconv.set_num_threads({THREADS})
x = np.ones((16384, 16384), np.float32)
w = np.ones(({k}, {k}), np.float32) / {k * k}
before = hwm()
t = time.perf_counter()
out = rconv.correlate2d(x, w, "same")
t = time.perf_counter() - t
print(hwm() - before, x.nbytes, out.nbytes, t, rconv.choose_conv_method(x, w, "same"))
"""
        res = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        grow, nin, nout, t, method = res.stdout.split()
        row = {
            "group": "huge",
            "case": f"16384x16384 float32 {k}x{k} same ({method})",
            "rconv_ms": float(t) * 1e3,
            "extra_mib": int(grow) / 2**20,
            "output_mib": int(nout) / 2**20,
        }
        rows.append(row)
        _print_row(row)


# name, batch, in channels, out channels, size, kernel, stride, padding, groups
CONV_LAYERS = [
    ("conv1 3->64 224 k7 s2", 4, 3, 64, 224, 7, 2, 3, 1),
    ("3x3 64->64 @56", 8, 64, 64, 56, 3, 1, 1, 1),
    ("3x3 128->128 @28", 8, 128, 128, 28, 3, 1, 1, 1),
    ("3x3 256->256 @14", 8, 256, 256, 14, 3, 1, 1, 1),
    ("1x1 256->64 @56", 8, 256, 64, 56, 1, 1, 0, 1),
    ("depthwise 3x3 64 @56", 8, 64, 64, 56, 3, 1, 1, 64),
]


def matmul_gflops(reps: int) -> float:
    """NumPy float32 matmul GFLOP/s on the conv-shaped product 256x2304 @ 2304x3136."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 2304), dtype=np.float32)
    b = rng.standard_normal((2304, 3136), dtype=np.float32)
    t = best(partial(np.matmul, a, b), reps)
    return 2.0 * 256 * 2304 * 3136 / t / 1e9


def peak_extra_memory(layer) -> dict:
    """RSS high-water growth of one conv2d call, measured in a fresh process (VmHWM: unlike
    ru_maxrss it is not inherited from the parent across fork/exec)."""
    import subprocess

    name, n, cin, cout, size, k, s, p, g = layer
    code = f"""
import numpy as np, rconv
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
rconv.set_num_threads({THREADS})
x = np.ones(({n}, {cin}, {size}, {size}), np.float32)
w = np.ones(({cout}, {cin // g}, {k}, {k}), np.float32)
rconv.conv2d(x[:1, :, :{k}, :{k}], w, padding={p}, groups={g})  # load everything once
before = hwm()
out = rconv.conv2d(x, w, stride={s}, padding={p}, groups={g})
print(hwm() - before, out.nbytes)
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    grow, out_bytes = (int(v) for v in res.stdout.split())
    return {"extra_mib": grow / 2**20, "output_mib": out_bytes / 2**20}


def bench_nn(rows: list, quick: bool) -> None:
    reps = 3 if quick else 10
    mm = matmul_gflops(reps)
    print(f"\nNumPy float32 matmul 256x2304 @ 2304x3136: {mm:.1f} GFLOP/s (same run)")
    rng = np.random.default_rng(0)
    for layer in CONV_LAYERS:
        name, n, cin, cout, size, k, s, p, g = layer
        x = rng.standard_normal((n, cin, size, size), dtype=np.float32)
        w = rng.standard_normal((cout, cin // g, k, k), dtype=np.float32)
        b = rng.standard_normal(cout, dtype=np.float32)
        y = rconv.conv2d(x, w, b, s, p, 1, g)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        flops = 2.0 * y.size * (cin // g) * k * k
        t_f = best(partial(rconv.conv2d, x, w, b, s, p, 1, g), reps)
        t_b = best(partial(rconv.conv2d_backward, dy, x, w, s, p, 1, g), reps)
        fwd = {
            "group": "nn",
            "case": f"conv2d fwd {name} N={n}",
            "rconv_ms": t_f * 1e3,
            "gflops": flops / t_f / 1e9,
            "pct_matmul": 100 * flops / t_f / 1e9 / mm,
        }
        bwd = {
            "group": "nn",
            "case": f"conv2d bwd {name} N={n}",
            "rconv_ms": t_b * 1e3,
            "gflops": 2 * flops / t_b / 1e9,
        }
        if torch is not None:
            xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
            with torch.no_grad():
                t_tf = best(partial(F.conv2d, xt, wt, bt, s, p, 1, g), reps)
                t_tb = best(
                    partial(
                        torch.ops.aten.convolution_backward,
                        dyt,
                        xt,
                        wt,
                        [cout],
                        [s, s],
                        [p, p],
                        [1, 1],
                        False,
                        [0, 0],
                        g,
                        [True, True, True],
                    ),
                    reps,
                )
            fwd["torch_ms"], fwd["vs_torch"] = t_tf * 1e3, t_tf / t_f
            bwd["torch_ms"], bwd["vs_torch"] = t_tb * 1e3, t_tb / t_b
        fwd.update(peak_extra_memory(layer))
        for row in (fwd, bwd):
            rows.append(row)
            _print_row(row)
    x = rng.standard_normal((8, 64, 112, 112), dtype=np.float32)
    pools = [
        ("max_pool2d k3 s2 p1", partial(rconv.max_pool2d, kernel_size=3, stride=2, padding=1)),
        ("avg_pool2d k2 s2", partial(rconv.avg_pool2d, kernel_size=2, stride=2)),
    ]
    for name, fn in pools:
        y = fn(x)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        if name.startswith("max"):
            bwd_fn = partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1)
        else:
            bwd_fn = partial(rconv.avg_pool2d_backward, dy, x, 2, 2)
        t_f, t_b = best(partial(fn, x), reps), best(bwd_fn, reps)
        fwd = {"group": "nn", "case": f"{name} fwd (8,64,112,112)", "rconv_ms": t_f * 1e3}
        bwd = {"group": "nn", "case": f"{name} bwd (8,64,112,112)", "rconv_ms": t_b * 1e3}
        if torch is not None:
            xt, dyt = torch.from_numpy(x), torch.from_numpy(dy)
            with torch.no_grad():
                if name.startswith("max"):
                    t_tf = best(partial(F.max_pool2d, xt, 3, 2, 1), reps)
                    _, ind = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
                    t_tb = best(
                        partial(
                            torch.ops.aten.max_pool2d_with_indices_backward,
                            dyt,
                            xt,
                            [3, 3],
                            [2, 2],
                            [1, 1],
                            [1, 1],
                            False,
                            ind,
                        ),
                        reps,
                    )
                else:
                    t_tf = best(partial(F.avg_pool2d, xt, 2, 2), reps)
                    t_tb = best(
                        partial(
                            torch.ops.aten.avg_pool2d_backward,
                            dyt,
                            xt,
                            [2, 2],
                            [2, 2],
                            [0, 0],
                            False,
                            True,
                            None,
                        ),
                        reps,
                    )
            fwd["torch_ms"], fwd["vs_torch"] = t_tf * 1e3, t_tf / t_f
            bwd["torch_ms"], bwd["vs_torch"] = t_tb * 1e3, t_tb / t_b
        extra = []
        if name.startswith("max"):
            _, ind = rconv.max_pool2d(x, 3, 2, 1, return_indices=True)
            t_i = best(partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1, indices=ind), reps)
            row = {"group": "nn", "case": f"{name} bwd, saved indices", "rconv_ms": t_i * 1e3}
            if torch is not None:
                row["torch_ms"], row["vs_torch"] = bwd["torch_ms"], bwd["torch_ms"] / 1e3 / t_i
            extra.append(row)
            # the training forward: values and indices (torch's max_pool2d_with_indices)
            t_fi = best(partial(fn, x, return_indices=True), reps)
            row = {"group": "nn", "case": f"{name} fwd with indices", "rconv_ms": t_fi * 1e3}
            if torch is not None:
                with torch.no_grad():
                    t_ti = best(partial(F.max_pool2d, xt, 3, 2, 1, return_indices=True), reps)
                row["torch_ms"], row["vs_torch"] = t_ti * 1e3, t_ti / t_fi
            extra.append(row)
        for row in (fwd, bwd, *extra):
            rows.append(row)
            _print_row(row)
    # global average pooling (a ResNet head)
    xg = rng.standard_normal((8, 256, 28, 28), dtype=np.float32)
    t_g = best(partial(rconv.adaptive_avg_pool2d, xg, 1), reps)
    row = {"group": "nn", "case": "adaptive_avg_pool2d 1x1 (8,256,28,28)", "rconv_ms": t_g * 1e3}
    if torch is not None:
        with torch.no_grad():
            t_tg = best(partial(F.adaptive_avg_pool2d, torch.from_numpy(xg), 1), reps)
        row["torch_ms"], row["vs_torch"] = t_tg * 1e3, t_tg / t_g
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
    ("vs_torch", "{:>8.2f}"),
    ("vs_scipy_fft", "{:>8.2f}"),
    ("pct_matmul", "{:>7.0f}"),
    ("extra_mib", "{:>9.1f}"),
    ("output_mib", "{:>8.1f}"),
    ("vs_in_memory", "{:>7.2f}"),
]
HEADER = [
    "case",
    "rconv ms",
    "GF/s",
    "Nthr/1",
    "vs scipy",
    "vs cv2",
    "vs d2l",
    "vs torch",
    "vs fftconv",
    "%matmul",
    "extraMiB",
    "outMiB",
    "vs mem",
]
WIDTHS = [46, 9, 7, 7, 9, 7, 9, 8, 8, 7, 9, 8, 7]


def bench_dask(rows: list, quick: bool) -> None:
    """rconv.dask on the threaded scheduler against the same call in memory (vs mem =
    in-memory time / chunked time: the price of splitting, < 1 is overhead)."""
    try:
        import dask

        import rconv.dask as rd
    except ImportError:
        print("\n(dask is not importable: install the 'dask' extra for the dask rows)")
        return
    reps = 2 if quick else 4
    size, chunk = (4096, 1024) if quick else (8192, 2048)
    rng = np.random.default_rng(3)
    img = rng.standard_normal((size, size)).astype(np.float32)
    x = dask.array.from_array(img, chunks=chunk)
    k = rng.standard_normal((7, 7)).astype(np.float32)
    xb = rng.standard_normal((32 if quick else 64, 64, 56, 56)).astype(np.float32)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    dxb = dask.array.from_array(xb, chunks=(8, 64, 56, 56))
    cases = [
        (
            f"dask corr same symm {size}^2 7x7 f32 /{chunk}",
            partial(rconv.correlate2d, img, k, "same", "symm"),
            rd.correlate2d(x, k, "same", "symm"),
        ),
        (
            f"dask conv2d 3x3 64@56 f32 N{xb.shape[0]} /8",
            partial(rconv.conv2d, xb, w, None, 1, 1),
            rd.conv2d(dxb, w, None, 1, 1),
        ),
    ]
    for name, in_memory, lazy in cases:
        rconv.set_num_threads(THREADS)
        t_mem = best(in_memory, reps)
        # tasks x rconv threads per task
        for workers, inner in ((THREADS, 1), (1, THREADS)):
            rconv.set_num_threads(inner)
            t = best(partial(lazy.compute, scheduler="threads", num_workers=workers), reps)
            row = {
                "group": "dask",
                "case": f"{name} {workers}x{inner}thr",
                "rconv_ms": t * 1e3,
                "vs_in_memory": t_mem / t,
                "in_memory_ms": t_mem * 1e3,
            }
            rows.append(row)
            _print_row(row)
    rconv.set_num_threads(THREADS)


def _print_header() -> None:
    widths = WIDTHS
    print(
        " ".join(
            h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(HEADER, widths))
        )
    )


def _print_row(row: dict) -> None:
    cells = []
    for (key, fmt), width in zip(COLUMNS, WIDTHS):
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
    if ARGS.only in (None, "signal"):
        bench_signal(rows, ARGS.quick)
    if ARGS.only in (None, "fft"):
        bench_fft(rows, ARGS.quick)
        if ARGS.huge:
            bench_huge(rows)
    if ARGS.only in (None, "dask"):
        bench_dask(rows, ARGS.quick)
    if ARGS.only in (None, "nn"):
        _import_torch()
        if torch is None:
            print("\n(torch is not importable: the nn rows have no torch column)")
        bench_nn(rows, ARGS.quick)
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
