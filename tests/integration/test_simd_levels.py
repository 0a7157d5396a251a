"""The kernel and exactness tests at every SIMD level below the CPU's.

The whole suite runs at the process's level (the CPU's best unless ``RCONV_SIMD`` caps it).
Here the kernel and exactness test files run again in a subprocess for each lower level the
CPU has, with ``RCONV_SIMD`` set, with the same tolerances; their thread-count invariance
tests then hold at that level too. A level the CPU lacks is reported as skipped, with the
reason. Inside a subprocess of this module (``RCONV_SIMD`` set) it collects nothing more.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

import rconv

# the kernel tests again in a subprocess per lower SIMD level: not in the quick loop
pytestmark = pytest.mark.slow

LEVELS = ("generic", "avx2", "avx512")

HERE = pathlib.Path(__file__).parent
TESTS = HERE.parent

# the tests of rconv's own kernels against references (scipy, the NumPy reference, exact
# values) and of their thread-count invariance, by domain (paths under tests/); the
# nn/test_direct_*.py files are the direct engine's
KERNEL_TESTS = [
    "signal/test_correlate2d.py",
    "signal/test_correlate2d_backward.py",
    "signal/test_separable.py",
    "signal/test_stacks.py",
    "signal/test_fft.py",
    "signal/test_scipy_signal_suite.py",
    "ndimage/test_ndimage.py",
    "ndimage/test_ndimage_scipy_suite.py",
    "nn/test_functional.py",
    "nn/test_networks.py",
    "nn/test_relu.py",
    "nn/test_activations_losses.py",
    "nn/test_batchnorm.py",
    "nn/test_optim.py",
    "nn/test_fusion.py",
    "nn/test_conv_engines.py",
]


def _kernel_tests() -> list:
    files = KERNEL_TESTS + sorted(
        str(p.relative_to(TESTS)) for p in (TESTS / "nn").glob("test_direct_*.py")
    )
    missing = [f for f in files if not (TESTS / f).exists()]
    assert not missing, f"KERNEL_TESTS names files that do not exist: {missing}"
    return [str(TESTS / f) for f in files]


def _env(level: str) -> dict:
    env = dict(os.environ)
    env["RCONV_SIMD"] = level
    return env


@pytest.mark.parametrize("level", LEVELS)
def test_kernel_tests_pass_at_each_lower_level(level):
    _, cpu, _ = rconv._rconv.simd_info()
    if LEVELS.index(level) > LEVELS.index(cpu):
        pytest.skip(f"this CPU has no {level} (its best is {cpu}): level untested here")
    if level == rconv._rconv.simd_level():
        pytest.skip(f"the whole suite runs at {level}, this process's level")
    if LEVELS.index(level) > LEVELS.index(rconv._rconv.simd_level()):
        pytest.skip(f"RCONV_SIMD caps this run below {level}")
    probe = subprocess.run(
        [sys.executable, "-c", "import rconv; print(rconv._rconv.simd_level())"],
        capture_output=True,
        text=True,
        env=_env(level),
    )
    assert probe.stdout.strip() == level, probe.stderr
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *_kernel_tests()],
        capture_output=True,
        text=True,
        env=_env(level),
        cwd=TESTS.parent,
    )
    tail = "\n".join(r.stdout.splitlines()[-40:])
    assert r.returncode == 0, f"kernel tests failed at RCONV_SIMD={level}:\n{tail}\n{r.stderr}"
    assert " passed" in tail, tail
