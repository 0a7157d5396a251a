"""rconv.dask.ndimage: chunked filters equal the in-memory rconv.ndimage calls byte for byte
(threaded scheduler, and a dask.distributed LocalCluster that loses a worker mid-compute),
the overlap and rechunking rules, and the errors."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

if os.environ.get("CI"):  # CI installs the 'dask' extra: a missing package is a failure there
    import dask.array as da
    import distributed
else:
    da = pytest.importorskip("dask.array", reason="install the 'dask' extra")
    distributed = pytest.importorskip("distributed", reason="install the 'dask' extra")

import rconv.dask.ndimage as dnd
import rconv.ndimage as nd

MODES = ["reflect", "mirror", "nearest", "wrap", "constant", "grid-wrap", "grid-mirror"]


def _same(got, want, msg=""):
    """Byte equality (the sign of zeros too), any NaN equal to any NaN."""
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape, msg
    parts = [(got.real, want.real), (got.imag, want.imag)] if want.dtype.kind == "c" else []
    for g, w in parts or [(got, want)]:
        floats = w.dtype.kind == "f"
        assert np.array_equal(g, w, equal_nan=floats), msg
        if floats:
            assert np.array_equal(np.signbit(g), np.signbit(w)), msg


def _threads(arr):
    return arr.compute(scheduler="threads")


W5 = np.arange(25.0).reshape(5, 5) - 12.0
W32 = np.array([[1.0, -2.0], [0.5, 0.0], [3.0, 1.0]])

# name -> (chunked call, in-memory call): the same arguments
CASES = {
    "correlate": (lambda f, x, m: f(x, W5, mode=m, cval=1.5), "correlate"),
    "convolve": (lambda f, x, m: f(x, W32, mode=m, origin=(1, 0)), "convolve"),
    "correlate1d": (lambda f, x, m: f(x, [1.0, 2.0, -1.0, 4.0], axis=0, mode=m), "correlate1d"),
    "convolve1d": (lambda f, x, m: f(x, [3.0, 0.5], mode=m, origin=-1), "convolve1d"),
    "gaussian_filter": (lambda f, x, m: f(x, (2.0, 0.7), mode=m), "gaussian_filter"),
    "gaussian_filter1d": (lambda f, x, m: f(x, 1.3, axis=0, order=2, mode=m), "gaussian_filter1d"),
    "uniform_filter": (lambda f, x, m: f(x, (4, 3), mode=m, origin=(1, 0)), "uniform_filter"),
    "uniform_filter1d": (lambda f, x, m: f(x, 6, axis=0, mode=m), "uniform_filter1d"),
    "sobel": (lambda f, x, m: f(x, axis=0, mode=m), "sobel"),
    "prewitt": (lambda f, x, m: f(x, mode=m, cval=-2.0), "prewitt"),
    "laplace": (lambda f, x, m: f(x, mode=m), "laplace"),
    "gaussian_laplace": (lambda f, x, m: f(x, 1.5, mode=m, truncate=3.0), "gaussian_laplace"),
    "gaussian_gradient_magnitude": (
        lambda f, x, m: f(x, 1.2, mode=m, radius=4),
        "gaussian_gradient_magnitude",
    ),
}


def test_the_table_covers_the_module():
    assert sorted(CASES) == sorted(dnd.__all__)
    assert sorted(dnd.__all__) == sorted(nd.__all__)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunks", [(7, 9), (2, 3), (40, 31)])
def test_filters_equal_in_memory(name, mode, chunks):
    """Every filter, every mode, chunks larger than, smaller than (joined first) and equal to
    the image."""
    call, ref = CASES[name]
    x = np.random.default_rng(1).standard_normal((40, 31)).astype(np.float32)
    got = _threads(call(getattr(dnd, name), da.from_array(x, chunks=chunks), mode))
    _same(got, call(getattr(nd, ref), x, mode), f"{name} {mode} {chunks}")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint32, np.float64, np.complex64])
@pytest.mark.parametrize("name", ["gaussian_filter", "uniform_filter", "sobel", "correlate"])
def test_dtypes_equal_in_memory(name, dtype):
    call, ref = CASES[name]
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((33, 26)) * 60 + 100).astype(dtype)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * (rng.standard_normal(x.shape) * 5).astype(dtype)
    got = _threads(call(getattr(dnd, name), da.from_array(x, chunks=(8, 11)), "reflect"))
    _same(got, call(getattr(nd, ref), x, "reflect"), f"{name} {dtype}")


def test_volume_per_axis_modes_and_axes():
    v = np.random.default_rng(3).random((12, 30, 25)).astype(np.float32)
    dv = da.from_array(v, chunks=(4, 7, 10))
    modes = ["wrap", "mirror", "constant"]
    _same(
        _threads(dnd.gaussian_filter(dv, (1.0, 2.5, 0.5), mode=modes, cval=0.25)),
        nd.gaussian_filter(v, (1.0, 2.5, 0.5), mode=modes, cval=0.25),
    )
    _same(
        _threads(dnd.uniform_filter(dv, (3, 5), mode=["wrap", "nearest"], axes=(0, 2))),
        nd.uniform_filter(v, (3, 5), mode=["wrap", "nearest"], axes=(0, 2)),
    )
    _same(
        _threads(dnd.correlate(dv, np.ones((3, 2)), mode="wrap", axes=(2, 0))),
        nd.correlate(v, np.ones((3, 2)), mode="wrap", axes=(2, 0)),
    )
    _same(_threads(dnd.laplace(dv, axes=(1,))), nd.laplace(v, axes=(1,)))


def test_running_sums_restart_nowhere():
    """NaN and Inf poison the rest of their line in scipy's running sum: the chunked call
    keeps each filtered line whole, so it poisons the same cells."""
    x = np.random.default_rng(4).standard_normal((20, 60))
    x[3, 10] = np.nan
    x[7, 41] = np.inf
    dx = da.from_array(x, chunks=(5, 12))
    _same(_threads(dnd.uniform_filter1d(dx, 5)), nd.uniform_filter1d(x, 5))
    _same(_threads(dnd.uniform_filter(dx, 3)), nd.uniform_filter(x, 3))
    # the graph: the filtered axis is one chunk, the other keeps its chunks
    assert dnd.uniform_filter1d(dx, 5).chunks == ((5, 5, 5, 5), (60,))


def test_overlap_is_the_reach_and_short_chunks_are_joined():
    x = np.random.default_rng(5).random((50, 50))
    # radius int(4 * 2 + 0.5) = 8: chunks of 3 are joined into chunks of at least 8
    y = dnd.gaussian_filter(da.from_array(x, chunks=3), 2.0)
    assert min(min(c) for c in y.chunks) >= 8
    _same(_threads(y), nd.gaussian_filter(x, 2.0))
    # a kernel longer than the axis: that axis becomes one chunk
    z = dnd.correlate1d(da.from_array(x, chunks=10), np.ones(120), axis=1)
    assert z.chunks[1] == (50,)
    _same(_threads(z), nd.correlate1d(x, np.ones(120), axis=1))
    # an axis the filter does not touch keeps its chunks
    assert dnd.gaussian_filter1d(da.from_array(x, chunks=10), 3.0).chunks[0] == (10,) * 5


def test_odd_arrays_equal_in_memory():
    for x in (np.zeros((0, 5)), np.array(3.5), np.arange(7.0), np.ones((1, 1, 4))):
        for name in ("gaussian_filter", "uniform_filter", "laplace"):
            f = getattr(dnd, name)
            want = getattr(nd, name)(x, 1) if name != "laplace" else nd.laplace(x)
            got = f(da.from_array(x), 1) if name != "laplace" else f(da.from_array(x))
            _same(_threads(got), want, f"{name} {x.shape}")


def test_inputs_of_any_kind_and_left_untouched():
    x = np.random.default_rng(6).random((16, 16))
    keep = x.copy()
    _same(_threads(dnd.sobel(x.tolist())), nd.sobel(np.asarray(x.tolist())))
    w = da.from_array(np.ones((3, 3)))
    _same(_threads(dnd.correlate(x, w)), nd.correlate(x, np.ones((3, 3))))
    assert np.array_equal(x, keep)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda x: dnd.gaussian_filter(x, 1.0, mode="bogus"), RuntimeError, "boundary mode"),
        (lambda x: dnd.correlate(x, np.ones(3)), RuntimeError, "must match"),
        (lambda x: dnd.uniform_filter1d(x, 0), RuntimeError, "incorrect filter size"),
        (lambda x: dnd.correlate1d(x, [1.0], axis=5), ValueError, "out of bounds"),
        (lambda x: dnd.gaussian_filter(x, float("inf")), OverflowError, "infinity"),
        (lambda x: dnd.sobel(x, mode=["reflect"]), RuntimeError, "sequence argument"),
    ],
)
def test_errors_when_the_graph_is_built(call, exc, match):
    """The in-memory function's error class and text, raised before anything is computed."""
    x = da.from_array(np.ones((10, 10)), chunks=5)
    with pytest.raises(exc, match=match):
        call(x)


def test_unknown_chunk_sizes_are_refused_clearly():
    x = da.from_array(np.ones((10, 10)), chunks=5)
    x = x[x[:, 0] > 0]
    with pytest.raises(ValueError, match="rconv.dask.ndimage.sobel: image has chunks of unknown"):
        dnd.sobel(x)


_FUNCS = st.sampled_from(sorted(CASES))


@settings(deadline=None)
@given(
    name=_FUNCS,
    shape=st.lists(st.integers(1, 14), min_size=1, max_size=3),
    chunk=st.integers(1, 6),
    mode=st.sampled_from(MODES),
    dtype=st.sampled_from([np.float32, np.float64, np.int16, np.uint8]),
    seed=st.integers(0, 2**16),
)
def test_property_equals_in_memory(name, shape, chunk, mode, dtype, seed):
    """Any rank, chunking and mode: the chunked call equals the in-memory call."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 50).astype(dtype)
    nd_args = {
        "correlate": lambda f, a: f(a, np.ones((3,) * a.ndim) - 0.25, mode=mode),
        "convolve": lambda f, a: f(a, np.arange(2.0**a.ndim).reshape((2,) * a.ndim), mode=mode),
        "correlate1d": lambda f, a: f(a, [1.0, -2.0, 0.5], axis=0, mode=mode),
        "convolve1d": lambda f, a: f(a, [1.0, 2.0], mode=mode),
        "gaussian_filter": lambda f, a: f(a, 1.2, mode=mode),
        "gaussian_filter1d": lambda f, a: f(a, 0.8, order=1, mode=mode),
        "uniform_filter": lambda f, a: f(a, 3, mode=mode),
        "uniform_filter1d": lambda f, a: f(a, 4, mode=mode, origin=1),
        "sobel": lambda f, a: f(a, mode=mode),
        "prewitt": lambda f, a: f(a, axis=0, mode=mode),
        "laplace": lambda f, a: f(a, mode=mode),
        "gaussian_laplace": lambda f, a: f(a, 0.9, mode=mode),
        "gaussian_gradient_magnitude": lambda f, a: f(a, 0.9, mode=mode),
    }[name]
    got = _threads(nd_args(getattr(dnd, name), da.from_array(x, chunks=chunk)))
    _same(got, nd_args(getattr(nd, name), x), f"{name} {shape} {chunk} {mode} {dtype}")


# --------------------------------------------------------------------------- distributed


def test_local_cluster_filters(cluster_client):
    v = np.random.default_rng(7).random((16, 64, 64)).astype(np.float32)
    dv = da.from_array(v, chunks=(8, 32, 32))
    for f, ref in [
        (dnd.gaussian_filter(dv, 1.5, mode="wrap"), nd.gaussian_filter(v, 1.5, mode="wrap")),
        (dnd.uniform_filter(dv, 5), nd.uniform_filter(v, 5)),
        (dnd.sobel(dv, axis=1), nd.sobel(v, axis=1)),
    ]:
        _same(cluster_client.compute(f).result(), ref)
    pids = cluster_client.run(os.getpid)
    assert len(pids) == 2 and os.getpid() not in pids.values()


def test_local_cluster_survives_a_killed_worker(cluster_client):
    """A worker process dies mid-compute: the scheduler reruns its tasks elsewhere (its
    nanny restarts it) and the result is still the in-memory call's."""
    v = np.random.default_rng(8).random((64, 160, 160)).astype(np.float32)
    dv = da.from_array(v, chunks=(8, 40, 40))
    y = dnd.gaussian_filter(dnd.gaussian_laplace(dv, 2.0), 2.0)
    pids = cluster_client.run(os.getpid)
    victim = sorted(pids)[0]
    fut = cluster_client.compute(y)
    deadline = time.monotonic() + 30
    while not cluster_client.processing().get(victim) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert fut.status == "pending", "the graph finished before a worker could be killed"
    os.kill(pids[victim], signal.SIGKILL)
    got = fut.result(timeout=120)
    # the nanny started a new worker process in the killed one's place
    assert pids[victim] not in cluster_client.run(os.getpid).values()
    _same(got, nd.gaussian_filter(nd.gaussian_laplace(v, 2.0), 2.0))
