"""method='separable': two 1-D passes for kernels of rank 1, against the direct sums (exact for
integers, to rounding for floats and complex), 'auto''s choice, NaN/Inf, the 'valid' swap,
threads, rconv.dask, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import rconv
from conftest import COMPLEX_DTYPES, FLOAT_DTYPES, INT_DTYPES, seed_for

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "symm", "wrap"]
FUNCS = ["correlate2d", "convolve2d"]


def rank1(rng, kh, kw, dtype):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        lo = -3 if dt.kind == "i" else 0
        u, v = rng.integers(lo, 4, kh), rng.integers(lo, 4, kw)
        return np.outer(u, v).astype(dtype)
    u, v = rng.standard_normal(kh), rng.standard_normal(kw)
    if dt.kind == "c":
        u = u + 1j * rng.standard_normal(kh)
        v = v + 1j * rng.standard_normal(kw)
    return np.outer(u, v).astype(dtype)


def image(rng, shape, dtype):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        return rng.integers(0 if dt.kind == "u" else -50, 100, shape).astype(dtype)
    x = rng.standard_normal(shape)
    if dt.kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def bound(x, k, kh, kw):
    """The documented error bound: (kh + kw + 8) eps max|k| times the largest window sum of
    |x| (bounded here by the sum of all |x| in a window-sized neighbourhood: all of them)."""
    eps = np.finfo(np.result_type(x, k)).eps
    return (kh + kw + 8) * eps * np.abs(k).max() * np.abs(x).max() * kh * kw


@pytest.mark.parametrize(
    "dtype", INT_DTYPES + FLOAT_DTYPES + COMPLEX_DTYPES, ids=lambda d: np.dtype(d).name
)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", FUNCS)
def test_separable_matches_direct(func, mode, boundary, dtype):
    rng = np.random.default_rng(seed_for("sep", func, mode, boundary, np.dtype(dtype).name))
    f = getattr(rconv, func)
    for s1, (kh, kw) in [((40, 37), (5, 7)), ((9, 70), (3, 1)), ((6, 5), (9, 8)), ((3, 4), (1, 6))]:
        if mode == "valid" and not all(a >= b for a, b in zip(s1, (kh, kw))):
            continue  # the swap slides in1 instead: test_valid_swap_factors_the_kernel_slid
        x = image(rng, s1, dtype)
        k = rank1(rng, kh, kw, dtype)
        fill = 3 if np.dtype(dtype).kind != "c" else 1 - 2j
        want = f(x, k, mode, boundary, fill, method="direct")
        got = f(x, k, mode, boundary, fill, method="separable")
        assert got.dtype == want.dtype and got.shape == want.shape
        if np.dtype(dtype).kind in "iu":
            np.testing.assert_array_equal(got, want)  # the same bits: a ring
        else:
            err = np.abs(got - want).max() if want.size else 0.0
            xf = np.append(x.ravel(), fill).astype(x.dtype)
            assert err <= bound(xf, k, kh, kw), (err, s1, kh, kw)


@pytest.mark.parametrize("dtype", INT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_integers_wrap_bit_for_bit(dtype):
    # the factors share a gcd (the row 2, 4, 0, 6 = 2 * (1, 2, 0, 3)), and the image's large
    # values make every sum overflow and wrap
    info = np.iinfo(dtype)
    rng = np.random.default_rng(seed_for("wrap", np.dtype(dtype).name))
    signed = info.min < 0
    u = np.array([3, -2, 5] if signed else [3, 2, 5])
    v = np.array([2, 4, 0, 6])
    k = np.outer(u, v).astype(dtype)
    x = rng.integers(info.min // 2, info.max // 2, (33, 29), dtype=dtype, endpoint=True)
    for func in FUNCS:
        for boundary in BOUNDARIES:
            want = getattr(rconv, func)(x, k, "same", boundary, 1, method="direct")
            got = getattr(rconv, func)(x, k, "same", boundary, 1, method="separable")
            np.testing.assert_array_equal(got, want)
    big = np.abs(x.astype(np.float64)).max() * np.abs(k.astype(np.float64)).sum()
    assert big > info.max  # the sums did overflow


@given(
    u=st.lists(st.integers(-20, 20), min_size=1, max_size=6),
    v=st.lists(st.integers(-20, 20), min_size=1, max_size=6),
    dtype=st.sampled_from(INT_DTYPES),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_integer_rank1_is_exact(u, v, dtype, mode, boundary, seed):
    rng = np.random.default_rng(seed)
    exact = np.outer(u, v)
    k = exact.astype(dtype)
    # the stored kernel must be that outer product over the integers (no wrap in the cast)
    assume(np.array_equal(k.astype(np.int64), exact))
    x = image(rng, (int(rng.integers(len(u), 20)), int(rng.integers(len(v), 20))), dtype)
    want = rconv.correlate2d(x, k, mode, boundary, 7, method="direct")
    np.testing.assert_array_equal(
        rconv.correlate2d(x, k, mode, boundary, 7, method="separable"), want
    )
    np.testing.assert_array_equal(rconv.correlate2d(x, k, mode, boundary, 7), want)


@given(
    kh=st.integers(1, 9),
    kw=st.integers(1, 9),
    h=st.integers(1, 30),
    w=st.integers(1, 30),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(BOUNDARIES),
    func=st.sampled_from(FUNCS),
    dtype=st.sampled_from(FLOAT_DTYPES),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_float_rank1_matches_direct(kh, kw, h, w, mode, boundary, func, dtype, seed):
    if mode == "valid":  # no swap: the kernel slid is the rank-1 one
        kh, kw = min(kh, h), min(kw, w)
    rng = np.random.default_rng(seed)
    x, k = image(rng, (h, w), dtype), rank1(rng, kh, kw, dtype)
    f = getattr(rconv, func)
    want = f(x, k, mode, boundary, 0.5, method="direct")
    got = f(x, k, mode, boundary, 0.5, method="separable")
    if want.size:
        assert np.abs(got - want).max() <= bound(x, k, kh, kw)


def test_not_rank_one_is_a_value_error():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((20, 20))
    k = np.outer(rng.standard_normal(5), rng.standard_normal(5))
    k[2, 3] += 1e-3 * np.abs(k).max()
    for func in FUNCS:
        with pytest.raises(
            ValueError, match=f"{func}: method='separable' needs a kernel of rank 1"
        ):
            getattr(rconv, func)(x, k, method="separable")
    with pytest.raises(ValueError, match="rank 1"):
        rconv.correlate2d(x, np.eye(3, dtype=int), method="separable")
    with pytest.raises(ValueError, match="rank 1"):
        rconv.correlate2d(x, np.array([[1.0, np.nan], [1.0, 1.0]]), method="separable")
    with pytest.raises(ValueError, match="method must be 'auto', 'direct', 'fft' or 'separable'"):
        rconv.correlate2d(x, k, method="sep")


def test_auto_uses_it_when_faster_and_stays_direct_for_nan_and_inf():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((600, 500)).astype(np.float32)
    g = np.exp(-(np.linspace(-2, 2, 15) ** 2)).astype(np.float32)
    k = np.outer(g, g)
    assert rconv.choose_conv_method(x, k, "same") == "separable"
    np.testing.assert_array_equal(
        rconv.correlate2d(x, k, "same"), rconv.correlate2d(x, k, "same", method="separable")
    )
    assert rconv.choose_conv_method(x, np.outer(g[:2], g[:2]), "same") == "direct"  # too small
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[100, 200] = bad
        assert rconv.choose_conv_method(y, k, "same") == "direct"
        np.testing.assert_array_equal(
            rconv.correlate2d(y, k, "same"), rconv.correlate2d(y, k, "same", method="direct")
        )
    # a non-finite fill value read by the outputs
    np.testing.assert_array_equal(
        rconv.correlate2d(x, k, "same", fillvalue=np.nan),
        rconv.correlate2d(x, k, "same", fillvalue=np.nan, method="direct"),
    )
    # finite inputs whose outputs overflow keep the separable result
    big = np.full((64, 64), 3e38, np.float32)
    np.testing.assert_array_equal(
        rconv.correlate2d(big, k, "same"), rconv.correlate2d(big, k, "same", method="separable")
    )


def test_valid_swap_factors_the_kernel_slid():
    rng = np.random.default_rng(3)
    small = rank1(rng, 4, 5, np.float64)  # in1, slid over the larger in2 after the swap
    large = rng.standard_normal((30, 40))
    for func in FUNCS:
        f = getattr(rconv, func)
        want = f(small, large, "valid", method="direct")
        np.testing.assert_allclose(
            f(small, large, "valid", method="separable"), want, rtol=1e-12, atol=1e-12
        )
        with pytest.raises(ValueError, match="rank 1"):
            f(large, small + rng.standard_normal((4, 5)), "valid", method="separable")


def test_complex_conjugation_of_both_factors():
    rng = np.random.default_rng(4)
    x = image(rng, (25, 31), np.complex128)
    k = rank1(rng, 6, 4, np.complex128)
    for mode in MODES:
        np.testing.assert_allclose(
            rconv.correlate2d(x, k, mode, method="separable"),
            rconv.correlate2d(x, k, mode, method="direct"),
            rtol=1e-12,
            atol=1e-12,
        )


def test_threads_and_stacks(threads):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 300, 257))
    k = rank1(rng, 9, 7, np.float64)
    results = []
    for n in (1, 2):
        threads(n)
        results.append(rconv.correlate2d(x, k, "same", "wrap", method="separable", axes=(1, 2)))
    np.testing.assert_array_equal(results[0], results[1])
    for i in range(3):
        np.testing.assert_array_equal(
            results[0][i], rconv.correlate2d(x[i], k, "same", "wrap", method="separable")
        )


@pytest.mark.parametrize("method", ["separable", "auto"])
def test_dask_accepts_separable(method):
    da = pytest.importorskip("dask.array", reason="install the 'dask' extra")
    import rconv.dask

    rng = np.random.default_rng(6)
    img = rng.standard_normal((200, 180))
    k = rank1(rng, 15, 15, np.float64)
    assert rconv.choose_conv_method(img, k, "same") == "separable"
    got = rconv.dask.correlate2d(
        da.from_array(img, chunks=(70, 64)), k, "same", "symm", method=method
    ).compute(scheduler="threads")
    want = rconv.correlate2d(img, k, "same", "symm", method=method)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    img[50, 60] = np.nan  # 'auto' blocks holding NaN stay direct, as the in-memory call
    got = rconv.dask.correlate2d(
        da.from_array(img, chunks=(70, 64)), k, "same", method="auto"
    ).compute(scheduler="threads")
    want = rconv.correlate2d(img, k, "same", method="direct")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
