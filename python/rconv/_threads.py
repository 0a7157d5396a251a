"""Thread-count control."""

from __future__ import annotations

import operator

from . import _rconv


def set_num_threads(n: int) -> None:
    """Set the number of threads rconv's kernels use from now on.

    Parameters
    ----------
    n : int
        Number of threads, ``1 <= n <= 1024``. ``1`` runs every kernel serially on the
        calling thread.

    Raises
    ------
    ValueError
        If `n` is out of range.
    TypeError
        If `n` is not an integer.

    Notes
    -----
    The default is the value of the environment variable ``RCONV_NUM_THREADS`` when it holds
    a positive integer (read once, at the first call), otherwise the number of CPUs available
    to the process. Calls already running keep the thread count they started with.

    Examples
    --------
    >>> import rconv
    >>> old = rconv.get_num_threads()
    >>> rconv.set_num_threads(1)
    >>> rconv.get_num_threads()
    1
    >>> rconv.set_num_threads(old)
    """
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__}") from None
    if not 1 <= n <= _rconv.MAX_THREADS:
        raise ValueError(f"set_num_threads: n must be in 1..{_rconv.MAX_THREADS}, got {n}")
    _rconv.set_num_threads(n)


def get_num_threads() -> int:
    """The number of threads rconv's kernels use.

    Returns
    -------
    n : int
        See :func:`set_num_threads` for the default.

    Examples
    --------
    >>> import rconv
    >>> rconv.get_num_threads() >= 1
    True
    """
    return _rconv.get_num_threads()
