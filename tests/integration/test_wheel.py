"""The wheel route: ``.ci/build-wheel`` (what ``make wheel`` runs) builds the abi3
manylinux_2_28 wheel once, and it installs into a fresh venv, with NumPy from the registry
and no Rust toolchain on PATH, imports and runs ``python -m rconv``.

This builds rconv a second time in release mode (in ``target/wheel``, cached between runs:
a few seconds when nothing changed, 2-4 minutes from scratch on 2 cores), and needs the
registry for NumPy.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

# a second release build: not in the quick loop (pytest -m "not slow")
pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, pytestconfig):
    # say so before the build, on the terminal (the suite would otherwise sit silent)
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                "\ntests/integration/test_wheel.py: building the release wheel with "
                ".ci/build-wheel (seconds when target/wheel is cached, 2-4 minutes from "
                "scratch), then installing it into a fresh venv ..."
            )
    out = tmp_path_factory.mktemp("wheel")
    env = dict(os.environ, PYTHON=sys.executable)
    _run(["bash", str(ROOT / ".ci" / "build-wheel"), str(out)], cwd=ROOT, env=env)
    wheels = sorted(out.glob("rconv-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel):
    """A fresh venv holding the wheel and NumPy, and a PATH with no cargo or rustc."""
    root = tmp_path_factory.mktemp("venv") / "v"
    _run([sys.executable, "-m", "venv", str(root)])
    py = root / "bin" / "python"
    tools = ("cargo", "rustc")
    path = [str(root / "bin")] + [
        d
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if d and not any(os.path.exists(os.path.join(d, t)) for t in tools)
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP"))}
    env.pop("PYTHONPATH", None)
    env["PATH"] = os.pathsep.join(path)
    _run([str(py), "-m", "pip", "install", "-q", "numpy", str(wheel)], env=env)
    return py, env


def test_wheel_is_abi3_manylinux_and_holds_the_package(wheel):
    assert wheel.name.endswith("-cp39-abi3-manylinux_2_28_x86_64.whl"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    for f in (
        "rconv/__init__.py",
        "rconv/_rconv.pyi",
        "rconv/py.typed",
        "rconv/nn/__init__.py",
        "rconv/nn/conv.py",
        "rconv/optim.py",
    ):
        assert f in names, f
    assert any(n.startswith("rconv/_rconv") and n.endswith(".so") for n in names), names


def test_wheel_runs_without_a_rust_toolchain(venv, tmp_path):
    py, env = venv
    for tool in ("cargo", "rustc"):
        assert shutil.which(tool, path=env["PATH"]) is None, tool
    check = (
        "import shutil, sys, rconv, numpy as np\n"
        "assert shutil.which('cargo') is None and shutil.which('rustc') is None\n"
        "assert rconv.__file__.startswith(sys.prefix), rconv.__file__\n"
        "print(rconv.convolve2d([[1, 2], [3, 4]], [[1, 1]]).tolist())\n"
    )
    # run outside the source tree, so that only the installed wheel can be imported
    out = _run([str(py), "-c", check], env=env, cwd=tmp_path)
    assert out.strip() == "[[1, 3, 2], [3, 7, 4]]"
    demo = _run([str(py), "-m", "rconv"], env=env, cwd=tmp_path)
    assert "rconv.corr2d" in demo and "scipy is not installed" in demo, demo
    info = _run([str(py), "-m", "rconv", "--info"], env=env, cwd=tmp_path)
    assert "build profile: optimised" in info and "numpy" in info, info
