"""scipy's own tests of its filters (scipy/ndimage/tests/test_filters.py, all of it), run
in a subprocess against rconv.ndimage: scipy.ndimage's 13 linear filters are rebound to
rconv's before the test module is imported (tests/ndimage/ndimage_suite_run.py). scipy's conftest
supplies the ``xp`` fixture (NumPy here).

Excluded: nothing. A test of a scipy filter that rconv does not provide (median, rank,
min/max, generic, vectorized filters) runs against scipy's own function, as it would
without rconv; every one of rconv's 13 filters must be called by the suite (checked).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import scipy

HERE = pathlib.Path(__file__).parent
SCIPY = pathlib.Path(scipy.__file__).parent
SUITE = SCIPY / "ndimage" / "tests" / "test_filters.py"

# (test id, reason) pairs left out of scipy's suite, each with a guard test below
EXCLUDED: list[tuple[str, str]] = []


def test_scipys_filter_tests_pass_against_rconv(tmp_path):
    counts = tmp_path / "counts.json"
    deselect = [a for test, _ in EXCLUDED for a in ("--deselect", f"{SUITE}::{test}")]
    r = subprocess.run(
        [
            sys.executable,
            str(HERE / "ndimage_suite_run.py"),
            str(counts),
            "-q",
            "-p",
            "no:cacheprovider",
            f"--rootdir={SCIPY}",
            f"--confcutdir={SCIPY}",
            *deselect,
            str(SUITE),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    tail = "\n".join(r.stdout.splitlines()[-30:])
    assert r.returncode == 0, (
        f"scipy's filter tests failed against rconv:\n{tail}\n{r.stderr[-3000:]}"
    )
    assert " failed" not in tail and " passed" in tail, tail
    calls = json.loads(counts.read_text())
    assert all(n > 0 for n in calls.values()), f"filters never called by scipy's suite: {calls}"
