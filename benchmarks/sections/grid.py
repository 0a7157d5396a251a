"""grid: the conv grid of issue 26, conv2d forward and backward against torch, with rconv's
share of its FMA peak, thread scaling and avx512/avx2 ratio. Runs only when named."""

from __future__ import annotations

import os
import statistics
import time
from functools import partial

import numpy as np

import rconv
from benchmarks.harness import (
    RUN,
    add_stat,
    emit,
    lib,
    rconv_simd,
    rconv_table,
    report,
    time_blocks,
    versus,
)
from benchmarks.sections.nn import torch_conv_backward

# the (in, out) channel pairs, the square ones for depthwise and groups 4
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


def run(rows: list, quick: bool) -> None:
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
    threads, F = RUN.threads, lib.F
    t_start = time.perf_counter()
    set_level = getattr(rconv._rconv, "_set_simd_level", None)
    top = rconv_simd()
    avx2 = set_level is not None and "avx512" in top
    peak_start = _fma_peak()
    peaks = f"{peak_start:.0f} GFLOP/s" if peak_start else "unavailable (no rconv._rconv.fma_peak)"
    load_start = os.getloadavg()[0]
    print(
        f"\ngrid: rconv's float32 FMA peak at {top}, {threads} thread(s): {peaks} "
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
        f"peak above; Nthr/1 = 1-thread / {threads}-thread time and 512/avx2 = avx2 / avx512 "
        f"time, rconv's, on cells >= {GRID_MIN_S * 1e3:.0f} ms"
    )

    def at(n: int, level):
        """The setup putting rconv on `n` threads at `level` (None: its own level)."""

        def setup():
            rconv.set_num_threads(n)
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
            if lib.torch is not None:
                xt, wt, bt, dyt = (lib.torch.from_numpy(a) for a in (x, w, b, dy))
                tfns = {
                    "fwd": partial(F.conv2d, xt, wt, bt, s, p, 1, g),
                    "bwd": torch_conv_backward(dyt, xt, wt, s, p, g),
                }
            for kind, f, rfn in passes:
                fns = {"rconv": rfn}
                if kind in tfns:
                    fns["torch"] = tfns[kind]
                probe = {}
                for library, fn in fns.items():
                    t0 = time.perf_counter()
                    fn()  # the first call (torch builds its oneDNN primitive)
                    probe[library] = time.perf_counter() - t0
                    if probe[library] < 0.05:
                        t0 = time.perf_counter()
                        fn()
                        probe[library] = time.perf_counter() - t0
                # rconv at 1 thread and at avx2: more libraries of the same blocks, each
                # block's setup putting rconv in its state (a probe near 1 ms may qualify)
                if probe["rconv"] >= 0.8 * GRID_MIN_S:
                    if threads > 1:
                        fns["rconv_1thread"] = rfn
                        probe["rconv_1thread"] = probe["rconv"] * threads
                    if avx2:
                        fns["rconv_avx2"] = rfn
                        probe["rconv_avx2"] = probe["rconv"] * 1.5
                setup = {library: at(threads, None) for library in fns}
                setup["rconv_1thread"] = at(1, None)
                setup["rconv_avx2"] = at(threads, "avx2")
                t = time_blocks(fns, setup=setup, **_grid_plan(probe, quick))
                at(threads, None)()
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
                emit(rows, GRID_CONV_TABLE, row)
    finally:
        at(threads, None)()
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
            "threads": threads,
            "load_average_start_end": [load_start, os.getloadavg()[0]],
            "seconds": time.perf_counter() - t_start,
        }
    )
    _grid_summary(rows, out, peak)
