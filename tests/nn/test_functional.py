"""CNN layers against the NumPy reference, finite differences and the source material."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import int_pairs, int_ranges

DTYPES = [np.float32, np.float64]


def close(out, want, dtype, scale=1.0):
    out = np.asarray(out)
    assert out.dtype == np.dtype(dtype), (out.dtype, dtype)
    tol = (2e-4 if np.dtype(dtype) == np.float32 else 1e-10) * max(1.0, scale)
    np.testing.assert_allclose(out, want, rtol=tol, atol=tol, equal_nan=True)


def dot64(a, b) -> float:
    """<a, b> in float64."""
    return float(a.astype(np.float64).ravel() @ b.astype(np.float64).ravel())


def assert_adjoint(want, b, g, dtype, *pairs):
    """The backward is the adjoint of the forward without its bias: <want - b, g> = <a, ga>
    for every (array, its gradient) of `pairs`, within 1e-3 (float32) or 1e-9 (float64) times
    1 + sum |want| + sum |g|. Returns (tol, scale)."""
    g64 = g.astype(np.float64)
    lhs = dot64(want - (0 if b is None else b[None, :, None, None]), g64)
    tol = 1e-3 if dtype == np.float32 else 1e-9
    scale = 1 + np.abs(want).sum() + np.abs(g64).sum()
    for a, ga in pairs:
        assert abs(lhs - dot64(a, ga)) <= tol * scale
    return tol, scale


def check_gradients_by_fd(fwd, bwd, rng, x, w, b, **kw):
    """The three gradients `bwd` gives (input, weight, bias) against central differences of
    `fwd` for a random output gradient."""
    g = rng.standard_normal(fwd(x, w, b, **kw).shape)
    gi, gw, gb = bwd(g, x, w, **kw)
    np.testing.assert_allclose(gi, ref.numeric_grad(lambda v: fwd(v, w, b, **kw), x, g), atol=1e-6)
    np.testing.assert_allclose(gw, ref.numeric_grad(lambda v: fwd(x, v, b, **kw), w, g), atol=1e-6)
    np.testing.assert_allclose(gb, ref.numeric_grad(lambda v: fwd(x, w, v, **kw), b, g), atol=1e-6)


# ------------------------------------------------------------------ source-material examples


def test_d2l_multichannel_examples():
    x = np.stack([np.arange(9.0).reshape(3, 3), np.arange(1.0, 10.0).reshape(3, 3)])
    k = np.array([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    np.testing.assert_array_equal(rconv.conv2d(x, k[None])[0], [[56, 72], [104, 120]])
    out = rconv.conv2d(x, np.stack([k, k + 1, k + 2]))
    np.testing.assert_array_equal(out[1], [[76, 100], [148, 172]])
    np.testing.assert_array_equal(out[2], [[96, 128], [192, 224]])


def test_d2l_pooling_examples():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(rconv.max_pool2d(x, 2, 1)[0, 0], [[4, 5], [7, 8]])
    np.testing.assert_array_equal(rconv.avg_pool2d(x, 2, 1)[0, 0], [[2, 3], [5, 6]])
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(rconv.max_pool2d(x, 3)[0, 0], [[10]])
    np.testing.assert_array_equal(
        rconv.max_pool2d(x, 3, padding=1, stride=2)[0, 0], [[5, 7], [13, 15]]
    )


@pytest.mark.parametrize(
    "k,p,s,want",
    [
        (3, 1, 1, (8, 8)),
        ((5, 3), (2, 1), 1, (8, 8)),
        (3, 1, 2, (4, 4)),
        ((3, 5), (0, 1), (3, 4), (2, 2)),
    ],
)
def test_d2l_shapes(k, p, s, want):
    kk = (k, k) if isinstance(k, int) else k
    out = rconv.conv2d(np.zeros((1, 1, 8, 8)), np.zeros((1, 1, *kk)), padding=p, stride=s)
    assert out.shape[2:] == want


def test_hand_derived_gradient_formulas():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 9))
    w = rng.standard_normal((3, 2))
    # stride 1: dX = pad(dY, k-1) * rot180(W) (full correlation), dW = X * dY, db = sum dY
    dy = rng.standard_normal((5, 8))
    gi, gw, gb = rconv.conv2d_backward(dy[None, None], x[None, None], w[None, None])
    np.testing.assert_allclose(gi[0, 0], rconv.correlate2d(dy, w[::-1, ::-1], "full"), atol=1e-12)
    np.testing.assert_allclose(gw[0, 0], rconv.corr2d(x, dy), atol=1e-12)
    np.testing.assert_allclose(gb, [dy.sum()], atol=1e-12)
    # stride 2: spread dY into zeros at (i*S, j*S), then the stride-1 formulas
    dy2 = rng.standard_normal((3, 4))
    spread = np.zeros((5, 7))
    spread[::2, ::2] = dy2
    gi, gw, _ = rconv.conv2d_backward(dy2[None, None], x[None, None], w[None, None], stride=2)
    np.testing.assert_allclose(gi[0, 0, :, :8], rconv.convolve2d(spread, w, "full"), atol=1e-12)
    assert not gi[0, 0, :, 8].any()  # the last column never reaches a window
    np.testing.assert_allclose(gw[0, 0], rconv.corr2d(x[:7, :8], spread), atol=1e-12)
    # several output channels: dX = sum_m dY_m * rot180(W_m)
    w3 = rng.standard_normal((3, 1, 3, 2))
    dy3 = rng.standard_normal((1, 3, 5, 8))
    gi, _, _ = rconv.conv2d_backward(dy3, x[None, None], w3)
    want = sum(rconv.convolve2d(dy3[0, m], w3[m, 0], "full") for m in range(3))
    np.testing.assert_allclose(gi[0, 0], want, atol=1e-12)


def test_corr2d_backward_and_learning_a_kernel():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 8))
    k = rng.standard_normal((2, 3))
    g = rng.standard_normal((5, 6))
    gx, gk = rconv.corr2d_backward(g, x, k)
    np.testing.assert_allclose(gx, ref.numeric_grad(lambda v: rconv.corr2d(v, k), x, g), atol=1e-6)
    np.testing.assert_allclose(gk, ref.numeric_grad(lambda v: rconv.corr2d(x, v), k, g), atol=1e-6)
    # d2l: learn [[1, -1]] from the edge image by gradient descent on the squared error
    img = np.ones((6, 8))
    img[:, 2:6] = 0
    target = rconv.corr2d(img, np.array([[1.0, -1.0]]))
    learned = np.random.default_rng(2).standard_normal((1, 2))
    for _ in range(30):
        err = rconv.corr2d(img, learned) - target
        _, gk = rconv.corr2d_backward(2 * err, img, learned)
        learned -= 3e-2 * gk
    np.testing.assert_allclose(learned, [[1.0, -1.0]], atol=0.05)
    with pytest.raises(ValueError, match="corr2d_backward: grad_output"):
        rconv.corr2d_backward(np.ones((2, 2)), x, k)


# ------------------------------------------------------------------ conv2d against the reference


conv_cases = st.fixed_dictionaries(
    {
        **int_ranges(n=(0, 2), groups=(1, 3), cg=(1, 3), og=(1, 3)),
        **int_ranges(h=(1, 9), w=(1, 9), kh=(1, 4), kw=(1, 4)),
        "stride": int_pairs(1, 3),
        "dilation": int_pairs(1, 2),
        "padding": st.one_of(int_pairs(0, 2), st.sampled_from(["same", "valid"])),
        "bias": st.booleans(),
        "dtype": st.sampled_from(DTYPES),
        "seed": st.integers(0, 2**31),
    }
)


def _resolve_pads(c):
    if c["padding"] == "valid":
        return (0, 0, 0, 0)
    if c["padding"] == "same":
        th = c["dilation"][0] * (c["kh"] - 1)
        tw = c["dilation"][1] * (c["kw"] - 1)
        return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    ph, pw = c["padding"]
    return (ph, ph, pw, pw)


def _conv_inputs(c):
    rng = np.random.default_rng(c["seed"])
    cin, cout = c["cg"] * c["groups"], c["og"] * c["groups"]
    x = rng.standard_normal((c["n"], cin, c["h"], c["w"])).astype(c["dtype"])
    w = rng.standard_normal((cout, c["cg"], c["kh"], c["kw"])).astype(c["dtype"])
    b = rng.standard_normal(cout).astype(c["dtype"]) if c["bias"] else None
    return rng, x, w, b


def _fits(c, pads):
    eh = c["dilation"][0] * (c["kh"] - 1) + 1
    ew = c["dilation"][1] * (c["kw"] - 1) + 1
    return eh <= c["h"] + pads[0] + pads[1] and ew <= c["w"] + pads[2] + pads[3]


@given(c=conv_cases)
def test_conv2d_matches_reference(c):
    if c["padding"] == "same" and c["stride"] != (1, 1):
        with pytest.raises(ValueError, match="conv2d: padding='same'"):
            rconv.conv2d(
                np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 1, 1)), padding="same", stride=c["stride"]
            )
        return
    pads = _resolve_pads(c)
    rng, x, w, b = _conv_inputs(c)
    kwargs = dict(
        stride=c["stride"], padding=c["padding"], dilation=c["dilation"], groups=c["groups"]
    )
    if not _fits(c, pads):
        with pytest.raises(ValueError, match="conv2d: kernel size"):
            rconv.conv2d(x, w, b, **kwargs)
        return
    out = rconv.conv2d(x, w, b, **kwargs)
    want = ref.conv2d(x, w, b, c["stride"], pads, c["dilation"], c["groups"])
    close(out, want, c["dtype"], scale=c["cg"] * c["kh"] * c["kw"])
    # backward against the reference's adjoint identities: <conv(x), g> = <x, gi>, and
    # dW from the reference via linearity in w
    g = rng.standard_normal(out.shape).astype(c["dtype"])
    gi, gw, gb = rconv.conv2d_backward(g, x, w, **kwargs)
    assert gi.shape == x.shape and gw.shape == w.shape and gb.shape == (w.shape[0],)
    assert gi.dtype == gw.dtype == np.dtype(c["dtype"])
    tol, scale = assert_adjoint(want, b, g, c["dtype"], (x, gi), (w, gw))
    g64 = g.astype(np.float64)
    np.testing.assert_allclose(gb, g64.sum(axis=(0, 2, 3)), rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "padding,pads",
    [(1, (1, 1, 1, 1)), (0, (0, 0, 0, 0)), ((2, 1), (2, 2, 1, 1)), ("same", (1, 1, 1, 1))],
)
def test_conv2d_3x3_layers_large_enough_for_winograd(dtype, padding, pads, threads):
    # 3x3, stride 1, >= 32 channels and >= 256 output tiles of 2x2: the Winograd F(2x2,3x3)
    # path; odd sizes leave partial tiles at the bottom and right
    rng = np.random.default_rng(12)
    x = rng.standard_normal((2, 32, 35, 33)).astype(dtype)
    w = rng.standard_normal((40, 32, 3, 3)).astype(dtype)
    b = rng.standard_normal(40).astype(dtype)
    want = ref.conv2d(x, w, b, (1, 1), pads)
    threads(1)
    serial = rconv.conv2d(x, w, b, padding=padding)
    threads(2)
    parallel = rconv.conv2d(x, w, b, padding=padding)
    np.testing.assert_array_equal(serial, parallel)
    close(parallel, want, dtype)
    # the input gradient of such a layer is a Winograd-sized 3x3 convolution too
    g = rng.standard_normal(want.shape).astype(dtype)
    gi = rconv.conv2d_backward(g, x, w, padding=padding)[0]
    threads(1)
    np.testing.assert_array_equal(rconv.conv2d_backward(g, x, w, padding=padding)[0], gi)
    close(gi, ref.conv_transpose2d(g, w, padding=(pads[0], pads[2])), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_padding_wider_than_input(dtype):
    # regression: a kernel column left of every window (padding 'same' with dilation on a
    # one-pixel-wide input) once indexed past the im2col row
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 3, 2, 1)).astype(dtype)
    w = rng.standard_normal((3, 1, 2, 4)).astype(dtype)
    kw = dict(padding="same", dilation=(1, 2), groups=3)
    out = rconv.conv2d(x, w, **kw)
    close(out, ref.conv2d(x, w, None, (1, 1), (0, 1, 3, 3), (1, 2), 3), dtype)
    gi, gw, _ = rconv.conv2d_backward(np.ones_like(out), x, w, **kw)
    assert gi.shape == x.shape and gw.shape == w.shape


def _fd_case(n, groups, cg, og, h, w, k, stride, padding, dilation, padding_mode="zeros"):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, cg * groups, h, w))
    wt = rng.standard_normal((og * groups, cg, *k))
    b = rng.standard_normal(og * groups)
    kw = dict(
        stride=stride, padding=padding, dilation=dilation, groups=groups, padding_mode=padding_mode
    )
    check_gradients_by_fd(rconv.conv2d, rconv.conv2d_backward, rng, x, wt, b, **kw)


# the arguments of _fd_case, one case a row:
# n, groups, cg, og, h, w, k, stride, padding, dilation[, padding_mode]
FD_CASES = [
    (2, 1, 2, 3, 6, 7, (3, 3), 1, 1, 1),
    (1, 2, 2, 1, 7, 6, (2, 3), (2, 1), (1, 0), 1),
    (2, 1, 3, 2, 5, 5, (1, 1), 1, 0, 1),
    (1, 3, 1, 1, 6, 6, (3, 3), 1, 1, 1),
    (1, 1, 2, 2, 8, 7, (3, 2), 2, "valid", 2),
    (1, 1, 1, 2, 6, 5, (4, 2), 1, "same", 1),
    (1, 1, 2, 2, 5, 6, (3, 3), 1, 1, 1, "reflect"),
    (1, 1, 2, 1, 5, 6, (3, 3), 2, 2, 1, "replicate"),
    (1, 1, 1, 2, 4, 5, (3, 3), 1, (1, 2), 1, "circular"),
]


@pytest.mark.parametrize("case", FD_CASES)
def test_conv2d_gradients_by_finite_differences(case):
    _fd_case(*case)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_input_and_weight_agree_with_backward(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    g = rng.standard_normal(rconv.conv2d(x, w, **kw).shape).astype(dtype)
    gi, gw, _ = rconv.conv2d_backward(g, x, w, **kw)
    np.testing.assert_array_equal(rconv.conv2d_input(x.shape, w, g, **kw), gi)
    np.testing.assert_array_equal(rconv.conv2d_weight(x, w.shape, g, **kw), gw)
    unbatched = rconv.conv2d_input(x.shape[1:], w, g[0], **kw)
    np.testing.assert_array_equal(unbatched, rconv.conv2d_backward(g[:1], x[:1], w, **kw)[0][0])


# ------------------------------------------------------------------ conv_transpose2d


@given(
    **int_ranges(n=(1, 2), groups=(1, 2), cg=(1, 3), og=(1, 3), h=(1, 6), w=(1, 6)),
    k=int_pairs(1, 4),
    stride=int_pairs(1, 3),
    padding=int_pairs(0, 2),
    dilation=int_pairs(1, 2),
    op=int_pairs(0, 2),
    bias=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_conv_transpose2d_matches_reference(
    n, groups, cg, og, h, w, k, stride, padding, dilation, op, bias, dtype, seed
):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, cg * groups, h, w)).astype(dtype)
    wt = rng.standard_normal((cg * groups, og, *k)).astype(dtype)
    b = rng.standard_normal(og * groups).astype(dtype) if bias else None
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (k[0] - 1) + op[0] + 1
    ow = (w - 1) * stride[1] - 2 * padding[1] + dilation[1] * (k[1] - 1) + op[1] + 1
    bad_op = any(o >= s and o >= d for o, s, d in zip(op, stride, dilation))
    if bad_op or oh <= 0 or ow <= 0:
        with pytest.raises(ValueError, match="conv_transpose2d: "):
            rconv.conv_transpose2d(x, wt, b, stride, padding, op, groups, dilation)
        return
    out = rconv.conv_transpose2d(x, wt, b, stride, padding, op, groups, dilation)
    want = ref.conv_transpose2d(x, wt, b, stride, padding, op, groups, dilation)
    close(out, want, dtype, scale=cg * k[0] * k[1])
    g = rng.standard_normal(out.shape).astype(dtype)
    gi, gw, gb = rconv.conv_transpose2d_backward(g, x, wt, stride, padding, op, groups, dilation)
    assert gi.shape == x.shape and gw.shape == wt.shape
    assert_adjoint(want, b, g, dtype, (x, gi), (wt, gw))


def test_conv_transpose2d_gradients_by_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 3, 4))
    w = rng.standard_normal((4, 3, 3, 2))
    b = rng.standard_normal(6)
    kw = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), groups=2, dilation=1)
    fwd, bwd = rconv.conv_transpose2d, rconv.conv_transpose2d_backward
    check_gradients_by_fd(fwd, bwd, rng, x, w, b, **kw)


# ------------------------------------------------------------------ pooling


pool_cases = st.fixed_dictionaries(
    {
        **int_ranges(n=(0, 2), c=(1, 3), h=(1, 10), w=(1, 10)),
        "k": int_pairs(1, 4),
        "s": int_pairs(1, 3),
        "p": int_pairs(0, 2),
        "d": int_pairs(1, 2),
        "ceil": st.booleans(),
        "dtype": st.sampled_from(DTYPES),
        "seed": st.integers(0, 2**31),
        "ties": st.booleans(),
    }
)


def _pool_input(c):
    rng = np.random.default_rng(c["seed"])
    shape = (c["n"], c["c"], c["h"], c["w"])
    if c["ties"]:
        x = rng.integers(-2, 3, size=shape).astype(c["dtype"])
        if x.size:
            x.flat[rng.integers(0, x.size)] = np.nan
    else:
        x = rng.standard_normal(shape).astype(c["dtype"])
    return rng, x


def _pool_valid(c, dil):
    if c["p"][0] > c["k"][0] // 2 or c["p"][1] > c["k"][1] // 2:
        return False
    d = c["d"] if dil else (1, 1)
    oh = ref.pool_out(c["h"], c["k"][0], c["s"][0], c["p"][0], d[0], c["ceil"])
    ow = ref.pool_out(c["w"], c["k"][1], c["s"][1], c["p"][1], d[1], c["ceil"])
    return oh >= 1 and ow >= 1


@given(c=pool_cases)
def test_max_pool2d_matches_reference(c):
    rng, x = _pool_input(c)
    args = (c["k"], c["s"], c["p"], c["d"], c["ceil"])
    if not _pool_valid(c, True):
        with pytest.raises(ValueError, match="max_pool2d: "):
            rconv.max_pool2d(x, *args)
        return
    out, ind = rconv.max_pool2d(x, *args, return_indices=True)
    want, want_ind = ref.max_pool2d(x, *args)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(ind, want_ind)
    assert out.dtype == x.dtype and ind.dtype == np.int64
    g = rng.standard_normal(out.shape).astype(c["dtype"])
    gi = rconv.max_pool2d_backward(g, x, *args)
    plane = c["h"] * c["w"]
    expect = np.zeros((x.shape[0], x.shape[1], plane + 64))  # room for torch's empty-window index
    for ni in range(x.shape[0]):
        for ci in range(x.shape[1]):
            np.add.at(expect[ni, ci], want_ind[ni, ci].ravel(), g[ni, ci].ravel())
    expect = expect[:, :, :plane]
    close(gi, expect.reshape(x.shape), c["dtype"])
    if (want_ind < c["h"] * c["w"]).all():
        np.testing.assert_array_equal(rconv.max_pool2d_backward(g, x, *args, indices=ind), gi)
    else:  # an empty window's seed index points past the plane: refused with indices
        with pytest.raises(ValueError, match="max_pool2d_backward: indices holds"):
            rconv.max_pool2d_backward(g, x, *args, indices=ind)


@given(c=pool_cases, cip=st.booleans(), div=st.sampled_from([None, 1, 3, -2]))
def test_avg_pool2d_matches_reference(c, cip, div):
    rng, x = _pool_input(c)
    x = np.nan_to_num(x)
    args = (c["k"], c["s"], c["p"], c["ceil"], cip, div)
    if not _pool_valid(c, False):
        with pytest.raises(ValueError, match="avg_pool2d: "):
            rconv.avg_pool2d(x, *args)
        return
    out = rconv.avg_pool2d(x, *args)
    close(out, ref.avg_pool2d(x, c["k"], c["s"], c["p"], c["ceil"], cip, div), c["dtype"])
    g = rng.standard_normal(out.shape).astype(c["dtype"])
    gi = rconv.avg_pool2d_backward(g, x, *args)
    # avg pooling is linear: its gradient is its adjoint, <avg(x), g> = <x, gi>
    lhs = dot64(ref.avg_pool2d(x, c["k"], c["s"], c["p"], c["ceil"], cip, div), g)
    assert abs(lhs - dot64(x, gi)) <= 1e-4 * (1 + np.abs(x).sum() * (1 + np.abs(g).sum()))


@given(
    **int_ranges(n=(0, 2), c=(1, 3), h=(1, 9), w=(1, 9), oh=(1, 10), ow=(1, 10)),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_adaptive_pools_match_reference(n, c, h, w, oh, ow, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    out = rconv.adaptive_avg_pool2d(x, (oh, ow))
    close(out, ref.adaptive_avg_pool2d(x, oh, ow), dtype)
    mx, ind = rconv.adaptive_max_pool2d(x, (oh, ow), return_indices=True)
    want, want_ind = ref.adaptive_max_pool2d(x, oh, ow)
    np.testing.assert_array_equal(mx, want)
    np.testing.assert_array_equal(ind, want_ind)
    g = rng.standard_normal(out.shape).astype(dtype)
    gi = rconv.adaptive_max_pool2d_backward(g, x)
    expect = np.zeros((n, c, h * w))
    for ni in range(n):
        for ci in range(c):
            np.add.at(expect[ni, ci], want_ind[ni, ci].ravel(), g[ni, ci].ravel())
    close(gi, expect.reshape(x.shape), dtype)
    ga = rconv.adaptive_avg_pool2d_backward(g, x)
    lhs = dot64(ref.adaptive_avg_pool2d(x, oh, ow), g)
    assert abs(lhs - dot64(x, ga)) <= 1e-4 * (1 + np.abs(x).sum() * (1 + np.abs(g).sum()))


def test_pool_gradients_by_finite_differences():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 2, 7, 8))
    for k, s, p, ceil in [(3, 2, 1, False), (2, 2, 1, True), ((3, 2), (1, 2), (1, 0), False)]:
        g = rng.standard_normal(rconv.max_pool2d(x, k, s, p, 1, ceil).shape)
        num = ref.numeric_grad(
            lambda v, k=k, s=s, p=p, ceil=ceil: rconv.max_pool2d(v, k, s, p, 1, ceil), x, g
        )
        np.testing.assert_allclose(
            rconv.max_pool2d_backward(g, x, k, s, p, 1, ceil), num, atol=1e-6
        )
        for cip in (True, False):
            g = rng.standard_normal(rconv.avg_pool2d(x, k, s, p, ceil, cip).shape)
            num = ref.numeric_grad(
                lambda v, k=k, s=s, p=p, ceil=ceil, cip=cip: rconv.avg_pool2d(
                    v, k, s, p, ceil, cip
                ),
                x,
                g,
            )
            np.testing.assert_allclose(
                rconv.avg_pool2d_backward(g, x, k, s, p, ceil, cip), num, atol=1e-6
            )
    for size in [(3, 5), 1, (None, 3)]:
        g = rng.standard_normal(rconv.adaptive_avg_pool2d(x, size).shape)
        num = ref.numeric_grad(lambda v, size=size: rconv.adaptive_avg_pool2d(v, size), x, g)
        np.testing.assert_allclose(rconv.adaptive_avg_pool2d_backward(g, x), num, atol=1e-6)
        num = ref.numeric_grad(lambda v, size=size: rconv.adaptive_max_pool2d(v, size), x, g)
        np.testing.assert_allclose(rconv.adaptive_max_pool2d_backward(g, x), num, atol=1e-6)


def test_max_pool_ties_and_nan():
    x = np.array([[[[1.0, 1.0], [1.0, 1.0]]]])
    out, ind = rconv.max_pool2d(x, 2, return_indices=True)
    assert ind[0, 0, 0, 0] == 0
    x = np.array([[[[1.0, np.nan], [5.0, np.nan]]]])
    out, ind = rconv.max_pool2d(x, 2, return_indices=True)
    assert np.isnan(out[0, 0, 0, 0]) and ind[0, 0, 0, 0] == 3  # NaN wins; the last NaN, as torch
    x = np.full((1, 1, 2, 2), -np.inf)
    out, ind = rconv.max_pool2d(x, 2, return_indices=True)
    assert out[0, 0, 0, 0] == -np.inf and ind[0, 0, 0, 0] == 0


def test_max_unpool2d_roundtrip_and_errors():
    rng = np.random.default_rng(6)
    x = rng.random((2, 3, 6, 8)) + 0.5  # positive: the zeros unpooling adds never win
    out, ind = rconv.max_pool2d(x, 2, return_indices=True)
    up = rconv.max_unpool2d(out, ind, 2)
    assert up.shape == x.shape
    np.testing.assert_array_equal(rconv.max_pool2d(up, 2), out)
    assert np.count_nonzero(up) == out.size
    up = rconv.max_unpool2d(out, ind, 2, output_size=(7, 9))
    assert up.shape == (2, 3, 7, 9)
    with pytest.raises(ValueError, match="max_unpool2d: output_size"):
        rconv.max_unpool2d(out, ind, 2, output_size=(9, 9))
    bad = ind.copy()
    bad[0, 0, 0, 0] = 48
    with pytest.raises(ValueError, match="max_unpool2d: found an invalid max index"):
        rconv.max_unpool2d(out, bad, 2)
    with pytest.raises(TypeError, match="max_unpool2d: indices"):
        rconv.max_unpool2d(out, ind.astype(float), 2)


# ------------------------------------------------------------------ layouts, dtypes, threads


def test_unbatched_and_noncontiguous_inputs():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 3, 10, 12))
    w = rng.standard_normal((4, 3, 3, 3))
    base = rconv.conv2d(x, w, padding=1, stride=2)
    np.testing.assert_array_equal(rconv.conv2d(x[0], w, padding=1, stride=2), base[0])
    xf = np.asfortranarray(x)
    np.testing.assert_allclose(
        rconv.conv2d(xf, np.asfortranarray(w), padding=1, stride=2), base, atol=1e-12
    )
    big = np.zeros((2, 6, 20, 24))
    big[:, ::2, ::2, ::2] = x
    np.testing.assert_allclose(
        rconv.conv2d(big[:, ::2, ::2, ::2], w, padding=1, stride=2), base, atol=1e-12
    )
    rev = x[:, :, ::-1, ::-1]
    np.testing.assert_allclose(
        rconv.conv2d(rev, w[:, :, ::-1, ::-1], padding=1),
        rconv.conv2d(x, w, padding=1)[:, :, ::-1, ::-1],
        atol=1e-12,
    )
    g = rng.standard_normal(base.shape[1:])
    gi, gw, gb = rconv.conv2d_backward(g, x[0], w, padding=1, stride=2)
    gi4, gw4, gb4 = rconv.conv2d_backward(g[None], x[:1], w, padding=1, stride=2)
    np.testing.assert_array_equal(gi, gi4[0])
    np.testing.assert_array_equal(gw, gw4)
    assert rconv.max_pool2d(x[0], 2).shape == (3, 5, 6)
    assert rconv.avg_pool2d(x[0][:, ::2], 2).shape == (3, 2, 6)
    assert rconv.adaptive_avg_pool2d(x[0], 3).shape == (3, 3, 3)
    x0 = x.copy()
    rconv.conv2d_backward(base, x, w, padding=1, stride=2)
    np.testing.assert_array_equal(x, x0)


def test_dtype_rules():
    x32 = np.ones((1, 2, 5, 5), np.float32)
    w64 = np.ones((1, 2, 3, 3))
    assert rconv.conv2d(x32, w64.astype(np.float32)).dtype == np.float32
    assert rconv.conv2d(x32, w64).dtype == np.float64
    assert rconv.conv2d(x32.astype(np.int32), w64.astype(np.int64)).dtype == np.float64
    assert rconv.max_pool2d(np.ones((1, 4, 4), np.int16), 2).dtype == np.float64
    for bad in (np.complex64, np.bool_, object, np.float16):
        with pytest.raises(TypeError, match="conv2d: input has unsupported dtype"):
            rconv.conv2d(np.ones((1, 2, 5, 5), bad), w64)
        with pytest.raises(TypeError, match="max_pool2d: input has unsupported dtype"):
            rconv.max_pool2d(np.ones((1, 2, 5, 5), bad), 2)


def test_empty_batches():
    x = np.zeros((0, 3, 8, 8), np.float32)
    w = np.ones((4, 3, 3, 3), np.float32)
    assert rconv.conv2d(x, w, np.ones(4, np.float32), padding=1).shape == (0, 4, 8, 8)
    gi, gw, gb = rconv.conv2d_backward(np.zeros((0, 4, 8, 8), np.float32), x, w, padding=1)
    assert gi.shape == x.shape and not gw.any() and not gb.any()
    assert rconv.conv_transpose2d(x, np.ones((3, 2, 2, 2)), stride=2).shape == (0, 2, 16, 16)
    assert rconv.max_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert rconv.avg_pool2d(x, 2).shape == (0, 3, 4, 4)
    assert rconv.adaptive_max_pool2d(x, 2).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_equals_parallel(threads, dtype):
    rng = np.random.default_rng(9)
    cases = [
        (rng.standard_normal((4, 8, 17, 19)), rng.standard_normal((6, 8, 3, 3)), dict(padding=1)),
        (rng.standard_normal((3, 16, 12, 12)), rng.standard_normal((8, 16, 1, 1)), {}),
        (
            rng.standard_normal((3, 8, 15, 15)),
            rng.standard_normal((8, 1, 3, 3)),
            dict(padding=1, groups=8),
        ),
        (
            rng.standard_normal((2, 6, 21, 20)),
            rng.standard_normal((6, 3, 5, 3)),
            dict(stride=2, groups=2, padding=2),
        ),
    ]
    for x, w, kw in cases:
        x, w = x.astype(dtype), w.astype(dtype)
        results = []
        for n in (1, 2, 3):
            threads(n)
            out = rconv.conv2d(x, w, **kw)
            g = np.cos(np.arange(out.size)).reshape(out.shape).astype(dtype)
            results.append(
                (
                    out,
                    *rconv.conv2d_backward(g, x, w, **kw),
                    rconv.max_pool2d(x, 3, 2, 1),
                    rconv.avg_pool2d(x, 2),
                )
            )
        for other in results[1:]:
            for a, b in zip(results[0], other):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 3, 1, 1), (5, 7, 3, 5), (32, 96, 8, 8)])
def test_global_average_pooling(threads, dtype, shape):
    """Output 1x1 (global average pooling, its own loop over planes): the reference's means,
    each plane's gradient its quotient, the same bits on 1, 2 and 3 threads (the last shape
    spans several groups of planes)."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape[:2] + (1, 1)).astype(dtype)
    g.flat[:1] = -0.0  # a -0.0 gradient spreads +0.0, as the general path's accumulation
    results = []
    for n in (1, 2, 3):
        threads(n)
        results.append((rconv.adaptive_avg_pool2d(x, 1), rconv.adaptive_avg_pool2d_backward(g, x)))
    out, gi = results[0]
    close(out, ref.adaptive_avg_pool2d(x, 1, 1), dtype)
    want = np.broadcast_to(g / dtype(shape[2] * shape[3]), shape) + dtype(0)
    np.testing.assert_array_equal(gi, want)
    if gi.size:
        assert not np.signbit(gi[0, 0]).any()
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ errors


def test_conv_errors_name_function_and_argument():
    x = np.ones((1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"conv2d: input has 4 channels but weight"):
        rconv.conv2d(x, np.ones((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: groups=3 must divide the input channels"):
        rconv.conv2d(x, np.ones((3, 1, 3, 3)), groups=3)
    with pytest.raises(ValueError, match=r"conv2d: groups=2 must divide the output channels"):
        rconv.conv2d(x, np.ones((3, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match=r"conv2d: kernel size 9 .* larger than the padded input"):
        rconv.conv2d(x, np.ones((1, 4, 9, 3)))
    with pytest.raises(ValueError, match=r"conv2d: stride must be >= 1"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: dilation must be >= 1"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), dilation=(1, 0))
    with pytest.raises(ValueError, match=r"conv2d: padding must be >= 0"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), padding=-1)
    with pytest.raises(ValueError, match=r"conv2d: padding='same' is not supported for stride > 1"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), padding="same", stride=2)
    with pytest.raises(ValueError, match=r"conv2d: padding must be 'valid', 'same'"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), padding="full")
    with pytest.raises(ValueError, match=r"conv2d: padding_mode"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), padding=1, padding_mode="mirror")
    with pytest.raises(ValueError, match=r"conv2d: padding_mode='reflect' needs padding"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), padding=8, padding_mode="reflect")
    with pytest.raises(ValueError, match=r"conv2d: bias has 2 elements, expected 1"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), np.ones(2))
    with pytest.raises(ValueError, match=r"conv2d: weight must be 4-D"):
        rconv.conv2d(x, np.ones((4, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d: input must be 3-D"):
        rconv.conv2d(np.ones((8, 8)), np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match=r"conv2d: stride must be an int or a pair"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), stride=1.5)
    with pytest.raises(ValueError, match=r"conv2d: stride must be an int or a pair"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), stride=(1, 2, 3))
    with pytest.raises(TypeError, match=r"conv2d: groups must be an int"):
        rconv.conv2d(x, np.ones((1, 4, 3, 3)), groups="1")
    with pytest.raises(ValueError, match=r"conv2d_backward: grad_output has shape"):
        rconv.conv2d_backward(np.ones((1, 1, 5, 5)), x, np.ones((1, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"conv2d_input: grad_output has shape"):
        rconv.conv2d_input(x.shape, np.ones((1, 4, 3, 3)), np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"conv2d_weight: grad_output has shape"):
        rconv.conv2d_weight(x, (1, 4, 3, 3), np.ones((1, 1, 5, 5)))
    with pytest.raises(ValueError, match=r"conv_transpose2d: output_padding"):
        rconv.conv_transpose2d(x, np.ones((4, 1, 3, 3)), stride=2, output_padding=2)
    with pytest.raises(ValueError, match=r"conv_transpose2d: input has 4 channels"):
        rconv.conv_transpose2d(x, np.ones((3, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"conv_transpose2d_backward: grad_output has shape"):
        rconv.conv_transpose2d_backward(np.ones((1, 1, 3, 3)), x, np.ones((4, 1, 3, 3)))


def test_pool_errors_name_function_and_argument():
    x = np.ones((1, 2, 6, 6))
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half"):
        rconv.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding .* must be at most half"):
        rconv.avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"max_pool2d: kernel_size must be >= 1"):
        rconv.max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be >= 1"):
        rconv.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match=r"max_pool2d: input height 6 is too small"):
        rconv.max_pool2d(x, 7)
    with pytest.raises(ValueError, match=r"avg_pool2d: divisor_override must be non-zero"):
        rconv.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: grad_output has shape"):
        rconv.max_pool2d_backward(np.ones((1, 2, 2, 2)), x, 2)
    with pytest.raises(ValueError, match=r"max_pool2d_backward: indices has shape"):
        rconv.max_pool2d_backward(np.ones((1, 2, 3, 3)), x, 2, indices=np.zeros((1, 2, 2, 2), int))
    with pytest.raises(TypeError, match=r"max_pool2d_backward: indices must be an integer"):
        rconv.max_pool2d_backward(np.ones((1, 2, 3, 3)), x, 2, indices=np.zeros((1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"max_pool2d_backward: indices holds 99"):
        rconv.max_pool2d_backward(np.ones((1, 2, 3, 3)), x, 2, indices=np.full((1, 2, 3, 3), 99))
    with pytest.raises(ValueError, match=r"avg_pool2d_backward: grad_output has shape"):
        rconv.avg_pool2d_backward(np.ones((1, 2, 2, 2)), x, 2)
    with pytest.raises(ValueError, match=r"adaptive_avg_pool2d: output_size must be >= 0"):
        rconv.adaptive_avg_pool2d(x, -1)
    with pytest.raises(ValueError, match=r"adaptive_max_pool2d_backward: grad_output"):
        rconv.adaptive_max_pool2d_backward(np.ones((1, 3, 2, 2)), x)


@pytest.mark.parametrize(
    "bad",
    [
        [[-1, 0], [5, 10]],  # -1 alone (torch's CPU backward skips it silently)
        [[999, -1], [10, 15]],  # a later -1 must not hide an earlier out-of-plane index
        [[0, 1], [2, 16]],  # exactly H * W
        [[-7, 1], [2, 3]],
    ],
)
def test_out_of_plane_indices_are_value_errors(bad):
    # Regression: -1 was the "no bad index" marker, so it was accepted and its gradient
    # dropped. Any index outside 0 <= i < H * W is refused, in both functions.
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    ind = np.array(bad, np.int64).reshape(1, 1, 2, 2)
    g = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match="max_pool2d_backward: indices holds"):
        rconv.max_pool2d_backward(g, x, 2, indices=ind)
    with pytest.raises(ValueError, match="max_unpool2d: found an invalid max index"):
        rconv.max_unpool2d(g, ind, 2)


def test_in_plane_indices_stay_accepted():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    ind = np.array([[0, 3], [12, 15]], np.int64).reshape(1, 1, 2, 2)
    gi = rconv.max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2, indices=ind)
    assert gi.sum() == 4 and gi[0, 0, 0, 0] == gi[0, 0, 3, 3] == 1


def test_internal_errors_are_runtime_errors():
    # A broken invariant of rconv (here: arrays the Python layer should have given one dtype)
    # is a RuntimeError, so that ValueError and TypeError always mean the user's input.
    x = np.ones((4, 4))
    with pytest.raises(RuntimeError, match="correlate2d: internal error"):
        rconv._rconv.correlate2d(x, x.astype(np.float32), None, *_signal_opts())
    w = np.ones((1, 1, 3, 3), np.float32)
    with pytest.raises(RuntimeError, match="conv2d: internal error"):
        rconv._rconv.conv2d(x[None, None], w, None, 1, 0, 1, 1, "zeros")


def test_options_cross_by_name_and_are_named_in_errors():
    # The compiled functions take their options as named parameters, converted in Rust; a
    # bad one is named, under the calling function's name (the name= keyword).
    x = np.ones((4, 4))
    got = rconv._rconv.correlate2d(
        x, x, None, op="correlate", mode="valid", boundary="fill", method="direct"
    )
    assert got.shape == (1, 1)
    with pytest.raises(ValueError, match="mine: mode must be 'full', 'valid' or 'same'"):
        rconv._rconv.correlate2d(x, x, None, "correlate", "nope", "fill", "auto", name="mine")
    with pytest.raises(TypeError, match="conv2d: stride must be an int or a pair of ints"):
        rconv.conv2d(x[None, None], x[None, None], stride=1.5)
    with pytest.raises(ValueError, match="conv2d: padding must be >= 0"):
        rconv.conv2d(x[None, None], x[None, None], padding=(-1, 0))


def _signal_opts():
    return ("correlate", "full", "fill", "direct")


def test_corr2d_errors_name_its_arguments():
    with pytest.raises(ValueError, match="corr2d: x must be a 2-D array"):
        rconv.corr2d(np.ones(3), np.ones((1, 1)))
    with pytest.raises(ValueError, match="corr2d: k must be a 2-D array"):
        rconv.corr2d(np.ones((3, 3)), np.ones(1))
    with pytest.raises(ValueError, match="corr2d: kernel k"):
        rconv.corr2d(np.ones((3, 3)), np.ones((4, 1)))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_padding_modes_match_numpy_pad_reference(mode):
    # The padding modes now run in Rust (no np.pad copy): compare with np.pad + conv.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 7))
    w = rng.standard_normal((4, 3, 3, 3))
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    xp = np.pad(x, ((0, 0), (0, 0), (2, 2), (1, 1)), mode=np_mode)
    want = rconv.conv2d(xp, w)
    got = rconv.conv2d(x, w, padding=(2, 1), padding_mode=mode)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(got.shape)
    gi, gw, _ = rconv.conv2d_backward(g, x, w, padding=(2, 1), padding_mode=mode)
    # adjoint identity: <conv(pad(x)), g> = <x, grad_input>
    gip, gwp, _ = rconv.conv2d_backward(g, xp, w)
    np.testing.assert_allclose(gw, gwp, rtol=1e-10, atol=1e-10)
    eps = 1e-6
    d = rng.standard_normal(x.shape)
    fd = (
        (rconv.conv2d(x + eps * d, w, padding=(2, 1), padding_mode=mode) * g).sum()
        - (rconv.conv2d(x - eps * d, w, padding=(2, 1), padding_mode=mode) * g).sum()
    ) / (2 * eps)
    np.testing.assert_allclose((gi * d).sum(), fd, rtol=1e-6)


def test_exported_geometry_matches_the_calls():
    # The shape rules live once, in Rust; the geometry bindings (used by rconv.dask and the
    # layers) must give the shapes the calls produce.
    from rconv import _rconv

    x = np.zeros((2, 3, 11, 9))
    w = np.zeros((4, 3, 3, 2))
    for kw in [dict(stride=2, padding=1), dict(padding="same", dilation=2), dict(padding=0)]:
        opts = (kw.get("stride", 1), kw["padding"], kw.get("dilation", 1), 1, "zeros")
        got = _rconv.conv_geometry(x.shape, w.shape, *opts, "conv2d")
        assert tuple(got) == rconv.conv2d(x, w, **kw).shape
    wt = np.zeros((3, 5, 4, 4))
    got = rconv.conv_transpose2d(x, wt, stride=2, padding=1, output_padding=1).shape
    geo = _rconv.conv_transpose_geometry(x.shape, wt.shape, 2, 1, 1, 1, 1, "conv_transpose2d")
    assert tuple(geo) == got
    for k, s, p, c in [(3, 2, 1, False), (2, None, 0, True), (3, 3, 1, True)]:
        got = rconv.max_pool2d(x, k, s, p, ceil_mode=c).shape
        assert tuple(_rconv.pool_geometry(x.shape, k, s, p, 1, c, "max_pool2d")) == got
    out, ind = rconv.max_pool2d(x, 2, return_indices=True)
    assert (
        tuple(_rconv.unpool_geometry(out.shape, 2, None, 0, None, "max_unpool2d"))
        == rconv.max_unpool2d(out, ind, 2).shape
    )
    size = (None, 4)
    want = rconv.adaptive_avg_pool2d(x, size).shape
    assert tuple(_rconv.adaptive_geometry(x.shape, size, "adaptive_avg_pool2d")) == want
