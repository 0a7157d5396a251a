"""The direct engine's gradients (dense and grouped, stride 1 and 2) against torch's
``convolution_backward`` when torch is importable."""

from __future__ import annotations

import numpy as np
import pytest

import rconv
from conftest import assert_matches_reference, seed_for

torch = pytest.importorskip("torch", reason="torch parity: torch not installed")

CASES = [
    (2, 16, 32, 9, 3, 1, 1, 1),
    (3, 24, 40, 8, 3, 2, 1, 1),
    (2, 17, 5, 11, 5, 2, 2, 1),
    (2, 32, 32, 7, 3, 1, 1, 4),
    (2, 48, 24, 9, 3, 2, 1, 2),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_matches_torch(case, dtype):
    n, cin, cout, size, k, s, p, g = case
    rng = np.random.default_rng(seed_for("torch_direct_backward", case))
    x = rng.standard_normal((n, cin, size, size)).astype(dtype)
    w = rng.standard_normal((cout, cin // g, k, k)).astype(dtype)
    oh = (size + 2 * p - k) // s + 1
    dy = rng.standard_normal((n, cout, oh, oh)).astype(dtype)
    gi, gw, gb = rconv.conv2d_backward(dy, x, w, s, p, 1, g)
    ti, tw, tb = torch.ops.aten.convolution_backward(
        *map(torch.from_numpy, (dy, x, w)),
        [cout],
        [s, s],
        [p, p],
        [1, 1],
        False,
        [0, 0],
        g,
        [True, True, True],
    )
    for got, want, a, b in ((gi, ti, dy, w), (gw, tw, dy, x), (gb, tb, dy, np.ones(1))):
        want = want.numpy()
        if dtype == np.float64:
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9 * np.abs(want).max())
        else:
            assert_matches_reference(got, want, a, b)
