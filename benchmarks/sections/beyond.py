"""beyond: what scipy lacks: a stack of images in one call (``axes=``) against a Python loop
of cv2.filter2D, and a separable Gaussian (``method='auto'``) against cv2.sepFilter2D and
rconv's own direct method."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import emit, lib, rconv_table, timed_row, versus


def run(rows: list, quick: bool) -> None:
    cv2 = lib.cv2
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
    emit(rows, table, timed_row("beyond", case, fns, ratios=("ref",) if cv2 else ()))
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
        emit(rows, table, timed_row("beyond", case, fns, ratios=ratios))
