"""The ReLU fused into a convolution's output pass (the private ``_rconv.conv2d(relu=True)``):
the same bits as the convolution followed by torch's ReLU, on every engine. (Measured, a
Sequential that ran its Conv2d-ReLU pairs this way was slower than the two layers, so no layer
uses it yet.)"""

import numpy as np
import pytest

from rconv import _rconv

DTYPES = [np.float32, np.float64]

# (input shape, weight shape, stride, padding, groups, padding_mode): the engines a forward
# convolution takes (Winograd 3x3, pointwise, depthwise, the row-run im2col of small planes,
# the tiled im2col of strided and grouped layers), and a padding mode that copies the input
CASES = [
    ((2, 32, 35, 33), (40, 32, 3, 3), 1, 1, 1, "zeros"),
    ((3, 16, 12, 12), (8, 16, 1, 1), 1, 0, 1, "zeros"),
    ((2, 8, 15, 15), (8, 1, 3, 3), 1, 1, 8, "zeros"),
    ((4, 8, 10, 10), (6, 8, 3, 3), 1, 1, 1, "zeros"),
    ((2, 6, 21, 20), (6, 3, 5, 3), 2, 2, 2, "zeros"),
    ((2, 4, 9, 9), (5, 4, 3, 3), 2, 1, 1, "reflect"),
]


def _torch_relu(y: np.ndarray) -> np.ndarray:
    """torch's ReLU: max(y, 0), NaN passed through."""
    return np.where((y > 0) | np.isnan(y), y, 0).astype(y.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_fused_relu_equals_conv_then_relu(threads, dtype, case, with_bias):
    xs, ws, stride, padding, groups, mode = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(xs).astype(dtype)
    x[0, 0, 0, :3] = np.nan  # NaN reaches some outputs: the ReLU passes it on
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype) if with_bias else None
    args = (x, w, b, stride, padding, 1, groups, mode)
    results = []
    for n in (1, 2):
        threads(n)
        plain = _rconv.conv2d(*args)
        fused = _rconv.conv2d(*args, relu=True)
        np.testing.assert_array_equal(fused, _torch_relu(plain))
        results.append(fused)
    assert np.isnan(results[0]).any() and (results[0] == 0).any()
    np.testing.assert_array_equal(results[0], results[1])
