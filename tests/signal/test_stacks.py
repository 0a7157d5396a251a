"""Stacks of images in one call (`axes=`): against loops of scipy calls, broadcasting, layouts,
threads, `out=`, the Dask versions, and every error path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.signal as ss
from hypothesis import given
from hypothesis import strategies as st

import rconv
from conftest import ALL_DTYPES, assert_matches_reference, random_array, seed_for

MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "pad", "symm", "symmetric", "wrap", "circular"]


def scipy_loop(func, in1, in2, axes, *args, **kwargs):
    """The reference: one scipy call per broadcast (image, kernel) pair, stacked back with the
    image axes at `axes`."""
    nd = in1.ndim
    a, b = (ax % nd for ax in axes)
    xm = np.moveaxis(in1, (a, b), (-2, -1))
    km = in2 if in2.ndim == 2 else np.moveaxis(in2, (a, b), (-2, -1))
    batch = np.broadcast_shapes(xm.shape[:-2], km.shape[:-2])
    xb = np.broadcast_to(xm, batch + xm.shape[-2:])
    kb = np.broadcast_to(km, batch + km.shape[-2:])
    ref = getattr(ss, func)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        outs = [ref(xb[i], kb[i], *args, **kwargs) for i in np.ndindex(batch)]
        if not outs:  # an empty batch: the plane shape of one call on zeros
            plane = ref(
                np.zeros(xm.shape[-2:], in1.dtype),
                np.zeros(km.shape[-2:], in2.dtype),
                *args,
                **kwargs,
            ).shape
            res = np.zeros(batch + plane, np.result_type(in1, in2))
        else:
            res = np.stack(outs).reshape(batch + outs[0].shape)
    return np.moveaxis(res, (-2, -1), (a, b))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("func", ["correlate2d", "convolve2d"])
def test_stack_matches_scipy_loop(func, mode, boundary, dtype):
    rng = np.random.default_rng(seed_for("stack", func, mode, boundary, np.dtype(dtype).name))
    fill = 3 if np.dtype(dtype).kind != "c" else 1 - 2j
    cases = [
        ((3, 9, 11), (3, 4), (-2, -1)),  # (N, H, W), one kernel
        ((9, 11, 3), (2, 5), (0, 1)),  # (H, W, C)
        ((2, 7, 3, 8), (1, 3, 1, 3), (1, 3)),  # batch axes interleaved with the image axes
        ((4, 5), (6, 7), (1, 0)),  # transposed orientation; 'valid' swaps
        ((2, 1, 6, 6), (1, 3, 2, 3), (2, 3)),  # filter bank: broadcast both ways
    ]
    for s1, s2, axes in cases:
        a = random_array(rng, s1, dtype)
        b = random_array(rng, s2, dtype)
        out = getattr(rconv, func)(a, b, mode, boundary, fill, axes=axes)
        ref = scipy_loop(func, a, b, axes, mode, boundary, fill)
        assert out.shape == ref.shape
        assert out.flags.c_contiguous
        assert_matches_reference(out, ref, a, b)


@pytest.mark.parametrize("method", ["direct", "fft", "auto"])
def test_methods_match_loops_of_rconv(method):
    rng = np.random.default_rng(seed_for("methods", method))
    x = rng.standard_normal((5, 40, 33))
    k = rng.standard_normal((5, 9, 9))
    x[2, 3, 4] = np.nan  # 'auto' stays direct for this image only, as a loop would
    out = rconv.correlate2d(x, k, "same", "symm", method=method, axes=(1, 2))
    for i in range(5):
        want = rconv.correlate2d(x[i], k[i], "same", "symm", method=method)
        if method == "direct" or (method == "auto" and i == 2):
            # the NaN image is computed directly by 'auto', as a loop would
            np.testing.assert_array_equal(out[i], want)
        elif i != 2:  # FFT tiles follow the thread count of each call: equal to rounding
            np.testing.assert_allclose(out[i], want, rtol=1e-12, atol=1e-12)
    assert np.isnan(out[2]).any() and not np.isnan(out[[0, 1, 3, 4]]).any()


def test_two_d_with_axes_equals_the_plain_call():
    rng = np.random.default_rng(1)
    x, k = rng.standard_normal((12, 17)), rng.standard_normal((3, 4))
    for mode in MODES:
        np.testing.assert_array_equal(
            rconv.correlate2d(x, k, mode, axes=(0, 1)), rconv.correlate2d(x, k, mode)
        )
    np.testing.assert_array_equal(rconv.correlate2d(x, k, axes=(1, 0)), rconv.correlate2d(x.T, k).T)
    np.testing.assert_array_equal(rconv.corr2d(x, k, axes=(-2, -1)), rconv.corr2d(x, k))


def test_corr2d_stack_and_choose_conv_method():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((4, 10, 12))
    k = rng.standard_normal((3, 3))
    out = rconv.corr2d(x, k, axes=(1, 2))
    for i in range(4):
        np.testing.assert_array_equal(out[i], rconv.corr2d(x[i], k))
    img = np.zeros((3, 512, 512))
    assert rconv.choose_conv_method(img, np.ones((3, 3)), "same", axes=(1, 2)) == "direct"
    full = rng.standard_normal((63, 63))
    assert rconv.choose_conv_method(img, full, "same", axes=(1, 2)) == "fft"
    assert rconv.choose_conv_method(img, np.ones((63, 63)), "same", axes=(1, 2)) == "separable"
    img[1, 0, 0] = np.inf
    assert rconv.choose_conv_method(img, full, "same", axes=(1, 2)) == "direct"
    assert rconv.choose_conv_method(img, np.ones((63, 63)), "same", axes=(1, 2)) == "direct"


def test_strided_inputs_and_threads(threads):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((8, 30, 50))
    x = base[::2, ::-1, 1::2]  # negative and non-unit strides
    k = rng.standard_normal((8, 5, 7)).transpose(0, 2, 1)[::2]
    want = scipy_loop("correlate2d", x, k, (1, 2), "same", "wrap")
    results = []
    for n in (1, 2):
        threads(n)
        results.append(rconv.correlate2d(x, k, "same", "wrap", axes=(1, 2)))
    np.testing.assert_allclose(results[0], want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(results[0], results[1])
    # many small images (parallel over images) against few large ones (over rows)
    xs = rng.standard_normal((64, 9, 9))
    threads(1)
    serial = rconv.convolve2d(xs, k[0], axes=(1, 2))
    threads(2)
    np.testing.assert_array_equal(rconv.convolve2d(xs, k[0], axes=(1, 2)), serial)


def test_inputs_unchanged_and_out():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 8, 3))
    k = rng.standard_normal((3, 3))
    x0, k0 = x.copy(), k.copy()
    want = rconv.correlate2d(x, k, "same", axes=(0, 1))
    out = np.full(want.shape, np.nan)
    got = rconv.correlate2d(x, k, "same", axes=(0, 1), out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(k, k0)
    with pytest.raises(ValueError, match=r"correlate2d: out must have shape \(7, 8, 3\)"):
        rconv.correlate2d(x, k, "same", axes=(0, 1), out=np.empty((8, 7, 3)))
    with pytest.raises(TypeError, match="correlate2d: out must have dtype float64"):
        rconv.correlate2d(x, k, "same", axes=(0, 1), out=np.empty(want.shape, np.float32))
    with pytest.raises(ValueError, match="share memory"):
        rconv.correlate2d(x, k, "same", axes=(0, 1), out=x)


def test_empty_batches_and_planes():
    k = np.ones((2, 2))
    assert rconv.correlate2d(np.zeros((0, 5, 5)), k, axes=(1, 2)).shape == (0, 6, 6)
    assert rconv.correlate2d(np.zeros((3, 0, 5)), k, axes=(1, 2)).shape == (3, 1, 6)
    out = rconv.convolve2d(np.ones((2, 3, 3)), np.zeros((2, 0, 0)), "same", axes=(1, 2))
    np.testing.assert_array_equal(out, np.zeros((2, 3, 3)))


@pytest.mark.parametrize(
    "in1, in2, axes, err, match",
    [
        (np.ones(5), np.ones((2, 2)), (0, 1), ValueError, "at least 2 dimensions, got 1"),
        (np.ones(()), np.ones((2, 2)), (0, 1), ValueError, "at least 2 dimensions, got 0"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), (0, 3), ValueError, r"axes \(0, 3\) out of range"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), (-4, 1), ValueError, "out of range"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), (1, -2), ValueError, "the same axis twice"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), (1,), ValueError, "pair of two ints"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), (0, 1, 2), ValueError, "pair of two ints"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), 1, ValueError, "pair of two ints"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), "12", ValueError, "pair of two ints"),
        (np.ones((3, 4, 5)), np.ones((2, 2)), (0.0, 1), TypeError, "axes must hold ints"),
        (np.ones((3, 4, 5)), np.ones((2, 2, 2, 2)), (1, 2), ValueError, "2-D or have in1's 3"),
        (np.ones((3, 4, 5)), np.ones((2, 2, 2)), (1, 2), ValueError, r"do not broadcast \(axis"),
        (np.ones((3, 4, 5)), np.ones((3, 9, 9)), (1, 2), None, None),  # 'valid' swap only
    ],
)
def test_errors(in1, in2, axes, err, match):
    if err is None:
        with pytest.raises(ValueError, match="correlate2d: for 'valid' mode"):
            rconv.correlate2d(in1, np.ones((3, 9, 2)), "valid", axes=axes)
        return
    for func in ("correlate2d", "convolve2d"):
        with pytest.raises(err, match=f"{func}: .*{match}"):
            getattr(rconv, func)(in1, in2, axes=axes)
    with pytest.raises(err, match=match):
        rconv.choose_conv_method(in1, in2, axes=axes)


def test_none_keeps_the_two_d_contract():
    with pytest.raises(ValueError, match="correlate2d: in1 must be a 2-D array, got 3"):
        rconv.correlate2d(np.ones((2, 3, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="corr2d: x must be a 2-D array, got 3"):
        rconv.corr2d(np.ones((2, 3, 3)), np.ones((2, 2)))


@given(
    nb=st.integers(0, 3),
    s1=st.tuples(st.integers(1, 9), st.integers(1, 9)),
    s2=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    mode=st.sampled_from(MODES),
    boundary=st.sampled_from(["fill", "symm", "wrap"]),
    func=st.sampled_from(["correlate2d", "convolve2d"]),
    stack_kernel=st.booleans(),
    perm_seed=st.integers(0, 2**32 - 1),
)
def test_property_any_axes_match_scipy_loop(
    nb, s1, s2, mode, boundary, func, stack_kernel, perm_seed
):
    rng = np.random.default_rng(perm_seed)
    if mode == "valid" and not (
        all(a >= b for a, b in zip(s1, s2)) or all(a <= b for a, b in zip(s1, s2))
    ):
        s2 = (min(s2[0], s1[0]), min(s2[1], s1[1]))
    batch = tuple(int(v) for v in rng.integers(1, 4, nb))
    nd = nb + 2
    a, b = (int(v) for v in rng.choice(nd, 2, replace=False))
    others = [d for d in range(nd) if d not in (a, b)]
    shape1 = [0] * nd
    shape2 = [0] * nd
    shape1[a], shape1[b] = s1
    shape2[a], shape2[b] = s2
    for d, n in zip(others, batch):
        shape1[d] = n
        shape2[d] = n if rng.random() < 0.5 else 1
        if shape2[d] == n and rng.random() < 0.3:
            shape1[d] = 1  # broadcast the image instead
    x = rng.standard_normal(shape1)
    # a 2-D in2 is one kernel in its own (rows, cols) orientation, whatever `axes` says
    k = rng.standard_normal(shape2) if stack_kernel and nd > 2 else rng.standard_normal(s2)
    axes = (a - nd if rng.random() < 0.5 else a, b)
    out = getattr(rconv, func)(x, k, mode, boundary, 0.5, axes=axes)
    ref = scipy_loop(func, x, k, axes, mode, boundary, 0.5)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("boundary", ["fill", "symm", "wrap"])
@pytest.mark.parametrize("mode", MODES)
def test_dask_stacks_split_batch_and_image_axes(mode, boundary):
    da = pytest.importorskip("dask.array", reason="install the 'dask' extra")
    import rconv.dask

    rng = np.random.default_rng(seed_for("dask-stack", mode, boundary))
    x = rng.standard_normal((5, 24, 20, 2))
    for k in (rng.standard_normal((3, 4)), rng.standard_normal((5, 3, 3, 1))):
        want = rconv.correlate2d(x, k, mode, boundary, 1.5, axes=(1, 2))
        dx = da.from_array(x, chunks=(2, 10, 7, 1))
        got = rconv.dask.correlate2d(dx, k, mode, boundary, 1.5, axes=(1, 2))
        assert got.shape == want.shape
        np.testing.assert_array_equal(got.compute(), want)
    bank = rng.standard_normal((1, 3, 3, 4))  # one image per batch entry, four kernels
    want = rconv.convolve2d(x[..., :1], bank, mode, boundary, axes=(1, 2))
    got = rconv.dask.convolve2d(
        da.from_array(x[..., :1], chunks=(3, 12, 12, 1)), bank, mode, boundary, axes=(1, 2)
    )
    np.testing.assert_array_equal(got.compute(), want)


def test_dask_stack_errors():
    da = pytest.importorskip("dask.array", reason="install the 'dask' extra")
    import rconv.dask

    x = da.ones((3, 8, 8), chunks=2)
    with pytest.raises(ValueError, match="rconv.dask.correlate2d: .*do not broadcast"):
        rconv.dask.correlate2d(x, np.ones((2, 3, 3)), axes=(1, 2))
    with pytest.raises(ValueError, match="rconv.dask.convolve2d: .*the same axis twice"):
        rconv.dask.convolve2d(x, np.ones((3, 3)), axes=(1, 1))
    with pytest.raises(ValueError, match="rconv.dask.correlate2d: in1 must be a 2-D array"):
        rconv.dask.correlate2d(x, np.ones((3, 3)))
