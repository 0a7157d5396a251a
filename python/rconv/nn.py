"""A small layer API for training CNNs from scratch with NumPy and rconv, with torch.nn's
names, shapes, defaults and semantics.

Each layer has ``forward(x)`` and ``backward(grad, input_grad=True)``; backward returns the
gradient with respect to the layer's input (``None`` when ``input_grad=False``) and stores
the parameter gradients, which :meth:`Module.grads` returns. **Each backward replaces the
gradients of the previous one** (there is no accumulation and so no ``zero_grad``).

Parameters are initialised as ``torch.nn`` does by default (Kaiming-uniform weights with
``a = sqrt(5)``, uniform biases), from a seedable ``numpy.random.Generator`` passed as
``rng=``. Layers with parameters or buffers take ``dtype=`` (float32, the default, or
float64); parameter-free layers follow their input's dtype.

Modules are found as torch finds them: a :class:`Module` subclass that holds layers as
attributes (or in lists, tuples or dicts of layers) gets ``params()``, ``buffers()``,
``grads()``, ``train()``/``eval()`` and ``state_dict()`` through them, with torch's dotted
names (``"block.conv1.weight"``, ``"layers.0.bias"``). :class:`Sequential` names its layers
``"0"``, ``"1"``, ... as torch does.

Examples
--------
>>> import numpy as np
>>> from rconv import nn
>>> rng = np.random.default_rng(0)
>>> net = nn.Sequential(
...     nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
...     nn.Flatten(), nn.Linear(4 * 4 * 4, 10, rng=rng))
>>> x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
>>> loss_fn = nn.CrossEntropyLoss()
>>> loss = loss_fn.forward(net.forward(x), np.array([3, 7]))
>>> _ = net.backward(loss_fn.backward(), input_grad=False)
>>> sorted(net.params())[:2], net.params()["0.weight"].shape
(['0.bias', '0.weight'], (4, 1, 3, 3))
>>> opt = nn.SGD(net, lr=0.1, momentum=0.9)
>>> opt.step()
"""

from __future__ import annotations

import copy
import inspect
import math
import numbers
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from . import _nn, _rconv
from ._signal import _doc

__all__ = [
    "AdaptiveAvgPool2d",
    "Adam",
    "AdamW",
    "AvgPool2d",
    "BatchNorm2d",
    "Conv2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ReLU",
    "SGD",
    "Sequential",
    "Sigmoid",
    "Tanh",
]

Arrays = Dict[str, np.ndarray]


# ------------------------------------------------------------------------------- Module


class Module:
    """Base class of every layer and of user models.

    A subclass defines ``forward(x)`` and ``backward(grad, input_grad=True)``. Layers it
    holds as attributes, or in lists, tuples or dicts of layers, are its children: their
    parameters, buffers and gradients appear under dotted names, and ``train()``/``eval()``
    reach them. A leaf layer lists its own arrays in the class attributes ``_param_names``
    (trainable, with the gradient in ``grad_<name>``) and ``_buffer_names``; an entry whose
    attribute is ``None`` is absent.

    Examples
    --------
    A residual block written as a Module (``y = relu(x + conv2(relu(conv1(x))))``):

    >>> import numpy as np
    >>> from rconv import nn
    >>> class Residual(nn.Module):
    ...     def __init__(self, c, rng):
    ...         self.conv1 = nn.Conv2d(c, c, 3, padding=1, rng=rng)
    ...         self.relu1 = nn.ReLU()
    ...         self.conv2 = nn.Conv2d(c, c, 3, padding=1, rng=rng)
    ...         self.relu2 = nn.ReLU()
    ...     def forward(self, x):
    ...         return self.relu2.forward(x + self.conv2.forward(self.relu1.forward(
    ...             self.conv1.forward(x))))
    ...     def backward(self, grad, input_grad=True):
    ...         g = self.relu2.backward(grad)
    ...         return g + self.conv1.backward(self.relu1.backward(self.conv2.backward(g)))
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, rng=np.random.default_rng(0)),
    ...                     Residual(4, np.random.default_rng(1)))
    >>> list(net.params())
    ['0.weight', '0.bias', '1.conv1.weight', '1.conv1.bias', '1.conv2.weight', '1.conv2.bias']
    >>> y = net.forward(np.ones((2, 1, 6, 6), np.float32))
    >>> net.backward(np.ones_like(y)).shape, net.grads()["1.conv2.weight"].shape
    ((2, 1, 6, 6), (4, 4, 3, 3))
    >>> net.eval().training, net[1].conv1.training
    (False, False)
    """

    training: bool = True
    _param_names: Tuple[str, ...] = ()
    _buffer_names: Tuple[str, ...] = ()

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Compute the layer's output for `x`, saving what backward needs.

        Parameters
        ----------
        x : numpy.ndarray
            The input batch.

        Returns
        -------
        y : numpy.ndarray
            The output.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> nn.ReLU().forward(np.array([-1.0, 2.0]))
        array([0., 2.])
        """
        raise NotImplementedError(f"{type(self).__name__}.forward is not defined")

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        """Compute the gradients of the last forward, given the gradient of its output.

        The parameter gradients are stored (see :meth:`Module.grads`), replacing the previous
        ones.

        Parameters
        ----------
        grad : numpy.ndarray
            Gradient with respect to the last forward's output, of its shape.
        input_grad : bool, optional
            Compute the gradient with respect to the input (default True); False skips
            that work where the input gradient is not needed (a network's first layer).

        Returns
        -------
        grad_input : numpy.ndarray or None
            Gradient with respect to the last forward's input; None when `input_grad` is
            false.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> relu = nn.ReLU()
        >>> _ = relu.forward(np.array([-1.0, 2.0]))
        >>> relu.backward(np.array([5.0, 5.0]))
        array([0., 5.])
        """
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- the module tree ------------------------------------------------------------------

    def children(self) -> Iterator[Tuple[str, Module]]:
        """Iterate over the direct children, in the order they were assigned.

        Yields
        ------
        name : str
            The attribute's name, with the index or key for lists, tuples and dicts
            (``"layers.0"``).
        module : Module
            The child.

        Examples
        --------
        >>> from rconv import nn
        >>> [name for name, _ in nn.Sequential(nn.ReLU(), nn.Tanh()).children()]
        ['0', '1']
        """
        for name, v in vars(self).items():
            if isinstance(v, Module):
                yield name, v
            elif isinstance(v, (list, tuple)):
                for i, m in enumerate(v):
                    if isinstance(m, Module):
                        yield f"{name}.{i}", m
            elif isinstance(v, dict):
                for k, m in v.items():
                    if isinstance(m, Module):
                        yield f"{name}.{k}", m

    def named_modules(self) -> Iterator[Tuple[str, Module]]:
        """Iterate over this module and every module below it, parents before children.

        A module reached twice is listed once, as in torch.

        Yields
        ------
        name : str
            The dotted name (``""`` for this module, ``"1.conv1"`` below it).
        module : Module
            The module.

        Examples
        --------
        >>> from rconv import nn
        >>> [name for name, _ in nn.Sequential(nn.ReLU(), nn.Sequential(nn.Tanh())).named_modules()]
        ['', '0', '1', '1.0']
        """
        seen = set()
        stack: List[Tuple[str, Module]] = [("", self)]
        while stack:
            prefix, m = stack.pop()
            if id(m) in seen:
                continue
            seen.add(id(m))
            yield prefix, m
            kids = [(f"{prefix}.{n}" if prefix else n, c) for n, c in m.children()]
            stack.extend(reversed(kids))

    def _collect(self, what: str) -> Arrays:
        out: Arrays = {}
        for prefix, m in self.named_modules():
            p = f"{prefix}." if prefix else ""
            names = m._buffer_names if what == "buffers" else m._param_names
            for n in names:
                if getattr(m, n, None) is None:
                    continue
                key = f"grad_{n}" if what == "grads" else n
                out[p + n] = getattr(m, key, None)
        return out

    def params(self) -> Arrays:
        """Return the trainable parameters by torch name.

        Returns
        -------
        params : dict of str to numpy.ndarray
            The live arrays, not copies: the optimizers update them in place.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> net = nn.Sequential(nn.Linear(3, 2, rng=np.random.default_rng(0)), nn.ReLU())
        >>> {k: v.shape for k, v in net.params().items()}
        {'0.weight': (2, 3), '0.bias': (2,)}
        """
        return self._collect("params")

    def buffers(self) -> Arrays:
        """Return the non-trainable state (running statistics) by torch name.

        Returns
        -------
        buffers : dict of str to numpy.ndarray
            The live arrays; the optimizers leave them alone.

        Examples
        --------
        >>> from rconv import nn
        >>> list(nn.Sequential(nn.BatchNorm2d(2)).buffers())
        ['0.running_mean', '0.running_var', '0.num_batches_tracked']
        """
        return self._collect("buffers")

    def grads(self) -> Arrays:
        """Return the gradients of the last backward pass.

        Returns
        -------
        grads : dict of str to numpy.ndarray
            One gradient per parameter, with the keys of :meth:`params`.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> lin = nn.Linear(3, 2, rng=np.random.default_rng(0))
        >>> _ = lin.backward(np.ones((4, 2)) + 0 * lin.forward(np.ones((4, 3))))
        >>> lin.grads()["bias"]
        array([4., 4.], dtype=float32)
        """
        return self._collect("grads")

    def train(self, mode: bool = True) -> Module:
        """Set training or evaluation mode on this module and every module below it.

        Parameters
        ----------
        mode : bool, optional
            True (the default) for training mode, False for evaluation mode.

        Returns
        -------
        self : Module
            This module.

        Examples
        --------
        >>> from rconv import nn
        >>> net = nn.Sequential(nn.Dropout(0.5))
        >>> net.train(False)[0].training, net.train()[0].training
        (False, True)
        """
        for _, m in self.named_modules():
            m.training = bool(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode, ``train(False)``, on this module and every module below it.

        In evaluation mode BatchNorm uses its running statistics and Dropout is the
        identity.

        Returns
        -------
        self : Module
            This module.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> drop = nn.Dropout(0.5).eval()
        >>> drop.forward(np.ones(3))
        array([1., 1., 1.])
        """
        return self.train(False)

    # -- state dicts ----------------------------------------------------------------------

    def state_dict(self) -> Arrays:
        """Return the parameters and buffers by torch key, in torch's order.

        Returns
        -------
        state : dict of str to numpy.ndarray
            The live arrays (``"1.running_mean"``, ``"1.num_batches_tracked"``), as torch
            returns them, so ``np.savez(path, **net.state_dict())`` saves a model.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> net = nn.Sequential(nn.Conv2d(1, 2, 3, rng=np.random.default_rng(0)),
        ...                     nn.BatchNorm2d(2))
        >>> list(net.state_dict())  # doctest: +NORMALIZE_WHITESPACE
        ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var',
         '1.num_batches_tracked']
        """
        out: Arrays = {}
        for prefix, m in self.named_modules():
            p = f"{prefix}." if prefix else ""
            for n in m._param_names + m._buffer_names:
                v = getattr(m, n, None)
                if v is not None:
                    out[p + n] = v
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Copy arrays into this module's parameters and buffers, cast to their dtypes.

        A torch model's ``{k: v.numpy() for k, v in m.state_dict().items()}`` loads into
        the equivalent rconv.nn model. On any error nothing is changed.

        Parameters
        ----------
        state_dict : mapping of str to array_like
            One array per key of :meth:`state_dict`, of the same shape.

        Raises
        ------
        KeyError
            A key is missing or unexpected (all of them are listed).
        ValueError
            An array has the wrong shape (the key and both shapes are named).
        TypeError
            `state_dict` is not a mapping, or an array is not numeric.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> a = nn.Linear(3, 2, rng=np.random.default_rng(0))
        >>> b = nn.Linear(3, 2, rng=np.random.default_rng(1))
        >>> b.load_state_dict(a.state_dict())
        >>> bool(np.array_equal(a.weight, b.weight))
        True
        """
        own = self.state_dict()
        try:
            keys = set(state_dict.keys())
        except AttributeError as e:
            raise TypeError(
                f"load_state_dict: expected a mapping of names to arrays, got "
                f"{type(state_dict).__name__}"
            ) from e
        missing = [k for k in own if k not in keys]
        unexpected = sorted(k for k in keys if k not in own)
        if missing or unexpected:
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        staged = []
        for k, dst in own.items():
            try:
                src = np.asarray(state_dict[k])
            except Exception as e:
                raise ValueError(f"load_state_dict: {k!r} cannot be converted: {e}") from e
            if src.shape != dst.shape:
                raise ValueError(
                    f"load_state_dict: {k!r} has shape {src.shape}, the model's is {dst.shape}"
                )
            if src.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: {k!r} has unsupported dtype {src.dtype}")
            staged.append((dst, src.astype(dst.dtype, copy=True)))
        for dst, src in staged:
            np.copyto(dst, src)

    def _need(self, what: Optional[Any], name: str) -> Any:
        if what is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward ({name})")
        return what

    def _check_grad(self, grad: Any, shape: Tuple[int, ...]) -> np.ndarray:
        g = np.asarray(grad)
        if g.shape != tuple(shape):
            raise ValueError(
                f"{type(self).__name__}.backward: grad has shape {g.shape}, expected the "
                f"forward output's {tuple(shape)}"
            )
        return g


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


# ------------------------------------------------------------------------ layers with params


class Conv2d(Module):
    """2-D convolution layer (``torch.nn.Conv2d``).

    The parameters are ``weight``, ``(out_channels, in_channels / groups, kH, kW)``, and
    ``bias``, ``(out_channels,)``; the forward pass is :func:`rconv.conv2d`.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int or (int, int)
        Kernel height and width.
    stride : int or (int, int), optional
        Step between windows (default 1).
    padding : int, (int, int), 'valid' or 'same', optional
        As in :func:`rconv.conv2d` (default 0).
    dilation : int or (int, int), optional
        Spacing between kernel taps (default 1).
    groups : int, optional
        Channels are split into `groups` independent convolutions (default 1).
    bias : bool, optional
        Learn an additive bias (default True).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}, optional
        As in :func:`rconv.conv2d`.
    rng : numpy.random.Generator, optional
        Source of the initial weights (default: a new unseeded generator).
    dtype : dtype, optional
        The parameters' dtype: float32 (default) or float64.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> conv = nn.Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(0))
    >>> y = conv.forward(np.ones((2, 3, 5, 5), np.float32))
    >>> y.shape, conv.backward(np.ones_like(y)).shape, conv.grads()["weight"].shape
    ((2, 8, 5, 5), (2, 3, 5, 5), (8, 3, 3, 3))
    >>> conv.backward(np.ones_like(y), input_grad=False) is None  # weight and bias only
    True
    """

    _param_names = ("weight", "bias")

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        rng=None,
        dtype=np.float32,
    ):
        dtype = _layer_dtype("Conv2d", dtype)
        rng = np.random.default_rng() if rng is None else rng
        kh, kw = _nn._pair("Conv2d", "kernel_size", kernel_size)
        opts = _nn._conv_opts("Conv2d", stride, padding, dilation, groups, padding_mode)
        # validated as conv2d validates (on a probe input large enough for any padding)
        cin_g = in_channels // groups if type(groups) is int and groups > 0 else in_channels
        probe = (0, in_channels, 1 << 20, 1 << 20)
        _rconv.conv_geometry(probe, (out_channels, cin_g, kh, kw), opts)
        fan_in = in_channels // groups * kh * kw
        self.weight = _kaiming_uniform(
            rng, (out_channels, in_channels // groups, kh, kw), fan_in, dtype
        )
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.bias = rng.uniform(-bound, bound, out_channels).astype(dtype) if bias else None
        self.conf = dict(
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            padding_mode=padding_mode,
        )
        self._x: Optional[np.ndarray] = None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    def forward(self, x):
        self._x = x
        return _nn.conv2d(x, self.weight, self.bias, **self.conf)

    def backward(self, grad, input_grad=True):
        x = self._need(self._x, "input")
        if input_grad or self.conf["padding_mode"] != "zeros":
            gi, gw, gb = _nn.conv2d_backward(grad, x, self.weight, **self.conf)
        else:
            c = dict(self.conf)
            del c["padding_mode"]
            gw = _nn.conv2d_weight(x, self.weight.shape, grad, **c)
            gi = None
            g = np.asarray(grad)
            gb = None if self.bias is None else g.sum(axis=(0, 2, 3) if g.ndim == 4 else (1, 2))
        self.grad_weight = gw.astype(self.weight.dtype, copy=False)
        if self.bias is not None:
            self.grad_bias = gb.astype(self.bias.dtype, copy=False)
        return gi if input_grad else None


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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> lin = nn.Linear(4, 2, rng=np.random.default_rng(0))
    >>> lin.forward(np.ones((3, 4), np.float32)).shape, lin.params()["weight"].shape
    ((3, 2), (2, 4))
    """

    _param_names = ("weight", "bias")

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=np.float32):
        dtype = _layer_dtype("Linear", dtype)
        rng = np.random.default_rng() if rng is None else rng
        self.weight = _kaiming_uniform(rng, (out_features, in_features), in_features, dtype)
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.bias = rng.uniform(-bound, bound, out_features).astype(dtype) if bias else None
        self._x = None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    # One GEMM over the whole batch in rconv's Rust (rconv.nn never calls NumPy's matmul:
    # it wakes OpenBLAS's thread pool, whose spinning threads then slow the next layers;
    # measured: a conv backward right after a Linear-sized matmul took 1.5x as long on 2
    # cores). Inputs of any number of leading axes are flattened to (-1, in_features).

    def _rows(self, x):
        x = _nn._float_array("Linear", "input", x)
        k = self.weight.shape[1]
        if x.ndim == 0 or x.shape[-1] != k:
            raise ValueError(
                f"Linear: input must have {k} features in its last axis, got shape {x.shape}"
            )
        dt = _nn._common(x, self.weight)
        return x, _nn._c(x.reshape(-1, k), dt), dt

    def forward(self, x):
        x, x2, dt = self._rows(x)
        self._x = x
        b = None if self.bias is None else _nn._c(self.bias, dt)
        y = _rconv.linear(x2, _nn._c(self.weight, dt), b)
        return y.reshape(x.shape[:-1] + (self.weight.shape[0],))

    def backward(self, grad, input_grad=True):
        x, x2, dt = self._rows(self._need(self._x, "input"))
        m = self.weight.shape[0]
        g = self._check_grad(grad, x.shape[:-1] + (m,))
        g2 = _nn._c(g.reshape(-1, m), dt)
        gi, gw, gb = _rconv.linear_backward(g2, x2, _nn._c(self.weight, dt), bool(input_grad))
        self.grad_weight = gw.astype(self.weight.dtype, copy=False)
        if self.bias is not None:
            self.grad_bias = gb.astype(self.bias.dtype, copy=False)
        return None if gi is None else gi.reshape(x.shape)


class BatchNorm2d(Module):
    """Batch normalisation over ``(N, H, W)`` per channel (``torch.nn.BatchNorm2d``).

    Training normalises with the batch mean and the biased batch variance,
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, and updates the running
    statistics as ``running = (1 - momentum) * running + momentum * batch`` with the unbiased
    variance (``momentum=None``: the cumulative average). ``num_batches_tracked`` (0-d int64)
    counts the training forwards. Evaluation uses the running statistics, or the batch's
    when they are not tracked.

    Parameters
    ----------
    num_features : int
        Channels ``C`` of the ``(N, C, H, W)`` input.
    eps : float, optional
        Added to the variance inside the square root (default 1e-5).
    momentum : float or None, optional
        Weight of the batch in the running statistics (default 0.1).
    affine : bool, optional
        Learn ``weight`` (ones) and ``bias`` (zeros) (default True).
    track_running_stats : bool, optional
        Keep the buffers ``running_mean`` (zeros), ``running_var`` (ones) and
        ``num_batches_tracked`` (default True).
    dtype : dtype, optional
        The parameters' and buffers' dtype: float32 (default) or float64.

    Raises
    ------
    ValueError
        A non-4-D input or a wrong channel count; one value per channel when the batch
        statistics are used (as torch).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> bn = nn.BatchNorm2d(1, dtype=np.float64)
    >>> y = bn.forward(np.array([1.0, 3.0]).reshape(2, 1, 1, 1))
    >>> y.ravel().round(4), bn.running_mean, bn.running_var, int(bn.num_batches_tracked)
    (array([-1.,  1.]), array([0.2]), array([1.1]), 1)
    >>> bn.eval().forward(np.array([0.2]).reshape(1, 1, 1, 1)).item()
    0.0
    """

    _param_names = ("weight", "bias")
    _buffer_names = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(
        self,
        num_features,
        eps=1e-5,
        momentum=0.1,
        affine=True,
        track_running_stats=True,
        dtype=np.float32,
    ):
        f = "BatchNorm2d"
        dtype = _layer_dtype(f, dtype)
        c = _nn._int(f, "num_features", num_features)
        if c <= 0:
            raise ValueError(f"{f}: num_features must be positive, got {num_features}")
        self.num_features = c
        self.eps = _real(f, "eps", eps)
        if self.eps < 0:
            raise ValueError(f"{f}: eps must be >= 0, got {eps}")
        self.momentum = None if momentum is None else _real(f, "momentum", momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.weight = np.ones(c, dtype) if affine else None
        self.bias = np.zeros(c, dtype) if affine else None
        self.grad_weight = np.zeros(c, dtype) if affine else None
        self.grad_bias = np.zeros(c, dtype) if affine else None
        self.running_mean = np.zeros(c, dtype) if track_running_stats else None
        self.running_var = np.ones(c, dtype) if track_running_stats else None
        self.num_batches_tracked = np.array(0, np.int64) if track_running_stats else None
        self._saved: Optional[tuple] = None

    def forward(self, x):
        f = "BatchNorm2d"
        x = _float_input(f, x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{f}: expected a 4-D input (N, {self.num_features}, H, W), got shape {x.shape}"
            )
        dt = np.result_type(x.dtype, self.weight.dtype if self.affine else x.dtype)
        x = x.astype(dt, copy=False)
        batch = self.training or self.running_mean is None
        axes = (0, 2, 3)
        if batch:
            m = x.shape[0] * x.shape[2] * x.shape[3]
            if m <= 1:
                raise ValueError(
                    f"{f}: expected more than 1 value per channel when training, got input "
                    f"of shape {x.shape}"
                )
            mean = x.mean(axis=axes)
            xc = x - mean[:, None, None]
            var = np.mean(np.square(xc), axis=axes)
            if self.training and self.running_mean is not None:
                self.num_batches_tracked += 1
                mom = self.momentum
                if mom is None:
                    mom = 1.0 / float(self.num_batches_tracked)
                rm, rv = self.running_mean, self.running_var
                rm[...] = (1 - mom) * rm + mom * mean
                rv[...] = (1 - mom) * rv + mom * (var * (m / (m - 1)))
        else:
            mean, var = self.running_mean.astype(dt), self.running_var.astype(dt)
            xc = x - mean[:, None, None]
        invstd = (1.0 / np.sqrt(var + self.eps)).astype(dt, copy=False)
        xhat = xc
        xhat *= invstd[:, None, None]
        self._saved = (xhat, invstd, batch)
        if not self.affine:
            return xhat.copy()
        return xhat * self.weight.astype(dt)[:, None, None] + self.bias.astype(dt)[:, None, None]

    def backward(self, grad, input_grad=True):
        xhat, invstd, batch = self._need(self._saved, "input")
        g = self._check_grad(grad, xhat.shape).astype(xhat.dtype, copy=False)
        axes = (0, 2, 3)
        gb = g.sum(axis=axes)
        gw = np.einsum("nchw,nchw->c", g, xhat)
        if self.affine:
            self.grad_weight = gw.astype(self.weight.dtype)
            self.grad_bias = gb.astype(self.bias.dtype)
        if not input_grad:
            return None
        scale = invstd * (self.weight.astype(xhat.dtype) if self.affine else 1)
        if not batch:
            return g * scale[:, None, None]
        m = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
        gx = xhat * (gw / m)[:, None, None]
        np.subtract(g, gx, out=gx)
        gx -= (gb / m)[:, None, None]
        gx *= scale[:, None, None]
        return gx


# --------------------------------------------------------------------- parameter-free layers


class MaxPool2d(Module):
    """Max pooling (``torch.nn.MaxPool2d``).

    The forward pass is :func:`rconv.max_pool2d`; the backward pass scatters the gradient
    through the indices it saved.

    Parameters
    ----------
    kernel_size : int or (int, int)
        As in :func:`rconv.max_pool2d`.
    stride, padding, dilation : int or (int, int), optional
        As in :func:`rconv.max_pool2d` (`stride` defaults to `kernel_size`).
    ceil_mode : bool, optional
        As in :func:`rconv.max_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> pool = nn.MaxPool2d(2)
    >>> pool.forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    >>> pool.backward(np.ones((1, 1, 2, 2)))[0, 0]
    array([[0., 0., 0., 0.],
           [0., 1., 0., 1.],
           [0., 0., 0., 0.],
           [0., 1., 0., 1.]])
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        self.conf = dict(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            dilation=dilation,
            ceil_mode=ceil_mode,
        )
        # checked now, as the functional form checks them
        _nn._pool_opts("MaxPool2d", kernel_size, stride, padding, dilation, ceil_mode)
        self._x = self._ind = None

    def forward(self, x):
        out, self._ind = _nn.max_pool2d(x, return_indices=True, **self.conf)
        self._x = x
        return out

    def backward(self, grad, input_grad=True):
        x = self._need(self._x, "input")
        if not input_grad:
            return None
        return _nn.max_pool2d_backward(grad, x, indices=self._ind, **self.conf)


class AvgPool2d(Module):
    """Average pooling (``torch.nn.AvgPool2d``), by :func:`rconv.avg_pool2d`.

    Parameters
    ----------
    kernel_size : int or (int, int)
        As in :func:`rconv.avg_pool2d`.
    stride, padding : int or (int, int), optional
        As in :func:`rconv.avg_pool2d` (`stride` defaults to `kernel_size`).
    ceil_mode, count_include_pad : bool, optional
        As in :func:`rconv.avg_pool2d`.
    divisor_override : int, optional
        As in :func:`rconv.avg_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> nn.AvgPool2d(2).forward(np.arange(16.0).reshape(1, 1, 4, 4))[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """

    def __init__(
        self,
        kernel_size,
        stride=None,
        padding=0,
        ceil_mode=False,
        count_include_pad=True,
        divisor_override=None,
    ):
        self.conf = dict(
            kernel_size=kernel_size,
            stride=stride,
            padding=padding,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
            divisor_override=divisor_override,
        )
        _nn._pool_opts(
            "AvgPool2d", kernel_size, stride, padding, 1, ceil_mode, True, divisor_override
        )
        self._x = None

    def forward(self, x):
        self._x = x
        return _nn.avg_pool2d(x, **self.conf)

    def backward(self, grad, input_grad=True):
        x = self._need(self._x, "input")
        if not input_grad:
            return None
        return _nn.avg_pool2d_backward(grad, x, **self.conf)


class AdaptiveAvgPool2d(Module):
    """Adaptive average pooling to a fixed output size (``torch.nn.AdaptiveAvgPool2d``).

    ``AdaptiveAvgPool2d(1)`` is global average pooling.

    Parameters
    ----------
    output_size : int or (int or None, int or None)
        As in :func:`rconv.adaptive_avg_pool2d`.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> gap = nn.AdaptiveAvgPool2d(1)
    >>> gap.forward(np.arange(8.0).reshape(1, 2, 2, 2)).ravel()
    array([1.5, 5.5])
    >>> gap.backward(np.ones((1, 2, 1, 1)))[0, 0]
    array([[0.25, 0.25],
           [0.25, 0.25]])
    """

    def __init__(self, output_size):
        self.output_size = _nn._adaptive_size("AdaptiveAvgPool2d", output_size)
        for v in self.output_size:
            if v is not None and v < 0:
                raise ValueError(f"AdaptiveAvgPool2d: output_size must be >= 0, got {v}")
        self._x = None

    def forward(self, x):
        self._x = x
        return _nn.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, grad, input_grad=True):
        x = self._need(self._x, "input")
        if not input_grad:
            return None
        return _nn.adaptive_avg_pool2d_backward(grad, x)


class ReLU(Module):
    """Rectified linear unit, ``max(x, 0)`` (``torch.nn.ReLU``).

    NaN propagates, and the gradient passes where the input is not ``<= 0`` (0 at 0,
    passed at NaN).

    float32/float64 run as parallel Rust kernels; other dtypes through NumPy. The output
    is a new array; backward reads the saved output, so modifying the input in place
    between the passes does not change the gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> relu = nn.ReLU()
    >>> relu.forward(np.array([-1.0, 2.0, np.nan])), relu.backward(np.array([5.0, 5.0, 5.0]))
    (array([ 0.,  2., nan]), array([0., 5., 5.]))
    """

    def __init__(self):
        self._out = None

    def forward(self, x):
        x = np.asarray(x)
        if x.dtype is _nn._F32 or x.dtype is _nn._F64:
            out = _rconv.relu(_nn._c(x).reshape(-1)).reshape(x.shape)
        else:
            out = np.maximum(x, 0)
        self._out = out
        return out

    def backward(self, grad, input_grad=True):
        out = self._need(self._out, "output")
        g = self._check_grad(grad, out.shape)
        if not input_grad:
            return None
        if g.dtype is out.dtype and (out.dtype is _nn._F32 or out.dtype is _nn._F64):
            return _rconv.relu(out.reshape(-1), _nn._c(g).reshape(-1)).reshape(g.shape)
        return np.where(out <= 0, 0, g).astype(g.dtype, copy=False)


class LeakyReLU(Module):
    """Leaky rectified linear unit (``torch.nn.LeakyReLU``).

    The output is ``x`` where ``x > 0``, else ``negative_slope * x``; the gradient at 0 is
    `negative_slope`, as torch has it. NaN propagates.

    Parameters
    ----------
    negative_slope : float, optional
        Slope for negative inputs (default 0.01).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> act = nn.LeakyReLU(0.1)
    >>> act.forward(np.array([-2.0, 0.0, 3.0])), act.backward(np.ones(3))
    (array([-0.2,  0. ,  3. ]), array([0.1, 0.1, 1. ]))
    """

    def __init__(self, negative_slope=0.01):
        self.negative_slope = _real("LeakyReLU", "negative_slope", negative_slope)
        self._x = None

    def forward(self, x):
        x = _float_input("LeakyReLU", x)
        self._x = x.copy()
        s = x.dtype.type(self.negative_slope)
        out = x * s
        pos = x > 0
        np.copyto(out, x, where=pos)
        return out

    def backward(self, grad, input_grad=True):
        x = self._need(self._x, "input")
        g = self._check_grad(grad, x.shape)
        if not input_grad:
            return None
        out = (g * self.negative_slope).astype(np.result_type(g, x), copy=False)
        np.copyto(out, g, where=x > 0, casting="unsafe")
        return out


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` (``torch.nn.Sigmoid``); the gradient is ``y (1 - y)``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> s = nn.Sigmoid()
    >>> s.forward(np.array([0.0, 1000.0, -1000.0])), s.backward(np.ones(3))
    (array([0.5, 1. , 0. ]), array([0.25, 0.  , 0.  ]))
    """

    def __init__(self):
        self._out = None

    def forward(self, x):
        x = _float_input("Sigmoid", x)
        with np.errstate(over="ignore", under="ignore"):
            out = np.exp(-x)
        out += 1
        np.reciprocal(out, out=out)
        self._out = out
        return out

    def backward(self, grad, input_grad=True):
        y = self._need(self._out, "output")
        g = self._check_grad(grad, y.shape)
        if not input_grad:
            return None
        return g * (y * (1 - y))


class Tanh(Module):
    """Hyperbolic tangent (``torch.nn.Tanh``); the gradient is ``1 - y**2``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> t = nn.Tanh()
    >>> t.forward(np.array([0.0, 20.0])), t.backward(np.ones(2))
    (array([0., 1.]), array([1., 0.]))
    """

    def __init__(self):
        self._out = None

    def forward(self, x):
        self._out = np.tanh(_float_input("Tanh", x))
        return self._out

    def backward(self, grad, input_grad=True):
        y = self._need(self._out, "output")
        g = self._check_grad(grad, y.shape)
        if not input_grad:
            return None
        return g * (1 - y * y)


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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> drop = nn.Dropout(0.5, rng=np.random.default_rng(0))
    >>> y = drop.forward(np.ones(10))
    >>> sorted(set(y.tolist())), bool(np.array_equal(drop.backward(np.ones(10)), y))
    ([0.0, 2.0], True)
    >>> drop.eval().forward(np.ones(3))
    array([1., 1., 1.])
    """

    def __init__(self, p=0.5, *, rng=None):
        p = _real("Dropout", "p", p)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = p
        self.rng = np.random.default_rng() if rng is None else rng
        self._mask: Optional[np.ndarray] = None
        self._shape: Optional[Tuple[int, ...]] = None

    def forward(self, x):
        x = _float_input("Dropout", x)
        self._shape = x.shape
        if not self.training or self.p == 0.0:
            self._mask = None
            return x.copy()
        if self.p == 1.0:
            self._mask = np.zeros(x.shape, x.dtype)
        else:
            u_dt = np.float32 if x.dtype == np.float32 else np.float64
            keep = self.rng.random(x.shape, dtype=u_dt) >= self.p
            self._mask = keep.astype(x.dtype)
            self._mask *= x.dtype.type(1.0 / (1.0 - self.p))
        return x * self._mask

    def backward(self, grad, input_grad=True):
        shape = self._need(self._shape, "input")
        g = self._check_grad(grad, shape)
        if not input_grad:
            return None
        return g.copy() if self._mask is None else g * self._mask


class Flatten(Module):
    """Flatten every axis after the first (``torch.nn.Flatten``).

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> nn.Flatten().forward(np.zeros((2, 3, 4, 4))).shape
    (2, 48)
    """

    def __init__(self):
        self._shape = None

    def forward(self, x):
        x = np.asarray(x)
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad, input_grad=True):
        shape = self._need(self._shape, "shape")
        if not input_grad:
            return None
        return np.asarray(grad).reshape(shape)


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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3, rng=np.random.default_rng(0)))
    >>> sorted(net.params()), net.forward(np.ones((2, 1, 2, 2), np.float32)).shape
    (['1.bias', '1.weight'], (2, 3))
    >>> net.backward(np.ones((2, 3), np.float32), input_grad=False) is None
    True
    """

    def __init__(self, *layers: Module):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(
                    f"Sequential: argument {i} must be an rconv.nn.Module, got "
                    f"{type(layer).__name__}"
                )
        self.layers = list(layers)

    def children(self):
        for i, layer in enumerate(self.layers):
            yield str(i), layer

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad, input_grad=True):
        first = 0
        if not input_grad:
            # layers before the first one with parameters need no backward at all
            first = next((i for i, m in enumerate(self.layers) if m.params()), len(self.layers))
        for i in range(len(self.layers) - 1, first - 1, -1):
            grad = _backward(self.layers[i], grad, input_grad or i > first)
        return grad if input_grad else None

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)


# ----------------------------------------------------------------------------------- losses


class CrossEntropyLoss(Module):
    """Softmax and negative log-likelihood, averaged over the batch.

    As ``torch.nn.CrossEntropyLoss`` with its defaults.

    ``forward(logits, targets)`` takes ``(N, classes)`` scores and ``(N,)`` integer labels
    and returns the mean loss; ``backward()`` returns its gradient with respect to the logits,
    ``(softmax(logits) - onehot(targets)) / N``.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> bool(abs(loss.forward(np.zeros((2, 4)), np.array([1, 3])) - np.log(4)) < 1e-12)
    True
    >>> loss.backward()
    array([[ 0.125, -0.375,  0.125,  0.125],
           [ 0.125,  0.125,  0.125, -0.375]])
    """

    def __init__(self):
        self._p = self._t = None

    def __call__(self, logits, targets):
        return self.forward(logits, targets)

    def forward(self, logits: np.ndarray, targets: np.ndarray) -> float:  # type: ignore[override]
        logits = np.asarray(logits)
        t = np.asarray(targets)
        if logits.ndim != 2 or t.shape != (logits.shape[0],):
            raise ValueError(
                f"CrossEntropyLoss: expected logits (N, C) and targets (N,), got "
                f"{logits.shape} and {t.shape}"
            )
        if t.dtype.kind not in "iu" or (t.size and (t.min() < 0 or t.max() >= logits.shape[1])):
            raise ValueError("CrossEntropyLoss: targets must be integer class indices in range")
        z = logits - logits.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        self._p, self._t = np.exp(logp), t
        return float(-logp[np.arange(len(t)), t].mean())

    def backward(self, grad=None, input_grad=True) -> np.ndarray:
        if self._p is None:
            raise RuntimeError("CrossEntropyLoss.backward called before forward")
        g = self._p.copy()
        g[np.arange(len(self._t)), self._t] -= 1
        scale = 1.0 if grad is None else float(grad)
        return (g * (scale / len(self._t))).astype(self._p.dtype, copy=False)


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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> mse = nn.MSELoss()
    >>> mse.forward(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    2.0
    >>> mse.backward()
    array([ 0., -2.])
    """

    def __init__(self, reduction="mean"):
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(
                f"MSELoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
            )
        self.reduction = reduction
        self._d: Optional[np.ndarray] = None

    def __call__(self, input, target):
        return self.forward(input, target)

    def forward(self, input, target):  # type: ignore[override]
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

    def backward(self, grad=None, input_grad=True):
        d = self._need(self._d, "input")
        k = 2.0 / d.size if self.reduction == "mean" and d.size else 2.0
        if grad is None:
            return d * d.dtype.type(k)
        if self.reduction == "none":
            return self._check_grad(grad, d.shape) * d * k
        return d * d.dtype.type(k * float(grad))


# ------------------------------------------------------------------------------- optimizers


# Parameter texts the optimizers share (one copy of each).
_MODEL_DOC = """\
    model : Module
        Its ``params()``/``grads()`` are read at every step.
"""
_ADAM_DOC = """\
    lr : float, optional
        Default 1e-3 (a mutable attribute ``.lr``).
    betas : (float, float), optional
        Default (0.9, 0.999), each in [0, 1).
    eps : float, optional
        Default 1e-8.
"""


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

    def _pairs(self) -> Iterator[Tuple[str, np.ndarray, np.ndarray]]:
        self._validate({k: getattr(self, k) for k in self._hyper})
        grads = self.model.grads()
        for name, p in self.model.params().items():
            g = grads.get(name)
            if g is None:
                continue  # no gradient yet: torch skips the parameter too
            if g.shape != p.shape:
                raise RuntimeError(
                    f"{type(self).__name__}.step: gradient of {name!r} has shape {g.shape}, "
                    f"the parameter {p.shape}"
                )
            yield name, p, g

    def state_dict(self) -> Dict[str, Any]:
        """Return the hyperparameters and a copy of the per-parameter state.

        Returns
        -------
        state : dict
            The hyperparameters by name (``"lr"``, ...) and ``"state"``, the per-parameter
            state keyed by parameter name (copied), for ``load_state_dict`` to resume a
            run.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> lin = nn.Linear(2, 1, rng=np.random.default_rng(0))
        >>> opt = nn.SGD(lin, lr=0.1, momentum=0.9)
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

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> lin = nn.Linear(2, 1, rng=np.random.default_rng(0))
        >>> opt = nn.Adam(lin, lr=0.01)
        >>> _ = lin.backward(np.ones((1, 1)) + 0 * lin.forward(np.ones((1, 2))))
        >>> opt.step()
        >>> resumed = nn.Adam(lin)
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
                    new[pname][k] = _nn._int(name, "step", v)
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


def _check_lr(name: str, lr: Any, strict: bool) -> float:
    lr = _real(name, "lr", lr)
    if lr < 0 or (strict and lr == 0):
        raise ValueError(f"{name}: lr must be {'> 0' if strict else '>= 0'}, got {lr}")
    return lr


@_doc(model=_MODEL_DOC)
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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[2.0]])
    >>> nn.SGD(lin, lr=0.1).step()
    >>> lin.weight
    array([[0.8]])
    """

    _hyper = ("lr", "momentum", "weight_decay", "dampening", "nesterov")
    _state_keys = ("momentum_buffer",)

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

    def _validate(self, h):
        _check_lr("SGD", h["lr"], strict=True)
        for k in ("momentum", "weight_decay", "dampening"):
            if _real("SGD", k, h[k]) < 0:
                raise ValueError(f"SGD: {k} must be >= 0, got {h[k]}")
        if h["nesterov"] and (h["momentum"] <= 0 or h["dampening"] != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening == 0")

    def step(self) -> None:
        """Update every parameter that has a gradient, in place, once.

        Parameters without a gradient (``None``) are left alone.

        Examples
        --------
        >>> import numpy as np
        >>> from rconv import nn
        >>> lin = nn.Linear(2, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
        >>> lin.weight[:] = 1.0
        >>> opt = nn.SGD(lin, lr=0.5, momentum=0.9)
        >>> for _ in range(2):
        ...     lin.grad_weight = np.array([[1.0, -1.0]])
        ...     opt.step()
        >>> lin.weight  # 1 - 0.5 * 1, then - 0.5 * (0.9 * 1 + 1)
        array([[-0.45,  2.45]])
        """
        lr, mu, wd = float(self.lr), float(self.momentum), float(self.weight_decay)
        for name, p, g in self._pairs():
            d = g + p * p.dtype.type(wd) if wd else g
            if mu:
                st = self.state.setdefault(name, {})
                buf = st.get("momentum_buffer")
                if buf is None:
                    buf = st["momentum_buffer"] = np.array(d, dtype=p.dtype, copy=True)
                else:
                    buf *= p.dtype.type(mu)
                    buf += d * p.dtype.type(1.0 - self.dampening)
                d = d + buf * p.dtype.type(mu) if self.nesterov else buf
            p -= d * p.dtype.type(lr)


@_doc(model=_MODEL_DOC, adam=_ADAM_DOC)
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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[2.0]])
    >>> opt = nn.Adam(lin, lr=0.1)
    >>> opt.step()  # the first step moves each parameter by about lr
    >>> lin.weight.round(6)
    array([[0.9]])
    """

    _hyper = ("lr", "betas", "eps", "weight_decay")
    _state_keys = ("step", "exp_avg", "exp_avg_sq")
    _decoupled = False

    def __init__(
        self,
        model: Module,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.betas = tuple(float(b) for b in betas)

    def _validate(self, h):
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
        >>> from rconv import nn
        >>> lin = nn.Linear(2, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
        >>> lin.weight[:] = 1.0
        >>> lin.grad_weight = np.array([[3.0, -0.5]])
        >>> nn.Adam(lin, lr=0.1).step()
        >>> lin.weight.round(6)
        array([[0.9, 1.1]])
        """
        lr, wd, eps = float(self.lr), float(self.weight_decay), float(self.eps)
        b1, b2 = (float(b) for b in self.betas)
        for name, p, g in self._pairs():
            t = p.dtype.type
            if self._decoupled:
                p *= t(1.0 - lr * wd)
            elif wd:
                g = g + p * t(wd)
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = {
                    "step": 0,
                    "exp_avg": np.zeros_like(p),
                    "exp_avg_sq": np.zeros_like(p),
                }
            st["step"] += 1
            k = st["step"]
            m, v = st["exp_avg"], st["exp_avg_sq"]
            m *= t(b1)
            m += g * t(1.0 - b1)
            v *= t(b2)
            v += np.square(g) * t(1.0 - b2)
            step_size = lr / (1.0 - b1**k)
            denom = np.sqrt(v)
            denom *= t(1.0 / math.sqrt(1.0 - b2**k))
            denom += t(eps)
            p -= (m / denom) * t(step_size)


@_doc(model=_MODEL_DOC, adam=_ADAM_DOC)
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

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
    >>> lin = nn.Linear(1, 1, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    >>> lin.weight[:] = 1.0
    >>> lin.grad_weight = np.array([[0.0]])
    >>> nn.AdamW(lin, lr=0.1, weight_decay=0.5).step()  # zero gradient: only the decay
    >>> lin.weight
    array([[0.95]])
    """

    _decoupled = True

    def __init__(
        self,
        model: Module,
        lr: float = 1e-3,
        betas: Tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(model, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
