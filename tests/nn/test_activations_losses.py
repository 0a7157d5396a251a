"""LeakyReLU, Sigmoid, Tanh, CrossEntropyLoss and MSELoss through the Rust kernels: the
loop-by-loop references of tests/nn/nn_reference.py (extreme values, NaN and inf included),
hypothesis over shapes and parameters, thread-count invariance, strided and unmodified
inputs, the NumPy fallback of other dtypes, and the error paths."""

from __future__ import annotations

import ast
import os

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rconv
from conftest import seed_for
from rconv import nn
from rconv.nn import functional as F

FLOATS = [np.float32, np.float64]
EXTREMES = [0.0, -0.0, 1e-30, -1e-30, 1e-45, 0.5, -0.5, 0.625, -0.625, 3.0, -3.0, 20.0]
EXTREMES += [-20.0, 88.0, -88.0, 88.7, -88.7, 89.0, -89.0, 100.0, -100.0, 709.0, -709.0]
EXTREMES += [710.0, -746.0, 1000.0, -1000.0, 1e30, -1e30, np.inf, -np.inf, np.nan]


def rng_for(*key):
    return np.random.default_rng(seed_for("act-loss", *key))


def values(dtype, n=4000, *key):
    """Normal values, a wide spread, and every extreme (as the dtype holds them)."""
    rng = rng_for(np.dtype(dtype).name, n, *key)
    with np.errstate(over="ignore"):
        v = np.concatenate(
            [rng.standard_normal(n), rng.uniform(-30, 30, n), np.array(EXTREMES)]
        ).astype(dtype)
    return v


def ulp_close(got, want, dtype, ulps):
    """Within `ulps` units of the dtype's precision, relative (NaN where NaN), with an
    absolute floor at the smallest normal number (subnormal results)."""
    eps = np.finfo(dtype).eps
    tiny = np.finfo(dtype).tiny
    np.testing.assert_allclose(got, want, rtol=ulps * eps, atol=tiny, equal_nan=True)


def close(got, want, dtype):
    """float32: a few ulp; float64: rtol 1e-9 (the task's tolerance; the kernels are far
    closer)."""
    if np.dtype(dtype) == np.float32:
        ulp_close(got, want, dtype, 4)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300, equal_nan=True)


# ------------------------------------------------------------------------ activations


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, -1.5, 3.0])
def test_leaky_relu_matches_reference_exactly(dtype, slope):
    x = values(dtype)
    act = nn.LeakyReLU(slope)
    y = act.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    s = np.dtype(dtype).type(slope)
    want = ref.leaky_relu(x, float(s)).astype(dtype)
    np.testing.assert_array_equal(y, want)  # one multiply: exact
    # -inf * 0 is NaN and a negative slope makes 0 * slope = -0, as torch's x * slope
    if slope == 0.0:
        assert np.isnan(y[x == -np.inf]).all()
    g = values(dtype, 4000, "g")[: x.size]
    d = act.backward(g)
    assert d.dtype == dtype
    np.testing.assert_array_equal(d, ref.leaky_relu_grad(g, x, float(s)).astype(dtype))
    np.testing.assert_array_equal(F.leaky_relu(x, slope), y)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_and_tanh_match_reference(dtype):
    x = values(dtype)
    for layer, fwd, f, grad in (
        (nn.Sigmoid(), ref.sigmoid, F.sigmoid, ref.sigmoid_grad),
        (nn.Tanh(), ref.tanh, F.tanh, ref.tanh_grad),
    ):
        y = layer.forward(x)
        assert y.dtype == dtype and y.shape == x.shape
        # exp within 1 ulp, the sigmoid's add and divide: 2.5 ulp; tanh: 1.5 ulp
        ulp_close(y, fwd(x), dtype, 3)
        np.testing.assert_array_equal(f(x), y)
        g = values(dtype, 4000, "g")[: x.size]
        d = layer.backward(g)
        # the gradient in torch's order, from the saved output: exact in its own dtype
        # (tanh's 1 - y*y is one fused operation on CPUs with FMA, as in torch's kernel)
        with np.errstate(invalid="ignore", over="ignore"):
            if isinstance(layer, nn.Sigmoid):
                np.testing.assert_array_equal(d, g * (1 - y) * y)
            elif rconv._rconv.simd_level() == "generic":
                np.testing.assert_array_equal(d, g * (1 - y * y))
            elif dtype == np.float32:  # the fused 1 - y*y, exactly, through float64
                fused = (1 - y.astype(np.float64) * y).astype(np.float32)
                np.testing.assert_array_equal(d, g * fused)
        with np.errstate(invalid="ignore"):
            want = grad(g, y)
        # 1 - y and 1 - y*y cancel near |y| = 1 (in the reference too): an absolute bound
        eps = np.finfo(dtype).eps
        rtol = 4 * eps if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(d, want, rtol=rtol, atol=4 * eps * 30, equal_nan=True)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_tanh_limits(dtype):
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0, np.inf, -np.inf, np.nan, -0.0], dtype)
    s = F.sigmoid(x)
    np.testing.assert_array_equal(s[[0, 2, 3, 4, 5, 6]], [0.0, 0.5, 1.0, 1.0, 1.0, 0.0])
    assert np.isnan(s[7])
    t = F.tanh(np.array([20.0, -20.0, 0.0, -0.0, np.inf, -np.inf, np.nan, 1e-30], dtype))
    np.testing.assert_array_equal(t[:6], [1.0, -1.0, 0.0, -0.0, 1.0, -1.0])
    assert np.signbit(t[3]) and np.isnan(t[6]) and t[7] == np.dtype(dtype).type(1e-30)
    # small arguments keep full relative precision (no cancellation)
    small = np.geomspace(1e-20, 0.7, 500).astype(dtype)
    ulp_close(F.tanh(small), ref.tanh(small), dtype, 2)
    ulp_close(F.tanh(-small), -ref.tanh(small), dtype, 2)


@given(
    hnp.arrays(
        st.sampled_from(FLOATS),
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=7),
        elements=st.one_of(
            st.floats(-50, 50, width=32),
            # +-2**100 (about 1.3e30): exact in float32 too (hypothesis 6.80 refuses an
            # element that float32 rounds, such as 1e30)
            st.sampled_from([0.0, -0.0, np.nan, np.inf, -np.inf, 2.0**100, -(2.0**100), 1000.0]),
        ),
    ),
    st.floats(-3, 3, width=32),
)
def test_activations_property_against_reference(x, slope):
    x0 = x.copy()
    dt = x.dtype
    g = np.full_like(x, 1.5)
    lr = nn.LeakyReLU(slope)
    s = float(dt.type(slope))
    np.testing.assert_array_equal(lr.forward(x), ref.leaky_relu(x, s).astype(dt))
    np.testing.assert_array_equal(lr.backward(g), ref.leaky_relu_grad(g, x, s).astype(dt))
    for layer, fwd in ((nn.Sigmoid(), ref.sigmoid), (nn.Tanh(), ref.tanh)):
        y = layer.forward(x)
        assert y.shape == x.shape and y.dtype == dt
        ulp_close(y, fwd(x), dt, 3)
        assert layer.backward(g).shape == x.shape
    np.testing.assert_array_equal(x, x0)  # the input is never modified


# ------------------------------------------------------------------------------ losses


def ce_close(loss, want, dtype, c):
    if np.dtype(dtype) == np.float32:
        # per row: the max, a sum of C exponentials and a log in float32
        assert loss == pytest.approx(want, rel=8 * c * 6e-8 + 1e-6, abs=1e-6)
    else:
        assert loss == pytest.approx(want, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(32, 10), (64, 10), (256, 1000), (3, 1), (5, 37)])
def test_cross_entropy_matches_reference(dtype, shape):
    n, c = shape
    rng = rng_for("ce", shape)
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    t = rng.integers(0, c, n)
    loss = nn.CrossEntropyLoss()
    got = loss.forward(z, t)
    assert isinstance(got, float)
    want, p = ref.cross_entropy(z, t)
    ce_close(got, want, dtype, c)
    assert got == float(np.dtype(dtype).type(got))  # a value of the dtype, as torch's
    for grad in (None, 2.5):
        d = loss.backward(grad)
        assert d.dtype == dtype and d.shape == shape
        want_g = ref.cross_entropy_grad(p, t, 1.0 if grad is None else grad)
        close(d, want_g, dtype) if dtype == np.float64 else np.testing.assert_allclose(
            d, want_g, rtol=2e-6, atol=3e-7 / n
        )
    assert F.cross_entropy(z, t) == got


def test_cross_entropy_extreme_logits():
    for dtype in FLOATS:
        z = np.array([[0.0, 1000.0, -1000.0], [1e30, -1e30, 0.0]], dtype)
        loss = nn.CrossEntropyLoss()
        assert loss.forward(z, np.array([1, 0])) == 0.0
        np.testing.assert_array_equal(loss.backward(), [[0, 0, 0], [0, 0, 0]])
        assert loss.forward(z, np.array([0, 1])) == pytest.approx((1000 + float(dtype(2e30))) / 2)
        # -inf logit at the target: -log(0) = inf; NaN or +inf in a row: NaN (torch)
        assert nn.CrossEntropyLoss().forward(np.array([[0.0, -np.inf]], dtype), [1]) == np.inf
        for bad in (np.nan, np.inf):
            ce = nn.CrossEntropyLoss()
            assert np.isnan(ce.forward(np.array([[0.0, bad], [1.0, 2.0]], dtype), [0, 0]))
            g = ce.backward()
            assert np.isnan(g[0]).all() and np.isfinite(g[1]).all()
        # an empty batch: NaN, as torch's mean of nothing; its gradient is empty
        ce = nn.CrossEntropyLoss()
        assert np.isnan(ce.forward(np.zeros((0, 4), dtype), np.zeros(0, np.int64)))
        assert ce.backward().shape == (0, 4)


@given(
    st.integers(1, 40),
    st.integers(1, 60),
    st.sampled_from(FLOATS),
    st.floats(0.01, 30),
    st.sampled_from([np.int64, np.int32, np.uint8, np.int16]),
    st.integers(0, 2**32 - 1),
)
def test_cross_entropy_property(n, c, dtype, scale, tdtype, seed):
    c = min(c, 255)
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, c)) * scale).astype(dtype)
    t = rng.integers(0, c, n).astype(tdtype)
    z0, t0 = z.copy(), t.copy()
    loss = nn.CrossEntropyLoss()
    got = loss.forward(z, t)
    want, p = ref.cross_entropy(z, t.astype(np.int64))
    ce_close(got, want, dtype, c)
    d = loss.backward()
    np.testing.assert_allclose(
        d,
        ref.cross_entropy_grad(p, t.astype(np.int64)),
        rtol=1e-5 if dtype == np.float32 else 1e-9,
        atol=1e-6 / n if dtype == np.float32 else 1e-15,
    )
    np.testing.assert_array_equal(z, z0)
    np.testing.assert_array_equal(t, t0)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(32, 10), (8, 64, 56, 56), (0, 3), ()])
def test_mse_matches_reference(dtype, reduction, shape):
    rng = rng_for("mse", shape, reduction)
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape).astype(dtype)
    loss = nn.MSELoss(reduction)
    got = loss.forward(x, t)
    want = ref.mse(x, t, reduction)
    if reduction == "none":
        assert got.dtype == dtype and got.shape == x.shape
        d = x - t
        np.testing.assert_array_equal(got, d * d)  # in the dtype, as torch
    elif np.asarray(x).size == 0 and reduction == "mean":
        assert np.isnan(got)
    else:
        assert isinstance(got, float)
        assert got == float(np.dtype(dtype).type(got))
        rel = 2e-7 if dtype == np.float32 else 1e-12
        assert got == pytest.approx(want, rel=rel, abs=1e-300)
    grad = rng.standard_normal(shape).astype(dtype) if reduction == "none" else 0.75
    for g in (None, grad):
        d = loss.backward(g)
        assert d.dtype == dtype and d.shape == x.shape
        close(d, ref.mse_grad(x, t, reduction, 1.0 if g is None else g), dtype)
    assert np.all(F.mse_loss(x, t, reduction) == got) or np.isnan(got)


@given(
    hnp.arrays(
        st.sampled_from(FLOATS),
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=9),
        elements=st.floats(-1e3, 1e3, width=32),
    ),
    st.sampled_from(["mean", "sum", "none"]),
    st.integers(0, 2**32 - 1),
)
def test_mse_property(x, reduction, seed):
    t = np.random.default_rng(seed).standard_normal(x.shape).astype(x.dtype)
    x0 = x.copy()
    loss = nn.MSELoss(reduction)
    got = loss.forward(x, t)
    want = ref.mse(x, t, reduction)
    if reduction == "none":
        np.testing.assert_array_equal(got, (x - t) * (x - t))
    elif not (reduction == "mean" and x.size == 0):
        assert got == pytest.approx(want, rel=3e-7 if x.dtype == np.float32 else 1e-12)
    close(loss.backward(), ref.mse_grad(x, t, reduction), x.dtype)
    np.testing.assert_array_equal(x, x0)


def test_mse_promotes_like_numpy():
    x32 = np.arange(6, dtype=np.float32).reshape(2, 3)
    loss = nn.MSELoss("none")
    assert loss.forward(x32, np.ones((2, 3))).dtype == np.float64  # float32 - float64
    assert loss.backward().dtype == np.float64
    assert nn.MSELoss("none").forward(x32, np.ones((2, 3), np.int64)).dtype == np.float64
    assert nn.MSELoss("none").forward(x32, np.ones((2, 3), np.float32)).dtype == np.float32


# ------------------------------------------------------- threads, strides, other dtypes


def test_thread_count_invariance(threads):
    rng = rng_for("threads")
    x = rng.standard_normal((4, 16, 64, 64)).astype(np.float32)  # several parallel chunks
    g = rng.standard_normal(x.shape).astype(np.float32)
    z = rng.standard_normal((512, 1000)).astype(np.float32)
    t = rng.integers(0, 1000, 512)
    outs = []
    for nt in (1, 2):
        threads(nt)
        run = []
        for layer in (nn.LeakyReLU(0.1), nn.LeakyReLU(-0.5), nn.Sigmoid(), nn.Tanh()):
            run += [layer.forward(x), layer.backward(g)]
        ce = nn.CrossEntropyLoss()
        run += [np.array(ce.forward(z, t)), ce.backward(0.5)]
        for red in ("mean", "sum", "none"):
            mse = nn.MSELoss(red)
            run += [np.asarray(mse.forward(x, g)), mse.backward(g if red == "none" else 2.0)]
        outs.append(run)
    for a, b in zip(*outs):
        assert a.tobytes() == b.tobytes()


def test_strided_inputs_and_inputs_unmodified():
    rng = rng_for("strided")
    base = rng.standard_normal((6, 8, 10)).astype(np.float32)
    x = base[::2, :, ::-3]  # not contiguous
    x0 = x.copy()
    for layer in (nn.LeakyReLU(0.3), nn.Sigmoid(), nn.Tanh()):
        g = np.ones((x.shape[2], x.shape[1], x.shape[0]), np.float32).T  # F-ordered
        np.testing.assert_array_equal(
            layer.forward(x),
            type(layer)().forward(x0)
            if not isinstance(layer, nn.LeakyReLU)
            else nn.LeakyReLU(0.3).forward(x0),
        )
        np.testing.assert_array_equal(layer.backward(g), layer.backward(np.ascontiguousarray(g)))
    np.testing.assert_array_equal(x, x0)
    z = rng.standard_normal((20, 12))[:, ::2]
    t = np.arange(80)[::4] % 6
    ce = nn.CrossEntropyLoss()
    assert ce.forward(z, t) == nn.CrossEntropyLoss().forward(z.copy(), t.copy())
    mse = nn.MSELoss()
    assert mse.forward(base[:, ::2], base[:, 1::2]) == nn.MSELoss().forward(
        base[:, ::2].copy(), base[:, 1::2].copy()
    )


def test_backward_reads_saved_state_not_the_input():
    x = np.array([-2.0, -1.0, 1.0, 3.0])
    for slope in (0.1, -0.5):
        lr = nn.LeakyReLU(slope)
        xi = x.copy()
        lr.forward(xi)
        xi *= -1  # in place, between the passes
        np.testing.assert_array_equal(lr.backward(np.ones(4)), [slope, slope, 1, 1])
    a, t = x.copy(), np.zeros(4)
    mse = nn.MSELoss()
    mse.forward(a, t)
    a[:] = 0
    np.testing.assert_array_equal(mse.backward(), x / 2)


def test_other_float_dtypes_keep_numpy():
    x16 = np.array([-2.0, 0.0, 3.0], np.float16)
    assert nn.LeakyReLU(0.5).forward(x16).dtype == np.float16
    np.testing.assert_array_equal(nn.LeakyReLU(0.5).forward(x16), [-1.0, 0.0, 3.0])
    s = nn.Sigmoid()
    assert s.forward(x16).dtype == np.float16 and s.backward(np.ones(3, np.float16)).dtype == (
        np.float16
    )
    assert nn.Tanh().forward(x16).dtype == np.float16
    xl = np.array([0.5, -0.5], np.longdouble)
    assert nn.Tanh().forward(xl).dtype == np.longdouble
    # a gradient of another dtype than the saved array: NumPy's promotion, as before
    lr = nn.LeakyReLU(0.1)
    lr.forward(np.array([-1.0, 1.0], np.float32))
    assert lr.backward(np.ones(2)).dtype == np.float64
    sg = nn.Sigmoid()
    sg.forward(np.zeros(2, np.float32))
    np.testing.assert_array_equal(sg.backward(np.ones(2)), [0.25, 0.25])
    # integer logits: NumPy's forward, float64 probabilities
    ce = nn.CrossEntropyLoss()
    assert ce.forward(np.array([[0, 0], [0, 0]]), [0, 1]) == pytest.approx(np.log(2))
    assert ce.backward().dtype == np.float64
    mse = nn.MSELoss("none")
    assert mse.forward(x16, x16).dtype == np.float16
    assert mse.backward(np.ones(3, np.float16)).dtype == np.float16


# -------------------------------------------------------------------------------- errors


def test_activation_errors():
    for layer in (nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh()):
        name = type(layer).__name__
        with pytest.raises(TypeError, match=f"{name}: input must be a floating-point"):
            layer.forward(np.arange(3))
        with pytest.raises(RuntimeError, match=f"{name}.backward called before forward"):
            layer.backward(np.ones(3))
        layer.forward(np.ones((2, 3)))
        with pytest.raises(ValueError, match=rf"{name}.backward: grad has shape \(3,\)"):
            layer.backward(np.ones(3))
    for f in (F.sigmoid, F.tanh, F.leaky_relu):
        with pytest.raises(TypeError, match=f"{f.__name__}: input must be a floating-point"):
            f(np.arange(3))
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a real number"):
        F.leaky_relu(np.ones(2), "a")
    with pytest.raises(ValueError, match="leaky_relu: negative_slope must be finite"):
        F.leaky_relu(np.ones(2), np.inf)
    with pytest.raises(TypeError, match="LeakyReLU: negative_slope must be a real number"):
        nn.LeakyReLU(True)
    r = rconv._rconv
    with pytest.raises(ValueError, match="sigmoid_backward: grad_output has 3 elements"):
        r.sigmoid(np.ones(4), np.ones(3))
    with pytest.raises(TypeError, match="tanh: input has unsupported dtype int32"):
        r.tanh(np.ones(3, np.int32))
    with pytest.raises(TypeError, match="leaky_relu: negative_slope must be a real number"):
        r.leaky_relu(np.ones(3), "x")
    with pytest.raises(ValueError, match="leaky_relu: input must be 1-D"):
        r.leaky_relu(np.ones((2, 2)), 0.1)


def test_loss_errors_and_nothing_half_applied():
    ce = nn.CrossEntropyLoss()
    with pytest.raises(RuntimeError, match="CrossEntropyLoss.backward called before forward"):
        ce.backward()
    z = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], np.float32)
    ce.forward(z, [2, 0])
    g = ce.backward()
    for bad, match in (
        ([0, 3], r"in \[0, 3\) for the 3 classes of the logits, got values from 0 to 3"),
        ([-1, 0], r"got values from -1 to 0"),
        (np.array([0, 2**63 + 5], np.uint64), r"got values from 0 to 9223372036854775813"),
        (np.array([1.0, 2.0]), r"got dtype float64 \(convert them with targets.astype"),
        (np.array([True, False]), r"got dtype bool \(convert"),
        ([0], r"expected logits \(N, C\) and targets \(N,\)"),
    ):
        with pytest.raises(ValueError, match="CrossEntropyLoss: .*" + match):
            ce.forward(z, bad)
        np.testing.assert_array_equal(ce.backward(), g)  # the state of the last good call
    with pytest.raises(ValueError, match="cross_entropy: targets must be class indices"):
        F.cross_entropy(z, [0, 5])
    mse = nn.MSELoss()
    with pytest.raises(ValueError, match="MSELoss: input and target must have the same shape"):
        mse.forward(np.ones(3), np.ones(2))
    with pytest.raises(TypeError, match="MSELoss: input must be a floating-point"):
        mse.forward(np.ones(3, np.int64), np.ones(3))
    with pytest.raises(ValueError, match="mse_loss: reduction must be 'mean', 'sum' or 'none'"):
        F.mse_loss(np.ones(2), np.ones(2), "max")
    m = nn.MSELoss("none")
    m.forward(np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"MSELoss.backward: grad has shape \(2,\)"):
        m.backward(np.ones(2))
    r = rconv._rconv
    with pytest.raises(TypeError, match="cross_entropy: target must be an int64 array"):
        r.cross_entropy(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="cross_entropy: target has 1 elements"):
        r.cross_entropy(np.zeros((2, 3)), np.zeros(1, np.int64))
    with pytest.raises(ValueError, match=r"cross_entropy_backward: target must hold class"):
        r.cross_entropy_backward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="cross_entropy_backward: grad must be a real number"):
        r.cross_entropy_backward(np.zeros((2, 3)), np.array([0, 1]), "1")
    with pytest.raises(ValueError, match="mse_loss: reduction must be 'mean', 'sum' or 'none'"):
        r.mse_loss(np.ones(2), np.ones(2), "max")
    with pytest.raises(TypeError, match="mse_loss: target must have the dtype of input"):
        r.mse_loss(np.ones(2), np.ones(2, np.float32), "sum")
    with pytest.raises(ValueError, match="mse_loss_backward: grad has 1 elements, diff 2"):
        r.mse_loss_backward(np.ones(2), "none", np.ones(1))


def test_reduction_choice_matches_the_stub():
    path = os.path.join(os.path.dirname(rconv.__file__), "_rconv.pyi")
    tree = ast.parse(open(path).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "Reduction":
            names = [e.value for e in node.value.slice.elts]
    assert names == list(rconv._rconv.CHOICES["Reduction"]) == ["mean", "sum", "none"]
