"""correlate2d_backward / convolve2d_backward: finite differences over random shapes (kernels
larger than the image included), every mode and boundary alias, exact integer and complex
conventions, stacks, threads, and the error paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

import rconv
from conftest import BOUNDARY_ALIASES as BOUNDARIES
from conftest import FUNCS, MODES, mode_shapes, seed_for, signal_cases, valid_ok


def objective(func, x, k, g, mode, boundary, fill, axes=None):
    return (getattr(rconv, func)(x, k, mode, boundary, fill, axes=axes) * g).sum()


def finite_difference(func, x, k, g, mode, boundary, fill, which, h=1e-6, axes=None):
    """Central differences of the objective along every element of `x` (which=0) or `k`."""
    arr = x if which == 0 else k
    grad = np.zeros(arr.shape)
    for u in range(arr.size):
        step = np.zeros(arr.shape)
        step.flat[u] = h
        if which == 0:
            hi, lo = (x + step, k), (x - step, k)
        else:
            hi, lo = (x, k + step), (x, k - step)
        grad.flat[u] = (
            objective(func, *hi, g, mode, boundary, fill, axes)
            - objective(func, *lo, g, mode, boundary, fill, axes)
        ) / (2 * h)
    return grad


@given(**signal_cases((1, 6), (1, 8), BOUNDARIES))
def test_finite_differences(s1, s2, mode, boundary, func, seed):
    if mode == "valid" and not valid_ok(s1, s2):
        s2 = tuple(min(a, b) for a, b in zip(s1, s2))
    rng = np.random.default_rng(seed)
    x, k = rng.standard_normal(s1), rng.standard_normal(s2)
    g = rng.standard_normal(getattr(rconv, func)(x, k, mode, boundary).shape)
    gx, gk = getattr(rconv, func + "_backward")(g, x, k, mode, boundary, 0.7)
    assert gx.shape == x.shape and gk.shape == k.shape
    for which, got in ((0, gx), (1, gk)):
        want = finite_difference(func, x, k, g, mode, boundary, 0.7, which)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("boundary", ["fill", "symm", "wrap"])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", FUNCS)
def test_kernels_larger_than_the_image(func, mode, boundary):
    rng = np.random.default_rng(seed_for("large", func, mode, boundary))
    x, k = rng.standard_normal((3, 2)), rng.standard_normal((7, 9))
    g = rng.standard_normal(getattr(rconv, func)(x, k, mode, boundary).shape)
    gx, gk = getattr(rconv, func + "_backward")(g, x, k, mode, boundary, -1.5)
    np.testing.assert_allclose(
        gx, finite_difference(func, x, k, g, mode, boundary, -1.5, 0), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        gk, finite_difference(func, x, k, g, mode, boundary, -1.5, 1), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16])
def test_integers_keep_their_dtype_exactly(dtype):
    # S is bilinear: a unit step of one element changes S by exactly that element's gradient
    rng = np.random.default_rng(seed_for("int", np.dtype(dtype).name))
    x = rng.integers(0, 5, (5, 6)).astype(dtype)
    k = rng.integers(0, 3, (3, 2)).astype(dtype)
    for func in FUNCS:
        for boundary in ("fill", "symm", "wrap"):
            g = rng.integers(0, 3, getattr(rconv, func)(x, k, "same").shape).astype(dtype)
            gx, gk = getattr(rconv, func + "_backward")(g, x, k, "same", boundary, 2)
            assert gx.dtype == dtype and gk.dtype == dtype
            s0 = objective(func, x, k, g, "same", boundary, 2)
            for arr, grad, which in ((x, gx, 0), (k, gk, 1)):
                for u in range(arr.size):
                    xp, kp = x.copy(), k.copy()
                    (xp if which == 0 else kp).flat[u] += 1
                    step = objective(func, xp, kp, g, "same", boundary, 2) - s0
                    assert step == grad.flat[u], (func, boundary, which, u)


@pytest.mark.parametrize("mode", MODES)
def test_complex_convention(mode):
    rng = np.random.default_rng(seed_for("complex", mode))
    c = lambda *s: rng.standard_normal(s) + 1j * rng.standard_normal(s)  # noqa: E731
    for s1, s2 in mode_shapes(mode, [((5, 6), (3, 2)), ((2, 3), (4, 5))]):
        x, k = c(*s1), c(*s2)
        for func in FUNCS:
            g = c(*getattr(rconv, func)(x, k, mode).shape)
            gx, gk = getattr(rconv, func + "_backward")(g, x, k, mode, "symm")
            dx, dk = c(*s1), c(*s2)
            s0 = objective(func, x, k, g, mode, "symm", 0)
            step_x = objective(func, x + dx, k, g, mode, "symm", 0) - s0
            step_k = objective(func, x, k + dk, g, mode, "symm", 0) - s0
            # correlate2d conjugates the kernel it slides: in2, or in1 after the 'valid' swap
            swapped = mode == "valid" and s1 != s2 and all(a <= b for a, b in zip(s1, s2))
            conj_k = func == "correlate2d" and not swapped
            conj_x = func == "correlate2d" and swapped
            want_x = ((np.conj(dx) if conj_x else dx) * gx).sum()
            want_k = ((np.conj(dk) if conj_k else dk) * gk).sum()
            np.testing.assert_allclose(step_x, want_x, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(step_k, want_k, rtol=1e-10, atol=1e-10)


def test_valid_matches_corr2d_backward_and_ignores_the_boundary():
    rng = np.random.default_rng(5)
    x, k = rng.standard_normal((7, 8)), rng.standard_normal((3, 4))
    g = rng.standard_normal((5, 5))
    want = rconv.corr2d_backward(g, x, k)
    for boundary in BOUNDARIES:
        got = rconv.correlate2d_backward(g, x, k, "valid", boundary, 9.0)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_fillvalue_shapes_grad_in2_only():
    rng = np.random.default_rng(6)
    x, k = rng.standard_normal((4, 5)), rng.standard_normal((3, 3))
    g = rng.standard_normal((6, 7))
    gx0, gk0 = rconv.correlate2d_backward(g, x, k, "full", "fill", 0)
    gx1, gk1 = rconv.correlate2d_backward(g, x, k, "full", "fill", 2.0)
    np.testing.assert_array_equal(gx0, gx1)
    assert not np.allclose(gk0, gk1)
    # the padded cells are what the kernel multiplies: the difference is the gradient of a
    # zero image padded with 2
    _, gk_pad = rconv.correlate2d_backward(g, 0 * x, k, "full", "fill", 2.0)
    np.testing.assert_allclose(gk1 - gk0, gk_pad, atol=1e-12)


@pytest.mark.parametrize("func", FUNCS)
def test_stacks_sum_over_broadcast_axes(func, threads):
    rng = np.random.default_rng(seed_for("stack-bwd", func))
    fwd, bwd = getattr(rconv, func), getattr(rconv, func + "_backward")
    # (N, H, W) with one kernel: grad_in2 is the sum over the images
    x, k = rng.standard_normal((20, 9, 8)), rng.standard_normal((3, 4))
    g = rng.standard_normal(fwd(x, k, "same", "wrap", axes=(1, 2)).shape)
    gx, gk = bwd(g, x, k, "same", "wrap", axes=(1, 2))
    parts = [bwd(g[i], x[i], k, "same", "wrap") for i in range(20)]
    np.testing.assert_allclose(gx, np.stack([p[0] for p in parts]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gk, sum(p[1] for p in parts), rtol=1e-12, atol=1e-12)
    # a filter bank over (H, W, C): each of 2 images meets 3 kernels
    xc = rng.standard_normal((7, 6, 2, 1))
    kb = rng.standard_normal((3, 3, 1, 3))
    g = rng.standard_normal(fwd(xc, kb, "full", "symm", axes=(0, 1)).shape)
    assert g.shape == (9, 8, 2, 3)
    gx, gk = bwd(g, xc, kb, "full", "symm", axes=(0, 1))
    assert gx.shape == xc.shape and gk.shape == kb.shape
    for i in range(2):
        want = sum(
            bwd(g[:, :, i, j], xc[:, :, i, 0], kb[:, :, 0, j], "full", "symm")[0] for j in range(3)
        )
        np.testing.assert_allclose(gx[:, :, i, 0], want, rtol=1e-12, atol=1e-12)
    for j in range(3):
        want = sum(
            bwd(g[:, :, i, j], xc[:, :, i, 0], kb[:, :, 0, j], "full", "symm")[1] for i in range(2)
        )
        np.testing.assert_allclose(gk[:, :, 0, j], want, rtol=1e-12, atol=1e-12)
    # the thread count does not change a bit
    results = []
    for n in (1, 2):
        threads(n)
        results.append(bwd(g, xc, kb, "full", "symm", axes=(0, 1)))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_dtypes_promote_and_inputs_are_unchanged():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 5)).astype(np.float32)
    k = rng.standard_normal((2, 2)).astype(np.float32)
    g = rng.standard_normal((6, 6))
    x0, k0, g0 = x.copy(), k.copy(), g.copy()
    gx, gk = rconv.correlate2d_backward(g, x, k)
    assert gx.dtype == gk.dtype == np.float64
    gx32, _ = rconv.correlate2d_backward(g.astype(np.float32), x, k)
    assert gx32.dtype == np.float32
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)
    np.testing.assert_array_equal(g, g0)
    # any strides
    big = rng.standard_normal((12, 12))
    xs = big[::2, ::-2]
    gs = rng.standard_normal((7, 7))[::-1]
    a = rconv.convolve2d_backward(gs, xs, k, "full", "symm")
    b = rconv.convolve2d_backward(gs.copy(), xs.copy(), k, "full", "symm")
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("func", ["correlate2d_backward", "convolve2d_backward"])
def test_errors(func):
    f = getattr(rconv, func)
    x, k = np.ones((5, 6)), np.ones((2, 3))
    with pytest.raises(
        ValueError,
        match=rf"{func}: grad_output must have the forward output's "
        r"shape \[6, 8\], got \[6, 7\]",
    ):
        f(np.ones((6, 7)), x, k)
    with pytest.raises(ValueError, match=f"{func}: in1 must be a 2-D array, got 3"):
        f(np.ones((1, 6, 8)), np.ones((1, 5, 6)), k)
    with pytest.raises(ValueError, match=f"{func}: for 'valid' mode"):
        f(np.ones((1, 1)), np.ones((2, 5)), np.ones((3, 3)), "valid")
    with pytest.raises(ValueError, match=f"{func}: mode must be"):
        f(np.ones((6, 8)), x, k, "nope")
    with pytest.raises(ValueError, match=f"{func}: boundary must be"):
        f(np.ones((6, 8)), x, k, "full", "reflect")
    with pytest.raises(TypeError, match=f"{func}: unsupported dtype"):
        f(np.ones((6, 8), bool), x.astype(bool), k.astype(bool))
    with pytest.raises(ValueError, match=f"{func}: .*do not broadcast"):
        f(np.ones((3, 6, 8)), np.ones((3, 5, 6)), np.ones((2, 2, 3)), axes=(1, 2))
    with pytest.raises(ValueError, match=f"{func}: grad_output must have"):
        f(np.ones((2, 6, 8)), np.ones((3, 5, 6)), k, axes=(1, 2))
