"""Type stub of the compiled core ``rconv._rconv`` (private; use the ``rconv`` package)."""

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
) -> np.ndarray: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
