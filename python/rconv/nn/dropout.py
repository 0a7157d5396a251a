"""Dropout layers: :class:`Dropout` (``torch.nn.Dropout``)."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _float_input, _real
from .module import Module

__all__ = ["Dropout"]


@_doc(examples=_NN_EXAMPLES_DOC)
class Dropout(Module):
    """Randomly zero values in training (``torch.nn.Dropout``).

    Each value is zeroed with probability `p` and the kept ones are scaled by
    ``1 / (1 - p)``; in eval mode the layer is the identity. ``p=1`` gives zeros.

    The mask has torch's distribution, drawn from `rng`, not torch's random stream.

    Parameters
    ----------
    p : float, optional
        Probability of zeroing, in [0, 1] (default 0.5).
    rng : numpy.random.Generator, optional
        Source of the masks (default: a new unseeded generator).

    [examples]
    >>> drop = nn.Dropout(0.5, rng=np.random.default_rng(0))
    >>> y = drop.forward(np.ones(10))
    >>> sorted(set(y.tolist())), bool(np.array_equal(drop.backward(np.ones(10)), y))
    ([0.0, 2.0], True)
    >>> drop.eval().forward(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p: float = 0.5, *, rng: Optional[np.random.Generator] = None) -> None:
        p = _real("Dropout", "p", p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng() if rng is None else rng
        self._mask: Optional[np.ndarray] = None
        self._shape: Optional[Tuple[int, ...]] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/dropout.py, _DropoutNd.extra_repr (rconv has no inplace: False)
        return f"p={self.p}, inplace=False"

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _float_input("Dropout", x)
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x.copy()
        if self.p == 1.0:
            self._mask = np.zeros(x.shape, x.dtype)
        else:
            # uniforms in float32 for a float32 input, float64 otherwise
            u: np.ndarray
            if x.dtype == np.float32:
                u = self.rng.random(x.shape, dtype=np.float32)
            else:
                u = self.rng.random(x.shape, dtype=np.float64)
            self._mask = (u >= self.p).astype(x.dtype)
            self._mask *= x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        shape = self._need(self._shape, "input")
        g = self._check_grad(grad, shape)
        if not input_grad:
            return None
        return g.copy() if self._mask is None else g * self._mask
