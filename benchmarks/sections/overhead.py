"""overhead: the fixed cost per call on tiny inputs, and that cost paid per image of a
stack."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import emit, lib, rconv_table, report, time_blocks, timed_row, versus

OVERHEAD_TARGET_US, OVERHEAD_STRETCH_US = 8.0, 5.0


def _target(us: float) -> str:
    if us <= OVERHEAD_STRETCH_US:
        return f"ok (<= {OVERHEAD_STRETCH_US:g})"
    if us <= OVERHEAD_TARGET_US:
        return f"ok (<= {OVERHEAD_TARGET_US:g})"
    return f"> {OVERHEAD_TARGET_US:g}"


def run(rows: list, quick: bool) -> None:
    """Fixed cost per call on tiny inputs: 5 rounds, each one block of 2000 calls per library
    (per-call time = block time / 2000), then a per-image loop over a stack."""
    cv2, ss, torch, F = lib.cv2, lib.ss, lib.torch, lib.F
    repeats, number = 5, 2000
    peers_cols = []
    for name in ("cv2", "scipy", "torch"):
        peers_cols += versus(name, width=8, unit="us")
    table = rconv_table(
        34, ("target", "target", 12, "s"), *peers_cols, rconv="rconv us", rconv_width=8, unit="us"
    )
    print(
        f"\noverhead: median per-call time, {repeats} rounds x {number} calls per library; "
        f"issue target <= {OVERHEAD_TARGET_US:g} us per rconv call "
        f"(stretch {OVERHEAD_STRETCH_US:g} us)"
    )
    if cv2 is None:
        print("(cv2 is not importable: no cv2 peers)")
    if torch is None:
        print("(torch is not importable: no torch peers)")
    table.header()
    rng = np.random.default_rng(4)
    a = rng.standard_normal((8, 8), dtype=np.float32)
    k = rng.standard_normal((3, 3), dtype=np.float32)
    x = a.reshape(1, 1, 8, 8).copy()
    w = k.reshape(1, 1, 3, 3).copy()
    cases = [("correlate2d same 8x8 3x3 f32", partial(rconv.correlate2d, a, k, "same"), {})]
    if cv2 is not None:
        cases[0][2]["cv2"] = partial(cv2.filter2D, a, -1, k, borderType=cv2.BORDER_CONSTANT)
    if ss is not None:
        cases[0][2]["scipy"] = partial(ss.correlate2d, a, k, "same")
    # the nn calls and their torch peers (None when torch is not importable)
    nn_calls = [
        ("conv2d (1,1,8,8) 3x3 pad 1 f32", "conv2d", (x, w), {"padding": 1}),
        ("max_pool2d (1,1,8,8) k2 f32", "max_pool2d", (x, 2), {}),
        ("adaptive_avg_pool2d (1,1,8,8) 1", "adaptive_avg_pool2d", (x, 1), {}),
    ]
    for case, fn, args, kw in nn_calls:
        peers = {}
        if torch is not None:
            targs = tuple(torch.from_numpy(v) if isinstance(v, np.ndarray) else v for v in args)
            peers["torch"] = partial(getattr(F, fn), *targs, **kw)
        cases.append((case, partial(getattr(rconv, fn), *args, **kw), peers))
    for case, f, peers in cases:
        fns = {"rconv": f, **peers}
        t = time_blocks(fns, rounds=repeats, calls=1, number=number)
        row = report({"group": "overhead", "case": case}, t, unit="us")
        row["target"] = _target(row["rconv_us"])
        row["target_us"], row["stretch_us"] = OVERHEAD_TARGET_US, OVERHEAD_STRETCH_US
        emit(rows, table, row)
    # the same fixed cost paid per image of a stack
    stack = rng.standard_normal((256, 128, 128), dtype=np.float32)
    k5 = rng.standard_normal((5, 5), dtype=np.float32)

    def rconv_loop():
        for img in stack:
            rconv.correlate2d(img, k5, "same")

    fns = {"rconv": rconv_loop}
    if cv2 is not None:

        def cv2_loop():
            for img in stack:
                cv2.filter2D(img, -1, k5, borderType=cv2.BORDER_CONSTANT)

        fns["cv2"] = cv2_loop
    loop_table = rconv_table(46, *versus("cv2", width=8))
    loop_table.header()
    case = "loop of correlate2d same: 256 x 128x128 5x5 f32"
    emit(rows, loop_table, timed_row("overhead", case, fns))
