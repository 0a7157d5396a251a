"""The typed boundary as a user meets it: options converted once in Rust and named in errors,
messages that say what to do, out= on conv_transpose2d, and the rules moved out of Python."""

from __future__ import annotations

import numpy as np
import pytest

import rconv
from rconv import kernels, nn


def test_a_stack_without_axes_is_told_about_axes():
    with pytest.raises(ValueError, match=r"correlate2d: in1 must be a 2-D array, got 3 .*axes="):
        rconv.correlate2d(np.ones((2, 5, 5)), np.ones((3, 3)))
    # a 1-D input gets no such hint
    with pytest.raises(ValueError) as e:
        rconv.convolve2d(np.ones(5), np.ones((3, 3)))
    assert "axes=" not in str(e.value)


def test_channels_last_input_is_told_about_nchw():
    x = np.ones((2, 8, 8, 3))  # NHWC
    w = np.ones((4, 3, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: input has 8 channels .*NCHW.*transpose"):
        rconv.conv2d(x, w)
    with pytest.raises(ValueError) as e:
        rconv.conv2d(np.ones((2, 5, 8, 8)), w)  # a plain channel mismatch: no hint
    assert "NCHW" not in str(e.value)


def test_cross_entropy_names_dtype_and_class_count():
    loss = nn.CrossEntropyLoss()
    with pytest.raises(ValueError, match=r"in \[0, 4\) for the 4 classes.*dtype float64.*astype"):
        loss.forward(np.zeros((2, 4)), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, 4\) .* got values from 1 to 4"):
        loss.forward(np.zeros((2, 4)), np.array([1, 4]))


def test_kernels_take_dtype():
    k = kernels.gaussian(5, 1.0, dtype=np.float32)
    assert k.dtype == np.float32
    np.testing.assert_allclose(k, kernels.gaussian(5, 1.0), rtol=1e-7)
    img = np.ones((8, 8), np.float32)
    assert rconv.correlate2d(img, k, "same").dtype == np.float32
    s = kernels.get("sobel_x", dtype=np.float32)
    assert s.dtype == np.float32 and s.flags.writeable
    np.testing.assert_array_equal(s, kernels.sobel_x)
    with pytest.raises(TypeError, match="gaussian: dtype must be a floating-point"):
        kernels.gaussian(3, 1.0, dtype=np.int32)
    with pytest.raises(KeyError, match="unknown kernel 'nope'"):
        kernels.get("nope")


def test_conv_transpose2d_out():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4, 5))
    w = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(2)
    want = rconv.conv_transpose2d(x, w, b, stride=2, padding=1)
    out = np.full(want.shape, np.nan)
    got = rconv.conv_transpose2d(x, w, b, stride=2, padding=1, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)
    out3 = np.full(want.shape[1:], np.nan)  # unbatched
    assert rconv.conv_transpose2d(x[0], w, b, stride=2, padding=1, out=out3) is out3
    np.testing.assert_array_equal(out3, want[0])
    with pytest.raises(ValueError, match=r"conv_transpose2d: out must have shape"):
        rconv.conv_transpose2d(x, w, out=np.empty((1, 1, 1, 1)))


def test_out_messages_are_one_set():
    # every out= goes through one path: the same words from the signal, conv and pool calls
    a = np.ones((4, 4))
    cases = [
        lambda o: rconv.correlate2d(a, a, "valid", out=o),
        lambda o: rconv.conv2d(a[None, None], a[None, None], out=o),
        lambda o: rconv.max_pool2d(a[None, None], 4, out=o),
        lambda o: rconv.correlate2d(np.stack([a, a]), a, "valid", axes=(1, 2), out=o),
    ]
    for call in cases:
        with pytest.raises(TypeError, match=r": out must be a NumPy array, got list"):
            call([1.0])
        with pytest.raises(TypeError, match=r": out must have dtype float64, got int32"):
            call(np.ones(1, np.int32))
        with pytest.raises(ValueError, match=r": out must have shape \("):
            call(np.ones(7))


def test_bias_rule_is_one_message():
    x = np.ones((1, 2, 4, 4))
    with pytest.raises(ValueError, match=r"conv2d: bias has 3 elements, expected 4"):
        rconv.conv2d(x, np.ones((4, 2, 3, 3)), np.ones(3))
    with pytest.raises(ValueError, match=r"conv_transpose2d: bias has 3 elements, expected 4"):
        rconv.conv_transpose2d(x, np.ones((2, 4, 3, 3)), np.ones(3))
    lin = nn.Linear(2, 3, rng=np.random.default_rng(0))
    lin.bias = np.ones(2, np.float32)
    with pytest.raises(ValueError, match=r"bias has 2 elements, expected 3"):
        lin.forward(np.ones((1, 2), np.float32))


def test_corr2d_backward_shape_rule_is_rusts():
    x, k = np.arange(9.0).reshape(3, 3), np.ones((2, 2))
    with pytest.raises(ValueError, match=r"corr2d_backward: grad_output must have the forward"):
        rconv.corr2d_backward(np.ones((3, 3)), x, k)
    with pytest.raises(ValueError, match=r"corr2d_backward: kernel k"):
        rconv.corr2d_backward(np.ones((1, 1)), k, x)
    gx, gk = rconv.corr2d_backward(np.ones((2, 2)), x, k)
    np.testing.assert_array_equal(gx, rconv.convolve2d(np.ones((2, 2)), k, "full"))
    np.testing.assert_array_equal(gk, rconv.corr2d(x, np.ones((2, 2))))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(groups=3), r"Conv2d: groups=3 must divide in_channels \(4\)"),
        (dict(groups=0), r"Conv2d: groups must be a positive integer"),
        (dict(stride=0), r"Conv2d: stride must be >= 1"),
        (dict(stride=2, padding="same"), r"Conv2d: padding='same' is not supported"),
        (dict(padding_mode="mirror"), r"Conv2d: padding_mode must be 'zeros'"),
        (dict(dilation=(1, 2, 3)), r"Conv2d: dilation must be an int or a pair"),
    ],
)
def test_conv2d_layer_checks_without_a_probe(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nn.Conv2d(4, 6, 3, **kwargs)


def test_conv2d_layer_types():
    with pytest.raises(TypeError, match=r"Conv2d: kernel_size must be an int or a pair"):
        nn.Conv2d(4, 6, 2.5)
    with pytest.raises(ValueError, match=r"Conv2d: kernel_size must be >= 1"):
        nn.Conv2d(4, 6, 0)
    conv = nn.Conv2d(4, 6, (3, 1), groups=2, rng=np.random.default_rng(0))
    assert conv.weight.shape == (6, 2, 3, 1)


def test_numpy_integers_and_lists_are_ints_bools_are_not():
    x = np.ones((1, 1, 6, 6))
    w = np.ones((1, 1, 3, 3))
    want = rconv.conv2d(x, w, stride=2, padding=1)
    np.testing.assert_array_equal(rconv.conv2d(x, w, stride=np.int64(2), padding=[1]), want)
    np.testing.assert_array_equal(rconv.conv2d(x, w, stride=(2, 2), padding=[1, 1]), want)
    with pytest.raises(TypeError, match="conv2d: stride must be an int or a pair"):
        rconv.conv2d(x, w, stride=True)
    with pytest.raises(TypeError, match="max_pool2d: kernel_size must be an int or a pair"):
        rconv.max_pool2d(x, np.bool_(True))
    # torch's empty stride means kernel_size
    np.testing.assert_array_equal(rconv.max_pool2d(x, 2, []), rconv.max_pool2d(x, 2))


def test_dask_errors_come_through_the_same_naming():
    da = pytest.importorskip("dask.array")
    import rconv.dask

    x = da.ones((4, 1, 6, 6), chunks=2)
    with pytest.raises(ValueError, match=r"^rconv.dask.conv2d: stride must be >= 1"):
        rconv.dask.conv2d(x, np.ones((1, 1, 3, 3)), stride=0)
    with pytest.raises(TypeError, match=r"^rconv.dask.max_pool2d: kernel_size must be an int"):
        rconv.dask.max_pool2d(x, "a")
    with pytest.raises(ValueError, match=r"^rconv.dask.correlate2d: mode must be"):
        rconv.dask.correlate2d(da.ones((6, 6), chunks=3), np.ones((3, 3)), mode="nope")


def test_conv2d_backward_refuses_one_buffer_for_two_gradients():
    # every destination shares no memory with the inputs nor with the ones before it
    x = np.ones((1, 1, 4, 4))
    w = np.ones((1, 1, 4, 4))
    g = np.ones((1, 1, 1, 1))
    buf = np.empty((1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"conv2d_backward: out\[1\] must not share memory"):
        rconv.conv2d_backward(g, x, w, out=(buf, buf, None))
    gi, gw, gb = rconv.conv2d_backward(g, x, w, out=(buf, np.empty((1, 1, 4, 4)), None))
    assert gi is buf and gw is not buf


def test_conv2d_input_ties_the_shape_to_grad_output():
    w = np.ones((1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"conv2d_input: input_shape must hold 3 sizes"):
        rconv.conv2d_input((1, 1, 3, 3), w, np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"conv2d_input: input_shape must hold 4 sizes"):
        rconv.conv2d_input((1, 3, 3), w, np.ones((1, 1, 2, 2)))
    assert rconv.conv2d_input((1, 3, 3), w, np.ones((1, 2, 2))).shape == (1, 3, 3)


def test_a_str_subclass_boundary_is_fill_everywhere():
    a = np.ones((3, 3))
    want = rconv.correlate2d(a, a, "same", "fill", 5.0)
    got = rconv.correlate2d(a, a, "same", np.str_("fill"), 5.0)
    np.testing.assert_array_equal(got, want)


def test_huge_padding_is_a_value_error():
    x = np.ones((1, 1, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: padding is too large"):
        rconv.conv2d(x, np.ones((1, 1, 1, 1)), padding=2**63 - 1, padding_mode="symmetric")
