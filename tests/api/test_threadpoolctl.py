"""rconv's pool under threadpoolctl: listed by threadpool_info, limited by threadpool_limits,
restored after it; optional at run time; and the import stays cheap."""

from __future__ import annotations

import subprocess
import sys

import pytest
import threadpoolctl  # in the test extra: a missing one fails here rather than skipping

import rconv


def _rconv_pools():
    return [i for i in threadpoolctl.threadpool_info() if i["internal_api"] == "rconv"]


def test_threadpool_info_lists_rconv(threads):
    threads(2)
    (info,) = _rconv_pools()
    assert info["user_api"] == "rconv"
    assert info["num_threads"] == 2
    assert info["version"] == rconv.__version__
    assert "_rconv" in info["filepath"]


@pytest.mark.parametrize("user_api", [None, "rconv"])
def test_threadpool_limits_sets_and_restores(threads, user_api):
    threads(2)
    with threadpoolctl.threadpool_limits(limits=1, user_api=user_api):
        assert rconv.get_num_threads() == 1
        assert _rconv_pools()[0]["num_threads"] == 1
    assert rconv.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert rconv.get_num_threads() == 2  # another API: untouched


def test_limits_by_dict_and_the_controller(threads):
    threads(2)
    with threadpoolctl.threadpool_limits(limits={"rconv": 1}):
        assert rconv.get_num_threads() == 1
    controller = threadpoolctl.ThreadpoolController().select(internal_api="rconv")
    with controller.limit(limits=1):
        assert rconv.get_num_threads() == 1
    assert rconv.get_num_threads() == 2


def _run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout


def test_optional_at_run_time():
    code = (
        "import sys; sys.modules['threadpoolctl'] = None\n"  # as if it were not installed
        "import rconv; print(rconv.get_num_threads() >= 1)"
    )
    assert _run(code).strip() == "True"


def test_import_time_under_100_ms():
    # the time `import rconv` adds once NumPy is loaded (its registration with
    # threadpoolctl included); the best of three fresh processes
    code = (
        "import time, numpy\nt = time.perf_counter(); import rconv; print(time.perf_counter() - t)"
    )
    best = min(float(_run(code)) for _ in range(3))
    assert best < 0.1, f"import rconv took {best * 1e3:.1f} ms"
