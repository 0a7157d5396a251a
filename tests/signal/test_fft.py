"""method='fft' and method='auto' of correlate2d/convolve2d, and choose_conv_method."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import FUNCS, MODES, mode_shapes, random_pair, signal_cases

BOUNDARIES = ["fill", "symm", "wrap"]


def fft_bound(a, b, func, mode, boundary, fill, dtype):
    """Documented error bound of method='fft': a small multiple of the dtype's epsilon (times
    log2 of the transform size) times the largest sum of absolute products (the direct
    result on |a| and |b|): FFT rounding errors spread over the whole output."""
    absum = getattr(rconv, func)(
        np.abs(a).astype(np.float64),
        np.abs(b).astype(np.float64),
        mode,
        boundary,
        abs(fill),
        method="direct",
    )
    eps = np.finfo(np.dtype(dtype)).eps
    n = max(8, a.shape[0] + b.shape[0]) * max(8, a.shape[1] + b.shape[1])
    return 4 * eps * np.log2(n) * (absum.max(initial=0) + 1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", FUNCS)
def test_fft_agrees_with_direct(func, mode, boundary, dtype):
    rng = np.random.default_rng(0)
    f = getattr(rconv, func)
    pairs = [((40, 53), (7, 6)), ((9, 70), (4, 5)), ((5, 6), (9, 11)), ((31, 30), (31, 30))]
    for s1, s2 in mode_shapes(mode, pairs):
        a, b = random_pair(rng, s1, s2, dtype)
        fill = 0.5
        direct = f(a, b, mode, boundary, fill, method="direct")
        fft = f(a, b, mode, boundary, fill, method="fft")
        assert fft.shape == direct.shape and fft.dtype == direct.dtype
        bound = fft_bound(a, b, func, mode, boundary, fill, dtype)
        assert (np.abs(fft - direct) <= bound).all(), np.abs(fft - direct).max()


@given(
    **signal_cases((1, 40), (1, 20), BOUNDARIES),
    dtype=st.sampled_from([np.float32, np.float64, np.complex128]),
)
def test_property_fft_matches_direct(s1, s2, mode, boundary, func, dtype, seed):
    a, b = random_pair(np.random.default_rng(seed), s1, s2, dtype)
    f = getattr(rconv, func)
    try:
        direct = f(a, b, mode, boundary, 2.0, method="direct")
    except ValueError:
        with pytest.raises(ValueError):
            f(a, b, mode, boundary, 2.0, method="fft")
        return
    fft = f(a, b, mode, boundary, 2.0, method="fft")
    assert (np.abs(fft - direct) <= fft_bound(a, b, func, mode, boundary, 2.0, dtype)).all()


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_integer_fft_rounds_back_exactly(dtype):
    a, b = random_pair(np.random.default_rng(1), (37, 41), (6, 5), dtype)
    for func in FUNCS:
        for mode in MODES:
            direct = getattr(rconv, func)(a, b, mode, method="direct")
            fft = getattr(rconv, func)(a, b, mode, method="fft")
            assert fft.dtype == np.dtype(dtype)
            np.testing.assert_array_equal(fft, direct)  # wraps like the direct sums


def test_integer_fft_refused_when_inexact():
    a = np.full((64, 64), 2**30, np.int64)
    b = np.full((8, 8), 2**20, np.int64)
    with pytest.raises(ValueError, match="correlate2d: method='fft' with integer inputs"):
        rconv.correlate2d(a, b, method="fft")
    assert rconv.correlate2d(a, b, method="auto").dtype == np.int64  # auto stays direct


def test_auto_stays_direct_with_nan_and_inf():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 300))
    b = rng.standard_normal((41, 41))
    assert rconv.choose_conv_method(a, b, "same") == "fft"
    a[10, 20] = np.nan
    a[200, 100] = np.inf
    assert rconv.choose_conv_method(a, b, "same") == "direct"
    auto = rconv.correlate2d(a, b, "same")
    np.testing.assert_array_equal(auto, rconv.correlate2d(a, b, "same", method="direct"))
    assert np.isfinite(auto).sum() > 0.5 * auto.size  # NaN/Inf stay local
    b2 = b.copy()
    b2[0, 0] = np.nan
    assert rconv.choose_conv_method(a[:100, :100] * 0, b2, "same") == "direct"
    # a non-finite fill value also keeps 'auto' direct
    clean = rng.standard_normal((300, 300))
    np.testing.assert_array_equal(
        rconv.correlate2d(clean, b, "same", fillvalue=np.inf),
        rconv.correlate2d(clean, b, "same", fillvalue=np.inf, method="direct"),
    )


def test_choose_conv_method():
    img = np.zeros((1024, 1024))
    rng = np.random.default_rng(4)
    assert rconv.choose_conv_method(img, np.ones((3, 3)), "same") == "direct"
    # a rank-1 kernel (ones) now goes to the separable passes (this deliberate change
    # of the 'fft' this assertion used to expect); a full-rank one still to the FFT
    assert rconv.choose_conv_method(img, np.ones((63, 63)), "same") == "separable"
    assert rconv.choose_conv_method(img, rng.standard_normal((63, 63)), "same") == "fft"
    ints = np.ones((63, 63), np.int32)
    assert rconv.choose_conv_method(img.astype(np.int32), ints, "same") == "separable"
    full_rank = rng.integers(0, 9, (63, 63)).astype(np.int32)
    assert rconv.choose_conv_method(img.astype(np.int32), full_rank, "same") == "direct"
    assert rconv.choose_conv_method(np.zeros((8, 8)), np.ones((3, 3))) == "direct"
    with pytest.raises(ValueError, match="choose_conv_method: .*mode"):
        rconv.choose_conv_method(img, img, "bad")
    with pytest.raises(TypeError, match="choose_conv_method: unsupported dtype"):
        rconv.choose_conv_method(img.astype(bool), img.astype(bool))


def test_method_errors_and_layouts(threads):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((120, 130))
    b = rng.standard_normal((9, 8))
    with pytest.raises(ValueError, match="correlate2d: method must be"):
        rconv.correlate2d(a, b, method="winograd")
    want = rconv.correlate2d(a, b, "same", method="fft")
    for view in (
        np.asfortranarray(a),
        a[::-1, ::-1].copy()[::-1, ::-1],
        np.repeat(a, 2, 1)[:, ::2],
    ):
        np.testing.assert_array_equal(rconv.correlate2d(view, b, "same", method="fft"), want)
    threads(1)
    serial = rconv.convolve2d(a, b, "full", "wrap", method="fft")
    threads(3)
    np.testing.assert_array_equal(rconv.convolve2d(a, b, "full", "wrap", method="fft"), serial)


def test_kernel_larger_than_image_and_empty():
    rng = np.random.default_rng(4)
    a = rng.standard_normal((5, 4))
    b = rng.standard_normal((12, 9))
    for boundary in BOUNDARIES:
        for mode in ("full", "same", "valid"):
            d = rconv.correlate2d(a, b, mode, boundary, method="direct")
            f = rconv.correlate2d(a, b, mode, boundary, method="fft")
            np.testing.assert_allclose(f, d, atol=1e-10)
    assert rconv.correlate2d(np.zeros((0, 3)), np.ones((2, 2)), method="fft").shape == (1, 4)
    assert not rconv.correlate2d(np.ones((3, 3)), np.ones((0, 2)), "same", method="fft").any()
