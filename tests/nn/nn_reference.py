"""Pure-NumPy reference implementations of the CNN layers, written from the definitions
(torch.nn.functional's documented semantics), not from rconv's Rust code. Slow but obvious."""

from __future__ import annotations

import numpy as np


def conv2d(x, w, b=None, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """out[n, o, y, x] = b[o] + sum_{c,i,j} w[o, c, i, j] * xp[n, g*Cg + c, y*s + i*d, x*s + j*d]"""
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    t, bt, l_, r = pads
    xp = np.zeros((n, cin, h + t + bt, wd + l_ + r), x.dtype)
    xp[:, :, t : t + h, l_ : l_ + wd] = x
    sh, sw = stride
    dh, dw = dilation
    oh = (h + t + bt - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + l_ + r - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, cout, oh, ow), np.float64)
    og = cout // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                patch = xp[
                    :,
                    g * cg : (g + 1) * cg,
                    i * dh : i * dh + sh * (oh - 1) + 1 : sh,
                    j * dw : j * dw + sw * (ow - 1) + 1 : sw,
                ]
                out[:, g * og : (g + 1) * og] += np.einsum(
                    "ncyx,oc->noyx", patch.astype(np.float64), w[g * og : (g + 1) * og, :, i, j]
                )
    if b is not None:
        out += np.asarray(b, np.float64)[None, :, None, None]
    return out


def conv2d_grads(g, x, w, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    """The input and weight gradients of :func:`conv2d` for the output gradient `g`, by the
    chain rule over every product of the forward sum (float64): gi[n, g*Cg + c, y*s + i*d - t,
    x*s + j*d - l] += w[o, c, i, j] g[n, o, y, x] and gw[o, c, i, j] += xp[...] g[n, o, y, x]."""
    n, cin, h, wd = x.shape
    cout, cg, kh, kw = w.shape
    t, bt, l_, r = pads
    sh, sw = stride
    dh, dw = dilation
    _, _, oh, ow = g.shape
    xp = np.zeros((n, cin, h + t + bt + sh * oh + dh * kh, wd + l_ + r + sw * ow + dw * kw))
    xp[:, :, t : t + h, l_ : l_ + wd] = x
    gp = np.zeros_like(xp)
    gw = np.zeros((cout, cg, kh, kw))
    g64 = np.asarray(g, np.float64)
    w64 = np.asarray(w, np.float64)
    og = cout // groups
    for gr in range(groups):
        gs = g64[:, gr * og : (gr + 1) * og]
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                cols = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
                chans = slice(gr * cg, (gr + 1) * cg)
                patch = xp[:, chans, rows, cols]
                gw[gr * og : (gr + 1) * og, :, i, j] = np.einsum("noyx,ncyx->oc", gs, patch)
                gp[:, chans, rows, cols] += np.einsum(
                    "noyx,oc->ncyx", gs, w64[gr * og : (gr + 1) * og, :, i, j]
                )
    return gp[:, :, t : t + h, l_ : l_ + wd], gw


def conv_transpose2d(
    x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1, dilation=(1, 1)
):
    """Scatter form: every input value x[n, c, y, x] adds w[c, o, i, j] times itself to
    out[n, g*Og + o, y*s + i*d - p, x*s + j*d - p]."""
    n, cin, h, wd = x.shape
    _, og, kh, kw = w.shape
    sh, sw = stride
    dh, dw = dilation
    ph, pw = padding
    oh = (h - 1) * sh - 2 * ph + dh * (kh - 1) + output_padding[0] + 1
    ow = (wd - 1) * sw - 2 * pw + dw * (kw - 1) + output_padding[1] + 1
    big = np.zeros((n, og * groups, oh + 2 * ph + sh, ow + 2 * pw + sw), np.float64)
    cg = cin // groups
    for g in range(groups):
        for i in range(kh):
            for j in range(kw):
                contrib = np.einsum(
                    "ncyx,co->noyx",
                    x[:, g * cg : (g + 1) * cg].astype(np.float64),
                    w[g * cg : (g + 1) * cg, :, i, j],
                )
                big[
                    :,
                    g * og : (g + 1) * og,
                    i * dh : i * dh + sh * (h - 1) + 1 : sh,
                    j * dw : j * dw + sw * (wd - 1) + 1 : sw,
                ] += contrib
    out = big[:, :, ph : ph + oh, pw : pw + ow]
    if b is not None:
        out = out + np.asarray(b, np.float64)[None, :, None, None]
    return out


def pool_out(size, k, s, p, d, ceil):
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil else 0)
    out = num // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out


def _window_max(x, taps, seed):
    """torch's running max over the taps (iy, ix) of one window, in order: a value replaces
    the max if greater or NaN; the index starts at `seed`. Returns (max, flat index)."""
    n, c, h, w = x.shape
    best = np.full((n, c), -np.inf, x.dtype)
    idx = np.full((n, c), seed, np.int64)
    for iy, ix in taps:
        v = x[:, :, iy, ix]
        upd = (v > best) | np.isnan(v)
        best = np.where(upd, v, best)
        idx = np.where(upd, iy * w + ix, idx)
    return best, idx


def max_pool2d(x, k, s, p, d, ceil):
    """Returns (out, indices): torch's rule, first in-bound element seeds the index, a value
    replaces the running max if greater or NaN."""
    n, c, h, w = x.shape
    oh, ow = pool_out(h, k[0], s[0], p[0], d[0], ceil), pool_out(w, k[1], s[1], p[1], d[1], ceil)
    out = np.zeros((n, c, oh, ow), x.dtype)
    ind = np.zeros((n, c, oh, ow), np.int64)
    for y in range(oh):
        for xx in range(ow):
            # torch seeds the index with the first tap at or after the padding, even when
            # that tap lies past the input (a window with no element gives -inf there)
            iy0, ix0 = y * s[0] - p[0], xx * s[1] - p[1]
            while iy0 < 0:
                iy0 += d[0]
            while ix0 < 0:
                ix0 += d[1]
            rows = [y * s[0] - p[0] + i * d[0] for i in range(k[0])]
            cols = [xx * s[1] - p[1] + j * d[1] for j in range(k[1])]
            taps = [(iy, ix) for iy in rows if 0 <= iy < h for ix in cols if 0 <= ix < w]
            out[:, :, y, xx], ind[:, :, y, xx] = _window_max(x, taps, iy0 * w + ix0)
    return out, ind


def avg_pool2d(x, k, s, p, ceil, count_include_pad=True, divisor_override=None):
    n, c, h, w = x.shape
    oh, ow = pool_out(h, k[0], s[0], p[0], 1, ceil), pool_out(w, k[1], s[1], p[1], 1, ceil)
    out = np.zeros((n, c, oh, ow), np.float64)
    for y in range(oh):
        y0 = y * s[0] - p[0]
        y1 = min(y0 + k[0], h + p[0])
        for xx in range(ow):
            x0 = xx * s[1] - p[1]
            x1 = min(x0 + k[1], w + p[1])
            pool = (y1 - y0) * (x1 - x0)
            cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, h), max(x0, 0), min(x1, w)
            if cy0 >= cy1 or cx0 >= cx1:
                continue
            total = x[:, :, cy0:cy1, cx0:cx1].astype(np.float64).sum(axis=(2, 3))
            if divisor_override is not None:
                div = divisor_override
            elif count_include_pad:
                div = pool
            else:
                div = (cy1 - cy0) * (cx1 - cx0)
            out[:, :, y, xx] = total / div
    return out


def adaptive_windows(size, out):
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def adaptive_avg_pool2d(x, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), np.float64)
    for y, (y0, y1) in enumerate(adaptive_windows(h, oh)):
        for xx, (x0, x1) in enumerate(adaptive_windows(w, ow)):
            out[:, :, y, xx] = x[:, :, y0:y1, x0:x1].astype(np.float64).mean(axis=(2, 3))
    return out


def adaptive_max_pool2d(x, oh, ow):
    n, c, h, w = x.shape
    out = np.zeros((n, c, oh, ow), x.dtype)
    ind = np.zeros((n, c, oh, ow), np.int64)
    for y, (y0, y1) in enumerate(adaptive_windows(h, oh)):
        for xx, (x0, x1) in enumerate(adaptive_windows(w, ow)):
            taps = [(iy, ix) for iy in range(y0, y1) for ix in range(x0, x1)]
            out[:, :, y, xx], ind[:, :, y, xx] = _window_max(x, taps, y0 * w + x0)
    return out, ind


def numeric_grad(f, x, g, eps=1e-6):
    """Central differences of L(x) = sum(f(x) * g) with respect to every element of x."""
    x = np.array(x, dtype=np.float64)
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + eps
        up = float((f(x) * g).sum())
        x[i] = old - eps
        down = float((f(x) * g).sum())
        x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


# ------------------------------------------------------------------ layers and optimizers
# Written from torch.nn / torch.optim's documented formulas, loop by loop.


def batch_norm(x, weight, bias, mean, var, eps):
    """y[n, c] = (x[n, c] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c], in float64.

    `x` is cast first: under NumPy 1.x's value-based casting a float32 array minus a float64
    scalar stays float32, which made this reference round the mean to float32."""
    x = np.asarray(x, np.float64)
    out = np.empty(x.shape, np.float64)
    for c in range(x.shape[1]):
        out[:, c] = (x[:, c] - mean[c]) / np.sqrt(var[c] + eps)
        if weight is not None:
            out[:, c] = out[:, c] * weight[c] + bias[c]
    return out


def batch_stats(x):
    """Per-channel mean, biased and unbiased variance over (N, H, W)."""
    per = np.moveaxis(x, 1, 0).reshape(x.shape[1], -1).astype(np.float64)
    m = per.shape[1]
    mean = per.sum(axis=1) / m
    ss = ((per - mean[:, None]) ** 2).sum(axis=1)
    return mean, ss / m, ss / (m - 1)


def batch_norm_backward(g, x, weight, mean, var, eps, training):
    """The gradients of batch_norm, loop by loop (torch's batch_norm_backward), in float64:
    (grad_input, grad_weight, grad_bias) with xhat = (x - mean) / sqrt(var + eps) and
    grad_input = w / std * (g - mean(g) - xhat * mean(g * xhat)) when `training` (the batch
    statistics depend on x), else g * w / std."""
    g, x = np.asarray(g, np.float64), np.asarray(x, np.float64)
    c = x.shape[1]
    gx = np.empty(x.shape, np.float64)
    gw, gb = np.empty(c), np.empty(c)
    for ch in range(c):
        std = np.sqrt(float(var[ch]) + eps)
        inv = 1.0 / std if std != 0 else 0.0
        xhat = (x[:, ch] - float(mean[ch])) * inv
        gc = g[:, ch]
        w = 1.0 if weight is None else float(weight[ch])
        gb[ch] = gc.sum()
        gw[ch] = (gc * xhat).sum()
        if training:
            m = gc.size
            gx[:, ch] = w * inv * (gc - gb[ch] / m - xhat * gw[ch] / m)
        else:
            gx[:, ch] = gc * w * inv
    return gx, gw, gb


def running_stats(running_mean, running_var, x, momentum):
    """torch's running-statistics update after one training batch `x` (N, C, ...):
    (1 - momentum) * running + momentum * batch, with the unbiased batch variance."""
    per = np.moveaxis(np.asarray(x, np.float64), 1, 0).reshape(x.shape[1], -1)
    mean = per.mean(axis=1)
    var_u = ((per - mean[:, None]) ** 2).sum(axis=1) / (per.shape[1] - 1)
    rm = (1 - momentum) * np.asarray(running_mean, np.float64) + momentum * mean
    rv = (1 - momentum) * np.asarray(running_var, np.float64) + momentum * var_u
    return rm, rv


def sgd(
    params,
    grads_per_step,
    lr,
    momentum=0.0,
    weight_decay=0.0,
    dampening=0.0,
    nesterov=False,
    dtype=np.float64,
    with_state=False,
):
    """torch.optim.SGD's algorithm (``_single_tensor_sgd``), one parameter array at a time,
    in torch's order of operations, computed in `dtype` with every Python scalar converted
    to it (as ATen's kernels convert theirs); returns the trajectory (and, `with_state`, the
    final momentum buffers, None where there are none)."""
    t = np.dtype(dtype).type
    p = [np.array(a, dtype) for a in params]
    bufs = [None] * len(p)
    out = []
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            g = np.array(g, dtype)
            if weight_decay != 0:
                g = g + t(weight_decay) * p[i]  # grad.add(param, alpha=weight_decay)
            if momentum != 0:
                if bufs[i] is None:
                    bufs[i] = g.copy()
                else:  # buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                    bufs[i] = bufs[i] * t(momentum) + t(1 - dampening) * g
                g = g + t(momentum) * bufs[i] if nesterov else bufs[i]
            p[i] = p[i] + t(-lr) * g  # param.add_(grad, alpha=-lr)
        out.append([a.copy() for a in p])
    return (out, bufs) if with_state else out


def adam(
    params,
    grads_per_step,
    lr,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    decoupled=False,
    dtype=np.float64,
    with_state=False,
):
    """torch.optim.Adam (decoupled=False, L2 decay) / AdamW (decoupled=True) as torch's
    ``_single_tensor_adam`` computes it, operation by operation (lerp, mul then addcmul,
    sqrt(v) / sqrt(bias_correction2) + eps, addcdiv), in `dtype` with every Python scalar
    converted to it; returns the trajectory (and, `with_state`, the final
    ``(exp_avg, exp_avg_sq)`` of every parameter)."""
    b1, b2 = betas
    dt = np.dtype(dtype).type
    p = [np.array(a, dtype) for a in params]
    m = [np.zeros_like(a) for a in p]
    v = [np.zeros_like(a) for a in p]
    w = dt(1 - b1)  # exp_avg.lerp_(grad, 1 - beta1): ATen's two-sided lerp formula
    out = []
    for t, grads in enumerate(grads_per_step, start=1):
        for i, g in enumerate(grads):
            g = np.array(g, dtype)
            if weight_decay != 0:
                if decoupled:
                    p[i] = p[i] * dt(1 - lr * weight_decay)  # param.mul_(1 - lr * wd)
                else:
                    g = g + dt(weight_decay) * p[i]  # grad.add(param, alpha=weight_decay)
            if abs(w) < 0.5:
                m[i] = m[i] + w * (g - m[i])
            else:
                m[i] = g - (g - m[i]) * (dt(1) - w)
            # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            v[i] = v[i] * dt(b2) + (dt(1 - b2) * g) * g
            step_size = lr / (1 - b1**t)
            bias_correction2_sqrt = (1 - b2**t) ** 0.5
            denom = np.sqrt(v[i]) / dt(bias_correction2_sqrt) + dt(eps)
            p[i] = p[i] + (dt(-step_size) * m[i]) / denom  # addcdiv_(m, denom, -step_size)
        out.append([a.copy() for a in p])
    return (out, list(zip(m, v))) if with_state else out


# ------------------------------------------------------------ activations and losses
# Element by element (row by row) in float64 (longdouble for exp and tanh, so that the
# reference's own rounding is far below the kernels'), from torch's documented formulas.


def leaky_relu(x, slope):
    """x if x > 0 else slope * x (NaN propagates: NaN > 0 is false, NaN * slope is NaN)."""
    out = np.empty(x.shape, np.float64)
    for i in np.ndindex(x.shape):
        v = float(x[i])
        out[i] = v if v > 0 else slope * v
    return out


def leaky_relu_grad(g, x, slope):
    """g if x > 0 else slope * g (the gradient at 0 and at NaN is slope * g)."""
    out = np.empty(x.shape, np.float64)
    for i in np.ndindex(x.shape):
        out[i] = float(g[i]) if float(x[i]) > 0 else slope * float(g[i])
    return out


def sigmoid(x):
    """1 / (1 + exp(-x)), in long double."""
    xl = np.asarray(x, np.longdouble)
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-xl))).astype(np.float64)


def sigmoid_grad(g, y):
    """g * (1 - y) * y from the forward's output y."""
    with np.errstate(invalid="ignore"):
        return np.asarray(g, np.float64) * (1 - np.asarray(y, np.float64)) * y


def tanh(x):
    return np.tanh(np.asarray(x, np.longdouble)).astype(np.float64)


def tanh_grad(g, y):
    """g * (1 - y^2) from the forward's output y."""
    y = np.asarray(y, np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray(g, np.float64) * (1 - y * y)


def cross_entropy(z, t):
    """Mean over rows of -log softmax(z)[t] and the softmax, row by row (long double):
    log p = (z - max z) - log(sum exp(z - max z))."""
    n, c = z.shape
    p = np.empty((n, c), np.float64)
    total = np.longdouble(0)
    for r in range(n):
        row = np.asarray(z[r], np.longdouble)
        m = row.max()
        e = np.exp(row - m)
        s = e.sum()
        p[r] = e / s
        total += np.log(s) - (row[t[r]] - m)
    return float(total / n) if n else float("nan"), p


def cross_entropy_grad(p, t, grad=1.0):
    """(p - onehot(t)) * grad / N."""
    n = len(t)
    out = np.array(p, np.float64)
    for r in range(n):
        out[r, t[r]] -= 1
    return out * (grad / n)


def mse(x, t, reduction):
    """(x - t)^2, reduced: mean, sum or none."""
    d = np.asarray(x, np.float64) - np.asarray(t, np.float64)
    sq = d * d
    if reduction == "none":
        return sq
    total = float(np.sum(sq, dtype=np.longdouble))
    if reduction == "mean":
        return total / d.size if d.size else float("nan")
    return total


def mse_grad(x, t, reduction, grad=1.0):
    """2 (x - t) grad, divided by the size for 'mean' (grad an array for 'none')."""
    d = np.asarray(x, np.float64) - np.asarray(t, np.float64)
    k = 2.0 / d.size if reduction == "mean" and d.size else 2.0
    return k * d * np.asarray(grad, np.float64)
