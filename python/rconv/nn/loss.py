"""Loss functions: :class:`CrossEntropyLoss` and :class:`MSELoss` (``torch.nn.CrossEntropyLoss``,
``torch.nn.MSELoss``)."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _float_input
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss"]


@_doc(examples=_NN_EXAMPLES_DOC)
class CrossEntropyLoss(Module):
    """Softmax and negative log-likelihood, averaged over the batch.

    As ``torch.nn.CrossEntropyLoss`` with its defaults.

    ``forward(logits, targets)`` takes ``(N, classes)`` scores and ``(N,)`` integer labels
    and returns the mean loss; ``backward()`` returns its gradient with respect to the logits,
    ``(softmax(logits) - onehot(targets)) / N``.

    [examples]
    >>> loss = nn.CrossEntropyLoss()
    >>> bool(abs(loss.forward(np.zeros((2, 4)), np.array([1, 3])) - np.log(4)) < 1e-12)
    True
    >>> loss.backward()
    array([[ 0.125, -0.375,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """

    def __init__(self) -> None:
        self._p: Optional[np.ndarray] = None
        self._t: Optional[np.ndarray] = None

    def __call__(self, logits: Any, targets: Any) -> float:  # type: ignore[override]
        return self.forward(logits, targets)

    def forward(self, logits: Any, targets: Any) -> float:  # type: ignore[override]
        logits = np.asarray(logits)
        t = np.asarray(targets)
        if logits.ndim != 2 or t.shape != (logits.shape[0],):
            raise ValueError(
                f"CrossEntropyLoss: expected logits (N, C) and targets (N,), got "
                f"{logits.shape} and {t.shape}"
            )
        c = logits.shape[1]
        if t.dtype.kind not in "iu":
            hint = " (convert them with targets.astype(np.int64))" if t.dtype.kind in "fb" else ""
            raise ValueError(
                f"CrossEntropyLoss: targets must be integer class indices in [0, {c}) for the "
                f"{c} classes of the logits, got dtype {t.dtype}{hint}"
            )
        if t.size and (t.min() < 0 or t.max() >= c):
            raise ValueError(
                f"CrossEntropyLoss: targets must be class indices in [0, {c}) for the {c} "
                f"classes of the logits, got values from {t.min()} to {t.max()}"
            )
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self._p, self._t = np.exp(logp), t
        return float(-logp[np.arange(len(t)), t].mean())

    def backward(self, grad: Any = None, input_grad: bool = True) -> np.ndarray:
        if self._p is None or self._t is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        g = self._p.copy()
        g[np.arange(len(self._t)), self._t] -= 1
        scale = 1.0 if grad is None else float(grad)
        return (g * (scale / len(self._t))).astype(self._p.dtype, copy=False)


@_doc(examples=_NN_EXAMPLES_DOC)
class MSELoss(Module):
    """Mean squared error (``torch.nn.MSELoss``): ``mean((input - target) ** 2)``.

    ``forward(input, target)`` needs equal shapes and returns a float (an array for
    ``'none'``). ``backward(grad=None)`` returns the gradient with respect to `input`,
    ``2 (input - target) / input.size`` for ``'mean'``, times `grad` (a number, or for
    ``'none'`` an array of the input's shape; default 1).

    Parameters
    ----------
    reduction : {'mean', 'sum', 'none'}, optional
        Average (default), sum, or the elementwise squared errors.

    [examples]
    >>> mse = nn.MSELoss()
    >>> mse.forward(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    2.0
    >>> mse.backward()
    array([ 0., -2.])
    """

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"MSELoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
            )
        self.reduction = reduction
        self._d: Optional[np.ndarray] = None

    def __call__(self, input: Any, target: Any) -> Union[float, np.ndarray]:  # type: ignore[override]
        return self.forward(input, target)

    def forward(self, input: Any, target: Any) -> Union[float, np.ndarray]:  # type: ignore[override]
        a, t = _float_input("MSELoss", input), np.asarray(target)
        if a.shape != t.shape:
            raise ValueError(
                f"MSELoss: input and target must have the same shape, got {a.shape} and {t.shape}"
            )
        d = a - t
        self._d = d
        sq = d * d
        if self.reduction == "none":
            return sq
        return float(sq.mean() if self.reduction == "mean" else sq.sum())

    def backward(self, grad: Any = None, input_grad: bool = True) -> np.ndarray:
        d: np.ndarray = self._need(self._d, "input")
        k = 2.0 / d.size if self.reduction == "mean" and d.size else 2.0
        if grad is None:
            return d * d.dtype.type(k)
        if self.reduction == "none":
            return self._check_grad(grad, d.shape) * d * k
        return d * d.dtype.type(k * float(grad))
