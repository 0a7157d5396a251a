"""Torch parity of nn.BatchNorm2d and nn.functional.batch_norm: several training steps
(output, input and parameter gradients, running statistics, num_batches_tracked), eval,
momentum None, affine False, untracked statistics, float32 and float64 (rtol 1e-9); the
state dicts load both ways. Skipped where torch is not installed (CI)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import seed_for
from rconv import nn
from rconv.nn import functional as F

torch = pytest.importorskip("torch", reason="torch parity: torch not installed")


def rng_for(*key):
    return np.random.default_rng(seed_for(*key))


def close(got, want, dtype, scale=1.0, err_msg=""):
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    if np.dtype(dtype) == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12 * scale, err_msg=err_msg)
    else:
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5 * scale, err_msg=err_msg)


def pair(c, dtype, rng, **kw):
    """An rconv layer and a torch layer with the same (random) parameters."""
    ours = nn.BatchNorm2d(c, dtype=dtype, **kw)
    theirs = torch.nn.BatchNorm2d(c, dtype=torch.float64 if dtype == np.float64 else None, **kw)
    if ours.affine:
        ours.weight[:] = rng.uniform(0.5, 2, c)
        ours.bias[:] = rng.standard_normal(c)
        with torch.no_grad():
            theirs.weight.copy_(torch.from_numpy(ours.weight.copy()))
            theirs.bias.copy_(torch.from_numpy(ours.bias.copy()))
    return ours, theirs


def step(ours, theirs, x, g, dtype):
    """One forward + backward of both; compares everything."""
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = theirs(xt)
    yt.backward(torch.from_numpy(g))
    y = ours.forward(x)
    gx = ours.backward(g)
    close(y, yt, dtype, 10, "output")
    close(gx, xt.grad, dtype, 10, "grad_input")
    if ours.affine:
        m = x.size // x.shape[1]
        close(ours.grad_weight, theirs.weight.grad, dtype, m, "grad_weight")
        close(ours.grad_bias, theirs.bias.grad, dtype, m, "grad_bias")
        theirs.weight.grad = None
        theirs.bias.grad = None
    if ours.track_running_stats:
        close(ours.running_mean, theirs.running_mean, dtype, 1, "running_mean")
        close(ours.running_var, theirs.running_var, dtype, 10, "running_var")
        assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.3},
        {"momentum": None},
        {"affine": False},
        {"track_running_stats": False},
        {"eps": 1e-3, "momentum": 0.9},
    ],
    ids=str,
)
def test_training_steps_then_eval_match_torch(dtype, options):
    rng = rng_for("torch-bn", dtype, str(options))
    c = 4
    ours, theirs = pair(c, dtype, rng, **options)
    for k in range(4):
        x = (rng.standard_normal((6, c, 5, 7)) * (k + 1) + k - 1).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        step(ours, theirs, x, g, dtype)
    ours.eval()
    theirs.eval()
    for _ in range(2):
        x = (rng.standard_normal((3, c, 4, 4)) * 2).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        step(ours, theirs, x, g, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(32, 16, 8, 8), (4, 8, 56, 56), (64, 6, 14, 14)], ids=str)
def test_training_shapes_of_the_benchmark_nets_match_torch(dtype, shape):
    rng = rng_for("torch-bn-shapes", dtype, shape)
    ours, theirs = pair(shape[1], dtype, rng)
    for _ in range(2):
        x = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
        step(ours, theirs, x, rng.standard_normal(shape).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 10), (2, 3, 4, 5), (2, 3, 2, 3, 4)], ids=str)
@pytest.mark.parametrize("training", [True, False])
def test_functional_batch_norm_matches_torch(dtype, shape, training):
    rng = rng_for("torch-f-bn", dtype, shape, training)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    w, b = rng.uniform(0.5, 2, c).astype(dtype), rng.standard_normal(c).astype(dtype)
    rm, rv = rng.standard_normal(c).astype(dtype), rng.uniform(0.5, 2, c).astype(dtype)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    want = torch.nn.functional.batch_norm(
        torch.from_numpy(x), trm, trv, torch.from_numpy(w), torch.from_numpy(b), training, 0.2
    )
    got = F.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2)
    close(got, want, dtype, 10)
    close(rm, trm, dtype)
    close(rv, trv, dtype, 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dicts_load_both_ways(dtype):
    rng = rng_for("torch-bn-state", dtype)
    c = 3
    ours, theirs = pair(c, dtype, rng, momentum=None)
    x = (rng.standard_normal((4, c, 3, 3)) + 2).astype(dtype)
    for _ in range(3):
        with torch.no_grad():
            theirs(torch.from_numpy(x))
        ours.forward(x)
    # ours -> torch
    fresh_t = torch.nn.BatchNorm2d(c, momentum=None, dtype=theirs.weight.dtype)
    fresh_t.load_state_dict(
        {k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()}
    )
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for k, v in theirs.state_dict().items():
        close(np.asarray(fresh_t.state_dict()[k]), v, dtype, err_msg=k)
    # torch -> ours: the same outputs from then on, in both modes
    fresh = nn.BatchNorm2d(c, momentum=None, dtype=dtype)
    fresh.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert fresh.num_batches_tracked.dtype == np.int64 and int(fresh.num_batches_tracked) == 3
    x2 = (rng.standard_normal((2, c, 3, 3))).astype(dtype)
    g2 = rng.standard_normal(x2.shape).astype(dtype)
    step(fresh, theirs, x2, g2, dtype)  # momentum None continues the cumulative average
    fresh.eval()
    theirs.eval()
    step(fresh, theirs, x2, g2, dtype)
