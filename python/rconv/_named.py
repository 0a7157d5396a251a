""":func:`_named`: a public function made from the implementation that names its errors.

The implementations take the name their errors carry as their first argument (positional;
``rconv.dask`` passes its own, ``"rconv.dask.conv2d"``) and, for a family of functions, the
member as the second (``"correlate"``/``"convolve"``). The public function is that
implementation with these leading arguments fixed: written once, with the rest of its
parameters (names, defaults, annotations) and its docstring, with one Python frame (the
public function's) between the caller and the implementation.
"""

from __future__ import annotations

import ast
import inspect
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, overload

if TYPE_CHECKING:
    from typing import Concatenate, ParamSpec

    _P = ParamSpec("_P")

_R = TypeVar("_R")


@overload
def _named(impl: Callable[Concatenate[str, _P], _R], /) -> Callable[_P, _R]: ...
@overload
def _named(
    impl: Callable[Concatenate[str, Any, _P], _R], name: str, member: Any, /, *, doc: str
) -> Callable[_P, _R]: ...
def _named(impl: Callable[..., Any], *lead: Any, doc: Optional[str] = None) -> Callable[..., Any]:
    """The public function of `impl`: ``impl(*lead, ...)`` with `impl`'s other parameters.

    As a decorator (no `lead`), the public function takes `impl`'s name and docstring and
    fixes the first argument to that name; `impl` stays reachable as ``__wrapped__`` (and
    so by ``inspect.unwrap``, which rconv.dask uses, and by pickle). Called with `lead`, the
    first of them is the public function's name and `doc` its docstring.

    The forwarding function is compiled from a ``def`` with exactly the public parameters,
    so that a call costs what a hand-written wrapper costs and a wrong call raises the
    TypeError Python raises for it; its defaults and annotations are `impl`'s.
    """
    decorated = not lead
    lead = lead or (impl.__name__,)
    name = lead[0]
    code = impl.__code__
    if code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or not name.isidentifier():
        raise TypeError(f"_named: {impl.__qualname__} must take named parameters only")
    names = code.co_varnames[len(lead) : code.co_argcount]
    kw = code.co_varnames[code.co_argcount : code.co_argcount + code.co_kwonlyargcount]
    params = ", ".join([*names, *(("*", *kw) if kw else ())])
    args = ", ".join([*map(repr, lead), *names, *(f"{k}={k}" for k in kw)])
    # `_named_impl` cannot collide with a parameter: the implementations' are public names
    tree = ast.parse(
        f"def make(_named_impl):\n def {name}({params}):\n  return _named_impl({args})\n"
        f" return {name}"
    )
    for node in ast.walk(tree):  # tracebacks point at the implementation's definition
        if "lineno" in node._attributes:
            node.lineno = node.end_lineno = code.co_firstlineno  # type: ignore[attr-defined]
            node.col_offset, node.end_col_offset = 0, 1000  # type: ignore[attr-defined]
    space: dict = {}
    exec(compile(tree, code.co_filename, "exec"), impl.__globals__, space)
    public = space["make"](impl)
    public.__defaults__ = impl.__defaults__
    public.__kwdefaults__ = None if impl.__kwdefaults__ is None else dict(impl.__kwdefaults__)
    fixed = code.co_varnames[: len(lead)]
    public.__annotations__ = {k: v for k, v in impl.__annotations__.items() if k not in fixed}
    public.__module__ = impl.__module__
    public.__qualname__ = name
    public.__doc__ = impl.__doc__ if decorated else doc
    sig = inspect.signature(impl)
    public.__signature__ = sig.replace(parameters=list(sig.parameters.values())[len(lead) :])
    if decorated:
        public.__wrapped__ = impl
        impl.__qualname__ = f"{name}.__wrapped__"  # where pickle finds it
    return public
