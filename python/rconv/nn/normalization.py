"""Normalisation layers: :class:`BatchNorm2d` (``torch.nn.BatchNorm2d``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import numpy as np

from .. import _nn, _rconv
from .._docs import _NN_EXAMPLES_DOC, _doc
from ._util import _float_input, _int, _layer_dtype, _real
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

__all__ = ["BatchNorm2d"]


def _kernel_buffer(a: np.ndarray, dt: np.dtype) -> np.ndarray:
    """A running-statistics buffer as the compiled kernel updates it in place: `a` itself,
    or (another dtype, or not C-contiguous) a copy that the caller writes back."""
    if a.dtype is dt and a.flags.c_contiguous and a.flags.aligned and a.flags.writeable:
        return a
    return np.ascontiguousarray(a, dtype=dt).copy()


@_doc(examples=_NN_EXAMPLES_DOC)
class BatchNorm2d(Module):
    """Batch normalisation over ``(N, H, W)`` per channel (``torch.nn.BatchNorm2d``).

    Training normalises with the batch mean and the biased batch variance,
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``, and updates the running
    statistics as ``running = (1 - momentum) * running + momentum * batch`` with the unbiased
    variance (``momentum=None``: the cumulative average). ``num_batches_tracked`` (0-d int64)
    counts the training forwards. Evaluation uses the running statistics, or the batch's
    when they are not tracked.

    float32 and float64 run as parallel Rust kernels (the statistics in one read of the
    input, accumulated in float64; the output in a second); other floating dtypes through
    NumPy. A float32/float64 mix computes in float64. Backward reads the saved input: as
    with torch (and :class:`Conv2d`), modifying the input in place between forward and
    backward is not supported.

    Parameters
    ----------
    num_features : int
        Channels ``C`` of the ``(N, C, H, W)`` input.
    eps : float, optional
        Added to the variance inside the square root (default 1e-5).
    momentum : float or None, optional
        Weight of the batch in the running statistics (default 0.1).
    affine : bool, optional
        Learn ``weight`` (ones) and ``bias`` (zeros) (default True).
    track_running_stats : bool, optional
        Keep the buffers ``running_mean`` (zeros), ``running_var`` (ones) and
        ``num_batches_tracked`` (default True).
    dtype : dtype, optional
        The parameters' and buffers' dtype: float32 (default) or float64.

    Raises
    ------
    ValueError
        A non-4-D input or a wrong channel count; one value per channel when the batch
        statistics are used (as torch).

    [examples]
    >>> bn = nn.BatchNorm2d(1, dtype=np.float64)
    >>> bn
    BatchNorm2d(1, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)
    >>> y = bn.forward(np.array([1.0, 3.0]).reshape(2, 1, 1, 1))
    >>> y.ravel().round(4), bn.running_mean, bn.running_var, int(bn.num_batches_tracked)
    (array([-1.,  1.]), array([0.2]), array([1.1]), 1)
    >>> bn.eval().forward(np.array([0.2]).reshape(1, 1, 1, 1)).item()
    0.0
    """

    _param_names = ("weight", "bias")
    _buffer_names = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: Optional[float] = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: DTypeLike = np.float32,
    ) -> None:
        f = "BatchNorm2d"
        dtype = _layer_dtype(f, dtype)
        c = _int(f, "num_features", num_features)
        if c <= 0:
            raise ValueError(f"{f}: num_features must be positive, got {num_features}")
        self.num_features = c
        self.eps = _real(f, "eps", eps)
        if self.eps < 0:
            raise ValueError(f"{f}: eps must be >= 0, got {eps}")
        self.momentum = None if momentum is None else _real(f, "momentum", momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        # the parameters (and gradients) exist together, with `affine`, and so do the buffers,
        # with `track_running_stats`
        self.weight: Optional[np.ndarray] = np.ones(c, dtype) if affine else None
        self.bias: Optional[np.ndarray] = np.zeros(c, dtype) if affine else None
        self.grad_weight: Optional[np.ndarray] = np.zeros(c, dtype) if affine else None
        self.grad_bias: Optional[np.ndarray] = np.zeros(c, dtype) if affine else None
        self.running_mean: Optional[np.ndarray] = (
            np.zeros(c, dtype) if track_running_stats else None
        )
        self.running_var: Optional[np.ndarray] = np.ones(c, dtype) if track_running_stats else None
        self.num_batches_tracked: Optional[np.ndarray] = (
            np.array(0, np.int64) if track_running_stats else None
        )
        # (input, mean, invstd, batch statistics) for the kernels; (xhat, None, invstd,
        # batch statistics) for the NumPy path of other dtypes
        self._saved: Optional[Tuple[np.ndarray, Optional[np.ndarray], np.ndarray, bool]] = None

    def extra_repr(self) -> str:
        # torch/nn/modules/batchnorm.py, _NormBase.extra_repr
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )

    def forward(self, x: np.ndarray) -> np.ndarray:
        f = "BatchNorm2d"
        x = _float_input(f, x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"{f}: expected a 4-D input (N, {self.num_features}, H, W), got shape {x.shape}"
            )
        w, b = self.weight, self.bias  # None without `affine`
        dt = np.result_type(x.dtype, w.dtype if w is not None else x.dtype)
        if dt != _nn._F32 and dt != _nn._F64:
            return self._forward_numpy(x.astype(dt, copy=False))
        dt = _nn._F64 if dt == _nn._F64 else _nn._F32
        xc = _nn._c(x, dt)
        wk = None if w is None else _nn._c(w, dt)
        bk = None if b is None else _nn._c(b, dt)
        rm, rv = self.running_mean, self.running_var  # None without `track_running_stats`
        nbt = self.num_batches_tracked
        if self.training or rm is None or rv is None:
            batch = True
            if self.training and rm is not None and rv is not None and nbt is not None:
                # momentum None: the cumulative average over the batches, this one included
                mom = self.momentum
                if mom is None:
                    mom = 1.0 / float(int(nbt) + 1)
                rmk, rvk = _kernel_buffer(rm, dt), _kernel_buffer(rv, dt)
                y, mean, invstd = _rconv.batch_norm2d(xc, wk, bk, rmk, rvk, True, mom, self.eps, f)
                # nothing changes before the kernel succeeded
                if rmk is not rm:
                    rm[...] = rmk
                if rvk is not rv:
                    rv[...] = rvk
                nbt += 1
            else:
                y, mean, invstd = _rconv.batch_norm2d(
                    xc, wk, bk, None, None, True, 0.0, self.eps, f
                )
        else:
            batch = False
            y, mean, invstd = _rconv.batch_norm2d(
                xc, wk, bk, _nn._c(rm, dt), _nn._c(rv, dt), False, 0.0, self.eps, f
            )
        self._saved = (xc, mean, invstd, batch)
        return y

    def _forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """The forward pass of a dtype the kernels do not take (float16, longdouble)."""
        f = "BatchNorm2d"
        dt = x.dtype
        w, b = self.weight, self.bias
        rm, rv = self.running_mean, self.running_var
        axes = (0, 2, 3)
        if self.training or rm is None or rv is None:
            batch = True
            m = x.shape[0] * x.shape[2] * x.shape[3]
            if m <= 1:
                raise ValueError(
                    f"{f}: expected more than 1 value per channel when training, got input "
                    f"of shape {x.shape}"
                )
            mean = x.mean(axis=axes)
            xc = x - mean[:, None, None]
            var = np.mean(np.square(xc), axis=axes)
            if (
                self.training
                and rm is not None
                and rv is not None
                and self.num_batches_tracked is not None
            ):
                self.num_batches_tracked += 1
                mom = self.momentum
                if mom is None:
                    mom = 1.0 / float(self.num_batches_tracked)
                rm[...] = (1 - mom) * rm + mom * mean
                rv[...] = (1 - mom) * rv + mom * (var * (m / (m - 1)))
        else:
            batch = False
            mean, var = rm.astype(dt), rv.astype(dt)
            xc = x - mean[:, None, None]
        invstd = (1.0 / np.sqrt(var + self.eps)).astype(dt, copy=False)
        xhat = xc
        xhat *= invstd[:, None, None]
        self._saved = (xhat, None, invstd, batch)
        if w is None or b is None:
            return xhat.copy()
        return xhat * w.astype(dt)[:, None, None] + b.astype(dt)[:, None, None]

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x, mean, invstd, batch = self._need(self._saved, "input")
        if mean is None:
            return self._backward_numpy(grad, input_grad)
        g = _nn._c(self._check_grad(grad, x.shape), x.dtype)
        w, b = self.weight, self.bias  # None without `affine`
        affine = w is not None and b is not None
        gi, gw, gb = _rconv.batch_norm2d_backward(
            g,
            x,
            mean,
            invstd,
            None if w is None else _nn._c(w, x.dtype),
            batch,
            input_grad,
            affine,
            "BatchNorm2d.backward",
        )
        if w is not None and b is not None and gw is not None and gb is not None:
            self.grad_weight = gw.astype(w.dtype, copy=False)
            self.grad_bias = gb.astype(b.dtype, copy=False)
        return gi

    def _backward_numpy(self, grad: np.ndarray, input_grad: bool) -> Optional[np.ndarray]:
        xhat, _, invstd, batch = self._need(self._saved, "input")
        g = self._check_grad(grad, xhat.shape).astype(xhat.dtype, copy=False)
        axes = (0, 2, 3)
        gb = g.sum(axis=axes)
        gw = np.einsum("nchw,nchw->c", g, xhat)
        w, b = self.weight, self.bias  # None without `affine`
        if w is not None and b is not None:
            self.grad_weight = gw.astype(w.dtype)
            self.grad_bias = gb.astype(b.dtype)
        if not input_grad:
            return None
        scale = invstd * (w.astype(xhat.dtype) if w is not None else 1)
        if not batch:
            return g * scale[:, None, None]
        m = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
        gx = xhat * (gw / m)[:, None, None]
        np.subtract(g, gx, out=gx)
        gx -= (gb / m)[:, None, None]
        gx *= scale[:, None, None]
        return gx
