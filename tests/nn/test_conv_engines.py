"""Every convolution engine on the same cases against the definition.

The cost model (``ConvParams::engine``) picks one engine per shape and pass; here each engine
that can run a case (``_rconv.conv_engines``) is forced in turn (the private
``_rconv._force_conv_engine``) and its forward pass, input gradient and weight gradient are
checked against the float64 NumPy reference of ``tests/nn/nn_reference.py`` with
``assert_matches_reference``'s rounding bound. Every engine must also be bit-identical at 1
and 2 threads.
"""

from __future__ import annotations

import contextlib

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import assert_matches_reference

ENGINES = ("direct", "depthwise", "winograd", "gemm1x1", "im2col")

# (n, cin, cout, size, k, stride, padding, groups): first layers, stride 2, 1x1, 5x5,
# depthwise, grouped, odd sizes, batch 1, planes smaller than the kernel's reach
CASES = [
    (2, 3, 16, 12, 3, 1, 1, 1),
    (2, 3, 16, 13, 3, 2, 1, 1),
    (1, 1, 8, 9, 5, 1, 2, 1),
    (2, 16, 32, 10, 3, 2, 1, 1),
    (2, 32, 32, 9, 3, 1, 1, 1),
    (1, 40, 48, 7, 3, 1, 1, 1),
    (2, 32, 64, 8, 1, 1, 0, 1),
    (2, 32, 64, 9, 1, 2, 0, 1),
    (2, 16, 24, 11, 5, 1, 2, 1),
    (1, 16, 16, 12, 5, 2, 2, 1),
    (2, 32, 32, 10, 3, 1, 1, 32),
    (2, 48, 48, 11, 3, 2, 1, 48),
    (1, 24, 24, 9, 5, 1, 2, 24),
    (2, 64, 64, 8, 3, 1, 1, 4),
    (2, 64, 32, 9, 3, 2, 1, 4),
    (3, 20, 36, 6, 3, 1, 0, 2),
    (1, 17, 33, 5, 3, 1, 2, 1),
]


@contextlib.contextmanager
def forced(engine):
    rconv._rconv._force_conv_engine(engine)
    try:
        yield
    finally:
        rconv._rconv._force_conv_engine(None)


def _engines(x, w, stride, padding, groups, dtype):
    out = rconv._rconv.conv_engines(
        x.shape,
        w.shape,
        (stride, stride),
        (padding, padding),
        (1, 1),
        groups,
        "zeros",
        np.dtype(dtype).name,
    )
    return {p: (chosen, set(all_)) for p, chosen, all_ in out}


def _check(case, dtype, engine):
    n, cin, cout, size, k, s, p, g = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal((n, cin, size, size)).astype(dtype)
    w = rng.standard_normal((cout, cin // g, k, k)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    passes = _engines(x, w, s, p, g, dtype)
    for chosen, all_ in passes.values():
        assert chosen in all_ and "im2col" in all_
    if not any(engine in all_ for _, all_ in passes.values()):
        return False
    pads = (p, p, p, p)
    with forced(engine):
        out = rconv.conv2d(x, w, b, stride=s, padding=p, groups=g)
        dy = rng.standard_normal(out.shape).astype(dtype)
        gi, gw, gb = rconv.conv2d_backward(dy, x, w, stride=s, padding=p, groups=g)
        rconv.set_num_threads(1)
        try:
            out1 = rconv.conv2d(x, w, b, stride=s, padding=p, groups=g)
            gi1, gw1, _ = rconv.conv2d_backward(dy, x, w, stride=s, padding=p, groups=g)
        finally:
            rconv.set_num_threads(2)
    want = ref.conv2d(x, w, b, (s, s), pads, (1, 1), g).astype(dtype)
    assert_matches_reference(out, want, x, w * (cin // g) * k * k)
    wgi, wgw = ref.conv2d_grads(dy, x, w, (s, s), pads, (1, 1), g)
    wgi, wgw = wgi.astype(dtype), wgw.astype(dtype)
    assert_matches_reference(gi, wgi, dy, w * (cout // g) * k * k)
    assert_matches_reference(gw, wgw, dy, x * out.shape[2] * out.shape[3] * n)
    np.testing.assert_allclose(gb, dy.astype(np.float64).sum(axis=(0, 2, 3)), rtol=1e-5)
    for a, b1 in ((out, out1), (gi, gi1), (gw, gw1)):
        np.testing.assert_array_equal(a, b1)
    return True


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_engine_matches_the_definition(engine, dtype):
    ran = [case for case in CASES if _check(case, dtype, engine)]
    # every engine has cases here (im2col runs them all)
    assert ran, f"no case runs on {engine}"


@given(
    n=st.integers(1, 3),
    cg=st.integers(1, 12),
    og=st.integers(1, 12),
    groups=st.sampled_from([1, 1, 2, 3, "depthwise"]),
    size=st.integers(1, 14),
    k=st.sampled_from([1, 2, 3, 5]),
    s=st.sampled_from([1, 2]),
    p=st.integers(0, 2),
    dtype=st.sampled_from([np.float32, np.float64]),
    engine=st.sampled_from(ENGINES),
)
def test_engines_on_random_shapes(n, cg, og, groups, size, k, s, p, dtype, engine):
    if groups == "depthwise":
        groups, cg, og = 8, 1, 1
    size = max(size, k - 2 * min(p, k - 1))
    p = min(p, k - 1)
    if size + 2 * p < k:
        size = k
    case = (n, cg * groups, og * groups, size, k, s, p, groups)
    _check(case, dtype, engine)


def test_force_conv_engine_names_the_engines():
    with pytest.raises(ValueError, match=r"_force_conv_engine: engine must be one of"):
        rconv._rconv._force_conv_engine("fastest")
    x, w = np.ones((1, 2, 5, 5)), np.ones((4, 2, 3, 3))
    engines = _engines(x, w, 1, 1, 1, np.float64)
    assert set(engines) == {"forward", "input_grad", "weight_grad"}


@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_weight_grad_with_an_infinity_spreads_only_to_taps_meeting_it(stride):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 8, 9, 9))
    x[1, 3, 4, 0] = np.inf  # first column: flat reads across rows would meet it elsewhere
    w = rng.standard_normal((8, 1, 3, 3))
    out = rconv.conv2d(x, w, None, stride=stride, padding=1, groups=8)
    dy = rng.standard_normal(out.shape)
    _, gw, _ = rconv.conv2d_backward(dy, x, w, stride=stride, padding=1, groups=8)
    with np.errstate(invalid="ignore"):
        _, want = ref.conv2d_grads(dy, x, w, (stride, stride), (1, 1, 1, 1), (1, 1), 8)
    np.testing.assert_array_equal(np.isfinite(gw), np.isfinite(want))
    assert np.isfinite(gw[[c for c in range(8) if c != 3]]).all()
    np.testing.assert_allclose(gw[np.isfinite(want)], want[np.isfinite(want)], rtol=1e-9)
