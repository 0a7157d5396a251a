"""`out=`: results written into the caller's array (the same object returned), checked
(shape, dtype, C-contiguous, writeable, no memory shared with the inputs)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rconv
from conftest import int_ranges

RNG = np.random.default_rng(11)


def _x(*shape, dtype=np.float64):
    return RNG.standard_normal(shape).astype(dtype)


X4, W4, B4 = _x(2, 3, 9, 8), _x(4, 3, 3, 3), _x(4)
G4 = _x(2, 4, 7, 6)  # conv2d(X4, W4) output gradient
IMG, KER = _x(12, 11), _x(3, 4)
X32, W32 = _x(2, 32, 16, 16), _x(32, 32, 3, 3)
_IMG_BIG, _KER_BIG = _x(70, 60), _x(21, 20)

# name -> (call with out=..., the fresh call)
SINGLE = {
    "correlate2d": lambda out=None: rconv.correlate2d(IMG, KER, "same", out=out),
    "convolve2d": lambda out=None: rconv.convolve2d(IMG, KER, "full", "wrap", out=out),
    "corr2d": lambda out=None: rconv.corr2d(IMG, KER, out=out),
    "conv2d": lambda out=None: rconv.conv2d(X4, W4, B4, padding=1, stride=2, out=out),
    # the other engines: depthwise, Winograd (32 channels @16), row runs (@8), padding modes
    "conv2d depthwise": lambda out=None: rconv.conv2d(X4, W4[:3, :1], padding=1, groups=3, out=out),
    "conv2d winograd": lambda out=None: rconv.conv2d(X32, W32, padding=1, out=out),
    "conv2d runs": lambda out=None: rconv.conv2d(X4[:, :, :8, :8], W4, padding=1, out=out),
    "conv2d reflect": lambda out=None: rconv.conv2d(
        X4, W4, padding=1, padding_mode="reflect", out=out
    ),
    "conv2d_input winograd": lambda out=None: rconv.conv2d_input(
        X32.shape, W32, np.ones((2, 32, 16, 16)), padding=1, out=out
    ),
    "conv2d_input runs": lambda out=None: rconv.conv2d_input(
        (2, 4, 8, 8),
        W4[:, :, :, :].transpose(1, 0, 2, 3).copy(),
        np.ones((2, 3, 8, 8)),
        padding=1,
        out=out,
    ),
    "correlate2d fft": lambda out=None: rconv.correlate2d(
        _IMG_BIG, _KER_BIG, "same", method="fft", out=out
    ),
    "conv2d_input": lambda out=None: rconv.conv2d_input(X4.shape, W4, G4, out=out),
    "conv2d_weight": lambda out=None: rconv.conv2d_weight(X4, W4.shape, G4, out=out),
    "max_pool2d": lambda out=None: rconv.max_pool2d(X4, 3, 2, 1, out=out),
    "avg_pool2d": lambda out=None: rconv.avg_pool2d(X4, 2, ceil_mode=True, out=out),
    "max_pool2d_backward": lambda out=None: rconv.max_pool2d_backward(
        np.ones((2, 3, 5, 4)), X4, 3, 2, 1, out=out
    ),
    "avg_pool2d_backward": lambda out=None: rconv.avg_pool2d_backward(
        np.ones((2, 3, 4, 4)), X4, 2, out=out
    ),
}


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_out_is_filled_and_returned(name):
    call = SINGLE[name]
    want = call()
    before = (X4.copy(), W4.copy(), IMG.copy(), KER.copy())
    out = np.full_like(want, np.nan)  # stale contents must not leak into the result
    got = call(out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    for a, b in zip(before, (X4, W4, IMG, KER)):
        np.testing.assert_array_equal(a, b)  # inputs untouched
    again = call(out=out)  # reused: the same numbers again
    assert again is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_bad_out_is_refused(name):
    call = SINGLE[name]
    want = call()
    bad_shape = np.empty(want.shape[:-1] + (want.shape[-1] + 1,), want.dtype)
    name = name.split()[0]
    with pytest.raises(ValueError, match=rf"{name}: out must have shape"):
        call(out=bad_shape)
    with pytest.raises(TypeError, match=rf"{name}: out must have dtype float64, got float32"):
        call(out=np.empty(want.shape, np.float32))
    strided = np.empty(want.shape[:-1] + (2 * want.shape[-1],), want.dtype)[..., ::2]
    with pytest.raises(ValueError, match=rf"{name}: out must be C-contiguous"):
        call(out=strided)
    readonly = np.empty_like(want)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match=rf"{name}: out must be writeable"):
        call(out=readonly)
    with pytest.raises(TypeError, match=rf"{name}: out must be a NumPy array, got list"):
        call(out=want.tolist())


def test_out_overlapping_an_input_is_refused():
    x = _x(10, 10)
    with pytest.raises(ValueError, match="correlate2d: out must not share memory"):
        rconv.correlate2d(x, np.ones((3, 3)), "same", out=x)
    buf = _x(2, 3, 9, 9)
    with pytest.raises(ValueError, match="conv2d: out must not share memory"):
        rconv.conv2d(buf, np.ones((3, 3, 1, 1)), out=buf)  # 1x1 conv, same shape
    big = np.zeros((2, 3, 9, 8 * 2))
    x4 = big[..., :8].copy()
    with pytest.raises(ValueError, match="max_pool2d_backward: out must not share memory"):
        rconv.max_pool2d_backward(np.ones((2, 3, 9, 8)), x4, 1, out=x4)
    np.testing.assert_array_equal(x4, big[..., :8])  # refused before anything was written


def test_unbatched_out():
    x, w = _x(3, 6, 7), _x(2, 3, 3, 3)
    out = np.empty((2, 4, 5))
    assert rconv.conv2d(x, w, out=out) is out
    np.testing.assert_array_equal(out, rconv.conv2d(x, w))
    out = np.empty((3, 3, 3))
    assert rconv.max_pool2d(x, 2, out=out) is out
    np.testing.assert_array_equal(out, rconv.max_pool2d(x, 2))


def test_tuple_outs():
    gi, gw, gb = rconv.conv2d_backward(G4, X4, W4)
    oi, ob = np.empty_like(gi), np.empty_like(gb)
    got = rconv.conv2d_backward(G4, X4, W4, out=(oi, None, ob))
    assert got[0] is oi and got[2] is ob and got[1] is not None
    for a, b in zip(got, (gi, gw, gb)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(TypeError, match="conv2d_backward: out must be a tuple of 3"):
        rconv.conv2d_backward(G4, X4, W4, out=oi)
    with pytest.raises(ValueError, match=r"conv2d_backward: out\[1\] must have shape"):
        rconv.conv2d_backward(G4, X4, W4, out=(None, oi, None))
    v, i = rconv.max_pool2d(X4, 2, return_indices=True)
    ov, oi = np.empty_like(v), np.empty_like(i)
    rv, ri = rconv.max_pool2d(X4, 2, return_indices=True, out=(ov, oi))
    assert rv is ov and ri is oi
    np.testing.assert_array_equal(ov, v)
    np.testing.assert_array_equal(oi, i)
    with pytest.raises(TypeError, match=r"max_pool2d: out\[1\] must have dtype int64"):
        rconv.max_pool2d(X4, 2, return_indices=True, out=(None, np.empty_like(v)))
    with pytest.raises(TypeError, match="max_pool2d: out must be a tuple of 2"):
        rconv.max_pool2d(X4, 2, return_indices=True, out=ov)


def test_out_of_integer_and_complex_signal_results():
    a = RNG.integers(-5, 5, (6, 7))
    k = RNG.integers(-3, 3, (2, 2))
    out = np.empty((7, 8), a.dtype)
    assert rconv.correlate2d(a, k, out=out) is out
    np.testing.assert_array_equal(out, rconv.correlate2d(a, k))
    c = a + 1j * a[::-1]
    outc = np.empty((7, 8), np.complex128)
    assert rconv.convolve2d(c, k, out=outc) is outc
    np.testing.assert_array_equal(outc, rconv.convolve2d(c, k))


@settings(max_examples=40, deadline=None)
@given(
    **int_ranges(n=(1, 3), cin=(1, 4), cout=(1, 4), h=(3, 12), w=(3, 12), k=(1, 3), pad=(0, 1)),
    f32=st.booleans(),
)
def test_conv2d_out_property(n, cin, cout, h, w, k, pad, f32):
    dt = np.float32 if f32 else np.float64
    x, wt = _x(n, cin, h, w, dtype=dt), _x(cout, cin, k, k, dtype=dt)
    want = rconv.conv2d(x, wt, padding=pad)
    out = np.full_like(want, 1e30)
    assert rconv.conv2d(x, wt, padding=pad, out=out) is out
    np.testing.assert_array_equal(out, want)
    g = np.ones_like(want)
    gi = np.full_like(x, -1.0)
    got = rconv.conv2d_backward(g, x, wt, padding=pad, out=(gi, None, None))
    np.testing.assert_array_equal(gi, rconv.conv2d_backward(g, x, wt, padding=pad)[0])
    assert got[0] is gi


def test_a_refused_index_leaves_out_untouched():
    x = _x(1, 2, 4, 4)
    v, ind = rconv.max_pool2d(x, 2, return_indices=True)
    bad = ind.copy()
    bad[0, 1, 1, 1] = 16  # outside the 4x4 plane
    out = np.full_like(x, 7.0)
    with pytest.raises(ValueError, match="max_pool2d_backward: indices holds 16"):
        rconv.max_pool2d_backward(np.ones_like(v), x, 2, indices=bad, out=out)
    np.testing.assert_array_equal(out, np.full_like(x, 7.0))


def test_tuple_out_is_checked_whole_before_writing():
    gi, gw, gb = rconv.conv2d_backward(G4, X4, W4)
    oi = np.full_like(gi, 5.0)
    with pytest.raises(TypeError, match=r"conv2d_backward: out\[2\] must have dtype"):
        rconv.conv2d_backward(G4, X4, W4, out=(oi, None, np.empty(4, np.float32)))
    np.testing.assert_array_equal(oi, np.full_like(gi, 5.0))
