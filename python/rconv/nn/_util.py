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
from typing import TYPE_CHECKING, Any, Dict, Literal, Mapping, Optional, Tuple, Union

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


# ------------------------------------------------------- activations and losses (Rust kernels)
# float32/float64 run in Rust (flat C-contiguous arrays); other floating dtypes (float16,
# longdouble) keep their NumPy expressions. The layers and their functional forms share these.


def _native(a: np.ndarray) -> bool:
    return a.dtype is _nn._F32 or a.dtype is _nn._F64


def _same_native(g: np.ndarray, s: np.ndarray) -> bool:
    """Whether a gradient and the saved array can go to Rust together."""
    return g.dtype is s.dtype and _native(s)


def _flat(a: np.ndarray) -> np.ndarray:
    return _nn._c(a).reshape(-1)


def _leaky_relu(x: np.ndarray, slope: float) -> np.ndarray:
    """``x * (x > 0 ? 1 : slope)``, torch's expression, for a floating array `x`."""
    if _native(x):
        return _rconv.leaky_relu(_flat(x), slope).reshape(x.shape)
    out = x * x.dtype.type(slope)
    np.copyto(out, x, where=x > 0)
    return out


def _leaky_relu_grad(g: np.ndarray, s: np.ndarray, slope: float) -> np.ndarray:
    """The gradient for the output gradient `g` at `s`, the input (or the output, which is
    ``> 0`` at the same elements when `slope >= 0`)."""
    if _same_native(g, s):
        return _rconv.leaky_relu(_flat(s), slope, _flat(g)).reshape(g.shape)
    out = (g * slope).astype(np.result_type(g, s), copy=False)
    np.copyto(out, g, where=s > 0, casting="unsafe")
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` for a floating array `x`."""
    if _native(x):
        return _rconv.sigmoid(_flat(x)).reshape(x.shape)
    with np.errstate(over="ignore", under="ignore"):
        out = np.exp(-x)
    out += 1
    np.reciprocal(out, out=out)
    return out


def _sigmoid_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``g * (1 - y) * y`` (torch's order) from the output `y`."""
    if _same_native(g, y):
        return _rconv.sigmoid(_flat(y), _flat(g)).reshape(g.shape)
    return g * (1 - y) * y


def _tanh(x: np.ndarray) -> np.ndarray:
    if _native(x):
        return _rconv.tanh(_flat(x)).reshape(x.shape)
    return np.tanh(x)


def _tanh_grad(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``g * (1 - y * y)`` from the output `y`."""
    if _same_native(g, y):
        return _rconv.tanh(_flat(y), _flat(g)).reshape(g.shape)
    return g * (1 - y * y)


_I64 = np.dtype(np.int64)
_Reduction = Literal["mean", "sum", "none"]
_REDUCTIONS: Tuple[_Reduction, ...] = ("mean", "sum", "none")


def _reduction(func: str, reduction: Any) -> _Reduction:
    for r in _REDUCTIONS:
        if reduction == r and isinstance(reduction, str):
            return r
    raise ValueError(f"{func}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _cross_entropy(
    func: str, logits: Any, targets: Any
) -> Tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The mean cross-entropy of `logits` ``(N, C)`` and the class indices `targets`
    ``(N,)``: ``(loss, probabilities, targets as given, targets as int64)``; errors named
    after `func`."""
    logits = np.asarray(logits)
    t = np.asarray(targets)
    if logits.ndim != 2 or t.shape != (logits.shape[0],):
        raise ValueError(
            f"{func}: expected logits (N, C) and targets (N,), got {logits.shape} and {t.shape}"
        )
    c = logits.shape[1]
    if t.dtype.kind not in "iu":
        hint = " (convert them with targets.astype(np.int64))" if t.dtype.kind in "fb" else ""
        raise ValueError(
            f"{func}: targets must be integer class indices in [0, {c}) for the "
            f"{c} classes of the logits, got dtype {t.dtype}{hint}"
        )

    def out_of_range() -> ValueError:
        return ValueError(
            f"{func}: targets must be class indices in [0, {c}) for the {c} "
            f"classes of the logits, got values from {t.min()} to {t.max()}"
        )

    if _native(logits):
        # a uint64 index past int64 wraps to a negative one: refused all the same
        t64 = _nn._c(t, _I64)
        try:
            loss, p = _rconv.cross_entropy(_nn._c(logits), t64, name=func)
        except ValueError:
            if t.size and (t.min() < 0 or t.max() >= c):
                raise out_of_range() from None
            raise
        return loss, p, t, t64
    if t.size and (t.min() < 0 or t.max() >= c):
        raise out_of_range()
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(t)), t].mean()), np.exp(logp), t, _nn._c(t, _I64)


def _cross_entropy_grad(p: np.ndarray, t64: np.ndarray, scale: float) -> np.ndarray:
    """``(p - onehot(t)) * scale / N``, from the probabilities `p` of
    :func:`_cross_entropy`."""
    if _native(p):
        return _rconv.cross_entropy_backward(p, t64, scale)
    g = p.copy()
    g[np.arange(len(t64)), t64] -= 1
    return (g * (scale / len(t64))).astype(p.dtype, copy=False)


def _mse(
    func: str, input: Any, target: Any, reduction: _Reduction
) -> Tuple[Union[float, np.ndarray], np.ndarray]:
    """The squared errors of `input` and `target` reduced by `reduction`, and ``input -
    target`` (what the gradient needs)."""
    a, t = _float_input(func, input), np.asarray(target)
    if a.shape != t.shape:
        raise ValueError(
            f"{func}: input and target must have the same shape, got {a.shape} and {t.shape}"
        )
    dt = np.result_type(a, t)
    if dt is _nn._F32 or dt is _nn._F64:
        loss, d = _rconv.mse_loss(
            _nn._c(a, dt).reshape(-1), _nn._c(t, dt).reshape(-1), reduction, name=func
        )
        d = d.reshape(a.shape)
        return (np.asarray(loss).reshape(a.shape) if reduction == "none" else loss), d
    d = a - t
    sq = d * d
    if reduction == "none":
        return sq, d
    return float(sq.mean() if reduction == "mean" else sq.sum()), d


def _mse_grad(func: str, d: np.ndarray, reduction: _Reduction, grad: Any) -> np.ndarray:
    """The gradient of :func:`_mse` with respect to its input, from ``d = input - target``:
    ``2 d grad`` (divided by ``d.size`` for 'mean'); `grad` a number, or for 'none' an
    array of ``d.shape``, default 1."""
    if grad is not None and reduction == "none":
        g = np.asarray(grad)
        if g.shape != d.shape:
            raise ValueError(
                f"{func}: grad has shape {g.shape}, expected the forward output's {d.shape}"
            )
        if _same_native(g, d):
            return _rconv.mse_loss_backward(_flat(d), reduction, _flat(g)).reshape(d.shape)
        return g * d * 2.0
    if _native(d):
        k = None if grad is None else float(grad)
        return _rconv.mse_loss_backward(_flat(d), reduction, k).reshape(d.shape)
    k = 2.0 / d.size if reduction == "mean" and d.size else 2.0
    return d * d.dtype.type(k if grad is None else k * float(grad))
