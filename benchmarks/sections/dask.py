"""dask: rconv.dask on the threaded scheduler against the same call in memory."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import (
    RUN,
    add_stat,
    emit,
    rconv_table,
    rconv_threads,
    report,
    time_blocks,
    versus,
)


def run(rows: list, quick: bool) -> None:
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
    threads = RUN.threads
    configs = ((threads, 1), (1, threads))  # tasks x rconv threads per task
    for name, in_memory, lazy in cases:
        fns = {"in_memory": in_memory}
        setup = {"in_memory": rconv_threads(threads)}
        for workers, inner in configs:
            fns[f"{workers}x{inner}"] = partial(
                lazy.compute, scheduler="threads", num_workers=workers
            )
            setup[f"{workers}x{inner}"] = rconv_threads(inner)
        t = time_blocks(fns, calls=2 if quick else RUN.calls, setup=setup, baseline=None)
        rconv.set_num_threads(threads)
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
            emit(rows, table, row)
    _ndimage(rows, quick)


def _ndimage(rows: list, quick: bool) -> None:
    """rconv.dask.ndimage against dask-image's ndfilters (scipy.ndimage in each chunk) and
    against rconv.ndimage in memory, on a float32 volume (same results: byte for byte against
    the in-memory call, which equals scipy's)."""
    import dask

    import rconv.dask.ndimage as dnd
    import rconv.ndimage as nd

    try:
        import dask_image.ndfilters as dif
    except ImportError:
        dif = None
        print("\n(dask-image is not importable: no dask-image column)")
    cols = versus("in_memory", "in-mem ms", "vs mem")
    if dif is not None:
        cols += versus("dask_image", "dask-image ms", "vs dask-image", width=13)
    table = rconv_table(52, *cols)
    table.header(
        "dask ndimage: rconv.dask.ndimage (threads scheduler, 2 tasks x 1 rconv thread) "
        "against rconv.ndimage in memory and dask-image (2 tasks of scipy.ndimage)"
    )
    shape, chunks = ((64, 256, 256), (32, 128, 128)) if quick else ((128, 512, 512), (32, 256, 256))
    v = np.random.default_rng(4).random(shape, dtype=np.float32)
    dv = dask.array.from_array(v, chunks=chunks)
    threads = RUN.threads
    cases = [
        ("gaussian_filter sigma=2", lambda m, a: m.gaussian_filter(a, 2.0)),
        ("uniform_filter 5", lambda m, a: m.uniform_filter(a, 5)),
        ("sobel axis 0", lambda m, a: m.sobel(a, axis=0)),
    ]
    for name, call in cases:
        lazy = call(dnd, dv)
        fns = {
            "rconv": partial(lazy.compute, scheduler="threads", num_workers=threads),
            "in_memory": partial(call, nd, v),
        }
        setup = {"rconv": rconv_threads(1), "in_memory": rconv_threads(threads)}
        if dif is not None:
            ref = call(dif, dv)
            fns["dask_image"] = partial(ref.compute, scheduler="threads", num_workers=threads)
        t = time_blocks(fns, calls=1 if quick else 2, setup=setup)
        rconv.set_num_threads(threads)
        case = f"{name} {shape} f32 /{chunks}"
        emit(rows, table, report({"group": "dask", "case": case}, t))
