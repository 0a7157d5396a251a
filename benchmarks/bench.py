"""rconv benchmarks: ratios against the references, measured in one run.

Usage::

    python benchmarks/bench.py [--threads N] [--quick] [--json PATH] [--huge]
                               [--only {signal,beyond,fft,ndimage,nn,one_thread,grid,
                                        dask,overhead,train}]

One timing mechanism, :func:`time_blocks`, serves every row. The libraries of a row are timed
in alternating blocks: each round runs, for each library in turn, warm-up call(s) and then a
few timed calls (``time.perf_counter``) and keeps the block's median; R rounds are run, the
library order rotating from round to round. A row reports each library's median over the
rounds and the ratio reference / rconv (> 1: rconv faster) as the median of the per-round
ratios, with its min-max spread. Blocks, not single calls, alternate: torch's OpenMP threads
and OpenBLAS's threads keep spinning after a call and would land in the next library's
timing; timing one library entirely after the other would expose the ratio to drift.

Every library runs on the same thread count (``--threads``, default 2): OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are set before NumPy is imported (threadpoolctl enforces
and records the BLAS/OpenMP pools), then ``torch.set_num_threads``, ``cv2.setNumThreads`` and
``rconv.set_num_threads``. Machines are shared and noisy: compare ratios, not times.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from functools import partial


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="threads for rconv and every reference")
    p.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes")
    p.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results.json"))
    p.add_argument(
        "--huge",
        action="store_true",
        help="also check memory on a 16384x16384 float32 image (needs ~3 GiB, slow)",
    )
    p.add_argument(
        "--only",
        choices=[
            "signal",
            "beyond",
            "fft",
            "ndimage",
            "nn",
            "one_thread",
            "grid",
            "dask",
            "overhead",
            "train",
        ],
        default=None,
        help="run one group of benchmarks",
    )
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A.json", "B.json"),
        help="print the change per row from run A to run B (two --json outputs) and exit",
    )
    return p.parse_args()


ARGS = _parse()
THREADS = ARGS.threads
# before NumPy (and so OpenBLAS) is loaded; OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left alone
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

import numpy as np  # noqa: E402

import rconv  # noqa: E402

rconv.set_num_threads(THREADS)
try:
    import scipy
    import scipy.signal as ss
except ImportError:  # pragma: no cover - bench extra not installed
    scipy = ss = None
try:
    import cv2

    cv2.setNumThreads(THREADS)
except ImportError:  # pragma: no cover
    cv2 = None
try:
    import threadpoolctl
except ImportError:  # pragma: no cover
    threadpoolctl = None
torch = F = None

# the pause before each block, so that the other library's threads park first
BLOCK_PAUSE_S = 0.02

# rounds per row, timed calls per block (full run, --quick)
ROUNDS, CALLS = (3, 3) if ARGS.quick else (5, 3)


def _limit_pools() -> None:
    """Cap every BLAS/OpenMP pool threadpoolctl sees (NumPy's OpenBLAS, torch's OpenMP)."""
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(limits=THREADS)


_limit_pools()


def _import_torch() -> None:
    """Import torch only for the nn and overhead sections: its import (OpenMP/oneDNN thread
    pools) slowed the memory-bound float64 signal cases by up to 2x when it happened first."""
    global torch, F
    if torch is not None:
        return
    try:
        import torch as _torch
        import torch.nn.functional as _F
    except ImportError:  # pragma: no cover - torch is optional and large
        return
    _torch.set_num_threads(THREADS)
    _torch.set_grad_enabled(False)  # inference timings; backward rows call aten ops directly
    torch, F = _torch, _F
    _limit_pools()


# --------------------------------------------------------------------------------------------
# the timing harness


def _stats(values: list) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


class Timing:
    """What :func:`time_blocks` measured: ``rounds[lib]`` holds one block median per round
    (seconds per call), ``medians[lib]`` their median and ``ratios[lib]`` the per-round ratios
    lib / baseline (> 1: the baseline, rconv, is faster)."""

    def __init__(self, rounds: dict, baseline, spec: dict):
        self.rounds = rounds
        self.baseline = baseline
        self.spec = spec
        self.medians = {lib: statistics.median(ts) for lib, ts in rounds.items()}
        self.ratios = {
            lib: self.per_round(lib, baseline)
            for lib in rounds
            if baseline in rounds and lib != baseline
        }

    def per_round(self, num: str, den: str) -> list:
        """Per-round ratios rounds[num] / rounds[den] (both timed in the same round)."""
        return [a / b for a, b in zip(self.rounds[num], self.rounds[den])]

    def ratio(self, num: str, den=None) -> dict:
        """Median and min/max of the per-round ratios num / den (default: the baseline)."""
        return _stats(self.per_round(num, den or self.baseline))


def _per_lib(value, fns: dict, default: int) -> dict:
    """An int for every library, or a {library: int} mapping completed with `default`."""
    if isinstance(value, dict):
        return {lib: value.get(lib, default) for lib in fns}
    return dict.fromkeys(fns, value)


def time_blocks(
    fns: dict,
    rounds: int = ROUNDS,
    calls=CALLS,
    warmup=1,
    number: int = 1,
    setup=None,
    baseline="rconv",
) -> Timing:
    """Time the callables of `fns` ({library: f}) in alternating blocks.

    Each of `rounds` rounds runs one block per library (the order rotates by one library per
    round): ``setup[lib]()`` if given, a pause of ``BLOCK_PAUSE_S`` (the previous library's
    threads park), `warmup` untimed calls, then `calls` timed samples of
    `number` consecutive calls each; the block keeps the median sample divided by `number`.
    `calls` and `warmup` are an int or a {library: int} mapping (missing libraries: `CALLS`,
    and 1 warm-up call). The garbage collector is off while a block runs.
    """
    calls_of = _per_lib(calls, fns, CALLS)
    warm_of = _per_lib(warmup, fns, 1)
    setup = setup or {}
    libs = list(fns)
    out: dict = {lib: [] for lib in libs}
    perf = time.perf_counter
    for r in range(rounds):
        for lib in libs[r % len(libs) :] + libs[: r % len(libs)]:
            f = fns[lib]
            if lib in setup:
                setup[lib]()
            # the previous library's threads (torch's OpenMP workers spin after a call)
            # park before this block starts
            time.sleep(BLOCK_PAUSE_S)
            gc_was = gc.isenabled()
            gc.disable()
            try:
                for _ in range(warm_of[lib]):
                    f()
                samples = []
                for _ in range(calls_of[lib]):
                    if number == 1:
                        t0 = perf()
                        f()
                        samples.append(perf() - t0)
                    else:
                        loop = range(number)
                        t0 = perf()
                        for _ in loop:
                            f()
                        samples.append((perf() - t0) / number)
            finally:
                if gc_was:
                    gc.enable()
            out[lib].append(statistics.median(samples))
    spec = {"rounds": rounds, "calls": calls_of, "warmup": warm_of, "number": number}
    return Timing(out, baseline, spec)


def report(row: dict, t: Timing, unit: str = "ms", ratios=None) -> dict:
    """Add `t` to `row`: ``<lib>_<unit>`` medians, ``vs_<lib>`` (median per-round ratio lib /
    baseline) with ``vs_<lib>_range`` [min, max], the per-round block medians and the block
    shape. `ratios` limits the ``vs_`` keys to those libraries."""
    scale = {"s": 1.0, "ms": 1e3, "us": 1e6}[unit]
    for lib, med in t.medians.items():
        row[f"{lib}_{unit}"] = med * scale
    for lib in t.ratios if ratios is None else ratios:
        if lib in t.ratios:
            s = t.ratio(lib)
            row[f"vs_{lib}"] = s["median"]
            row[f"vs_{lib}_range"] = [s["min"], s["max"]]
    row["per_round_" + unit] = {
        lib: [float(f"{v * scale:.4g}") for v in ts] for lib, ts in t.rounds.items()
    }
    row["blocks"] = t.spec
    return row


def add_stat(row: dict, key: str, values: list) -> None:
    """row[key] = median of per-round `values`, row[key + '_range'] = [min, max]."""
    s = _stats(values)
    row[key], row[key + "_range"] = s["median"], [s["min"], s["max"]]


# --------------------------------------------------------------------------------------------
# printing


def _num(v: float) -> str:
    a = abs(v)
    return f"{v:.0f}" if a >= 100 else f"{v:.1f}" if a >= 10 else f"{v:.2f}"


class Table:
    """Fixed-width table. Columns are (label, key, width, kind): kind 'f' a float with
    3 significant figures, 'r' a ratio printed as 'median (min-max)', 's' a string."""

    def __init__(self, columns: list):
        self.columns = columns

    def header(self, title: str = "") -> None:
        if title:
            print(f"\n{title}")
        cells = [
            lab.ljust(w) if i == 0 else lab.rjust(w)
            for i, (lab, _, w, _) in enumerate(self.columns)
        ]
        print(" ".join(cells), flush=True)

    def row(self, row: dict) -> None:
        cells = []
        for i, (_, key, w, kind) in enumerate(self.columns):
            v = row.get(key)
            if v is None:
                cell = "-"
            elif kind == "r":
                lo, hi = row.get(key + "_range", (v, v))
                cell = f"{_num(v)} ({_num(lo)}-{_num(hi)})"
            elif kind == "f":
                cell = _num(v)
            else:
                cell = str(v)
            cells.append(cell.ljust(w) if i == 0 else cell.rjust(w))
        print(" ".join(cells), flush=True)


def rconv_table(
    case_width: int, *columns, case="case", rconv="rconv ms", rconv_width=9, unit="ms"
) -> Table:
    """A Table of timing rows: the case (`case_width` wide, headed `case`), rconv's time,
    then `columns`."""
    return Table(
        [(case, "case", case_width, "s"), (rconv, f"rconv_{unit}", rconv_width, "f"), *columns]
    )


def versus(lib: str, label=None, ratio_label=None, width=9, ratio_width=17, unit="ms") -> list:
    """The two columns of a reference library `lib`: its time and the ratio lib / rconv."""
    return [
        (label or f"{lib} {unit}", f"{lib}_{unit}", width, "f"),
        (ratio_label or f"vs {lib}", f"vs_{lib}", ratio_width, "r"),
    ]


def _emit(rows: list, table: Table, row: dict) -> None:
    rows.append(row)
    table.row(row)


def timed_row(group: str, case: str, fns: dict, ratios=None, **timing) -> dict:
    """The row of `group` and `case`: `fns` timed by :func:`time_blocks` (keywords `timing`)
    and reported (`ratios` as in :func:`report`)."""
    return report({"group": group, "case": case}, time_blocks(fns, **timing), ratios=ratios)


# --------------------------------------------------------------------------------------------
# sections


# the book's loop, as `python -m rconv` runs it
from rconv.__main__ import _d2l_corr2d as d2l_corr2d  # noqa: E402


def _set_threads(n: int):
    return partial(rconv.set_num_threads, n)


def bench_signal(rows: list, quick: bool) -> None:
    table = rconv_table(
        46,
        ("GF/s", "gflops", 6, "f"),
        ("Nthr/1", "threads_speedup", 17, "r"),
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
            if cv2 is not None:
                fns["cv2"] = partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT)
            if ss is not None:
                fns["scipy"] = partial(ss.correlate2d, x, w, "same")
            t = time_blocks(
                fns,
                calls={"scipy": 1 if k > 3 else 2},
                setup={"rconv": _set_threads(THREADS), "rconv_1thread": _set_threads(1)},
            )
            rconv.set_num_threads(THREADS)
            row = {
                "group": "signal",
                "case": f"correlate2d same fill {size}x{size} {k}x{k} {np.dtype(dtype).name}",
            }
            report(row, t, ratios=("cv2", "scipy"))
            row["gflops"] = 2.0 * size * size * k * k / t.medians["rconv"] / 1e9
            add_stat(row, "threads_speedup", t.ratios["rconv_1thread"])
            _emit(rows, table, row)
    x = rng.standard_normal((128, 128))
    k = rng.standard_normal((3, 3))
    t = time_blocks(
        {"rconv": partial(rconv.corr2d, x, k), "d2l_loop": partial(d2l_corr2d, x, k)},
        calls={"d2l_loop": 1},
    )
    row = report({"group": "signal", "case": "corr2d valid 128x128 3x3 float64"}, t)
    table = rconv_table(46, *versus("d2l_loop", "d2l ms", "vs d2l loop"))
    table.header()
    _emit(rows, table, row)


def bench_beyond(rows: list, quick: bool) -> None:
    """Beyond scipy: a stack of images in one call (``axes=``) against a Python loop of
    cv2.filter2D, and a separable Gaussian (``method='auto'``) against cv2.sepFilter2D and
    rconv's own direct method."""
    table = rconv_table(52, *versus("ref"), ("vs direct", "vs_direct", 17, "r"))
    table.header("beyond: stacks (axes=) and separable kernels, 'same' 'fill', float32")
    rng = np.random.default_rng(5)
    n = 64 if quick else 256
    x = rng.standard_normal((n, 128, 128), dtype=np.float32)
    k = rng.standard_normal((5, 5)).astype(np.float32)
    fns = {"rconv": partial(rconv.correlate2d, x, k, "same", axes=(-2, -1))}
    if cv2 is not None:

        def cv2_loop(x=x, k=k):
            # what a loop returns: one array of the stack's shape
            return np.stack([cv2.filter2D(im, -1, k, borderType=cv2.BORDER_CONSTANT) for im in x])

        fns["ref"] = cv2_loop
    case = f"stack ({n},128,128) 5x5 vs loop of cv2.filter2D"
    _emit(rows, table, timed_row("beyond", case, fns, ratios=("ref",) if cv2 else ()))
    size = 1024 if quick else 2048
    img = rng.standard_normal((size, size)).astype(np.float32)
    for ks in (5, 15):
        g = np.exp(-0.5 * (np.arange(ks) - ks // 2) ** 2 / (ks / 5) ** 2).astype(np.float32)
        g /= g.sum()
        w = np.outer(g, g)
        fns = {
            "rconv": partial(rconv.correlate2d, img, w, "same"),
            "direct": partial(rconv.correlate2d, img, w, "same", method="direct"),
        }
        if cv2 is not None:
            fns["ref"] = partial(cv2.sepFilter2D, img, -1, g, g, borderType=cv2.BORDER_CONSTANT)
        case = (
            f"gaussian {size}x{size} {ks}x{ks} auto "
            f"({rconv.choose_conv_method(img, w, 'same')}) vs cv2.sepFilter2D"
        )
        ratios = ("ref", "direct") if cv2 else ("direct",)
        _emit(rows, table, timed_row("beyond", case, fns, ratios=ratios))


def bench_fft(rows: list, quick: bool) -> None:
    """Large kernels: rconv (method='auto') against scipy's FFT path and OpenCV, then the
    'auto' sweep: its time against the faster of 'direct' and 'fft' (same round)."""
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
        _emit(rows, table, timed_row("fft", case, fns))
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
            opts = {}
            if work > 2e9:
                opts = {"calls": 1, "warmup": {"direct": 0 if work > 5e10 else 1}}
            if work > 5e10:
                opts["rounds"] = min(ROUNDS, 2)
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


def bench_ndimage(rows: list, quick: bool) -> None:
    """rconv.ndimage (byte for byte scipy.ndimage's results) against scipy.ndimage and
    OpenCV's nearest filter with the matching border (ndimage's 'reflect' is BORDER_REFLECT):
    GaussianBlur, blur, filter2D, Sobel. Fresh outputs in every library, as users call them."""
    import scipy.ndimage as sn

    import rconv.ndimage as rn

    table = rconv_table(46, *versus("scipy", ratio_label="vs scipy.ndimage"), *versus("cv2"))
    table.header(
        "ndimage: rconv.ndimage vs scipy.ndimage (same bytes) and OpenCV (own arithmetic), "
        "mode 'reflect'"
    )
    size = 1024 if quick else 2048
    rng = np.random.default_rng(9)
    w5 = rng.standard_normal((5, 5))
    reflect = cv2.BORDER_REFLECT if cv2 is not None else None
    for dtype in (np.float32, np.float64, np.uint8):
        x = (rng.random((size, size)) * 255).astype(dtype)
        cases = [
            (
                "gaussian_filter sigma=2",
                partial(rn.gaussian_filter, x, 2.0),
                partial(sn.gaussian_filter, x, 2.0),
                cv2 and partial(cv2.GaussianBlur, x, (17, 17), 2.0, borderType=reflect),
            ),
            (
                "uniform_filter 5",
                partial(rn.uniform_filter, x, 5),
                partial(sn.uniform_filter, x, 5),
                cv2 and partial(cv2.blur, x, (5, 5), borderType=reflect),
            ),
            (
                "correlate 5x5",
                partial(rn.correlate, x, w5),
                partial(sn.correlate, x, w5),
                cv2 and partial(cv2.filter2D, x, -1, w5.astype(np.float32), borderType=reflect),
            ),
            (
                "sobel",
                partial(rn.sobel, x),
                partial(sn.sobel, x),
                cv2 and partial(cv2.Sobel, x, -1, 1, 0, ksize=3, borderType=reflect),
            ),
            (
                "gaussian_laplace sigma=1.5",
                partial(rn.gaussian_laplace, x, 1.5),
                partial(sn.gaussian_laplace, x, 1.5),
                None,
            ),
        ]
        for name, ours, theirs, ocv in cases:
            fns = {"rconv": ours, "scipy": theirs}
            if ocv:
                fns["cv2"] = ocv
            case = f"{name} {size}x{size} {np.dtype(dtype).name}"
            _emit(rows, table, timed_row("ndimage", case, fns, calls={"scipy": 1}))
    n = 16 if quick else 64
    v = rng.random((n, 256, 256)).astype(np.float32)
    fns = {
        "rconv": partial(rn.gaussian_filter, v, 1.0),
        "scipy": partial(sn.gaussian_filter, v, 1.0),
    }
    case = f"gaussian_filter sigma=1 ({n},256,256) float32"
    _emit(rows, table, timed_row("ndimage", case, fns, calls={"scipy": 1}))


def fresh_process(body: str) -> list:
    """Run `body` in a fresh Python process and return the words it prints. The process has
    imported time, numpy as np and rconv (on THREADS threads), and has ``hwm()``: its peak
    resident memory so far in bytes (VmHWM: unlike ru_maxrss it is not inherited from the
    parent across fork/exec)."""
    code = f"""
import time, numpy as np, rconv
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
rconv.set_num_threads({THREADS})
{body}"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.split()


def bench_huge(rows: list) -> None:
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
        _emit(rows, table, row)


# name, batch, in channels, out channels, size, kernel, stride, padding, groups
CONV_LAYERS = [
    ("conv1 3->64 224 k7 s2", 4, 3, 64, 224, 7, 2, 3, 1),
    ("3x3 64->64 @56", 8, 64, 64, 56, 3, 1, 1, 1),
    ("3x3 128->128 @28", 8, 128, 128, 28, 3, 1, 1, 1),
    ("3x3 256->256 @14", 8, 256, 256, 14, 3, 1, 1, 1),
    ("1x1 256->64 @56", 8, 256, 64, 56, 1, 1, 0, 1),
    ("depthwise 3x3 64 @56", 8, 64, 64, 56, 3, 1, 1, 64),
]
MATMUL_FLOPS = 2.0 * 256 * 2304 * 3136


def _matmul():
    """NumPy float32 matmul on the conv-shaped product 256x2304 @ 2304x3136."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 2304), dtype=np.float32)
    b = rng.standard_normal((2304, 3136), dtype=np.float32)
    return partial(np.matmul, a, b)


def peak_extra_memory(layer) -> dict:
    """RSS high-water growth of one conv2d call, measured in a fresh process (VmHWM)."""
    name, n, cin, cout, size, k, s, p, g = layer
    words = fresh_process(f"""
x = np.ones(({n}, {cin}, {size}, {size}), np.float32)
w = np.ones(({cout}, {cin // g}, {k}, {k}), np.float32)
rconv.conv2d(x[:1, :, :{k}, :{k}], w, padding={p}, groups={g})  # load everything once
before = hwm()
out = rconv.conv2d(x, w, stride={s}, padding={p}, groups={g})
print(hwm() - before, out.nbytes)
""")
    grow, out_bytes = (int(v) for v in words)
    return {"extra_mib": grow / 2**20, "output_mib": out_bytes / 2**20}


NN_TABLE = rconv_table(
    44,
    ("GF/s", "gflops", 6, "f"),
    *versus("torch"),
    ("%matmul", "pct_matmul", 7, "f"),
    ("%bw", "pct_bw", 5, "f"),
    ("extraMiB", "extra_mib", 9, "f"),
    ("outMiB", "output_mib", 7, "f"),
)


# name, batch, in channels, out channels, size, kernel, stride, padding, output padding
TRANSPOSED_LAYERS = [
    ("64->32 @28 k4 s2 p1", 8, 64, 32, 28, 4, 2, 1, 0),
    ("128->64 @14 k3 s2 p1 op1", 8, 128, 64, 14, 3, 2, 1, 1),
]


def _torch_conv_backward(dyt, xt, wt, s, p, g, transposed_pad=None):
    """torch's three conv gradients as one aten call (``transposed_pad``: the output padding
    of a transposed convolution, which has ``cout = wt.shape[1] * g``)."""
    transposed = transposed_pad is not None
    cout = wt.shape[1] * g if transposed else wt.shape[0]
    op = transposed_pad or 0
    return partial(
        torch.ops.aten.convolution_backward,
        dyt,
        xt,
        wt,
        [cout],
        [s, s],
        [p, p],
        [1, 1],
        transposed,
        [op, op],
        g,
        [True, True, True],
    )


def _torch_max_pool_backward(g, x, k: int, s: int, p: int, indices):
    """torch's max_pool2d backward from saved `indices` (square kernel, stride and padding,
    dilation 1, floor mode), as a call with no arguments."""
    return partial(
        torch.ops.aten.max_pool2d_with_indices_backward,
        g,
        x,
        [k, k],
        [s, s],
        [p, p],
        [1, 1],
        False,
        indices,
    )


def _transposed_rows(layer, rng, group: str = "nn") -> list:
    """conv_transpose2d forward and backward (input, weight and bias gradients) against
    torch's ``conv_transpose2d`` and ``convolution_backward(transposed=True)``."""
    name, n, cin, cout, size, k, s, p, op = layer
    x = rng.standard_normal((n, cin, size, size), dtype=np.float32)
    w = rng.standard_normal((cin, cout, k, k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    y = rconv.conv_transpose2d(x, w, b, s, p, op)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = 2.0 * x.size * cout * k * k
    fwd_fns = {"rconv": partial(rconv.conv_transpose2d, x, w, b, s, p, op)}
    bwd_fns = {"rconv": partial(rconv.conv_transpose2d_backward, dy, x, w, s, p, op)}
    if torch is not None:
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        fwd_fns["torch"] = partial(F.conv_transpose2d, xt, wt, bt, s, p, op)
        bwd_fns["torch"] = _torch_conv_backward(dyt, xt, wt, s, p, 1, transposed_pad=op)
    out = []
    for kind, fns, f in (("fwd", fwd_fns, flops), ("bwd", bwd_fns, 2 * flops)):
        t = time_blocks(fns)
        row = report({"group": group, "case": f"conv_transpose2d {kind} {name} N={n}"}, t)
        row["gflops"] = f / t.medians["rconv"] / 1e9
        out.append(row)
    return out


def _conv_rows(layer, rng, matmul=None, group: str = "nn") -> list:
    """conv2d forward and backward of one layer against torch; with `matmul`, also the
    forward's share of NumPy's matmul GFLOP/s (same rounds) and its peak extra memory."""
    name, n, cin, cout, size, k, s, p, g = layer
    x = rng.standard_normal((n, cin, size, size), dtype=np.float32)
    w = rng.standard_normal((cout, cin // g, k, k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    y = rconv.conv2d(x, w, b, s, p, 1, g)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = 2.0 * y.size * (cin // g) * k * k
    fwd_fns = {"rconv": partial(rconv.conv2d, x, w, b, s, p, 1, g)}
    if matmul is not None:
        fwd_fns["numpy_matmul"] = matmul
    bwd_fns = {"rconv": partial(rconv.conv2d_backward, dy, x, w, s, p, 1, g)}
    if torch is not None:
        xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
        fwd_fns["torch"] = partial(F.conv2d, xt, wt, bt, s, p, 1, g)
        bwd_fns["torch"] = _torch_conv_backward(dyt, xt, wt, s, p, g)
    tf = time_blocks(fwd_fns)
    fwd = report({"group": group, "case": f"conv2d fwd {name} N={n}"}, tf, ratios=("torch",))
    fwd["gflops"] = flops / tf.medians["rconv"] / 1e9
    if matmul is not None:
        # (flops / t_rconv) / (matmul flops / t_matmul), per round
        add_stat(
            fwd,
            "pct_matmul",
            [100 * flops / MATMUL_FLOPS * r for r in tf.ratios["numpy_matmul"]],
        )
    tb = time_blocks(bwd_fns)
    bwd = report({"group": group, "case": f"conv2d bwd {name} N={n}"}, tb)
    bwd["gflops"] = 2 * flops / tb.medians["rconv"] / 1e9
    if matmul is not None:
        fwd.update(peak_extra_memory(layer))
    return [fwd, bwd]


def bench_nn(rows: list, quick: bool) -> None:
    matmul = _matmul()
    t = time_blocks({"numpy": matmul}, baseline=None)
    print(
        f"\nNumPy float32 matmul 256x2304 @ 2304x3136: "
        f"{MATMUL_FLOPS / t.medians['numpy'] / 1e9:.1f} GFLOP/s (same run; %matmul below: "
        "rconv GFLOP/s over the matmul's, both timed in the same rounds)"
    )
    NN_TABLE.header("nn: float32, torch on the same thread count")
    rng = np.random.default_rng(0)
    for layer in CONV_LAYERS:
        for row in _conv_rows(layer, rng, matmul):
            _emit(rows, NN_TABLE, row)
    for layer in TRANSPOSED_LAYERS:
        for row in _transposed_rows(layer, rng):
            _emit(rows, NN_TABLE, row)
    x = rng.standard_normal((8, 64, 112, 112), dtype=np.float32)
    xt = torch.from_numpy(x) if torch is not None else None
    copy_src = rng.standard_normal(1 << 24, dtype=np.float32)  # 64 MiB, beyond the caches
    copy_dst = np.empty_like(copy_src)
    for pool in ("max", "avg"):
        if pool == "max":
            name = "max_pool2d k3 s2 p1"
            fwd_fns = {"rconv": partial(rconv.max_pool2d, x, 3, 2, 1)}
            y = fwd_fns["rconv"]()
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            bwd_fns = {"rconv": partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1)}
        else:
            name = "avg_pool2d k2 s2"
            fwd_fns = {"rconv": partial(rconv.avg_pool2d, x, 2, 2)}
            y = fwd_fns["rconv"]()
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            bwd_fns = {"rconv": partial(rconv.avg_pool2d_backward, dy, x, 2, 2)}
        if torch is not None:
            dyt = torch.from_numpy(dy)
            if pool == "max":
                fwd_fns["torch"] = partial(F.max_pool2d, xt, 3, 2, 1)
                _, ind = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
                bwd_fns["torch"] = _torch_max_pool_backward(dyt, xt, 3, 2, 1, ind)
            else:
                fwd_fns["torch"] = partial(F.avg_pool2d, xt, 2, 2)
                bwd_fns["torch"] = partial(
                    torch.ops.aten.avg_pool2d_backward,
                    dyt,
                    xt,
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    False,
                    True,
                    None,
                )
        shape = "(8,64,112,112)"
        fwd = timed_row("nn", f"{name} fwd {shape}", fwd_fns)
        bwd = timed_row("nn", f"{name} bwd {shape}", bwd_fns)
        extra = []
        if pool == "max":
            # backward from saved indices (torch's backward always takes them)
            _, rind = rconv.max_pool2d(x, 3, 2, 1, return_indices=True)
            fns = {"rconv": partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1, indices=rind)}
            if torch is not None:
                fns["torch"] = bwd_fns["torch"]
            case = f"{name} bwd, saved indices"
            extra.append(timed_row("nn", case, fns))
            # the training forward: values and indices (torch's max_pool2d_with_indices)
            fns = {"rconv": partial(rconv.max_pool2d, x, 3, 2, 1, return_indices=True)}
            if torch is not None:
                fns["torch"] = partial(F.max_pool2d, xt, 3, 2, 1, return_indices=True)
            case = f"{name} fwd with indices"
            extra.append(timed_row("nn", case, fns))
            # rconv's backward without indices (the argmax recomputed) against what torch
            # needs for the same gradient: the forward with indices, then its backward
            fns = {"rconv": partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1)}
            if torch is not None:

                def torch_both(xt=xt, dyt=dyt):
                    _, ti = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
                    return torch.ops.aten.max_pool2d_with_indices_backward(
                        dyt, xt, [3, 3], [2, 2], [1, 1], [1, 1], False, ti
                    )

                fns["torch"] = torch_both
            case = f"{name} bwd recomputed vs torch fwd+bwd"
            extra.append(timed_row("nn", case, fns))
        # out= into a reused array: no first touch of a fresh gradient; its share of the
        # memory bandwidth (bytes read and written over a large np.copyto's, same rounds)
        gx = np.empty_like(x)
        if pool == "max":
            _, rind = rconv.max_pool2d(x, 3, 2, 1, return_indices=True)
            f = partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1, indices=rind, out=gx)
            moved = dy.nbytes + rind.nbytes + gx.nbytes
            case = f"{name} bwd, saved indices, out="
        else:
            f = partial(rconv.avg_pool2d_backward, dy, x, 2, 2, out=gx)
            moved = dy.nbytes + gx.nbytes
            case = f"{name} bwd, out="
        fns = {"rconv": f, "copy": partial(np.copyto, copy_dst, copy_src)}
        if torch is not None:
            fns["torch"] = bwd_fns["torch"]
        t = time_blocks(fns)
        row = report({"group": "nn", "case": case}, t, ratios=("torch",))
        add_stat(row, "pct_bw", [100 * moved / (2 * copy_src.nbytes) * r for r in t.ratios["copy"]])
        extra.append(row)
        for row in (fwd, bwd, *extra):
            _emit(rows, NN_TABLE, row)
    # global average pooling (a ResNet head)
    xg = rng.standard_normal((8, 256, 28, 28), dtype=np.float32)
    fns = {"rconv": partial(rconv.adaptive_avg_pool2d, xg, 1)}
    if torch is not None:
        fns["torch"] = partial(F.adaptive_avg_pool2d, torch.from_numpy(xg), 1)
    _emit(rows, NN_TABLE, timed_row("nn", "adaptive_avg_pool2d 1x1 (8,256,28,28)", fns))


ONE_TABLE = rconv_table(
    48,
    *versus("ref", width=8),
    ("rconv Nthr/1", "rconv_scaling", 12, "f"),
    ("ref Nthr/1", "ref_scaling", 10, "f"),
)


def _all_threads(n: int) -> None:
    """Every library on `n` threads: rconv, torch, OpenCV and the BLAS/OpenMP pools."""
    rconv.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    if cv2 is not None:
        cv2.setNumThreads(n)
    if threadpoolctl is not None:
        threadpoolctl.threadpool_limits(limits=n)


def bench_one_thread(rows: list, quick: bool) -> None:
    """The conv, transposed-conv and a signal row with every library on one thread (users
    under ``threadpool_limits(1)``), and the thread scaling of both (the 1-thread time over
    the same row's time at --threads, from the nn section of this run when it ran)."""
    if THREADS == 1:
        return
    ONE_TABLE.header(
        f"one thread: every library on 1 thread (ref: torch, cv2 for the signal row); "
        f"Nthr/1 = 1-thread time / {THREADS}-thread time"
    )
    same = {(r.get("group"), r.get("case")): r for r in rows}
    rng = np.random.default_rng(0)
    _all_threads(1)
    try:
        out = []
        for layer in [] if quick else CONV_LAYERS:
            out += _conv_rows(layer, rng, group="one_thread")
        for layer in TRANSPOSED_LAYERS[:1] if quick else TRANSPOSED_LAYERS:
            out += _transposed_rows(layer, rng, group="one_thread")
        size = 1024 if quick else 2048
        x = rng.standard_normal((size, size), dtype=np.float32)
        w = rng.standard_normal((7, 7), dtype=np.float32)
        fns = {"rconv": partial(rconv.correlate2d, x, w, "same")}
        if cv2 is not None:
            fns["cv2"] = partial(cv2.filter2D, x, -1, w, borderType=cv2.BORDER_CONSTANT)
        case = f"correlate2d same fill {size}x{size} 7x7 float32"
        out.append(timed_row("one_thread", case, fns))
    finally:
        _all_threads(THREADS)
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
        _emit(rows, ONE_TABLE, row)


# the conv grid of issue 26: (in, out) channel pairs, the square ones for depthwise and groups 4
GRID_PAIRS = [(3, 16), (16, 32), (32, 64), (64, 64), (128, 128), (256, 256)]
GRID_SQUARE = [64, 128, 256]
GRID_TARGET = "median >= 1.3x (stretch 1.5x), no cell under 0.9x"
GRID_SCALING_TARGET = ">= 1.8x"
GRID_AVX_TARGET = ">= 1.3x on Zen 5"
# cells of at least this rconv time get the thread scaling and avx512/avx2 columns
GRID_MIN_S = 1e-3

GRID_CONV_TABLE = rconv_table(
    34,
    *versus("torch"),
    ("GF/s", "gflops", 6, "f"),
    ("%peak", "pct_peak", 6, "f"),
    ("Nthr/1", "threads_speedup", 7, "f"),
    ("512/avx2", "avx512_vs_avx2", 9, "f"),
    case="cell: pass conv k s cin->cout @w N",
)


def grid_cells(quick: bool) -> list:
    """The convolutions of the grid as (conv, k, stride, cin, cout, width, groups): conv is
    'dense', 'depthwise' or 'grouped'. Full: kernel {1, 3, 5} x stride {1, 2} x the six channel
    pairs x width {8, 16, 32, 56} (144 dense), plus depthwise and groups 4 at kernel 3, both
    strides, for the square pairs at every width (48); --quick: widths {16, 32}, pairs
    (3,16), (32,64), (128,128), kernels {1, 3}, both strides (24 dense), plus depthwise and
    groups 4 at 128 channels, width 16 and 32 (8)."""
    widths = (16, 32) if quick else (8, 16, 32, 56)
    pairs = [(3, 16), (32, 64), (128, 128)] if quick else GRID_PAIRS
    square = [128] if quick else GRID_SQUARE
    cells = [
        ("dense", k, s, cin, cout, w, 1)
        for k in ((1, 3) if quick else (1, 3, 5))
        for s in (1, 2)
        for cin, cout in pairs
        for w in widths
    ]
    for conv in ("depthwise", "grouped"):
        cells += [
            (conv, 3, s, c, c, w, c if conv == "depthwise" else 4)
            for s in (1, 2)
            for c in square
            for w in widths
        ]
    return cells


def _fma_peak():
    """rconv's FMA peak in GFLOP/s (float32, on rconv's thread count, at its current SIMD
    level), or None where this rconv has no ``fma_peak``."""
    peak = getattr(rconv._rconv, "fma_peak", None)
    if peak is None:
        return None
    return float(peak("float32", seconds=0.2))


def _grid_plan(probe: dict, quick: bool) -> dict:
    """The block shape of a cell from one call of each library (`probe`, seconds): light cells
    get several calls per sample (a sample of about 4 ms), heavy ones fewer calls and rounds,
    so that the full grid runs in about 15-20 minutes on 2 cores."""
    total, slowest = sum(probe.values()), max(probe.values())
    rounds = 3 if quick else 5
    if total < 0.01:
        return dict(
            rounds=rounds, calls=3, warmup=1, number=max(1, min(50, round(0.004 / slowest)))
        )
    if total < 0.15:
        return dict(rounds=rounds, calls=3, warmup=1, number=1)
    if total < 1.0:
        return dict(rounds=rounds, calls=1, warmup=1, number=1)
    return dict(rounds=3, calls=1, warmup=0, number=1)


def _grid_summary(rows: list, cells: list, peak) -> None:
    """The summary rows of the grid (all cells, then forward, backward, depthwise and grouped)
    and their printout."""
    parts = [
        ("all", cells),
        ("forward", [r for r in cells if r["pass"] == "fwd"]),
        ("backward", [r for r in cells if r["pass"] == "bwd"]),
        ("dense", [r for r in cells if r["conv"] == "dense"]),
        ("depthwise", [r for r in cells if r["conv"] == "depthwise"]),
        ("grouped", [r for r in cells if r["conv"] == "grouped"]),
    ]
    print(
        f"\ngrid summary (targets: torch ratio {GRID_TARGET}; Nthr/1 {GRID_SCALING_TARGET} "
        f"and avx512/avx2 {GRID_AVX_TARGET}, both on cells of >= {GRID_MIN_S * 1e3:.0f} ms)"
    )
    print(
        f"{'cells':18} {'n':>4} {'vs torch median':>15} {'lowest':>7} {'< 0.9x':>6} "
        f"{'GF/s med':>8} {'%peak med':>9} {'Nthr/1 med (n)':>15} {'512/avx2 med (n)':>17}"
    )
    for name, part in parts:
        if not part:
            continue
        row: dict = {"group": "grid_summary", "case": name, "cells": len(part)}
        ratios = [r["vs_torch"] for r in part if "vs_torch" in r]
        if ratios:
            row["vs_torch_median"] = statistics.median(ratios)
            row["vs_torch_min"] = min(ratios)
            row["cells_below_0.9"] = sum(v < 0.9 for v in ratios)
        row["gflops_median"] = statistics.median(r["gflops"] for r in part)
        pcts = [r["pct_peak"] for r in part if "pct_peak" in r]
        if pcts:
            row["pct_peak_median"] = statistics.median(pcts)
        for key in ("threads_speedup", "avx512_vs_avx2"):
            vals = [r[key] for r in part if key in r and r["rconv_ms"] >= GRID_MIN_S * 1e3]
            row[key + "_cells"] = len(vals)
            if vals:
                row[key + "_median"] = statistics.median(vals)
        row["target"] = (
            f"torch ratio {GRID_TARGET}; threads_speedup {GRID_SCALING_TARGET} and "
            f"avx512_vs_avx2 {GRID_AVX_TARGET}, on cells >= {GRID_MIN_S * 1e3:.0f} ms"
        )
        row["fma_peak_gflops"] = peak
        rows.append(row)

        def cell(key, fmt="{:.2f}x", row=row):
            return fmt.format(row[key]) if key in row else "-"

        scal = f"{cell('threads_speedup_median')} ({row['threads_speedup_cells']})"
        avx = f"{cell('avx512_vs_avx2_median')} ({row['avx512_vs_avx2_cells']})"
        print(
            f"{name:18} {len(part):>4} {cell('vs_torch_median'):>15} {cell('vs_torch_min'):>7} "
            f"{cell('cells_below_0.9', '{}'):>6} {cell('gflops_median', '{:.1f}'):>8} "
            f"{cell('pct_peak_median', '{:.1f}'):>9} {scal:>15} {avx:>17}"
        )


def bench_conv_grid(rows: list, quick: bool) -> None:
    """The conv grid of issue 26 (see :func:`grid_cells`): padding k//2, batch 32 (8 at width
    56), float32 with bias; forward (conv2d against F.conv2d) and backward (the input, weight
    and bias gradients: conv2d_backward against aten.convolution_backward) as separate cells.

    Per cell: the torch ratio, rconv's GFLOP/s (2 * output size * cin/groups * k*k per
    forward, twice that per backward) and its share of rconv's FMA peak (``fma_peak``,
    measured at the start and the end of the section, the larger kept); on cells of >= 1 ms,
    rconv's thread scaling (1-thread time / --threads time: rconv at 1 thread is one more
    library of the same alternating blocks) and, where rconv runs at avx512, the avx512/avx2
    speed ratio (rconv at the avx2 level as one more library; the private level override
    caps rconv's own kernels, not gemm's). Then the summary rows."""
    t_start = time.perf_counter()
    set_level = getattr(rconv._rconv, "_set_simd_level", None)
    top = rconv_simd()
    avx2 = set_level is not None and "avx512" in top
    peak_start = _fma_peak()
    peaks = f"{peak_start:.0f} GFLOP/s" if peak_start else "unavailable (no rconv._rconv.fma_peak)"
    load_start = os.getloadavg()[0]
    print(
        f"\ngrid: rconv's float32 FMA peak at {top}, {THREADS} thread(s): {peaks} "
        f"(load average {load_start:.2f})"
    )
    if avx2:
        set_level("avx2")
        try:
            peak_avx2 = _fma_peak()
        finally:
            set_level(None)
        if peak_avx2 is not None:
            print(f"  at avx2: {peak_avx2:.0f} GFLOP/s")
    else:
        why = "no rconv._rconv._set_simd_level" if set_level is None else f"rconv level {top}"
        print(f"  (the avx512/avx2 column needs avx512 and the level override: {why})")
    GRID_CONV_TABLE.header(
        f"grid: conv2d float32 with bias, torch on the same thread count; %peak of the FMA "
        f"peak above; Nthr/1 = 1-thread / {THREADS}-thread time and 512/avx2 = avx2 / avx512 "
        f"time, rconv's, on cells >= {GRID_MIN_S * 1e3:.0f} ms"
    )

    def at(threads: int, level):
        """The setup putting rconv on `threads` threads at `level` (None: its own level)."""

        def setup():
            rconv.set_num_threads(threads)
            if avx2:
                set_level(level)

        return setup

    rng = np.random.default_rng(26)
    out: list = []
    try:
        for conv, k, s, cin, cout, width, g in grid_cells(quick):
            n = 8 if width == 56 else 32
            p = k // 2
            x = rng.standard_normal((n, cin, width, width), dtype=np.float32)
            w = rng.standard_normal((cout, cin // g, k, k), dtype=np.float32)
            b = rng.standard_normal(cout, dtype=np.float32)
            y = rconv.conv2d(x, w, b, s, p, 1, g)
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            flops = 2.0 * y.size * (cin // g) * k * k
            name = {
                "dense": f"k{k} s{s} {cin}->{cout}",
                "depthwise": f"dw k{k} s{s} {cin}",
                "grouped": f"g{g} k{k} s{s} {cin}->{cout}",
            }[conv]
            passes = [
                ("fwd", flops, partial(rconv.conv2d, x, w, b, s, p, 1, g)),
                ("bwd", 2 * flops, partial(rconv.conv2d_backward, dy, x, w, s, p, 1, g)),
            ]
            tfns = {}
            if torch is not None:
                xt, wt, bt, dyt = (torch.from_numpy(a) for a in (x, w, b, dy))
                tfns = {
                    "fwd": partial(F.conv2d, xt, wt, bt, s, p, 1, g),
                    "bwd": _torch_conv_backward(dyt, xt, wt, s, p, g),
                }
            for kind, f, rfn in passes:
                fns = {"rconv": rfn}
                if kind in tfns:
                    fns["torch"] = tfns[kind]
                probe = {}
                for lib, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()  # the first call (torch builds its oneDNN primitive)
                    probe[lib] = time.perf_counter() - t0
                    if probe[lib] < 0.05:
                        t0 = time.perf_counter()
                        fn()
                        probe[lib] = time.perf_counter() - t0
                # rconv at 1 thread and at avx2: more libraries of the same blocks, each
                # block's setup putting rconv in its state (a probe near 1 ms may qualify)
                if probe["rconv"] >= 0.8 * GRID_MIN_S:
                    if THREADS > 1:
                        fns["rconv_1thread"] = rfn
                        probe["rconv_1thread"] = probe["rconv"] * THREADS
                    if avx2:
                        fns["rconv_avx2"] = rfn
                        probe["rconv_avx2"] = probe["rconv"] * 1.5
                setup = {lib: at(THREADS, None) for lib in fns}
                setup["rconv_1thread"] = at(1, None)
                setup["rconv_avx2"] = at(THREADS, "avx2")
                t = time_blocks(fns, setup=setup, **_grid_plan(probe, quick))
                at(THREADS, None)()
                row = {
                    "group": "grid",
                    "case": f"{kind} {name} @{width} N={n}",
                    "pass": kind,
                    "conv": conv,
                    "kernel": k,
                    "stride": s,
                    "in_channels": cin,
                    "out_channels": cout,
                    "width": width,
                    "batch": n,
                    "groups": g,
                    "gflop": f / 1e9,
                }
                report(row, t, ratios=("torch",))
                row["gflops"] = f / t.medians["rconv"] / 1e9
                if peak_start:
                    row["pct_peak"] = 100 * row["gflops"] / peak_start
                if t.medians["rconv"] >= GRID_MIN_S:
                    if "rconv_1thread" in t.ratios:
                        add_stat(row, "threads_speedup", t.ratios["rconv_1thread"])
                    if "rconv_avx2" in t.ratios:
                        add_stat(row, "avx512_vs_avx2", t.ratios["rconv_avx2"])
                out.append(row)
                _emit(rows, GRID_CONV_TABLE, row)
    finally:
        at(THREADS, None)()
    peak_end = _fma_peak()
    peak = max(peak_start or 0.0, peak_end or 0.0) or None
    print(
        f"\ngrid: {len(out)} cells in {time.perf_counter() - t_start:.0f} s, load average "
        f"{load_start:.2f} at the start, {os.getloadavg()[0]:.2f} at the end"
    )
    if peak_start is not None and peak_end is not None:
        print(
            f"FMA peak at the end: {peak_end:.0f} GFLOP/s (start {peak_start:.0f}); %peak uses "
            f"the larger, {peak:.0f}"
            + (" (the table above used the start's)" if peak != peak_start else "")
        )
        for row in out:
            row["pct_peak"] = 100 * row["gflops"] / peak
    rows.append(
        {
            "group": "grid_summary",
            "case": "fma peak",
            "fma_peak_start_gflops": peak_start,
            "fma_peak_end_gflops": peak_end,
            "fma_peak_gflops": peak,
            "simd": top,
            "threads": THREADS,
            "load_average_start_end": [load_start, os.getloadavg()[0]],
            "seconds": time.perf_counter() - t_start,
        }
    )
    _grid_summary(rows, out, peak)


def bench_dask(rows: list, quick: bool) -> None:
    """rconv.dask on the threaded scheduler against the same call in memory (vs mem =
    in-memory time / chunked time, per round: the price of splitting, < 1 is overhead)."""
    try:
        import dask

        import rconv.dask as rd
    except ImportError:
        print("\n(dask is not importable: install the 'dask' extra for the dask rows)")
        return
    table = rconv_table(52, *versus("in_memory", "in-mem ms", "vs mem"))
    table.header("dask: chunked (tasks x rconv threads per task) against in memory")
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
    configs = ((THREADS, 1), (1, THREADS))  # tasks x rconv threads per task
    for name, in_memory, lazy in cases:
        fns = {"in_memory": in_memory}
        setup = {"in_memory": _set_threads(THREADS)}
        for workers, inner in configs:
            fns[f"{workers}x{inner}"] = partial(
                lazy.compute, scheduler="threads", num_workers=workers
            )
            setup[f"{workers}x{inner}"] = _set_threads(inner)
        t = time_blocks(fns, calls=2 if quick else CALLS, setup=setup, baseline=None)
        rconv.set_num_threads(THREADS)
        for workers, inner in configs:
            cfg = f"{workers}x{inner}"
            row = {
                "group": "dask",
                "case": f"{name} {cfg}thr",
                "rconv_ms": t.medians[cfg] * 1e3,
                "in_memory_ms": t.medians["in_memory"] * 1e3,
                "per_round_ms": {
                    lib: [float(f"{v * 1e3:.4g}") for v in t.rounds[lib]]
                    for lib in ("in_memory", cfg)
                },
                "blocks": t.spec,
            }
            add_stat(row, "vs_in_memory", t.per_round("in_memory", cfg))
            _emit(rows, table, row)


OVERHEAD_TARGET_US, OVERHEAD_STRETCH_US = 8.0, 5.0


# --------------------------------------------------------------------------------------------
# training: whole steps of five networks (benchmarks/nets.py), rconv.nn against torch's
# autograd loop, per layer, each non-conv layer alone, and memory


def _rconv_step(net, loss, opt, x, y):
    def step():
        loss.forward(net.forward(x), y)
        net.backward(loss.backward(), input_grad=False)  # torch skips the data's gradient too
        opt.step()

    return step


def _torch_step(net, opt, x, y, lossf=None):
    lossf = lossf or torch.nn.CrossEntropyLoss()

    def step():
        with torch.enable_grad():
            opt.zero_grad()
            lossf(net(x), y).backward()
            opt.step()

    return step


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


LAYER_TABLE = rconv_table(52, *versus("torch", ratio_width=20), case="layer")


def _pair(v) -> list:
    return [v, v] if isinstance(v, int) else list(v)


def _torch_layer(layer, x, y, g, first):
    """torch's functional aten forward/backward for one rconv.nn layer (None: no torch peer).
    x, y, g: the layer's input, output and output gradient as torch tensors; first: no input
    gradient (the first layer's, which neither library computes)."""
    from rconv import nn as rnn

    if isinstance(layer, rnn.Conv2d):
        c = layer.conf
        w = torch.from_numpy(layer.weight)
        b = None if layer.bias is None else torch.from_numpy(layer.bias)
        st, pad, dil = _pair(c["stride"]), _pair(c["padding"]), _pair(c["dilation"])
        fwd = partial(F.conv2d, x, w, b, st, pad, dil, c["groups"])
        mask = [not first, True, b is not None]
        bias_sizes = [w.shape[0]] if b is not None else None
        bwd = partial(
            torch.ops.aten.convolution_backward,
            *(g, x, w, bias_sizes, st, pad, dil, False, [0, 0], c["groups"], mask),
        )
        return fwd, bwd
    if isinstance(layer, rnn.BatchNorm2d):
        w = None if layer.weight is None else torch.from_numpy(layer.weight.copy())
        b = None if layer.bias is None else torch.from_numpy(layer.bias.copy())
        rm = None if layer.running_mean is None else torch.from_numpy(layer.running_mean.copy())
        rv = None if layer.running_var is None else torch.from_numpy(layer.running_var.copy())
        train = layer.training or rm is None
        mom = 0.1 if layer.momentum is None else layer.momentum
        fwd = partial(torch.ops.aten.native_batch_norm, x, w, b, rm, rv, train, mom, layer.eps)
        _, mean, invstd = fwd()
        mask = [not first, w is not None, w is not None]
        bwd = partial(
            torch.ops.aten.native_batch_norm_backward,
            *(g, x, w, rm, rv, mean, invstd, train, layer.eps, mask),
        )
        return fwd, bwd
    if isinstance(layer, rnn.ReLU):
        return partial(F.relu, x), partial(torch.ops.aten.threshold_backward, g, y, 0)
    if isinstance(layer, rnn.LeakyReLU):
        s = layer.negative_slope
        return (
            partial(F.leaky_relu, x, s),
            partial(torch.ops.aten.leaky_relu_backward, g, x, s, False),
        )
    if isinstance(layer, rnn.Sigmoid):
        return partial(torch.sigmoid, x), partial(torch.ops.aten.sigmoid_backward, g, y)
    if isinstance(layer, rnn.Tanh):
        return partial(torch.tanh, x), partial(torch.ops.aten.tanh_backward, g, y)
    if isinstance(layer, rnn.MaxPool2d):
        c = layer.conf
        k, st, pad = _pair(c["kernel_size"]), _pair(c["stride"] or c["kernel_size"]), c["padding"]
        pad = _pair(pad)
        _, ind = torch.ops.aten.max_pool2d_with_indices(x, k, st, pad)
        fwd = partial(torch.ops.aten.max_pool2d_with_indices, x, k, st, pad)
        return fwd, _torch_max_pool_backward(g, x, k[0], st[0], pad[0], ind)
    if isinstance(layer, rnn.AdaptiveAvgPool2d):
        size = list(layer.output_size)
        return (
            partial(F.adaptive_avg_pool2d, x, size),
            partial(torch.ops.aten._adaptive_avg_pool2d_backward, g, x),
        )
    if isinstance(layer, rnn.Linear):
        w = torch.from_numpy(layer.weight)
        b = None if layer.bias is None else torch.from_numpy(layer.bias)

        def bwd():  # what autograd runs for addmm: both matmuls and the bias sum
            return g.mm(w), g.t().mm(x), g.sum(0)

        return partial(F.linear, x, w, b), bwd
    return None


def _capture(net, step) -> list:
    """Run `step` once with every leaf layer of `net` recording its input, output, output
    gradient and whether it returned an input gradient: ``[(name, layer, x, y, g, input_grad)]``
    in forward order (a custom Module's leaves too)."""
    leaves = [(n, m) for n, m in net.named_modules() if not any(True for _ in m.children())]
    rec: dict = {}
    for name, m in leaves:

        def fwd(x, *a, _f=m.forward, _n=name):
            y = _f(x, *a)
            rec.setdefault(_n, {}).update(x=x, y=y)
            return y

        def bwd(g, input_grad=True, _b=m.backward, _n=name):
            rec.setdefault(_n, {}).update(g=g, input_grad=input_grad)
            return _b(g, input_grad)

        m.forward, m.backward = fwd, bwd
    try:
        step()
    finally:
        for _, m in leaves:
            del m.forward, m.backward
    out = []
    for name, m in leaves:
        r = rec.get(name, {})
        if "x" in r and "g" in r:
            out.append((name, m, r["x"], r["y"], r["g"], r["input_grad"]))
    return out


def _layer_rows(rows: list, name: str, spec, net, loss, opt, step, tnet, quick: bool) -> None:
    """Per layer of `net` at its place in the network: forward and backward, rconv.nn's
    layer calls against torch's aten calls on the same arrays (an input gradient for every
    layer but the first, in both libraries); then the loss and the optimizer step; then the
    convolutions' share of the sum, per library."""
    rounds, calls = (3, 3) if quick else (5, 5)
    share = {"rconv": {"conv": 0.0, "other": 0.0}, "torch": {"conv": 0.0, "other": 0.0}}

    def add(kind, row):
        for lib in share:
            if f"{lib}_ms" in row:
                share[lib][kind] += row[f"{lib}_ms"]

    for lname, layer, xi, yi, gi, input_grad in _capture(net, step):
        if type(layer).__name__ == "Flatten":
            continue
        label = f"{name}: {lname} {type(layer).__name__} {'x'.join(map(str, xi.shape))}"
        tl = None
        if torch is not None:
            txi, tyi, tgi = (torch.from_numpy(np.ascontiguousarray(a)) for a in (xi, yi, gi))
            tl = _torch_layer(layer, txi, tyi, tgi, not input_grad)

        def r_fwd(layer=layer, xi=xi):
            layer.forward(xi)

        def r_bwd(layer=layer, gi=gi, ig=input_grad):
            layer.backward(gi, input_grad=ig)

        kind = "conv" if type(layer).__name__ == "Conv2d" else "other"
        for which, rf, k in (("fwd", r_fwd, 0), ("bwd", r_bwd, 1)):
            layer.forward(xi)  # what the backward reads
            fns = {"rconv": rf}
            if tl is not None:
                fns["torch"] = tl[k]
            number = 20 if xi.size < 200_000 else 1
            row = timed_row(
                "train_layer", f"{label} {which}", fns, rounds=rounds, calls=calls, number=number
            )
            add(kind, row)
            _emit(rows, LAYER_TABLE, row)
    # the loss, forward and backward, on the network's logits
    logits = net.forward(spec["x"])
    y = spec["y"]
    fns = {"rconv": lambda: (loss.forward(logits, y), loss.backward())}
    if torch is not None:
        tl_, ty = torch.from_numpy(logits), torch.from_numpy(y)

        def t_loss():
            logp = torch.ops.aten._log_softmax(tl_, 1, False)
            out, tw = torch.ops.aten.nll_loss_forward(logp, ty, None, 1, -100)
            gl = torch.ops.aten.nll_loss_backward(torch.ones(()), logp, ty, None, 1, -100, tw)
            return torch.ops.aten._log_softmax_backward_data(gl, logp, 1, logp.dtype)

        fns["torch"] = t_loss
    row = timed_row(
        "train_layer",
        f"{name}: loss {type(loss).__name__} {'x'.join(map(str, logits.shape))} fwd+bwd",
        fns,
        rounds=rounds,
        calls=calls,
        number=20,
    )
    add("other", row)
    _emit(rows, LAYER_TABLE, row)
    # the optimizer step over the network's parameters and gradients
    step()
    fns = {"rconv": opt.step}
    if tnet is not None:
        topt = tnet["opt"]
        fns["torch"] = topt.step
    nparams = sum(p.size for p in net.params().values())
    row = timed_row(
        "train_layer",
        f"{name}: {type(opt).__name__}.step {nparams} parameters",
        fns,
        rounds=rounds,
        calls=calls,
        number=5,
    )
    add("other", row)
    _emit(rows, LAYER_TABLE, row)
    summary = {"group": "train_share", "case": name}
    parts = []
    for lib, d in share.items():
        total = d["conv"] + d["other"]
        if total:
            summary[f"{lib}_conv_ms"], summary[f"{lib}_other_ms"] = d["conv"], d["other"]
            parts.append(
                f"{lib} conv {d['conv']:.2f} ms + other {d['other']:.2f} ms "
                f"({100 * d['other'] / total:.0f}% non-conv)"
            )
    if share["torch"]["other"] and share["rconv"]["other"]:
        summary["other_vs_torch"] = share["torch"]["other"] / share["rconv"]["other"]
        parts.append(f"non-conv sum vs torch {summary['other_vs_torch']:.2f}x")
    rows.append(summary)
    print(f"  sum of the rows above: {'; '.join(parts)}")


OPS_TABLE = rconv_table(52, *versus("torch", ratio_width=20), case="layer")


def _op_rows(rows: list, quick: bool) -> None:
    """The non-conv layers alone, on (8,64,56,56) and the nets' other shapes: BatchNorm2d
    (training forward+backward, eval forward), the activations (forward, backward), global
    average pooling, the losses, and the optimizers over ~635k parameters."""
    from rconv import nn as rnn

    OPS_TABLE.header("train ops: each non-conv layer alone (forward+backward unless marked)")
    rng = np.random.default_rng(3)
    shapes = [(8, 64, 56, 56)] if quick else [(8, 64, 56, 56), (32, 32, 32, 32), (32, 256, 8, 8)]
    rounds, calls = (3, 3) if quick else (5, 5)

    def row(case, fns, size):
        number = 20 if size < 200_000 else 1
        r = timed_row("train_ops", case, fns, rounds=rounds, calls=calls, number=number)
        _emit(rows, OPS_TABLE, r)

    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        g = rng.standard_normal(shape, dtype=np.float32)
        xt, gt = torch.from_numpy(x) if torch else None, torch.from_numpy(g) if torch else None
        sh = "x".join(map(str, shape))
        c = shape[1]
        bn = rnn.BatchNorm2d(c)

        def r_bn(bn=bn, x=x, g=g):
            bn.forward(x)
            bn.backward(g)

        fns = {"rconv": r_bn}
        if torch is not None:
            w, b = torch.ones(c), torch.zeros(c)
            rm, rv = torch.zeros(c), torch.ones(c)

            def t_bn(xt=xt, gt=gt, w=w, b=b, rm=rm, rv=rv):
                y, m, s = torch.ops.aten.native_batch_norm(xt, w, b, rm, rv, True, 0.1, 1e-5)
                torch.ops.aten.native_batch_norm_backward(
                    gt, xt, w, rm, rv, m, s, True, 1e-5, [True, True, True]
                )

            fns["torch"] = t_bn
        row(f"BatchNorm2d train {sh}", fns, x.size)
        bne = rnn.BatchNorm2d(c).eval()
        fns = {"rconv": partial(bne.forward, x)}
        if torch is not None:
            fns["torch"] = partial(F.batch_norm, xt, rm, rv, w, b, False)
        row(f"BatchNorm2d eval fwd {sh}", fns, x.size)
        for act, tf, tb in (
            (rnn.ReLU(), F.relu, lambda g, x, y: torch.ops.aten.threshold_backward(g, y, 0)),
            (
                rnn.LeakyReLU(),
                partial(F.leaky_relu, negative_slope=0.01),
                lambda g, x, y: torch.ops.aten.leaky_relu_backward(g, x, 0.01, False),
            ),
            (rnn.Sigmoid(), torch.sigmoid if torch else None, None),
            (rnn.Tanh(), torch.tanh if torch else None, None),
        ):
            nm = type(act).__name__
            fns = {"rconv": partial(act.forward, x)}
            if torch is not None:
                fns["torch"] = partial(tf, xt)
            row(f"{nm} fwd {sh}", fns, x.size)
            y = act.forward(x)
            fns = {"rconv": partial(act.backward, g)}
            if torch is not None:
                yt = torch.from_numpy(y)
                if tb is None:
                    op = torch.ops.aten.sigmoid_backward if nm == "Sigmoid" else None
                    op = op or torch.ops.aten.tanh_backward
                    fns["torch"] = partial(op, gt, yt)
                else:
                    fns["torch"] = partial(tb, gt, xt, yt)
            row(f"{nm} bwd {sh}", fns, x.size)
    gap_shapes = [(32, 256, 8, 8), (32, 64, 8, 8), (8, 256, 28, 28)]
    for shape in gap_shapes[:1] if quick else gap_shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        gap = rnn.AdaptiveAvgPool2d(1)
        g = rng.standard_normal(shape[:2] + (1, 1), dtype=np.float32)

        def r_gap(gap=gap, x=x, g=g):
            gap.forward(x)
            gap.backward(g)

        fns = {"rconv": r_gap}
        if torch is not None:
            xt, gt = torch.from_numpy(x), torch.from_numpy(g)

            def t_gap(xt=xt, gt=gt):
                F.adaptive_avg_pool2d(xt, 1)
                torch.ops.aten._adaptive_avg_pool2d_backward(gt, xt)

            fns["torch"] = t_gap
        row(f"AdaptiveAvgPool2d(1) {'x'.join(map(str, shape))}", fns, x.size)
    for n, k in [(32, 10), (256, 1000)]:
        logits = rng.standard_normal((n, k), dtype=np.float32)
        y = rng.integers(0, k, n)
        ce = rnn.CrossEntropyLoss()
        fns = {"rconv": lambda ce=ce, lg=logits, y=y: (ce.forward(lg, y), ce.backward())}
        if torch is not None:
            lt, ty = torch.from_numpy(logits), torch.from_numpy(y)

            def t_ce(lt=lt, ty=ty):
                logp = torch.ops.aten._log_softmax(lt, 1, False)
                _, tw = torch.ops.aten.nll_loss_forward(logp, ty, None, 1, -100)
                gl = torch.ops.aten.nll_loss_backward(torch.ones(()), logp, ty, None, 1, -100, tw)
                torch.ops.aten._log_softmax_backward_data(gl, logp, 1, logp.dtype)

            fns["torch"] = t_ce
        row(f"CrossEntropyLoss {n}x{k}", fns, logits.size)
    for shape in [(32, 10), (8, 64, 56, 56)]:
        a = rng.standard_normal(shape, dtype=np.float32)
        t = rng.standard_normal(shape, dtype=np.float32)
        mse = rnn.MSELoss()
        fns = {"rconv": lambda mse=mse, a=a, t=t: (mse.forward(a, t), mse.backward())}
        if torch is not None:
            at, tt = torch.from_numpy(a), torch.from_numpy(t)

            def t_mse(at=at, tt=tt):
                torch.ops.aten.mse_loss(at, tt, 1)
                torch.ops.aten.mse_loss_backward(torch.ones(()), at, tt, 1)

            fns["torch"] = t_mse
        row(f"MSELoss {'x'.join(map(str, shape))}", fns, a.size)
    # the optimizers over a small CNN's parameters (~635k), gradients set once
    shapes = [(64, 3, 3, 3), (64,), (128, 64, 3, 3), (128,), (256, 128, 3, 3), (256,)]
    shapes += [(256, 256, 3, 3)[:1] + (64, 3, 3), (10, 256), (10,)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    npar = sum(p.size for p in params)
    for oname, kw in [
        ("SGD", {"lr": 0.01, "momentum": 0.9}),
        ("Adam", {"lr": 1e-3}),
        ("AdamW", {"lr": 1e-3, "weight_decay": 1e-2}),
    ]:
        model = _ParamModel(params, grads)
        opt = getattr(rconv.optim, oname)(model, **kw)
        fns = {"rconv": opt.step}
        if torch is not None:
            tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
            for p, g in zip(tp, grads):
                p.grad = torch.from_numpy(g)
            fns["torch"] = getattr(torch.optim, oname)(tp, **kw).step
        row(f"{oname}.step {npar} parameters", fns, 0)


class _ParamModel:
    """A Module holding given parameter arrays and gradients (for the optimizer rows)."""

    def __new__(cls, params, grads):
        from rconv import nn as rnn

        class Holder(rnn.Module):
            _param_names = tuple(f"p{i}" for i in range(len(params)))

            def __init__(self):
                for i, (p, g) in enumerate(zip(params, grads)):
                    setattr(self, f"p{i}", p.copy())
                    setattr(self, f"grad_p{i}", g)

        return Holder()


GRID_TABLE = rconv_table(
    46, *versus("torch", ratio_width=20), case="conv3x3-ReLU-MaxPool2d block: cin->cout @px, N"
)


def _grid(rows: list, quick: bool) -> None:
    """A conv(3x3, p=1)-ReLU-MaxPool2d(2) block trained with SGD (loss: the output's mean)
    over channels {1, 3, 16, 64} -> {16, 64}, images {8, 16, 32, 64}, batch {1, 8, 64}
    (--quick: images {8, 16} and batch {1, 8} only, a check that the section runs)."""
    from rconv import nn as rnn

    GRID_TABLE.header("train grid: one SGD step of a conv-ReLU-pool block (no data gradient)")
    rng = np.random.default_rng(6)
    ratios = []
    for cin in (1, 3, 16, 64):
        for cout in (16, 64):
            for px in (8, 16) if quick else (8, 16, 32, 64):
                for n in (1, 8) if quick else (1, 8, 64):
                    x = rng.standard_normal((n, cin, px, px), dtype=np.float32)
                    net = rnn.Sequential(
                        rnn.Conv2d(cin, cout, 3, padding=1, rng=rng), rnn.ReLU(), rnn.MaxPool2d(2)
                    )
                    opt = rconv.optim.SGD(net, lr=0.01, momentum=0.9)
                    g = np.full(
                        (n, cout, px // 2, px // 2), 1.0 / (n * cout * px * px // 4), np.float32
                    )

                    def r_step(net=net, opt=opt, x=x, g=g):
                        net.forward(x)
                        net.backward(g, input_grad=False)
                        opt.step()

                    fns = {"rconv": r_step}
                    if torch is not None:
                        tnet = torch.nn.Sequential(
                            torch.nn.Conv2d(cin, cout, 3, padding=1),
                            torch.nn.ReLU(),
                            torch.nn.MaxPool2d(2),
                        )
                        topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
                        tx = torch.from_numpy(x)

                        def t_step(tnet=tnet, topt=topt, tx=tx):
                            with torch.enable_grad():
                                topt.zero_grad()
                                tnet(tx).mean().backward()
                                topt.step()

                        fns["torch"] = t_step
                    work = n * cin * cout * px * px
                    number = 20 if work < 2_000_000 else 1
                    case = f"{cin}->{cout} @{px}, N={n}"
                    row = timed_row("train_grid", case, fns, rounds=3, calls=3, number=number)
                    _emit(rows, GRID_TABLE, row)
                    if "vs_torch" in row:
                        ratios.append(row["vs_torch"])
    if ratios:
        summary = {
            "group": "train_grid_summary",
            "case": f"median of {len(ratios)} cells",
            "vs_torch_median": statistics.median(ratios),
            "vs_torch_min": min(ratios),
            "cells_below_0.8": sum(r < 0.8 for r in ratios),
            "target": "median >= 1.0x, no cell below 0.8x",
        }
        rows.append(summary)
        print(
            f"grid: median {summary['vs_torch_median']:.2f}x torch over {len(ratios)} cells, "
            f"lowest {summary['vs_torch_min']:.2f}x, {summary['cells_below_0.8']} cell(s) below "
            "0.8x (target: median >= 1.0x, none below 0.8x)"
        )


TRAIN_TABLE = rconv_table(
    44,
    *versus("torch", "torch ms/step", width=14, ratio_width=20),
    case="network (float32), threads",
    rconv="rconv ms/step",
    rconv_width=14,
)


def _nets():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import nets

    return nets


def _build(spec, rng):
    """rconv's and torch's instances of the benchmark net `spec` on the same data."""
    from rconv import nn as rnn

    nets = _nets()
    x = rng.standard_normal(spec.shape, dtype=np.float32)
    y = rng.integers(0, 10, spec.shape[0])
    net = spec.build(rnn, np.random.default_rng(1))
    loss = rnn.CrossEntropyLoss()
    opt = nets.optimizer(rconv.optim, spec, net)
    out = {"x": x, "y": y, "net": net, "loss": loss, "opt": opt}
    out["step"] = _rconv_step(net, loss, opt, x, y)
    out["torch"] = None
    if torch is not None:
        tnet = spec.build(torch.nn)
        topt = nets.optimizer(torch.optim, spec, tnet.parameters())
        tstep = _torch_step(tnet, topt, torch.from_numpy(x), torch.from_numpy(y))
        tstep()  # creates the gradients and the optimizer state
        out["torch"] = {"net": tnet, "opt": topt, "step": tstep}
    return out


def bench_train(rows: list, quick: bool) -> None:
    """ms per training step (forward, loss, backward, optimizer step), rconv.nn and torch's
    usual autograd loop on the same data (torch.from_numpy), alternating blocks, at 1 thread
    and at --threads; then per layer, each non-conv layer alone, the grid of small blocks,
    and the memory (RSS over 200 steps; a step's high-water mark in a fresh process)."""
    nets = _nets()
    TRAIN_TABLE.header("train: whole steps, the same thread count for both libraries")
    rng = np.random.default_rng(0)
    built = []
    for spec in nets.NETS:
        b = _build(spec, rng)
        built.append((spec, b))
        for n in sorted({1, THREADS}):
            _all_threads(n)
            try:
                fns = {"rconv": b["step"]}
                if b["torch"] is not None:
                    fns["torch"] = b["torch"]["step"]
                timing = dict(rounds=3 if quick else ROUNDS, calls=3 if quick else 5)
                case = f"{spec.label} {spec.shape}, {n} thr"
                row = timed_row("train", case, fns, **timing)
                row.update(net=spec.key, threads=n)
                _emit(rows, TRAIN_TABLE, row)
            finally:
                _all_threads(THREADS)
    for spec, b in built:
        LAYER_TABLE.header(f"train, per layer: {spec.label} {spec.shape}, {THREADS} thr")
        _layer_rows(rows, spec.key, b, b["net"], b["loss"], b["opt"], b["step"], b["torch"], quick)
    _op_rows(rows, quick)
    _grid(rows, quick)
    more = 50 if quick else 200
    print(f"\nmemory: RSS after 20 warm-up steps and after {more} more (target: within 5%)")
    for spec, b in built:
        step = b["step"]
        for _ in range(20):
            step()
        gc.collect()
        before = _rss_mib()
        for _ in range(more):
            step()
        gc.collect()
        after = _rss_mib()
        row = {
            "group": "train_memory",
            "case": spec.label,
            "rss_warm_mib": before,
            "steps": more,
            "rss_after_mib": after,
            "growth": after / before - 1,
        }
        rows.append(row)
        print(f"  {spec.label}: {before:.1f} MiB -> {after:.1f} MiB ({100 * row['growth']:+.1f}%)")
    _step_peaks(rows, [spec for spec, _ in built])


def _step_peaks(rows: list, specs: list) -> None:
    """A step's resident high-water mark above the warmed-up baseline (VmRSS after 10
    steps; the peak reset through /proc/self/clear_refs, then 5 steps), in a fresh process
    per library and net (target: rconv's no higher than torch's)."""
    print("\nmemory: one step's high-water mark above the warmed-up RSS, fresh process per library")
    here = os.path.dirname(os.path.abspath(__file__))
    for spec in specs:
        row = {"group": "train_step_peak", "case": spec.label}
        for lib in ("rconv", "torch"):
            if lib == "torch" and torch is None:
                continue
            body = f"""
import sys, gc
sys.path.insert(0, {here!r})
import nets
spec = [s for s in nets.NETS if s.key == {spec.key!r}][0]
rng = np.random.default_rng(0)
x = rng.standard_normal(spec.shape, dtype=np.float32)
y = rng.integers(0, 10, spec.shape[0])
if {lib!r} == "torch":
    import torch
    torch.set_num_threads({THREADS})
    net = spec.build(torch.nn)
    opt = nets.optimizer(torch.optim, spec, net.parameters())
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()
    def step():
        opt.zero_grad()
        lossf(net(tx), ty).backward()
        opt.step()
else:
    from rconv import nn as rnn
    net = spec.build(rnn, np.random.default_rng(1))
    opt = nets.optimizer(rconv.optim, spec, net)
    loss = rnn.CrossEntropyLoss()
    def step():
        loss.forward(net.forward(x), y)
        net.backward(loss.backward(), input_grad=False)
        opt.step()
for _ in range(10):
    step()
gc.collect()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
base = rss()
open("/proc/self/clear_refs", "w").write("5")
for _ in range(5):
    step()
print(base, hwm())
"""
            base, peak = (int(v) for v in fresh_process(body)[-2:])
            row[f"{lib}_base_mib"] = base / 2**20
            row[f"{lib}_peak_mib"] = (peak - base) / 2**20
        rows.append(row)
        cells = "  ".join(
            f"{lib} {row[f'{lib}_peak_mib']:.1f} MiB over {row[f'{lib}_base_mib']:.0f}"
            for lib in ("rconv", "torch")
            if f"{lib}_peak_mib" in row
        )
        print(f"  {spec.label}: {cells}")


def _target(us: float) -> str:
    if us <= OVERHEAD_STRETCH_US:
        return f"ok (<= {OVERHEAD_STRETCH_US:g})"
    if us <= OVERHEAD_TARGET_US:
        return f"ok (<= {OVERHEAD_TARGET_US:g})"
    return f"> {OVERHEAD_TARGET_US:g}"


def bench_overhead(rows: list, quick: bool) -> None:
    """Fixed cost per call on tiny inputs: 5 rounds, each one block of 2000 calls per library
    (per-call time = block time / 2000), then a per-image loop over a stack."""
    repeats, number = 5, 2000
    peers_cols = []
    for lib in ("cv2", "scipy", "torch"):
        peers_cols += versus(lib, width=8, unit="us")
    table = rconv_table(
        34, ("target", "target", 12, "s"), *peers_cols, rconv="rconv us", rconv_width=8, unit="us"
    )
    print(
        f"\noverhead: median per-call time, {repeats} rounds x {number} calls per library; "
        f"issue target <= {OVERHEAD_TARGET_US:g} us per rconv call "
        f"(stretch {OVERHEAD_STRETCH_US:g} us)"
    )
    if cv2 is None:
        print("(cv2 is not importable: no cv2 peers)")
    if torch is None:
        print("(torch is not importable: no torch peers)")
    table.header()
    rng = np.random.default_rng(4)
    a = rng.standard_normal((8, 8), dtype=np.float32)
    k = rng.standard_normal((3, 3), dtype=np.float32)
    x = a.reshape(1, 1, 8, 8).copy()
    w = k.reshape(1, 1, 3, 3).copy()
    cases = [("correlate2d same 8x8 3x3 f32", partial(rconv.correlate2d, a, k, "same"), {})]
    if cv2 is not None:
        cases[0][2]["cv2"] = partial(cv2.filter2D, a, -1, k, borderType=cv2.BORDER_CONSTANT)
    if ss is not None:
        cases[0][2]["scipy"] = partial(ss.correlate2d, a, k, "same")
    # the nn calls and their torch peers (None when torch is not importable)
    nn_calls = [
        ("conv2d (1,1,8,8) 3x3 pad 1 f32", "conv2d", (x, w), {"padding": 1}),
        ("max_pool2d (1,1,8,8) k2 f32", "max_pool2d", (x, 2), {}),
        ("adaptive_avg_pool2d (1,1,8,8) 1", "adaptive_avg_pool2d", (x, 1), {}),
    ]
    for case, fn, args, kw in nn_calls:
        peers = {}
        if torch is not None:
            targs = tuple(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in args)
            peers["torch"] = partial(getattr(F, fn), *targs, **kw)
        cases.append((case, partial(getattr(rconv, fn), *args, **kw), peers))
    for case, f, peers in cases:
        fns = {"rconv": f, **peers}
        t = time_blocks(fns, rounds=repeats, calls=1, number=number)
        row = report({"group": "overhead", "case": case}, t, unit="us")
        row["target"] = _target(row["rconv_us"])
        row["target_us"], row["stretch_us"] = OVERHEAD_TARGET_US, OVERHEAD_STRETCH_US
        _emit(rows, table, row)
    # the same fixed cost paid per image of a stack
    stack = rng.standard_normal((256, 128, 128), dtype=np.float32)
    k5 = rng.standard_normal((5, 5), dtype=np.float32)

    def rconv_loop():
        for img in stack:
            rconv.correlate2d(img, k5, "same")

    fns = {"rconv": rconv_loop}
    if cv2 is not None:

        def cv2_loop():
            for img in stack:
                cv2.filter2D(img, -1, k5, borderType=cv2.BORDER_CONSTANT)

        fns["cv2"] = cv2_loop
    loop_table = rconv_table(46, *versus("cv2", width=8))
    loop_table.header()
    case = "loop of correlate2d same: 256 x 128x128 5x5 f32"
    _emit(rows, loop_table, timed_row("overhead", case, fns))


# --------------------------------------------------------------------------------------------
# run description


SIMD_FLAGS = [
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "sve",
    "sve2",
]


def cpu_info() -> dict:
    """Model name and SIMD flags of interest, from /proc/cpuinfo (else lscpu)."""
    fields: dict = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break  # first processor only
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    model = fields.get("model name")
    flags = (fields.get("flags") or fields.get("features") or "").split()
    if not model or not flags:
        try:
            out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
            for line in out.splitlines():
                key, _, value = line.partition(":")
                if key.strip() == "Model name" and not model:
                    model = value.strip()
                elif key.strip() == "Flags" and not flags:
                    flags = value.split()
        except (OSError, subprocess.CalledProcessError):
            pass
    have = set(flags)
    info = {
        "model": model or platform.processor() or "unknown",
        "simd_flags": [f for f in SIMD_FLAGS if f in have],
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)),
    }
    for key in ("cpu family", "model", "stepping"):
        if key in fields:
            info[key.replace(" ", "_") if key != "model" else "model_number"] = fields[key]
    return info


def rconv_simd() -> str:
    level = getattr(rconv._rconv, "simd_level", None)
    if level is None:
        return "unknown"
    return str(level() if callable(level) else level)


def versions() -> dict:
    from importlib import metadata

    def dist(name):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": sys.version.split()[0],
        "rconv": rconv.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__ if scipy is not None else None,
        "cv2": cv2.__version__ if cv2 is not None else None,
        # not imported before the nn/overhead sections: the installed distribution
        "torch": torch.__version__ if torch is not None else dist("torch"),
        "dask": dist("dask"),
        "threadpoolctl": dist("threadpoolctl"),
    }


def thread_state() -> dict:
    """The thread count every library reports, and the pools threadpoolctl finds."""
    state = {
        "rconv": rconv.get_num_threads(),
        "cv2": cv2.getNumThreads() if cv2 is not None else None,
        "torch": torch.get_num_threads() if torch is not None else None,
        "env": {
            v: os.environ[v]
            for v in (
                "OPENBLAS_NUM_THREADS",
                "OMP_NUM_THREADS",
                "MKL_NUM_THREADS",
                "OPENBLAS_CORETYPE",
                "OPENBLAS_L2_SIZE",
                "RCONV_NUM_THREADS",
            )
            if v in os.environ
        },
    }
    if threadpoolctl is not None:
        state["pools"] = [
            {
                k: p.get(k)
                for k in ("internal_api", "version", "num_threads", "prefix", "architecture")
            }
            for p in threadpoolctl.threadpool_info()
        ]
    return state


def _time_key(row: dict):
    """The row's rconv time key (``rconv_ms``, ``rconv_us`` or ``rconv_s``), or None."""
    return next((k for k in ("rconv_ms", "rconv_us", "rconv_s") if k in row), None)


def compare(path_a: str, path_b: str) -> None:
    """Print, per row of two runs (matched by group and case): rconv's time in each, B's
    speed-up over A (A time / B time, > 1: B faster) and each reference ratio in A -> B."""
    runs = []
    for path in (path_a, path_b):
        with open(path) as f:
            runs.append(json.load(f))
    for tag, path, run in zip("AB", (path_a, path_b), runs):
        cpu = run.get("cpu", {}).get("model", "?")
        simd = run.get("rconv_simd", "?")
        quick = " (quick)" if run.get("quick") else ""
        print(
            f"{tag}: {path}: {cpu}, rconv simd {simd}, {run.get('threads')} thread(s), "
            f"{run.get('date')}{quick}"
        )
    index = [{(r.get("group"), r.get("case")): r for r in run["rows"]} for run in runs]
    keys = list(index[1]) + [k for k in index[0] if k not in index[1]]
    print(f"\n{'group / case':56} {'A':>9} {'B':>9} {'B speed-up':>10}  reference ratios A -> B")
    group = None
    for key in keys:
        ra, rb = index[0].get(key), index[1].get(key)
        if key[0] != group:
            group = key[0]
            print(f"[{group}]")
        case = str(key[1])[:54]
        if ra is None or rb is None:
            print(f"  {case:54} {'only in ' + ('B' if ra is None else 'A'):>30}")
            continue
        ka, kb = _time_key(ra), _time_key(rb)
        cells = ["-", "-", "-"]
        if ka is not None and ka == kb:
            unit = ka.split("_")[1]
            ta, tb = ra[ka], rb[kb]
            cells = [f"{_num(ta)}{unit}", f"{_num(tb)}{unit}", f"{ta / tb:.2f}x" if tb else "-"]
        refs = sorted(
            k
            for k in set(ra) & set(rb)
            if k.startswith("vs_") and not k.endswith("_range") and isinstance(ra[k], float)
        )
        ratio = "  ".join(f"{k[3:]} {_num(ra[k])} -> {_num(rb[k])}" for k in refs)
        print(f"  {case:54} {cells[0]:>9} {cells[1]:>9} {cells[2]:>10}  {ratio}")


def main() -> None:
    if ARGS.compare:
        compare(*ARGS.compare)
        return
    cpu, simd = cpu_info(), rconv_simd()
    date = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    vers = versions()
    libs = ", ".join(f"{k} {v}" for k, v in vers.items() if v and k not in ("dask", "python"))
    print(
        f"{cpu['model']} [{' '.join(cpu['simd_flags'])}] | rconv simd: {simd} | "
        f"{THREADS} thread(s) for every library | {libs} | {date}"
    )
    print(
        f"timing: alternating blocks, {ROUNDS} rounds x (20 ms pause, 1 warm-up + {CALLS} "
        "calls) per library, block median; ratio = reference / rconv (> 1: rconv faster), "
        "median of the per-round ratios (min-max)"
    )
    rows: list = []
    only = ARGS.only
    if only in (None, "signal"):
        bench_signal(rows, ARGS.quick)
    if only in (None, "beyond"):
        bench_beyond(rows, ARGS.quick)
    if only in (None, "fft"):
        bench_fft(rows, ARGS.quick)
        if ARGS.huge:
            bench_huge(rows)
    if only in (None, "ndimage"):
        bench_ndimage(rows, ARGS.quick)
    if only in (None, "dask"):
        bench_dask(rows, ARGS.quick)
    if only in (None, "nn", "one_thread", "grid", "overhead", "train"):
        _import_torch()
        if torch is None:
            print("\n(torch is not importable: the torch rows are skipped)")
    if only in (None, "nn"):
        bench_nn(rows, ARGS.quick)
    if only in (None, "nn", "one_thread"):
        bench_one_thread(rows, ARGS.quick)
    if only == "grid":  # 13-15 min: its own run (notebooks/05_grid_run.json)
        bench_conv_grid(rows, ARGS.quick)
    if only in (None, "overhead"):
        bench_overhead(rows, ARGS.quick)
    if only in (None, "train"):
        bench_train(rows, ARGS.quick)
    out = {
        "date": date,
        "cpu": cpu,
        "rconv_simd": simd,
        "threads": THREADS,
        "thread_state": thread_state(),
        "versions": versions(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "quick": ARGS.quick,
        "only": only,
        "timing": {
            "method": "alternating blocks (library order rotating per round)",
            "rounds": ROUNDS,
            "calls_per_block": CALLS,
            "warmup_calls": 1,
            "block_value": "median of the block's timed calls (perf_counter)",
            "library_time": "median over rounds of the block values",
            "ratio": "median over rounds of reference / rconv (> 1: rconv faster), "
            "with [min, max] in <key>_range",
            "rows": "per_round_<unit> and blocks give each row's raw rounds and block shape",
        },
        "rows": rows,
    }
    with open(ARGS.json, "w") as f:
        json.dump(out, f, indent=1)
    print(f"\nwrote {ARGS.json}")


if __name__ == "__main__":
    main()
