"""Convolution layers: :class:`Conv2d` (``torch.nn.Conv2d``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from .. import _nn, _rconv
from .._docs import _NN_EXAMPLES_DOC, _PADDING_MODE_DOC, _doc
from ._util import _arguments, _kaiming_uniform, _layer_dtype, _shown_pair
from .module import Module

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from .._rconv import IntPair, Padding, PaddingMode

__all__ = ["Conv2d"]


@_doc(examples=_NN_EXAMPLES_DOC, padding_mode=_PADDING_MODE_DOC)
class Conv2d(Module):
    """2-D convolution layer (``torch.nn.Conv2d``).

    The parameters are ``weight``, ``(out_channels, in_channels / groups, kH, kW)``, and
    ``bias``, ``(out_channels,)``; the forward pass is :func:`rconv.conv2d`.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    kernel_size : int or (int, int)
        Kernel height and width.
    stride : int or (int, int), optional
        Step between windows (default 1).
    padding : int, (int, int), 'valid' or 'same', optional
        As in :func:`rconv.conv2d` (default 0).
    dilation : int or (int, int), optional
        Spacing between kernel taps (default 1).
    groups : int, optional
        Channels are split into `groups` independent convolutions (default 1).
    bias : bool, optional
        Learn an additive bias (default True).
    [padding_mode]
    rng : numpy.random.Generator, optional
        Source of the initial weights (default: a new unseeded generator).
    dtype : dtype, optional
        The parameters' dtype: float32 (default) or float64.

    [examples]
    >>> conv = nn.Conv2d(3, 8, 3, padding=1, rng=np.random.default_rng(0))
    >>> conv
    Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> y = conv.forward(np.ones((2, 3, 5, 5), np.float32))
    >>> y.shape, conv.backward(np.ones_like(y)).shape, conv.grads()["weight"].shape
    ((2, 8, 5, 5), (2, 3, 5, 5), (8, 3, 3, 3))
    >>> conv.backward(np.ones_like(y), input_grad=False) is None  # weight and bias only
    True
    """

    _param_names = ("weight", "bias")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntPair,
        stride: IntPair = 1,
        padding: Padding = 0,
        dilation: IntPair = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: PaddingMode = "zeros",
        rng: Optional[np.random.Generator] = None,
        dtype: DTypeLike = np.float32,
    ) -> None:
        dtype = _layer_dtype("Conv2d", dtype)
        rng = np.random.default_rng() if rng is None else rng
        # every argument checked in Rust, as conv2d checks them (the weight's shape comes back)
        wshape = _rconv.conv2d_layer(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, padding_mode
        )
        _, cin_g, kh, kw = wshape
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, (kh, kw)
        fan_in = cin_g * kh * kw
        self.weight = _kaiming_uniform(rng, tuple(wshape), fan_in, dtype)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.bias: Optional[np.ndarray] = (
            rng.uniform(-bound, bound, out_channels).astype(dtype) if bias else None
        )
        self.conf: Dict[str, Any] = _arguments(
            locals(), "stride", "padding", "dilation", "groups", "padding_mode"
        )
        self._x: Optional[np.ndarray] = None
        self.grad_weight = np.zeros_like(self.weight)
        self.grad_bias = None if self.bias is None else np.zeros_like(self.bias)

    def extra_repr(self) -> str:
        # torch/nn/modules/conv.py, _ConvNd.extra_repr: the options that differ from the
        # defaults, ints as pairs (stride/padding/dilation normalised from self.conf, the
        # one copy the forward pass reads)
        c = self.conf
        pad = c["padding"] if isinstance(c["padding"], str) else _shown_pair(c["padding"])
        dil = _shown_pair(c["dilation"])
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={_shown_pair(c['stride'])}"
        )
        if pad != (0, 0):
            s += f", padding={pad}"
        if dil != (1, 1):
            s += f", dilation={dil}"
        if c["groups"] != 1:
            s += f", groups={c['groups']}"
        if self.bias is None:
            s += ", bias=False"
        if c["padding_mode"] != "zeros":
            s += f", padding_mode={c['padding_mode']}"
        return s

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._x = x
        return _nn.conv2d(x, self.weight, self.bias, **self.conf)

    def backward(self, grad: np.ndarray, input_grad: bool = True) -> Optional[np.ndarray]:
        x = self._need(self._x, "input")
        gi: Optional[np.ndarray]
        gb: Optional[np.ndarray]
        if input_grad or self.conf["padding_mode"] != "zeros":
            gi, gw, gb = _nn.conv2d_backward(grad, x, self.weight, **self.conf)
        else:
            c = dict(self.conf)
            del c["padding_mode"]
            gw = _nn.conv2d_weight(x, self.weight.shape, grad, **c)
            gi = None
            g = np.asarray(grad)
            gb = None if self.bias is None else g.sum(axis=(0, 2, 3) if g.ndim == 4 else (1, 2))
        self.grad_weight = gw.astype(self.weight.dtype, copy=False)
        if self.bias is not None and gb is not None:  # gb: None only without a bias
            self.grad_bias = gb.astype(self.bias.dtype, copy=False)
        return gi if input_grad else None
