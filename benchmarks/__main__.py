"""The runner: ``python -m benchmarks [options]`` (or ``python benchmarks/bench.py``)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from benchmarks import __doc__ as _doc
from benchmarks import harness, sections


def parser() -> argparse.ArgumentParser:
    """The runner's arguments."""
    prog = "python -m benchmarks" if sys.argv[0].endswith("__main__.py") else None
    p = argparse.ArgumentParser(prog=prog, description=(_doc or "").splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="threads for rconv and every reference")
    p.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes")
    p.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results.json"))
    p.add_argument(
        "--huge",
        action="store_true",
        help="also check memory on a 16384x16384 float32 image (needs ~3 GiB, slow)",
    )
    p.add_argument(
        "--only", choices=sections.SECTIONS, default=None, help="run one group of benchmarks"
    )
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A.json", "B.json"),
        help="print the change per row from run A to run B (two --json outputs) and exit",
    )
    return p


def main(argv: Optional[list] = None) -> None:
    """Run the sections `argv` (default: the command line) selects and write their JSON, or
    compare two runs."""
    args = parser().parse_args(argv)
    if args.compare:
        harness.compare(*args.compare)
        return
    harness.setup(args.threads, args.quick)  # before anything imports NumPy
    head = harness.start()
    rows: list = []
    torch_tried = False
    for name in sections.selected(args.only):
        if name in sections.TORCH and not torch_tried:
            torch_tried = True
            if not harness.import_torch():
                print("\n(torch is not importable: the torch rows are skipped)")
        section = sections.load(name)
        section.run(rows, args.quick)
        if name == "fft" and args.huge:
            section.run_huge(rows)
    harness.finish(args.json, head, rows, args.only)


if __name__ == "__main__":
    main()
