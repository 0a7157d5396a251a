"""nn.BatchNorm2d and nn.functional.batch_norm through the Rust kernels (rconv._rconv.
batch_norm2d and batch_norm2d_backward): the NumPy loops of nn_reference.py (torch's
documented formulas) for the output, the running statistics and the gradients, in training
and eval, with every option; hypothesis over shapes and hyperparameters; bit-identical
results for 1 and 2 threads; strided and foreign-dtype inputs, inputs never modified; error
paths that name the function and the argument and change nothing."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import seed_for
from rconv import nn
from rconv.nn import functional as F

R = rconv._rconv


def rng_for(*key):
    return np.random.default_rng(seed_for(*key))


def tols(dtype):
    """(rtol, atol) against the float64 reference: float64 at 1e-9; float32 at a few
    hundred ulps of the O(1) normalised values (the statistics are accumulated in float64,
    the output rounded once to float32)."""
    return (1e-9, 1e-9) if np.dtype(dtype) == np.float64 else (2e-5, 2e-5)


def close(got, want, dtype, scale=1.0, err_msg=""):
    rtol, atol = tols(dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol * scale, err_msg=err_msg)


def make_layer(c, dtype, rng, affine=True, track=True, momentum=0.1, eps=1e-5):
    bn = nn.BatchNorm2d(
        c, eps=eps, momentum=momentum, affine=affine, track_running_stats=track, dtype=dtype
    )
    if affine:
        bn.weight[:] = rng.uniform(0.5, 2, c)
        bn.bias[:] = rng.standard_normal(c)
    return bn


def batch(rng, shape, dtype, scale=2.0, offset=1.0):
    return (rng.standard_normal(shape) * scale + offset).astype(dtype)


def check_step(bn, x, g, dtype, training_stats):
    """One forward + backward of `bn` against the reference; returns nothing, asserts."""
    w = None if bn.weight is None else bn.weight.astype(np.float64)
    b = None if bn.bias is None else bn.bias.astype(np.float64)
    if training_stats:
        mean, var, _ = ref.batch_stats(x)
    else:
        mean, var = bn.running_mean.astype(np.float64), bn.running_var.astype(np.float64)
    scale = 1.0 if w is None else float(np.abs(w).max() + np.abs(b).max())
    y = bn.forward(x)
    assert y.dtype == dtype and y.shape == x.shape and y.flags.c_contiguous
    close(y, ref.batch_norm(x, w, b, mean, var, bn.eps), dtype, scale, "output")
    gx = bn.backward(g)
    want_gx, want_gw, want_gb = ref.batch_norm_backward(g, x, w, mean, var, bn.eps, training_stats)
    # The gradients are made of xhat = (x - mean) / std, whose rounding in float32 (as in
    # torch's CPU kernel: the mean is rounded to the input's type) is relative to |x| / std,
    # not to xhat: a tight channel far from 0 (x = 6.95 +- 0.003) loses that factor (~2000)
    # of its digits. grad_input is further scaled by 1 / std.
    inv = 1.0 / np.sqrt(np.asarray(var, np.float64) + bn.eps)
    per = np.abs(np.moveaxis(x, 1, 0).reshape(x.shape[1], -1)).max(axis=1, initial=0.0)
    cond = max(1.0, float((per * inv).max()))
    gscale = float(np.abs(g).max()) * (1.0 if w is None else float(np.abs(w).max()))
    close(gx, want_gx, dtype, gscale * 10 * cond * max(1.0, float(inv.max())), "grad_input")
    assert gx.dtype == dtype
    if bn.affine:
        m = x.size // x.shape[1]
        close(bn.grad_bias, want_gb, dtype, m * float(np.abs(g).max()), "grad_bias")
        close(bn.grad_weight, want_gw, dtype, m * float(np.abs(g).max()) * 5 * cond, "grad_weight")
        assert bn.grad_weight.dtype == bn.weight.dtype


# ------------------------------------------------------------------------ the layer, by mode


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
@pytest.mark.parametrize("affine", [True, False])
def test_training_steps_match_reference(dtype, momentum, affine):
    rng = rng_for("bn-steps", dtype, momentum, affine)
    c = 3
    bn = make_layer(c, dtype, rng, affine=affine, momentum=momentum)
    rm, rv = np.zeros(c), np.ones(c)
    for step in range(1, 5):
        x = batch(rng, (4, c, 5, 6), dtype, scale=step, offset=step - 2)
        g = batch(rng, x.shape, dtype, 1.0, 0.0)
        check_step(bn, x, g, dtype, True)
        mom = 1.0 / step if momentum is None else momentum
        rm, rv = ref.running_stats(rm, rv, x, mom)
        close(bn.running_mean, rm, dtype, err_msg="running_mean")
        close(bn.running_var, rv, dtype, 10, "running_var")
        assert bn.running_mean.dtype == dtype and bn.running_var.dtype == dtype
        assert int(bn.num_batches_tracked) == step
    bn.eval()
    for _ in range(2):  # eval forwards use (and do not change) the running statistics
        x = batch(rng, (2, c, 3, 4), dtype)
        check_step(bn, x, batch(rng, x.shape, dtype, 1.0, 0.0), dtype, False)
    assert int(bn.num_batches_tracked) == 4
    close(bn.running_mean, rm, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_untracked_statistics_use_the_batch_in_both_modes(dtype):
    rng = rng_for("bn-untracked", dtype)
    bn = make_layer(2, dtype, rng, track=False)
    for mode in (True, False):
        bn.train(mode)
        x = batch(rng, (3, 2, 4, 4), dtype)
        check_step(bn, x, batch(rng, x.shape, dtype, 1.0, 0.0), dtype, True)
    assert bn.buffers() == {}


@given(
    n=st.integers(1, 4),
    c=st.integers(1, 4),
    h=st.integers(1, 5),
    w=st.integers(1, 5),
    dtype=st.sampled_from([np.float32, np.float64]),
    momentum=st.one_of(st.none(), st.floats(0.0, 1.0)),
    eps=st.sampled_from([0.0, 1e-5, 1e-3, 0.5]),
    affine=st.booleans(),
    track=st.booleans(),
    training=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_property_against_reference(
    n, c, h, w, dtype, momentum, eps, affine, track, training, seed
):
    rng = np.random.default_rng(seed)
    batch_stats = training or not track
    if batch_stats and n * h * w == 1:
        return
    bn = make_layer(c, dtype, rng, affine=affine, track=track, momentum=momentum, eps=eps)
    if track:
        bn.running_mean[:] = rng.standard_normal(c)
        bn.running_var[:] = rng.uniform(0.5, 2, c)
    bn.train(training)
    x = batch(rng, (n, c, h, w), dtype, rng.uniform(0.5, 5), rng.uniform(-3, 3))
    if eps == 0.0:
        x += rng.uniform(0.1, 1, x.shape).astype(dtype)  # no constant channel: var > 0
    g = batch(rng, x.shape, dtype, 1.0, 0.0)
    rm0 = None if not track else bn.running_mean.astype(np.float64)
    rv0 = None if not track else bn.running_var.astype(np.float64)
    x0, g0 = x.copy(), g.copy()
    check_step(bn, x, g, dtype, batch_stats)
    np.testing.assert_array_equal(x, x0)  # inputs are never modified
    np.testing.assert_array_equal(g, g0)
    if track and training:
        mom = 1.0 if momentum is None else momentum
        rm, rv = ref.running_stats(rm0, rv0, x, mom)
        close(bn.running_mean, rm, dtype, 10)
        close(bn.running_var, rv, dtype, 100)
        assert int(bn.num_batches_tracked) == 1
    elif track:
        np.testing.assert_array_equal(bn.running_mean, rm0.astype(dtype))
        assert int(bn.num_batches_tracked) == 0


def test_backward_without_input_grad_sets_the_parameter_gradients():
    rng = rng_for("bn-no-input-grad")
    for training in (True, False):
        bn = make_layer(3, np.float64, rng)
        bn.train(training)
        x = batch(rng, (2, 3, 4, 5), np.float64)
        g = batch(rng, x.shape, np.float64, 1.0, 0.0)
        bn.forward(x)
        full = bn.backward(g)
        gw, gb = bn.grad_weight.copy(), bn.grad_bias.copy()
        bn.grad_weight[:] = 0
        assert bn.backward(g, input_grad=False) is None
        np.testing.assert_array_equal(bn.grad_weight, gw)
        np.testing.assert_array_equal(bn.grad_bias, gb)
        assert full.shape == x.shape
        # the functional binding: each gradient on request
        _, mean, inv = R.batch_norm2d(x, bn.weight, bn.bias, None, None, True)
        gi, gw2, gb2 = R.batch_norm2d_backward(g, x, mean, inv, bn.weight, True, True, False)
        assert gw2 is None and gb2 is None and gi.shape == x.shape
        assert R.batch_norm2d_backward(g, x, mean, inv, None, True, False, False) == (
            None,
            None,
            None,
        )


def test_constant_channel_and_zero_eps_follow_torch():
    # torch's InvStd: invstd is 0 where var == 0 and eps == 0, so the output is the bias
    bn = nn.BatchNorm2d(2, eps=0.0, dtype=np.float64)
    bn.bias[:] = [0.5, -1.5]
    x = np.stack([np.full((3, 2, 2), 7.0), np.arange(12.0).reshape(3, 2, 2)], axis=1)
    y = bn.forward(x)
    np.testing.assert_array_equal(y[:, 0], 0.5)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(bn.backward(np.ones_like(y))[:, 0], 0.0)
    np.testing.assert_array_equal(bn.running_var, [0.9, 0.1 * np.var(x[:, 1], ddof=1) + 0.9])


def test_nan_stays_in_its_channel():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    x[1, 1, 0, 1] = np.nan
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    y = bn.forward(x)
    assert np.isnan(y[:, 1]).all() and np.isfinite(y[:, [0, 2]]).all()
    assert np.isnan(bn.running_mean[1]) and np.isfinite(bn.running_mean[[0, 2]]).all()


def test_large_mean_keeps_the_variance_digits():
    # the shifted one-pass sums: a mean 1e6 times the spread loses nothing in float64
    rng = rng_for("bn-large-mean")
    x = rng.standard_normal((4, 2, 8, 8)) + 1e6
    bn = nn.BatchNorm2d(2, eps=0.0, dtype=np.float64)
    y = bn.forward(x)
    mean, var, var_u = ref.batch_stats(x)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var_u, rtol=1e-12)
    # the output pass is torch's x * scale + shift: exact to float64 rounding of x's size
    want = ref.batch_norm(x, None, None, mean, var, 0.0)
    np.testing.assert_allclose(y, want, rtol=1e-9, atol=1e6 * 2**-52 * 4)
    x32 = (rng.standard_normal((4, 2, 8, 8)) + 1e4).astype(np.float32)
    mean, var, _ = ref.batch_stats(x32)
    y32 = nn.BatchNorm2d(2).forward(x32)
    want = ref.batch_norm(x32, None, None, mean, var, 1e-5)
    np.testing.assert_allclose(y32, want, rtol=2e-5, atol=1e4 * 2**-23 * 8)


# ---------------------------------------------------------------- threads, strides, dtypes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(2, 3, 420, 420), (64, 64, 16, 16), (256, 5, 28, 28)], ids=str)
def test_one_and_two_threads_give_identical_bits(dtype, shape, threads):
    # at least 1M elements, so that 2 threads are used; planes of many segments, and
    # tasks of many small planes
    rng = rng_for("bn-threads", dtype, shape)
    x = batch(rng, shape, dtype)
    g = batch(rng, shape, dtype, 1.0, 0.0)
    results = []
    for t in (1, 2):
        threads(t)
        bn = make_layer(shape[1], dtype, rng_for("bn-threads-layer"))
        out = [bn.forward(x), bn.backward(g), bn.grad_weight, bn.grad_bias]
        out += [bn.forward(x + 1), bn.running_mean.copy(), bn.running_var.copy()]
        bn.eval()
        out += [bn.forward(x), bn.backward(g), bn.grad_weight, bn.grad_bias]
        out.append(F.batch_norm(x, None, None, training=True))
        results.append(out)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_eval_one_and_two_threads_give_identical_bits(threads):
    # the eval pass goes parallel from 4M elements
    rng = rng_for("bn-threads-eval")
    x = batch(rng, (4, 16, 256, 260), np.float32)
    results = []
    for t in (1, 2):
        threads(t)
        bn = make_layer(16, np.float32, rng_for("bn-threads-eval-layer")).eval()
        results.append((bn.forward(x), bn.backward(x), bn.grad_weight))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_strided_and_foreign_inputs(dtype):
    rng = rng_for("bn-strided", dtype)
    base = batch(rng, (6, 3, 10, 12), dtype)
    views = {
        "strided": base[::2, :, 1::2, ::-3],
        "fortran": np.asfortranarray(base[:2]),
        "big-endian": base[:2].astype(np.dtype(dtype).newbyteorder(">")),
    }
    for name, x in views.items():
        x0 = x.copy()
        contiguous = np.ascontiguousarray(x, dtype=dtype)
        a, b = make_layer(3, dtype, rng_for("bn-s")), make_layer(3, dtype, rng_for("bn-s"))
        g = batch(rng, x.shape, dtype, 1.0, 0.0)
        np.testing.assert_array_equal(a.forward(x), b.forward(contiguous), err_msg=name)
        np.testing.assert_array_equal(a.backward(g[:, :, ::-1]), b.backward(g[:, :, ::-1].copy()))
        np.testing.assert_array_equal(a.running_var, b.running_var)
        np.testing.assert_array_equal(x, x0)  # not modified


def test_mixed_and_other_dtypes():
    rng = rng_for("bn-dtypes")
    # float64 input, float32 layer: computed in float64, the buffers stay float32
    bn = make_layer(2, np.float32, rng)
    x = batch(rng, (3, 2, 4, 4), np.float64)
    y = bn.forward(x)
    assert y.dtype == np.float64 and bn.running_mean.dtype == np.float32
    mean, var, var_u = ref.batch_stats(x)
    w, b = bn.weight.astype(np.float64), bn.bias.astype(np.float64)
    np.testing.assert_allclose(y, ref.batch_norm(x, w, b, mean, var, 1e-5), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(bn.running_var, 0.9 + 0.1 * var_u, rtol=1e-6)
    g = bn.backward(np.ones_like(y))
    assert g.dtype == np.float64 and bn.grad_weight.dtype == np.float32
    # float32 input, float64 layer: float64
    bn64 = make_layer(2, np.float64, rng)
    assert bn64.forward(x.astype(np.float32)).dtype == np.float64
    # float16 without affine parameters: NumPy, in float16, as before
    plain = nn.BatchNorm2d(2, affine=False)
    x16 = x.astype(np.float16)
    y16 = plain.forward(x16)
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16, ref.batch_norm(x16, None, None, mean, var, 1e-5), atol=5e-3)
    assert plain.backward(np.ones_like(y16)).dtype == np.float16
    # a running buffer replaced by a non-contiguous array is still updated
    bn = nn.BatchNorm2d(2, dtype=np.float64)
    bn.running_mean = np.zeros(4)[::2]
    bn.forward(x)
    np.testing.assert_allclose(bn.running_mean, 0.1 * mean, rtol=1e-12)


# -------------------------------------------------------------------------------- functional


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 7), (2, 3, 4, 5), (2, 3, 2, 3, 2)], ids=str)
def test_functional_matches_reference_and_the_layer(dtype, shape):
    rng = rng_for("bn-functional", dtype, shape)
    c = shape[1]
    x = batch(rng, shape, dtype)
    w, b = rng.uniform(0.5, 2, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
    mean, var, _ = ref.batch_stats(x)
    scale = float(np.abs(w).max() + np.abs(b).max())
    want = ref.batch_norm(x.reshape(shape[0], c, -1), w, b, mean, var, 1e-5).reshape(shape)
    close(y, want, dtype, scale)
    want_rm, want_rv = ref.running_stats(np.zeros(c), np.ones(c), x, 0.3)
    close(rm, want_rm, dtype)
    close(rv, want_rv, dtype, 10)
    ye = F.batch_norm(x, rm, rv, w, b)  # eval: the running statistics, unchanged
    want = ref.batch_norm(x.reshape(shape[0], c, -1), w, b, rm, rv, 1e-5).reshape(shape)
    close(ye, want, dtype, scale)
    close(rm, want_rm, dtype)
    if len(shape) == 4:
        bn = nn.BatchNorm2d(c, momentum=0.3, dtype=dtype)
        bn.weight[:], bn.bias[:] = w, b
        np.testing.assert_array_equal(bn.forward(x), y)
        np.testing.assert_array_equal(bn.running_var, rv)


def test_functional_running_buffers_of_another_dtype_are_written_back():
    x = np.arange(24.0).reshape(4, 3, 2)
    rm32, rv32 = np.zeros(3, np.float32), np.ones(3, np.float32)
    F.batch_norm(x, rm32, rv32, training=True)
    mean, _, var_u = ref.batch_stats(x)
    np.testing.assert_allclose(rm32, 0.1 * mean, rtol=1e-6)
    np.testing.assert_allclose(rv32, 0.9 + 0.1 * var_u, rtol=1e-6)
    # integer input computes in float64; no running statistics when training
    y = F.batch_norm(np.arange(6).reshape(3, 2), None, None, training=True)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=1e-12)


def test_functional_errors_change_nothing():
    x = np.ones((2, 3))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="batch_norm: input must have at least 2 dimensions"):
        F.batch_norm(np.ones(3), rm, rv)
    with pytest.raises(ValueError, match=r"batch_norm: expected more than 1 value per channel"):
        F.batch_norm(np.ones((1, 3)), rm, rv, training=True)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var are required"):
        F.batch_norm(x, None, None)
    with pytest.raises(ValueError, match="batch_norm: running_mean and running_var must be given"):
        F.batch_norm(x, rm, None, training=True)
    with pytest.raises(TypeError, match="batch_norm: running_mean must be a NumPy array"):
        F.batch_norm(x, [0.0, 0.0, 0.0], rv, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: weight must have shape \(3,\)"):
        F.batch_norm(x, rm, rv, np.ones(4), training=True)
    with pytest.raises(ValueError, match="batch_norm: eps must be >= 0"):
        F.batch_norm(x, rm, rv, training=True, eps=-1.0)
    with pytest.raises(TypeError, match="batch_norm: momentum must be a real number, got None"):
        F.batch_norm(x, rm, rv, training=True, momentum=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="batch_norm: input has unsupported dtype complex128"):
        F.batch_norm(x.astype(complex), rm, rv)
    rm32 = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"running_var must have shape \(3,\)"):
        F.batch_norm(x, rm32, np.ones(2), training=True)
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)
    np.testing.assert_array_equal(rm32, 0)


# ---------------------------------------------------------------------------------- errors


def test_layer_errors_change_nothing():
    bn = nn.BatchNorm2d(2)
    with pytest.raises(ValueError, match="BatchNorm2d: expected more than 1 value per channel"):
        bn.forward(np.ones((1, 2, 1, 1), np.float32))
    # neither the running statistics nor the batch count moved
    np.testing.assert_array_equal(bn.running_mean, 0)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert int(bn.num_batches_tracked) == 0
    with pytest.raises(RuntimeError, match="BatchNorm2d.backward called before forward"):
        bn.backward(np.ones((1, 2, 1, 1)))
    bn.forward(np.ones((2, 2, 1, 1), np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d.backward: grad has shape"):
        bn.backward(np.ones((2, 2, 1, 2)))
    with pytest.raises(TypeError, match="BatchNorm2d: input must be a floating-point"):
        bn.forward(np.ones((2, 2, 1, 1), np.complex64))


def test_binding_errors_name_the_function_and_the_argument():
    x = np.ones((2, 3, 2, 2), np.float32)
    w = np.ones(3, np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    frozen = np.ones(3, np.float32)
    frozen.flags.writeable = False
    cases = [
        (
            TypeError,
            r"batch_norm2d: weight has dtype float64, expected the input's float32",
            lambda: R.batch_norm2d(x, np.ones(3)),
        ),
        (
            ValueError,
            r"batch_norm2d: bias must have shape \(3,\) \(one value per channel\), "
            r"got \(3, 1\)",
            lambda: R.batch_norm2d(x, w, np.ones((3, 1), np.float32)),
        ),
        (
            ValueError,
            "batch_norm2d: input must be 4-D, got 3 dimension",
            lambda: R.batch_norm2d(x[0]),
        ),
        (
            TypeError,
            "batch_norm2d: input has unsupported dtype int64",
            lambda: R.batch_norm2d(x.astype(np.int64)),
        ),
        (
            ValueError,
            "batch_norm2d: input must be C-contiguous",
            lambda: R.batch_norm2d(x[:, :, ::-1]),
        ),
        (
            ValueError,
            "batch_norm2d: running_var must be C-contiguous",
            lambda: R.batch_norm2d(x, running_mean=rm, running_var=np.ones(6, np.float32)[::2]),
        ),
        (
            TypeError,
            "batch_norm2d: training must be a bool",
            lambda: R.batch_norm2d(x, training=np.ones(2)),
        ),
        (
            TypeError,
            "batch_norm2d: momentum must be a real number, got 'a'",
            lambda: R.batch_norm2d(x, momentum="a"),
        ),
        (
            TypeError,
            "batch_norm2d: eps must be a real number, got True",
            lambda: R.batch_norm2d(x, eps=True),
        ),
        (
            ValueError,
            "batch_norm2d: eps must be >= 0, got nan",
            lambda: R.batch_norm2d(x, eps=float("nan")),
        ),
        (
            ValueError,
            r"batch_norm2d: eps must be >= 0, got -0.5",
            lambda: R.batch_norm2d(x, eps=-0.5),
        ),
        (
            ValueError,
            "batch_norm2d: running_var is in use by another call",
            lambda: R.batch_norm2d(x, running_mean=rm, running_var=rm),
        ),
        (
            ValueError,
            r"batch_norm2d: running_var must be writeable \(it is updated in place",
            lambda: R.batch_norm2d(x, running_mean=rm, running_var=frozen),
        ),
        (
            ValueError,
            "batch_norm2d: running_mean and running_var are required when training=False",
            lambda: R.batch_norm2d(x, training=False),
        ),
        (
            ValueError,
            r"batch_norm2d: expected more than 1 value per channel when training, "
            r"got input of shape \(1, 3, 1, 1\)",
            lambda: R.batch_norm2d(x[:1, :, :1, :1].copy()),
        ),
        (
            TypeError,
            "batch_norm2d_backward: grad_output has dtype float64, expected the input's float32",
            lambda: R.batch_norm2d_backward(x.astype(float), x, w, w),
        ),
        (
            ValueError,
            r"batch_norm2d_backward: grad_output has shape \(2, 3, 2, 1\), expected "
            r"the input's \(2, 3, 2, 2\)",
            lambda: R.batch_norm2d_backward(x[..., :1].copy(), x, w, w),
        ),
        (
            ValueError,
            r"batch_norm2d_backward: invstd must have shape \(3,\)",
            lambda: R.batch_norm2d_backward(x, x, w, w[:2]),
        ),
        (
            TypeError,
            "batch_norm2d_backward: mean must be a NumPy array",
            lambda: R.batch_norm2d_backward(x, x, [0, 0, 0], w),
        ),
        (
            TypeError,
            "batch_norm2d_backward: input_grad must be a bool",
            lambda: R.batch_norm2d_backward(x, x, w, w, input_grad=np.ones(2)),
        ),
        (ValueError, "BatchNorm2d: eps", lambda: R.batch_norm2d(x, eps=-1, name="BatchNorm2d")),
    ]
    for exc, msg, call in cases:
        with pytest.raises(exc, match=msg):
            call()
    np.testing.assert_array_equal(rm, 0)  # no call changed the running statistics
    np.testing.assert_array_equal(rv, 1)
    np.testing.assert_array_equal(frozen, 1)


def test_binding_outputs_are_fresh_and_typed():
    rng = rng_for("bn-binding")
    for dtype in (np.float32, np.float64):
        x = batch(rng, (3, 2, 4, 5), dtype)
        y, mean, inv = R.batch_norm2d(x)
        assert y.flags.c_contiguous and y.flags.owndata and y.dtype == dtype
        assert mean.shape == inv.shape == (2,) and mean.dtype == inv.dtype == dtype
        m, v, _ = ref.batch_stats(x)
        close(mean, m, dtype)
        close(inv, 1 / np.sqrt(v + 1e-5), dtype)
        gi, gw, gb = R.batch_norm2d_backward(np.ones_like(x), x, mean, inv)
        assert gi.flags.c_contiguous and gi.dtype == gw.dtype == gb.dtype == dtype
        # empty inputs: eval and backward have nothing to do
        e = np.zeros((0, 2, 3, 3), dtype)
        ye, me, ie = R.batch_norm2d(e, None, None, np.zeros(2, dtype), np.ones(2, dtype), False)
        assert ye.shape == e.shape
        gi, gw, gb = R.batch_norm2d_backward(e, e, me, ie, None, False)
        assert gi.shape == e.shape and (gb == 0).all()
