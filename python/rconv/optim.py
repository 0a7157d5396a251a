"""Optimizers with torch.optim's names, defaults and update rules: :class:`SGD`,
:class:`Adam` and :class:`AdamW`.

An optimizer takes the :class:`rconv.nn.Module` whose parameters it updates (not a list of
parameters, as torch's do): each ``step()`` reads the model's ``params()`` and ``grads()``
and updates the parameters in place. ``rconv.nn.SGD``, ``rconv.nn.Adam`` and
``rconv.nn.AdamW`` are the same classes.

A step updates every float32 and float64 parameter in one compiled call (in parallel, the
GIL released), operation by operation as torch.optim's single-tensor CPU loop
(``foreach=False``) does, with its rounding; parameters of other dtypes are updated by
NumPy. A step that raises has changed no parameter and no state.

Examples
--------
>>> import numpy as np
>>> from rconv import nn, optim
>>> lin = nn.Linear(3, 1, rng=np.random.default_rng(0))
>>> opt = optim.SGD(lin, lr=0.1, momentum=0.9)
>>> _ = lin.backward(np.ones((2, 1)) + 0 * lin.forward(np.ones((2, 3), np.float32)))
>>> opt.step()
>>> sorted(opt.state)
['bias', 'weight']
"""

from __future__ import annotations

import copy
import types
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar

import numpy as np

from . import _rconv
from ._docs import _ADAM_DOC, _MODEL_DOC, _OPTIM_EXAMPLES_DOC, _doc
from ._nn import _c
from .nn._util import _int, _real
from .nn.module import Module

__all__ = ["SGD", "Adam", "AdamW"]

_C = TypeVar("_C", bound=type)

# The dtypes the compiled steps update (native byte order); parameters of any other dtype
# are updated by NumPy.
_FUSED = (np.dtype(np.float32), np.dtype(np.float64))

# A parameter of a compiled step: its name, the parameter, the C-contiguous array the
# compiled step updates (the parameter itself, or a copy written back after the step) and
# the gradient in the parameter's dtype, C-contiguous.
_Fused = Tuple[str, np.ndarray, np.ndarray, np.ndarray]

# The new state of a step by key, one entry per parameter.
_Out = Dict[str, List[Any]]


@_doc(examples=_OPTIM_EXAMPLES_DOC)
class _Optimizer:
    """What every optimizer shares: the model, its hyperparameters (``_hyper``, restored by
    ``load_state_dict``) and per-parameter state keyed by parameter name."""

    _hyper: Tuple[str, ...] = ("lr",)
    _state_keys: Tuple[str, ...] = ()

    def __init__(self, model: Module, **hyper: Any) -> None:
        if not isinstance(model, Module):
            raise TypeError(
                f"{type(self).__name__}: model must be an rconv.nn.Module, got "
                f"{type(model).__name__}"
            )
        self._validate(hyper)
        self.model = model
        for k, v in hyper.items():
            setattr(self, k, v)
        self.state: Dict[str, Dict[str, Any]] = {}

    def _validate(self, h: Dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def _name(self) -> str:
        """The name errors of ``step`` carry."""
        return f"{type(self).__name__}.step"

    def _gather(self) -> Tuple[List[str], List[np.ndarray], List[np.ndarray]]:
        """Check the hyperparameters, then return the names, parameters and gradients of
        the parameters that have a gradient (torch skips the others), in ``params()``
        order, every gradient checked against its parameter's shape."""
        self._validate({k: getattr(self, k) for k in self._hyper})
        names: List[str] = []
        params: List[np.ndarray] = []
        grads: List[np.ndarray] = []
        model = self.model
        kind = type(model)
        if kind.params is Module.params and kind.grads is Module.grads:
            # one walk of the model instead of two (what params() and grads() collect)
            for prefix, m in model.named_modules():
                for n in m._param_names:
                    p = getattr(m, n, None)
                    g = getattr(m, f"grad_{n}", None)
                    if p is not None and g is not None:
                        names.append(f"{prefix}.{n}" if prefix else n)
                        params.append(p)
                        grads.append(g)
        else:
            gs = model.grads()
            for name, p in model.params().items():
                g = gs.get(name)
                if g is not None:
                    names.append(name)
                    params.append(p)
                    grads.append(g)
        for name, p, g in zip(names, params, grads):
            if g.shape != p.shape:
                raise RuntimeError(
                    f"{type(self).__name__}.step: gradient of {name!r} has shape {g.shape}, "
                    f"the parameter {p.shape}"
                )
        return names, params, grads

    def _run(
        self,
        keys: Tuple[str, ...],
        compiled: Callable[[List[str], List[np.ndarray], List[np.ndarray], List[list]], _Out],
        numpy_update: Callable[[str, np.ndarray, np.ndarray], Tuple[np.ndarray, Dict[str, Any]]],
    ) -> None:
        """One step: ``compiled(names, params, grads, states)`` updates float32/float64
        parameters in place in one compiled call (``states``: for each of `keys`, the
        parameters' state arrays, None where absent) and returns the new state by key (one
        list per key); ``numpy_update(name, p, g)`` computes a parameter of another dtype
        without writing and returns it with its new state.

        The compiled call checks every array before it writes any, so a call that raises
        has changed nothing. The arrays go to it as they are when they are already in its
        form (the usual case); if it refuses them, they are prepared (converted copies) and
        it runs again. Either way the step updates every parameter and commits the new
        state, or raises having changed neither."""
        names, params, grads = self._gather()
        if not names:
            return
        states = [[self.state.get(n, {}).get(k) for n in names] for k in keys]
        try:
            out = compiled(names, params, grads, states)
        except (TypeError, ValueError):
            pass  # not in the compiled step's form: prepared below
        else:
            self._commit(names, out)
            return
        fused, other = self._prepare(names, params, grads)
        # NumPy's updates are computed into new arrays first: an error there changes nothing
        slow = [(name, p, *numpy_update(name, p, g)) for name, p, g in other]
        if fused:
            names = [f[0] for f in fused]
            works = [f[2] for f in fused]
            states = [
                [self._state_array(name, k, w) for name, w in zip(names, works)] for k in keys
            ]
            out = compiled(names, works, [f[3] for f in fused], states)
            for _, p, work, _ in fused:
                if work is not p:
                    p[...] = work  # a parameter the compiled step could not update in place
            self._commit(names, out)
        for name, p, new_p, st in slow:
            p[...] = new_p
            self._commit([name], {k: [v] for k, v in st.items()})

    def _prepare(
        self, names: List[str], params: List[np.ndarray], grads: List[np.ndarray]
    ) -> Tuple[List[_Fused], List[Tuple[str, np.ndarray, np.ndarray]]]:
        """The parameters in the compiled step's form (float32/float64: C-contiguous
        arrays and gradients of the parameter's dtype, converted copies where needed) and
        the others (NumPy's). The caller's arrays are never modified."""
        fused: List[_Fused] = []
        other: List[Tuple[str, np.ndarray, np.ndarray]] = []
        for name, p, g in zip(names, params, grads):
            if not p.flags.writeable:
                raise ValueError(f"{type(self).__name__}.step: parameter {name!r} is read-only")
            if p.dtype not in _FUSED:
                other.append((name, p, g))
                continue
            work = _c(p)
            g = _c(np.asarray(g), p.dtype)
            if np.may_share_memory(g, work):
                g = g.copy()  # the compiled step refuses a gradient inside what it writes
            fused.append((name, p, work, g))
        return fused, other

    def _state_array(self, name: str, key: str, work: np.ndarray) -> Optional[np.ndarray]:
        """The state `key` of parameter `name` in the compiled step's form (C-contiguous,
        of the parameter's dtype; a converted copy if needed), or None if absent."""
        a = self.state.get(name, {}).get(key)
        return None if a is None else _c(np.asarray(a), work.dtype)

    def _commit(self, names: List[str], out: _Out) -> None:
        """Store the new state: ``out[key][i]`` of parameter ``names[i]`` (no entry for a
        parameter without state, as SGD's without momentum)."""
        if not out:
            return
        for i, name in enumerate(names):
            st = self.state.setdefault(name, {})
            for k, values in out.items():
                st[k] = values[i]

    def state_dict(self) -> Dict[str, Any]:
        """Return the hyperparameters and a copy of the per-parameter state.

        Returns
        -------
        state : dict
            The hyperparameters by name (``"lr"``, ...) and ``"state"``, the per-parameter
            state keyed by parameter name (copied), for ``load_state_dict`` to resume a
            run.

        [examples]
        >>> lin = nn.Linear(2, 1, rng=np.random.default_rng(0))
        >>> opt = optim.SGD(lin, lr=0.1, momentum=0.9)
        >>> _ = lin.backward(np.ones((1, 1)) + 0 * lin.forward(np.ones((1, 2))))
        >>> opt.step()
        >>> sd = opt.state_dict()
        >>> sd["lr"], sorted(sd["state"]), sorted(sd["state"]["weight"])
        (0.1, ['bias', 'weight'], ['momentum_buffer'])
        """
        return {
            **{k: getattr(self, k) for k in self._hyper},
            "state": copy.deepcopy(self.state),
        }

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore the hyperparameters and per-parameter state that ``state_dict`` returned.

        The arrays are copied and cast to the parameters' dtypes. On any error nothing is
        changed.

        Parameters
        ----------
        state_dict : mapping
            What ``state_dict`` returned, possibly from another optimizer of the same kind
            over the same model (or a model with the same parameter names and shapes).

        Raises
        ------
        KeyError
            A missing or unknown key, or state for an unknown parameter.
        ValueError
            A wrong hyperparameter value or a state array of the wrong shape.

        [examples]
        >>> lin = nn.Linear(2, 1, rng=np.random.default_rng(0))
        >>> opt = optim.Adam(lin, lr=0.01)
        >>> _ = lin.backward(np.ones((1, 1)) + 0 * lin.forward(np.ones((1, 2))))
        >>> opt.step()
        >>> resumed = optim.Adam(lin)
        >>> resumed.load_state_dict(opt.state_dict())
        >>> resumed.lr, resumed.state["weight"]["step"]
        (0.01, 1)
        """
        name = type(self).__name__
        want = set(self._hyper) | {"state"}
        got = set(state_dict.keys())
        if want != got:
            raise KeyError(
                f"{name}.load_state_dict: missing keys {sorted(want - got)}, unexpected keys "
                f"{sorted(got - want)}"
            )
        hyper = {k: state_dict[k] for k in self._hyper}
        self._validate(hyper)
        params = self.model.params()
        new: Dict[str, Dict[str, Any]] = {}
        for pname, st in dict(state_dict["state"]).items():
            if pname not in params:
                raise KeyError(f"{name}.load_state_dict: state for unknown parameter {pname!r}")
            p = params[pname]
            bad = set(st) - set(self._state_keys)
            if bad:
                raise KeyError(f"{name}.load_state_dict: unexpected state {sorted(bad)}")
            new[pname] = {}
            for k, v in st.items():
                if k == "step":
                    step = _int(name, "step", v)
                    if step < 0:
                        raise ValueError(
                            f"{name}.load_state_dict: {pname!r} step must be >= 0, got {step}"
                        )
                    new[pname][k] = step
                    continue
                a = np.asarray(v)
                if a.shape != p.shape:
                    raise ValueError(
                        f"{name}.load_state_dict: {pname!r} {k} has shape {a.shape}, the "
                        f"parameter {p.shape}"
                    )
                new[pname][k] = a.astype(p.dtype, copy=True)
        for k, v in hyper.items():
            setattr(self, k, v)
        self.state = new


def _defaults(**defaults: Any) -> Callable[[_C], _C]:
    """Give the decorated class its base class's constructor (the same code and types) with
    other defaults for the parameters named."""

    def apply(cls: _C) -> _C:
        klass: Any = cls
        init = klass.__init__
        code = init.__code__
        names = code.co_varnames[: code.co_argcount]
        old = init.__defaults__ or ()
        named = names[len(names) - len(old) :]
        if set(defaults) - set(named):
            raise TypeError(f"{cls.__name__}: no parameter with a default among {defaults}")
        new = tuple(defaults.get(n, d) for n, d in zip(named, old))
        own = types.FunctionType(code, init.__globals__, "__init__", new, init.__closure__)
        own.__kwdefaults__, own.__annotations__ = init.__kwdefaults__, dict(init.__annotations__)
        own.__module__, own.__qualname__ = cls.__module__, f"{cls.__qualname__}.__init__"
        klass.__init__ = own
        return cls

    return apply


def _check_lr(name: str, lr: Any, strict: bool) -> float:
    lr = _real(name, "lr", lr)
    if lr < 0 or (strict and lr == 0):
        raise ValueError(f"{name}: lr must be {'> 0' if strict else '>= 0'}, got {lr}")
    return lr


@_doc(examples=_OPTIM_EXAMPLES_DOC, model=_MODEL_DOC)
class SGD(_Optimizer):
    """Stochastic gradient descent (``torch.optim.SGD``), in place.

    With ``g = grad + weight_decay * p``: ``b = g`` on the first step, then
    ``b = momentum * b + (1 - dampening) * g``; the step direction is ``b``, or
    ``g + momentum * b`` with `nesterov`; ``p -= lr * direction``.

    Parameters
    ----------
    [model]
    lr : float
        Learning rate, > 0 (a mutable attribute ``.lr``).
    momentum : float, optional
        Default 0.
    weight_decay : float, optional
        L2 penalty, default 0.
    dampening : float, optional
        Keyword-only, default 0.
    nesterov : bool, optional
        Keyword-only, default False; needs ``momentum > 0`` and ``dampening == 0``.

    [examples]
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[2.0]])
    >>> optim.SGD(lin, lr=0.1).step()
    >>> lin.weight
    array([[0.8]])
    """

    _hyper = ("lr", "momentum", "weight_decay", "dampening", "nesterov")
    _state_keys = ("momentum_buffer",)
    # the hyperparameters, set by _Optimizer.__init__ (and load_state_dict)
    lr: float
    momentum: float
    weight_decay: float
    dampening: float
    nesterov: bool

    def __init__(
        self,
        model: Module,
        lr: float,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        *,
        dampening: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(
            model,
            lr=lr,
            momentum=momentum,
            weight_decay=weight_decay,
            dampening=dampening,
            nesterov=nesterov,
        )

    def _validate(self, h: Dict[str, Any]) -> None:
        _check_lr("SGD", h["lr"], strict=True)
        for k in ("momentum", "weight_decay", "dampening"):
            if _real("SGD", k, h[k]) < 0:
                raise ValueError(f"SGD: {k} must be >= 0, got {h[k]}")
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening == 0")

    def step(self) -> None:
        """Update every parameter that has a gradient, in place, once.

        Parameters without a gradient (``None``) are left alone.

        [examples]
        >>> lin = nn.Linear(2, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
        >>> lin.weight[:] = 1.0
        >>> opt = optim.SGD(lin, lr=0.5, momentum=0.9)
        >>> for _ in range(2):
        ...     lin.grad_weight = np.array([[1.0, -1.0]])
        ...     opt.step()
        >>> lin.weight  # 1 - 0.5 * 1, then - 0.5 * (0.9 * 1 + 1)
        array([[-0.45,  2.45]])
        """
        lr, mu, wd = float(self.lr), float(self.momentum), float(self.weight_decay)
        damp, nesterov = float(self.dampening), bool(self.nesterov)

        def compiled(names: List[str], ps: list, gs: list, states: List[list]) -> _Out:
            bufs = _rconv.sgd_step(
                ps, gs, states[0] if mu else None, lr, mu, damp, wd, nesterov, self._name
            )
            return {} if bufs is None else {"momentum_buffer": bufs}

        self._run(("momentum_buffer",) if mu else (), compiled, self._numpy_update)

    def _numpy_update(
        self, name: str, p: np.ndarray, g: np.ndarray
    ) -> Tuple[np.ndarray, Dict[str, Any]]:
        """The new value of a parameter of a dtype the compiled step does not take, and its
        new state, computed without writing."""
        lr, mu, wd = float(self.lr), float(self.momentum), float(self.weight_decay)
        t = p.dtype.type
        new_p = np.array(p, copy=True)
        d = g + new_p * t(wd) if wd else g
        if not mu:
            new_p -= d * t(lr)
            return new_p, {}
        old = self.state.get(name, {}).get("momentum_buffer")
        if old is None:
            buf = np.array(d, dtype=p.dtype, copy=True)
        else:
            buf = np.array(old, dtype=p.dtype, copy=True)
            buf *= t(mu)
            buf += d * t(1.0 - self.dampening)
        d = d + buf * t(mu) if self.nesterov else buf
        new_p -= d * t(lr)
        return new_p, {"momentum_buffer": buf}


@_doc(examples=_OPTIM_EXAMPLES_DOC, model=_MODEL_DOC, adam=_ADAM_DOC)
class Adam(_Optimizer):
    """Adam (``torch.optim.Adam``, without amsgrad), in place.

    With ``g = grad + weight_decay * p`` (L2): ``m = b1 m + (1 - b1) g``,
    ``v = b2 v + (1 - b2) g^2``, and at step ``t``
    ``p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)``.

    Parameters
    ----------
    [model]
    [adam]
    weight_decay : float, optional
        L2 penalty added to the gradient, default 0.

    [examples]
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[2.0]])
    >>> opt = optim.Adam(lin, lr=0.1)
    >>> opt.step()  # the first step moves each parameter by about lr
    >>> lin.weight.round(6)
    array([[0.9]])
    """

    _hyper = ("lr", "betas", "eps", "weight_decay")
    _state_keys = ("step", "exp_avg", "exp_avg_sq")
    _decoupled = False
    # the hyperparameters, set by _Optimizer.__init__ (and load_state_dict)
    lr: float
    betas: Tuple[float, float]
    eps: float
    weight_decay: float

    def __init__(
        self,
        model: Module,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        b1, b2 = betas  # a pair: checked by _validate
        self.betas = (float(b1), float(b2))

    def _validate(self, h: Dict[str, Any]) -> None:
        name = type(self).__name__
        _check_lr(name, h["lr"], strict=False)
        try:
            b1, b2 = h["betas"]
        except (TypeError, ValueError) as e:
            raise ValueError(f"{name}: betas must be a pair of floats, got {h['betas']!r}") from e
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= _real(name, "betas", b) < 1.0:
                raise ValueError(f"{name}: betas[{i}] must be in [0, 1), got {b}")
        for k in ("eps", "weight_decay"):
            if _real(name, k, h[k]) < 0:
                raise ValueError(f"{name}: {k} must be >= 0, got {h[k]}")

    def step(self) -> None:
        """Update every parameter that has a gradient, in place, once.

        Parameters without a gradient (``None``) are left alone.

        Examples
        --------
        The first Adam step moves each parameter by about `lr` against its gradient's sign:

        >>> import numpy as np
        >>> from rconv import nn, optim
        >>> lin = nn.Linear(2, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
        >>> lin.weight[:] = 1.0
        >>> lin.grad_weight = np.array([[3.0, -0.5]])
        >>> optim.Adam(lin, lr=0.1).step()
        >>> lin.weight.round(6)
        array([[0.9, 1.1]])
        """
        lr, wd, eps = float(self.lr), float(self.weight_decay), float(self.eps)
        b1, b2 = (float(b) for b in self.betas)
        decoupled = self._decoupled

        def compiled(names: List[str], ps: list, gs: list, states: List[list]) -> _Out:
            steps = [int(self.state.get(n, {}).get("step", 0)) + 1 for n in names]
            ms, vs = states
            m, v = _rconv.adam_step(
                ps, gs, ms, vs, steps, lr, b1, b2, eps, wd, decoupled, self._name
            )
            return {"step": steps, "exp_avg": m, "exp_avg_sq": v}

        self._run(("exp_avg", "exp_avg_sq"), compiled, self._numpy_update)

    def _numpy_update(
        self, name: str, p: np.ndarray, g: np.ndarray
    ) -> Tuple[np.ndarray, Dict[str, Any]]:
        """The new value of a parameter of a dtype the compiled step does not take, and its
        new state, computed without writing (torch's operations)."""
        lr, wd, eps = float(self.lr), float(self.weight_decay), float(self.eps)
        b1, b2 = (float(b) for b in self.betas)
        t = p.dtype.type
        new_p = np.array(p, copy=True)
        if wd:
            if self._decoupled:
                new_p *= t(1.0 - lr * wd)
            else:
                g = g + new_p * t(wd)
        st = self.state.get(name, {})
        k = int(st.get("step", 0)) + 1
        m, v = (
            np.zeros(p.shape, p.dtype) if a is None else np.array(a, dtype=p.dtype, copy=True)
            for a in (st.get("exp_avg"), st.get("exp_avg_sq"))
        )
        w = t(1.0 - b1)  # exp_avg.lerp_(grad, 1 - beta1)
        m = m + w * (g - m) if abs(w) < 0.5 else g - (g - m) * (t(1) - w)
        v *= t(b2)  # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        v += (t(1.0 - b2) * g) * g
        step_size = lr / (1.0 - b1**k)
        denom = np.sqrt(v) / t((1.0 - b2**k) ** 0.5) + t(eps)
        new_p += (t(-step_size) * m) / denom
        return new_p, {"step": k, "exp_avg": m.astype(p.dtype, copy=False), "exp_avg_sq": v}


@_defaults(weight_decay=1e-2)
@_doc(examples=_OPTIM_EXAMPLES_DOC, model=_MODEL_DOC, adam=_ADAM_DOC)
class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``): Adam with decoupled weight decay.

    Before each update of :class:`Adam`, every parameter is scaled:
    ``p *= 1 - lr * weight_decay``.

    Parameters
    ----------
    [model]
    [adam]
    weight_decay : float, optional
        Decoupled weight decay, default 1e-2.

    [examples]
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[0.0]])
    >>> optim.AdamW(lin, lr=0.1, weight_decay=0.5).step()  # zero gradient: only the decay
    >>> lin.weight
    array([[0.95]])
    """

    _decoupled = True
