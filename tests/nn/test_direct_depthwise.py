"""Depthwise convolution (groups == in == out channels) through the direct depthwise engine:
forward, input and weight gradients against the NumPy reference and torch, any stride,
dilation and zero padding."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import assert_matches_reference

DTYPES = [np.float32, np.float64]


def _inputs(seed, n, c, h, w, k, dtype, bias=True):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((c, 1) + k).astype(dtype)
    b = rng.standard_normal(c).astype(dtype) if bias else None
    return rng, x, wt, b


def _check(x, wt, b, stride, pads, dilation, g=None):
    """Forward and both gradients against the reference (float32 within the
    assert_matches_reference bound, float64 at rtol 1e-9)."""
    c = x.shape[1]
    out = rconv.conv2d(x, wt, b, stride, (pads[0], pads[2]), dilation, c)
    want = ref.conv2d(x, wt, b, stride, pads, dilation, c)
    _close(out, want, x, wt)
    if g is None:
        g = np.random.default_rng(1).standard_normal(out.shape).astype(x.dtype)
    gi, gw, gb = rconv.conv2d_backward(g, x, wt, stride, (pads[0], pads[2]), dilation, c)
    want_gi, want_gw = ref.conv2d_grads(g, x, wt, stride, pads, dilation, c)
    _close(gi, want_gi, g, wt)
    _close(gw, want_gw, g, x)
    np.testing.assert_allclose(gb, g.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-4)
    return out, gi, gw


def _close(out, want, a, b):
    assert out.dtype == a.dtype
    if out.dtype == np.float32:
        assert_matches_reference(out, want.astype(np.float32), a, b)
    else:
        np.testing.assert_allclose(out, want, rtol=1e-9, atol=1e-9 * (1 + np.abs(want).max()))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("size", [8, 13, 16])
def test_depthwise_layers_match_reference(dtype, stride, k, size):
    _, x, wt, b = _inputs(k * 100 + size, 2, 20, size, size + 1, (k, k), dtype)
    p = k // 2
    _check(x, wt, b, (stride, stride), (p, p, p, p), (1, 1))


@given(
    n=st.integers(1, 3),
    c=st.integers(1, 20),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 4),
    pw=st.integers(0, 4),
    dh=st.integers(1, 2),
    dw=st.integers(1, 2),
    dtype=st.sampled_from(DTYPES),
    bias=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_depthwise_matches_reference_on_random_shapes(
    n, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, dtype, bias, seed
):
    ph, pw = min(ph, kh - 1), min(pw, kw - 1)  # torch's rule: padding below the kernel extent
    if dh * (kh - 1) + 1 > h + 2 * ph or dw * (kw - 1) + 1 > w + 2 * pw:
        return
    _, x, wt, b = _inputs(seed, n, c, h, w, (kh, kw), dtype, bias)
    _check(x, wt, b, (sh, sw), (ph, ph, pw, pw), (dh, dw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])
def test_fused_relu_and_bias(dtype, stride):
    _, x, wt, b = _inputs(3, 2, 24, 15, 15, (3, 3), dtype)
    want = ref.conv2d(x, wt, b, (stride, stride), (1, 1, 1, 1), (1, 1), 24)
    s2, p2 = (stride, stride), (1, 1)
    out = rconv._rconv.conv2d(x, wt, b, s2, p2, (1, 1), 24, "zeros", None, "conv2d", True)
    _close(out, np.maximum(want, 0), x, wt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])
def test_thread_counts_give_identical_bits(dtype, stride, threads):
    _, x, wt, b = _inputs(5, 4, 48, 23, 19, (3, 3), dtype)
    out = rconv.conv2d(x, wt, b, stride, 1, 1, 48)
    g = np.random.default_rng(6).standard_normal(out.shape).astype(dtype)
    runs = []
    for t in (1, 2):
        threads(t)
        fwd = rconv.conv2d(x, wt, b, stride, 1, 1, 48)
        runs.append((fwd, *rconv.conv2d_backward(g, x, wt, stride, 1, 1, 48)))
    for a, c in zip(*runs):
        np.testing.assert_array_equal(a, c)


def test_strided_inputs_unmodified():
    rng, x, wt, b = _inputs(7, 3, 16, 20, 22, (3, 3), np.float32)
    xs = x[:, :, ::2, ::2]  # non-contiguous
    ws = np.ascontiguousarray(wt[:, :, ::-1, :])[:, :, ::-1, :]  # negative strides
    before = (xs.copy(), ws.copy(), b.copy())
    out, gi, gw = _check(xs, ws, b, (2, 2), (1, 1, 1, 1), (1, 1))
    np.testing.assert_array_equal(xs, before[0])
    np.testing.assert_array_equal(ws, before[1])
    np.testing.assert_array_equal(b, before[2])
    g = np.ones_like(out)
    g_before = g.copy()
    rconv.conv2d_backward(g, xs, ws, 2, 1, 1, 16)
    np.testing.assert_array_equal(g, g_before)


def test_errors_name_the_function_and_argument():
    x = np.zeros((1, 4, 8, 8), np.float32)
    with pytest.raises(ValueError, match="conv2d"):
        rconv.conv2d(x, np.zeros((4, 2, 3, 3), np.float32), None, 1, 1, 1, 4)
    with pytest.raises(ValueError, match="conv2d"):
        rconv.conv2d(x, np.zeros((4, 1, 3, 3), np.float32), np.zeros(3, np.float32), 2, 1, 1, 4)
    with pytest.raises(ValueError, match="grad_output"):
        rconv.conv2d_backward(
            np.zeros((1, 4, 3, 3), np.float32), x, np.zeros((4, 1, 3, 3), np.float32), 2, 1, 1, 4
        )
    with pytest.raises((TypeError, ValueError), match="conv2d"):
        rconv.conv2d(x, np.zeros((4, 1, 3, 3), np.float32), None, 0, 1, 1, 4)


# ------------------------------------------------------------------ torch parity


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("k,size", [(3, 8), (3, 16), (5, 14), (3, 9)])
def test_torch_parity(dtype, stride, k, size):
    torch = pytest.importorskip("torch", reason="torch parity: torch not installed")
    _, x, wt, b = _inputs(11, 3, 32, size, size, (k, k), dtype)
    p = k // 2
    out = rconv.conv2d(x, wt, b, stride, p, 1, 32)
    xt = torch.from_numpy(x).requires_grad_()
    wtt = torch.from_numpy(wt).requires_grad_()
    bt = torch.from_numpy(b).requires_grad_()
    yt = torch.nn.functional.conv2d(xt, wtt, bt, stride, p, 1, 32)
    g = np.random.default_rng(12).standard_normal(out.shape).astype(dtype)
    yt.backward(torch.from_numpy(g))
    gi, gw, gb = rconv.conv2d_backward(g, x, wt, stride, p, 1, 32)
    for mine, theirs, a, c in [
        (out, yt.detach().numpy(), x, wt),
        (gi, xt.grad.numpy(), g, wt),
        (gw, wtt.grad.numpy(), g, x),
    ]:
        if dtype == np.float32:
            assert_matches_reference(mine, theirs, a, c)
        else:
            np.testing.assert_allclose(
                mine, theirs, rtol=1e-9, atol=1e-9 * (1 + np.abs(theirs).max())
            )
    atol = 1e-6 * np.abs(g).sum(axis=(0, 2, 3)).max()  # torch sums float32 in float32
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-4, atol=atol)
