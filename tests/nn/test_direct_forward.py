"""The direct forward engine (``src/nn/conv/direct/forward.rs``): dense and grouped layers with
dilation 1, any stride, zero padding, bias and the fused ReLU, against the NumPy reference."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import assert_matches_reference
from rconv import _rconv

DTYPES = [np.float32, np.float64]


def check(out, want, x, w, dtype):
    """float32 within assert_matches_reference's bound, float64 at rtol 1e-9."""
    if np.dtype(dtype) == np.float64:
        scale = (np.abs(x).max(initial=0) + 1) * (np.abs(w).max(initial=0) + 1)
        np.testing.assert_allclose(out, want, rtol=1e-9, atol=1e-12 * scale * w[0].size)
    else:
        assert_matches_reference(out, want.astype(out.dtype), x, w)


def layer(rng, n, cin, cout, h, w, k, groups, dtype, bias=True):
    x = rng.standard_normal((n, cin, h, w)).astype(dtype)
    wt = rng.standard_normal((cout, cin // groups) + k).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype) if bias else None
    return x, wt, b


# (n, cin, cout, size, k, stride, pad, groups): first layers, stride 2, widths past and below
# a tile, 5x5, grouped, 1x1 stride 2 (a few are routed elsewhere; all must agree)
CASES = [
    (2, 3, 16, 32, 3, 1, 1, 1),
    (2, 3, 16, 17, 3, 2, 1, 1),
    (2, 16, 32, 9, 3, 1, 1, 1),
    (1, 64, 64, 8, 3, 2, 1, 1),
    (2, 32, 40, 11, 5, 1, 2, 1),
    (1, 48, 64, 13, 3, 2, 0, 4),
    (2, 64, 64, 7, 3, 1, 1, 4),
    (1, 32, 24, 10, 1, 2, 0, 1),
    (1, 128, 32, 4, 3, 1, 1, 1),
    (1, 16, 33, 30, 3, 1, 2, 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_direct_forward_matches_reference(case, dtype):
    n, cin, cout, size, k, s, pad, g = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x, w, b = layer(rng, n, cin, cout, size, size, (k, k), g, dtype)
    out = rconv.conv2d(x, w, b, s, pad, 1, g)
    want = ref.conv2d(x, w, b, (s, s), (pad,) * 4, (1, 1), g)
    check(out, want, x, w, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
def test_direct_forward_fused_relu(dtype, bias):
    rng = np.random.default_rng(3)
    x, w, b = layer(rng, 2, 32, 48, 10, 9, (3, 3), 1, dtype, bias)
    fused = _rconv.conv2d(x, w, b, (2, 2), (1, 1), (1, 1), 1, "zeros", None, "conv2d", True)
    want = np.maximum(ref.conv2d(x, w, b, (2, 2), (1, 1, 1, 1)), 0)
    check(fused, want, x, w, dtype)
    plain = rconv.conv2d(x, w, b, 2, 1)
    np.testing.assert_array_equal(fused, np.maximum(plain, 0))


@given(
    n=st.integers(1, 2),
    cg=st.integers(1, 20),
    og=st.integers(1, 40),
    groups=st.sampled_from([1, 1, 2, 3]),
    h=st.integers(1, 14),
    w=st.integers(1, 14),
    kh=st.sampled_from([1, 2, 3, 5]),
    kw=st.sampled_from([1, 3, 5]),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 4),
    pw=st.integers(0, 4),
    bias=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**31),
)
def test_direct_forward_property(
    n, cg, og, groups, h, w, kh, kw, sh, sw, ph, pw, bias, dtype, seed
):
    ph, pw = min(ph, kh - 1), min(pw, kw - 1)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        return
    rng = np.random.default_rng(seed)
    x, wt, b = layer(rng, n, cg * groups, og * groups, h, w, (kh, kw), groups, dtype, bias)
    out = rconv.conv2d(x, wt, b, (sh, sw), (ph, pw), 1, groups)
    want = ref.conv2d(x, wt, b, (sh, sw), (ph, ph, pw, pw), (1, 1), groups)
    check(out, want, x, wt, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [(4, 64, 64, 12, 3, 1, 1, 1), (3, 32, 64, 15, 3, 2, 1, 2)])
def test_direct_forward_thread_counts_bit_identical(case, dtype, threads):
    n, cin, cout, size, k, s, pad, g = case
    rng = np.random.default_rng(5)
    x, w, b = layer(rng, n, cin, cout, size, size, (k, k), g, dtype)
    threads(1)
    one = rconv.conv2d(x, w, b, s, pad, 1, g)
    threads(2)
    two = rconv.conv2d(x, w, b, s, pad, 1, g)
    np.testing.assert_array_equal(one, two)


def test_direct_forward_strided_inputs_unmodified():
    rng = np.random.default_rng(7)
    big = rng.standard_normal((2, 32, 20, 22)).astype(np.float32)
    x = big[:, ::2, 1::2, ::2]  # non-contiguous
    wbig = rng.standard_normal((48, 16, 6, 3)).astype(np.float32)
    w = wbig[::2, :, ::2, :]
    b = rng.standard_normal(24).astype(np.float32)
    copies = [a.copy() for a in (x, w, b)]
    out = rconv.conv2d(x, w, b, 2, 1)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)
    want = ref.conv2d(np.ascontiguousarray(x), np.ascontiguousarray(w), b, (2, 2), (1, 1, 1, 1))
    check(out, want, x, w, np.float32)


def test_direct_forward_every_simd_level_agrees():
    rng = np.random.default_rng(11)
    x, w, b = layer(rng, 2, 24, 40, 13, 11, (3, 3), 1, np.float64)
    want = ref.conv2d(x, w, b, (2, 1), (1, 1, 1, 1))
    top = _rconv._set_simd_level(None)
    try:
        for level in ("generic", "avx2", "avx512"):
            got = _rconv._set_simd_level(level)
            out = rconv.conv2d(x, w, b, (2, 1), 1)
            check(out, want, x, w, np.float64)
            if got != level:  # capped at the CPU's
                break
    finally:
        assert _rconv._set_simd_level(None) == top


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(bias=np.zeros(5, np.float32)), ValueError, "bias"),
        (dict(groups=3), ValueError, "groups"),
        (dict(weight=np.zeros((8, 3, 3, 3), np.float32)), ValueError, "channels"),
        (dict(stride=0), ValueError, "stride"),
    ],
)
def test_direct_forward_errors(kwargs, exc, match):
    args = dict(
        input=np.zeros((1, 4, 6, 6), np.float32),
        weight=np.zeros((8, 4, 3, 3), np.float32),
        bias=None,
        stride=2,
        groups=1,
    )
    args.update(kwargs)
    out_before = args["input"].copy()
    with pytest.raises(exc, match=f"conv2d: .*{match}"):
        rconv.conv2d(**args)
    np.testing.assert_array_equal(args["input"], out_before)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES[:7])
def test_direct_forward_torch_parity(case, dtype):
    torch = pytest.importorskip("torch", reason="torch parity: torch not installed")
    n, cin, cout, size, k, s, pad, g = case
    rng = np.random.default_rng(17)
    x, w, b = layer(rng, n, cin, cout, size, size, (k, k), g, dtype)
    out = rconv.conv2d(x, w, b, s, pad, 1, g)
    t = torch.nn.functional.conv2d(
        *map(torch.from_numpy, (x, w, b)), stride=s, padding=pad, groups=g
    )
    check(out, t.numpy().astype(np.float64), x, w, dtype)
