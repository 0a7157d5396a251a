"""rconv on Dask arrays (type stub). Needs the optional 'dask' extra."""

from typing import Literal, Optional, Tuple, Union, overload

import dask.array as da
from numpy.typing import ArrayLike

from . import _IntPair, _Padding, _PaddingMode, _Scalar, _Size

_Mode = Literal["full", "valid", "same"]
_Boundary = Literal["fill", "pad", "symm", "symmetric", "wrap", "circular"]
_Method = Literal["auto", "direct", "fft", "separable"]
_Chunked = Union[da.Array, ArrayLike]

def correlate2d(
    in1: _Chunked,
    in2: _Chunked,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
    *,
    method: _Method = "auto",
    axes: Optional[Tuple[int, int]] = None,
) -> da.Array: ...
def convolve2d(
    in1: _Chunked,
    in2: _Chunked,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
    *,
    method: _Method = "auto",
    axes: Optional[Tuple[int, int]] = None,
) -> da.Array: ...
def conv2d(
    input: _Chunked,
    weight: _Chunked,
    bias: Optional[_Chunked] = None,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    padding_mode: _PaddingMode = "zeros",
) -> da.Array: ...
def conv2d_backward(
    grad_output: _Chunked,
    input: _Chunked,
    weight: _Chunked,
    stride: _IntPair = 1,
    padding: _Padding = 0,
    dilation: _IntPair = 1,
    groups: int = 1,
    padding_mode: _PaddingMode = "zeros",
) -> Tuple[da.Array, da.Array, da.Array]: ...
@overload
def max_pool2d(
    input: _Chunked,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    return_indices: Literal[False] = False,
) -> da.Array: ...
@overload
def max_pool2d(
    input: _Chunked,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    *,
    return_indices: Literal[True],
) -> Tuple[da.Array, da.Array]: ...
def max_pool2d_backward(
    grad_output: _Chunked,
    input: _Chunked,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    dilation: _IntPair = 1,
    ceil_mode: bool = False,
    indices: Optional[_Chunked] = None,
) -> da.Array: ...
def avg_pool2d(
    input: _Chunked,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> da.Array: ...
def avg_pool2d_backward(
    grad_output: _Chunked,
    input: _Chunked,
    kernel_size: _IntPair,
    stride: Optional[_IntPair] = None,
    padding: _IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: Optional[int] = None,
) -> da.Array: ...
def adaptive_avg_pool2d(input: _Chunked, output_size: _Size) -> da.Array: ...
@overload
def adaptive_max_pool2d(
    input: _Chunked, output_size: _Size, return_indices: Literal[False] = False
) -> da.Array: ...
@overload
def adaptive_max_pool2d(
    input: _Chunked, output_size: _Size, return_indices: Literal[True]
) -> Tuple[da.Array, da.Array]: ...
