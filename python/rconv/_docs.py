"""The docstring texts that several functions and classes share, and :func:`_doc`, which puts
them in place: each text is written once here.

A docstring names a shared text by a line ``[name]`` (indented as the text's first line) and
its function or class is decorated with ``@_doc(name=TEXT)``; the rendered docstring is the
same as if the text were written out there. The texts are written for a function's
docstring (indented by 4 spaces; a method's placeholder, at 8, indents them by 4 more) and
end with a newline.
"""

from __future__ import annotations

import functools
import inspect
import re
import textwrap
from typing import Callable, TypeVar, Union

_T = TypeVar("_T")


def _fill(doc: str, **parts: str) -> str:
    """`doc` with each line ``[name]`` replaced by ``parts[name]``, at its indentation."""
    for name, text in parts.items():
        pattern = re.compile(rf"^( *)\[{name}\]\n", re.M)
        doc = pattern.sub(functools.partial(_indented, textwrap.dedent(text)), doc)
    return doc


def _indented(text: str, placeholder: re.Match[str]) -> str:
    return textwrap.indent(text, placeholder[1])


def _doc(**parts: Union[str, Callable[[str], str]]) -> Callable[[_T], _T]:
    """Fill the ``[name]`` lines of a docstring with the shared parameter texts (one copy of
    each, for the functions that share them); those of a class's methods too. A text may be
    given as a function of the documented function's name."""

    def apply(f: _T) -> _T:
        methods = (
            [m for m in vars(f).values() if inspect.isfunction(m)] if isinstance(f, type) else []
        )
        for obj in (f, *methods):
            if obj.__doc__ is not None:  # python -OO strips docstrings
                obj.__doc__ = _filled(obj.__doc__, getattr(obj, "__name__", ""), **parts)
        return f

    return apply


def _filled(doc: str, name: str, **parts: Union[str, Callable[[str], str]]) -> str:
    """`doc`, the docstring of `name`, with the texts of `parts` in place (a function of the
    name giving its text)."""
    return _fill(doc, **{k: v if isinstance(v, str) else v(name) for k, v in parts.items()})


# --------------------------------------------------------------------------- parameters

# The `padding_mode` parameter of conv2d, conv2d_backward, nn.Conv2d and
# rconv.dask.conv2d/conv2d_backward: the one place the padding modes are listed and described.
_PADDING_MODE_DOC = """\
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular', 'symmetric'}, optional
        How the padding is filled, as ``torch.nn.Conv2d`` applies it: ``'zeros'`` (default),
        ``'reflect'`` (mirrored without repeating the edge sample), ``'replicate'`` (the edge
        sample repeated) or ``'circular'`` (periodic); or ``'symmetric'``, NumPy's
        ``np.pad`` mode that torch lacks (mirrored with the edge sample repeated; any padding
        width).
"""


# rconv.correlate2d, convolve2d, corr2d and their gradients (rconv._signal)


def _axes_doc(n1: str, n2: str) -> str:
    """The ``axes`` parameter's text, for inputs named `n1` and `n2`."""
    return f"""\
    axes : pair of int, optional, keyword-only
        Stacks of images in one call (an extension of scipy's 2-D contract, after the
        precedent of :func:`scipy.signal.fftconvolve`'s ``axes``). ``None`` (default): both
        inputs must be 2-D. ``(a, b)``: the two distinct axes of `{n1}` (negative values count
        from the end) that carry the 2-D operation, `a` the row axis; every other axis is a
        batch axis. `{n2}` is then either 2-D (one kernel for every image, read as rows and
        columns whatever the order of `axes`) or has `{n1}`'s number of dimensions, its
        kernel axes at the same positions and its other axes broadcasting against `{n1}`'s
        by NumPy's rules (a filter bank gives one output per pair). The output has the
        broadcast batch sizes and the mode's sizes along `axes`, in place, and is
        C-contiguous. Each image gives what the 2-D call gives (the 'valid' swap is decided
        from the 2-D shapes); the images run in parallel.
"""


_OUT_DOC = """\
    out : numpy.ndarray, optional, keyword-only
        Destination for the result: C-contiguous, writeable, of exactly the result's shape
        and dtype, sharing no memory with the inputs. It is overwritten and returned (the
        same object); any other array raises ``ValueError`` or ``TypeError``. Reusing one
        array across calls saves the page faults of a fresh large output.
"""


_METHOD_DOC = """\
    method : {'auto', 'direct', 'fft', 'separable'}, optional, keyword-only
        ``'direct'`` sums the products (exact in the dtype); ``'fft'`` multiplies spectra
        (overlap-save tiles; float rounding spreads over the output: errors stay below
        ``4 eps log2(n)`` times the largest sum of absolute products, ``eps`` of the dtype and
        ``n`` the transform size, about ``1e-5`` (float32) or ``1e-14`` (float64) of the
        output's scale; integers are computed in float64
        and rounded back, refused if products could exceed ``2**52``); ``'separable'`` runs
        two 1-D passes for a kernel of rank 1 (an outer product, such as a Gaussian, box,
        Sobel or binomial kernel), ``kh + kw`` products per output instead of ``kh * kw``,
        and is a ``ValueError`` for any other kernel (integers: rank 1 exactly, and the
        result has the direct sum's bits; floats: the outer product of the kernel's row and
        column through its largest element matches it within ``8 eps max|k|``, and errors
        stay below ``(kh + kw + 8) eps max|k|`` times the sum of the absolute values in the
        window); ``'auto'`` (default) picks the fastest, staying direct for inputs holding
        NaN or Inf (and never the FFT for integers). See :func:`choose_conv_method`.
"""


# The parameters that correlate2d and convolve2d describe alike: in1, and the options after
# boundary.
_IN1_DOC = """\
    in1 : array_like
        First input, 2-D.
"""
_SIGNAL_OPTS_DOC = _fill(
    """\
    fillvalue : scalar, optional
        Value to pad with when ``boundary='fill'``; cast to the result dtype. Default 0.
    [method]
    [axes]
    [out]
""",
    method=_METHOD_DOC,
    axes=_axes_doc("in1", "in2"),
    out=_OUT_DOC,
)


# The text of correlate2d_backward and convolve2d_backward after their summary line
# (str.format fields: fwd, see_also, complex).
_BACKWARD_DOC = """

    Parameters
    ----------
    grad_output : array_like
        The gradient with respect to the forward's output: exactly its shape.
    in1, in2 : array_like
        The forward's inputs (2-D, or stacks with `axes`).
    mode : {{'full', 'valid', 'same'}}, optional
        As in :func:`{fwd}`; 'valid' honours scipy's swap of a larger `in2`.
    boundary : {{'fill', 'pad', 'symm', 'symmetric', 'wrap', 'circular'}}, optional
        As in :func:`{fwd}`. 'symm' and 'wrap' fold the gradient of the extended image back
        onto the image (the adjoint of the extension); 'fill' drops the part outside it.
        Ignored by 'valid', which reads no boundary.
    fillvalue : scalar, optional
        The forward's fill value: a constant. It shapes ``grad_in2`` (the padded cells are
        part of what the kernel multiplies) and gets no gradient of its own.
    axes : pair of int, optional, keyword-only
        As in :func:`{fwd}`. ``grad_in2`` is summed over the batch axes it was broadcast
        along (one kernel for a whole stack gets the sum of the images' gradients), and
        likewise ``grad_in1``.

    Returns
    -------
    grad_in1, grad_in2 : ndarray
        The gradients of ``S = sum({fwd}(in1, in2, ...) * grad_output)`` with respect to the
        arguments as passed, with their shapes, in the common dtype of the three arrays
        (integers keep their dtype and wrap, as in the forward).

    Raises
    ------
    ValueError
        As the forward for bad shapes and options; also if `grad_output` does not have the
        forward output's shape.
    TypeError
        Unsupported dtypes.

{see_also}
    Notes
    -----
    The sums run through the engines ``method='auto'`` picks (two correlations: the full
    convolution of `grad_output` with the kernel, and the 'valid' correlation of the
    extended image with `grad_output`), so float results carry the FFT's rounding for large
    kernels. They do not depend on the thread count.

    Complex numbers follow :func:`corr2d_backward`: no conjugation is added. {complex}
"""


def _backward_doc(fwd: str, other: str, what: str, complex: str, examples: str) -> str:
    """The docstring of the backward function of `fwd`: `other` is the backward function of
    the same for `what`, `complex` the last words of the Notes."""
    see_also = f"""    See Also
    --------
    {fwd} : The forward.
    {other} : The same for {what}.
"""
    return (
        f"Compute the gradients of :func:`{fwd}`: ``(grad_in1, grad_in2)``."
        + _BACKWARD_DOC.format(fwd=fwd, see_also=see_also, complex=complex)
        + examples
    )


# The options of the gradient functions that take no padding_mode (conv2d_input/_weight).
_ZERO_PAD_OPTS_DOC = """\
    stride : int or (int, int), optional
        As in :func:`conv2d`.
    padding : int, (int, int), 'valid' or 'same', optional
        As in :func:`conv2d` (zero padding).
    dilation : int or (int, int), optional
        As in :func:`conv2d`.
    groups : int, optional
        As in :func:`conv2d`.
"""


# rconv.dask


def _built(name: str) -> str:
    """The Raises section of the rconv.dask function `name`: its in-memory namesake's errors,
    raised when the graph is built."""
    return f"""\
    Raises
    ------
    ValueError, TypeError
        As :func:`rconv.{name}`, when the graph is built.
"""


# what the examples of rconv.dask import (the functions of rconv.dask and of rconv compared)
_DASK_IMPORTS_DOC = """\
    >>> import dask.array as da
    >>> import numpy as np
    >>> import rconv
    >>> import rconv.dask
"""

# the pools of rconv.dask: their input, output and the input gradient
_BATCH_INPUT_DOC = """\
    input : dask.array.Array or array_like
        ``(N, C, H, W)`` chunked along N, or ``(C, H, W)``.
"""
_POOLED_GRAD_DOC = """\
    grad_output, input : dask.array.Array or array_like
        The pooled gradient and the forward input (rechunked to the input's batch chunks).
"""
_POOLED_DOC = """\
    out : dask.array.Array
        The pooled batch, chunked like `input` along N.
"""
_ADAPTIVE_POOLED_DOC = """\
    out : dask.array.Array
        ``(N, C, OH, OW)``, chunked like `input` along N.
"""
_BATCH_GRAD_INPUT_DOC = """\
    grad_input : dask.array.Array
        Shape of `input`.
"""

# rconv.dask: parameter texts shared by the docstrings of two functions each.
_CONV_OPTS_DOC = _fill(
    """\
    stride : int or (int, int), optional
        As in :func:`rconv.conv2d`.
    padding : int, (int, int), 'valid' or 'same', optional
        As in :func:`rconv.conv2d`.
    dilation : int or (int, int), optional
        As in :func:`rconv.conv2d`.
    groups : int, optional
        As in :func:`rconv.conv2d`.
    [padding_mode]
""",
    padding_mode=_PADDING_MODE_DOC,
)
_MAX_WINDOW_DOC = """\
    kernel_size : int or (int, int)
        As in :func:`rconv.max_pool2d`.
    stride, padding, dilation : int or (int, int), optional
        As in :func:`rconv.max_pool2d`.
"""
_AVG_OPTS_DOC = """\
    kernel_size : int or (int, int)
        As in :func:`rconv.avg_pool2d`.
    stride, padding : int or (int, int), optional
        As in :func:`rconv.avg_pool2d`.
    ceil_mode, count_include_pad : bool, optional
        As in :func:`rconv.avg_pool2d`.
    divisor_override : int, optional
        As in :func:`rconv.avg_pool2d`.
"""


# How the examples of rconv.nn's layers and of rconv.optim begin.
_NN_EXAMPLES_DOC = """\
    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn
"""
_OPTIM_EXAMPLES_DOC = """\
    Examples
    --------
    >>> import numpy as np
    >>> from rconv import nn, optim
"""

# rconv.nn.Module's methods that return the module (train, eval).
_RETURNS_SELF_DOC = """\
    Returns
    -------
    self : Module
        This module.
"""


# rconv.optim: parameter texts the optimizers share.
_MODEL_DOC = """\
    model : Module
        Its ``params()``/``grads()`` are read at every step.
"""
_ADAM_DOC = """\
    lr : float, optional
        Default 1e-3 (a mutable attribute ``.lr``).
    betas : (float, float), optional
        Default (0.9, 0.999), each in [0, 1).
    eps : float, optional
        Default 1e-8.
"""
