"""The notebooks' committed outputs read as a learner's page: no stray default object reprs
(``<rconv.nn.Sequential at 0x...>``, the value of a cell's last expression left showing), and no
error outputs. The notebooks are executed in tests/integration/test_notebooks.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import stray_outputs

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_check_finds_a_stray_repr():
    cell = {
        "outputs": [{"output_type": "execute_result", "data": {"text/plain": ["<a.B at 0x7f>"]}}]
    }
    assert stray_outputs({"cells": [cell]}) == ["<a.B at 0x7f>"]
    ok = {"outputs": [{"output_type": "stream", "text": ["Sequential(\n  (0): ReLU()\n)\n"]}]}
    assert stray_outputs({"cells": [ok]}) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_outputs_have_no_stray_reprs(path):
    assert stray_outputs(json.loads(path.read_text())) == []


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 5
