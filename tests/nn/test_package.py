"""The shape of rconv.nn (a package by family, as torch.nn.modules), rconv.optim and
rconv.nn.functional: the aliases, the documented names, the torch-style reprs, and the rule
that no module reaches into another module's private names."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rconv
from rconv import nn, optim
from rconv.nn import functional as F

# ------------------------------------------------------------------------------- aliases


def test_optimizers_are_the_same_classes_in_nn_and_optim():
    for name in ("SGD", "Adam", "AdamW"):
        assert getattr(nn, name) is getattr(optim, name), name
        assert name in nn.__all__ and name in optim.__all__
    assert optim.SGD.__module__ == "rconv.optim"
    assert rconv.optim is optim and "optim" in rconv.__all__


def test_functional_shares_the_top_level_functions():
    assert nn.functional is F and "functional" in nn.__all__
    assert importlib.import_module("rconv.nn.functional") is F
    # the CNN layers of rconv (its private module _nn) under torch's names, and F's own
    own_names = {
        "linear",
        "relu",
        "leaky_relu",
        "sigmoid",
        "tanh",
        "cross_entropy",
        "mse_loss",
        "batch_norm",
    }
    shared = sorted(set(F.__all__) - own_names)
    assert shared == sorted(rconv._nn.__all__) and set(shared) <= set(rconv.__all__)
    for name in shared:
        assert getattr(F, name) is getattr(rconv, name), name
    own = {n for n, v in vars(F).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert own == set(F.__all__)


def test_layers_live_in_their_family_modules():
    homes = {
        "Module": "module",
        "Conv2d": "conv",
        "Linear": "linear",
        "BatchNorm2d": "normalization",
        "MaxPool2d": "pooling",
        "AvgPool2d": "pooling",
        "AdaptiveAvgPool2d": "pooling",
        "ReLU": "activation",
        "LeakyReLU": "activation",
        "Sigmoid": "activation",
        "Tanh": "activation",
        "Dropout": "dropout",
        "Flatten": "flatten",
        "Sequential": "container",
        "CrossEntropyLoss": "loss",
        "MSELoss": "loss",
    }
    assert set(homes) | {"SGD", "Adam", "AdamW", "functional"} == set(nn.__all__)
    for name, mod in homes.items():
        cls = getattr(nn, name)
        assert cls.__module__ == f"rconv.nn.{mod}", name
        assert getattr(importlib.import_module(f"rconv.nn.{mod}"), name) is cls
        assert name in importlib.import_module(f"rconv.nn.{mod}").__all__


@pytest.mark.parametrize(
    "code",
    [
        "import rconv.optim as o; print(o.SGD.__name__)",
        "from rconv.optim import AdamW; print(AdamW.__name__)",
        "from rconv.nn import SGD; import rconv; print(SGD is rconv.optim.SGD)",
        "from rconv.nn.functional import relu; print(relu([-1.0, 1.0]))",
        "import rconv.nn.conv as c; print(c.Conv2d.__name__)",
        "from rconv import optim, nn; print(nn.Adam is optim.Adam)",
    ],
)
def test_every_entry_point_imports_without_a_cycle(code):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(pathlib.Path(rconv.__file__).parent.parent)] + sys.path
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() in {"SGD", "AdamW", "True", "[0. 1.]", "Conv2d"}


# ----------------------------------------------------------------------------- documented


def _public(mod):
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            yield f"{mod.__name__}.{name}", obj


PUBLIC = dict(p for mod in (nn, optim, F) for p in _public(mod))


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_is_importable_and_documented(name):
    modname, attr = name.rsplit(".", 1)
    ns = {}
    exec(f"from {modname} import {attr}", ns)
    obj = ns[attr]
    assert obj is PUBLIC[name]
    doc = inspect.getdoc(obj)
    assert doc and doc.splitlines()[0].strip(), name
    assert "\nExamples\n--------\n" in doc and ">>> " in doc, name
    params = [p for p in inspect.signature(obj).parameters if p != "self"]
    if params:
        assert "\nParameters\n----------\n" in doc, name
    if inspect.isfunction(obj):
        assert "\nReturns\n-------\n" in doc, name


def test_docstrings_pass_numpydoc_validation():
    # the checks of docs/conf.py (numpydoc_validation_checks): every one but these
    validate = pytest.importorskip("numpydoc.validate").validate
    skip = {"ES01", "SA01", "RT02", "GL08"}
    names = list(PUBLIC)
    for cls_name, cls in list(PUBLIC.items()):
        if inspect.isclass(cls):
            for attr, member in vars(cls).items():
                if not attr.startswith("_") and callable(member) and member.__doc__:
                    names.append(f"{cls_name}.{attr}")
    names.append("rconv.nn.Module.extra_repr")
    failing = {}
    for name in names:
        errors = [(c, m) for c, m in validate(name)["errors"] if c not in skip]
        if errors:
            failing[name] = errors
    assert not failing, failing


def test_doctests_of_the_new_modules_run():
    import doctest

    mods = ["rconv.nn", "rconv.optim", "rconv.nn.functional", "rconv.nn.module"]
    for name in mods:
        failed, attempted = doctest.testmod(
            importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
        )
        assert attempted > 0 and failed == 0, name


# ---------------------------------------------------------------------------------- repr
# The expected strings are what torch prints, derived from torch's source:
#   torch/nn/modules/module.py      Module.__repr__ and _addindent
#   torch/nn/modules/conv.py        _ConvNd.extra_repr (padding, dilation, groups, bias and
#                                   padding_mode shown only when not the default; ints as
#                                   the pairs Conv2d stores; a padding string unquoted)
#   torch/nn/modules/pooling.py     _MaxPoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd.extra_repr
#                                   (arguments as given, stride defaulting to kernel_size)
#   torch/nn/modules/batchnorm.py   _NormBase.extra_repr
#   torch/nn/modules/linear.py      Linear.extra_repr
#   torch/nn/modules/activation.py  LeakyReLU.extra_repr (ReLU, Sigmoid, Tanh: empty)
#   torch/nn/modules/dropout.py     _DropoutNd.extra_repr
#   torch/nn/modules/flatten.py     Flatten.extra_repr
#   torch/nn/modules/loss.py        (no extra_repr)

RNG = np.random.default_rng(0)

LAYER_REPRS = [
    (lambda: nn.Conv2d(1, 4, 3, rng=RNG), "Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1))"),
    (
        lambda: nn.Conv2d(1, 4, 3, padding=1, rng=RNG),
        "Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))",
    ),
    (
        # torch's own docstring example of Conv2d
        lambda: nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1), rng=RNG),
        "Conv2d(16, 33, kernel_size=(3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1))",
    ),
    (
        lambda: nn.Conv2d(
            4, 8, 3, padding=1, groups=4, bias=False, padding_mode="circular", rng=RNG
        ),
        "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=4, "
        "bias=False, padding_mode=circular)",
    ),
    (
        lambda: nn.Conv2d(2, 2, [3, 1], stride=[2, 1], padding="valid", rng=RNG),
        "Conv2d(2, 2, kernel_size=(3, 1), stride=(2, 1), padding=valid)",
    ),
    (
        lambda: nn.Conv2d(2, 2, 3, padding="same", dilation=2, rng=RNG),
        "Conv2d(2, 2, kernel_size=(3, 3), stride=(1, 1), padding=same, dilation=(2, 2))",
    ),
    (lambda: nn.Linear(4, 2, rng=RNG), "Linear(in_features=4, out_features=2, bias=True)"),
    (
        lambda: nn.Linear(64, 10, bias=False, rng=RNG),
        "Linear(in_features=64, out_features=10, bias=False)",
    ),
    (
        lambda: nn.BatchNorm2d(8),
        "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)",
    ),
    (
        lambda: nn.BatchNorm2d(3, eps=1e-3, momentum=None, affine=False, track_running_stats=False),
        "BatchNorm2d(3, eps=0.001, momentum=None, affine=False, track_running_stats=False)",
    ),
    (
        lambda: nn.MaxPool2d(2),
        "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)",
    ),
    (
        lambda: nn.MaxPool2d((3, 2), stride=(2, 1)),
        "MaxPool2d(kernel_size=(3, 2), stride=(2, 1), padding=0, dilation=1, ceil_mode=False)",
    ),
    (
        lambda: nn.MaxPool2d(3, 2, 1, 2, ceil_mode=True),
        "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=2, ceil_mode=True)",
    ),
    (lambda: nn.AvgPool2d(2), "AvgPool2d(kernel_size=2, stride=2, padding=0)"),
    (
        lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        "AvgPool2d(kernel_size=3, stride=2, padding=1)",
    ),
    (lambda: nn.AdaptiveAvgPool2d(1), "AdaptiveAvgPool2d(output_size=1)"),
    (lambda: nn.AdaptiveAvgPool2d((5, None)), "AdaptiveAvgPool2d(output_size=(5, None))"),
    (lambda: nn.ReLU(), "ReLU()"),
    (lambda: nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (lambda: nn.LeakyReLU(0.2), "LeakyReLU(negative_slope=0.2)"),
    (lambda: nn.Sigmoid(), "Sigmoid()"),
    (lambda: nn.Tanh(), "Tanh()"),
    (lambda: nn.Dropout(), "Dropout(p=0.5, inplace=False)"),
    (lambda: nn.Dropout(0.2), "Dropout(p=0.2, inplace=False)"),
    (lambda: nn.Flatten(), "Flatten(start_dim=1, end_dim=-1)"),
    (lambda: nn.CrossEntropyLoss(), "CrossEntropyLoss()"),
    (lambda: nn.MSELoss(), "MSELoss()"),
    (lambda: nn.MSELoss(reduction="sum"), "MSELoss()"),
    (lambda: nn.Sequential(), "Sequential()"),
    (lambda: nn.Module(), "Module()"),
]


@pytest.mark.parametrize("make, want", LAYER_REPRS, ids=[w for _, w in LAYER_REPRS])
def test_layer_repr_is_torchs(make, want):
    layer = make()
    assert repr(layer) == want
    assert str(layer) == want
    inner = want[want.index("(") + 1 : -1]
    assert layer.extra_repr() == inner


def test_every_layer_has_a_repr_test():
    tested = {w.split("(")[0] for _, w in LAYER_REPRS}
    classes = {n for n, o in PUBLIC.items() if inspect.isclass(o) and n.startswith("rconv.nn.")}
    classes = {n.rsplit(".", 1)[1] for n in classes} - {"SGD", "Adam", "AdamW"}
    assert classes <= tested, classes - tested


def test_sequential_repr_is_torchs():
    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=rng),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64, 10, rng=rng),
    )
    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=64, out_features=10, bias=True)\n"
        ")"
    )


class Residual(nn.Module):
    def __init__(self, c, rng):
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False, rng=rng)
        self.bn1 = nn.BatchNorm2d(c)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False, rng=rng)
        self.bn2 = nn.BatchNorm2d(c)


def test_nested_model_repr_is_torchs():
    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, rng=rng),
        nn.Sequential(Residual(8, rng), Residual(8, rng)),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.1),
        nn.Linear(8, 2, rng=rng),
    )
    block = (
        "Residual(\n"
        "  (conv1): Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (bn1): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        "  (relu): ReLU()\n"
        "  (conv2): Conv2d(8, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (bn2): BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)\n"
        ")"
    )
    assert repr(net[1][0]) == block

    def indent(s, n):
        return s.replace("\n", "\n" + " " * n)

    assert repr(net) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 8, kernel_size=(3, 3), stride=(2, 2))\n"
        "  (1): Sequential(\n"
        f"    (0): {indent(block, 4)}\n"
        f"    (1): {indent(block, 4)}\n"
        "  )\n"
        "  (2): AdaptiveAvgPool2d(output_size=1)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Dropout(p=0.1, inplace=False)\n"
        "  (5): Linear(in_features=8, out_features=2, bias=True)\n"
        ")"
    )


def test_user_extra_repr_and_list_children():
    class Head(nn.Module):
        def __init__(self):
            self.layers = [nn.ReLU(), nn.Tanh()]

        def extra_repr(self):
            return "classes=10\nmode=train"

    class Tagged(nn.Module):
        def extra_repr(self):
            return "tag=1"

    assert repr(Tagged()) == "Tagged(tag=1)"
    assert repr(Head()) == (
        "Head(\n  classes=10\n  mode=train\n  (layers.0): ReLU()\n  (layers.1): Tanh()\n)"
    )


# ---------------------------------------------------------------------------- functional


@pytest.mark.parametrize(
    "x",
    [
        np.array([-1.5, 0.0, -0.0, 2.0, np.nan, -np.inf, np.inf]),
        np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4),
        np.linspace(-3, 3, 24).reshape(4, 6)[:, ::2],  # not contiguous
        np.arange(-5, 5, dtype=np.int64),
        np.array([-1, 2], dtype=np.float16),
        np.float64(-2.0),
        np.zeros((0, 3), np.float32),
    ],
    ids=["f64-special", "f32-3d", "f64-strided", "int64", "f16", "0-d", "empty"],
)
def test_functional_relu_matches_numpy(x):
    got = F.relu(x)
    want = np.maximum(x, 0)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert not np.shares_memory(got, x)


def test_functional_relu_is_relu_layers_forward():
    x = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(nn.ReLU().forward(x), F.relu(x))
    assert F.relu([-1, 1]).tolist() == [0, 1]


def test_functional_linear_matches_numpy_and_the_layer():
    rng = np.random.default_rng(2)
    lin = nn.Linear(5, 3, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 4, 5))
    want = x @ lin.weight.T + lin.bias
    np.testing.assert_allclose(F.linear(x, lin.weight, lin.bias), want, rtol=1e-12)
    np.testing.assert_array_equal(F.linear(x, lin.weight, lin.bias), lin.forward(x))
    np.testing.assert_allclose(F.linear(x[0, 0], lin.weight), x[0, 0] @ lin.weight.T)
    assert F.linear(x.astype(np.float32), lin.weight.astype(np.float32)).dtype == np.float32
    assert F.linear(x.astype(np.float32), lin.weight).dtype == np.float64
    with pytest.raises(ValueError, match="linear: weight must be 2-D"):
        F.linear(x, lin.bias)
    with pytest.raises(ValueError, match="linear: input must have 5 features"):
        F.linear(x[..., :4], lin.weight)
    with pytest.raises(ValueError, match="linear: bias"):
        F.linear(x, lin.weight, np.ones(4))
    with pytest.raises(TypeError, match="linear: weight has unsupported dtype"):
        F.linear(x, lin.weight.astype(np.complex128))
    with pytest.raises(ValueError, match="^Linear: input must have 5 features"):
        lin.forward(x[..., :4])


# ------------------------------------------------------------------------ private names
# A module of rconv.nn or rconv.optim may use the underscore names of only these modules:
# the package's private helper module, the private layers of rconv it is built on, and the
# shared docstring texts.
ALLOWED = {"rconv.nn._util", "rconv._nn", "rconv._signal", "rconv._rconv", "rconv._docs"}


def _package_modules():
    root = pathlib.Path(rconv.__file__).parent
    for path in sorted((root / "nn").glob("*.py")) + [root / "optim.py"]:
        parts = path.relative_to(root.parent).with_suffix("").parts
        is_pkg = parts[-1] == "__init__"
        yield ".".join(parts[:-1] if is_pkg else parts), is_pkg, path


def test_the_scan_covers_the_package():
    names = {m for m, _, _ in _package_modules()}
    assert {"rconv.nn", "rconv.nn.conv", "rconv.nn._util", "rconv.optim"} <= names
    assert len(names) >= 14


def _private_uses(modname, is_pkg, path):
    """(line, what) for every use of another module's underscore name in the file."""
    tree = ast.parse(path.read_text())
    package = modname if is_pkg else modname.rpartition(".")[0]
    modules = {}  # local name -> the module it is bound to
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package
                for _ in range(node.level - 1):
                    pkg = pkg.rpartition(".")[0]
                base = f"{pkg}.{base}" if base else pkg
            for alias in node.names:
                full = f"{base}.{alias.name}"
                src = importlib.import_module(base) if base != "__future__" else None
                if src is not None and inspect.ismodule(getattr(src, alias.name, None)):
                    modules[alias.asname or alias.name] = full
                    if alias.name.startswith("_") and full not in ALLOWED:
                        found.append((node.lineno, f"import {full}"))
                elif alias.name.startswith("_") and base not in ALLOWED | {modname}:
                    found.append((node.lineno, f"from {base} import {alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if any(p.startswith("_") for p in alias.name.split(".")):
                    if alias.name not in ALLOWED:
                        found.append((node.lineno, f"import {alias.name}"))
                modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and modules[node.value.id] not in ALLOWED
        ):
            found.append((node.lineno, f"{modules[node.value.id]}.{node.attr}"))
    return found


@pytest.mark.parametrize("modname, is_pkg, path", list(_package_modules()))
def test_no_module_uses_another_modules_private_names(modname, is_pkg, path):
    assert _private_uses(modname, is_pkg, path) == []


def test_the_scan_finds_a_private_use(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from . import module, _util\n"
        "from .conv import _kaiming_uniform\n"
        "from .module import _addindent\n"
        "import numpy as np\n"
        "x = module._addindent('a', 2) + np._NoValue\n"
    )
    found = _private_uses("rconv.nn.bad", False, bad)
    assert sorted(found) == [
        (2, "from rconv.nn.conv import _kaiming_uniform"),
        (3, "from rconv.nn.module import _addindent"),
        (5, "numpy._NoValue"),
        (5, "rconv.nn.module._addindent"),
    ]
