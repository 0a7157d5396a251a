"""Type stub of the compiled core ``rconv._rconv`` (private; use the ``rconv`` package).

Each op family takes its options as one tuple, parsed in Rust into one args struct:

- signal: ``(func, op, mode, boundary, method, fft_terms)``;
- conv: ``(func, stride, padding, dilation, groups, padding_mode, output_padding)``;
- pool: ``(func, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
  divisor_override)``.
"""

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

__version__: str
MAX_THREADS: int

_Shape = Sequence[int]
_Opts = Tuple[Any, ...]

# signal
def correlate2d(
    in1: np.ndarray,
    in2: np.ndarray,
    fill: Optional[np.ndarray],
    opts: _Opts,
    out: Optional[np.ndarray] = None,
    axes: Optional[Sequence[int]] = None,
) -> np.ndarray: ...
def choose_method(
    in1: np.ndarray, in2: np.ndarray, opts: _Opts, axes: Optional[Sequence[int]] = None
) -> str: ...
def correlate2d_backward(
    grad_output: np.ndarray,
    in1: np.ndarray,
    in2: np.ndarray,
    fill: Optional[np.ndarray],
    opts: _Opts,
    axes: Optional[Sequence[int]] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
def geometry(
    in1_shape: _Shape, in2_shape: _Shape, mode: str, op: str, func: str
) -> Tuple[Tuple[int, int], Tuple[int, int], bool]: ...
def stack_geometry(
    in1_shape: _Shape, in2_shape: _Shape, axes: Sequence[int], opts: _Opts
) -> Tuple[List[int], Tuple[int, int]]: ...
def signal_options(opts: _Opts) -> Tuple[str, str, str]: ...
def auto_plan(in1_shape: _Shape, in2: np.ndarray, opts: _Opts) -> str: ...

# activations (flat C-contiguous float arrays)
def relu(x: np.ndarray, grad: Optional[np.ndarray] = None) -> np.ndarray: ...

# fully connected (C-contiguous 2-D arrays of one float dtype)
def linear(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None) -> np.ndarray: ...
def linear_backward(
    grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray, input_grad: bool = True
) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]: ...

# convolution
def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray],
    opts: _Opts,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    weight: np.ndarray,
    opts: _Opts,
    out: Optional[Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]] = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def conv2d_input(
    grad_output: np.ndarray,
    weight: np.ndarray,
    input_shape: _Shape,
    opts: _Opts,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv2d_weight(
    x: np.ndarray,
    grad_output: np.ndarray,
    weight_shape: _Shape,
    opts: _Opts,
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def conv_transpose2d(
    x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray], opts: _Opts
) -> np.ndarray: ...
def conv_transpose2d_backward(
    grad_output: np.ndarray, x: np.ndarray, weight: np.ndarray, opts: _Opts
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def conv_geometry(input_shape: _Shape, weight_shape: _Shape, opts: _Opts) -> list: ...
def conv_transpose_geometry(input_shape: _Shape, weight_shape: _Shape, opts: _Opts) -> list: ...

# pooling
def max_pool2d(
    x: np.ndarray,
    opts: _Opts,
    return_indices: bool,
    out: Optional[np.ndarray] = None,
    out_indices: Optional[np.ndarray] = None,
) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...
def max_pool2d_backward(
    grad_output: np.ndarray,
    x: np.ndarray,
    opts: _Opts,
    indices: Optional[np.ndarray],
    out: Optional[np.ndarray] = None,
) -> np.ndarray: ...
def avg_pool2d(x: np.ndarray, opts: _Opts, out: Optional[np.ndarray] = None) -> np.ndarray: ...
def avg_pool2d_backward(
    grad_output: np.ndarray, input_shape: _Shape, opts: _Opts, out: Optional[np.ndarray] = None
) -> np.ndarray: ...
def adaptive_avg_pool2d(x: np.ndarray, output_size: Tuple[Any, Any], func: str) -> np.ndarray: ...
def adaptive_avg_pool2d_backward(
    grad_output: np.ndarray, input_shape: _Shape, func: str
) -> np.ndarray: ...
def adaptive_max_pool2d(
    x: np.ndarray, output_size: Tuple[Any, Any], func: str
) -> Tuple[np.ndarray, np.ndarray]: ...
def adaptive_max_pool2d_backward(
    grad_output: np.ndarray, x: np.ndarray, func: str
) -> np.ndarray: ...
def max_unpool2d(
    x: np.ndarray, indices: np.ndarray, opts: _Opts, output_size: Optional[_Shape]
) -> np.ndarray: ...
def pool_geometry(input_shape: _Shape, opts: _Opts) -> list: ...
def adaptive_geometry(input_shape: _Shape, output_size: Tuple[Any, Any], func: str) -> list: ...
def unpool_geometry(input_shape: _Shape, opts: _Opts, output_size: Optional[_Shape]) -> list: ...

# threads and CPU
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str: ...
def build_info() -> Tuple[str, str, str, bool, int, str]: ...
