"""correlate2d / convolve2d / corr2d against scipy.signal, the source material, and errors."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import (
    ALL_DTYPES,
    FUNCS,
    MODES,
    assert_matches_reference,
    mode_shapes,
    random_pair,
    seed_for,
    signal_cases,
)
from conftest import BOUNDARY_ALIASES as BOUNDARIES


def both(name, *args, **kwargs):
    """(rconv result, scipy result) of the function `name`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        ref = getattr(ss, name)(*args, **kwargs)
    return getattr(rconv, name)(*args, **kwargs), ref


# ---------------------------------------------------------------- worked examples


def test_scipy_convolve_example_is_integer():
    a = [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]]
    b = [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    out = rconv.convolve2d(a, b, "valid")
    np.testing.assert_array_equal(out, [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    assert out.dtype.kind == "i"


def test_d2l_corr2d_example():
    x = np.arange(9.0).reshape(3, 3)
    k = np.array([[0.0, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(rconv.corr2d(x, k), [[19.0, 25.0], [37.0, 43.0]])


def test_d2l_edge_detection():
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    k = np.array([[1.0, -1.0]])
    y = rconv.corr2d(x, k)
    assert y.shape == (6, 7)
    for row in y:
        np.testing.assert_array_equal(row, [0, 1, 0, 0, 0, -1, 0])
    yt = rconv.corr2d(x.T, k)
    assert yt.shape == (8, 5)
    assert not yt.any()


def d2l_loop(x, k):
    h, w = k.shape
    y = np.zeros((x.shape[0] - h + 1, x.shape[1] - w + 1))
    for i in range(y.shape[0]):
        for j in range(y.shape[1]):
            y[i, j] = (x[i : i + h, j : j + w] * k).sum()
    return y


@given(
    h=st.integers(1, 9),
    w=st.integers(1, 9),
    kh=st.integers(1, 9),
    kw=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_corr2d_matches_d2l_loop(h, w, kh, kw, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((h, w))
    k = rng.standard_normal((kh, kw))
    if kh > h or kw > w:
        with pytest.raises(ValueError, match="corr2d"):
            rconv.corr2d(x, k)
        return
    np.testing.assert_allclose(rconv.corr2d(x, k), d2l_loop(x, k), rtol=1e-12, atol=1e-12)


def test_corr2d_does_not_swap_or_conjugate():
    x = np.array([[1 + 1j, 2], [3, 4 - 2j]])
    k = np.array([[1j]])
    np.testing.assert_array_equal(rconv.corr2d(x, k), x * 1j)
    with pytest.raises(ValueError, match=r"corr2d: kernel k"):
        rconv.corr2d(np.ones((2, 2)), np.ones((3, 3)))


# ---------------------------------------------------------------- scipy parity


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", FUNCS)
def test_every_mode_boundary_dtype(func, mode, boundary, dtype):
    rng = np.random.default_rng(seed_for(func, mode, boundary, np.dtype(dtype).name))
    pairs = [((13, 17), (3, 3)), ((9, 70), (4, 6)), ((5, 6), (7, 2)), ((6, 5), (6, 5))]
    for s1, s2 in mode_shapes(mode, pairs):
        a, b = random_pair(rng, s1, s2, dtype)
        fill = 3 if np.dtype(dtype).kind != "c" else 1 - 2j
        out, ref = both(func, a, b, mode, boundary, fill)
        assert_matches_reference(out, ref, a, b)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("mode", MODES)
def test_valid_swap_and_even_kernels(func, mode):
    rng = np.random.default_rng(1)
    small = rng.standard_normal((4, 2)) + 1j * rng.standard_normal((4, 2))
    big = rng.standard_normal((9, 11)) + 1j * rng.standard_normal((9, 11))
    for a, b in [(small, big), (big, small)]:
        out, ref = both(func, a, b, mode)
        assert_matches_reference(out, ref, a, b)


@pytest.mark.parametrize("boundary", ["symm", "wrap"])
@pytest.mark.parametrize("mode", ["full", "same"])
def test_kernel_larger_than_image_repeats_extension(mode, boundary):
    x = np.arange(6.0).reshape(2, 3)
    k = np.random.default_rng(2).standard_normal((7, 9))
    for func in FUNCS:
        out, ref = both(func, x, k, mode, boundary)
        assert_matches_reference(out, ref, x, k)


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int64, np.uint64])
def test_integer_sums_wrap_like_scipy(dtype):
    info = np.iinfo(dtype)
    a = np.full((6, 6), info.max, dtype=dtype)
    b = np.full((3, 3), info.max, dtype=dtype)
    for func in FUNCS:
        out, ref = both(func, a, b, "same")
        np.testing.assert_array_equal(out, ref)
        assert out.dtype == dtype


@pytest.mark.parametrize(
    "d1,d2",
    [
        (np.int8, np.uint8),
        (np.float32, np.int64),
        (np.float32, np.float64),
        (np.int32, np.complex64),
        (np.uint64, np.int64),
        (np.float16, np.float64),
        (np.int16, np.float16),
        (np.bool_, np.int8),
        (np.float32, np.complex64),
    ],
)
def test_mixed_dtypes_promote_like_scipy(d1, d2):
    rng = np.random.default_rng(3)
    a = (rng.standard_normal((8, 9)) * 5).astype(d1)
    b = (rng.standard_normal((3, 4)) * 5).astype(d2)
    for func in FUNCS:
        out, ref = both(func, a, b, "full")
        assert out.dtype == ref.dtype
        assert_matches_reference(out, ref, a.astype(ref.dtype), b.astype(ref.dtype))


def test_lists_and_scalars_like_numpy():
    out, ref = both("correlate2d", [[1, 2], [3, 4]], [[1.5]])
    assert_matches_reference(out, ref, np.array([[1, 2], [3, 4]]), np.array([[1.5]]))


@pytest.mark.parametrize(
    "fill",
    [0, 1, -2.5, 2.7, np.float32(2.5), True, [7], np.array([[4]]), np.array(2.5), np.nan, None],
)
def test_fillvalue_cast_like_scipy(fill):
    rng = np.random.default_rng(4)
    for dtype in [np.float64, np.float32, np.int64, np.complex64]:
        a, b = random_pair(rng, (5, 6), (3, 2), dtype)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ref = ss.correlate2d(a, b, "full", "fill", fill)
        except (ValueError, TypeError):
            with pytest.raises(ValueError, match="correlate2d: .*fillvalue"):
                rconv.correlate2d(a, b, "full", "fill", fill)
            continue
        out = rconv.correlate2d(a, b, "full", "fill", fill)
        assert_matches_reference(out, ref, a, b)


def test_nan_and_inf_propagate_like_scipy():
    a = np.arange(30.0).reshape(5, 6)
    a[2, 3] = np.nan
    a[0, 0] = np.inf
    b = np.array([[1.0, 0.0], [0.0, -1.0]])
    for func in FUNCS:
        for mode in MODES:
            out, ref = both(func, a, b, mode)
            np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
            np.testing.assert_allclose(out, ref, equal_nan=True)


@given(
    **signal_cases((0, 12), (0, 8), BOUNDARIES),
    dtype=st.sampled_from(ALL_DTYPES),
    fill=st.integers(-3, 3),
)
def test_property_matches_scipy(s1, s2, mode, boundary, func, dtype, fill, seed):
    a, b = random_pair(np.random.default_rng(seed), s1, s2, dtype)
    if np.dtype(dtype).kind == "u":
        fill = abs(fill)
    empty_image = 0 in s1 or (mode == "valid" and 0 in s2)
    if boundary not in ("fill", "pad") and empty_image:
        # scipy divides by zero here (a crash); rconv raises a clear ValueError instead,
        # unless nothing needs extending (empty output or empty kernel): then zeros.
        try:
            out = getattr(rconv, func)(a, b, mode, boundary, fill)
        except ValueError as e:
            msg = str(e)
            assert msg.startswith(func)
            assert any(m in msg for m in ("cannot extend an empty", "'valid'", "negative size"))
            return
        ref_shape = getattr(ss, func)(a, b, mode, "fill").shape
        assert out.shape == ref_shape
        assert not out.any()
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = getattr(ss, func)(a, b, mode, boundary, fill)
    except ValueError:
        with pytest.raises(ValueError, match=func):
            getattr(rconv, func)(a, b, mode, boundary, fill)
        return
    out = getattr(rconv, func)(a, b, mode, boundary, fill)
    assert_matches_reference(out, ref, a, b)


# ---------------------------------------------------------------- layouts, purity, threads


def _layouts(a):
    yield "C", a
    yield "F", np.asfortranarray(a)
    yield "neg", np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    big = np.zeros((a.shape[0] * 2, a.shape[1] * 3), a.dtype)
    big[::2, ::3] = a
    yield "strided", big[::2, ::3]
    yield "transposed", np.ascontiguousarray(a.T).T


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int16, np.complex128])
def test_any_strides(dtype):
    a, b = random_pair(np.random.default_rng(5), (37, 41), (5, 4), dtype)
    for func in FUNCS:
        for mode in MODES:
            ref = getattr(ss, func)(a, b, mode)
            for (na, la), (nb, lb) in zip(_layouts(a), _layouts(b)):
                np.testing.assert_array_equal(la, a)
                out = getattr(rconv, func)(la, lb, mode)
                assert_matches_reference(out, ref, a, b)
                assert out.flags.c_contiguous, (na, nb)


def test_inputs_are_not_modified():
    rng = np.random.default_rng(6)
    a = rng.standard_normal((30, 20))
    b = rng.standard_normal((4, 5))
    a0, b0 = a.copy(), b.copy()
    for func in FUNCS:
        for mode in MODES:
            for boundary in ["fill", "symm", "wrap"]:
                getattr(rconv, func)(a, b, mode, boundary, 2.0)
                getattr(rconv, func)(b, a, mode, boundary, 2.0)
    rconv.corr2d(a, b)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.complex64])
def test_serial_equals_parallel(threads, dtype):
    a, b = random_pair(np.random.default_rng(7), (301, 263), (6, 5), dtype)
    for func in FUNCS:
        for mode in MODES:
            for boundary in ["fill", "symm", "wrap"]:
                threads(1)
                serial = getattr(rconv, func)(a, b, mode, boundary)
                for n in (2, 3, 8):
                    threads(n)
                    par = getattr(rconv, func)(a, b, mode, boundary)
                    np.testing.assert_array_equal(par, serial)


def test_gil_is_released_during_compute(threads):
    threads(1)
    rng = np.random.default_rng(8)
    a = rng.standard_normal((2048, 2048))
    b = rng.standard_normal((15, 15))
    t0 = time.perf_counter()
    rconv.correlate2d(a, b, "same")
    single = time.perf_counter() - t0

    count = 0
    stop = False

    def spin():
        nonlocal count
        while not stop:
            count += 1

    th = threading.Thread(target=spin)
    th.start()
    try:
        time.sleep(0.02)
        c0 = count
        t0 = time.perf_counter()
        rconv.correlate2d(a, b, "same")
        elapsed = time.perf_counter() - t0
        c1 = count
    finally:
        stop = True
        th.join()
    assert elapsed > 0.01 and single > 0.01, "call too short to observe"
    # With the GIL held for the whole call the other thread could not count at all.
    assert c1 - c0 > 10_000, (c1 - c0, elapsed)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("func", FUNCS)
def test_errors_where_scipy_errors(func):
    f = getattr(rconv, func)
    x = np.ones((4, 4))
    with pytest.raises(ValueError, match=f"{func}: in1 must be a 2-D"):
        f(np.ones(3), x)
    with pytest.raises(ValueError, match=f"{func}: in2 must be a 2-D"):
        f(x, np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=f"{func}: .*mode"):
        f(x, x, "FULL")
    with pytest.raises(ValueError, match=f"{func}: .*mode"):
        f(x, x, None)
    with pytest.raises(ValueError, match=f"{func}: .*boundary"):
        f(x, x, "same", "reflect")
    with pytest.raises(ValueError, match=f"{func}: .*valid"):
        f(np.ones((2, 5)), np.ones((3, 3)), "valid")
    with pytest.raises(ValueError, match=f"{func}: `fillvalue` must be scalar or an array with "):
        f(x, x, fillvalue=[1, 2])
    with pytest.raises(ValueError, match=f"{func}: fillvalue cannot be an empty"):
        f(x, x, fillvalue=[])
    with pytest.raises(
        ValueError, match=f"{func}: could not cast `fillvalue` directly to the output "
    ):
        f(x, x, fillvalue=1j)
    with pytest.raises(
        ValueError, match=f"{func}: could not cast `fillvalue` directly to the output "
    ):
        f(x.astype(np.uint8), x.astype(np.uint8), fillvalue=-1)
    with pytest.raises(
        ValueError, match=f"{func}: could not cast `fillvalue` directly to the output "
    ):
        f(x, x, fillvalue="a")
    with pytest.raises(ValueError, match=f"{func}: .*negative size"):
        f(np.ones((0, 3)), np.ones((0, 2)), "full")
    with pytest.raises(ValueError, match=f"{func}: .*cannot extend an empty input"):
        f(np.ones((0, 3)), np.ones((2, 2)), "full", "symm")
    # fillvalue is ignored for the other boundaries, as in scipy
    f(x, x, boundary="wrap", fillvalue=[1, 2])


@pytest.mark.parametrize(
    "dtype", [np.bool_, np.float16, object, "U3", "S2", "datetime64[s]", "timedelta64[s]"]
)
def test_unsupported_dtypes_are_type_errors(dtype):
    a = np.zeros((3, 3), dtype=dtype)
    for func in [*FUNCS, "corr2d"]:
        with pytest.raises(TypeError, match=rf"{func}: .*dtype"):
            getattr(rconv, func)(a, a)
    with pytest.raises(TypeError, match=r"float16"):
        rconv.correlate2d(np.ones((3, 3), np.float16), np.ones((2, 2), np.int8))


def test_ragged_input_is_value_error():
    with pytest.raises(ValueError, match="correlate2d: in1"):
        rconv.correlate2d([[1, 2], [3]], [[1]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_outputs_match_scipy(dtype, threads):
    # Outputs over 8 MiB take the streaming-store path; odd sizes leave unaligned rows.
    rng = np.random.default_rng(9)
    a = rng.standard_normal((1501, 1503)).astype(dtype)
    b = rng.standard_normal((3, 4)).astype(dtype)
    ref = ss.correlate2d(a, b, "same")
    for n in (1, 2):
        threads(n)
        out = rconv.correlate2d(a, b, "same")
        assert_matches_reference(out, ref, a, b)
