"""Thread-count control."""

from __future__ import annotations

import operator
from typing import Optional

from . import _rconv

#: Set when threadpoolctl last set the thread count (for `show_config`); `None` otherwise.
_source: Optional[str] = None


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

    With threadpoolctl (3.2 or later) installed, rconv's pool is one of the pools it sees:
    ``threadpool_info()`` lists it with ``user_api`` and ``internal_api`` ``"rconv"``, and
    ``with threadpool_limits(limits=1):`` sets rconv's thread count for the block and
    restores it after.

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
    global _source
    _source = None
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


def _register_threadpoolctl() -> None:
    """Make rconv's pool visible to threadpoolctl (3.2 or later, when installed): a custom
    controller through its documented ``register`` API, matched to the compiled module by
    its file name. threadpoolctl stays optional; without it nothing happens."""
    import importlib.util

    try:
        if importlib.util.find_spec("threadpoolctl") is None:
            return
        import threadpoolctl
    except Exception:  # a broken installation must not break `import rconv`
        return
    if not (hasattr(threadpoolctl, "register") and hasattr(threadpoolctl, "LibController")):
        return  # older than 3.2

    class RconvController(threadpoolctl.LibController):
        """rconv's thread pool, for ``threadpool_info`` and ``threadpool_limits``."""

        user_api = "rconv"
        internal_api = "rconv"
        filename_prefixes = ("_rconv",)

        def get_num_threads(self) -> int:
            return get_num_threads()

        def set_num_threads(self, num_threads: int) -> None:
            global _source
            set_num_threads(num_threads)
            _source = "threadpoolctl"

        def get_version(self) -> str:
            return _rconv.__version__

    threadpoolctl.register(RconvController)
