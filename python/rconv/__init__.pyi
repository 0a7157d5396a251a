"""Public API of rconv (type stub)."""

from typing import Literal, Optional, Sequence, Tuple, Union, overload

import numpy as np
from numpy.typing import ArrayLike

from . import kernels as kernels
from . import nn as nn
from . import optim as optim

__version__: str

_Mode = Literal["full", "valid", "same"]
_Boundary = Literal["fill", "pad", "symm", "symmetric", "wrap", "circular"]
_Scalar = Union[int, float, complex, np.generic]

_Method = Literal["auto", "direct", "fft", "separable"]

def correlate2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
    *,
    method: _Method = "auto",
    axes: Optional[Tuple[int, int]] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def convolve2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
    *,
    method: _Method = "auto",
    axes: Optional[Tuple[int, int]] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def choose_conv_method(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    *,
    axes: Optional[Tuple[int, int]] = None,
) -> Literal["direct", "fft", "separable"]: ...
def corr2d(
    x: ArrayLike,
    k: ArrayLike,
    *,
    axes: Optional[Tuple[int, int]] = None,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def correlate2d_backward(
    grad_output: ArrayLike,
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
    *,
    axes: Optional[Tuple[int, int]] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
def convolve2d_backward(
    grad_output: ArrayLike,
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
    *,
    axes: Optional[Tuple[int, int]] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def show_config() -> None: ...

_IntPair = Union[int, Tuple[int, int]]
_Padding = Union[int, Tuple[int, int], Literal["valid", "same"]]
_PaddingMode = Literal["zeros", "reflect", "replicate", "circular"]
_Size = Union[int, Tuple[Optional[int], Optional[int]]]

def conv2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    padding_mode: _PaddingMode = "zeros",
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    padding_mode: _PaddingMode = "zeros",
    *,
    out: Optional[Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def conv2d_input(
    input_shape: Sequence[int],
    weight: ArrayLike,
    grad_output: ArrayLike,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv2d_weight(
    input: ArrayLike,
    weight_shape: Sequence[int],
    grad_output: ArrayLike,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv_transpose2d(
    input: ArrayLike,
    weight: ArrayLike,
    bias: Optional[ArrayLike] = None,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    output_padding: _IntPair = 0,
    groups: int = 1,
    dilation: _IntPair = 1,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv_transpose2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    weight: ArrayLike,
    stride: _IntPair = 1,
    padding: _IntPair = 0,
    output_padding: _IntPair = 0,
    groups: int = 1,
    dilation: _IntPair = 1,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
@overload
def max_pool2d(
    input: ArrayLike,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
    out: Optional[Tuple[Optional[np.ndarray], Optional[np.ndarray]]] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
def max_pool2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    indices: Optional[ArrayLike] = None,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def max_unpool2d(
    input: ArrayLike,
    indices: ArrayLike,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    output_size: Optional[Sequence[int]] = None,
) -> np.ndarray: ...
def avg_pool2d(
    input: ArrayLike,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def avg_pool2d_backward(
    grad_output: ArrayLike,
    input: ArrayLike,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
    *,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def adaptive_avg_pool2d(input: ArrayLike, output_size: _Size) -> np.ndarray: ...
def adaptive_avg_pool2d_backward(grad_output: ArrayLike, input: ArrayLike) -> np.ndarray: ...
@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: _Size, return_indices: Literal[False] = False
) -> np.ndarray: ...
@overload
def adaptive_max_pool2d(
    input: ArrayLike, output_size: _Size, return_indices: Literal[True]
) -> Tuple[np.ndarray, np.ndarray]: ...
def adaptive_max_pool2d_backward(grad_output: ArrayLike, input: ArrayLike) -> np.ndarray: ...
def corr2d_backward(
    grad_output: ArrayLike, x: ArrayLike, k: ArrayLike
) -> Tuple[np.ndarray, np.ndarray]: ...
