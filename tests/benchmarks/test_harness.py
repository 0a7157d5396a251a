"""The benchmarks' harness and runner (``benchmarks/``): what they import, select, write and
compare. Nothing here judges a time."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) leaves it out
    sys.path.insert(0, str(ROOT))

from benchmarks import harness, sections  # noqa: E402
from benchmarks.__main__ import main, parser  # noqa: E402

# what notebook 05 reads, besides each row's group, case and vs_<lib> (+ _range) keys
FULL_RUN = json.loads((ROOT / "notebooks" / "05_full_run.json").read_text())


def _python(code: str, cwd=ROOT, args=()) -> subprocess.CompletedProcess:
    """`code` (or, with `args`, a command line) in a fresh interpreter, without the thread
    variables of this process."""
    env = {k: v for k, v in os.environ.items() if k not in harness.THREAD_VARS}
    cmd = [sys.executable, *args] if args else [sys.executable, "-c", code]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def test_import_reads_no_arguments_and_sets_nothing():
    r = _python(
        """
import os, sys
sys.argv = ["bench", "--bogus"]
import benchmarks, benchmarks.harness, benchmarks.__main__, benchmarks.bench
from benchmarks import sections
def state():
    print(sorted(m for m in ("numpy", "rconv", "torch", "cv2") if m in sys.modules),
          sorted(v for v in benchmarks.harness.THREAD_VARS if v in os.environ))
state()
for name in sections.SECTIONS:
    sections.load(name)
state()
"""
    )
    assert r.returncode == 0, r.stderr
    # no NumPy before the runner sets the thread variables; the sections import no torch
    assert r.stdout.splitlines() == ["[] []", "['numpy', 'rconv'] []"]


def test_only_choices_are_the_section_modules():
    only = next(a for a in parser()._actions if a.dest == "only")
    modules = {m.name for m in pkgutil.iter_modules(sections.__path__)}
    assert list(only.choices) == list(sections.SECTIONS)
    assert set(only.choices) == modules
    assert sections.TORCH <= modules
    for name in sections.SECTIONS:
        assert callable(sections.load(name).run), name
    assert callable(sections.load("fft").run_huge)


def test_selected_sections():
    everything = sections.selected(None)
    assert everything == [s for s in sections.SECTIONS if s != "grid"]
    assert sections.selected("nn") == ["nn", "one_thread"]
    assert sections.selected("grid") == ["grid"]
    assert sections.selected("train") == ["train"]


def _run(path: Path, rows: list, quick: bool = False) -> str:
    run = {
        "date": "2025-01-02T03:04:05+00:00",
        "cpu": {"model": f"CPU {path.stem}"},
        "rconv_simd": "avx2",
        "threads": 2,
        "quick": quick,
        "rows": rows,
    }
    path.write_text(json.dumps(run))
    return str(path)


def test_compare_prints_the_change_per_row(tmp_path, capsys):
    a = _run(
        tmp_path / "a.json",
        [
            {"group": "signal", "case": "c1", "rconv_ms": 2.0, "vs_scipy": 10.0},
            {"group": "signal", "case": "gone", "rconv_ms": 1.0},
        ],
    )
    b = _run(
        tmp_path / "b.json",
        [
            {"group": "signal", "case": "c1", "rconv_ms": 0.5, "vs_scipy": 40.0},
            {"group": "overhead", "case": "new", "rconv_us": 3.0},
        ],
        quick=True,
    )
    main(["--compare", a, b])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"A: {a}: CPU a, rconv simd avx2, 2 thread(s), 2025-01-02T03:04:05+00:00"
    assert lines[1].startswith(f"B: {b}: CPU b") and lines[1].endswith(" (quick)")
    body = [line.split() for line in lines[3:]]
    # B's rows first, in B's order, then those only in A
    assert body[1:] == [
        ["[signal]"],
        ["c1", "2.00ms", "0.50ms", "4.00x", "scipy", "10.0", "->", "40.0"],
        ["[overhead]"],
        ["new", "only", "in", "B"],
        ["[signal]"],
        ["gone", "only", "in", "A"],
    ]


def test_a_section_writes_what_notebook_05_reads(tmp_path):
    out = tmp_path / "run.json"
    r = _python(
        f"""
import time
from functools import partial
from benchmarks import harness
harness.setup(1, quick=True)
head = harness.start()
rows = []
fns = {{"rconv": partial(time.sleep, 0), "cv2": partial(time.sleep, 0)}}
table = harness.rconv_table(20, *harness.versus("cv2"))
harness.emit(rows, table, harness.timed_row("signal", "fake", fns, rounds=2, calls=1))
harness.finish({str(out)!r}, head, rows, "signal")
"""
    )
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    run = json.loads(out.read_text())
    assert list(run) == list(FULL_RUN)
    for key in ("timing", "versions", "thread_state"):
        assert list(run[key]) == list(FULL_RUN[key]), key
    assert {"model", "simd_flags", "logical_cpus", "affinity_cpus"} <= set(run["cpu"])
    assert set(run["cpu"]) <= set(FULL_RUN["cpu"])
    assert isinstance(run["cpu"]["model"], str)
    assert run["rconv_simd"] in ("generic", "avx2", "avx512")
    assert (run["threads"], run["quick"], run["only"]) == (1, True, "signal")
    assert run["thread_state"]["rconv"] == 1
    assert run["thread_state"]["env"]["OPENBLAS_NUM_THREADS"] == "1"
    assert run["date"][:4].isdigit() and run["date"][4] == "-"
    (row,) = run["rows"]
    assert (row["group"], row["case"]) == ("signal", "fake")
    lo, hi = row["vs_cv2_range"]
    assert lo <= row["vs_cv2"] <= hi
    assert row["rconv_ms"] >= 0 and row["cv2_ms"] >= 0
    assert {k: len(v) for k, v in row["per_round_ms"].items()} == {"rconv": 2, "cv2": 2}
    assert row["blocks"]["rounds"] == 2 and row["blocks"]["calls"] == {"rconv": 1, "cv2": 1}


def test_runner_entries(tmp_path):
    a = _run(tmp_path / "a.json", [{"group": "g", "case": "c", "rconv_ms": 1.0}])
    script = str(ROOT / "benchmarks" / "bench.py")
    # the script from anywhere, and the package from the repository
    for cwd, args in ((tmp_path, [script]), (ROOT, ["-m", "benchmarks"])):
        r = _python("", cwd=cwd, args=[*args, "--compare", a, a])
        assert r.returncode == 0, r.stderr
        assert "c" in r.stdout.split() and "1.00x" in r.stdout
        r = _python("", cwd=cwd, args=[*args, "--only", "bogus"])
        assert r.returncode == 2 and "invalid choice: 'bogus'" in r.stderr
