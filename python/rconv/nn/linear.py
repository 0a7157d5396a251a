"""Fully connected layers: :class:`Linear` (``torch.nn.Linear``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Optional, Tuple

import numpy as np

from .. import _nn, _rconv
from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _kaiming_uniform, _layer_dtype, _linear_out, _linear_rows
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["Linear"]


@_doc(examples=_NN_EXAMPLES_DOC)
class Linear(Module):
    """Fully connected layer (``torch.nn.Linear``): ``y = x W^T + b``.

    The parameters are ``weight``, ``(out_features, in_features)``, and ``bias``,
    ``(out_features,)``. Inputs may have any number of leading axes.

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input's and the output's last axis.
    bias : bool, optional
        Learn an additive bias (default True).
    rng : numpy.random.Generator, optional
        Source of the initial weights (default: a new unseeded generator).
    dtype : dtype, optional
        The parameters' dtype: float32 (default) or float64.

    [examples]
    >>> lin = nn.Linear(4, 2, rng=np.random.default_rng(0))
    >>> lin
    Linear(in_features=4, out_features=2, bias=True)
    >>> lin.forward(np.ones((3, 4), np.float32)).shape, lin.params()["weight"].shape
    ((3, 2), (2, 4))
    """

    _param_names = ("weight", "bias")

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: Optional[np.random.Generator] = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        dtype = _layer_dtype("Linear", dtype)
        rng = np.random.default_rng() if rng is None else rng
        self.in_features, self.out_features = in_features, out_features
        self.weight = _kaiming_uniform(rng, (out_features, in_features), in_features, dtype)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.bias: Optional[np.ndarray] = (
            rng.uniform(-bound, bound, out_features).astype(dtype) if bias else None
        )
        self._x: Optional[np.ndarray] = None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    # The forward pass is rconv.nn.functional.linear's (one GEMM in rconv's Rust; see
    # _util._linear_rows); backward reuses the same flattened (-1, in_features) input.

    def _rows(self, x: Any) -> Tuple[np.ndarray, np.ndarray, np.dtype]:
        return _linear_rows("Linear", x, self.weight, self.bias)

    def extra_repr(self) -> str:
        # torch/nn/modules/linear.py, Linear.extra_repr
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        x, x2, dt = self._rows(x)
        self._x = x
        return _linear_out(x, x2, dt, self.weight, self.bias)

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x, x2, dt = self._rows(self._need(self._x, "input"))
        m = self.weight.shape[0]
        g = self._check_grad(grad, x.shape[:-1] + (m,))
        g2 = _nn._c(g.reshape(-1, m), dt)
        gi, gw, gb = _rconv.linear_backward(g2, x2, _nn._c(self.weight, dt), bool(input_grad))
        self.grad_weight = gw.astype(self.weight.dtype, copy=False)
        if self.bias is not None:
            self.grad_bias = gb.astype(self.bias.dtype, copy=False)
        return None if gi is None else gi.reshape(x.shape)
