"""rconv.optim against torch.optim itself (SGD, Adam, AdamW with foreach=False: torch's
single-tensor CPU loop, whose operations rconv's compiled steps follow one by one): the
same parameters and gradient sequences through both, float64 within rtol 1e-9 after many
steps for every family of hyperparameters, float32 within a rounding bound (torch's CPU
``sqrt`` goes through MKL, not always correctly rounded), and the optimizers' state as
their state dicts hold it. Skipped when torch is not installed."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import seed_for
from rconv import nn, optim

torch = pytest.importorskip("torch", reason="torch parity: torch not installed")

# (64, 16, 5, 5) spans two of the compiled step's chunks
SHAPES = [(16, 3, 3, 3), (16,), (64, 16, 5, 5), (64,), (10, 64), (10,)]
STEPS = 25


class Params(nn.Module):
    """A leaf module whose parameters are the arrays given (``p0``, ``p1``, ...)."""

    def __init__(self, arrays):
        self._param_names = tuple(f"p{i}" for i in range(len(arrays)))
        for n, a in zip(self._param_names, arrays):
            setattr(self, n, a)

    def arrays(self):
        return [getattr(self, n) for n in self._param_names]


def run_both(make_rconv, make_torch, dtypes, key, steps=STEPS):
    """The same initial parameters (of `dtypes`) and gradients through both optimizers."""
    rng = np.random.default_rng(seed_for("torch-optim", key))
    p0 = [rng.standard_normal(s).astype(dt) for s, dt in zip(SHAPES, dtypes)]
    model = Params([a.copy() for a in p0])
    opt = make_rconv(model)
    tparams = [torch.nn.Parameter(torch.from_numpy(a.copy())) for a in p0]
    topt = make_torch(tparams)
    for _ in range(steps):
        grads = [rng.standard_normal(s).astype(dt) for s, dt in zip(SHAPES, dtypes)]
        for n, g in zip(model._param_names, grads):
            setattr(model, f"grad_{n}", g.copy())
        opt.step()
        for t, g in zip(tparams, grads):
            t.grad = torch.from_numpy(g.copy())
        topt.step()
    return model, opt, [t.detach().numpy() for t in tparams], topt


def assert_close(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    else:  # 8 eps per step, scaled by the magnitudes (assert_matches_reference's bound)
        scale = float(np.abs(want).max(initial=0)) + 1
        tol = 8 * np.finfo(np.float32).eps * STEPS * scale
        np.testing.assert_allclose(got, want, rtol=0, atol=tol)


def assert_same_state(opt, topt):
    """rconv's state dict holds torch's state values, by parameter."""
    state = opt.state_dict()["state"]
    tstate = topt.state_dict()["state"]
    assert sorted(state) == [f"p{i}" for i in sorted(tstate)]
    for i, tst in tstate.items():
        st = state[f"p{i}"]
        assert st.keys() == tst.keys()
        for k, v in tst.items():
            if k == "step":
                assert st[k] == int(v.item())
            else:
                assert_close(st[k], v.numpy())


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.2, weight_decay=1e-3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.02, momentum=0.7, nesterov=True, weight_decay=0.05),
]

ADAM_CASES = [
    dict(),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, betas=(0.3, 0.95), eps=1e-6),  # lerp weight 0.7: ATen's other formula
    dict(lr=0.01, betas=(0.0, 0.5)),
    dict(lr=0.02, betas=(0.5, 0.99), weight_decay=0.3),
]

DTYPES = {
    "float64": [np.float64] * len(SHAPES),
    "float32": [np.float32] * len(SHAPES),
    "mixed": [np.float32, np.float64] * (len(SHAPES) // 2),
}


@pytest.mark.parametrize("dtypes", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_torch(kw, dtypes):
    model, opt, want, topt = run_both(
        lambda m: optim.SGD(m, **kw),
        lambda p: torch.optim.SGD(p, **kw, foreach=False),
        dtypes,
        ("sgd", str(kw)),
    )
    for got, w in zip(model.arrays(), want):
        assert_close(got, w)
    assert_same_state(opt, topt)
    hyper = opt.state_dict()
    group = topt.state_dict()["param_groups"][0]
    for k in ("lr", "momentum", "weight_decay", "dampening", "nesterov"):
        assert hyper[k] == group[k]


@pytest.mark.parametrize("dtypes", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("kw", ADAM_CASES, ids=str)
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_adamw_match_torch(name, kw, dtypes):
    model, opt, want, topt = run_both(
        lambda m: getattr(optim, name)(m, **kw),
        lambda p: getattr(torch.optim, name)(p, **kw, foreach=False),
        dtypes,
        (name, str(kw)),
    )
    for got, w in zip(model.arrays(), want):
        assert_close(got, w)
    assert_same_state(opt, topt)
    hyper = opt.state_dict()
    group = topt.state_dict()["param_groups"][0]
    for k in ("lr", "eps", "weight_decay"):
        assert hyper[k] == group[k]
    assert tuple(hyper["betas"]) == tuple(group["betas"])


def test_adamw_without_weight_decay_is_adam():
    a, _, want, _ = run_both(
        lambda m: optim.AdamW(m, lr=0.01, weight_decay=0.0),
        lambda p: torch.optim.Adam(p, lr=0.01, foreach=False),
        DTYPES["float64"],
        "adamw-0",
    )
    for got, w in zip(a.arrays(), want):
        assert_close(got, w)


def test_torch_foreach_gives_what_the_loop_gives_here():
    """torch's foreach implementation (its fastest on CPU at times) updates as its loop
    does, so the comparison above covers it: checked once, float64."""
    model, _, want, _ = run_both(
        lambda m: optim.Adam(m, lr=0.01, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1, foreach=True),
        DTYPES["float64"],
        "foreach",
    )
    for got, w in zip(model.arrays(), want):
        assert_close(got, w)
