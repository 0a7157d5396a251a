"""Private helpers shared by the layer modules of :mod:`rconv.nn` (argument checks, torch's
default initialisation, and the ``backward(grad, input_grad=False)`` dispatch of containers).

The only module of the package whose underscore names the other modules use.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import TYPE_CHECKING, Any, Dict

import numpy as np

from .. import _nn

if TYPE_CHECKING:
    from .module import Module


def _layer_dtype(layer: str, dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype!r}") from e
    if dt not in (_nn._F32, _nn._F64):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dt}")
    return dt


def _float_input(layer: str, x: Any) -> np.ndarray:
    a = np.asarray(x)
    if a.dtype.kind != "f":
        raise TypeError(f"{layer}: input must be a floating-point array, got dtype {a.dtype}")
    return a


def _real(layer: str, name: str, v: Any) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{layer}: {name} must be a real number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{layer}: {name} must be finite, got {v!r}")
    return f


def _kaiming_uniform(rng, shape, fan_in, dtype):
    # torch.nn default: kaiming_uniform_(a=sqrt(5)) -> bound = sqrt(6 / ((1 + 5) fan_in))
    bound = math.sqrt(6.0 / (6.0 * fan_in)) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


_ACCEPTS_INPUT_GRAD: Dict[type, bool] = {}


def _backward(layer: Module, grad, input_grad: bool):
    """``layer.backward(grad, input_grad=False)`` where the layer takes the keyword (a user
    Module may define ``backward(grad)`` only)."""
    if input_grad:
        return layer.backward(grad)
    t = type(layer)
    ok = _ACCEPTS_INPUT_GRAD.get(t)
    if ok is None:
        try:
            ok = "input_grad" in inspect.signature(layer.backward).parameters
        except (TypeError, ValueError):
            ok = False
        _ACCEPTS_INPUT_GRAD[t] = ok
    if ok:
        return layer.backward(grad, input_grad=False)
    layer.backward(grad)
    return None
