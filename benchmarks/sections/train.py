"""train: whole training steps of the five nets of ``benchmarks/nets.py``, rconv.nn against
torch's usual autograd loop; then per layer, each non-conv layer alone, a grid of small
conv-ReLU-pool blocks, and the memory."""

from __future__ import annotations

import gc
import os
import statistics
from functools import partial

import numpy as np

import rconv
from benchmarks import nets
from benchmarks.harness import (
    RUN,
    all_threads,
    emit,
    fresh_process,
    lib,
    rconv_table,
    timed_row,
    versus,
)
from benchmarks.sections.nn import torch_max_pool_backward
from rconv import nn as rnn


def _rconv_step(net, loss, opt, x, y):
    def step():
        loss.forward(net.forward(x), y)
        net.backward(loss.backward(), input_grad=False)  # torch skips the data's gradient too
        opt.step()

    return step


def _torch_step(net, opt, x, y, lossf=None):
    torch = lib.torch
    lossf = lossf or torch.nn.CrossEntropyLoss()

    def step():
        with torch.enable_grad():
            opt.zero_grad()
            lossf(net(x), y).backward()
            opt.step()

    return step


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


LAYER_TABLE = rconv_table(52, *versus("torch", ratio_width=20), case="layer")


def _pair(v) -> list:
    return [v, v] if isinstance(v, int) else list(v)


def _torch_layer(layer, x, y, g, first):
    """torch's functional aten forward/backward for one rconv.nn layer (None: no torch peer).
    x, y, g: the layer's input, output and output gradient as torch tensors; first: no input
    gradient (the first layer's, which neither library computes)."""
    torch, F = lib.torch, lib.F
    if isinstance(layer, rnn.Conv2d):
        c = layer.conf
        w = torch.from_numpy(layer.weight)
        b = None if layer.bias is None else torch.from_numpy(layer.bias)
        st, pad, dil = _pair(c["stride"]), _pair(c["padding"]), _pair(c["dilation"])
        fwd = partial(F.conv2d, x, w, b, st, pad, dil, c["groups"])
        mask = [not first, True, b is not None]
        bias_sizes = [w.shape[0]] if b is not None else None
        bwd = partial(
            torch.ops.aten.convolution_backward,
            *(g, x, w, bias_sizes, st, pad, dil, False, [0, 0], c["groups"], mask),
        )
        return fwd, bwd
    if isinstance(layer, rnn.BatchNorm2d):
        w = None if layer.weight is None else torch.from_numpy(layer.weight.copy())
        b = None if layer.bias is None else torch.from_numpy(layer.bias.copy())
        rm = None if layer.running_mean is None else torch.from_numpy(layer.running_mean.copy())
        rv = None if layer.running_var is None else torch.from_numpy(layer.running_var.copy())
        train = layer.training or rm is None
        mom = 0.1 if layer.momentum is None else layer.momentum
        fwd = partial(torch.ops.aten.native_batch_norm, x, w, b, rm, rv, train, mom, layer.eps)
        _, mean, invstd = fwd()
        mask = [not first, w is not None, w is not None]
        bwd = partial(
            torch.ops.aten.native_batch_norm_backward,
            *(g, x, w, rm, rv, mean, invstd, train, layer.eps, mask),
        )
        return fwd, bwd
    if isinstance(layer, rnn.ReLU):
        return partial(F.relu, x), partial(torch.ops.aten.threshold_backward, g, y, 0)
    if isinstance(layer, rnn.LeakyReLU):
        s = layer.negative_slope
        return (
            partial(F.leaky_relu, x, s),
            partial(torch.ops.aten.leaky_relu_backward, g, x, s, False),
        )
    if isinstance(layer, rnn.Sigmoid):
        return partial(torch.sigmoid, x), partial(torch.ops.aten.sigmoid_backward, g, y)
    if isinstance(layer, rnn.Tanh):
        return partial(torch.tanh, x), partial(torch.ops.aten.tanh_backward, g, y)
    if isinstance(layer, rnn.MaxPool2d):
        c = layer.conf
        k, st, pad = _pair(c["kernel_size"]), _pair(c["stride"] or c["kernel_size"]), c["padding"]
        pad = _pair(pad)
        _, ind = torch.ops.aten.max_pool2d_with_indices(x, k, st, pad)
        fwd = partial(torch.ops.aten.max_pool2d_with_indices, x, k, st, pad)
        return fwd, torch_max_pool_backward(g, x, k[0], st[0], pad[0], ind)
    if isinstance(layer, rnn.AdaptiveAvgPool2d):
        size = list(layer.output_size)
        return (
            partial(F.adaptive_avg_pool2d, x, size),
            partial(torch.ops.aten._adaptive_avg_pool2d_backward, g, x),
        )
    if isinstance(layer, rnn.Linear):
        w = torch.from_numpy(layer.weight)
        b = None if layer.bias is None else torch.from_numpy(layer.bias)

        def bwd():  # what autograd runs for addmm: both matmuls and the bias sum
            return g.mm(w), g.t().mm(x), g.sum(0)

        return partial(F.linear, x, w, b), bwd
    return None


def _capture(net, step) -> list:
    """Run `step` once with every leaf layer of `net` recording its input, output, output
    gradient and whether it returned an input gradient: ``[(name, layer, x, y, g, input_grad)]``
    in forward order (a custom Module's leaves too)."""
    leaves = [(n, m) for n, m in net.named_modules() if not any(True for _ in m.children())]
    rec: dict = {}
    for name, m in leaves:

        def fwd(x, *a, _f=m.forward, _n=name):
            y = _f(x, *a)
            rec.setdefault(_n, {}).update(x=x, y=y)
            return y

        def bwd(g, input_grad=True, _b=m.backward, _n=name):
            rec.setdefault(_n, {}).update(g=g, input_grad=input_grad)
            return _b(g, input_grad)

        m.forward, m.backward = fwd, bwd
    try:
        step()
    finally:
        for _, m in leaves:
            del m.forward, m.backward
    out = []
    for name, m in leaves:
        r = rec.get(name, {})
        if "x" in r and "g" in r:
            out.append((name, m, r["x"], r["y"], r["g"], r["input_grad"]))
    return out


def _layer_rows(rows: list, name: str, spec, net, loss, opt, step, tnet, quick: bool) -> None:
    """Per layer of `net` at its place in the network: forward and backward, rconv.nn's
    layer calls against torch's aten calls on the same arrays (an input gradient for every
    layer but the first, in both libraries); then the loss and the optimizer step; then the
    convolutions' share of the sum, per library."""
    torch = lib.torch
    rounds, calls = (3, 3) if quick else (5, 5)
    share = {"rconv": {"conv": 0.0, "other": 0.0}, "torch": {"conv": 0.0, "other": 0.0}}

    def timed(kind, case, fns, number):
        """The row of `case`, its time added to the `kind` ('conv' or 'other') of each
        library's share."""
        row = timed_row("train_layer", case, fns, rounds=rounds, calls=calls, number=number)
        for library in share:
            if f"{library}_ms" in row:
                share[library][kind] += row[f"{library}_ms"]
        emit(rows, LAYER_TABLE, row)

    for lname, layer, xi, yi, gi, input_grad in _capture(net, step):
        if type(layer).__name__ == "Flatten":
            continue
        label = f"{name}: {lname} {type(layer).__name__} {'x'.join(map(str, xi.shape))}"
        tl = None
        if torch is not None:
            txi, tyi, tgi = (torch.from_numpy(np.ascontiguousarray(a)) for a in (xi, yi, gi))
            tl = _torch_layer(layer, txi, tyi, tgi, not input_grad)

        def r_fwd(layer=layer, xi=xi):
            layer.forward(xi)

        def r_bwd(layer=layer, gi=gi, ig=input_grad):
            layer.backward(gi, input_grad=ig)

        kind = "conv" if type(layer).__name__ == "Conv2d" else "other"
        for which, rf, k in (("fwd", r_fwd, 0), ("bwd", r_bwd, 1)):
            layer.forward(xi)  # what the backward reads
            fns = {"rconv": rf}
            if tl is not None:
                fns["torch"] = tl[k]
            timed(kind, f"{label} {which}", fns, 20 if xi.size < 200_000 else 1)
    # the loss, forward and backward, on the network's logits
    logits = net.forward(spec["x"])
    y = spec["y"]
    fns = {"rconv": lambda: (loss.forward(logits, y), loss.backward())}
    if torch is not None:
        tl_, ty = torch.from_numpy(logits), torch.from_numpy(y)

        def t_loss():
            logp = torch.ops.aten._log_softmax(tl_, 1, False)
            out, tw = torch.ops.aten.nll_loss_forward(logp, ty, None, 1, -100)
            gl = torch.ops.aten.nll_loss_backward(torch.ones(()), logp, ty, None, 1, -100, tw)
            return torch.ops.aten._log_softmax_backward_data(gl, logp, 1, logp.dtype)

        fns["torch"] = t_loss
    shape = "x".join(map(str, logits.shape))
    timed("other", f"{name}: loss {type(loss).__name__} {shape} fwd+bwd", fns, 20)
    # the optimizer step over the network's parameters and gradients
    step()
    fns = {"rconv": opt.step}
    if tnet is not None:
        topt = tnet["opt"]
        fns["torch"] = topt.step
    nparams = sum(p.size for p in net.params().values())
    timed("other", f"{name}: {type(opt).__name__}.step {nparams} parameters", fns, 5)
    summary = {"group": "train_share", "case": name}
    parts = []
    for library, d in share.items():
        total = d["conv"] + d["other"]
        if total:
            summary[f"{library}_conv_ms"] = d["conv"]
            summary[f"{library}_other_ms"] = d["other"]
            parts.append(
                f"{library} conv {d['conv']:.2f} ms + other {d['other']:.2f} ms "
                f"({100 * d['other'] / total:.0f}% non-conv)"
            )
    if share["torch"]["other"] and share["rconv"]["other"]:
        summary["other_vs_torch"] = share["torch"]["other"] / share["rconv"]["other"]
        parts.append(f"non-conv sum vs torch {summary['other_vs_torch']:.2f}x")
    rows.append(summary)
    print(f"  sum of the rows above: {'; '.join(parts)}")


def _fwd_bwd(layer, x, g):
    """A call of `layer`'s forward on `x`, then its backward of `g`."""

    def call():
        layer.forward(x)
        layer.backward(g)

    return call


OPS_TABLE = rconv_table(52, *versus("torch", ratio_width=20), case="layer")


def _op_rows(rows: list, quick: bool) -> None:
    """The non-conv layers alone, on (8,64,56,56) and the nets' other shapes: BatchNorm2d
    (training forward+backward, eval forward), the activations (forward, backward), global
    average pooling, the losses, and the optimizers over ~635k parameters."""
    torch, F = lib.torch, lib.F
    OPS_TABLE.header("train ops: each non-conv layer alone (forward+backward unless marked)")
    rng = np.random.default_rng(3)
    shapes = [(8, 64, 56, 56)] if quick else [(8, 64, 56, 56), (32, 32, 32, 32), (32, 256, 8, 8)]
    rounds, calls = (3, 3) if quick else (5, 5)

    def row(case, fns, size):
        number = 20 if size < 200_000 else 1
        r = timed_row("train_ops", case, fns, rounds=rounds, calls=calls, number=number)
        emit(rows, OPS_TABLE, r)

    for shape in shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        g = rng.standard_normal(shape, dtype=np.float32)
        xt, gt = torch.from_numpy(x) if torch else None, torch.from_numpy(g) if torch else None
        sh = "x".join(map(str, shape))
        c = shape[1]
        fns = {"rconv": _fwd_bwd(rnn.BatchNorm2d(c), x, g)}
        if torch is not None:
            w, b = torch.ones(c), torch.zeros(c)
            rm, rv = torch.zeros(c), torch.ones(c)

            def t_bn(xt=xt, gt=gt, w=w, b=b, rm=rm, rv=rv):
                y, m, s = torch.ops.aten.native_batch_norm(xt, w, b, rm, rv, True, 0.1, 1e-5)
                torch.ops.aten.native_batch_norm_backward(
                    gt, xt, w, rm, rv, m, s, True, 1e-5, [True, True, True]
                )

            fns["torch"] = t_bn
        row(f"BatchNorm2d train {sh}", fns, x.size)
        bne = rnn.BatchNorm2d(c).eval()
        fns = {"rconv": partial(bne.forward, x)}
        if torch is not None:
            fns["torch"] = partial(F.batch_norm, xt, rm, rv, w, b, False)
        row(f"BatchNorm2d eval fwd {sh}", fns, x.size)
        for act, tf, tb in (
            (rnn.ReLU(), F.relu, lambda g, x, y: torch.ops.aten.threshold_backward(g, y, 0)),
            (
                rnn.LeakyReLU(),
                partial(F.leaky_relu, negative_slope=0.01),
                lambda g, x, y: torch.ops.aten.leaky_relu_backward(g, x, 0.01, False),
            ),
            (rnn.Sigmoid(), torch.sigmoid if torch else None, None),
            (rnn.Tanh(), torch.tanh if torch else None, None),
        ):
            nm = type(act).__name__
            fns = {"rconv": partial(act.forward, x)}
            if torch is not None:
                fns["torch"] = partial(tf, xt)
            row(f"{nm} fwd {sh}", fns, x.size)
            y = act.forward(x)
            fns = {"rconv": partial(act.backward, g)}
            if torch is not None:
                yt = torch.from_numpy(y)
                if tb is None:
                    op = torch.ops.aten.sigmoid_backward if nm == "Sigmoid" else None
                    op = op or torch.ops.aten.tanh_backward
                    fns["torch"] = partial(op, gt, yt)
                else:
                    fns["torch"] = partial(tb, gt, xt, yt)
            row(f"{nm} bwd {sh}", fns, x.size)
    gap_shapes = [(32, 256, 8, 8), (32, 64, 8, 8), (8, 256, 28, 28)]
    for shape in gap_shapes[:1] if quick else gap_shapes:
        x = rng.standard_normal(shape, dtype=np.float32)
        g = rng.standard_normal(shape[:2] + (1, 1), dtype=np.float32)
        fns = {"rconv": _fwd_bwd(rnn.AdaptiveAvgPool2d(1), x, g)}
        if torch is not None:
            xt, gt = torch.from_numpy(x), torch.from_numpy(g)

            def t_gap(xt=xt, gt=gt):
                F.adaptive_avg_pool2d(xt, 1)
                torch.ops.aten._adaptive_avg_pool2d_backward(gt, xt)

            fns["torch"] = t_gap
        row(f"AdaptiveAvgPool2d(1) {'x'.join(map(str, shape))}", fns, x.size)
    for n, k in [(32, 10), (256, 1000)]:
        logits = rng.standard_normal((n, k), dtype=np.float32)
        y = rng.integers(0, k, n)
        ce = rnn.CrossEntropyLoss()
        fns = {"rconv": lambda ce=ce, lg=logits, y=y: (ce.forward(lg, y), ce.backward())}
        if torch is not None:
            lt, ty = torch.from_numpy(logits), torch.from_numpy(y)

            def t_ce(lt=lt, ty=ty):
                logp = torch.ops.aten._log_softmax(lt, 1, False)
                _, tw = torch.ops.aten.nll_loss_forward(logp, ty, None, 1, -100)
                gl = torch.ops.aten.nll_loss_backward(torch.ones(()), logp, ty, None, 1, -100, tw)
                torch.ops.aten._log_softmax_backward_data(gl, logp, 1, logp.dtype)

            fns["torch"] = t_ce
        row(f"CrossEntropyLoss {n}x{k}", fns, logits.size)
    for shape in [(32, 10), (8, 64, 56, 56)]:
        a = rng.standard_normal(shape, dtype=np.float32)
        t = rng.standard_normal(shape, dtype=np.float32)
        mse = rnn.MSELoss()
        fns = {"rconv": lambda mse=mse, a=a, t=t: (mse.forward(a, t), mse.backward())}
        if torch is not None:
            at, tt = torch.from_numpy(a), torch.from_numpy(t)

            def t_mse(at=at, tt=tt):
                torch.ops.aten.mse_loss(at, tt, 1)
                torch.ops.aten.mse_loss_backward(torch.ones(()), at, tt, 1)

            fns["torch"] = t_mse
        row(f"MSELoss {'x'.join(map(str, shape))}", fns, a.size)
    # the optimizers over a small CNN's parameters (~635k), gradients set once
    shapes = [(64, 3, 3, 3), (64,), (128, 64, 3, 3), (128,), (256, 128, 3, 3), (256,)]
    shapes += [(256, 256, 3, 3)[:1] + (64, 3, 3), (10, 256), (10,)]
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    npar = sum(p.size for p in params)
    for oname, kw in [
        ("SGD", {"lr": 0.01, "momentum": 0.9}),
        ("Adam", {"lr": 1e-3}),
        ("AdamW", {"lr": 1e-3, "weight_decay": 1e-2}),
    ]:
        model = _ParamModel(params, grads)
        opt = getattr(rconv.optim, oname)(model, **kw)
        fns = {"rconv": opt.step}
        if torch is not None:
            tp = [torch.from_numpy(p.copy()).requires_grad_() for p in params]
            for p, g in zip(tp, grads):
                p.grad = torch.from_numpy(g)
            fns["torch"] = getattr(torch.optim, oname)(tp, **kw).step
        row(f"{oname}.step {npar} parameters", fns, 0)


class _ParamModel:
    """A Module holding given parameter arrays and gradients (for the optimizer rows)."""

    def __new__(cls, params, grads):
        class Holder(rnn.Module):
            _param_names = tuple(f"p{i}" for i in range(len(params)))

            def __init__(self):
                for i, (p, g) in enumerate(zip(params, grads)):
                    setattr(self, f"p{i}", p.copy())
                    setattr(self, f"grad_p{i}", g)

        return Holder()


GRID_TABLE = rconv_table(
    46, *versus("torch", ratio_width=20), case="conv3x3-ReLU-MaxPool2d block: cin->cout @px, N"
)


def _grid(rows: list, quick: bool) -> None:
    """A conv(3x3, p=1)-ReLU-MaxPool2d(2) block trained with SGD (loss: the output's mean)
    over channels {1, 3, 16, 64} -> {16, 64}, images {8, 16, 32, 64}, batch {1, 8, 64}
    (--quick: images {8, 16} and batch {1, 8} only, a check that the section runs)."""
    torch = lib.torch
    GRID_TABLE.header("train grid: one SGD step of a conv-ReLU-pool block (no data gradient)")
    rng = np.random.default_rng(6)
    ratios = []
    for cin in (1, 3, 16, 64):
        for cout in (16, 64):
            for px in (8, 16) if quick else (8, 16, 32, 64):
                for n in (1, 8) if quick else (1, 8, 64):
                    x = rng.standard_normal((n, cin, px, px), dtype=np.float32)
                    net = rnn.Sequential(
                        rnn.Conv2d(cin, cout, 3, padding=1, rng=rng), rnn.ReLU(), rnn.MaxPool2d(2)
                    )
                    opt = rconv.optim.SGD(net, lr=0.01, momentum=0.9)
                    g = np.full(
                        (n, cout, px // 2, px // 2), 1.0 / (n * cout * px * px // 4), np.float32
                    )

                    def r_step(net=net, opt=opt, x=x, g=g):
                        net.forward(x)
                        net.backward(g, input_grad=False)
                        opt.step()

                    fns = {"rconv": r_step}
                    if torch is not None:
                        tnet = torch.nn.Sequential(
                            torch.nn.Conv2d(cin, cout, 3, padding=1),
                            torch.nn.ReLU(),
                            torch.nn.MaxPool2d(2),
                        )
                        topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
                        tx = torch.from_numpy(x)

                        def t_step(tnet=tnet, topt=topt, tx=tx):
                            with torch.enable_grad():
                                topt.zero_grad()
                                tnet(tx).mean().backward()
                                topt.step()

                        fns["torch"] = t_step
                    work = n * cin * cout * px * px
                    number = 20 if work < 2_000_000 else 1
                    case = f"{cin}->{cout} @{px}, N={n}"
                    row = timed_row("train_grid", case, fns, rounds=3, calls=3, number=number)
                    emit(rows, GRID_TABLE, row)
                    if "vs_torch" in row:
                        ratios.append(row["vs_torch"])
    if ratios:
        summary = {
            "group": "train_grid_summary",
            "case": f"median of {len(ratios)} cells",
            "vs_torch_median": statistics.median(ratios),
            "vs_torch_min": min(ratios),
            "cells_below_0.8": sum(r < 0.8 for r in ratios),
            "target": "median >= 1.0x, no cell below 0.8x",
        }
        rows.append(summary)
        print(
            f"grid: median {summary['vs_torch_median']:.2f}x torch over {len(ratios)} cells, "
            f"lowest {summary['vs_torch_min']:.2f}x, {summary['cells_below_0.8']} cell(s) below "
            "0.8x (target: median >= 1.0x, none below 0.8x)"
        )


TRAIN_TABLE = rconv_table(
    44,
    *versus("torch", "torch ms/step", width=14, ratio_width=20),
    case="network (float32), threads",
    rconv="rconv ms/step",
    rconv_width=14,
)


def _build(spec, rng):
    """rconv's and torch's instances of the benchmark net `spec` on the same data."""
    torch = lib.torch
    x = rng.standard_normal(spec.shape, dtype=np.float32)
    y = rng.integers(0, 10, spec.shape[0])
    net = spec.build(rnn, np.random.default_rng(1))
    loss = rnn.CrossEntropyLoss()
    opt = nets.optimizer(rconv.optim, spec, net)
    out = {"x": x, "y": y, "net": net, "loss": loss, "opt": opt}
    out["step"] = _rconv_step(net, loss, opt, x, y)
    out["torch"] = None
    if torch is not None:
        tnet = spec.build(torch.nn)
        topt = nets.optimizer(torch.optim, spec, tnet.parameters())
        tstep = _torch_step(tnet, topt, torch.from_numpy(x), torch.from_numpy(y))
        tstep()  # creates the gradients and the optimizer state
        out["torch"] = {"net": tnet, "opt": topt, "step": tstep}
    return out


def run(rows: list, quick: bool) -> None:
    """ms per training step (forward, loss, backward, optimizer step), rconv.nn and torch's
    usual autograd loop on the same data (torch.from_numpy), alternating blocks, at 1 thread
    and at --threads; then per layer, each non-conv layer alone, the grid of small blocks,
    and the memory (RSS over 200 steps; a step's high-water mark in a fresh process)."""
    TRAIN_TABLE.header("train: whole steps, the same thread count for both libraries")
    rng = np.random.default_rng(0)
    built = []
    for spec in nets.NETS:
        b = _build(spec, rng)
        built.append((spec, b))
        for n in sorted({1, RUN.threads}):
            all_threads(n)
            try:
                fns = {"rconv": b["step"]}
                if b["torch"] is not None:
                    fns["torch"] = b["torch"]["step"]
                timing = dict(rounds=3 if quick else RUN.rounds, calls=3 if quick else 5)
                case = f"{spec.label} {spec.shape}, {n} thr"
                row = timed_row("train", case, fns, **timing)
                row.update(net=spec.key, threads=n)
                emit(rows, TRAIN_TABLE, row)
            finally:
                all_threads(RUN.threads)
    for spec, b in built:
        LAYER_TABLE.header(f"train, per layer: {spec.label} {spec.shape}, {RUN.threads} thr")
        _layer_rows(rows, spec.key, b, b["net"], b["loss"], b["opt"], b["step"], b["torch"], quick)
    _op_rows(rows, quick)
    _grid(rows, quick)
    more = 50 if quick else 200
    print(f"\nmemory: RSS after 20 warm-up steps and after {more} more (target: within 5%)")
    for spec, b in built:
        step = b["step"]
        for _ in range(20):
            step()
        gc.collect()
        before = _rss_mib()
        for _ in range(more):
            step()
        gc.collect()
        after = _rss_mib()
        row = {
            "group": "train_memory",
            "case": spec.label,
            "rss_warm_mib": before,
            "steps": more,
            "rss_after_mib": after,
            "growth": after / before - 1,
        }
        rows.append(row)
        print(f"  {spec.label}: {before:.1f} MiB -> {after:.1f} MiB ({100 * row['growth']:+.1f}%)")
    _step_peaks(rows, [spec for spec, _ in built])


def _step_peaks(rows: list, specs: list) -> None:
    """A step's resident high-water mark above the warmed-up baseline (VmRSS after 10
    steps; the peak reset through /proc/self/clear_refs, then 5 steps), in a fresh process
    per library and net (target: rconv's no higher than torch's)."""
    print("\nmemory: one step's high-water mark above the warmed-up RSS, fresh process per library")
    for spec in specs:
        row = {"group": "train_step_peak", "case": spec.label}
        for library in ("rconv", "torch"):
            if library == "torch" and lib.torch is None:
                continue
            body = f"""
import gc
from benchmarks import nets
spec = [s for s in nets.NETS if s.key == {spec.key!r}][0]
rng = np.random.default_rng(0)
x = rng.standard_normal(spec.shape, dtype=np.float32)
y = rng.integers(0, 10, spec.shape[0])
if {library!r} == "torch":
    import torch
    torch.set_num_threads({RUN.threads})
    net = spec.build(torch.nn)
    opt = nets.optimizer(torch.optim, spec, net.parameters())
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    lossf = torch.nn.CrossEntropyLoss()
    def step():
        opt.zero_grad()
        lossf(net(tx), ty).backward()
        opt.step()
else:
    from rconv import nn as rnn
    net = spec.build(rnn, np.random.default_rng(1))
    opt = nets.optimizer(rconv.optim, spec, net)
    loss = rnn.CrossEntropyLoss()
    def step():
        loss.forward(net.forward(x), y)
        net.backward(loss.backward(), input_grad=False)
        opt.step()
for _ in range(10):
    step()
gc.collect()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
base = rss()
open("/proc/self/clear_refs", "w").write("5")
for _ in range(5):
    step()
print(base, hwm())
"""
            base, peak = (int(v) for v in fresh_process(body)[-2:])
            row[f"{library}_base_mib"] = base / 2**20
            row[f"{library}_peak_mib"] = (peak - base) / 2**20
        rows.append(row)
        cells = "  ".join(
            f"{library} {row[f'{library}_peak_mib']:.1f} MiB over {row[f'{library}_base_mib']:.0f}"
            for library in ("rconv", "torch")
            if f"{library}_peak_mib" in row
        )
        print(f"  {spec.label}: {cells}")
