"""`rconv.show_config()` and `python -m rconv --info`."""

from __future__ import annotations

import importlib.metadata
import os
import platform
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
        "gemm: ",
        "winograd F(2x2,3x3): on",
        "threads: 2 (from set_num_threads)",
        f"numpy {np.__version__}",
        "optional: ",
    ):
        assert part in out, part
    c = _info.config()
    assert c["rconv_simd"] in ("generic", "avx2", "avx512")
    assert c["rconv_simd_cpu"] in ("generic", "avx2", "avx512")
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


_LEVELS = ("generic", "avx2", "avx512")


def _cpu_level() -> str:
    return rconv._rconv.simd_info()[1]


def test_rconv_simd_caps_the_level_never_above_the_cpu():
    cpu = _cpu_level()
    for cap in _LEVELS:
        r = _run(["-m", "rconv", "--info"], {"RCONV_SIMD": cap})
        assert r.returncode == 0, r.stderr
        want = _LEVELS[min(_LEVELS.index(cap), _LEVELS.index(cpu))]
        assert f"rconv kernels: {want} (cpu: {cpu}, capped by RCONV_SIMD={cap})" in r.stdout
        # the cap does not reach the gemm crate
        assert "gemm: " in r.stdout and "not capped by RCONV_SIMD" in r.stdout or cpu == "generic"
    r = _run(["-m", "rconv", "--info"], {"RCONV_SIMD": ""})
    assert f"rconv kernels: {cpu} (cpu: {cpu}, no cap)" in r.stdout


def test_rconv_simd_unknown_value_fails_at_import():
    r = _run(["-c", "import rconv"], {"RCONV_SIMD": "avx9000"})
    assert r.returncode != 0
    assert "ValueError" in r.stderr
    assert 'RCONV_SIMD="avx9000" is not a SIMD level' in r.stderr
    assert "'generic', 'avx2', 'avx512'" in r.stderr


def test_private_level_override_is_capped_and_restored():
    cpu = _cpu_level()
    top = rconv._rconv.simd_level()
    try:
        for level in _LEVELS:
            got = rconv._rconv._set_simd_level(level)
            assert got == _LEVELS[min(_LEVELS.index(level), _LEVELS.index(cpu))]
            assert rconv._rconv.simd_level() == got
    finally:
        assert rconv._rconv._set_simd_level(None) == top
    try:
        rconv._rconv._set_simd_level("sse9")
    except ValueError as e:
        assert "_set_simd_level" in str(e) and "not a SIMD level" in str(e)
    else:  # pragma: no cover
        raise AssertionError("no error for an unknown level")
    assert rconv._rconv.simd_level() == top


def test_fma_peak_is_positive_and_checks_its_arguments():
    assert rconv._rconv.fma_peak("float32", 1, 0.01) > 0
    assert rconv._rconv.fma_peak("float64", 1, 0.01) > 0
    for kwargs, what in (
        ({"dtype": "int8"}, "dtype"),
        ({"threads": 0}, "threads"),
        ({"seconds": -1.0}, "seconds"),
    ):
        try:
            rconv._rconv.fma_peak(**kwargs)
        except ValueError as e:
            assert f"fma_peak: {what}" in str(e)
        else:  # pragma: no cover
            raise AssertionError(kwargs)


def test_cpu_description():
    cpu = _info.cpu_description()
    assert isinstance(cpu["model"], str) and cpu["model"]
    # flags of SIMD_FLAGS, in its order; show_config's are those of them it reports
    assert cpu["simd_flags"] == [f for f in _info.SIMD_FLAGS if f in cpu["simd_flags"]]
    assert set(_info._FLAGS) <= set(_info.SIMD_FLAGS)
    shown = [f for f in cpu["simd_flags"] if f in _info._FLAGS]
    assert _info.config()["cpu"] == {"model": cpu["model"], "simd_flags": shown}
    assert cpu["logical_cpus"] == os.cpu_count()
    assert cpu["affinity_cpus"] == len(os.sched_getaffinity(0))
    fields = _info._cpuinfo()
    for field, key in (("cpu family", "cpu_family"), ("model", "model_number"), ("stepping",) * 2):
        assert cpu.get(key) == fields.get(field)
    if "flags" in fields:  # x86 Linux
        assert set(cpu["simd_flags"]) == set(fields["flags"].split()) & set(_info.SIMD_FLAGS)


def test_cpu_description_without_proc_cpuinfo(monkeypatch):
    monkeypatch.setattr(_info, "_cpuinfo", dict)
    monkeypatch.setattr(
        _info, "_lscpu", lambda: {"Model name": "Neoverse-V2", "Flags": "fp asimd sve2 asimddp"}
    )
    cpu = _info.cpu_description()
    assert (cpu["model"], cpu["simd_flags"]) == ("Neoverse-V2", ["asimd", "asimddp", "sve2"])
    assert not {"cpu_family", "model_number", "stepping"} & set(cpu)
    monkeypatch.setattr(_info, "_lscpu", dict)
    cpu = _info.cpu_description()
    assert cpu["model"] == (platform.processor() or platform.machine())
    assert cpu["simd_flags"] == []
