"""scipy's own convolve2d / correlate2d tests (scipy/signal/tests/test_signaltools.py:
TestConvolve2d and TestCorrelate2d), run against rconv instead of scipy.

The test code is scipy's, not a copy: the classes below subclass scipy's, and the autouse
fixture `rconv_spies` rebinds, for the duration of each test, the names those tests call --
the module globals `convolve2d` and `correlate2d` of scipy's test module, and its `signal`
(which the tests use as `signal.convolve2d` / `signal.correlate2d`), replaced by a view of
scipy.signal whose convolve2d / correlate2d are rconv's -- to counting wrappers around
rconv's functions. Every test here must call rconv at least once (checked after each test).

scipy's tests take an `xp` fixture (an array-API namespace) from scipy's conftest.py, which
is not loaded here: the `xp` below is NumPy only, the namespace scipy's own fixture yields
for NumPy. A skip_xp_backends / xfail_xp_backends mark naming NumPy makes the test fail
rather than skip: such a test would have to be excluded explicitly, below.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.signal
import scipy.signal.tests.test_signaltools as sst
from scipy._lib._array_api import array_namespace

import rconv

FUNCS = ("convolve2d", "correlate2d")

# scipy tests that do not apply to rconv, each with the reason; nothing else is left out.
EXCLUDED = {
    "TestCorrelate2d": {
        # Compares scipy.signal.correlate (1-D/N-D) with np.correlate and never calls
        # correlate2d: it tests scipy itself, there is nothing of rconv's in it.
        "test_consistency_correlate_funcs",
    },
    "TestConvolve2d": set(),
}


class _Spy:
    """Calls `func` (rconv's), counting the calls."""

    def __init__(self, func):
        functools.update_wrapper(self, func)
        self.func = func
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.func(*args, **kwargs)


class _SignalWithRconv:
    """scipy.signal, except that convolve2d / correlate2d are the given spies."""

    def __init__(self, spies):
        self.__dict__.update(spies)

    def __getattr__(self, name):
        return getattr(scipy.signal, name)


@pytest.fixture(autouse=True)
def rconv_spies(monkeypatch):
    spies = {name: _Spy(getattr(rconv, name)) for name in FUNCS}
    for name, spy in spies.items():
        monkeypatch.setattr(sst, name, spy)
    monkeypatch.setattr(sst, "signal", _SignalWithRconv(spies))
    return spies


def _numpy_excluded_by(request):
    """The skip_xp_backends / xfail_xp_backends marks of the test that apply to NumPy:
    those naming it (np_only, cpu_only and eager_only never exclude NumPy)."""
    return [
        mark
        for kind in ("skip_xp_backends", "xfail_xp_backends")
        for mark in request.node.iter_markers(kind)
        if mark.args and mark.args[0] == "numpy"
    ]


@pytest.fixture(params=[pytest.param(np, id="numpy")])
def xp(request):
    marks = _numpy_excluded_by(request)
    if marks:
        pytest.fail(f"scipy skips/xfails this test for NumPy ({marks}): exclude it explicitly")
    return array_namespace(request.param.empty(0))


class _CallsRconv:
    @pytest.fixture(autouse=True)
    def _must_call_rconv(self, rconv_spies):
        yield
        assert sum(spy.calls for spy in rconv_spies.values()) > 0, "rconv was not called"


def _exclude(cls, names):
    for name in names:
        assert callable(getattr(cls, name)), name
        setattr(cls, name, None)  # not collected: see EXCLUDED for the reason
    return cls


def _rconv_func_marks(func):
    """`func`'s marks, with readable ids for its parametrisation over scipy's functions."""
    marks = []
    for mark in func.pytestmark:
        if mark.name == "parametrize" and mark.args[0] == "func":
            values = mark.args[1]
            mark = pytest.mark.parametrize("func", values, ids=[f.__name__ for f in values]).mark
        marks.append(mark)
    return marks


@functools.partial(_exclude, names=EXCLUDED["TestConvolve2d"])
class TestConvolve2d(_CallsRconv, sst.TestConvolve2d):
    # scipy parametrises this test over its own functions, bound when its module was
    # imported, so rebinding the module's names cannot reach them: call it with rconv's.
    def test_same_with_boundary(self, func, boundary, expected, xp):
        assert func is getattr(scipy.signal, func.__name__)
        rebound = getattr(sst, func.__name__)
        assert isinstance(rebound, _Spy)
        super().test_same_with_boundary(rebound, boundary, expected, xp)

    test_same_with_boundary.pytestmark = _rconv_func_marks(
        sst.TestConvolve2d.test_same_with_boundary
    )


@functools.partial(_exclude, names=EXCLUDED["TestCorrelate2d"])
class TestCorrelate2d(_CallsRconv, sst.TestCorrelate2d):
    pass


# ---------------------------------------------------------------- the harness itself


def _test_names(cls):
    return {name for name in dir(cls) if name.startswith("test") and callable(getattr(cls, name))}


@pytest.mark.parametrize("cls", [TestConvolve2d, TestCorrelate2d], ids=lambda c: c.__name__)
def test_every_scipy_test_runs_or_is_excluded(cls):
    scipy_cls = getattr(sst, cls.__name__)
    scipy_tests = _test_names(scipy_cls)
    assert scipy_tests, "scipy's test class has no tests: has it moved?"
    assert EXCLUDED[cls.__name__] <= scipy_tests
    assert _test_names(cls) == scipy_tests - EXCLUDED[cls.__name__]


def test_rebinding_reaches_rconv(rconv_spies, xp):
    assert sst.convolve2d is rconv_spies["convolve2d"]
    assert sst.correlate2d is rconv_spies["correlate2d"]
    assert sst.signal.convolve2d is rconv_spies["convolve2d"]
    assert sst.signal.correlate2d is rconv_spies["correlate2d"]
    assert sst.signal.convolve is scipy.signal.convolve
    assert scipy.signal.convolve2d is not rconv_spies["convolve2d"]  # scipy itself untouched
    # run one of scipy's tests of each class: they must go through rconv, not scipy
    sst.TestConvolve2d().test_2d_arrays(xp)
    assert rconv_spies["convolve2d"].calls == 1
    sst.TestCorrelate2d().test_complex_input(xp)
    assert rconv_spies["correlate2d"].calls == 3
    assert rconv_spies["convolve2d"].calls == 1
    assert rconv_spies["convolve2d"].func is rconv.convolve2d
    assert rconv_spies["correlate2d"].func is rconv.correlate2d
