"""The examples of the documentation's pages (docs/*.md) run and print what they show.

The API pages are the docstrings, whose examples tests/api/test_threads_and_api.py runs; the
notebooks run in tests/integration/test_notebooks.py. This covers the prose pages' ``>>>`` blocks.
"""

from __future__ import annotations

import doctest
import pathlib
import re

import pytest

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.glob("*.md"))


def test_pages_exist():
    names = {p.stem for p in PAGES}
    for page in ("index", "getting-started", "scipy-parity", "ndimage-parity", "torch-parity"):
        assert page in names, page
    for page in ("dask", "performance", "design", "changelog", "user-guide", "examples"):
        assert page in names, page
    for page in ("boundaries",):
        assert page in names, page


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page_examples(page):
    res = doctest.testfile(
        str(page), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert res.failed == 0, f"{page.name}: {res.failed} of {res.attempted} examples failed"


def test_api_reference_lists_every_public_object():
    import inspect

    import rconv
    import rconv.kernels
    import rconv.ndimage
    import rconv.nn
    import rconv.nn.functional
    import rconv.optim

    index = (DOCS / "api" / "index.rst").read_text()
    sections = index.split(".. module:: ")
    listed = {}
    for sec in sections[1:]:
        mod, body = sec.split("\n", 1)
        listed[mod.strip()] = {ln.strip() for ln in body.splitlines() if ln.startswith("   ")}
    kernels_sec = index.split(".. currentmodule:: rconv.kernels")[1].split("``rconv.dask``")[0]
    listed["rconv.kernels"] = {ln.strip() for ln in kernels_sec.splitlines()}
    mods = [rconv, rconv.nn, rconv.nn.functional, rconv.optim, rconv.kernels, rconv.ndimage]
    try:
        import rconv.dask
    except ImportError:
        pass  # rconv.dask needs the dask extra; its section is checked where it is installed
    else:
        mods += [rconv.dask, rconv.dask.ndimage]
    # an alias (rconv.nn.SGD is rconv.optim.SGD) is listed once, in its home's section
    home = {}
    for mod in mods:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if name in listed.get(mod.__name__, ()):
                home.setdefault(id(obj), f"{mod.__name__}.{name}")
    for mod in mods:
        for name in mod.__all__:
            obj = getattr(mod, name)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                assert id(obj) in home, f"{mod.__name__}.{name} not in api/index.rst"
                assert name in listed[mod.__name__] or home[id(obj)].endswith(f".{name}")
    assert home[id(rconv.nn.SGD)] == "rconv.optim.SGD"
    assert home[id(rconv.nn.functional.conv2d)] == "rconv.conv2d"


def test_the_readme_tour_runs():
    """The README's Python blocks run as a user would paste them, in a fresh namespace."""
    readme = (DOCS.parent / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks, "the README has no Python example"
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
