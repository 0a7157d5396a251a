"""The networks of the ``train`` benchmark, each built from ``rconv.nn`` or ``torch.nn`` with
the same code, so that one script times both libraries (and runs before and after a change).

Every builder takes ``(mod, rng)``: the module namespace (``rconv.nn`` or ``torch.nn``) and,
for rconv, a ``numpy.random.Generator`` for the initial weights (torch uses its own).
:data:`NETS` lists them with their input shape and optimizer.
"""

from __future__ import annotations

from typing import Any, Callable, List, NamedTuple, Optional, Tuple


def _kw(rng: Any) -> dict:
    return {"rng": rng} if rng is not None else {}


def lenet(mod: Any, rng: Any = None) -> Any:
    """LeNet-5 on (N, 1, 28, 28)."""
    kw = _kw(rng)
    return mod.Sequential(
        mod.Conv2d(1, 6, 5, padding=2, **kw),
        mod.ReLU(),
        mod.MaxPool2d(2),
        mod.Conv2d(6, 16, 5, **kw),
        mod.ReLU(),
        mod.MaxPool2d(2),
        mod.Flatten(),
        mod.Linear(400, 120, **kw),
        mod.ReLU(),
        mod.Linear(120, 84, **kw),
        mod.ReLU(),
        mod.Linear(84, 10, **kw),
    )


def vgg(mod: Any, rng: Any = None) -> Any:
    """A VGG-style net on (N, 3, 32, 32): two conv-conv-pool stages and a linear head."""
    kw = _kw(rng)
    return mod.Sequential(
        mod.Conv2d(3, 32, 3, padding=1, **kw),
        mod.ReLU(),
        mod.Conv2d(32, 32, 3, padding=1, **kw),
        mod.ReLU(),
        mod.MaxPool2d(2),
        mod.Conv2d(32, 64, 3, padding=1, **kw),
        mod.ReLU(),
        mod.Conv2d(64, 64, 3, padding=1, **kw),
        mod.ReLU(),
        mod.MaxPool2d(2),
        mod.Flatten(),
        mod.Linear(4096, 10, **kw),
    )


def _cbr(mod: Any, kw: dict, cin: int, cout: int, k: int, stride: int, groups: int = 1) -> list:
    """Conv (no bias) - BatchNorm2d - ReLU."""
    return [
        mod.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False, **kw),
        mod.BatchNorm2d(cout),
        mod.ReLU(),
    ]


def bn_net(mod: Any, rng: Any = None) -> Any:
    """BatchNorm, stride-2 convolutions and global average pooling on (N, 3, 32, 32)."""
    kw = _kw(rng)
    return mod.Sequential(
        *_cbr(mod, kw, 3, 32, 3, 1),
        *_cbr(mod, kw, 32, 64, 3, 2),
        *_cbr(mod, kw, 64, 128, 3, 2),
        *_cbr(mod, kw, 128, 256, 3, 1),
        mod.AdaptiveAvgPool2d(1),
        mod.Flatten(),
        mod.Linear(256, 10, **kw),
    )


def dwsep_net(mod: Any, rng: Any = None) -> Any:
    """MobileNet-style depthwise-separable blocks (depthwise 3x3 - BN - ReLU - pointwise 1x1
    - BN - ReLU) on (N, 3, 32, 32)."""
    kw = _kw(rng)

    def block(cin: int, cout: int, stride: int) -> list:
        return _cbr(mod, kw, cin, cin, 3, stride, groups=cin) + _cbr(mod, kw, cin, cout, 1, 1)

    return mod.Sequential(
        *_cbr(mod, kw, 3, 32, 3, 1),
        *block(32, 64, 2),
        *block(64, 128, 1),
        *block(128, 128, 2),
        *block(128, 256, 1),
        mod.AdaptiveAvgPool2d(1),
        mod.Flatten(),
        mod.Linear(256, 10, **kw),
    )


def resnet(mod: Any, rng: Any = None) -> Any:
    """A small residual net of basic blocks (conv-BN-ReLU-conv-BN plus the skip, then ReLU;
    a 1x1 stride-2 conv-BN on the skip where the shape changes) on (N, 3, 32, 32), written
    as a custom Module with ``forward`` (and, for rconv, ``backward``)."""
    kw = _kw(rng)
    torch_like = not hasattr(mod.Module, "backward")
    base = mod.Module

    class BasicBlock(base):  # type: ignore[misc, valid-type]
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            if torch_like:
                super().__init__()
            self.conv1 = mod.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False, **kw)
            self.bn1 = mod.BatchNorm2d(cout)
            self.relu1 = mod.ReLU()
            self.conv2 = mod.Conv2d(cout, cout, 3, padding=1, bias=False, **kw)
            self.bn2 = mod.BatchNorm2d(cout)
            self.shortcut = None
            if stride != 1 or cin != cout:
                self.shortcut = mod.Sequential(
                    mod.Conv2d(cin, cout, 1, stride=stride, bias=False, **kw),
                    mod.BatchNorm2d(cout),
                )
            self.relu2 = mod.ReLU()

        def forward(self, x: Any) -> Any:
            y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
            return self.relu2(y + (x if self.shortcut is None else self.shortcut(x)))

        def backward(self, grad: Any, input_grad: bool = True) -> Optional[Any]:
            g = self.relu2.backward(grad)
            main = self.conv2.backward(self.bn2.backward(g))
            gx = self.conv1.backward(self.bn1.backward(self.relu1.backward(main)), input_grad)
            skip = g if self.shortcut is None else self.shortcut.backward(g, input_grad)
            return gx + skip if input_grad else None

    return mod.Sequential(
        *_cbr(mod, kw, 3, 16, 3, 1),
        BasicBlock(16, 16, 1),
        BasicBlock(16, 32, 2),
        BasicBlock(32, 64, 2),
        mod.AdaptiveAvgPool2d(1),
        mod.Flatten(),
        mod.Linear(64, 10, **kw),
    )


class Net(NamedTuple):
    """A benchmark network: its name, builder, input shape and optimizer (as
    ``(class name, keyword arguments)``, the same for ``rconv.optim`` and ``torch.optim``)."""

    key: str
    label: str
    build: Callable[..., Any]
    shape: Tuple[int, int, int, int]
    optimizer: Tuple[str, dict]


NETS: List[Net] = [
    Net("lenet", "LeNet-5", lenet, (64, 1, 28, 28), ("SGD", {"lr": 0.01, "momentum": 0.9})),
    Net("vgg", "VGG-style", vgg, (32, 3, 32, 32), ("SGD", {"lr": 0.01, "momentum": 0.9})),
    Net("bn", "BN stride-2 GAP", bn_net, (32, 3, 32, 32), ("Adam", {"lr": 1e-3})),
    Net(
        "dwsep",
        "depthwise-separable",
        dwsep_net,
        (32, 3, 32, 32),
        ("AdamW", {"lr": 1e-3, "weight_decay": 1e-2}),
    ),
    Net(
        "resnet",
        "ResNet basic blocks",
        resnet,
        (32, 3, 32, 32),
        ("SGD", {"lr": 0.01, "momentum": 0.9}),
    ),
]


def optimizer(optim: Any, net: Net, params: Any) -> Any:
    """`net`'s optimizer from the namespace `optim` (``rconv.optim`` or ``torch.optim``) over
    `params` (the rconv model, or torch's ``parameters()``)."""
    name, kw = net.optimizer
    return getattr(optim, name)(params, **kw)
