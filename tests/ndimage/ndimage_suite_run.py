"""Runs scipy's own scipy/ndimage/tests/test_filters.py with scipy.ndimage's 13 linear
filters rebound to rconv.ndimage's (used by tests/ndimage/test_ndimage_scipy_suite.py, in a
subprocess: ``python tests/ndimage/ndimage_suite_run.py COUNTS_JSON [pytest args]``).

The filters are rebound *before* scipy's test module is imported, because its
parametrisations capture the functions at import; scipy's ``xp_capabilities_table`` is
keyed by function object, so each entry is copied to rconv's function (wrapped in a counter,
whose counts are written to COUNTS_JSON at the end, so that the caller can check that every
filter was exercised).
"""

from __future__ import annotations

import functools
import json
import sys

import pytest
import scipy._lib._array_api as array_api
import scipy.ndimage

import rconv.ndimage

NAMES = list(rconv.ndimage.__all__)
COUNTS = dict.fromkeys(NAMES, 0)


def counted(name):
    func = getattr(rconv.ndimage, name)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        COUNTS[name] += 1
        return func(*args, **kwargs)

    return wrapper


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    for name in NAMES:
        theirs = getattr(scipy.ndimage, name)
        ours = counted(name)
        if theirs in array_api.xp_capabilities_table:
            array_api.xp_capabilities_table[ours] = array_api.xp_capabilities_table[theirs]
        setattr(scipy.ndimage, name, ours)
    code = pytest.main(args)
    with open(out, "w") as f:
        json.dump(COUNTS, f)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
