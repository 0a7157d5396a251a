"""Parity with torch (when installed) of LeakyReLU, Sigmoid, Tanh, CrossEntropyLoss and
MSELoss: forward and backward, float32 (a few ulp) and float64 (rtol 1e-9), extreme inputs
included. Backward is torch's: autograd of the layer alone."""

from __future__ import annotations

import numpy as np
import pytest

import rconv
from conftest import seed_for
from rconv import nn

torch = pytest.importorskip("torch", reason="torch parity: torch not installed")
TF = torch.nn.functional

FLOATS = [np.float32, np.float64]
EXTREMES = [0.0, -0.0, 1e-30, -1e-30, 0.5, -0.625, 3.0, 20.0, -20.0, 88.0, -88.0, 88.7]
EXTREMES += [-88.7, 89.0, -89.0, 100.0, -100.0, 709.0, -709.0, 1000.0, -1000.0, 1e30, -1e30]
EXTREMES += [np.inf, -np.inf, np.nan]


def data(dtype, *key, n=3000):
    rng = np.random.default_rng(seed_for("torch-act", np.dtype(dtype).name, *key))
    with np.errstate(over="ignore"):
        x = np.concatenate([rng.standard_normal(n) * 3, rng.uniform(-50, 50, n), EXTREMES])
    return x.astype(dtype), rng.standard_normal(x.size).astype(dtype)


def close(got, want, dtype, ulps=4):
    want = want.detach().numpy() if hasattr(want, "detach") else np.asarray(want)
    if np.dtype(dtype) == np.float32:
        eps, tiny = np.finfo(np.float32).eps, np.finfo(np.float32).tiny
        np.testing.assert_allclose(got, want, rtol=ulps * eps, atol=tiny, equal_nan=True)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-300, equal_nan=True)


def torch_grad(f, x, g):
    """f's output and the gradient at x for the output gradient g, by autograd."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = f(xt)
    y.backward(torch.from_numpy(g))
    return y.detach().numpy(), xt.grad.numpy()


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("slope", [0.01, 0.2, 0.0, -1.5])
def test_leaky_relu_is_torchs_bit_for_bit(dtype, slope):
    x, g = data(dtype, slope)
    layer = nn.LeakyReLU(slope)
    y = layer.forward(x)
    ty, tg = torch_grad(lambda v: TF.leaky_relu(v, slope), x, g)
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_array_equal(layer.backward(g), tg)


@pytest.mark.parametrize("dtype", FLOATS)
def test_sigmoid_and_tanh_match_torch(dtype):
    x, g = data(dtype, "st")
    for layer, f in ((nn.Sigmoid(), torch.sigmoid), (nn.Tanh(), torch.tanh)):
        y = layer.forward(x)
        ty, _ = torch_grad(f, x, g)
        close(y, ty, dtype)
        # the backward expression is torch's, so from the same y it gives the same bits
        # (tanh's 1 - y*y fused as torch's build has it, where rconv's CPU has FMA too)
        y_t = torch.from_numpy(y)
        op = torch.ops.aten.sigmoid_backward if f is torch.sigmoid else torch.ops.aten.tanh_backward
        want = op(torch.from_numpy(g), y_t).numpy()
        if f is torch.sigmoid or rconv._rconv.simd_level() != "generic":
            np.testing.assert_array_equal(layer.backward(g), want)
        else:
            close(layer.backward(g), want, dtype)
    exact = np.array([-1000.0, 0.0, 1000.0, 20.0, -20.0, np.nan], dtype)
    np.testing.assert_array_equal(
        nn.Sigmoid().forward(exact), torch.sigmoid(torch.from_numpy(exact)).numpy()
    )
    np.testing.assert_array_equal(
        nn.Tanh().forward(exact), torch.tanh(torch.from_numpy(exact)).numpy()
    )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(32, 10), (64, 10), (256, 1000), (7, 1)])
def test_cross_entropy_matches_torch(dtype, shape):
    n, c = shape
    rng = np.random.default_rng(seed_for("torch-ce", shape, np.dtype(dtype).name))
    z = (rng.standard_normal(shape) * 5).astype(dtype)
    t = rng.integers(0, c, n)
    for grad in (1.0, 0.3):
        loss = nn.CrossEntropyLoss()
        got = loss.forward(z, t)
        zt = torch.from_numpy(z.copy()).requires_grad_(True)
        tl = TF.cross_entropy(zt, torch.from_numpy(t))
        (tl * grad).backward()
        want = tl.item()
        if dtype == np.float32:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-7)
            np.testing.assert_allclose(
                loss.backward(grad), zt.grad.numpy(), rtol=1e-5, atol=1e-7 / n
            )
        else:
            assert got == pytest.approx(want, rel=1e-9)
            np.testing.assert_allclose(loss.backward(grad), zt.grad.numpy(), rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize("dtype", FLOATS)
def test_cross_entropy_extremes_match_torch(dtype):
    z = np.array(
        [
            [0.0, 1000.0, -1000.0],
            [1e30, -1e30, 0.0],
            [0.0, -np.inf, 1.0],
            [np.nan, 0.0, 1.0],
            [np.inf, 0.0, 1.0],
            [-np.inf, -np.inf, -np.inf],
        ],
        dtype,
    )
    for t in ([1, 0, 1, 0, 0, 0], [2, 1, 0, 2, 1, 2]):
        for rows in ([0, 1], [2], [3], [4], [5]):
            zz, tt = z[rows], np.array(t)[rows]
            loss = nn.CrossEntropyLoss()
            got = loss.forward(zz, tt)
            zt = torch.from_numpy(zz.copy()).requires_grad_(True)
            tl = TF.cross_entropy(zt, torch.from_numpy(tt))
            tl.backward()
            np.testing.assert_allclose(got, tl.item(), rtol=1e-6, equal_nan=True)
            np.testing.assert_allclose(
                loss.backward(), zt.grad.numpy(), rtol=1e-6, atol=1e-30, equal_nan=True
            )


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(32, 10), (8, 64, 56, 56)])
def test_mse_matches_torch(dtype, reduction, shape):
    rng = np.random.default_rng(seed_for("torch-mse", shape, reduction))
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype) if reduction == "none" else 0.7
    loss = nn.MSELoss(reduction)
    got = loss.forward(x, t)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    tl = TF.mse_loss(xt, torch.from_numpy(t), reduction=reduction)
    tl.backward(torch.from_numpy(g) if reduction == "none" else torch.tensor(g, dtype=tl.dtype))
    if reduction == "none":
        np.testing.assert_array_equal(got, tl.detach().numpy())
    elif dtype == np.float32:
        assert got == pytest.approx(tl.item(), rel=2e-6)
    else:
        assert got == pytest.approx(tl.item(), rel=1e-9)
    close(loss.backward(g), xt.grad, dtype)
