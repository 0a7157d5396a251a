"""conv2d(padding_mode='symmetric'): np.pad's 'symmetric' (the edge sample repeated), which
torch lacks. Reference: np.pad followed by a 'valid' convolution, for the forward pass and both
gradients (the input gradient through finite differences and the adjoint identity)."""

from __future__ import annotations

import numpy as np
import pytest

import rconv
from rconv import nn


def _padded(x, ph, pw):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="symmetric")


@pytest.mark.parametrize("padding", [(1, 2), (2, 1), (3, 5)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_matches_numpy_pad_then_valid(padding, dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)  # (3, 5): wider than the input
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    want = rconv.conv2d(_padded(x, *padding), w, b)
    got = rconv.conv2d(x, w, b, padding=padding, padding_mode="symmetric")
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol)
    assert got.dtype == dtype


@pytest.mark.parametrize("kw", [dict(padding=(2, 1)), dict(padding="same", dilation=2)])
def test_gradients_match_the_padded_reference(kw):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 6, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    y = rconv.conv2d(x, w, **kw, padding_mode="symmetric")
    g = rng.standard_normal(y.shape)
    gi, gw, gb = rconv.conv2d_backward(g, x, w, **kw, padding_mode="symmetric")
    assert gi.shape == x.shape and gw.shape == w.shape
    # the weight and bias gradients are those of the 'valid' convolution of the padded input
    ph, pw = (2, 1) if kw["padding"] != "same" else (2, 2)
    _, gwp, gbp = rconv.conv2d_backward(g, _padded(x, ph, pw), w, dilation=kw.get("dilation", 1))
    np.testing.assert_allclose(gw, gwp, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, gbp, rtol=1e-12)
    # the input gradient: the directional derivative by central differences (the forward is
    # linear in x, so the difference quotient is exact up to rounding)
    d = rng.standard_normal(x.shape)
    eps = 1e-3

    def s(v):
        return (rconv.conv2d(v, w, **kw, padding_mode="symmetric") * g).sum()

    fd = (s(x + eps * d) - s(x - eps * d)) / (2 * eps)
    np.testing.assert_allclose((gi * d).sum(), fd, rtol=1e-8)


def test_layer_takes_symmetric():
    rng = np.random.default_rng(2)
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="symmetric", rng=rng, dtype=np.float64)
    assert "padding_mode=symmetric" in repr(conv)
    x = rng.standard_normal((2, 2, 5, 5))
    y = conv.forward(x)
    np.testing.assert_allclose(y, rconv.conv2d(_padded(x, 1, 1), conv.weight, conv.bias))
    assert conv.backward(np.ones_like(y)).shape == x.shape


def test_symmetric_needs_a_non_empty_input():
    with pytest.raises(ValueError, match="conv2d: padding_mode='symmetric'"):
        rconv.conv2d(
            np.ones((1, 1, 0, 3)), np.ones((1, 1, 1, 1)), padding=1, padding_mode="symmetric"
        )


def test_unknown_padding_mode_lists_symmetric():
    with pytest.raises(ValueError, match="padding_mode must be .*'symmetric', got 'mirror'"):
        rconv.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 1, 1)), padding_mode="mirror")
