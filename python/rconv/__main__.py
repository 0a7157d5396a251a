"""`python -m rconv`: a short demo of rconv against the d2l loop and scipy.signal;
`python -m rconv --info`: how this rconv was built and what it runs on (`show_config`)."""

from __future__ import annotations

import sys
import time

import numpy as np

import rconv


def _best(f, reps: int = 3) -> float:
    f()
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def _d2l_corr2d(x, k):
    """d2l's ``corr2d``: one window product and sum per output element, in Python."""
    h, w = k.shape
    y = np.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i, j in np.ndindex(*y.shape):
        y[i, j] = (x[i : i + h, j : j + w] * k).sum()
    return y


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--info"]:
        rconv.show_config()
        return
    if args:
        sys.exit(f"usage: python -m rconv [--info] (got {' '.join(args)})")
    print(f"rconv {rconv.__version__} on {rconv.get_num_threads()} thread(s)\n")

    x = np.arange(9.0).reshape(3, 3)
    k = np.array([[0.0, 1.0], [2.0, 3.0]])
    print("d2l: corr2d(arange(9.0).reshape(3, 3), [[0.0, 1.0], [2.0, 3.0]])")
    print(rconv.corr2d(x, k), "\n")

    a = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
    b = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    print("scipy example: convolve2d(A, B, 'valid') (integers in, integers out)")
    print(rconv.convolve2d(a, b, "valid"), "\n")

    rng = np.random.default_rng(0)
    img = rng.standard_normal((256, 256))
    ker = rng.standard_normal((3, 3))
    t_loop = _best(lambda: _d2l_corr2d(img, ker), reps=1)
    t_rconv = _best(lambda: rconv.corr2d(img, ker))
    print(
        f"256x256 image, 3x3 kernel: d2l loop {t_loop * 1e3:.1f} ms, "
        f"rconv.corr2d {t_rconv * 1e3:.3f} ms ({t_loop / t_rconv:,.0f}x)"
    )

    img = rng.standard_normal((2048, 2048))
    ker = rng.standard_normal((7, 7))
    t_rconv = _best(lambda: rconv.correlate2d(img, ker, "same"))
    try:
        import scipy.signal as ss
    except ImportError:
        print("scipy is not installed: `pip install scipy` to time rconv against it")
        return
    t_scipy = _best(lambda: ss.correlate2d(img, ker, "same"), reps=1)
    same = np.allclose(rconv.correlate2d(img, ker, "same"), ss.correlate2d(img, ker, "same"))
    print(
        f"2048x2048 float64 image, 7x7 kernel, 'same': scipy.signal.correlate2d "
        f"{t_scipy * 1e3:.0f} ms, rconv {t_rconv * 1e3:.1f} ms ({t_scipy / t_rconv:.0f}x), "
        f"same values: {same}"
    )


if __name__ == "__main__":
    main()
