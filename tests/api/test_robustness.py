"""Nothing breaks: concurrency, fork safety, hostile input, leaks."""

from __future__ import annotations

import multiprocessing as mp
import os
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import rconv

ALLOWED = (ValueError, TypeError, OverflowError, MemoryError)


def _calls(rng):
    """(name, thunk) pairs covering every family of the public API."""
    img = rng.standard_normal((300, 310))
    k = rng.standard_normal((9, 7))
    x = rng.standard_normal((4, 6, 20, 22)).astype(np.float32)
    w = rng.standard_normal((8, 6, 3, 3)).astype(np.float32)
    y = rconv.conv2d(x, w, padding=1)
    return [
        ("correlate2d", lambda: rconv.correlate2d(img, k, "same", "symm")),
        ("convolve2d", lambda: rconv.convolve2d(img, k, "full", "wrap")),
        ("fft", lambda: rconv.correlate2d(img, k, "same", method="fft")),
        ("corr2d", lambda: rconv.corr2d(img, k)),
        ("conv2d", lambda: rconv.conv2d(x, w, padding=1)),
        ("conv2d_backward", lambda: rconv.conv2d_backward(y, x, w, padding=1)[1]),
        ("conv_transpose2d", lambda: rconv.conv_transpose2d(y, w, stride=2)),
        ("max_pool2d", lambda: rconv.max_pool2d(x, 3, 2, 1)),
        ("avg_pool2d", lambda: rconv.avg_pool2d(x, 2)),
        ("adaptive_max_pool2d", lambda: rconv.adaptive_max_pool2d(x, 5)),
    ]


def test_sixteen_threads_agree_with_serial_calls(threads):
    calls = _calls(np.random.default_rng(0))
    serial = {name: f() for name, f in calls}
    results: dict = {}
    errors: list = []
    barrier = threading.Barrier(16)

    def worker(i):
        try:
            barrier.wait()
            for rep in range(3):
                name, f = calls[(i + rep) % len(calls)]
                results.setdefault(name, []).append(f())
                if i == 0 and rep == 1:
                    rconv.set_num_threads(1)  # changes while others compute
                if i == 1 and rep == 1:
                    rconv.set_num_threads(2)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in ts), "deadlock"
    assert not errors, errors
    for name, outs in results.items():
        for out in outs:
            np.testing.assert_array_equal(out, serial[name], err_msg=name)


def _child(q):
    x = np.random.default_rng(1).standard_normal((200, 200))
    q.put(float(rconv.correlate2d(x, np.ones((5, 5)), "same").sum()))


def test_forked_child_can_use_rconv(threads):
    threads(2)
    x = np.random.default_rng(1).standard_normal((200, 200))
    want = float(rconv.correlate2d(x, np.ones((5, 5)), "same").sum())  # parent's pool is live
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(q,))
    p.start()
    p.join(timeout=60)
    alive = p.is_alive()
    if alive:
        p.kill()
    assert not alive, "forked child hung"
    assert p.exitcode == 0
    assert q.get(timeout=5) == want


junk = st.one_of(
    st.integers(-3, 3),
    st.integers(2**40, 2**70),
    st.integers(-(2**70), -(2**40)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
    st.tuples(st.integers(-2, 4)),
    st.tuples(st.integers(-2, 4), st.integers(-2, 4)),
    st.tuples(st.integers(-2, 4), st.integers(-2, 4), st.integers(-2, 4)),
    st.sampled_from(["same", "valid", "full", "fill", "symm", "wrap", "zeros", "reflect"]),
)
dims = st.sampled_from([0, 1, 2, 3, 7])
dtypes = st.sampled_from(
    [
        np.float32,
        np.float64,
        np.int8,
        np.uint16,
        np.int64,
        np.complex64,
        np.bool_,
        np.float16,
        object,
    ]
)


def _array(data, ndim_choices):
    ndim = data.draw(st.sampled_from(ndim_choices))
    shape = tuple(data.draw(dims) for _ in range(ndim))
    dt = data.draw(dtypes)
    if np.dtype(dt) == object:
        return np.empty(shape, dtype=object)
    return np.ones(shape, dtype=dt)


FUNCS = {
    "correlate2d": (lambda d: (_array(d, [1, 2, 3]), _array(d, [2])), 3),
    "convolve2d": (lambda d: (_array(d, [2]), _array(d, [1, 2])), 3),
    "corr2d": (lambda d: (_array(d, [2]), _array(d, [2])), 0),
    "conv2d": (lambda d: (_array(d, [3, 4]), _array(d, [4])), 5),
    "conv2d_backward": (lambda d: (_array(d, [4]), _array(d, [4]), _array(d, [4])), 5),
    "conv_transpose2d": (lambda d: (_array(d, [3, 4]), _array(d, [4])), 5),
    "max_pool2d": (lambda d: (_array(d, [3, 4]),), 5),
    "avg_pool2d": (lambda d: (_array(d, [3, 4]),), 5),
    "adaptive_avg_pool2d": (lambda d: (_array(d, [3, 4]),), 1),
    "adaptive_max_pool2d": (lambda d: (_array(d, [3, 4]),), 2),
    "max_pool2d_backward": (lambda d: (_array(d, [3, 4]), _array(d, [3, 4])), 4),
    "avg_pool2d_backward": (lambda d: (_array(d, [3, 4]), _array(d, [3, 4])), 4),
    "max_unpool2d": (lambda d: (_array(d, [3, 4]), _array(d, [3, 4])), 3),
    "conv2d_input": (lambda d: (d.draw(junk), _array(d, [4]), _array(d, [4])), 3),
    "conv2d_weight": (lambda d: (_array(d, [4]), d.draw(junk), _array(d, [4])), 3),
    "corr2d_backward": (lambda d: (_array(d, [2]), _array(d, [2]), _array(d, [2])), 0),
    "choose_conv_method": (lambda d: (_array(d, [2]), _array(d, [2])), 1),
    "correlate2d_backward": (lambda d: (_array(d, [2, 3]), _array(d, [2, 3]), _array(d, [2])), 3),
    "convolve2d_backward": (lambda d: (_array(d, [2]), _array(d, [2, 3]), _array(d, [2, 3])), 3),
}


@pytest.mark.parametrize("name", sorted(FUNCS))
@given(data=st.data())
def test_hostile_input_never_crashes(name, data):
    make, n_extra = FUNCS[name]
    args = make(data) + tuple(data.draw(junk) for _ in range(data.draw(st.integers(0, n_extra))))
    try:
        getattr(rconv, name)(*args)
    except ALLOWED:
        pass


@pytest.mark.parametrize(
    "name", ["correlate2d", "convolve2d", "corr2d", "choose_conv_method", "correlate2d_backward"]
)
@given(data=st.data())
def test_hostile_axes_never_crash(name, data):
    n = 3 if name == "correlate2d_backward" else 2
    args = tuple(_array(data, [1, 2, 3, 4]) for _ in range(n))
    axes = data.draw(st.one_of(junk, st.tuples(st.integers(-6, 6), st.integers(-6, 6))))
    try:
        getattr(rconv, name)(*args, axes=axes)
    except ALLOWED:
        pass


@given(big=st.integers(2**31, 2**62))
def test_huge_shapes_are_refused_not_aborted(big):
    x = np.ones((1, 1, 2, 2), np.float32)
    for call in (
        lambda: rconv.conv2d(x, np.ones((1, 1, 1, 1), np.float32), padding=big),
        lambda: rconv.conv_transpose2d(x, np.ones((1, 1, 1, 1), np.float32), stride=big),
        lambda: rconv.max_unpool2d(x, np.zeros((1, 1, 2, 2), int), 2, output_size=(big, big)),
        lambda: rconv.adaptive_avg_pool2d(x, big),
        lambda: rconv.conv2d_input((1, 1, big, big), np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1))),
    ):
        with pytest.raises(ALLOWED):
            call()


def _rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc (Linux)")
def test_ten_thousand_calls_do_not_leak():
    rng = np.random.default_rng(2)
    small = rng.standard_normal((24, 24))
    k = rng.standard_normal((3, 3))
    x = rng.standard_normal((2, 3, 12, 12)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    calls = [
        lambda: rconv.correlate2d(small, k, "same"),
        lambda: rconv.convolve2d(small, k, method="fft"),
        lambda: rconv.conv2d(x, w, padding=1),
        lambda: rconv.conv2d_backward(np.ones((2, 4, 12, 12), np.float32), x, w, padding=1),
        lambda: rconv.max_pool2d(x, 2, return_indices=True),
        lambda: rconv.avg_pool2d(x, 2),
    ]
    for f in calls * 50:  # warm up allocator pools and caches
        f()
    before = _rss()
    for i in range(10_000):
        calls[i % len(calls)]()
        if i % 997 == 0:
            try:
                rconv.conv2d(x, w, groups=5)  # error paths too
            except ValueError:
                pass
    grown = _rss() - before
    assert grown < 10 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB"


def _big_endian(a):
    return np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">"))


def _unaligned(a):
    """A copy of `a` whose data starts one byte past an aligned address (as arrays unpickled
    from a buffer by Dask workers, or ``np.frombuffer`` at an odd offset, can be)."""
    a = np.asarray(a)
    u = np.empty(a.nbytes + 1, np.uint8)[1:].view(a.dtype).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned
    return u


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layout", ["unaligned", "big-endian"])
def test_unaligned_or_big_endian_inputs_give_the_native_results(dtype, layout):
    rng = np.random.default_rng(21)
    img = rng.standard_normal((40, 50)).astype(dtype)
    k = rng.standard_normal((9, 9)).astype(dtype)
    x = rng.standard_normal((2, 4, 10, 12)).astype(dtype)
    w = rng.standard_normal((6, 4, 3, 3)).astype(dtype)
    y = rconv.conv2d(x, w, padding=1)
    mp_out, mp_idx = rconv.max_pool2d(x, 2, return_indices=True)
    ap = rconv.avg_pool2d(x, 2)
    ad = rconv.adaptive_avg_pool2d(x, 3)
    am = rconv.adaptive_max_pool2d(x, 3)
    calls = [
        (rconv.correlate2d, (img, k, "same", "symm")),
        (rconv.correlate2d, (img.astype(np.int32), k.astype(np.int32), "full", "wrap")),
        (lambda *a: rconv.convolve2d(*a, method="fft"), (img, k, "same")),
        (lambda *a: rconv.convolve2d(*a, method="fft"), (img + 1j * img, k, "valid")),
        (rconv.corr2d, (img, k)),
        (rconv.corr2d_backward, (rconv.corr2d(img, k), img, k)),
        (rconv.conv2d, (x, w, w[:, 0, 0, 0], 1, 1)),
        (rconv.conv2d_backward, (y, x, w, 1, 1)),
        (rconv.conv2d_input, (x.shape, w, y, 1, 1)),
        (rconv.conv2d_weight, (x, w.shape, y, 1, 1)),
        (rconv.conv_transpose2d, (y, w, None, 2)),
        (rconv.conv_transpose2d_backward, (rconv.conv_transpose2d(y, w, None, 2), y, w, 2)),
        (rconv.max_pool2d, (x, 2)),
        (rconv.max_pool2d_backward, (mp_out, x, 2)),
        (lambda g, a, i: rconv.max_pool2d_backward(g, a, 2, indices=i), (mp_out, x, mp_idx)),
        (rconv.max_unpool2d, (mp_out, mp_idx, 2)),
        (rconv.avg_pool2d, (x, 2)),
        (rconv.avg_pool2d_backward, (ap, x, 2)),
        (rconv.adaptive_avg_pool2d, (x, 3)),
        (rconv.adaptive_avg_pool2d_backward, (ad, x)),
        (rconv.adaptive_max_pool2d, (x, 3)),
        (rconv.adaptive_max_pool2d_backward, (am, x)),
    ]
    for func, args in calls:
        expected = func(*args)
        convert = _unaligned if layout == "unaligned" else _big_endian
        bad = [convert(a) if isinstance(a, np.ndarray) else a for a in args]
        before = [a.copy() if isinstance(a, np.ndarray) else a for a in bad]
        got = func(*bad)
        for g, e in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, expected))):
            np.testing.assert_array_equal(g, e, err_msg=getattr(func, "__name__", ""))
            assert g.dtype == e.dtype
        for a, b in zip(bad, before):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a, b)
