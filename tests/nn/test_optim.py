"""rconv.optim's compiled steps (``_rconv.sgd_step`` / ``_rconv.adam_step``: one call per
step over every parameter of the model): the NumPy references of nn_reference.py (torch's
order of operations) over many steps, hypothesis over the hyperparameters and parameter
shapes, thread-count invariance, atomicity (a failing step changes no parameter and no
state), the compiled functions' errors, strided, aliased and mixed-dtype parameters."""

from __future__ import annotations

import copy

import nn_reference as ref
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import seed_for
from rconv import _rconv, nn, optim

# (64, 32, 3, 3) spans two of the compiled step's 16384-element chunks; the small arrays
# share a chunk with their neighbours
SHAPES = [(8, 3, 3, 3), (8,), (8,), (64, 32, 3, 3), (64,), (10, 64), (10,)]
STEPS = 20


class Params(nn.Module):
    """A leaf module whose parameters are the arrays given (``p0``, ``p1``, ...)."""

    def __init__(self, arrays):
        self._param_names = tuple(f"p{i}" for i in range(len(arrays)))
        for n, a in zip(self._param_names, arrays):
            setattr(self, n, a)

    def arrays(self):
        return [getattr(self, n) for n in self._param_names]

    def set_grads(self, grads):
        for n, g in zip(self._param_names, grads):
            setattr(self, f"grad_{n}", g)


def rng_for(*key):
    return np.random.default_rng(seed_for(*key))


def problem(key, shapes=SHAPES, steps=STEPS, dtype=np.float64):
    """Initial parameters and a gradient sequence."""
    rng = rng_for(*key)
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(steps)]
    return p0, grads


def run(make, p0, grads):
    """The trajectory of ``make(model).step()`` over `grads`, with the model and optimizer."""
    model = Params([a.copy() for a in p0])
    opt = make(model)
    traj = []
    for gs in grads:
        model.set_grads([g.copy() for g in gs])
        opt.step()
        traj.append([a.copy() for a in model.arrays()])
    return traj, model, opt


def tol32(steps, *arrays):
    """assert_matches_reference's rounding bound for float32 after `steps` elementwise
    updates: 8 eps per step, scaled by the magnitudes involved."""
    scale = max(float(np.abs(a).max(initial=0)) for a in arrays) + 1
    return 8 * np.finfo(np.float32).eps * steps * scale


def assert_close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == dtype, (got.dtype, dtype)
    if dtype == np.float64:
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=tol32(STEPS, want))


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-3),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.02, momentum=0.5, nesterov=True, weight_decay=0.1),
]

ADAM_CASES = [
    (optim.Adam, dict()),
    (optim.Adam, dict(lr=0.01, weight_decay=0.1)),
    (optim.Adam, dict(lr=0.01, betas=(0.3, 0.95), eps=1e-6)),  # lerp weight 0.7 >= 0.5
    (optim.Adam, dict(lr=0.01, betas=(0.0, 0.0))),
    (optim.AdamW, dict()),
    (optim.AdamW, dict(lr=0.02, betas=(0.5, 0.99), weight_decay=0.3)),
    (optim.AdamW, dict(lr=0.01, weight_decay=0.0)),
]


def adam_kw(cls, kw):
    """The reference's arguments for ``cls(**kw)``."""
    full = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    full["weight_decay"] = 1e-2 if cls is optim.AdamW else 0.0
    return {**full, **kw, "decoupled": cls is optim.AdamW}


# ------------------------------------------------------------------- against the reference


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", SGD_CASES, ids=str)
def test_sgd_matches_reference_over_many_steps(kw, dtype):
    p0, grads = problem(("sgd", str(kw)), dtype=dtype)
    traj, model, opt = run(lambda m: optim.SGD(m, **kw), p0, grads)
    want, bufs = ref.sgd(p0, grads, **kw, dtype=dtype, with_state=True)
    for got_step, want_step in zip(traj, want):
        for a, b in zip(got_step, want_step):
            assert_close(a, b, dtype)
    if not kw.get("momentum"):
        assert opt.state == {}  # torch keeps no state without momentum
    for i, b in enumerate(bufs):
        if b is not None:
            assert_close(opt.state[f"p{i}"]["momentum_buffer"], b, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cls,kw", ADAM_CASES, ids=str)
def test_adam_adamw_match_reference_over_many_steps(cls, kw, dtype):
    p0, grads = problem(("adam", cls.__name__, str(kw)), dtype=dtype)
    traj, model, opt = run(lambda m: cls(m, **kw), p0, grads)
    want, moments = ref.adam(p0, grads, **adam_kw(cls, kw), dtype=dtype, with_state=True)
    for got_step, want_step in zip(traj, want):
        for a, b in zip(got_step, want_step):
            assert_close(a, b, dtype)
    for i, (m, v) in enumerate(moments):
        st = opt.state[f"p{i}"]
        assert st["step"] == STEPS and type(st["step"]) is int
        assert_close(st["exp_avg"], m, dtype)
        assert_close(st["exp_avg_sq"], v, dtype)
        assert st["exp_avg"].flags.c_contiguous and st["exp_avg_sq"].flags.c_contiguous


shapes_st = st.lists(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6), min_size=1, max_size=4
)


@given(
    shapes=shapes_st,
    dtype=st.sampled_from([np.float32, np.float64]),
    lr=st.floats(1e-4, 1.0),
    momentum=st.one_of(st.just(0.0), st.floats(0.0, 0.99)),
    dampening=st.one_of(st.just(0.0), st.floats(0.0, 1.0)),
    nesterov=st.booleans(),
    weight_decay=st.one_of(st.just(0.0), st.floats(0.0, 0.1)),
    steps=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_sgd_property_matches_reference(
    shapes, dtype, lr, momentum, dampening, nesterov, weight_decay, steps, seed
):
    nesterov = nesterov and momentum > 0 and dampening == 0
    kw = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov)
    kw["weight_decay"] = weight_decay
    p0, grads = problem(("sgd-prop", seed), shapes, steps, dtype)
    traj, _, _ = run(lambda m: optim.SGD(m, **kw), p0, grads)
    want = ref.sgd(p0, grads, **kw, dtype=dtype)
    for a, b in zip(traj[-1], want[-1]):
        if dtype == np.float64:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=tol32(steps, *want[-1]))


@given(
    shapes=shapes_st,
    dtype=st.sampled_from([np.float32, np.float64]),
    decoupled=st.booleans(),
    lr=st.floats(0.0, 0.1),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.5, 0.9999),
    eps=st.floats(1e-8, 1e-2),
    weight_decay=st.one_of(st.just(0.0), st.floats(0.0, 0.5)),
    steps=st.integers(1, 5),
    seed=st.integers(0, 2**31),
)
def test_adam_property_matches_reference(
    shapes, dtype, decoupled, lr, beta1, beta2, eps, weight_decay, steps, seed
):
    cls = optim.AdamW if decoupled else optim.Adam
    kw = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    p0, grads = problem(("adam-prop", seed), shapes, steps, dtype)
    traj, _, _ = run(lambda m: cls(m, **kw), p0, grads)
    want = ref.adam(p0, grads, **kw, decoupled=decoupled, dtype=dtype)
    for a, b in zip(traj[-1], want[-1]):
        if dtype == np.float64:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
        else:
            np.testing.assert_allclose(a, b, rtol=0, atol=tol32(steps, *want[-1]))


# ----------------------------------------------------------------------- thread invariance

# enough elements that the compiled steps run on two threads when two are allowed (a
# second thread from 2M float32 elements for SGD, 384k for Adam; float64 counts double)
BIG = {"SGD": [(1024, 2050), (64,), (7,)], "Adam": [(128, 64, 3, 3), (256, 1300), (7,)]}


def kind_problem(make, dtype):
    kind = "SGD" if isinstance(make(Params([])), optim.SGD) else "Adam"
    return problem(("threads", kind), BIG[kind], 2, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda m: optim.SGD(m, lr=0.05, momentum=0.9, weight_decay=1e-3),
        lambda m: optim.SGD(m, lr=0.05, momentum=0.9, nesterov=True),
        lambda m: optim.Adam(m, lr=0.01, weight_decay=0.1),
        lambda m: optim.AdamW(m, lr=0.01, betas=(0.4, 0.99)),
    ],
)
def test_steps_are_bit_identical_for_every_thread_count(make, dtype, threads):
    results = []
    for n in (1, 2):
        threads(n)
        _, model, opt = run(make, *kind_problem(make, dtype))
        results.append((model.arrays(), opt.state))
    (pa, sa), (pb, sb) = results
    for a, b in zip(pa, pb):
        np.testing.assert_array_equal(a, b)
    assert sa.keys() == sb.keys()
    for k in sa:
        for s in sa[k]:
            np.testing.assert_array_equal(sa[k][s], sb[k][s])


# -------------------------------------------------------------- atomicity and every error


def snapshot(model, opt):
    return [a.copy() for a in model.arrays()], copy.deepcopy(opt.state)


def assert_unchanged(model, opt, snap):
    params, state = snap
    for a, b in zip(model.arrays(), params):
        np.testing.assert_array_equal(a, b)
    assert opt.state.keys() == state.keys()
    for k in state:
        assert opt.state[k].keys() == state[k].keys()
        for s in state[k]:
            np.testing.assert_array_equal(opt.state[k][s], state[k][s])


MAKERS = [
    lambda m: optim.SGD(m, lr=0.1, momentum=0.9),
    lambda m: optim.Adam(m, lr=0.01),
    lambda m: optim.AdamW(m, lr=0.01),
]


@pytest.mark.parametrize("make", MAKERS)
def test_a_bad_last_gradient_changes_nothing(make):
    p0, grads = problem(("atomic",), steps=2)
    _, model, opt = run(make, p0, grads[:1])
    snap = snapshot(model, opt)
    bad = [g.copy() for g in grads[1]]
    bad[-1] = np.ones(3)
    model.set_grads(bad)
    name = type(opt).__name__
    with pytest.raises(RuntimeError, match=rf"{name}.step: gradient of 'p6' has shape \(3,\)"):
        opt.step()
    assert_unchanged(model, opt, snap)


@pytest.mark.parametrize("make", MAKERS)
def test_a_read_only_or_aliased_parameter_changes_nothing(make):
    p0, grads = problem(("atomic-ro",), steps=2)
    _, model, opt = run(make, p0, grads[:1])
    model.set_grads(grads[1])
    model.p6.flags.writeable = False
    snap = snapshot(model, opt)
    name = type(opt).__name__
    with pytest.raises(ValueError, match=rf"{name}.step: parameter 'p6' is read-only"):
        opt.step()
    assert_unchanged(model, opt, snap)
    model.p6.flags.writeable = True
    own = model.p6
    model.p6 = model.p5[0, :10]  # tied to the previous parameter's memory
    msg = rf"{name}.step: params\[6\] shares memory with params\[5\]"
    with pytest.raises(ValueError, match=msg):
        opt.step()
    model.p6 = own
    assert_unchanged(model, opt, snap)
    # a state array the user pointed at a parameter: refused, nothing changed
    key = "momentum_buffer" if isinstance(opt, optim.SGD) else "exp_avg"
    opt.state["p6"][key] = model.p6
    snap = snapshot(model, opt)
    with pytest.raises(ValueError, match=r"shares memory with params\[6\]"):
        opt.step()
    assert_unchanged(model, opt, snap)


@pytest.mark.parametrize("make", MAKERS)
def test_a_failing_numpy_parameter_changes_nothing(make):
    """A parameter of a dtype the compiled step does not take goes through NumPy, computed
    before anything is written: a boolean parameter fails there, after the float ones
    were prepared, and nothing is changed."""
    model = Params([np.ones((3, 2)), np.ones(4, np.float32), np.ones(3, bool)])
    model.set_grads([np.ones((3, 2)), np.ones(4, np.float32), np.ones(3)])
    opt = make(model)
    snap = snapshot(model, opt)
    with pytest.raises(TypeError):  # NumPy refuses the arithmetic on booleans
        opt.step()
    assert_unchanged(model, opt, snap)


@pytest.mark.parametrize("make", MAKERS)
def test_mixed_dtypes_strided_and_aliased_arrays(make):
    """float32 and float64 parameters go through one compiled call, float16 through NumPy;
    a Fortran-ordered parameter is updated in place (through a copy written back); strided
    gradients and a gradient that is its own parameter are read, never written. Each
    parameter gets the bits it gets alone in a model."""
    rng = rng_for("mixed")
    p0 = [
        rng.standard_normal((4, 5)).astype(np.float32),
        np.asfortranarray(rng.standard_normal((5, 3))),
        rng.standard_normal(7).astype(np.float16),
        rng.standard_normal(5),
    ]
    model = Params([a.copy(order="K") for a in p0])
    fortran = model.p1
    opt = make(model)
    alone = [Params([a.copy()]) for a in p0]
    alone_opts = [make(m) for m in alone]
    for _ in range(3):
        base = rng.standard_normal((6, 10))
        grads = [
            rng.standard_normal((4, 5)).astype(np.float32),
            base[1:, ::3][:, :3],  # strided
            rng.standard_normal(14).astype(np.float16)[::2],  # strided
            model.p3,  # the gradient is the parameter itself
        ]
        before = [g.copy() for g in grads]
        model.set_grads(grads)
        opt.step()
        for g, b in zip(grads[:3], before):
            np.testing.assert_array_equal(g, b)  # gradients unmodified
        for m, o, g in zip(alone, alone_opts, before):
            m.set_grads([g])
            o.step()
    assert model.p1 is fortran and fortran.flags.f_contiguous
    for got, m in zip(model.arrays(), alone):
        assert got.dtype == m.p0.dtype
        np.testing.assert_array_equal(got, m.p0)


def test_state_in_other_layouts_and_dtypes_is_converted():
    """State loaded from Fortran-ordered float32 arrays (or edited by hand) is taken in
    the compiled step's form; the committed state is C-contiguous of the parameter's
    dtype, and the result is the same as with the original state."""
    p0, grads = problem(("state-layout",), [(4, 6), (6,)], 4)
    _, model, opt = run(lambda m: optim.Adam(m, lr=0.01), p0, grads[:2])
    sd = opt.state_dict()
    odd = copy.deepcopy(sd)
    odd["state"]["p0"]["exp_avg"] = np.asfortranarray(sd["state"]["p0"]["exp_avg"])
    odd["state"]["p1"]["exp_avg_sq"] = sd["state"]["p1"]["exp_avg_sq"].astype(np.float32)
    m2 = Params([a.copy() for a in model.arrays()])
    o2 = optim.Adam(m2, lr=0.01)
    o2.load_state_dict(odd)
    o2.state["p0"]["exp_avg_sq"] = np.asfortranarray(o2.state["p0"]["exp_avg_sq"])
    for gs in grads[2:]:
        for m, o in ((model, opt), (m2, o2)):
            m.set_grads(gs)
            o.step()
    np.testing.assert_array_equal(m2.p0, model.p0)
    np.testing.assert_allclose(m2.p1, model.p1, rtol=1e-6)  # the float32 round trip
    for state in o2.state.values():
        for k in ("exp_avg", "exp_avg_sq"):
            assert state[k].flags.c_contiguous and state[k].dtype == np.float64


def test_load_state_dict_refuses_a_negative_step():
    model = Params([np.ones(2)])
    opt = optim.Adam(model)
    sd = {**opt.state_dict(), "state": {"p0": {"step": -1}}}
    with pytest.raises(ValueError, match="Adam.load_state_dict: 'p0' step must be >= 0, got -1"):
        opt.load_state_dict(sd)
    assert opt.state == {}


# ------------------------------------------------------------- the compiled functions


def arrays(*shapes, dtype=np.float32):
    return [np.ones(s, dtype) for s in shapes]


def test_compiled_steps_return_new_state_for_none_and_the_same_arrays_otherwise():
    p, g = arrays((2, 3), (3,)), arrays((2, 3), (3,))
    buf = np.zeros(3, np.float32)
    out = _rconv.sgd_step(p, g, [None, buf], 0.5, 0.9, 0.0, 0.0, False)
    assert out[1] is buf and out[0] is not None
    np.testing.assert_array_equal(out[0], g[0])  # the first step's buffer is the gradient
    np.testing.assert_array_equal(buf, 0.9 * 0 + 1)
    assert _rconv.sgd_step(p, g, None, 0.5, 0.0, 0.0, 0.0, False) is None
    m, v = _rconv.adam_step(p, g, [None, None], [None, None], [1, 1], 0.1, 0.9, 0.999, 0, 0, False)
    assert [a.shape for a in m] == [(2, 3), (3,)] and m[0].dtype == np.float32
    m2, v2 = _rconv.adam_step(p, g, m, v, [2, 2], 0.1, 0.9, 0.999, 0, 0, False)
    assert all(a is b for a, b in zip(m2 + v2, m + v))
    assert _rconv.sgd_step([], [], [], 0.1, 0.9, 0.0, 0.0, False) == []


def bad_calls():
    """(call, error, message) of compiled calls that must refuse before writing, and every
    array they use (all ones)."""
    pool = []

    def ones(*shape, dtype=np.float32):
        pool.append(np.ones(shape, dtype))
        return pool[-1]

    p32, g32 = [ones(2, 3), ones(3)], [ones(2, 3), ones(3)]
    f = ones(3, 2).T
    ro = ones(3)
    ro.flags.writeable = False

    def sgd(params=p32, grads=g32, bufs=None, momentum=0.0, name=None):
        return lambda: _rconv.sgd_step(params, grads, bufs, 0.1, momentum, 0.0, 0.0, False, name)

    def adam(params=p32, grads=g32, ms=(None, None), vs=(None, None), steps=(1, 1)):
        return lambda: _rconv.adam_step(
            params, grads, list(ms), list(vs), list(steps), 0.1, 0.9, 0.999, 1e-8, 0.0, False
        )

    cases = [
        (sgd(params=p32[0]), TypeError, "^sgd_step: params must be a list of NumPy arrays$"),
        (sgd(grads=g32[:1]), ValueError, "^sgd_step: grads has 1 entries, params 2$"),
        (sgd(params=[p32[0], [1, 2, 3]]), TypeError, r"params\[1\] must be a NumPy array"),
        (
            sgd(params=[p32[0], ones(3, dtype=np.int64)]),
            TypeError,
            r"params\[1\] has unsupported dtype int64; expected float32 or float64",
        ),
        (
            sgd(grads=[g32[0], ones(3, dtype=np.float64)]),
            TypeError,
            r"grads\[1\] has dtype float64, params\[1\] float32",
        ),
        (
            sgd(grads=[g32[0], ones(2)]),
            ValueError,
            r"grads\[1\] has shape \(2,\), params\[1\] \(3,\)",
        ),
        (sgd(params=[f, p32[1]]), ValueError, r"params\[0\] must be C-contiguous and aligned"),
        (sgd(grads=[f, g32[1]]), ValueError, r"grads\[0\] must be C-contiguous"),
        (sgd(params=[p32[0], ro]), ValueError, r"params\[1\] must be writeable"),
        (sgd(momentum=0.9), ValueError, "bufs must be a list when momentum != 0"),
        (sgd(bufs=[None, None]), ValueError, "bufs must be None when momentum == 0"),
        (
            sgd(bufs=[None, p32[0]], momentum=0.9),
            ValueError,
            r"bufs\[1\] has shape \(2, 3\), params\[1\] \(3,\)",
        ),
        (
            sgd(bufs=[p32[0], None], momentum=0.9),
            ValueError,
            r"bufs\[0\] shares memory with params\[0\]",
        ),
        (sgd(grads=[g32[0], p32[1]]), ValueError, r"grads\[1\] shares memory with params\[1\]"),
        (
            sgd(params=[p32[0], p32[0].reshape(-1)[:3]]),
            ValueError,
            r"params\[1\] shares memory with params\[0\]",
        ),
        (
            sgd(grads=[g32[0], g32[1][:2]], name="SGD.step"),
            ValueError,
            r"^SGD.step: grads\[1\] has shape \(2,\), params\[1\] \(3,\)$",
        ),
        (adam(steps=(1, 0)), ValueError, r"^adam_step: steps\[1\] must be an integer >= 1$"),
        (adam(steps=(1, "2")), ValueError, r"steps\[1\] must be an integer >= 1"),
        (adam(steps=(1,)), ValueError, "steps has 1 entries, params 2"),
        (
            adam(ms=(None, ones(2))),
            ValueError,
            r"exp_avgs\[1\] has shape \(2,\), params\[1\] \(3,\)",
        ),
        (
            adam(ms=(None, g32[1]), vs=(None, g32[1])),
            ValueError,
            r"exp_avg_sqs\[1\] shares memory with exp_avgs\[1\]",
        ),
        (adam(vs=(None, g32[1])), ValueError, r"grads\[1\] shares memory with exp_avg_sqs\[1\]"),
    ]
    return cases, pool


@pytest.mark.parametrize("i", range(len(bad_calls()[0])))
def test_compiled_steps_refuse_bad_input_before_writing(i):
    cases, pool = bad_calls()
    call, error, message = cases[i]
    with pytest.raises(error, match=message):
        call()
    for a in pool:
        np.testing.assert_array_equal(a, 1)  # nothing was written


def test_compiled_refusal_leaves_every_array_unchanged():
    p, g = arrays((2, 3), (3,)), arrays((2, 3), (3,))
    bufs = arrays((2, 3), (3,))
    bufs[1] = np.full(3, 7.0, np.float32)
    snap = [a.copy() for a in p + g + bufs]
    with pytest.raises(ValueError, match=r"grads\[1\] shares memory with params\[0\]"):
        _rconv.sgd_step(p, [g[0], p[0].reshape(-1)[3:]], bufs, 0.1, 0.9, 0.0, 0.0, False)
    for a, b in zip(p + g + bufs, snap):
        np.testing.assert_array_equal(a, b)
