"""The direct engine's input and weight gradients (dense and grouped, stride 1 and 2,
dilation 1; `src/nn/conv/direct/backward.rs`) against the float64 NumPy reference, through
``rconv.conv2d_backward``, ``rconv.conv2d_input`` and ``rconv.conv2d_weight``."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rconv
from conftest import assert_matches_reference, seed_for

DTYPES = [np.float32, np.float64]

# (n, cin, cout, size, k, stride, padding, groups): channel counts around the lane widths
# (4, 8, 16), odd sizes, batch 1, 1x1 and 5x5, stride 2, grouped.
CASES = [
    (2, 16, 32, 9, 3, 1, 1, 1),
    (3, 24, 40, 7, 3, 2, 1, 1),
    (1, 8, 8, 5, 5, 1, 2, 1),
    (2, 17, 5, 11, 5, 2, 2, 1),
    (2, 64, 48, 6, 3, 1, 0, 1),
    (1, 32, 16, 8, 1, 2, 0, 1),
    (2, 3, 16, 10, 3, 2, 1, 1),
    (2, 32, 32, 7, 3, 1, 1, 4),
    (2, 48, 24, 9, 3, 2, 2, 2),
    (1, 80, 36, 5, 3, 1, 1, 1),
    # shapes whose input gradient the direct engine computes too
    (2, 32, 64, 8, 3, 2, 1, 1),
    (1, 40, 72, 7, 3, 1, 1, 1),
    (2, 64, 128, 8, 3, 1, 1, 2),
    (2, 32, 80, 9, 2, 2, 1, 1),
    # a batch large enough for several images per weight-gradient unit
    (19, 16, 32, 6, 3, 1, 1, 1),
]


def grads(dy, x, w, s, p, g):
    pads = (p, p, p, p)
    return ref.conv2d_grads(dy, x, w, (s, s), pads, (1, 1), g)


def check(got, want, in1, in2, dtype):
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * max(1.0, np.abs(want).max()))
    else:
        assert_matches_reference(got, want.astype(got.dtype), in1, in2)


def operands(case, dtype):
    n, cin, cout, size, k, s, p, g = case
    rng = np.random.default_rng(seed_for("direct_backward", case, np.dtype(dtype).name))
    x = rng.standard_normal((n, cin, size, size)).astype(dtype)
    w = rng.standard_normal((cout, cin // g, k, k)).astype(dtype)
    oh = (size + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, cout, oh, oh)).astype(dtype)
    return x, w, dy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_gradients_match_the_reference(case, dtype):
    s, p, g = case[5], case[6], case[7]
    x, w, dy = operands(case, dtype)
    keep = (x.copy(), w.copy(), dy.copy())
    gi, gw, gb = rconv.conv2d_backward(dy, x, w, s, p, 1, g)
    want_i, want_w = grads(dy, x, w, s, p, g)
    check(gi, want_i, dy, w, dtype)
    check(gw, want_w, dy, x, dtype)
    np.testing.assert_allclose(gb, dy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5)
    for a, b in zip((x, w, dy), keep):
        np.testing.assert_array_equal(a, b)  # inputs unmodified
    # the single-gradient entry points agree bit for bit
    np.testing.assert_array_equal(rconv.conv2d_input(x.shape, w, dy, s, p, 1, g), gi)
    np.testing.assert_array_equal(rconv.conv2d_weight(x, w.shape, dy, s, p, 1, g), gw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [CASES[1], CASES[4], CASES[8], CASES[10], CASES[12]])
def test_bit_identical_for_every_thread_count(case, dtype, threads):
    s, p, g = case[5], case[6], case[7]
    x, w, dy = operands(case, dtype)
    x = np.concatenate([x] * 5)  # enough images for several weight-gradient parts
    dy = np.concatenate([dy] * 5)
    threads(1)
    one = rconv.conv2d_backward(dy, x, w, s, p, 1, g)
    threads(2)
    two = rconv.conv2d_backward(dy, x, w, s, p, 1, g)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype):
    case = CASES[1]
    s, p, g = case[5], case[6], case[7]
    x, w, dy = operands(case, dtype)
    xs = np.asfortranarray(x)[:, ::-1][:, ::-1]
    ws = np.repeat(w, 2, axis=3)[..., ::2]
    dys = np.swapaxes(np.swapaxes(dy, 2, 3).copy(), 2, 3)
    assert not (xs.flags.c_contiguous and ws.flags.c_contiguous and dys.flags.c_contiguous)
    got = rconv.conv2d_backward(dys, xs, ws, s, p, 1, g)
    want = rconv.conv2d_backward(dy, x, w, s, p, 1, g)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_errors_name_the_function_and_argument():
    x = np.zeros((2, 16, 8, 8), np.float32)
    w = np.zeros((32, 16, 3, 3), np.float32)
    dy = np.zeros((2, 32, 4, 4), np.float32)
    with pytest.raises(ValueError, match="grad_output"):
        rconv.conv2d_backward(dy[:, :31], x, w, 2, 1)
    with pytest.raises(ValueError, match="groups"):
        rconv.conv2d_backward(dy, x, w[:, :5], 2, 1, 1, 3)
    with pytest.raises(TypeError):
        rconv.conv2d_backward(dy, x, w, 2.5, 1)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 3),
    cg=st.integers(1, 20),
    og=st.integers(1, 20),
    groups=st.sampled_from([1, 1, 2, 3]),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    k=st.sampled_from([1, 2, 3, 5]),
    s=st.integers(1, 2),
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
)
def test_hypothesis_shapes(n, cg, og, groups, h, w, k, s, data, dtype):
    p = data.draw(st.integers(0, k - 1))
    if h + 2 * p < k or w + 2 * p < k:
        return
    cin, cout = cg * groups, og * groups
    rng = np.random.default_rng(seed_for(n, cg, og, groups, h, w, k, s, p))
    x = rng.standard_normal((n, cin, h, w)).astype(dtype)
    wt = rng.standard_normal((cout, cg, k, k)).astype(dtype)
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, cout, oh, ow)).astype(dtype)
    gi, gw, _ = rconv.conv2d_backward(dy, x, wt, s, p, 1, groups)
    want_i, want_w = grads(dy, x, wt, s, p, groups)
    check(gi, want_i, dy, wt, dtype)
    check(gw, want_w, dy, x, dtype)


@settings(max_examples=15, deadline=None)
@given(
    cg=st.integers(32, 40),
    og=st.integers(64, 70),
    groups=st.sampled_from([1, 2]),
    size=st.integers(2, 8),
    k=st.sampled_from([2, 3]),
    s=st.integers(1, 2),
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
)
def test_hypothesis_wide_channels(cg, og, groups, size, k, s, data, dtype):
    """Channel counts at which the direct engine also computes the input gradient."""
    p = data.draw(st.integers(0, k - 1))
    if size + 2 * p < k:
        return
    cin, cout = cg * groups, og * groups
    rng = np.random.default_rng(seed_for(cg, og, groups, size, k, s, p))
    x = rng.standard_normal((1, cin, size, size)).astype(dtype)
    wt = rng.standard_normal((cout, cg, k, k)).astype(dtype)
    o = (size + 2 * p - k) // s + 1
    dy = rng.standard_normal((1, cout, o, o)).astype(dtype)
    gi, gw, _ = rconv.conv2d_backward(dy, x, wt, s, p, 1, groups)
    want_i, want_w = grads(dy, x, wt, s, p, groups)
    check(gi, want_i, dy, wt, dtype)
    check(gw, want_w, dy, x, dtype)
