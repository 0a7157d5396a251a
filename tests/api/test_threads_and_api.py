"""Thread control, the package surface, and the docstring examples."""

from __future__ import annotations

import doctest
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

import rconv
from rconv import _nn, _signal, _threads, kernels, nn, optim


def test_public_api():
    for name in rconv.__all__:
        obj = getattr(rconv, name)
        if callable(obj):
            assert obj.__doc__ and "Examples" in obj.__doc__, name
    assert isinstance(rconv.__version__, str) and rconv.__version__.count(".") == 2
    assert rconv._rconv.__name__ == "rconv._rconv"


def _dask_module():
    if os.environ.get("CI"):  # CI installs the 'dask' extra
        import rconv.dask

        return rconv.dask
    pytest.importorskip("dask.array", reason="install the 'dask' extra")
    import rconv.dask

    return rconv.dask


def _nn_modules():
    """rconv.nn and each of its modules (doctest finds a class's examples only in the module
    that defines it, not in the package that re-exports it)."""
    import importlib
    import pkgutil

    names = [m.name for m in pkgutil.iter_modules(nn.__path__) if not m.name.startswith("_")]
    return [nn] + [importlib.import_module(f"rconv.nn.{name}") for name in sorted(names)]


def test_docstring_examples_run():
    import rconv.ndimage

    for mod in (_signal, _threads, _nn, kernels, *_nn_modules(), optim, rconv.ndimage):
        failed, attempted = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert attempted > 0 and failed == 0, mod.__name__


def test_ndimage_docstrings_have_examples():
    import rconv.ndimage

    for name in rconv.ndimage.__all__:
        doc = getattr(rconv.ndimage, name).__doc__
        assert "Examples" in doc and ">>> " in doc and "Parameters" in doc, name


def test_dask_docstrings_and_examples():
    dask_mod = _dask_module()
    for mod in (dask_mod, dask_mod.ndimage):
        for name in mod.__all__:
            assert "Examples" in getattr(mod, name).__doc__, f"{mod.__name__}.{name}"
        failed, attempted = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert attempted >= 2 * len(mod.__all__) and failed == 0, mod.__name__


def test_only_the_compiled_module_has_a_stub():
    # The package is typed (py.typed) by inline annotations; the compiled module's stub,
    # _rconv.pyi, is the only one (a .pyi beside a .py would hide the module from mypy).
    here = os.path.dirname(rconv.__file__)
    assert os.path.exists(os.path.join(here, "py.typed"))
    stubs = [
        os.path.relpath(os.path.join(d, f), here)
        for d, _, files in os.walk(here)
        for f in files
        if f.endswith(".pyi")
    ]
    assert stubs == ["_rconv.pyi"]


def test_set_get_num_threads(threads):
    threads(3)
    assert rconv.get_num_threads() == 3
    threads(1)
    assert rconv.get_num_threads() == 1
    for bad in (0, -1, 10**6):
        with pytest.raises(ValueError, match="set_num_threads: n"):
            rconv.set_num_threads(bad)
    for bad in ("2", 2.5, None):
        with pytest.raises(TypeError, match="set_num_threads: n must be an integer"):
            rconv.set_num_threads(bad)
    assert rconv.get_num_threads() == 1
    threads(np.int64(2))
    assert rconv.get_num_threads() == 2


def _child(code: str, **env) -> str:
    e = dict(os.environ)
    e.pop("RCONV_NUM_THREADS", None)
    e.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()


def test_env_var_sets_default():
    assert _child("import rconv; print(rconv.get_num_threads())", RCONV_NUM_THREADS="3") == "3"
    default = _child(
        "import rconv, os; print(rconv.get_num_threads(), len(os.sched_getaffinity(0)))"
    )
    n, cpus = default.split()
    assert n == cpus
    bad = _child("import rconv, os; print(rconv.get_num_threads())", RCONV_NUM_THREADS="zero")
    assert bad == str(len(os.sched_getaffinity(0)))


_AFFINITY = """
import os, numpy as np, rconv
rconv.set_num_threads(2)
before = sorted(os.sched_getaffinity(0))
x = np.ones((8, 64, 56, 56), np.float32)
for _ in range(3):
    rconv.conv2d(x, np.ones((64, 64, 3, 3), np.float32), padding=1)
workers = []
for tid in os.listdir("/proc/self/task"):
    with open(f"/proc/self/task/{tid}/comm") as f:
        if f.read().startswith("rconv-"):
            workers.append(sorted(os.sched_getaffinity(int(tid))))
print(before == sorted(os.sched_getaffinity(0)), len(before), sorted(workers))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pinning is Linux only")
@pytest.mark.parametrize("pin", [None, "0"])
def test_workers_pinned_one_per_cpu(pin):
    """2 threads on 2 or more CPUs: the worker thread runs on a CPU of its own (the calling
    thread is worker 0, pinned only during calls), unless RCONV_PIN_THREADS=0; the calling
    thread's own affinity is back after each call."""
    env = {} if pin is None else {"RCONV_PIN_THREADS": pin}
    restored, ncpu, workers = _child(_AFFINITY, **env).split(" ", 2)
    assert restored == "True"
    all_cpus = sorted(os.sched_getaffinity(0))
    if pin is None and int(ncpu) >= 2:
        assert workers == f"[[{all_cpus[1]}]]"
    else:
        assert workers == f"[{all_cpus}]"


def test_main_demo_runs():
    out = _child("import runpy; runpy.run_module('rconv', run_name='__main__')")
    assert "[[4 3 4]" in out and "scipy" in out


def _stub_signatures(path):
    """{name: [(parameter name, kind)]} of every top-level function in a .pyi file (of the
    first overload, for overloaded functions: it has the runtime's full parameter list)."""
    import ast

    tree = ast.parse(open(path).read())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name not in out:
            a = node.args
            params = [(p.arg, "positional") for p in a.posonlyargs + a.args]
            params += [(p.arg, "keyword") for p in a.kwonlyargs]
            out[node.name] = params
    return out


def _runtime_signature(func):
    kinds = {
        inspect.Parameter.POSITIONAL_ONLY: "positional",
        inspect.Parameter.POSITIONAL_OR_KEYWORD: "positional",
        inspect.Parameter.KEYWORD_ONLY: "keyword",
    }
    return [(p.name, kinds[p.kind]) for p in inspect.signature(func).parameters.values()]


def test_stub_signatures_match_the_runtime():
    # The compiled module's stub is checked against its signatures (parameter names, order
    # and kind), and must list every function the module has.
    module = rconv._rconv
    sigs = _stub_signatures(os.path.join(os.path.dirname(rconv.__file__), "_rconv.pyi"))
    names = [n for n in dir(module) if callable(getattr(module, n)) and not n.startswith("_")]
    assert names
    for name in names:
        assert name in sigs, f"_rconv.pyi lacks {name}"
        assert sigs[name] == _runtime_signature(getattr(module, name)), f"_rconv.pyi: {name}"
    for name in sigs:
        assert hasattr(module, name), f"_rconv.pyi has {name}, the module does not"


def _unannotated(func):
    """The parameters of `func` (``self`` aside) that have no annotation, and ``"return"``
    if its return has none."""
    sig = inspect.signature(func)
    missing = [
        p.name
        for p in sig.parameters.values()
        if p.name != "self" and p.annotation is inspect.Parameter.empty
    ]
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("module", ["rconv", "rconv.nn.functional", "rconv.ndimage", "rconv.dask"])
def test_public_functions_are_annotated(module):
    import importlib

    mod = _dask_module() if module == "rconv.dask" else importlib.import_module(module)
    funcs = [getattr(mod, n) for n in mod.__all__ if inspect.isfunction(getattr(mod, n))]
    assert funcs
    missing = {f.__name__: m for f in funcs if (m := _unannotated(f))}
    assert not missing, f"{module}: parameters without annotations: {missing}"


def _public_classes():
    out = []
    for mod in (nn, optim):
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isclass(obj) and obj not in out:
                out.append(obj)
    return out


@pytest.mark.parametrize(
    "cls",
    [pytest.param(c, id=c.__name__) for c in _public_classes()],
)
def test_public_methods_are_annotated(cls):
    # every public method, inherited ones included, and the constructor and __call__
    methods = [
        (name, f)
        for name, f in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") or name in ("__init__", "__call__")
    ]
    assert methods
    missing = {name: m for name, f in methods if (m := _unannotated(f))}
    assert not missing, f"{cls.__name__}: parameters without annotations: {missing}"


def test_stub_literals_are_the_rust_tables():
    # Each choice's names live once, in its Rust enum (choice!); the stub's Literals, which
    # type the Python signatures, must list exactly those names.
    import ast

    tree = ast.parse(open(os.path.join(os.path.dirname(rconv.__file__), "_rconv.pyi")).read())
    literals = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Subscript):
            sub = node.value
            if isinstance(sub.value, ast.Name) and sub.value.id == "Literal":
                elts = sub.slice.elts if isinstance(sub.slice, ast.Tuple) else [sub.slice]
                literals[node.targets[0].id] = [e.value for e in elts]
    stub_name = {"Mode": "Mode", "Boundary": "Boundary", "Op": "Op", "PadMode": "PaddingMode"}
    stub_name["Method"] = "Method"
    for enum, names in rconv._rconv.CHOICES.items():
        if enum in stub_name:
            assert literals[stub_name[enum]] == list(names), enum
    assert set(stub_name) <= set(rconv._rconv.CHOICES)
