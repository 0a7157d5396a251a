"""The base class of every layer and of user models: :class:`Module` (``torch.nn.Module``)."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import numpy as np

from .._docs import _NN_EXAMPLES_DOC, _RETURNS_SELF_DOC, _doc

__all__ = ["Module"]

Arrays = Dict[str, np.ndarray]


def _addindent(s: str, n: int) -> str:
    """Indent every line of `s` but the first by `n` spaces (torch's ``_addindent``)."""
    first, *rest = s.split("\n")
    return "\n".join([first] + [" " * n + line for line in rest])


@_doc(examples=_NN_EXAMPLES_DOC, returns_self=_RETURNS_SELF_DOC)
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

    Printed, a model shows its architecture as torch prints it: each layer's
    :meth:`extra_repr`, and the children of a container or of a Module without one, one per
    line as ``(name): Child(...)``:

    >>> net
    Sequential(
      (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))
      (1): Residual(
        (conv1): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        (relu1): ReLU()
        (conv2): Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
        (relu2): ReLU()
      )
    )
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

        [examples]
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

        [examples]
        >>> relu = nn.ReLU()
        >>> _ = relu.forward(np.array([-1.0, 2.0]))
        >>> relu.backward(np.array([5.0, 5.0]))
        array([0., 5.])
        """
        raise NotImplementedError(f"{type(self).__name__}.backward is not defined")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    # -- printing -------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """Return the settings that ``repr`` shows between the parentheses (torch's).

        A layer returns its constructor's arguments as ``torch.nn`` prints them; a model,
        described by its children, returns ``""``. A subclass may override this to add a
        line (or several) to its ``repr``.

        Returns
        -------
        text : str
            The settings, or ``""``.

        [examples]
        >>> nn.Linear(4, 2, rng=np.random.default_rng(0)).extra_repr()
        'in_features=4, out_features=2, bias=True'
        >>> nn.Sequential(nn.ReLU()).extra_repr()
        ''
        """
        return ""

    def __repr__(self) -> str:
        """``Name(extra_repr)``, or, with children, one ``(name): Child(...)`` line each.

        As ``torch.nn.Module.__repr__`` (torch/nn/modules/module.py): a single-line
        :meth:`extra_repr` and no children print on one line; otherwise each line of
        :meth:`extra_repr` and each child's ``repr`` goes on its own line, indented by two
        spaces. A child held in a list, tuple or dict is named as :meth:`children` names it
        (``layers.0``; torch prints a ``ModuleList`` there).
        """
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): {_addindent(repr(m), 2)}" for name, m in self.children()]
        lines = extra_lines + child_lines
        main = type(self).__name__ + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"

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

    def _collect(self, what: str) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
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

        [examples]
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

    def grads(self) -> Dict[str, Optional[np.ndarray]]:
        """Return the gradients of the last backward pass.

        Returns
        -------
        grads : dict of str to numpy.ndarray
            One gradient per parameter, with the keys of :meth:`params`.

        [examples]
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

        [returns_self]

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

        [returns_self]

        [examples]
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

        [examples]
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

        [examples]
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
