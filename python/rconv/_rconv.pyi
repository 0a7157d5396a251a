"""Type stub of the compiled core ``rconv._rconv`` (private; use the ``rconv`` package).

Every option is a named parameter, converted in Rust by one ``FromPyObject`` per option type
(``src/bindings/convert.rs``); a bad value raises ``ValueError``/``TypeError`` naming the
argument, after the calling function's ``name`` (default: the public function's). The
wrappers pass options positionally: pyo3's keyword matching costs about 0.1 us per keyword
on the abi3 (Python 3.9) build.
"""

from typing import Dict, List, Literal, Optional, Sequence, Tuple, Union

import numpy as np

__version__: str
MAX_THREADS: int
FILL_BOUNDARIES: Tuple[str, ...]
CHOICES: Dict[str, List[str]]

Shape = Sequence[int]
IntPair = Union[int, Sequence[int]]
Padding = Union[int, Sequence[int], Literal["valid", "same"]]
PaddingMode = Literal["zeros", "reflect", "replicate", "circular", "symmetric"]
Mode = Literal["full", "valid", "same"]
Boundary = Literal["fill", "pad", "symm", "symmetric", "wrap", "circular"]
Method = Literal["auto", "direct", "fft", "separable"]
# The engine method='auto' picks (choose_conv_method's answer).
Engine = Literal["direct", "fft", "separable"]
# correlate2d's method: a Method, or, for the blocks of rconv.dask, the engine 'auto'
# chose for the whole image, kept direct for a block holding NaN or Inf.
PlanMethod = Union[Method, Literal["fft-if-finite", "separable-if-finite"]]
Op = Literal["correlate", "convolve", "corr2d"]
Reduction = Literal["mean", "sum", "none"]
OutputSize = Union[int, None, Sequence[Optional[int]]]
Axes = Sequence[int]

# signal
def correlate2d(
    in1: np.ndarray,
    in2: np.ndarray,
    fill: Optional[np.ndarray],
    op: Op,
    mode: Mode,
    boundary: Boundary,
    method: PlanMethod,
    fft_terms: Optional[int] = None,
    out: Optional[np.ndarray] = None,
    axes: Optional[Axes] = None,
    name: Optional[str] = None,
) -> np.ndarray: ...
def choose_method(
    in1: np.ndarray,
    in2: np.ndarray,
    mode: Mode,
    axes: Optional[Axes] = None,
    name: str = "choose_conv_method",
) -> Engine: ...
def correlate2d_backward(
    grad_output: np.ndarray,
    in1: np.ndarray,
    in2: np.ndarray,
    fill: Optional[np.ndarray],
    op: Op,
    mode: Mode,
    boundary: Boundary,
    axes: Optional[Axes] = None,
    name: Optional[str] = None,
) -> Tuple[np.ndarray, np.ndarray]: ...
def geometry(
    in1_shape: Shape, in2_shape: Shape, op: Op, mode: Mode, name: str
) -> Tuple[Tuple[int, int], Tuple[int, int], bool]: ...
def stack_geometry(
    in1_shape: Shape,
    in2_shape: Shape,
    axes: Axes,
    op: Op,
    mode: Mode,
    boundary: Boundary,
    name: str,
) -> Tuple[List[int], Tuple[int, int]]: ...
def signal_options(
    mode: Mode, boundary: Boundary, method: Method, name: str
) -> Tuple[Mode, Boundary, Method]: ...
def auto_plan(
    in1_shape: Shape, in2: np.ndarray, op: Op, mode: Mode, boundary: Boundary, name: str
) -> Engine: ...

# activations (flat C-contiguous float arrays)
def relu(
    input: np.ndarray, grad: Optional[np.ndarray] = None, name: Optional[str] = None
) -> np.ndarray: ...
def leaky_relu(
    input: np.ndarray,
    negative_slope: Optional[float] = None,
    grad: Optional[np.ndarray] = None,
    name: Optional[str] = None,
) -> np.ndarray: ...
def sigmoid(
    input: np.ndarray, grad: Optional[np.ndarray] = None, name: Optional[str] = None
) -> np.ndarray: ...
def tanh(
    input: np.ndarray, grad: Optional[np.ndarray] = None, name: Optional[str] = None
) -> np.ndarray: ...

# losses (C-contiguous float arrays of one dtype; int64 class indices)
def cross_entropy(
    input: np.ndarray, target: np.ndarray, name: Optional[str] = None
) -> Tuple[float, np.ndarray]: ...
def cross_entropy_backward(
    probs: np.ndarray,
    target: np.ndarray,
    grad: Optional[float] = None,
    name: Optional[str] = None,
) -> np.ndarray: ...
def mse_loss(
    input: np.ndarray, target: np.ndarray, reduction: Reduction, name: Optional[str] = None
) -> Tuple[Union[float, np.ndarray], np.ndarray]: ...
def mse_loss_backward(
    diff: np.ndarray,
    reduction: Reduction,
    grad: Union[float, np.ndarray, None] = None,
    name: Optional[str] = None,
) -> np.ndarray: ...

# fully connected (C-contiguous 2-D arrays of one float dtype)
def linear(
    input: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, name: str = "linear"
) -> np.ndarray: ...
def linear_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    input_grad: bool = True,
    name: str = "linear_backward",
) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]: ...

# batch normalisation (a C-contiguous 4-D input; 1-D per-channel arrays of its dtype)
def batch_norm2d(
    input: np.ndarray,
    weight: Optional[np.ndarray] = None,
    bias: Optional[np.ndarray] = None,
    running_mean: Optional[np.ndarray] = None,
    running_var: Optional[np.ndarray] = None,
    training: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
    name: str = "batch_norm2d",
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def batch_norm2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    mean: np.ndarray,
    invstd: np.ndarray,
    weight: Optional[np.ndarray] = None,
    training: bool = True,
    input_grad: bool = True,
    param_grads: bool = True,
    name: str = "batch_norm2d_backward",
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]: ...

# convolution
def conv2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray],
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    padding_mode: PaddingMode,
    out: Optional[np.ndarray] = None,
    name: str = "conv2d",
    relu: bool = False,
) -> np.ndarray: ...
def conv2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    padding_mode: PaddingMode,
    out: Optional[Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]] = None,
    name: str = "conv2d_backward",
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def conv2d_grad(
    grad_output: np.ndarray,
    operand: np.ndarray,
    shape: Shape,
    wrt: Literal["input", "weight"],
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    out: Optional[np.ndarray] = None,
    unbatched: bool = False,
    name: str = "conv2d_grad",
) -> np.ndarray: ...
def conv_transpose2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: Optional[np.ndarray],
    stride: IntPair,
    padding: IntPair,
    output_padding: IntPair,
    groups: int,
    dilation: IntPair,
    out: Optional[np.ndarray] = None,
    name: str = "conv_transpose2d",
) -> np.ndarray: ...
def conv_transpose2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    stride: IntPair,
    padding: IntPair,
    output_padding: IntPair,
    groups: int,
    dilation: IntPair,
    name: str = "conv_transpose2d_backward",
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def conv_engines(
    input_shape: Shape,
    weight_shape: Shape,
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    padding_mode: PaddingMode,
    dtype: str = "float32",
    name: str = "conv_engines",
) -> List[Tuple[str, str, List[str]]]: ...
def _force_conv_engine(engine: Optional[str] = None) -> None: ...
def conv_geometry(
    input_shape: Shape,
    weight_shape: Shape,
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    padding_mode: PaddingMode,
    name: str,
) -> List[int]: ...
def conv_transpose_geometry(
    input_shape: Shape,
    weight_shape: Shape,
    stride: IntPair,
    padding: IntPair,
    output_padding: IntPair,
    groups: int,
    dilation: IntPair,
    name: str,
) -> List[int]: ...
def conv2d_layer(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    stride: IntPair,
    padding: Padding,
    dilation: IntPair,
    groups: int,
    padding_mode: PaddingMode,
    name: str = "Conv2d",
) -> List[int]: ...

# pooling
def max_pool2d(
    input: np.ndarray,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    dilation: IntPair,
    ceil_mode: bool,
    return_indices: bool,
    out: Optional[np.ndarray] = None,
    out_indices: Optional[np.ndarray] = None,
    name: str = "max_pool2d",
) -> Tuple[np.ndarray, Optional[np.ndarray]]: ...
def max_pool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    dilation: IntPair,
    ceil_mode: bool,
    indices: Optional[np.ndarray] = None,
    out: Optional[np.ndarray] = None,
    name: str = "max_pool2d_backward",
) -> np.ndarray: ...
def avg_pool2d(
    input: np.ndarray,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    out: Optional[np.ndarray] = None,
    name: str = "avg_pool2d",
) -> np.ndarray: ...
def avg_pool2d_backward(
    grad_output: np.ndarray,
    input_shape: Shape,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    out: Optional[np.ndarray] = None,
    name: str = "avg_pool2d_backward",
) -> np.ndarray: ...
def adaptive_avg_pool2d(
    input: np.ndarray, output_size: OutputSize, name: str = "adaptive_avg_pool2d"
) -> np.ndarray: ...
def adaptive_avg_pool2d_backward(
    grad_output: np.ndarray, input_shape: Shape, name: str = "adaptive_avg_pool2d_backward"
) -> np.ndarray: ...
def adaptive_max_pool2d(
    input: np.ndarray, output_size: OutputSize, name: str = "adaptive_max_pool2d"
) -> Tuple[np.ndarray, np.ndarray]: ...
def adaptive_max_pool2d_backward(
    grad_output: np.ndarray, input: np.ndarray, name: str = "adaptive_max_pool2d_backward"
) -> np.ndarray: ...
def max_unpool2d(
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    output_size: Optional[Shape] = None,
    name: str = "max_unpool2d",
) -> np.ndarray: ...
def pool_geometry(
    input_shape: Shape,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    dilation: IntPair,
    ceil_mode: bool,
    name: str,
) -> List[int]: ...
def pool_layer(
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    dilation: IntPair,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    name: str,
) -> None: ...
def adaptive_output_size(
    output_size: OutputSize, name: str
) -> Tuple[Optional[int], Optional[int]]: ...
def adaptive_geometry(input_shape: Shape, output_size: OutputSize, name: str) -> List[int]: ...
def unpool_geometry(
    input_shape: Shape,
    kernel_size: IntPair,
    stride: Optional[IntPair],
    padding: IntPair,
    output_size: Optional[Shape],
    name: str,
) -> List[int]: ...

# threads and CPU
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def simd_level() -> str: ...
def simd_info() -> Tuple[str, str, Optional[str]]: ...

# rconv.ndimage's kernels (input None: the output, in place)
def ndimage_correlate1d(
    input: Optional[np.ndarray],
    output: np.ndarray,
    weights: np.ndarray,
    axis: int,
    mode: str,
    cval: float,
    origin: int,
    *,
    name: str = ...,
) -> None: ...
def ndimage_correlate1d_twice(
    input: Optional[np.ndarray],
    output: np.ndarray,
    w1: np.ndarray,
    axis1: int,
    mode1: str,
    w2: np.ndarray,
    axis2: int,
    mode2: str,
    cval: float,
    *,
    name: str = ...,
) -> None: ...
def ndimage_uniform1d(
    input: Optional[np.ndarray],
    output: np.ndarray,
    size: int,
    axis: int,
    mode: str,
    cval: float,
    origin: int,
    *,
    name: str = ...,
) -> None: ...
def ndimage_correlate(
    input: np.ndarray,
    output: np.ndarray,
    weights: np.ndarray,
    mode: str,
    cval: float,
    origins: List[int],
    *,
    name: str = ...,
) -> None: ...
def _set_simd_level(level: Optional[str] = None) -> str: ...
def fma_peak(
    dtype: str = "float32", threads: Optional[int] = None, seconds: float = 0.05
) -> float: ...
def build_info() -> Tuple[str, str, str, bool, int, str]: ...

# optimizer steps in place over lists of arrays (float32/float64, C-contiguous; a parameter's
# gradient and state have its dtype and shape). Everything is checked before any element is
# written. A None state entry is a new array (SGD: the gradient; Adam: zeros), returned.
def sgd_step(
    params: Sequence[np.ndarray],
    grads: Sequence[np.ndarray],
    bufs: Optional[Sequence[Optional[np.ndarray]]],
    lr: float,
    momentum: float,
    dampening: float,
    weight_decay: float,
    nesterov: bool,
    name: Optional[str] = None,
) -> Optional[List[np.ndarray]]: ...
def adam_step(
    params: Sequence[np.ndarray],
    grads: Sequence[np.ndarray],
    exp_avgs: Sequence[Optional[np.ndarray]],
    exp_avg_sqs: Sequence[Optional[np.ndarray]],
    steps: Sequence[int],
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    name: Optional[str] = None,
) -> Tuple[List[np.ndarray], List[np.ndarray]]: ...
