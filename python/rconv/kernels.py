"""Classic 3x3 image kernels (the teaching favourites) and a Gaussian kernel.

Every kernel is a float64 array meant for cross-correlation (``rconv.correlate2d``, as CNNs
use them); the nine named ones are also collected in the dict ``named``. The functions take
``dtype=``: ``get("sobel_x", dtype=np.float32)`` and ``gaussian(5, 1.0, dtype=np.float32)``
give a float32 kernel, so that a float32 image stays float32 (the result dtype is
``numpy.result_type`` of the image and the kernel, as in scipy).

Examples
--------
>>> import numpy as np
>>> import rconv
>>> from rconv import kernels
>>> img = np.zeros((5, 5)); img[:, 2:] = 1.0
>>> rconv.correlate2d(img, kernels.sobel_x, mode="valid")
array([[4., 4., 0.],
       [4., 4., 0.],
       [4., 4., 0.]])
>>> sorted(kernels.named)[:3]
['blur', 'emboss', 'horizontal_edge']
>>> img32 = img.astype(np.float32)
>>> rconv.correlate2d(img32, kernels.get("sobel_x", dtype=np.float32), mode="valid").dtype
dtype('float32')
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

__all__ = [
    "blur",
    "emboss",
    "gaussian",
    "get",
    "horizontal_edge",
    "identity",
    "named",
    "sharpen",
    "sobel_x",
    "sobel_y",
    "surround",
    "vertical_edge",
]


def _k(rows) -> np.ndarray:
    a = np.array(rows, dtype=np.float64)
    a.setflags(write=False)  # shared module constants: copy before modifying
    return a


#: Sharpen: the centre against its four neighbours.
sharpen = _k([[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
#: Vertical edge (responds to changes along a row, as in the source notes).
vertical_edge = _k([[0, 0, 0], [-1, 2, -1], [0, 0, 0]])
#: Surround: the eight neighbours against the centre.
surround = _k([[1, 1, 1], [1, -9, 1], [1, 1, 1]])
#: Sobel, vertical gradient (responds to horizontal edges).
sobel_y = _k([[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
#: Identity: leaves the image unchanged (in 'same' mode).
identity = _k([[0, 0, 0], [0, 1, 0], [0, 0, 0]])
#: Horizontal edge (responds to changes down a column).
horizontal_edge = _k([[0, -1, 0], [0, 2, 0], [0, -1, 0]])
#: Box blur: the mean of the 3x3 neighbourhood (the notes round 1/9 to 0.11).
blur = _k(np.full((3, 3), 1.0 / 9.0))
#: Sobel, horizontal gradient (responds to vertical edges).
sobel_x = _k([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
#: Emboss.
emboss = _k([[2, 0, 0], [0, -1, 0], [0, 0, -1]])

#: The nine classic kernels by name.
named: Dict[str, np.ndarray] = {
    "sharpen": sharpen,
    "vertical_edge": vertical_edge,
    "surround": surround,
    "sobel_y": sobel_y,
    "identity": identity,
    "horizontal_edge": horizontal_edge,
    "blur": blur,
    "sobel_x": sobel_x,
    "emboss": emboss,
}


def _float_dtype(func: str, dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"{func}: dtype must be a floating-point dtype, got {dtype!r}") from e
    if dt.kind != "f":
        raise TypeError(
            f"{func}: dtype must be a floating-point dtype (float32 or float64), got {dt}"
        )
    return dt


def get(name: str, dtype: Any = np.float64) -> np.ndarray:
    """One of the nine named kernels, as a new array of `dtype`.

    Parameters
    ----------
    name : str
        A key of the dict ``rconv.kernels.named`` (``"sobel_x"``, ``"blur"``, ...).
    dtype : dtype, optional
        A floating-point dtype; default float64.

    Returns
    -------
    kernel : ndarray
        A writeable ``(3, 3)`` copy.

    Raises
    ------
    KeyError
        An unknown name (the known ones are listed).
    TypeError
        A dtype that is not floating-point.

    Examples
    --------
    >>> import numpy as np
    >>> from rconv import kernels
    >>> kernels.get("sharpen", dtype=np.float32)
    array([[ 0., -1.,  0.],
           [-1.,  5., -1.],
           [ 0., -1.,  0.]], dtype=float32)
    """
    dt = _float_dtype("get", dtype)
    if name not in named:
        raise KeyError(f"get: unknown kernel {name!r}; the kernels are {sorted(named)}")
    return named[name].astype(dt)


def gaussian(size: int, sigma: float, dtype: Any = np.float64) -> np.ndarray:
    """A normalised 2-D Gaussian kernel.

    Parameters
    ----------
    size : int
        Side length (>= 1); odd sizes have a centre tap.
    sigma : float
        Standard deviation in pixels (> 0).
    dtype : dtype, optional
        A floating-point dtype; default float64 (the kernel is computed in float64, then
        rounded once).

    Returns
    -------
    kernel : ndarray
        ``(size, size)`` of `dtype`, ``exp(-(x^2 + y^2) / (2 sigma^2))`` sampled at offsets from
        the centre ``(size - 1) / 2``, divided by its sum.

    Raises
    ------
    ValueError
        If `size` < 1 or `sigma` <= 0.
    TypeError
        If `size` is not an integer, or `dtype` is not a floating-point dtype.

    Examples
    --------
    >>> from rconv import kernels
    >>> k = kernels.gaussian(3, 1.0)
    >>> k.shape, round(float(k.sum()), 12), bool(k[1, 1] == k.max())
    ((3, 3), 1.0, True)
    >>> kernels.gaussian(3, 1.0, dtype="float32").dtype
    dtype('float32')
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"gaussian: size must be an int, got {size!r}")
    if size < 1:
        raise ValueError(f"gaussian: size must be >= 1, got {size}")
    sigma = float(sigma)
    if not sigma > 0:
        raise ValueError(f"gaussian: sigma must be > 0, got {sigma}")
    dt = _float_dtype("gaussian", dtype)
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(dt)
