"""rconv: fast, exact 2-D convolution for NumPy, written in Rust.

Functions
---------
correlate2d, convolve2d
    ``scipy.signal`` semantics (all modes, boundaries and dtypes), in parallel, GIL released;
    stacks of images in one call with ``axes=``.
correlate2d_backward, convolve2d_backward
    Their gradients with respect to both arguments, for every mode and boundary.
corr2d
    The deep-learning 'valid' cross-correlation (d2l's ``corr2d``).
set_num_threads, get_num_threads
    Thread-count control (environment variable ``RCONV_NUM_THREADS``, threadpoolctl).
show_config
    How this rconv was built and what it runs on (also ``python -m rconv --info``).
conv2d, conv_transpose2d, max_pool2d, avg_pool2d, adaptive pools, max_unpool2d
    CNN layers with ``torch.nn.functional`` semantics (NCHW), each with its backward function
    (``*_backward``, ``conv2d_input``, ``conv2d_weight``, ``corr2d_backward``).

Submodules
----------
kernels
    The classic 3x3 kernels by name and ``gaussian(size, sigma)``.
nn
    Layers with forward/backward (Conv2d, MaxPool2d, Linear, ...) and losses, for training
    small CNNs from scratch; ``nn.functional`` has the functional forms.
optim
    The optimizers SGD, Adam and AdamW, which update an ``nn`` model's parameters.
dask
    The same functions on chunked Dask arrays (``import rconv.dask``; needs the optional
    ``dask`` extra): images and batches larger than memory, or spread over a cluster.
"""

from . import _nn, kernels, nn, optim  # nn before optim (see nn/__init__.py)
from ._info import show_config
from ._nn import *  # noqa: F403 (the names of _nn.__all__)
from ._rconv import __version__
from ._signal import (
    choose_conv_method,
    convolve2d,
    convolve2d_backward,
    corr2d,
    correlate2d,
    correlate2d_backward,
)
from ._threads import _register_threadpoolctl, get_num_threads, set_num_threads

__all__ = [
    "__version__",
    "choose_conv_method",
    "convolve2d",
    "convolve2d_backward",
    "corr2d",
    "correlate2d",
    "correlate2d_backward",
    "get_num_threads",
    "kernels",
    "nn",
    "optim",
    "set_num_threads",
    "show_config",
]
__all__ += _nn.__all__

_register_threadpoolctl()
