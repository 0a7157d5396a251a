"""rconv: fast, exact 2-D convolution for NumPy, written in Rust.

Functions
---------
correlate2d, convolve2d
    ``scipy.signal`` semantics (all modes, boundaries and dtypes), in parallel, GIL released.
corr2d
    The deep-learning 'valid' cross-correlation (d2l's ``corr2d``).
set_num_threads, get_num_threads
    Thread-count control (environment variable ``RCONV_NUM_THREADS``).
"""

from ._rconv import __version__
from ._signal import convolve2d, corr2d, correlate2d
from ._threads import get_num_threads, set_num_threads

__all__ = [
    "__version__",
    "convolve2d",
    "corr2d",
    "correlate2d",
    "get_num_threads",
    "set_num_threads",
]
