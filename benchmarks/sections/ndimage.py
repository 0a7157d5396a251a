"""ndimage: rconv.ndimage (byte for byte scipy.ndimage's results) against scipy.ndimage and
OpenCV's nearest filter with the matching border (ndimage's 'reflect' is BORDER_REFLECT):
GaussianBlur, blur, filter2D, Sobel. Fresh outputs in every library, as users call them."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv.ndimage as rn
from benchmarks.harness import emit, lib, rconv_table, timed_row, versus


def run(rows: list, quick: bool) -> None:
    import scipy.ndimage as sn

    cv2 = lib.cv2
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
            emit(rows, table, timed_row("ndimage", case, fns, calls={"scipy": 1}))
    n = 16 if quick else 64
    v = rng.random((n, 256, 256)).astype(np.float32)
    fns = {
        "rconv": partial(rn.gaussian_filter, v, 1.0),
        "scipy": partial(sn.gaussian_filter, v, 1.0),
    }
    case = f"gaussian_filter sigma=1 ({n},256,256) float32"
    emit(rows, table, timed_row("ndimage", case, fns, calls={"scipy": 1}))
