"""Reshaping layers: :class:`Flatten` (``torch.nn.Flatten``)."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .._docs import _NN_EXAMPLES_DOC, _doc
from .module import Module

__all__ = ["Flatten"]


@_doc(examples=_NN_EXAMPLES_DOC)
class Flatten(Module):
    """Flatten every axis after the first (``torch.nn.Flatten``).

    [examples]
    >>> nn.Flatten().forward(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self) -> None:
        self._shape: Optional[Tuple[int, ...]] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/flatten.py, Flatten.extra_repr, with torch's defaults (the only
        # axes rconv's Flatten takes)
        return "start_dim=1, end_dim=-1"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        shape = self._need(self._shape, "shape")
        if not input_grad:
            return None
        return np.asarray(grad).reshape(shape)
