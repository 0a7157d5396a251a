"""rconv's AVX-512 kernels use 512-bit registers: a check of the compiled module's machine code.

rconv compiles its own kernels once per SIMD level. The functions compiled for the avx512
level are the ``twin512`` of ``simd_twin!`` (auto-vectorised kernels), the ``at512`` of
``dispatch_at`` (the kernels written over ``Vector``) and the intrinsics of the ``avx512``
modules. LLVM may still vectorise such a function with 256-bit or 128-bit vectors, or not at
all (batch norm's float64 sums once compiled to scalar code at every level), so each of
them must contain an instruction on a zmm register. ``objdump`` (GNU binutils) reads the
module; it is part of the build toolchain this suite needs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import defaultdict

import pytest

from rconv import _rconv

HEADER = re.compile(r"^[0-9a-f]+ <(?P<name>[^>]*)>:$")
AVX512_FUNCTION = re.compile(r"^_rconv::.*(::twin512|::at512|::avx512::\w+)$")


def _functions(path: str) -> tuple[dict[str, list[bool]], int]:
    """For each function name compiled for the avx512 level, whether each of its instances
    (monomorphisations share a demangled name) uses a zmm register; and how many of rconv's
    functions have a name at all (none in a module without a symbol table)."""
    objdump = shutil.which("objdump")
    assert objdump is not None, "objdump (GNU binutils) is needed: apt-get install binutils"
    text = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", "-C", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found: dict[str, list[bool]] = defaultdict(list)
    current = None
    named = 0
    for line in text.splitlines():
        m = HEADER.match(line)
        if m:
            name = m.group("name")
            named += name.startswith("_rconv::")
            current = name if AVX512_FUNCTION.match(name) else None
            if current:
                found[current].append(False)
        elif current and "zmm" in line:
            found[current][-1] = True
    return found, named


def test_every_avx512_kernel_uses_zmm_registers() -> None:
    found, named = _functions(_rconv.__file__)
    if named == 0:
        # the release wheel (.ci/build-wheel, linked by zig) carries no symbol table; the
        # suite's `pip install .` build does, and CI checks it there
        pytest.skip("the installed module has no symbol table (a release wheel): nothing to read")
    # the families rconv compiles at avx512: twins, Vector kernels, intrinsics
    assert any(n.endswith("::twin512") for n in found), sorted(found)
    assert any(n.endswith("::at512") for n in found), sorted(found)
    assert any("::avx512::" in n for n in found), sorted(found)
    without = {n: f"{v.count(False)} of {len(v)}" for n, v in found.items() if not all(v)}
    assert not without, f"avx512 functions without a zmm instruction: {without}"


def test_the_check_sees_a_function_without_zmm(tmp_path) -> None:
    """The parser reports an avx512 function whose code stays on ymm registers."""
    asm = tmp_path / "k.s"
    asm.write_text(
        "\t.text\n"
        "\t.globl _ZN6_rconv4demo4fast7twin51217h0123456789abcdefE\n"
        "_ZN6_rconv4demo4fast7twin51217h0123456789abcdefE:\n"
        "\tvaddps %zmm0, %zmm1, %zmm2\n\tret\n"
        "\t.globl _ZN6_rconv4demo4slow7twin51217h0123456789abcdefE\n"
        "_ZN6_rconv4demo4slow7twin51217h0123456789abcdefE:\n"
        "\tvaddps %ymm0, %ymm1, %ymm2\n\tret\n"
    )
    obj = tmp_path / "k.o"
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc is not None, "a C compiler (the build toolchain's) assembles the sample"
    subprocess.run([cc, "-c", str(asm), "-o", str(obj)], check=True)
    found, named = _functions(str(obj))
    assert named == 2
    assert found == {"_rconv::demo::fast::twin512": [True], "_rconv::demo::slow::twin512": [False]}
