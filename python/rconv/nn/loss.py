"""Loss functions: :class:`CrossEntropyLoss` and :class:`MSELoss` (``torch.nn.CrossEntropyLoss``,
``torch.nn.MSELoss``)."""

from __future__ import annotations

from typing import Any, Optional, Union

import numpy as np

from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _cross_entropy, _cross_entropy_grad, _mse, _mse_grad, _reduction
from .module import Module

__all__ = ["CrossEntropyLoss", "MSELoss"]


@_doc(examples=_NN_EXAMPLES_DOC)
class CrossEntropyLoss(Module):
    """Softmax and negative log-likelihood, averaged over the batch.

    As ``torch.nn.CrossEntropyLoss`` with its defaults.

    ``forward(logits, targets)`` takes ``(N, classes)`` scores and ``(N,)`` integer labels
    and returns the mean loss; ``backward()`` returns its gradient with respect to the logits,
    ``(softmax(logits) - onehot(targets)) / N``.

    float32/float64 logits run as parallel Rust kernels (torch's log-softmax: the row
    maximum, then the log of the sum of exponentials, each in the logits' dtype; the mean
    over the batch summed in float64, rounded to the dtype); other dtypes through NumPy.
    The forward pass saves the softmax probabilities for backward.

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
        self._t64: Optional[np.ndarray] = None

    def __call__(self, logits: Any, targets: Any) -> float:  # type: ignore[override]
        return self.forward(logits, targets)

    def forward(self, logits: Any, targets: Any) -> float:  # type: ignore[override]
        loss, self._p, self._t, self._t64 = _cross_entropy("CrossEntropyLoss", logits, targets)
        return loss

    def backward(self, grad: Any = None, input_grad: bool = True) -> np.ndarray:
        if self._p is None or self._t64 is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        scale = 1.0 if grad is None else float(grad)
        return _cross_entropy_grad(self._p, self._t64, scale)


@_doc(examples=_NN_EXAMPLES_DOC)
class MSELoss(Module):
    """Mean squared error (``torch.nn.MSELoss``): ``mean((input - target) ** 2)``.

    ``forward(input, target)`` needs equal shapes and returns a float (an array for
    ``'none'``). ``backward(grad=None)`` returns the gradient with respect to `input`,
    ``2 (input - target) / input.size`` for ``'mean'``, times `grad` (a number, or for
    ``'none'`` an array of the input's shape; default 1).

    float32/float64 run as parallel Rust kernels (one pass each way: the forward pass
    saves ``input - target``, its squares summed in float64); other floating dtypes
    through NumPy.

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
        self.reduction = _reduction("MSELoss", reduction)
        self._d: Optional[np.ndarray] = None

    def __call__(self, input: Any, target: Any) -> Union[float, np.ndarray]:  # type: ignore[override]
        return self.forward(input, target)

    def forward(self, input: Any, target: Any) -> Union[float, np.ndarray]:  # type: ignore[override]
        loss, self._d = _mse("MSELoss", input, target, self.reduction)
        return loss

    def backward(self, grad: Any = None, input_grad: bool = True) -> np.ndarray:
        d: np.ndarray = self._need(self._d, "input")
        return _mse_grad("MSELoss.backward", d, self.reduction, grad)
