"""`rconv.show_config()` and `python -m rconv --info`."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys

import numpy as np
import threadpoolctl

import rconv
from rconv import _info


def _run(args, env=None):
    e = {k: v for k, v in os.environ.items() if k != "RCONV_NUM_THREADS"}
    e.update(env or {})
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=e)


def test_show_config_prints_every_fact(capsys, threads):
    threads(2)
    rconv.show_config()
    out = capsys.readouterr().out
    assert out.startswith(f"rconv {rconv.__version__}\n")
    for part in (
        "build profile: ",
        "cpu: ",
        "rconv kernels: ",
        "gemm crate features: ",
        "winograd F(2x2,3x3): on",
        "threads: 2 (from set_num_threads)",
        f"numpy {np.__version__}",
        "optional: ",
    ):
        assert part in out, part
    c = _info.config()
    assert c["rconv_simd"] in ("avx2+fma", "generic")
    assert c["optional"]["scipy"] == importlib.metadata.version("scipy")
    assert c["optional"]["threadpoolctl"] == threadpoolctl.__version__


def test_threads_source_threadpoolctl(threads):
    threads(2)
    with threadpoolctl.threadpool_limits(limits=1, user_api="rconv"):
        c = _info.config()
        assert (c["threads"], c["threads_source"]) == (1, "threadpoolctl")
    rconv.set_num_threads(2)
    assert _info.config()["threads_source"] == "set_num_threads"


def test_threads_source_environment_and_default():
    code = "import rconv; c = rconv._info.config(); print(c['threads'], c['threads_source'])"
    r = _run(["-c", code], {"RCONV_NUM_THREADS": "3"})
    assert r.stdout.split() == ["3", "RCONV_NUM_THREADS"], r.stderr
    r = _run(["-c", code])
    assert r.stdout.split()[1] == "default", r.stderr
    assert int(r.stdout.split()[0]) == len(os.sched_getaffinity(0))


def test_optional_packages_are_not_imported():
    code = (
        "import sys, rconv; rconv.show_config(); "
        "print(sorted(m for m in ('torch', 'cv2', 'dask', 'scipy') if m in sys.modules))"
    )
    r = _run(["-c", code])
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_python_m_rconv_info():
    r = _run(["-m", "rconv", "--info"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"rconv {rconv.__version__}\n")
    assert "threads: " in r.stdout and "(from default)" in r.stdout
    bad = _run(["-m", "rconv", "--bogus"])
    assert bad.returncode != 0 and "usage: python -m rconv [--info]" in bad.stderr
