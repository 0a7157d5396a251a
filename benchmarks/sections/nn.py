"""nn: the CNN layers (conv2d and conv_transpose2d forward and backward, pooling) against
torch on the same thread count, with the convolutions' share of NumPy's matmul rate and
their peak extra memory. The conv rows and torch's aten calls serve other sections too."""

from __future__ import annotations

from functools import partial

import numpy as np

import rconv
from benchmarks.harness import (
    add_stat,
    emit,
    fresh_process,
    lib,
    rconv_table,
    report,
    time_blocks,
    timed_row,
    versus,
)

# name, batch, in channels, out channels, size, kernel, stride, padding, groups
CONV_LAYERS = [
    ("conv1 3->64 224 k7 s2", 4, 3, 64, 224, 7, 2, 3, 1),
    ("3x3 64->64 @56", 8, 64, 64, 56, 3, 1, 1, 1),
    ("3x3 128->128 @28", 8, 128, 128, 28, 3, 1, 1, 1),
    ("3x3 256->256 @14", 8, 256, 256, 14, 3, 1, 1, 1),
    ("1x1 256->64 @56", 8, 256, 64, 56, 1, 1, 0, 1),
    ("depthwise 3x3 64 @56", 8, 64, 64, 56, 3, 1, 1, 64),
]
MATMUL_FLOPS = 2.0 * 256 * 2304 * 3136

# name, batch, in channels, out channels, size, kernel, stride, padding, output padding
TRANSPOSED_LAYERS = [
    ("64->32 @28 k4 s2 p1", 8, 64, 32, 28, 4, 2, 1, 0),
    ("128->64 @14 k3 s2 p1 op1", 8, 128, 64, 14, 3, 2, 1, 1),
]

NN_TABLE = rconv_table(
    44,
    ("GF/s", "gflops", 6, "f"),
    *versus("torch"),
    ("%matmul", "pct_matmul", 7, "f"),
    ("%bw", "pct_bw", 5, "f"),
    ("extraMiB", "extra_mib", 9, "f"),
    ("outMiB", "output_mib", 7, "f"),
)


def _matmul():
    """NumPy float32 matmul on the conv-shaped product 256x2304 @ 2304x3136."""
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 2304), dtype=np.float32)
    b = rng.standard_normal((2304, 3136), dtype=np.float32)
    return partial(np.matmul, a, b)


def peak_extra_memory(layer) -> dict:
    """RSS high-water growth of one conv2d call, measured in a fresh process (VmHWM)."""
    name, n, cin, cout, size, k, s, p, g = layer
    words = fresh_process(f"""
x = np.ones(({n}, {cin}, {size}, {size}), np.float32)
w = np.ones(({cout}, {cin // g}, {k}, {k}), np.float32)
rconv.conv2d(x[:1, :, :{k}, :{k}], w, padding={p}, groups={g})  # load everything once
before = hwm()
out = rconv.conv2d(x, w, stride={s}, padding={p}, groups={g})
print(hwm() - before, out.nbytes)
""")
    grow, out_bytes = (int(v) for v in words)
    return {"extra_mib": grow / 2**20, "output_mib": out_bytes / 2**20}


def torch_conv_backward(dyt, xt, wt, s, p, g, transposed_pad=None):
    """torch's three conv gradients as one aten call (``transposed_pad``: the output padding
    of a transposed convolution, which has ``cout = wt.shape[1] * g``)."""
    transposed = transposed_pad is not None
    cout = wt.shape[1] * g if transposed else wt.shape[0]
    op = transposed_pad or 0
    return partial(
        lib.torch.ops.aten.convolution_backward,
        dyt,
        xt,
        wt,
        [cout],
        [s, s],
        [p, p],
        [1, 1],
        transposed,
        [op, op],
        g,
        [True, True, True],
    )


def torch_max_pool_backward(g, x, k: int, s: int, p: int, indices):
    """torch's max_pool2d backward from saved `indices` (square kernel, stride and padding,
    dilation 1, floor mode), as a call with no arguments."""
    return partial(
        lib.torch.ops.aten.max_pool2d_with_indices_backward,
        g,
        x,
        [k, k],
        [s, s],
        [p, p],
        [1, 1],
        False,
        indices,
    )


def transposed_rows(layer, rng, group: str = "nn") -> list:
    """conv_transpose2d forward and backward (input, weight and bias gradients) against
    torch's ``conv_transpose2d`` and ``convolution_backward(transposed=True)``."""
    name, n, cin, cout, size, k, s, p, op = layer
    x = rng.standard_normal((n, cin, size, size), dtype=np.float32)
    w = rng.standard_normal((cin, cout, k, k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    y = rconv.conv_transpose2d(x, w, b, s, p, op)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = 2.0 * x.size * cout * k * k
    fwd_fns = {"rconv": partial(rconv.conv_transpose2d, x, w, b, s, p, op)}
    bwd_fns = {"rconv": partial(rconv.conv_transpose2d_backward, dy, x, w, s, p, op)}
    if lib.torch is not None:
        xt, wt, bt, dyt = (lib.torch.from_numpy(a) for a in (x, w, b, dy))
        fwd_fns["torch"] = partial(lib.F.conv_transpose2d, xt, wt, bt, s, p, op)
        bwd_fns["torch"] = torch_conv_backward(dyt, xt, wt, s, p, 1, transposed_pad=op)
    out = []
    for kind, fns, f in (("fwd", fwd_fns, flops), ("bwd", bwd_fns, 2 * flops)):
        t = time_blocks(fns)
        row = report({"group": group, "case": f"conv_transpose2d {kind} {name} N={n}"}, t)
        row["gflops"] = f / t.medians["rconv"] / 1e9
        out.append(row)
    return out


def conv_rows(layer, rng, matmul=None, group: str = "nn") -> list:
    """conv2d forward and backward of one layer against torch; with `matmul`, also the
    forward's share of NumPy's matmul GFLOP/s (same rounds) and its peak extra memory."""
    name, n, cin, cout, size, k, s, p, g = layer
    x = rng.standard_normal((n, cin, size, size), dtype=np.float32)
    w = rng.standard_normal((cout, cin // g, k, k), dtype=np.float32)
    b = rng.standard_normal(cout, dtype=np.float32)
    y = rconv.conv2d(x, w, b, s, p, 1, g)
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    flops = 2.0 * y.size * (cin // g) * k * k
    fwd_fns = {"rconv": partial(rconv.conv2d, x, w, b, s, p, 1, g)}
    if matmul is not None:
        fwd_fns["numpy_matmul"] = matmul
    bwd_fns = {"rconv": partial(rconv.conv2d_backward, dy, x, w, s, p, 1, g)}
    if lib.torch is not None:
        xt, wt, bt, dyt = (lib.torch.from_numpy(a) for a in (x, w, b, dy))
        fwd_fns["torch"] = partial(lib.F.conv2d, xt, wt, bt, s, p, 1, g)
        bwd_fns["torch"] = torch_conv_backward(dyt, xt, wt, s, p, g)
    tf = time_blocks(fwd_fns)
    fwd = report({"group": group, "case": f"conv2d fwd {name} N={n}"}, tf, ratios=("torch",))
    fwd["gflops"] = flops / tf.medians["rconv"] / 1e9
    if matmul is not None:
        # (flops / t_rconv) / (matmul flops / t_matmul), per round
        add_stat(
            fwd,
            "pct_matmul",
            [100 * flops / MATMUL_FLOPS * r for r in tf.ratios["numpy_matmul"]],
        )
    tb = time_blocks(bwd_fns)
    bwd = report({"group": group, "case": f"conv2d bwd {name} N={n}"}, tb)
    bwd["gflops"] = 2 * flops / tb.medians["rconv"] / 1e9
    if matmul is not None:
        fwd.update(peak_extra_memory(layer))
    return [fwd, bwd]


def run(rows: list, quick: bool) -> None:
    torch, F = lib.torch, lib.F
    matmul = _matmul()
    t = time_blocks({"numpy": matmul}, baseline=None)
    print(
        f"\nNumPy float32 matmul 256x2304 @ 2304x3136: "
        f"{MATMUL_FLOPS / t.medians['numpy'] / 1e9:.1f} GFLOP/s (same run; %matmul below: "
        "rconv GFLOP/s over the matmul's, both timed in the same rounds)"
    )
    NN_TABLE.header("nn: float32, torch on the same thread count")
    rng = np.random.default_rng(0)
    for layer in CONV_LAYERS:
        for row in conv_rows(layer, rng, matmul):
            emit(rows, NN_TABLE, row)
    for layer in TRANSPOSED_LAYERS:
        for row in transposed_rows(layer, rng):
            emit(rows, NN_TABLE, row)
    x = rng.standard_normal((8, 64, 112, 112), dtype=np.float32)
    xt = torch.from_numpy(x) if torch is not None else None
    copy_src = rng.standard_normal(1 << 24, dtype=np.float32)  # 64 MiB, beyond the caches
    copy_dst = np.empty_like(copy_src)
    for pool in ("max", "avg"):
        if pool == "max":
            name = "max_pool2d k3 s2 p1"
            fwd_fns = {"rconv": partial(rconv.max_pool2d, x, 3, 2, 1)}
            y = fwd_fns["rconv"]()
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            bwd_fns = {"rconv": partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1)}
        else:
            name = "avg_pool2d k2 s2"
            fwd_fns = {"rconv": partial(rconv.avg_pool2d, x, 2, 2)}
            y = fwd_fns["rconv"]()
            dy = rng.standard_normal(y.shape, dtype=np.float32)
            bwd_fns = {"rconv": partial(rconv.avg_pool2d_backward, dy, x, 2, 2)}
        if torch is not None:
            dyt = torch.from_numpy(dy)
            if pool == "max":
                fwd_fns["torch"] = partial(F.max_pool2d, xt, 3, 2, 1)
                _, ind = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
                bwd_fns["torch"] = torch_max_pool_backward(dyt, xt, 3, 2, 1, ind)
            else:
                fwd_fns["torch"] = partial(F.avg_pool2d, xt, 2, 2)
                bwd_fns["torch"] = partial(
                    torch.ops.aten.avg_pool2d_backward,
                    dyt,
                    xt,
                    [2, 2],
                    [2, 2],
                    [0, 0],
                    False,
                    True,
                    None,
                )
        shape = "(8,64,112,112)"
        fwd = timed_row("nn", f"{name} fwd {shape}", fwd_fns)
        bwd = timed_row("nn", f"{name} bwd {shape}", bwd_fns)
        extra = []
        if pool == "max":
            # backward from saved indices (torch's backward always takes them)
            _, rind = rconv.max_pool2d(x, 3, 2, 1, return_indices=True)
            fns = {"rconv": partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1, indices=rind)}
            if torch is not None:
                fns["torch"] = bwd_fns["torch"]
            case = f"{name} bwd, saved indices"
            extra.append(timed_row("nn", case, fns))
            # the training forward: values and indices (torch's max_pool2d_with_indices)
            fns = {"rconv": partial(rconv.max_pool2d, x, 3, 2, 1, return_indices=True)}
            if torch is not None:
                fns["torch"] = partial(F.max_pool2d, xt, 3, 2, 1, return_indices=True)
            case = f"{name} fwd with indices"
            extra.append(timed_row("nn", case, fns))
            # rconv's backward without indices (the argmax recomputed) against what torch
            # needs for the same gradient: the forward with indices, then its backward
            fns = {"rconv": partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1)}
            if torch is not None:

                def torch_both(xt=xt, dyt=dyt):
                    _, ti = F.max_pool2d(xt, 3, 2, 1, return_indices=True)
                    return torch.ops.aten.max_pool2d_with_indices_backward(
                        dyt, xt, [3, 3], [2, 2], [1, 1], [1, 1], False, ti
                    )

                fns["torch"] = torch_both
            case = f"{name} bwd recomputed vs torch fwd+bwd"
            extra.append(timed_row("nn", case, fns))
        # out= into a reused array: no first touch of a fresh gradient; its share of the
        # memory bandwidth (bytes read and written over a large np.copyto's, same rounds)
        gx = np.empty_like(x)
        if pool == "max":
            _, rind = rconv.max_pool2d(x, 3, 2, 1, return_indices=True)
            f = partial(rconv.max_pool2d_backward, dy, x, 3, 2, 1, indices=rind, out=gx)
            moved = dy.nbytes + rind.nbytes + gx.nbytes
            case = f"{name} bwd, saved indices, out="
        else:
            f = partial(rconv.avg_pool2d_backward, dy, x, 2, 2, out=gx)
            moved = dy.nbytes + gx.nbytes
            case = f"{name} bwd, out="
        fns = {"rconv": f, "copy": partial(np.copyto, copy_dst, copy_src)}
        if torch is not None:
            fns["torch"] = bwd_fns["torch"]
        t = time_blocks(fns)
        row = report({"group": "nn", "case": case}, t, ratios=("torch",))
        add_stat(row, "pct_bw", [100 * moved / (2 * copy_src.nbytes) * r for r in t.ratios["copy"]])
        extra.append(row)
        for row in (fwd, bwd, *extra):
            emit(rows, NN_TABLE, row)
    # global average pooling (a ResNet head)
    xg = rng.standard_normal((8, 256, 28, 28), dtype=np.float32)
    fns = {"rconv": partial(rconv.adaptive_avg_pool2d, xg, 1)}
    if torch is not None:
        fns["torch"] = partial(F.adaptive_avg_pool2d, torch.from_numpy(xg), 1)
    emit(rows, NN_TABLE, timed_row("nn", "adaptive_avg_pool2d 1x1 (8,256,28,28)", fns))
