"""rconv.nn layers and rconv.kernels."""

from __future__ import annotations

import nn_reference as ref
import numpy as np
import pytest

import rconv
from conftest import seed_for
from rconv import kernels, nn, optim


def small_net(rng, dtype=np.float64):
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, rng=rng, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(3, 4, 2, rng=rng, dtype=dtype),
        nn.ReLU(),
        nn.AvgPool2d(2, stride=1),
        nn.Flatten(),
        nn.Linear(4 * 1 * 1, 5, rng=rng, dtype=dtype),
    )


def test_whole_network_gradient_by_finite_differences():
    rng = np.random.default_rng(0)
    net = small_net(rng)
    x = rng.standard_normal((3, 1, 6, 6))
    t = np.array([0, 3, 4])
    loss_fn = nn.CrossEntropyLoss()

    def loss_of(params_override=None):
        return loss_fn.forward(net.forward(x), t)

    loss_of()
    gx = net.backward(loss_fn.backward())
    grads = {k: v.copy() for k, v in net.grads().items()}
    eps = 1e-6
    for name, p in net.params().items():
        num = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            up = loss_of()
            p[i] = old - eps
            down = loss_of()
            p[i] = old
            num[i] = (up - down) / (2 * eps)
        np.testing.assert_allclose(grads[name], num, atol=1e-6, err_msg=name)
    num_x = ref.numeric_grad(lambda v: np.array(loss_fn.forward(net.forward(v), t)), x, 1.0)
    np.testing.assert_allclose(gx, num_x, atol=1e-6)


def test_parameter_names_shapes_and_seeded_init():
    net = small_net(np.random.default_rng(1), dtype=np.float32)
    shapes = {k: v.shape for k, v in net.params().items()}
    assert shapes == {
        "0.weight": (3, 1, 3, 3),
        "0.bias": (3,),
        "3.weight": (4, 3, 2, 2),
        "3.bias": (4,),
        "7.weight": (5, 4),
        "7.bias": (5,),
    }
    assert all(v.dtype == np.float32 for v in net.params().values())
    again = small_net(np.random.default_rng(1), dtype=np.float32)
    for k, v in net.params().items():
        np.testing.assert_array_equal(v, again.params()[k])
    # He/Kaiming-uniform bound of torch's default init: 1/sqrt(fan_in)
    w = nn.Conv2d(16, 8, 3, rng=np.random.default_rng(2)).weight
    assert np.abs(w).max() <= 1 / np.sqrt(16 * 9) and np.abs(w).max() > 0.8 / np.sqrt(16 * 9)


def test_training_run_loss_falls():
    rng = np.random.default_rng(3)
    # two classes: a bright square top-left or bottom-right
    x = rng.normal(0, 0.3, (64, 1, 6, 6))
    y = rng.integers(0, 2, 64)
    for i, c in enumerate(y):
        if c == 0:
            x[i, 0, :3, :3] += 1
        else:
            x[i, 0, 3:, 3:] += 1
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng, dtype=np.float64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4 * 3 * 3, 2, rng=rng, dtype=np.float64),
    )
    loss_fn = nn.CrossEntropyLoss()
    opt = optim.SGD(net, lr=0.1, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _ in range(30):
        losses.append(loss_fn.forward(net.forward(x), y))
        net.backward(loss_fn.backward())
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses
    acc = (net.forward(x).argmax(axis=1) == y).mean()
    assert acc > 0.95


def test_sgd_update_rule():
    lin = nn.Linear(2, 1, rng=np.random.default_rng(4), dtype=np.float64)
    p0 = lin.weight.copy()
    lin.grad_weight = np.ones_like(lin.weight)
    lin.grad_bias = np.zeros_like(lin.bias)
    opt = optim.SGD(lin, lr=0.5, momentum=0.9, weight_decay=0.1)
    opt.step()
    v1 = 1 + 0.1 * p0
    np.testing.assert_allclose(lin.weight, p0 - 0.5 * v1)
    p1 = lin.weight.copy()
    opt.step()
    np.testing.assert_allclose(lin.weight, p1 - 0.5 * (0.9 * v1 + 1 + 0.1 * p1))
    with pytest.raises(ValueError, match="SGD: lr"):
        optim.SGD(lin, lr=0)


def test_layer_errors():
    with pytest.raises(RuntimeError, match="Conv2d.backward called before forward"):
        # an explicit rng: without one Conv2d draws its weights from an unseeded default_rng()
        conv = nn.Conv2d(1, 1, 3, rng=np.random.default_rng(seed_for("test_layer_errors")))
        conv.backward(np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="CrossEntropyLoss: targets"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="CrossEntropyLoss: expected logits"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0]))


def test_classic_kernels():
    assert set(kernels.named) == {
        "sharpen",
        "vertical_edge",
        "surround",
        "sobel_y",
        "identity",
        "horizontal_edge",
        "blur",
        "sobel_x",
        "emboss",
    }
    for k in kernels.named.values():
        assert k.shape == (3, 3) and k.dtype == np.float64
    np.testing.assert_array_equal(kernels.sobel_x, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(kernels.emboss, [[2, 0, 0], [0, -1, 0], [0, 0, -1]])
    np.testing.assert_allclose(kernels.blur, np.full((3, 3), 1 / 9))
    img = np.random.default_rng(5).standard_normal((7, 9))
    np.testing.assert_array_equal(rconv.correlate2d(img, kernels.identity, "same"), img)
    g = kernels.gaussian(5, 1.2)
    assert g.shape == (5, 5) and abs(g.sum() - 1) < 1e-12
    np.testing.assert_allclose(g, g.T)
    np.testing.assert_allclose(g, g[::-1, ::-1])
    with pytest.raises(ValueError, match="gaussian: sigma"):
        kernels.gaussian(3, 0)
    with pytest.raises(ValueError, match="gaussian: size"):
        kernels.gaussian(0, 1.0)
    with pytest.raises(TypeError, match="gaussian: size"):
        kernels.gaussian(2.5, 1.0)
    with pytest.raises(ValueError):
        kernels.sharpen[0, 0] = 1.0  # read-only module constants
