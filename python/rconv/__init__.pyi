"""Public API of rconv (type stub)."""

from typing import Literal, Union

import numpy as np
from numpy.typing import ArrayLike

__version__: str

_Mode = Literal["full", "valid", "same"]
_Boundary = Literal["fill", "pad", "symm", "symmetric", "wrap", "circular"]
_Scalar = Union[int, float, complex, np.generic]

def correlate2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
) -> np.ndarray: ...
def convolve2d(
    in1: ArrayLike,
    in2: ArrayLike,
    mode: _Mode = "full",
    boundary: _Boundary = "fill",
    fillvalue: _Scalar = 0,
) -> np.ndarray: ...
def corr2d(x: ArrayLike, k: ArrayLike) -> np.ndarray: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
