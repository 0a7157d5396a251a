"""nn.ReLU through the Rust activation kernels: torch's semantics (NaN propagates, the
gradient is 0 where the input is <= 0 and passes at NaN), the NumPy reference, finite
differences, serial/parallel agreement and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import rconv
from rconv import nn


def ref_relu(x):
    return np.where(np.isnan(x) | (x > 0), x, 0).astype(x.dtype)


def ref_relu_grad(g, x):
    return np.where(x <= 0, 0, g).astype(g.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_matches_reference_with_nan_and_zero(dtype):
    x = np.array([[-2.0, -0.0, 0.0, 1.5], [np.nan, np.inf, -np.inf, 3.0]], dtype)
    g = np.arange(1.0, 9.0, dtype=dtype).reshape(2, 4)
    relu = nn.ReLU()
    y = relu.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_array_equal(y, ref_relu(x))
    assert np.isnan(y[1, 0])
    d = relu.backward(g)
    np.testing.assert_array_equal(d, [[0, 0, 0, 4], [5, 6, 0, 8]])
    assert d.dtype == dtype


@given(
    hnp.arrays(
        st.sampled_from([np.float32, np.float64]),
        hnp.array_shapes(min_dims=1, max_dims=4, max_side=7),
        elements=st.one_of(st.floats(-10, 10, width=32), st.just(np.nan), st.just(0.0)),
    )
)
def test_relu_property_against_reference(x):
    relu = nn.ReLU()
    x0 = x.copy()
    y = relu.forward(x)
    np.testing.assert_array_equal(y, ref_relu(x))
    g = np.full_like(x, 2.5)
    np.testing.assert_array_equal(relu.backward(g), ref_relu_grad(g, x))
    np.testing.assert_array_equal(x, x0)  # the input is never modified


def test_relu_gradient_by_finite_differences():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    g = rng.standard_normal(x.shape)
    relu = nn.ReLU()
    relu.forward(x)
    d = relu.backward(g)
    eps = 1e-6
    num = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        num[i] = ((nn.ReLU().forward(xp) - nn.ReLU().forward(xm)) * g).sum() / (2 * eps)
    np.testing.assert_allclose(d, num, rtol=1e-6, atol=1e-8)


def test_relu_any_strides_and_other_dtypes():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 8, 10)).astype(np.float32)
    x = base[::2, :, ::-3]  # not contiguous
    np.testing.assert_array_equal(nn.ReLU().forward(x), ref_relu(x))
    xi = np.array([-3, 0, 4], np.int64)
    relu = nn.ReLU()
    np.testing.assert_array_equal(relu.forward(xi), [0, 0, 4])
    np.testing.assert_array_equal(relu.backward(np.array([1, 1, 1])), [0, 0, 1])


def test_relu_serial_and_parallel_agree():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 16, 64, 64)).astype(np.float32)  # several parallel chunks
    g = rng.standard_normal(x.shape).astype(np.float32)
    before = rconv.get_num_threads()
    try:
        outs = []
        for t in (1, 2):
            rconv.set_num_threads(t)
            relu = nn.ReLU()
            outs.append((relu.forward(x), relu.backward(g)))
    finally:
        rconv.set_num_threads(before)
    np.testing.assert_array_equal(outs[0][0], outs[1][0])
    np.testing.assert_array_equal(outs[0][1], outs[1][1])
    np.testing.assert_array_equal(outs[0][0], ref_relu(x))


def test_relu_errors():
    relu = nn.ReLU()
    with pytest.raises(RuntimeError, match="before forward"):
        relu.backward(np.ones(3))
    relu.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ReLU.backward: grad has shape \(3,\)"):
        relu.backward(np.ones(3))
    with pytest.raises(ValueError, match="relu_backward: grad_output has 3 elements"):
        rconv._rconv.relu(np.ones(4), np.ones(3))
    with pytest.raises(TypeError, match="relu: input has unsupported dtype"):
        rconv._rconv.relu(np.ones(3, np.int32))
