"""Shared fixtures and helpers for the rconv test suite."""

from __future__ import annotations

import os
import re
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

import rconv

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "dev", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(
    os.environ.get("RCONV_HYPOTHESIS") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_runtest_logstart(nodeid, location):
    """With ``RCONV_TEST_TRACE=FILE``, append each test's id to FILE before it runs (CI sets
    it, so that a run killed by a signal can still say which test was running)."""
    trace = os.environ.get("RCONV_TEST_TRACE")
    if trace:
        with open(trace, "a") as f:
            f.write(nodeid + "\n")


def pytest_configure(config):
    # markers of scipy's test_signaltools.py, which tests/test_scipy_suite.py imports
    for line in (
        "slow: a test of minutes (the wheel build, the notebooks, the SIMD-level reruns; scipy's "
        "own slow tests): left out by the quick loop, pytest -m 'not slow'; CI runs them",
        "fail_slow(timeout): scipy marker (pytest-fail-slow), not enforced here",
        "xfail_on_32bit(reason): scipy marker: fails on 32-bit platforms",
        "skip_xp_backends(backend=None, *, reason=None, np_only=False, cpu_only=False, "
        "eager_only=False, exceptions=None): scipy marker, read by test_scipy_suite's `xp`",
        "xfail_xp_backends(backend=None, *, reason=None, np_only=False, cpu_only=False, "
        "eager_only=False, exceptions=None): scipy marker, read by test_scipy_suite's `xp`",
    ):
        config.addinivalue_line("markers", line)


INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
FLOAT_DTYPES = [np.float32, np.float64]
COMPLEX_DTYPES = [np.complex64, np.complex128]
ALL_DTYPES = INT_DTYPES + FLOAT_DTYPES + COMPLEX_DTYPES

# the signal functions' options
MODES = ["full", "same", "valid"]
FUNCS = ["correlate2d", "convolve2d"]
BOUNDARY_ALIASES = ["fill", "pad", "symm", "symmetric", "wrap", "circular"]


def seed_for(*key) -> int:
    """A reproducible 32-bit RNG seed derived from `key` (ints, strings, tuples...).

    Unlike ``hash()``, whose value for strings is randomised per process, this is the same
    in every run, so a failing parametrised case can be reproduced."""
    return zlib.crc32(repr(key).encode())


@pytest.fixture
def threads():
    """Restore rconv's thread count after a test changes it."""
    old = rconv.get_num_threads()
    yield rconv.set_num_threads
    rconv.set_num_threads(old)


@pytest.fixture(scope="module")
def cluster_client():
    """A dask.distributed LocalCluster of two worker processes (each under a nanny that
    restarts it) on the loopback interface, and its client; started and closed per test
    module. Needs the 'dask' extra (the modules that use it import it first)."""
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def random_array(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Values that exercise a dtype: full range for small ints (so sums wrap), moderate
    magnitudes for wide ints and floats, both parts for complex."""
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo, hi = (
            (info.min, info.max) if dt.itemsize <= 2 else (-1000 if dt.kind == "i" else 0, 1000)
        )
        return rng.integers(lo, hi, size=shape, endpoint=True).astype(dt)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


def assert_matches_reference(out, ref, in1, in2):
    """`out` equals the reference `ref` exactly for integers; for floats within a rounding
    bound proportional to the sum of absolute products (the accumulation order differs)."""
    assert out.shape == ref.shape, (out.shape, ref.shape)
    assert out.dtype == ref.dtype, (out.dtype, ref.dtype)
    if out.dtype.kind in "iu":
        np.testing.assert_array_equal(out, ref)
        return
    eps = np.finfo(out.dtype).eps
    n_terms = max(1, np.asarray(in1).size, np.asarray(in2).size)
    # |sum of products| <= sum |products| <= max|a| * max|b| * n_terms
    scale = (np.abs(in1).max(initial=0) + 1) * (np.abs(in2).max(initial=0) + 1)
    tol = 8 * eps * n_terms * scale
    np.testing.assert_allclose(out, ref, rtol=0, atol=tol, equal_nan=True)


def random_pair(rng: np.random.Generator, s1, s2, dtype) -> tuple:
    """An image of shape `s1`, then a kernel of shape `s2`, both by :func:`random_array`."""
    return random_array(rng, s1, dtype), random_array(rng, s2, dtype)


def valid_ok(s1, s2) -> bool:
    """Whether mode 'valid' accepts the shapes: one at least as large as the other in every
    dimension."""
    return all(a >= b for a, b in zip(s1, s2)) or all(a <= b for a, b in zip(s1, s2))


def mode_shapes(mode, pairs) -> list:
    """The (s1, s2) shape pairs of `pairs` that `mode` accepts, in order."""
    return [(s1, s2) for s1, s2 in pairs if mode != "valid" or valid_ok(s1, s2)]


def int_pairs(lo, hi):
    """Hypothesis strategy: a pair of ints, each in [lo, hi] (a 2-D shape, a stride...)."""
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


def int_ranges(**ranges) -> dict:
    """Hypothesis strategies for `@given(**int_ranges(n=(lo, hi), ...))`: for every keyword,
    the ints in [lo, hi]."""
    return {name: st.integers(lo, hi) for name, (lo, hi) in ranges.items()}


def signal_cases(s1, s2, boundaries) -> dict:
    """Hypothesis strategies for `@given(**signal_cases(...))`: shapes ``s1`` and ``s2`` with
    sides in the ranges `s1` and `s2` (lo, hi), a mode, a boundary of `boundaries`, a
    function of FUNCS and a 32-bit seed."""
    return dict(
        s1=int_pairs(*s1),
        s2=int_pairs(*s2),
        mode=st.sampled_from(MODES),
        boundary=st.sampled_from(boundaries),
        func=st.sampled_from(FUNCS),
        seed=st.integers(0, 2**32 - 1),
    )


# ------------------------------------------------------------------ notebooks

DEFAULT_REPR = re.compile(r"<[\w.]+ (object )?at 0x[0-9a-f]+>")


def stray_outputs(nb: dict) -> list[str]:
    """The text of every output of `nb` (a notebook's JSON) that is an error or shows a
    default object repr."""
    found = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                found.append(f"error: {out.get('ename')}")
                continue
            text = out.get("text") or out.get("data", {}).get("text/plain", "")
            text = "".join(text) if isinstance(text, list) else text
            found += [m.group(0) for m in DEFAULT_REPR.finditer(text)]
    return found
