"""``python benchmarks/bench.py [options]``: the same runner as ``python -m benchmarks``, from
any directory (see ``benchmarks/__init__.py`` for the options and the timing)."""

from __future__ import annotations

import os
import sys

if __name__ == "__main__":
    # the repository, not this folder, on the path: ``benchmarks`` is imported as the package
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    from benchmarks.__main__ import main

    main()
