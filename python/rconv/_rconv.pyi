"""Type stub of the compiled core ``rconv._rconv`` (private; use the ``rconv`` package)."""

from typing import Optional, Sequence, Tuple

import numpy as np

__version__: str
MAX_THREADS: int

def correlate2d(
    in1: np.ndarray,
    in2: np.ndarray,
    fillvalue: np.ndarray,
    mode: str,
    boundary: str,
    op: str,
    func: str,
    method: str = "direct",
) -> np.ndarray: ...
def method_costs(
    in1_shape: Tuple[int, int], in2_shape: Tuple[int, int], mode: str, op: str, func: str
) -> Tuple[float, float]: ...
def geometry(
    in1_shape: Tuple[int, int], in2_shape: Tuple[int, int], mode: str, op: str, func: str
) -> Tuple[Tuple[int, int], Tuple[int, int], bool]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...

_Pair = Tuple[int, int]
_Quad = Tuple[int, int, int, int]

def conv2d_forward(
    x: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray],
    stride: _Pair,
    padding: _Quad,
    dilation: _Pair,
    groups: int,
    func: str,
    output_hw: Optional[_Pair] = None,
) -> np.ndarray: ...
def conv2d_backward_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: Sequence[int],
    stride: _Pair,
    padding: _Quad,
    dilation: _Pair,
    groups: int,
    func: str,
    output_hw: Optional[_Pair] = None,
) -> np.ndarray: ...
def conv2d_backward_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: Sequence[int],
    stride: _Pair,
    padding: _Quad,
    dilation: _Pair,
    groups: int,
    func: str,
    output_hw: Optional[_Pair] = None,
) -> np.ndarray: ...
def max_pool2d(
    x: np.ndarray,
    kernel: _Pair,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    ceil_mode: bool,
    return_indices: bool,
    func: str,
) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...
def max_pool2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    kernel: _Pair,
    stride: _Pair,
    padding: _Pair,
    dilation: _Pair,
    ceil_mode: bool,
    func: str,
) -> np.ndarray: ...
def max_pool2d_backward_indices(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: Sequence[int], func: str
) -> np.ndarray: ...
def avg_pool2d(
    x: np.ndarray,
    kernel: _Pair,
    stride: _Pair,
    padding: _Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    func: str,
) -> np.ndarray: ...
def avg_pool2d_backward(
    grad_output: np.ndarray,
    input_shape: Sequence[int],
    kernel: _Pair,
    stride: _Pair,
    padding: _Pair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    func: str,
) -> np.ndarray: ...
def adaptive_avg_pool2d(x: np.ndarray, output_size: _Pair, func: str) -> np.ndarray: ...
def adaptive_avg_pool2d_backward(
    grad_output: np.ndarray, input_shape: Sequence[int], func: str
) -> np.ndarray: ...
def adaptive_max_pool2d(
    x: np.ndarray, output_size: _Pair, func: str
) -> Tuple[np.ndarray, np.ndarray]: ...
def adaptive_max_pool2d_backward(
    grad_output: np.ndarray, x: np.ndarray, func: str
) -> np.ndarray: ...
def max_unpool2d(x: np.ndarray, indices: np.ndarray, output_hw: _Pair, func: str) -> np.ndarray: ...
