"""Containers: :class:`Sequential` (``torch.nn.Sequential``)."""

from __future__ import annotations

from typing import Any, Iterator, Optional, Tuple

import numpy as np

from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _backward
from .module import Module

__all__ = ["Sequential"]


@_doc(examples=_NN_EXAMPLES_DOC)
class Sequential(Module):
    """Layers applied in order (``torch.nn.Sequential``).

    Parameter names are ``"<index>.<name>"`` as in torch. ``backward(grad,
    input_grad=False)`` skips the gradient with respect to the network's input (the
    data's): the first layer with parameters computes only its parameter gradients, and
    the layers before it are not run backwards.

    Parameters
    ----------
    *layers : Module
        The layers, applied first to last.

    [examples]
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))
    >>> net
    Sequential(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Linear(in_features=4, out_features=3, bias=True)
    )
    >>> sorted(net.params()), net.forward(np.ones((2, 1, 2, 2), np.float32)).shape
    (['1.bias', '1.weight'], (2, 3))
    >>> net.backward(np.ones((2, 3), np.float32), input_grad=False) is None
    True
    """

    def __init__(self, *layers: Module) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: argument {i} must be an rconv.nn.Module, got "
                    f"{type(layer).__name__}"
                )
        self.layers = list(layers)

    def children(self) -> Iterator[Tuple[str, Module]]:
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        first = 0
        if not input_grad:
            # layers before the first one with parameters need no backward at all
            first = next((i for i, m in enumerate(self.layers) if m.params()), len(self.layers))
        g: Any = grad  # passed down as each layer returns it
        for i in range(len(self.layers) - 1, first - 1, -1):
            g = _backward(self.layers[i], g, input_grad or i > first)
        return g if input_grad else None

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)
