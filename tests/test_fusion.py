"""The ReLU fused into a convolution's output pass (``rconv.nn.Sequential``'s Conv2d-ReLU
pairs): the same bits as the convolution followed by torch's ReLU, on every engine."""

import numpy as np
import pytest

from rconv import _rconv, nn

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


def _net(rng: np.random.Generator) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 5, rng=rng),
        nn.ReLU(),
    )


def _count_calls(layer: nn.Module, calls: list) -> None:
    """Replace `layer`'s forward on the instance with a wrapper that records each call."""
    own = layer.forward
    layer.forward = lambda v: calls.append(type(layer).__name__) or own(v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sequential_fuses_conv_relu_pairs_with_unchanged_results(dtype):
    x = np.random.default_rng(0).standard_normal((4, 3, 16, 16)).astype(dtype)
    g = np.random.default_rng(1).standard_normal((4, 5)).astype(dtype)
    fused, plain = _net(np.random.default_rng(2)), _net(np.random.default_rng(2))
    # a ReLU whose forward is replaced on the instance is never fused: in `plain` every
    # ReLU runs its own forward; in `fused` only the last one (after Linear) does
    plain_calls: list = []
    for layer in plain.layers:
        if isinstance(layer, nn.ReLU):
            _count_calls(layer, plain_calls)
    fused_calls: list = []
    _count_calls(fused.layers[-1], fused_calls)
    y_plain, y = plain.forward(x), fused.forward(x)
    assert len(plain_calls) == 3 and len(fused_calls) == 1
    np.testing.assert_array_equal(y, y_plain)
    np.testing.assert_array_equal(fused.backward(g), plain.backward(g))
    for (k, a), (k2, b) in zip(fused.grads().items(), plain.grads().items()):
        assert k == k2
        np.testing.assert_array_equal(a, b)


def test_subclasses_are_not_fused():
    class Shifted(nn.ReLU):
        def forward(self, x):
            return super().forward(x) + 1

    rng = np.random.default_rng(4)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=rng), Shifted())
    x = rng.standard_normal((1, 1, 5, 5))
    conv = net.layers[0]
    want = np.maximum(conv.forward(x), 0) + 1
    np.testing.assert_array_equal(net.forward(x), want)


def test_fused_pair_inputs_unmodified_and_strided():
    rng = np.random.default_rng(5)
    base = rng.standard_normal((2, 3, 32, 32))
    x = base[:, :, ::2, ::2]  # a strided view
    before = base.copy()
    net = _net(np.random.default_rng(6)).eval()
    y = net.forward(x)
    np.testing.assert_array_equal(base, before)
    np.testing.assert_array_equal(y, net.forward(np.ascontiguousarray(x)))
