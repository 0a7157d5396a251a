"""What every section of the benchmarks shares: the run's thread count and libraries, the timing
(:func:`time_blocks`), the rows and their tables, the run's description, the JSON file and
``--compare``.

Importing this module imports neither NumPy nor rconv: :func:`setup` sets the thread variables
first, then imports them.
"""

from __future__ import annotations

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
from typing import Any, Optional

#: The thread variables :func:`setup` sets before NumPy (and so OpenBLAS) is loaded;
#: OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left alone.
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# the pause before each block, so that the other library's threads park first
BLOCK_PAUSE_S = 0.02


class Run:
    """The run's settings: the thread count of every library, and the rounds per row and
    timed calls per block (full run, ``--quick``). :func:`setup` sets them."""

    threads = 2
    quick = False
    rounds = 5
    calls = 3


class Libs:
    """The optional libraries of the run, None where not importable: :func:`setup` imports
    scipy (``ss``: scipy.signal), OpenCV and threadpoolctl, :func:`import_torch` torch (``F``:
    torch.nn.functional)."""

    scipy: Any = None
    ss: Any = None
    cv2: Any = None
    threadpoolctl: Any = None
    torch: Any = None
    F: Any = None


RUN = Run()
lib = Libs()


def setup(threads: int, quick: bool) -> None:
    """Put the run on `threads` threads: the thread variables, then NumPy and rconv, OpenCV
    and the BLAS/OpenMP pools threadpoolctl sees. Call it before anything imports NumPy."""
    RUN.threads, RUN.quick = threads, quick
    RUN.rounds, RUN.calls = (3, 3) if quick else (5, 3)
    for var in THREAD_VARS:
        os.environ[var] = str(threads)
    import rconv

    rconv.set_num_threads(threads)
    try:
        import scipy
        import scipy.signal as ss

        lib.scipy, lib.ss = scipy, ss
    except ImportError:  # pragma: no cover - bench extra not installed
        pass
    try:
        import cv2

        cv2.setNumThreads(threads)
        lib.cv2 = cv2
    except ImportError:  # pragma: no cover
        pass
    try:
        import threadpoolctl

        lib.threadpoolctl = threadpoolctl
    except ImportError:  # pragma: no cover
        pass
    limit_pools()


def limit_pools(n: Optional[int] = None) -> None:
    """Cap every BLAS/OpenMP pool threadpoolctl sees (NumPy's OpenBLAS, torch's OpenMP) at `n`
    threads (default: the run's)."""
    if lib.threadpoolctl is not None:
        lib.threadpoolctl.threadpool_limits(limits=n or RUN.threads)


def import_torch() -> bool:
    """Import torch (on the run's threads, gradients off) if it is importable, once; whether it
    is. Only the torch sections call it: its import (OpenMP/oneDNN thread pools) slowed the
    memory-bound float64 signal cases by up to 2x when it happened first."""
    if lib.torch is None:
        try:
            import torch
            import torch.nn.functional as F
        except ImportError:  # pragma: no cover - torch is optional and large
            return False
        torch.set_num_threads(RUN.threads)
        torch.set_grad_enabled(False)  # inference timings; backward rows call aten ops directly
        lib.torch, lib.F = torch, F
        limit_pools()
    return True


def rconv_threads(n: int):
    """A call putting rconv on `n` threads (a block's setup)."""
    import rconv

    return partial(rconv.set_num_threads, n)


def all_threads(n: int) -> None:
    """Every library on `n` threads: rconv, torch, OpenCV and the BLAS/OpenMP pools."""
    import rconv

    rconv.set_num_threads(n)
    if lib.torch is not None:
        lib.torch.set_num_threads(n)
    if lib.cv2 is not None:
        lib.cv2.setNumThreads(n)
    limit_pools(n)


# --------------------------------------------------------------------------------------------
# the timing


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
    rounds: Optional[int] = None,
    calls=None,
    warmup=1,
    number: int = 1,
    setup=None,
    baseline="rconv",
) -> Timing:
    """Time the callables of `fns` ({library: f}) in alternating blocks.

    Each of `rounds` rounds (default: the run's) runs one block per library (the order rotates
    by one library per round): ``setup[lib]()`` if given, a pause of ``BLOCK_PAUSE_S`` (the
    previous library's threads park), `warmup` untimed calls, then `calls` timed samples of
    `number` consecutive calls each; the block keeps the median sample divided by `number`.
    `calls` and `warmup` are an int or a {library: int} mapping (missing libraries: the run's
    calls, and 1 warm-up call). The garbage collector is off while a block runs.
    """
    rounds = RUN.rounds if rounds is None else rounds
    calls_of = _per_lib(RUN.calls if calls is None else calls, fns, RUN.calls)
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


def fresh_process(body: str) -> list:
    """Run `body` in a fresh Python process and return the words it prints. The process has
    imported time, numpy as np and rconv (on the run's threads), has the repository on its
    path (``from benchmarks import nets``), and has ``hwm()``: its peak resident memory so far
    in bytes (VmHWM: unlike ru_maxrss it is not inherited from the parent across fork/exec)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = f"""
import sys, time, numpy as np, rconv
sys.path.insert(0, {root!r})
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
rconv.set_num_threads({RUN.threads})
{body}"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return res.stdout.split()


# --------------------------------------------------------------------------------------------
# rows


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


def timed_row(group: str, case: str, fns: dict, ratios=None, **timing) -> dict:
    """The row of `group` and `case`: `fns` timed by :func:`time_blocks` (keywords `timing`)
    and reported (`ratios` as in :func:`report`)."""
    return report({"group": group, "case": case}, time_blocks(fns, **timing), ratios=ratios)


def num(v: float) -> str:
    """`v` with 3 significant figures (at least the units)."""
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
                cell = f"{num(v)} ({num(lo)}-{num(hi)})"
            elif kind == "f":
                cell = num(v)
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


def emit(rows: list, table: Table, row: dict) -> None:
    """Keep `row` in the run's `rows` and print it in `table`."""
    rows.append(row)
    table.row(row)


# --------------------------------------------------------------------------------------------
# the run's description and its JSON file


def rconv_simd() -> str:
    """The SIMD level of rconv's own kernels now."""
    from rconv import _info

    return _info.config()["rconv_simd"]


def versions() -> dict:
    """The versions of Python, rconv, NumPy and the reference libraries (torch, dask and
    threadpoolctl from their installed distributions where not imported)."""
    import numpy as np

    import rconv
    from rconv import _info

    optional = _info.config()["optional"]
    return {
        "python": sys.version.split()[0],
        "rconv": rconv.__version__,
        "numpy": np.__version__,
        "scipy": lib.scipy.__version__ if lib.scipy is not None else None,
        "cv2": lib.cv2.__version__ if lib.cv2 is not None else None,
        # not imported before the nn/overhead sections: the installed distribution
        "torch": lib.torch.__version__ if lib.torch is not None else optional["torch"],
        "dask": optional["dask"],
        "threadpoolctl": optional["threadpoolctl"],
    }


def thread_state() -> dict:
    """The thread count every library reports, and the pools threadpoolctl finds."""
    import rconv

    state = {
        "rconv": rconv.get_num_threads(),
        "cv2": lib.cv2.getNumThreads() if lib.cv2 is not None else None,
        "torch": lib.torch.get_num_threads() if lib.torch is not None else None,
        "env": {
            v: os.environ[v]
            for v in (*THREAD_VARS, "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "RCONV_NUM_THREADS")
            if v in os.environ
        },
    }
    if lib.threadpoolctl is not None:
        state["pools"] = [
            {
                k: p.get(k)
                for k in ("internal_api", "version", "num_threads", "prefix", "architecture")
            }
            for p in lib.threadpoolctl.threadpool_info()
        ]
    return state


def start() -> dict:
    """Print the run's description (the CPU, from ``rconv._info``; rconv's SIMD level, the
    threads, the libraries, the timing) and return its date, CPU and SIMD level."""
    from rconv import _info

    head = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _info.cpu_description(),
        "rconv_simd": rconv_simd(),
    }
    cpu = head["cpu"]
    libs = ", ".join(f"{k} {v}" for k, v in versions().items() if v and k not in ("dask", "python"))
    print(
        f"{cpu['model']} [{' '.join(cpu['simd_flags'])}] | rconv simd: {head['rconv_simd']} | "
        f"{RUN.threads} thread(s) for every library | {libs} | {head['date']}"
    )
    print(
        f"timing: alternating blocks, {RUN.rounds} rounds x (20 ms pause, 1 warm-up + "
        f"{RUN.calls} calls) per library, block median; ratio = reference / rconv (> 1: rconv "
        "faster), median of the per-round ratios (min-max)"
    )
    return head


def finish(path: str, head: dict, rows: list, only: Optional[str]) -> dict:
    """Write the run (`head` from :func:`start`, the `rows` of its sections) to `path` as JSON,
    the file notebook 05 and ``--compare`` read, and return it."""
    out = {
        **head,
        "threads": RUN.threads,
        "thread_state": thread_state(),
        "versions": versions(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "quick": RUN.quick,
        "only": only,
        "timing": {
            "method": "alternating blocks (library order rotating per round)",
            "rounds": RUN.rounds,
            "calls_per_block": RUN.calls,
            "warmup_calls": 1,
            "block_value": "median of the block's timed calls (perf_counter)",
            "library_time": "median over rounds of the block values",
            "ratio": "median over rounds of reference / rconv (> 1: rconv faster), "
            "with [min, max] in <key>_range",
            "rows": "per_round_<unit> and blocks give each row's raw rounds and block shape",
        },
        "rows": rows,
    }
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"\nwrote {path}")
    return out


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
            cells = [f"{num(ta)}{unit}", f"{num(tb)}{unit}", f"{ta / tb:.2f}x" if tb else "-"]
        refs = sorted(
            k
            for k in set(ra) & set(rb)
            if k.startswith("vs_") and not k.endswith("_range") and isinstance(ra[k], float)
        )
        ratio = "  ".join(f"{k[3:]} {num(ra[k])} -> {num(rb[k])}" for k in refs)
        print(f"  {case:54} {cells[0]:>9} {cells[1]:>9} {cells[2]:>10}  {ratio}")
