"""The sections of the benchmarks, one module each, each with ``run(rows, quick)``: it times
its rows, prints them and appends them to `rows`. The runner imports a module only once the
run's threads are set."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Optional

#: The sections in the order a run runs them (the choices of ``--only``).
SECTIONS = (
    "signal",
    "beyond",
    "fft",
    "ndimage",
    "dask",
    "nn",
    "one_thread",
    "grid",
    "overhead",
    "train",
)

#: The sections before which torch is imported (after the others, whose memory-bound cases its
#: thread pools slowed).
TORCH = frozenset({"nn", "one_thread", "grid", "overhead", "train"})


def selected(only: Optional[str]) -> list:
    """The sections a run with ``--only only`` runs: all but ``grid`` (13-15 minutes: its own
    run, notebooks/05_grid_run.json) without it; ``nn`` brings ``one_thread``, which compares
    its rows at 1 thread with the nn rows of the same run."""
    if only is None:
        return [s for s in SECTIONS if s != "grid"]
    return ["nn", "one_thread"] if only == "nn" else [only]


def load(name: str) -> ModuleType:
    """The module of section `name`."""
    return importlib.import_module(f"{__name__}.{name}")
