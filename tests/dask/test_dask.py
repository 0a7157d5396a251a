"""rconv.dask: chunked results equal the in-memory calls (threaded scheduler and a
dask.distributed LocalCluster of worker processes), the chunk bookkeeping, and the errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

if os.environ.get("CI"):  # CI installs the 'dask' extra: a missing package is a failure there
    import dask
    import dask.array as da
    import distributed
else:
    dask = pytest.importorskip("dask", reason="install the 'dask' extra")
    da = pytest.importorskip("dask.array", reason="install the 'dask' extra")
    distributed = pytest.importorskip("distributed", reason="install the 'dask' extra")

import rconv
import rconv.dask as rd
from conftest import random_array, seed_for

OPS = [
    ("correlate2d", rconv.correlate2d, rd.correlate2d),
    ("convolve2d", rconv.convolve2d, rd.convolve2d),
]
MODES = ["full", "same", "valid"]
BOUNDARIES = ["fill", "symm", "wrap"]
KERNELS = [(1, 1), (2, 2), (3, 3), (2, 5), (4, 1), (6, 7)]


def _threads(arr):
    return arr.compute(scheduler="threads")


def _chunked(img, chunks):
    return da.from_array(img, chunks=chunks)


# --------------------------------------------------------------------------- correlate2d


@pytest.mark.parametrize("name,ref,func", OPS, ids=[o[0] for o in OPS])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("kshape", KERNELS, ids=str)
def test_signal_equals_in_memory(name, ref, func, mode, boundary, kshape):
    rng = np.random.default_rng(seed_for(name, mode, boundary, kshape))
    img = rng.standard_normal((23, 31))
    k = rng.standard_normal(kshape)
    x = _chunked(img, ((5, 7, 11), (9, 9, 13)))
    y = func(x, k, mode, boundary, 1.5, method="direct")
    expected = ref(img, k, mode, boundary, 1.5, method="direct")
    assert y.shape == expected.shape and y.dtype == expected.dtype
    out = _threads(y)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.float32, np.complex128])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_signal_dtypes(dtype, boundary):
    rng = np.random.default_rng(3)
    img = random_array(rng, (40, 37), dtype)
    k = random_array(rng, (3, 4), dtype)
    for mode in MODES:
        for name, ref, func in OPS:
            y = func(_chunked(img, (16, 10)), k, mode, boundary, 2)
            expected = ref(img, k, mode, boundary, 2)
            assert y.dtype == expected.dtype
            np.testing.assert_array_equal(_threads(y), expected, err_msg=f"{name} {mode}")


def test_mixed_dtypes_follow_scipy_promotion():
    img = np.arange(60, dtype=np.int16).reshape(6, 10)
    k = np.array([[0.5, -1.0, 2.0]], dtype=np.float32)
    y = rd.correlate2d(_chunked(img, 3), k, "same")
    expected = rconv.correlate2d(img, k, "same")
    assert y.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(_threads(y), expected)


@pytest.mark.parametrize("mode", ["full", "same"])
@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_kernel_larger_than_chunks_and_image(mode, boundary):
    rng = np.random.default_rng(5)
    img = rng.standard_normal((9, 30))
    for kshape in [(5, 12), (13, 4), (15, 35)]:
        k = rng.standard_normal(kshape)
        for name, ref, func in OPS:
            y = func(_chunked(img, (2, 3)), k, mode, boundary, -1.0, method="direct")
            expected = ref(img, k, mode, boundary, -1.0, method="direct")
            np.testing.assert_array_equal(_threads(y), expected, err_msg=f"{name} {kshape}")


def test_same_mode_keeps_the_input_chunks():
    x = da.zeros((100, 90), chunks=(30, 40))
    y = rd.correlate2d(x, np.ones((5, 4)), "same")
    assert y.chunks == x.chunks
    full = rd.correlate2d(x, np.ones((5, 4)), "full")
    assert full.chunks == ((30, 30, 30, 14), (40, 40, 13))
    valid = rd.correlate2d(x, np.ones((5, 4)), "valid")
    assert valid.chunks == ((30, 30, 30, 6), (40, 40, 7))


def test_small_chunks_are_joined_to_their_neighbours():
    rng = np.random.default_rng(8)
    img = rng.standard_normal((50, 50))
    k = rng.standard_normal((9, 9))
    y = rd.correlate2d(_chunked(img, 3), k, "same", "symm", method="direct")
    # a 9x9 window reaches 4 cells each way: every block must hold its neighbour's 4
    assert y.chunks == ((6,) * 7 + (8,), (6,) * 7 + (8,))
    np.testing.assert_array_equal(_threads(y), rconv.correlate2d(img, k, "same", "symm"))


def test_fft_and_auto_agree_to_rounding():
    rng = np.random.default_rng(9)
    img = rng.standard_normal((400, 300))
    k = rng.standard_normal((41, 41))
    assert rconv.choose_conv_method(img, k, "same") == "fft"
    x = _chunked(img, (150, 120))
    direct = rconv.correlate2d(img, k, "same", "symm", method="direct")
    scale = np.abs(img).max() * np.abs(k).sum()
    for method in ("auto", "fft"):
        for boundary in BOUNDARIES:
            out = _threads(rd.correlate2d(x, k, "same", boundary, method=method))
            expected = rconv.correlate2d(img, k, "same", boundary, method=method)
            np.testing.assert_allclose(out, expected, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(
        _threads(rd.correlate2d(x, k, "same", "symm")), direct, rtol=0, atol=1e-12 * scale
    )


def test_auto_computes_blocks_with_nan_directly():
    rng = np.random.default_rng(10)
    img = rng.standard_normal((300, 300))
    img[20, 30] = np.nan
    k = rng.standard_normal((41, 41))
    out = _threads(rd.convolve2d(_chunked(img, 150), k, "same"))
    expected = rconv.convolve2d(img, k, "same")  # direct: a NaN anywhere
    assert np.array_equal(np.isnan(out), np.isnan(expected))
    assert np.isnan(expected).sum() == 41 * 41
    np.testing.assert_allclose(out, expected, rtol=1e-9, atol=1e-9)


def test_valid_mode_with_kernel_as_large_as_image():
    img = np.arange(35.0).reshape(5, 7)
    out = _threads(rd.correlate2d(_chunked(img, 2), img, "valid"))
    np.testing.assert_array_equal(out, rconv.correlate2d(img, img, "valid"))
    assert out.shape == (1, 1)


@pytest.mark.parametrize("shape", [(0, 5), (4, 0)])
def test_empty_image_matches_in_memory(shape):
    for mode in ("full", "same"):
        y = rd.correlate2d(da.zeros(shape, chunks=2), np.ones((2, 2)), mode, "fill")
        expected = rconv.correlate2d(np.zeros(shape), np.ones((2, 2)), mode, "fill")
        assert y.shape == expected.shape
        np.testing.assert_array_equal(_threads(y), expected)


def test_inputs_of_any_kind_and_left_untouched():
    rng = np.random.default_rng(11)
    img = np.asfortranarray(rng.standard_normal((30, 20)))[::-1, ::2]
    k = rng.standard_normal((3, 5))
    img0, k0 = img.copy(), k.copy()
    expected = rconv.correlate2d(img, k, "same")
    for in1, in2 in [(img, k), (img.tolist(), da.from_array(k)), (_chunked(img, 7), k.T.T)]:
        np.testing.assert_array_equal(_threads(rd.correlate2d(in1, in2, "same")), expected)
    np.testing.assert_array_equal(img, img0)
    np.testing.assert_array_equal(k, k0)


def test_empty_kernel_gives_lazy_zeros():
    img = np.arange(30.0).reshape(5, 6)
    for kshape in [(0, 3), (3, 0), (0, 0)]:
        for mode in MODES:
            for _, ref, func in OPS:
                y = func(_chunked(img, 2), np.ones(kshape), mode, "symm")
                expected = ref(img, np.ones(kshape), mode, "symm")
                assert y.shape == expected.shape and y.dtype == expected.dtype
                np.testing.assert_array_equal(_threads(y), expected)


def test_wrap_with_a_kernel_much_larger_than_the_image():
    rng = np.random.default_rng(19)
    img = rng.standard_normal((1, 50))
    k = rng.standard_normal((300, 3))
    y = rd.correlate2d(_chunked(img, (1, 10)), k, "full", "wrap", method="direct")
    assert len(y.__dask_graph__()) < 200  # one gather, not one piece per repeat
    np.testing.assert_array_equal(_threads(y), rconv.correlate2d(img, k, "full", "wrap"))


def test_integer_fft_is_refused_when_inexact_like_in_memory():
    img = np.zeros((40, 40), np.int64)
    img[35, 35] = 2**40  # in one chunk only
    k = np.full((9, 9), 2**10, np.int64)
    with pytest.raises(ValueError, match="would be inexact"):
        rconv.correlate2d(img, k, "same", method="fft")
    y = rd.correlate2d(_chunked(img, 10), k, "same", method="fft")
    with pytest.raises(ValueError, match="rconv.dask.correlate2d: method='fft' with integer"):
        _threads(y)
    small = np.arange(1600, dtype=np.int64).reshape(40, 40)
    np.testing.assert_array_equal(
        _threads(rd.correlate2d(_chunked(small, 10), k, "same", method="fft")),
        rconv.correlate2d(small, k, "same", method="fft"),
    )


def test_unknown_chunk_sizes_are_refused_clearly():
    x = da.from_array(np.arange(100.0).reshape(10, 10), chunks=5)
    rows = x[x[:, 0] > 20]  # row count unknown until computed
    with pytest.raises(ValueError, match="rconv.dask.correlate2d: in1 has chunks of unknown"):
        rd.correlate2d(rows, np.ones((3, 3)), "same")
    batch = da.from_array(np.ones((6, 1, 4, 4)), chunks=2)
    some = batch[da.from_array(np.array([True, False, True, True, False, True]))]
    assert _threads(rd.max_pool2d(some, 2)).shape == (4, 1, 2, 2)  # unknown N is fine alone
    with pytest.raises(ValueError, match="rconv.dask.avg_pool2d_backward: input has chunks"):
        rd.avg_pool2d_backward(da.ones((4, 1, 2, 2)), some, 2)


@st.composite
def _signal_case(draw):
    h, w = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    kh, kw = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mode = draw(st.sampled_from(MODES))
    if mode == "valid":
        kh, kw = min(kh, h), min(kw, w)
    ch, cw = draw(st.integers(1, h)), draw(st.integers(1, w))
    return dict(
        shape=(h, w),
        kshape=(kh, kw),
        chunks=(ch, cw),
        mode=mode,
        boundary=draw(st.sampled_from(BOUNDARIES + ["pad", "symmetric", "circular"])),
        op=draw(st.sampled_from([0, 1])),
        dtype=draw(st.sampled_from([np.float64, np.float32, np.int64, np.int16, np.complex64])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


@given(case=_signal_case())
def test_signal_property_equals_in_memory(case):
    rng = np.random.default_rng(case["seed"])
    img = random_array(rng, case["shape"], case["dtype"])
    k = random_array(rng, case["kshape"], case["dtype"])
    _, ref, func = OPS[case["op"]]
    args = (case["mode"], case["boundary"], 3)
    y = func(_chunked(img, case["chunks"]), k, *args, method="direct")
    expected = ref(img, k, *args, method="direct")
    assert y.shape == expected.shape and y.dtype == expected.dtype
    np.testing.assert_array_equal(_threads(y), expected)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(in1=da.zeros((4, 4, 4))), ValueError, "in1 must be a 2-D array"),
        (dict(in2=np.ones(3)), ValueError, "in2 must be a 2-D array"),
        (dict(mode="half"), ValueError, "mode must be"),
        (dict(mode=None), ValueError, "mode must be"),
        (dict(boundary="reflect"), ValueError, "boundary must be"),
        (dict(method="fast"), ValueError, "method must be"),
        (
            dict(in1=da.zeros((20, 20), dtype=bool, chunks=5), in2=np.ones((2, 2), bool)),
            TypeError,
            "unsupported dtype bool",
        ),
        (dict(in2=np.array([["a"]])), TypeError, "unsupported dtype"),
        (dict(fillvalue="x"), ValueError, "could not cast `fillvalue` directly to the output "),
        (dict(fillvalue=[1, 2]), ValueError, "`fillvalue` must be scalar or an array with "),
        (dict(mode="valid", in2=np.ones((2, 40))), ValueError, "mode='valid' needs in1"),
        (
            dict(mode="valid", in1=da.zeros((0, 3)), in2=np.ones((1, 3))),
            ValueError,
            "mode='valid' needs in1",
        ),
        (dict(in1=[[1, 2], [3]]), ValueError, "in1 cannot be converted"),
        (dict(in2=[[1, 2], [3]]), ValueError, "in2 cannot be converted"),
    ],
)
def test_signal_errors(kwargs, exc, match):
    args = dict(in1=da.zeros((20, 20), chunks=5), in2=np.ones((3, 3)), mode="same")
    args.update(kwargs)
    for name in ("correlate2d", "convolve2d"):
        with pytest.raises(exc, match=f"rconv.dask.{name}: {match}"):
            getattr(rd, name)(**args)


@pytest.mark.parametrize("boundary", ["symm", "wrap"])
def test_extending_an_empty_image_raises_like_in_memory(boundary):
    match = f"boundary {boundary!r} cannot extend an empty input".replace("'", '"')
    with pytest.raises(ValueError, match=match):
        rconv.correlate2d(np.zeros((0, 3)), np.ones((2, 2)), "full", boundary)
    with pytest.raises(ValueError, match=match):
        rd.correlate2d(da.zeros((0, 3)), np.ones((2, 2)), "full", boundary)


# --------------------------------------------------------------------------- batch axis


CONV_CASES = [
    dict(padding=1),
    dict(stride=2, padding=(1, 2), dilation=(2, 1), groups=2),
    dict(padding="same", padding_mode="reflect"),
    dict(padding="valid", stride=(1, 3), padding_mode="circular"),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("params", CONV_CASES, ids=str)
def test_conv2d_and_backward_equal_in_memory(dtype, params):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((11, 6, 14, 13)).astype(dtype)
    w = rng.standard_normal((8, 6 // params.get("groups", 1), 3, 3)).astype(dtype)
    b = rng.standard_normal(8).astype(dtype)
    dx = _chunked(x, (4, 2, 14, 7))  # other axes are joined into one chunk
    y = rd.conv2d(dx, w, b, **params)
    expected = rconv.conv2d(x, w, b, **params)
    assert y.shape == expected.shape and y.dtype == expected.dtype
    assert y.chunks[0] == (4, 4, 3)
    np.testing.assert_array_equal(_threads(y), expected)

    g = rng.standard_normal(expected.shape).astype(dtype)
    gx, gw, gb = dask.compute(*rd.conv2d_backward(_chunked(g, 5), dx, w, **params))
    rx, rw, rb = rconv.conv2d_backward(g, x, w, **params)
    np.testing.assert_array_equal(gx, rx)
    # batch sums split differently: equal up to rounding
    eps = np.finfo(dtype).eps
    for got, ref in ((gw, rw), (gb, rb)):
        assert got.shape == ref.shape and got.dtype == ref.dtype
        np.testing.assert_allclose(got, ref, rtol=0, atol=64 * eps * np.abs(ref).max())


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_layers_do_not_depend_on_the_batch_chunks(dtype):
    # 3x3 stride-1 layers with >= 32 channels run through Winograd, whose blocks never mix
    # images: a sample's output and input gradient are the same in any batch
    rng = np.random.default_rng(21)
    x = rng.standard_normal((6, 32, 20, 21)).astype(dtype)
    w = rng.standard_normal((32, 32, 3, 3)).astype(dtype)
    dx = _chunked(x, ((1, 2, 3), 32, 20, 21))
    y = rconv.conv2d(x, w, padding=1)
    np.testing.assert_array_equal(_threads(rd.conv2d(dx, w, padding=1)), y)
    g = rng.standard_normal(y.shape).astype(dtype)
    gx = rd.conv2d_backward(_chunked(g, 4), dx, w, padding=1)[0]
    np.testing.assert_array_equal(_threads(gx), rconv.conv2d_backward(g, x, w, padding=1)[0])


def test_conv2d_unbatched_and_integer_input():
    rng = np.random.default_rng(13)
    x = rng.integers(-5, 5, (3, 9, 9))
    w = rng.standard_normal((2, 3, 2, 2))
    y = rd.conv2d(da.from_array(x), w)
    expected = rconv.conv2d(x, w)
    assert y.shape == expected.shape and y.dtype == expected.dtype == np.float64
    np.testing.assert_array_equal(_threads(y), expected)
    g = np.ones(expected.shape)
    got = dask.compute(*rd.conv2d_backward(g, da.from_array(x), w))
    for a, b in zip(got, rconv.conv2d_backward(g, x, w)):
        np.testing.assert_allclose(a, b, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pools_equal_in_memory(dtype):
    rng = np.random.default_rng(14)
    x = rng.standard_normal((9, 3, 15, 12)).astype(dtype)
    dx = _chunked(x, (2, 3, 5, 12))
    cases = [
        (rd.max_pool2d, rconv.max_pool2d, (3,), dict(stride=2, padding=1, return_indices=True)),
        (rd.max_pool2d, rconv.max_pool2d, ((2, 3),), dict(dilation=2, ceil_mode=True)),
        (rd.avg_pool2d, rconv.avg_pool2d, (3,), dict(stride=2, padding=1, ceil_mode=True)),
        (rd.avg_pool2d, rconv.avg_pool2d, (2,), dict(count_include_pad=False, divisor_override=3)),
        (rd.adaptive_avg_pool2d, rconv.adaptive_avg_pool2d, ((4, 5),), {}),
        (rd.adaptive_max_pool2d, rconv.adaptive_max_pool2d, ((5, None),), {}),
        (rd.adaptive_max_pool2d, rconv.adaptive_max_pool2d, (3,), dict(return_indices=True)),
    ]
    for func, ref, args, kwargs in cases:
        got = func(dx, *args, **kwargs)
        expected = ref(x, *args, **kwargs)
        if isinstance(expected, tuple):
            got = dask.compute(*got, scheduler="threads")
            for a, b in zip(got, expected):
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
        else:
            assert got.chunks[0] == (2, 2, 2, 2, 1)
            np.testing.assert_array_equal(_threads(got), expected)


def test_pool_backwards_equal_in_memory():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((7, 2, 11, 10))
    dx = _chunked(x, 3)
    out, idx = rconv.max_pool2d(x, 3, 2, 1, return_indices=True)
    g = rng.standard_normal(out.shape)
    expected = rconv.max_pool2d_backward(g, x, 3, 2, 1)
    np.testing.assert_array_equal(_threads(rd.max_pool2d_backward(g, dx, 3, 2, 1)), expected)
    with_idx = rd.max_pool2d_backward(_chunked(g, 2), dx, 3, 2, 1, indices=_chunked(idx, 4))
    np.testing.assert_array_equal(_threads(with_idx), expected)

    a = rconv.avg_pool2d(x, 3, 2, 1, ceil_mode=True)
    ga = rng.standard_normal(a.shape)
    np.testing.assert_array_equal(
        _threads(rd.avg_pool2d_backward(ga, dx, 3, 2, 1, ceil_mode=True)),
        rconv.avg_pool2d_backward(ga, x, 3, 2, 1, ceil_mode=True),
    )


@given(
    n=st.integers(1, 9),
    chunk=st.integers(1, 9),
    c=st.integers(1, 3),
    hw=st.tuples(st.integers(3, 12), st.integers(3, 12)),
    k=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.integers(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_batch_property_equals_in_memory(n, chunk, c, hw, k, stride, padding, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c) + hw)
    w = rng.standard_normal((2, c, k, k))
    dx = _chunked(x, (chunk, c) + hw)
    np.testing.assert_array_equal(
        _threads(rd.conv2d(dx, w, None, stride, padding)), rconv.conv2d(x, w, None, stride, padding)
    )
    p = min(padding, k // 2)
    np.testing.assert_array_equal(
        _threads(rd.max_pool2d(dx, k, stride, p)), rconv.max_pool2d(x, k, stride, p)
    )
    np.testing.assert_array_equal(
        _threads(rd.avg_pool2d(dx, k, stride, p)), rconv.avg_pool2d(x, k, stride, p)
    )


def test_weights_as_lists_or_dask_arrays():
    rng = np.random.default_rng(18)
    x = rng.standard_normal((5, 2, 7, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    expected = rconv.conv2d(x, w, b)
    dx = _chunked(x, 2)
    for ww, bb in [(w.tolist(), b.tolist()), (da.from_array(w), da.from_array(b))]:
        np.testing.assert_array_equal(_threads(rd.conv2d(dx, ww, bb)), expected)
    g = np.ones(expected.shape)
    gx, gw, gb = dask.compute(*rd.conv2d_backward(g, dx, da.from_array(w, chunks=1)))
    np.testing.assert_array_equal(gx, rconv.conv2d_backward(g, x, w)[0])


def test_batch_errors():
    x = da.zeros((4, 3, 8, 8), chunks=2)
    w = np.ones((2, 3, 3, 3))
    with pytest.raises(ValueError, match="rconv.dask.conv2d: input must be a 4-D"):
        rd.conv2d(da.zeros((8, 8)), w)
    with pytest.raises(ValueError, match="conv2d: input has 3 channels"):
        rd.conv2d(x, np.ones((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="conv2d: weight cannot be converted"):
        rd.conv2d(x, [[1.0], [2.0, 3.0]])
    with pytest.raises(TypeError, match="rconv.dask.conv2d: input must be an array, got None"):
        rd.conv2d(None, w)
    with pytest.raises(TypeError, match="max_pool2d_backward: grad_output must be an array"):
        rd.max_pool2d_backward(None, x, 2, indices=da.zeros((4, 3, 4, 4), dtype=np.int64))
    with pytest.raises(TypeError, match="conv2d_backward: grad_output must be an array"):
        rd.conv2d_backward(None, x, w)
    with pytest.raises(ValueError, match="rconv.dask.conv2d: stride must be >= 1"):
        rd.conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match="unsupported dtype complex"):
        rd.conv2d(x.astype(complex), w)
    with pytest.raises(ValueError, match="grad_output has batch size 3, expected 4"):
        rd.conv2d_backward(da.zeros((3, 2, 6, 6)), x, w)
    with pytest.raises(ValueError, match="conv2d_backward: grad_output has shape"):
        rd.conv2d_backward(da.zeros((4, 2, 5, 5)), x, w)
    with pytest.raises(ValueError, match="max_pool2d"):
        rd.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="rconv.dask.avg_pool2d_backward: grad_output must be"):
        rd.avg_pool2d_backward(da.zeros((4, 3)), x, 2)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must be >= 0"):
        rd.adaptive_avg_pool2d(x, -1)
    assert _threads(rd.adaptive_avg_pool2d(x, 0)).shape == (4, 3, 0, 0)


def test_empty_batch():
    x = da.zeros((0, 3, 8, 8))
    y = rd.conv2d(x, np.ones((2, 3, 3, 3)))
    assert y.shape == (0, 2, 6, 6)
    assert _threads(y).shape == (0, 2, 6, 6)
    gx, gw, gb = dask.compute(*rd.conv2d_backward(da.zeros((0, 2, 6, 6)), x, np.ones((2, 3, 3, 3))))
    assert gx.shape == (0, 3, 8, 8) and not gw.any() and not gb.any()


def test_rconv_inside_plain_dask_calls_survives_zero_size_probes():
    """Dask probes a function with zero-size arrays to infer its output type when no meta
    is given: rconv's in-memory functions must answer (or raise an ordinary error)."""
    seen = []

    def spy(block, *args, **kwargs):
        seen.append(block.shape)
        return rconv.correlate2d(block, *args, **kwargs)

    rng = np.random.default_rng(20)
    img = rng.standard_normal((40, 30))
    k = rng.standard_normal((3, 3))
    y = _chunked(img, 20).map_blocks(spy, k, "same", "symm")
    assert any(0 in shape for shape in seen)  # the probe happened
    expected = np.block(
        [
            [rconv.correlate2d(img[r : r + 20, c : c + 20], k, "same", "symm") for c in (0, 20)]
            for r in (0, 20)
        ]
    )
    np.testing.assert_array_equal(_threads(y), expected)
    x = _chunked(rng.standard_normal((6, 2, 8, 8)), (2, 2, 8, 8))
    pooled = x.map_blocks(rconv.max_pool2d, 2, chunks=(2, 2, 4, 4), dtype=x.dtype)
    np.testing.assert_array_equal(_threads(pooled), rconv.max_pool2d(x.compute(), 2))


# --------------------------------------------------------------------------- hostile input

ALLOWED = (ValueError, TypeError, OverflowError, MemoryError)
_junk = st.one_of(
    st.integers(-3, 3),
    st.integers(2**40, 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.none(),
    st.tuples(st.integers(-2, 4), st.integers(-2, 4)),
    st.tuples(st.integers(-2, 4), st.integers(-2, 4), st.integers(-2, 4)),
    st.sampled_from(["same", "valid", "full", "fill", "symm", "wrap", "zeros", "reflect"]),
)
_DTYPES = [np.float32, np.float64, np.int16, np.uint8, np.complex64, np.bool_, np.float16, object]


def _hostile_array(data, ndims, chunked):
    shape = tuple(data.draw(st.sampled_from([0, 1, 2, 3, 7])) for _ in range(data.draw(ndims)))
    dt = data.draw(st.sampled_from(_DTYPES))
    a = np.empty(shape, dtype=object) if np.dtype(dt) == object else np.ones(shape, dt)
    if chunked and data.draw(st.booleans()):
        return da.from_array(a, chunks=data.draw(st.integers(1, 3)))
    return a


# positional arrays (ndims of each, chunked or not) and how many junk arguments may follow
_HOSTILE = {
    "correlate2d": ([([1, 2, 3], True), ([2], False)], 3),
    "convolve2d": ([([2], True), ([1, 2], False)], 3),
    "conv2d": ([([3, 4], True), ([4], False)], 5),
    "conv2d_backward": ([([3, 4], True), ([3, 4], True), ([4], False)], 5),
    "max_pool2d": ([([3, 4], True)], 5),
    "max_pool2d_backward": ([([3, 4], True), ([3, 4], True)], 4),
    "avg_pool2d": ([([3, 4], True)], 5),
    "avg_pool2d_backward": ([([3, 4], True), ([3, 4], True)], 4),
    "adaptive_avg_pool2d": ([([3, 4], True)], 1),
    "adaptive_max_pool2d": ([([3, 4], True)], 2),
}


def test_hostile_table_covers_the_module():
    assert sorted(_HOSTILE) == sorted(rd.__all__)


@pytest.mark.parametrize("name", sorted(_HOSTILE))
@given(data=st.data())
def test_hostile_input_never_crashes(name, data):
    """Building the graph and computing it either works or raises one of the allowed
    errors: never a panic, a crash or a hang."""
    specs, n_extra = _HOSTILE[name]
    args = [_hostile_array(data, st.sampled_from(nd), c) for nd, c in specs]
    args += [data.draw(_junk) for _ in range(data.draw(st.integers(0, n_extra)))]
    try:
        dask.compute(getattr(rd, name)(*args), scheduler="sync")
    except ALLOWED:
        pass


# --------------------------------------------------------------------------- distributed


def test_local_cluster_signal(cluster_client):
    rng = np.random.default_rng(16)
    img = rng.standard_normal((600, 500)).astype(np.float32)
    x = _chunked(img, (200, 150))
    workers = set()
    for name, ref, func in OPS:
        for mode in MODES:
            for boundary, kshape in zip(BOUNDARIES, [(3, 3), (4, 6), (7, 2)]):
                k = rng.standard_normal(kshape).astype(np.float32)
                y = func(x, k, mode, boundary, 0.5)
                fut = cluster_client.compute(y)
                out = fut.result()
                workers |= set(cluster_client.who_has(fut).get(fut.key, ()))
                expected = ref(img, k, mode, boundary, 0.5)
                np.testing.assert_array_equal(out, expected, err_msg=f"{name} {mode} {boundary}")
    # the blocks ran in the worker processes, not in this one
    assert len(cluster_client.scheduler_info()["workers"]) == 2
    pids = cluster_client.run(os.getpid)
    assert os.getpid() not in pids.values()
    assert workers


def test_local_cluster_batch(cluster_client):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((12, 4, 20, 20)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    dx = _chunked(x, (3, 4, 20, 20))
    y = rd.conv2d(dx, w, b, stride=2, padding=1)
    expected = rconv.conv2d(x, w, b, stride=2, padding=1)
    np.testing.assert_array_equal(cluster_client.compute(y).result(), expected)
    g = rng.standard_normal(expected.shape).astype(np.float32)
    grads = cluster_client.compute(list(rd.conv2d_backward(g, dx, w, stride=2, padding=1)))
    gx, gw, gb = [f.result() for f in grads]
    rx, rw, rb = rconv.conv2d_backward(g, x, w, stride=2, padding=1)
    np.testing.assert_array_equal(gx, rx)
    eps = np.finfo(np.float32).eps
    np.testing.assert_allclose(gw, rw, rtol=0, atol=64 * eps * np.abs(rw).max())
    np.testing.assert_allclose(gb, rb, rtol=0, atol=64 * eps * np.abs(rb).max())
    out, idx = rd.max_pool2d(dx, 2, return_indices=True)
    pooled, pidx = dask.compute(out, idx)  # the default scheduler is now the cluster's
    ref_out, ref_idx = rconv.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(pooled, ref_out)
    np.testing.assert_array_equal(pidx, ref_idx)
    ga = rd.avg_pool2d_backward(rconv.avg_pool2d(x, 2), dx, 2)
    np.testing.assert_array_equal(
        ga.compute(), rconv.avg_pool2d_backward(rconv.avg_pool2d(x, 2), x, 2)
    )
