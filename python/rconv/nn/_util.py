"""Private helpers shared by the layer modules of :mod:`rconv.nn` (argument checks, a layer's
options from its arguments, torch's default initialisation, the forward pass that Linear and
functional.linear share, and the ``backward(grad, input_grad=False)`` dispatch of
containers).

The only module of the package whose underscore names the other modules use.
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Tuple

import numpy as np

from .. import _nn, _rconv

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


def _int(layer: str, name: str, v: Any) -> int:
    """An int argument of a Python-side class (not bool; NumPy integers accepted)."""
    if type(v) is int:
        return v
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{layer}: {name} must be an int, got {v!r}")
    return int(v)


def _real(layer: str, name: str, v: Any) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{layer}: {name} must be a real number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise ValueError(f"{layer}: {name} must be finite, got {v!r}")
    return f


def _shown_pair(v: Any) -> Tuple[int, int]:
    """An int-or-pair argument, already validated, as the pair of ints that torch's layers
    store and print (``stride=(1, 1)``)."""
    vals = tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    if len(vals) == 1:
        vals = vals * 2
    return int(vals[0]), int(vals[1])


def _arguments(scope: Mapping[str, Any], *names: str) -> Dict[str, Any]:
    """A constructor's arguments by name, from its ``locals()``: the `names`, or all but
    ``self`` (the options a layer keeps in ``conf`` and passes to its functional form)."""
    return (
        {k: scope[k] for k in names} if names else {k: v for k, v in scope.items() if k != "self"}
    )


def _kaiming_uniform(
    rng: np.random.Generator, shape: Tuple[int, ...], fan_in: int, dtype: np.dtype
) -> np.ndarray:
    # torch.nn default: kaiming_uniform_(a=sqrt(5)) -> bound = sqrt(6 / ((1 + 5) fan_in))
    bound = math.sqrt(6.0 / (6.0 * fan_in)) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


# One GEMM over the whole batch in rconv's Rust (rconv.nn never calls NumPy's matmul: it
# wakes OpenBLAS's thread pool, whose spinning threads then slow the next layers; measured:
# a conv backward right after a Linear-sized matmul took 1.5x as long on 2 cores). Inputs of
# any number of leading axes are flattened to (-1, in_features).


def _linear_rows(
    func: str, x: Any, weight: np.ndarray, bias: Optional[np.ndarray]
) -> Tuple[np.ndarray, np.ndarray, np.dtype]:
    """The float input, its (-1, in_features) C-contiguous rows in the computing dtype, and
    that dtype (float64 if any of input, weight and bias is)."""
    x = _nn._float_array(func, "input", x)
    k = weight.shape[1]
    if x.ndim == 0 or x.shape[-1] != k:
        raise ValueError(
            f"{func}: input must have {k} features in its last axis, got shape {x.shape}"
        )
    dt = _nn._common(x, weight, bias)
    return x, _nn._c(x.reshape(-1, k), dt), dt


def _linear_out(
    x: np.ndarray, x2: np.ndarray, dt: np.dtype, weight: np.ndarray, bias: Optional[np.ndarray]
) -> np.ndarray:
    """``x @ weight.T + bias`` from what _linear_rows returned, in x's leading shape."""
    b = None if bias is None else _nn._c(bias, dt)
    y = _rconv.linear(x2, _nn._c(weight, dt), b)
    return y.reshape(x.shape[:-1] + (weight.shape[0],))


_ACCEPTS_INPUT_GRAD: Dict[type, bool] = {}


def _backward(layer: Module, grad: np.ndarray, input_grad: bool) -> Optional[np.ndarray]:
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
