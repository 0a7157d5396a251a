"""rconv.nn beyond the conv layers: BatchNorm2d, Dropout, the activations, AdaptiveAvgPool2d,
MSELoss, the optimizers (SGD, Adam, AdamW and their state dicts), and the module tools
(attribute discovery, train/eval, params/buffers/grads, state_dict/load_state_dict,
backward(input_grad=False)).

References: the NumPy loops of nn_reference.py (torch's documented formulas) and finite
differences. torch itself is not a test dependency; these semantics were also checked
against torch 2.x during development."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import seed_for
from rconv import nn, optim


def rng_for(*key):
    return np.random.default_rng(seed_for(*key))


def fd_check(layer, x, g, atol=1e-6, params=True):
    """Finite differences of sum(layer(x) * g) against layer.backward, for the input and
    every parameter; the forward runs in the layer's current mode."""
    y = layer.forward(x)
    gx = layer.backward(g)
    grads = {k: v.copy() for k, v in layer.grads().items()}
    buf0 = {k: np.array(v, copy=True) for k, v in layer.buffers().items()}

    def f(v):
        out = layer.forward(v)
        for k, b in layer.buffers().items():  # keep the running statistics fixed
            b[...] = buf0[k]
        return out

    num = ref.numeric_grad(f, x, g)
    np.testing.assert_allclose(gx, num, atol=atol, err_msg="input")
    if params:
        for name, p in layer.params().items():

            def fp(v, p=p):
                old = p.copy()
                p[...] = v
                out = f(x)
                p[...] = old
                return out

            np.testing.assert_allclose(
                grads[name], ref.numeric_grad(fp, p, g), atol=atol, err_msg=name
            )
    return y


# ----------------------------------------------------------------------------- BatchNorm2d


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batchnorm_train_matches_reference_and_updates_running_stats(dtype):
    rng = rng_for("bn-train", dtype)
    bn = nn.BatchNorm2d(3, momentum=0.2, dtype=dtype)
    bn.weight[:] = rng.uniform(0.5, 2, 3)
    bn.bias[:] = rng.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for step in range(1, 4):
        x = (rng.standard_normal((4, 3, 5, 6)) * step + step).astype(dtype)
        mean, var_b, var_u = ref.batch_stats(x)
        y = bn.forward(x)
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_allclose(
            y, ref.batch_norm(x, bn.weight, bn.bias, mean, var_b, 1e-5), atol=tol * 10
        )
        rm = 0.8 * rm + 0.2 * mean
        rv = 0.8 * rv + 0.2 * var_u  # the unbiased variance goes into the running stats
        np.testing.assert_allclose(bn.running_mean, rm, rtol=tol, atol=tol)
        np.testing.assert_allclose(bn.running_var, rv, rtol=tol, atol=tol)
        assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
        assert int(bn.num_batches_tracked) == step
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    y = bn.forward(x)
    np.testing.assert_allclose(
        y,
        ref.batch_norm(x, bn.weight, bn.bias, bn.running_mean, bn.running_var, 1e-5),
        atol=tol * 10,
    )
    assert int(bn.num_batches_tracked) == 3  # eval forwards are not counted


def test_batchnorm_cumulative_average_and_options():
    rng = rng_for("bn-options")
    bn = nn.BatchNorm2d(2, momentum=None, dtype=np.float64)
    xs = [rng.standard_normal((3, 2, 2, 3)) + i for i in range(4)]
    for x in xs:
        bn.forward(x)
    means = [ref.batch_stats(x)[0] for x in xs]
    uvars = [ref.batch_stats(x)[2] for x in xs]
    # momentum=None: the running statistics are the plain average over all batches
    np.testing.assert_allclose(bn.running_mean, np.mean(means, axis=0), rtol=1e-12)
    # ... starting from the initial running_var of ones, which counts as nothing
    np.testing.assert_allclose(bn.running_var, np.mean(uvars, axis=0), rtol=1e-12)

    plain = nn.BatchNorm2d(2, affine=False, dtype=np.float64)
    assert set(plain.params()) == set() and set(plain.state_dict()) == {
        "running_mean",
        "running_var",
        "num_batches_tracked",
    }
    x = xs[0]
    mean, var_b, _ = ref.batch_stats(x)
    np.testing.assert_allclose(
        plain.forward(x), ref.batch_norm(x, None, None, mean, var_b, 1e-5), atol=1e-12
    )

    untracked = nn.BatchNorm2d(2, track_running_stats=False, dtype=np.float64)
    assert untracked.buffers() == {} and list(untracked.state_dict()) == ["weight", "bias"]
    untracked.eval()  # no running statistics: eval normalises with the batch's
    np.testing.assert_allclose(
        untracked.forward(x),
        ref.batch_norm(x, np.ones(2), np.zeros(2), mean, var_b, 1e-5),
        atol=1e-12,
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm_gradients_by_finite_differences(mode, affine):
    rng = rng_for("bn-fd", mode, affine)
    bn = nn.BatchNorm2d(2, affine=affine, dtype=np.float64)
    if affine:
        bn.weight[:] = rng.uniform(0.5, 2, 2)
        bn.bias[:] = rng.standard_normal(2)
    bn.running_mean[:] = rng.standard_normal(2)
    bn.running_var[:] = rng.uniform(0.5, 2, 2)
    bn.train(mode == "train")
    x = rng.standard_normal((3, 2, 2, 3))
    g = rng.standard_normal((3, 2, 2, 3))
    fd_check(bn, x, g)


def test_batchnorm_errors():
    with pytest.raises(ValueError, match="BatchNorm2d: expected more than 1 value per channel"):
        nn.BatchNorm2d(2).forward(np.ones((1, 2, 1, 1), np.float32))
    bn = nn.BatchNorm2d(2)
    bn.eval()
    assert bn.forward(np.ones((1, 2, 1, 1), np.float32)).shape == (1, 2, 1, 1)
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected a 4-D input \(N, 3, H, W\)"):
        nn.BatchNorm2d(3).forward(np.ones((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        nn.BatchNorm2d(3).forward(np.ones((3, 2, 2), np.float32))
    with pytest.raises(TypeError, match="BatchNorm2d: input must be a floating-point"):
        nn.BatchNorm2d(1).forward(np.ones((2, 1, 2, 2), np.int64))
    with pytest.raises(ValueError, match="num_features must be positive"):
        nn.BatchNorm2d(0)
    with pytest.raises(TypeError, match="BatchNorm2d: dtype must be float32 or float64"):
        nn.BatchNorm2d(2, dtype=np.int32)
    with pytest.raises(ValueError, match="eps must be >= 0"):
        nn.BatchNorm2d(2, eps=-1)
    with pytest.raises(RuntimeError, match="BatchNorm2d.backward called before forward"):
        nn.BatchNorm2d(2).backward(np.ones((2, 2, 2, 2)))
    bn = nn.BatchNorm2d(2)
    bn.forward(np.ones((2, 2, 2, 2), np.float32))
    with pytest.raises(ValueError, match="BatchNorm2d.backward: grad has shape"):
        bn.backward(np.ones((2, 2, 2, 3), np.float32))


@given(
    n=st.integers(1, 4),
    c=st.integers(1, 3),
    h=st.integers(1, 4),
    w=st.integers(1, 4),
    seed=st.integers(0, 2**31),
)
def test_batchnorm_property_normalised_output(n, c, h, w, seed):
    if n * h * w == 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)) * rng.uniform(0.5, 10) + rng.uniform(-5, 5)
    bn = nn.BatchNorm2d(c, eps=0.0, dtype=np.float64)
    y = bn.forward(x)
    const = np.ptp(x, axis=(0, 2, 3)) < 1e-9
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-9)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3))[~const], 1, rtol=1e-7)
    # the gradient of a training forward is orthogonal to the constants and to the output
    g = bn.backward(np.ones_like(y))
    np.testing.assert_allclose(g, 0, atol=1e-7)


# ------------------------------------------------------------------------------- Dropout


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_distribution_and_backward(dtype):
    p = 0.3
    drop = nn.Dropout(p, rng=rng_for("dropout", dtype))
    x = rng_for("dropout-x").uniform(1, 2, (400, 500)).astype(dtype)
    y = drop.forward(x)
    assert y.dtype == dtype
    kept = y != 0
    # binomial(200000, 0.7): 5 standard deviations is about 0.005
    assert abs(kept.mean() - (1 - p)) < 0.006
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)
    g = np.full(x.shape, 3.0, dtype)
    gx = drop.backward(g)
    np.testing.assert_array_equal(gx != 0, kept)
    np.testing.assert_allclose(gx[kept], 3 / (1 - p), rtol=1e-6)
    # a fresh mask each forward; the same seed gives the same masks
    assert not np.array_equal(drop.forward(x) != 0, kept)
    again = nn.Dropout(p, rng=rng_for("dropout", dtype))
    np.testing.assert_array_equal(again.forward(x), y)


def test_dropout_edges_and_eval():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    np.testing.assert_array_equal(nn.Dropout(1.0).forward(x), np.zeros_like(x))
    d1 = nn.Dropout(1.0)
    d1.forward(x)
    np.testing.assert_array_equal(d1.backward(np.ones_like(x)), 0)
    d0 = nn.Dropout(0.0)
    np.testing.assert_array_equal(d0.forward(x), x)
    np.testing.assert_array_equal(d0.backward(np.ones_like(x)), 1)
    d = nn.Dropout(0.9).eval()
    y = d.forward(x)
    np.testing.assert_array_equal(y, x)
    assert y is not x  # a new array: changing the output never changes the input
    np.testing.assert_array_equal(d.backward(np.full_like(x, 2.0)), 2.0)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\]"):
            nn.Dropout(bad)
    with pytest.raises(TypeError, match="Dropout: p must be a real number"):
        nn.Dropout("0.5")
    with pytest.raises(TypeError, match="Dropout: input must be a floating-point"):
        nn.Dropout().forward(np.ones(3, np.int32))


# --------------------------------------------------------------------------- activations


def test_leaky_relu_sigmoid_tanh_values():
    x = np.array([-3.0, -0.5, 0.0, 0.5, 3.0, np.nan])
    lr = nn.LeakyReLU(0.2)
    np.testing.assert_array_equal(lr.forward(x), np.where(x > 0, x, 0.2 * x))
    # the gradient at 0 is negative_slope (torch); at NaN too (NaN > 0 is false)
    np.testing.assert_array_equal(lr.backward(np.ones(6)), [0.2, 0.2, 0.2, 1, 1, 0.2])
    assert nn.LeakyReLU().negative_slope == 0.01
    big = nn.LeakyReLU(-1.5)  # any slope: not a max/min trick
    np.testing.assert_array_equal(big.forward(x[:5]), np.where(x[:5] > 0, x[:5], -1.5 * x[:5]))
    s = nn.Sigmoid()
    with np.errstate(all="raise"):
        ys = s.forward(np.array([-1000.0, 0.0, 1000.0], np.float32))
    np.testing.assert_array_equal(ys, np.array([0.0, 0.5, 1.0], np.float32))
    assert ys.dtype == np.float32
    xs = np.linspace(-6, 6, 25)
    np.testing.assert_allclose(nn.Sigmoid().forward(xs), 1 / (1 + np.exp(-xs)), rtol=1e-15)
    t = nn.Tanh()
    np.testing.assert_allclose(t.forward(xs), np.tanh(xs))
    assert t.forward(xs.astype(np.float32)).dtype == np.float32
    for layer in (nn.LeakyReLU(), nn.Sigmoid(), nn.Tanh()):
        assert np.isnan(layer.forward(np.array([np.nan]))[0])
        with pytest.raises(TypeError, match=f"{type(layer).__name__}: input must be"):
            layer.forward(np.arange(3))


@pytest.mark.parametrize(
    "layer",
    [nn.LeakyReLU(0.1), nn.Sigmoid(), nn.Tanh(), nn.AdaptiveAvgPool2d((2, 3))],
    ids=lambda m: type(m).__name__,
)
def test_parameter_free_layer_gradients(layer):
    rng = rng_for("act-fd", type(layer).__name__)
    x = rng.standard_normal((2, 3, 4, 5))
    x[np.abs(x) < 0.05] += 0.2  # keep away from LeakyReLU's kink
    y = layer.forward(x)
    fd_check(layer, x, rng.standard_normal(y.shape))
    assert layer.backward(rng.standard_normal(y.shape), input_grad=False) is None


def test_adaptive_avg_pool_layer_matches_reference():
    rng = rng_for("adaptive-layer")
    x = rng.standard_normal((2, 3, 7, 5))
    np.testing.assert_allclose(
        nn.AdaptiveAvgPool2d((3, 2)).forward(x), ref.adaptive_avg_pool2d(x, 3, 2), rtol=1e-12
    )
    assert nn.AdaptiveAvgPool2d((None, 1)).forward(x).shape == (2, 3, 7, 1)
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d: output_size must be >= 0"):
        nn.AdaptiveAvgPool2d(-1)
    with pytest.raises(TypeError, match="AdaptiveAvgPool2d: output_size must be an int"):
        nn.AdaptiveAvgPool2d(1.5)


# ------------------------------------------------------------------------------- MSELoss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction):
    rng = rng_for("mse", reduction)
    a, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss = nn.MSELoss(reduction)
    out = loss.forward(a, t)
    sq = (a - t) ** 2
    want = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    np.testing.assert_allclose(out, want, rtol=1e-14)
    g = rng.standard_normal((3, 4)) if reduction == "none" else 0.7
    num = ref.numeric_grad(lambda v: np.asarray(nn.MSELoss(reduction).forward(v, t)), a, g)
    loss.forward(a, t)
    np.testing.assert_allclose(loss.backward(g), num, atol=1e-7)
    if reduction != "none":
        np.testing.assert_allclose(loss.backward(), num / 0.7, atol=1e-7)
    assert nn.MSELoss()(a.astype(np.float32), t) == pytest.approx(sq.mean(), rel=1e-6)
    with pytest.raises(ValueError, match="MSELoss: input and target must have the same shape"):
        loss.forward(a, t[:2])


def test_mse_loss_errors():
    with pytest.raises(ValueError, match="MSELoss: reduction must be"):
        nn.MSELoss("max")
    with pytest.raises(RuntimeError, match="MSELoss.backward called before forward"):
        nn.MSELoss().backward()


# ----------------------------------------------------------------------------- optimizers


def _linear_pair(dtype=np.float64):
    lin = nn.Linear(3, 2, rng=rng_for("opt-lin"), dtype=dtype)
    return lin, [lin.weight.copy(), lin.bias.copy()]


def _grads(n, key):
    rng = rng_for("opt-grads", key)
    return [[rng.standard_normal((2, 3)), rng.standard_normal(2)] for _ in range(n)]


def _run(opt, lin, grads):
    traj = []
    for gw, gb in grads:
        lin.grad_weight, lin.grad_bias = gw.copy(), gb.copy()
        opt.step()
        traj.append([lin.weight.copy(), lin.bias.copy()])
    return traj


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.05, momentum=0.8, weight_decay=0.01, dampening=0.3),
    dict(lr=0.05, momentum=0.9, weight_decay=0.01, nesterov=True),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_reference_over_several_steps(kw):
    lin, p0 = _linear_pair()
    grads = _grads(6, str(kw))
    traj = _run(optim.SGD(lin, **kw), lin, grads)
    want = ref.sgd(p0, grads, **kw)
    for got, exp in zip(traj, want):
        for a, b in zip(got, exp):
            np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(
    "cls,kw",
    [
        (optim.Adam, dict()),
        (optim.Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
        (optim.AdamW, dict()),
        (optim.AdamW, dict(lr=0.02, betas=(0.5, 0.9), weight_decay=0.3)),
    ],
    ids=str,
)
def test_adam_adamw_match_reference_over_several_steps(cls, kw):
    lin, p0 = _linear_pair()
    grads = _grads(7, cls.__name__ + str(kw))
    traj = _run(cls(lin, **kw), lin, grads)
    defaults = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    defaults["weight_decay"] = 1e-2 if cls is optim.AdamW else 0.0
    want = ref.adam(p0, grads, decoupled=cls is optim.AdamW, **{**defaults, **kw})
    for got, exp in zip(traj, want):
        for a, b in zip(got, exp):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: optim.SGD(m, lr=0.1, momentum=0.9, nesterov=True),
        lambda m: optim.Adam(m, lr=0.01),
        lambda m: optim.AdamW(m, lr=0.01),
    ],
)
def test_optimizer_state_dict_resumes_a_run(make):
    grads = _grads(8, "resume")
    lin, _ = _linear_pair()
    full = _run(make(lin), lin, grads)
    lin2, _ = _linear_pair()
    opt = make(lin2)
    _run(opt, lin2, grads[:4])
    saved_model = {k: v.copy() for k, v in lin2.state_dict().items()}
    saved = opt.state_dict()
    _run(opt, lin2, grads[4:6])  # the saved state is a copy: later steps leave it alone
    lin3 = nn.Linear(3, 2, rng=rng_for("other-init"), dtype=np.float64)
    lin3.load_state_dict(saved_model)
    opt3 = make(lin3)
    opt3.load_state_dict(saved)
    rest = _run(opt3, lin3, grads[4:])
    for got, exp in zip(rest, full[4:]):
        for a, b in zip(got, exp):
            np.testing.assert_array_equal(a, b)


def test_optimizer_lr_is_mutable_and_params_without_grads_are_skipped():
    lin, p0 = _linear_pair()
    opt = optim.SGD(lin, lr=0.1)
    lin.grad_weight, lin.grad_bias = np.ones((2, 3)), None
    opt.lr = 0.5
    opt.step()
    np.testing.assert_allclose(lin.weight, p0[0] - 0.5)
    np.testing.assert_array_equal(lin.bias, p0[1])
    opt.lr = -1.0
    with pytest.raises(ValueError, match="SGD: lr must be > 0"):
        opt.step()
    np.testing.assert_allclose(lin.weight, p0[0] - 0.5)  # nothing applied


def test_optimizer_errors():
    lin, _ = _linear_pair()
    with pytest.raises(ValueError, match="SGD: nesterov needs momentum > 0 and dampening"):
        optim.SGD(lin, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="SGD: nesterov needs"):
        optim.SGD(lin, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)
    with pytest.raises(ValueError, match="SGD: momentum must be >= 0"):
        optim.SGD(lin, lr=0.1, momentum=-1)
    with pytest.raises(TypeError, match="positional arguments"):
        optim.SGD(lin, 0.1, 0.9, 0.0, 0.1)  # dampening is keyword-only
    with pytest.raises(ValueError, match=r"Adam: betas\[1\] must be in \[0, 1\)"):
        optim.Adam(lin, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="AdamW: lr must be >= 0"):
        optim.AdamW(lin, lr=-0.1)
    with pytest.raises(ValueError, match="Adam: eps must be >= 0"):
        optim.Adam(lin, eps=-1)
    with pytest.raises(TypeError, match="Adam: model must be an rconv.nn.Module"):
        optim.Adam([lin.weight])
    opt = optim.Adam(lin)
    lin.grad_weight, lin.grad_bias = np.ones((2, 3)), np.ones(2)
    opt.step()
    sd = opt.state_dict()
    before = {k: {s: np.copy(v) for s, v in d.items()} for k, d in opt.state.items()}
    with pytest.raises(KeyError, match="missing keys"):
        opt.load_state_dict({"lr": 0.1, "state": {}})
    bad = {**sd, "state": {"weight": {**sd["state"]["weight"], "exp_avg": np.ones((3, 2))}}}
    with pytest.raises(ValueError, match=r"'weight' exp_avg has shape \(3, 2\)"):
        opt.load_state_dict(bad)
    with pytest.raises(KeyError, match="unknown parameter 'nope'"):
        opt.load_state_dict({**sd, "state": {"nope": {}}})
    with pytest.raises(ValueError, match="betas"):
        opt.load_state_dict({**sd, "betas": (2.0, 0.5)})
    for k, d in before.items():  # nothing changed by the failed loads
        for s, v in d.items():
            np.testing.assert_array_equal(opt.state[k][s], v)
    assert opt.betas == (0.9, 0.999)
    lin.grad_weight = np.ones((3, 2))
    with pytest.raises(RuntimeError, match="gradient of 'weight' has shape"):
        opt.step()


@given(
    lr=st.floats(1e-4, 1.0),
    mu=st.floats(0.0, 0.99),
    wd=st.floats(0.0, 0.1),
    seed=st.integers(0, 2**31),
)
def test_sgd_property_matches_reference(lr, mu, wd, seed):
    rng = np.random.default_rng(seed)
    lin = nn.Linear(3, 2, rng=rng, dtype=np.float64)
    p0 = [lin.weight.copy(), lin.bias.copy()]
    grads = [[rng.standard_normal((2, 3)), rng.standard_normal(2)] for _ in range(3)]
    traj = _run(optim.SGD(lin, lr=lr, momentum=mu, weight_decay=wd), lin, grads)
    want = ref.sgd(p0, grads, lr, mu, wd)
    np.testing.assert_allclose(traj[-1][0], want[-1][0], rtol=1e-12, atol=1e-14)


# ---------------------------------------------------------------------------- module tools


class Residual(nn.Module):
    def __init__(self, c, rng):
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, rng=rng, dtype=np.float64)
        self.bn = nn.BatchNorm2d(c, dtype=np.float64)
        self.acts = [nn.ReLU(), nn.ReLU()]
        self.extra = {"drop": nn.Dropout(0.0)}

    def forward(self, x):
        h = self.acts[0].forward(self.bn.forward(self.conv1.forward(x)))
        return self.acts[1].forward(x + self.extra["drop"].forward(h))

    def backward(self, grad, input_grad=True):
        g = self.acts[1].backward(grad)
        h = self.extra["drop"].backward(g)
        return g + self.conv1.backward(self.bn.backward(self.acts[0].backward(h)))


def test_custom_module_discovery_names_and_modes():
    rng = rng_for("custom-module")
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, rng=rng, dtype=np.float64), Residual(2, rng))
    params = ["0.weight", "0.bias", "1.conv1.weight", "1.conv1.bias", "1.bn.weight", "1.bn.bias"]
    buffers = ["1.bn.running_mean", "1.bn.running_var", "1.bn.num_batches_tracked"]
    assert list(net.params()) == params
    assert list(net.buffers()) == buffers
    assert list(net.state_dict()) == params + buffers  # the parameters, then the buffers
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "0", "1", "1.conv1", "1.bn", "1.acts.0", "1.acts.1", "1.extra.drop"]
    net.eval()
    assert all(not m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())
    # gradients flow through the custom module: finite differences on the whole net
    x = rng.standard_normal((2, 1, 4, 4))
    g = rng.standard_normal((2, 2, 4, 4))
    fd_check(net, x, g, atol=1e-5)
    assert set(net.grads()) == set(net.params())
    # buffers stay out of the optimizers
    opt = optim.SGD(net, lr=0.1)
    rv = net.buffers()["1.bn.running_var"].copy()
    opt.step()
    np.testing.assert_array_equal(net.buffers()["1.bn.running_var"], rv)


def test_shared_module_is_listed_once():
    lin = nn.Linear(2, 2)

    class Twice(nn.Module):
        def __init__(self):
            self.a = lin
            self.b = lin

    assert list(Twice().params()) == ["a.weight", "a.bias"]


def _bn_net(rng, dtype=np.float64):
    return nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, rng=rng, dtype=dtype),
        nn.BatchNorm2d(3, dtype=dtype),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(3 * 4 * 4, 2, rng=rng, dtype=dtype),
    )


def test_state_dict_is_live_and_round_trips(tmp_path):
    rng = rng_for("state-dict")
    a, b = _bn_net(rng), _bn_net(rng, np.float32)
    x = rng.standard_normal((3, 2, 4, 4))
    for _ in range(2):
        a.forward(x)
    sd = a.state_dict()
    assert sd["1.running_mean"] is a[1].running_mean and sd["0.weight"] is a[0].weight
    assert sd["1.num_batches_tracked"].shape == () and int(sd["1.num_batches_tracked"]) == 2
    np.savez(tmp_path / "m.npz", **sd)
    with np.load(tmp_path / "m.npz") as f:
        b.load_state_dict(dict(f))
    for k, v in b.state_dict().items():
        assert v.dtype == (np.int64 if k.endswith("tracked") else np.float32), k
        np.testing.assert_allclose(v, sd[k], rtol=1e-6)
    a.eval()
    b.eval()
    np.testing.assert_allclose(b.forward(x.astype(np.float32)), a.forward(x), rtol=1e-4, atol=1e-5)
    # loading copies: the loaded model does not share arrays with the source dict
    w = sd["0.weight"].copy()
    b.load_state_dict(sd)
    b[0].weight += 1
    np.testing.assert_array_equal(a[0].weight, w)


def test_load_state_dict_errors_change_nothing():
    rng = rng_for("state-dict-errors")
    net = _bn_net(rng)
    before = {k: v.copy() for k, v in net.state_dict().items()}
    good = {k: v + 1 for k, v in before.items()}
    missing = {k: v for k, v in good.items() if k != "1.running_var"}
    with pytest.raises(KeyError, match=r"missing keys \['1.running_var'\], unexpected keys \[\]"):
        net.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected keys \['2.weight'\]"):
        net.load_state_dict({**good, "2.weight": np.ones(1)})
    bad_shape = {**good, "4.weight": np.ones((3, 48))}
    with pytest.raises(
        ValueError, match=r"'4.weight' has shape \(3, 48\), the model's is \(2, 48\)"
    ):
        net.load_state_dict(bad_shape)
    with pytest.raises(TypeError, match="unsupported dtype"):
        net.load_state_dict({**good, "0.bias": np.array(["a", "b", "c"])})
    with pytest.raises(TypeError, match="expected a mapping"):
        net.load_state_dict([1, 2])
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_backward_without_input_gradient():
    rng = rng_for("input-grad")
    calls = []

    class Spy(nn.Module):
        def forward(self, x):
            return x

        def backward(self, grad):
            calls.append(1)
            return grad

    net = nn.Sequential(Spy(), *_bn_net(rng).layers)
    x = rng.standard_normal((2, 2, 4, 4))
    g = rng.standard_normal((2, 2))
    net.forward(x)
    gx = net.backward(g)
    full = {k: v.copy() for k, v in net.grads().items()}
    assert gx.shape == x.shape and calls == [1]
    net.forward(x)
    assert net.backward(g, input_grad=False) is None
    assert calls == [1]  # the layers before the first one with parameters are not run
    for k, v in net.grads().items():
        np.testing.assert_allclose(v, full[k], rtol=1e-12, atol=1e-14, err_msg=k)
    # single layers too, including Conv2d's weight-only path and circular padding
    for conv in (
        nn.Conv2d(2, 3, 3, padding=1, rng=rng, dtype=np.float64),
        nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular", rng=rng, dtype=np.float64),
        nn.Linear(4, 3, rng=rng, dtype=np.float64),
    ):
        xi = rng.standard_normal((2, 2, 4, 4) if isinstance(conv, nn.Conv2d) else (5, 4))
        y = conv.forward(xi)
        gy = rng.standard_normal(y.shape)
        conv.backward(gy)
        ref_g = {k: v.copy() for k, v in conv.grads().items()}
        assert conv.backward(gy, input_grad=False) is None
        for k, v in conv.grads().items():
            np.testing.assert_allclose(v, ref_g[k], rtol=1e-12, atol=1e-14, err_msg=k)


def test_gradients_are_replaced_by_each_backward():
    rng = rng_for("replace-grads")
    conv = nn.Conv2d(1, 1, 2, rng=rng, dtype=np.float64)
    x = rng.standard_normal((1, 1, 3, 3))
    y = conv.forward(x)
    conv.backward(np.ones_like(y))
    g1 = conv.grads()["weight"].copy()
    conv.backward(np.ones_like(y))
    np.testing.assert_array_equal(conv.grads()["weight"], g1)  # not 2 * g1


def test_layer_dtype_arguments():
    for cls, args in ((nn.Conv2d, (1, 1, 1)), (nn.Linear, (2, 2)), (nn.BatchNorm2d, (2,))):
        layer = cls(*args, dtype=np.float64)
        assert all(v.dtype == np.float64 for v in layer.params().values())
        assert all(v.dtype == np.float32 for v in cls(*args).params().values())
        with pytest.raises(TypeError, match=f"{cls.__name__}: dtype must be float32 or float64"):
            cls(*args, dtype=np.float16)
    with pytest.raises(TypeError, match="Sequential: argument 1 must be an rconv.nn.Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)


# ------------------------------------------------------------------------------- Linear


@pytest.mark.parametrize("shape", [(5, 4), (4,), (2, 3, 4), (0, 4)], ids=str)
def test_linear_any_leading_axes_matches_reference(shape):
    rng = rng_for("linear", shape)
    lin = nn.Linear(4, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal(shape)
    y = lin.forward(x)
    np.testing.assert_allclose(y, x @ lin.weight.T + lin.bias, rtol=1e-13, atol=1e-14)
    assert y.shape == shape[:-1] + (3,)
    g = rng.standard_normal(y.shape)
    gx = lin.backward(g)
    g2, x2 = g.reshape(-1, 3), x.reshape(-1, 4)
    np.testing.assert_allclose(gx, g @ lin.weight, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(lin.grad_weight, g2.T @ x2, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(lin.grad_bias, g2.sum(axis=0), rtol=1e-13, atol=1e-14)
    if x.size:
        fd_check(lin, x, g)


def test_linear_dtypes_threads_and_errors(threads):
    rng = rng_for("linear-dtypes")
    lin = nn.Linear(300, 130, rng=rng)  # float32 parameters
    x32 = rng.standard_normal((150, 300), dtype=np.float32)
    y = lin.forward(x32)
    assert y.dtype == np.float32
    ref64 = x32.astype(np.float64) @ lin.weight.T.astype(np.float64) + lin.bias
    np.testing.assert_allclose(y, ref64, rtol=1e-4, atol=1e-4)
    assert lin.forward(x32.astype(np.float64)).dtype == np.float64  # a mix computes in f64
    assert lin.forward(np.ones((2, 300), np.int64)).dtype == np.float64
    g = rng.standard_normal((150, 130), dtype=np.float32)
    lin.forward(x32)
    outs = []
    for n in (1, 2):
        threads(n)
        outs.append((lin.forward(x32), lin.backward(g), lin.grad_weight.copy(), lin.grad_bias))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)  # results do not depend on the thread count
    with pytest.raises(ValueError, match="Linear: input must have 300 features"):
        lin.forward(np.ones((2, 299), np.float32))
    with pytest.raises(TypeError, match="Linear: input has unsupported dtype complex128"):
        lin.forward(np.ones((2, 300), complex))
    lin.forward(x32)
    with pytest.raises(ValueError, match="Linear.backward: grad has shape"):
        lin.backward(np.ones((150, 129), np.float32))
    x_before = x32.copy()
    lin.forward(x32)
    lin.backward(g)
    np.testing.assert_array_equal(x32, x_before)  # inputs are never modified
