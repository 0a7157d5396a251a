"""`rconv.show_config()` and `python -m rconv --info`: what this rconv is and runs on."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Dict, List, Optional, TypedDict

from . import _rconv, _threads

#: The optional packages whose versions are reported (read from their metadata: not imported).
OPTIONAL = ("scipy", "dask", "distributed", "threadpoolctl", "opencv-python-headless", "torch")

#: The SIMD flags of the CPU a benchmark run records (x86 and Arm), in this order.
SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_tile",
    "amx_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "sve",
    "sve2",
)

#: The SIMD flags worth reporting in :func:`show_config` (a part of :data:`SIMD_FLAGS`).
_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni")


def _version(dist: str) -> Optional[str]:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Cpu(TypedDict):
    model: str
    simd_flags: List[str]


class _Config(TypedDict):
    version: str
    build_profile: str
    cpu: _Cpu
    rconv_simd: str
    rconv_simd_cpu: str
    rconv_simd_cap: Optional[str]
    gemm_features: str
    winograd: bool
    threads: int
    threads_source: str
    python: str
    numpy: Optional[str]
    optional: Dict[str, Optional[str]]


class _CpuCounts(_Cpu):
    logical_cpus: Optional[int]
    affinity_cpus: Optional[int]


class CpuDescription(_CpuCounts, total=False):
    cpu_family: str
    model_number: str
    stepping: str


def _cpuinfo() -> Dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (keys in lower case); none where it
    cannot be read."""
    fields: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    if fields:
                        break  # first processor only
                    continue
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:  # not Linux
        pass
    return fields


def _lscpu() -> Dict[str, str]:
    """lscpu's fields; none where it cannot be run."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines())}


def cpu_description() -> CpuDescription:
    """The CPU as a benchmark run records it (``benchmarks/``, in its JSON's ``cpu``).

    ``model``: the model name; ``simd_flags``: those of :data:`SIMD_FLAGS` the CPU has (the
    flags of /proc/cpuinfo, its features on Arm); both from lscpu where /proc/cpuinfo lacks
    them, else the platform module's processor or machine name and no flags.
    ``logical_cpus``: ``os.cpu_count()``; ``affinity_cpus``: the CPUs this process may run on;
    ``cpu_family``, ``model_number`` and ``stepping`` where /proc/cpuinfo gives them.
    :func:`show_config` prints the model and the flags of these that concern rconv.
    """
    fields = _cpuinfo()
    model = fields.get("model name")
    flags = (fields.get("flags") or fields.get("features") or "").split()
    if not model or not flags:
        ls = _lscpu()
        model = model or ls.get("Model name")
        flags = flags or ls.get("Flags", "").split()
    have = set(flags)
    affinity = getattr(os, "sched_getaffinity", None)  # Linux only
    info: CpuDescription = {
        "model": model or platform.processor() or platform.machine(),
        "simd_flags": [f for f in SIMD_FLAGS if f in have],
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(affinity(0)) if affinity else os.cpu_count(),
    }
    if "cpu family" in fields:
        info["cpu_family"] = fields["cpu family"]
    if "model" in fields:
        info["model_number"] = fields["model"]
    if "stepping" in fields:
        info["stepping"] = fields["stepping"]
    return info


def _cpu() -> _Cpu:
    cpu = cpu_description()
    return {"model": cpu["model"], "simd_flags": [f for f in cpu["simd_flags"] if f in _FLAGS]}


def config() -> _Config:
    """The facts :func:`show_config` prints, as a dict."""
    profile, simd, gemm, winograd, threads, source = _rconv.build_info()
    _, cpu_level, cap = _rconv.simd_info()
    if _threads._source is not None and source == "set_num_threads":
        source = _threads._source  # set through threadpoolctl
    return {
        "version": _rconv.__version__,
        "build_profile": profile,
        "cpu": _cpu(),
        "rconv_simd": simd,
        "rconv_simd_cpu": cpu_level,
        "rconv_simd_cap": cap,
        "gemm_features": gemm,
        "winograd": winograd,
        "threads": threads,
        "threads_source": source,
        "python": sys.version.split()[0],
        "numpy": _version("numpy"),
        "optional": {name: _version(name) for name in OPTIONAL},
    }


def show_config() -> None:
    """Print how this rconv was built and what it runs on.

    The version and build profile; the CPU model and its SIMD flags; the SIMD level of
    rconv's own kernels (``generic``, ``avx2`` or ``avx512``: the CPU's best, capped by
    ``RCONV_SIMD``), and the level the GEMM crate picks by itself (the cap does not reach
    it); whether the Winograd path of 3x3 convolutions is on
    (``RCONV_NO_WINOGRAD`` turns it off); the thread count and where it came from
    (:func:`set_num_threads`, ``RCONV_NUM_THREADS``, the default, or threadpoolctl); and the
    versions of NumPy and of the optional packages present (read from their metadata,
    without importing them).

    Examples
    --------
    >>> import rconv
    >>> rconv.show_config()  # doctest: +ELLIPSIS
    rconv ...
      build profile: ...
      cpu: ...
      threads: ...
    """
    c = config()
    cpu = c["cpu"]
    lines: List[str] = [
        f"rconv {c['version']}",
        f"  build profile: {c['build_profile']}",
        f"  cpu: {cpu['model']} [{' '.join(cpu['simd_flags']) or 'no SIMD flags read'}]",
        f"  rconv kernels: {c['rconv_simd']} (cpu: {c['rconv_simd_cpu']}, "
        + (f"capped by RCONV_SIMD={c['rconv_simd_cap']})" if c["rconv_simd_cap"] else "no cap)"),
        f"  gemm: {c['gemm_features']}",
        f"  winograd F(2x2,3x3): {'on' if c['winograd'] else 'off (RCONV_NO_WINOGRAD)'}",
        f"  threads: {c['threads']} (from {c['threads_source']})",
        f"  python {c['python']}, numpy {c['numpy']}",
    ]
    present = [f"{k} {v}" for k, v in c["optional"].items() if v]
    absent = [k for k, v in c["optional"].items() if not v]
    lines.append("  optional: " + (", ".join(present) or "none"))
    if absent:
        lines.append("  not installed: " + ", ".join(absent))
    print("\n".join(lines))
