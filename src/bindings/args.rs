//! Argument types of the binding boundary: options parse into the core's enums, and each op
//! family's options arrive as one tuple that parses into one args struct. Python has already
//! converted types (int-or-pair to a pair of ints, array-likes to arrays); every check on the
//! values lives in the core's params structs, except the sign of sizes, checked here once.

use pyo3::prelude::*;
use pyo3::types::{PyString, PyStringMethods, PyTuple};

use crate::base::error::ConvError;
use crate::nn::conv::params::{ConvSpec, PadMode, Padding, Pair};
use crate::nn::pool::params::PoolSpec;
use crate::signal::params::{Boundary, Mode, Op};

/// The option string `ob`, or a `ValueError` listing the `allowed` values.
fn option<'a>(
    func: &str,
    name: &str,
    ob: &'a Bound<'_, PyAny>,
    allowed: &str,
) -> Result<std::borrow::Cow<'a, str>, ConvError> {
    ob.cast::<PyString>()
        .ok()
        .and_then(|s| s.to_cow().ok())
        .ok_or_else(|| {
            ConvError::value(
                func,
                format!("{name} must be one of {allowed}, got {}", repr(ob)),
            )
        })
}

fn repr(ob: &Bound<'_, PyAny>) -> String {
    ob.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".into())
}

/// A non-negative size from a Python int.
fn size(func: &str, name: &str, ob: &Bound<'_, PyAny>) -> Result<usize, ConvError> {
    let v: i64 = ob
        .extract()
        .map_err(|_| ConvError::type_(func, format!("{name} must be an int, got {}", repr(ob))))?;
    usize::try_from(v).map_err(|_| ConvError::value(func, format!("{name} must be >= 0, got {v}")))
}

/// A pair of non-negative sizes from a Python tuple of two ints.
fn pair(func: &str, name: &str, ob: &Bound<'_, PyAny>) -> Result<Pair, ConvError> {
    let (a, b): (i64, i64) = ob.extract().map_err(|_| {
        ConvError::type_(
            func,
            format!("{name} must be an int or a pair of ints, got {}", repr(ob)),
        )
    })?;
    match (usize::try_from(a), usize::try_from(b)) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        _ => Err(ConvError::value(
            func,
            format!("{name} must be >= 0, got ({a}, {b})"),
        )),
    }
}

/// A list of non-negative sizes (a shape) from a Python sequence of ints.
pub fn sizes(func: &str, name: &str, ob: &Bound<'_, PyAny>) -> Result<Vec<usize>, ConvError> {
    let v: Vec<i64> = ob.extract().map_err(|_| {
        ConvError::type_(
            func,
            format!("{name} must be a sequence of ints, got {}", repr(ob)),
        )
    })?;
    v.iter()
        .map(|&e| {
            usize::try_from(e).map_err(|_| {
                ConvError::value(
                    func,
                    format!("{name} must hold non-negative sizes, got {v:?}"),
                )
            })
        })
        .collect()
}

/// A 4-entry shape (`[n, c, h, w]`) from a Python sequence of non-negative ints.
pub fn shape4(func: &str, name: &str, ob: &Bound<'_, PyAny>) -> Result<[usize; 4], ConvError> {
    let v = sizes(func, name, ob)?;
    <[usize; 4]>::try_from(v.as_slice())
        .map_err(|_| ConvError::value(func, format!("{name} must hold 4 sizes, got {}", v.len())))
}

/// `ob` as a tuple of exactly `n` items (the binding's own calling convention).
fn items<'py>(
    func: &str,
    ob: &Bound<'py, PyAny>,
    n: usize,
) -> Result<Vec<Bound<'py, PyAny>>, ConvError> {
    let t = ob
        .cast::<PyTuple>()
        .map_err(|_| ConvError::internal(func, "options must be a tuple"))?;
    if t.len() != n {
        return Err(ConvError::internal(
            func,
            format!("options must have {n} items, got {}", t.len()),
        ));
    }
    Ok(t.iter().collect())
}

/// The `axes=` of a stacked signal call: exactly two ints (not yet normalised).
pub fn parse_axes(func: &str, ob: &Bound<'_, PyAny>) -> Result<(isize, isize), ConvError> {
    let bad = || {
        ConvError::value(
            func,
            format!("axes must be a pair of two ints, got {}", repr(ob)),
        )
    };
    if ob.is_instance_of::<PyString>() {
        return Err(bad());
    }
    let items: Vec<Bound<'_, PyAny>> = ob
        .try_iter()
        .map_err(|_| bad())?
        .collect::<PyResult<_>>()
        .map_err(|_| bad())?;
    let [a, b] = items.as_slice() else {
        return Err(bad());
    };
    let int = |v: &Bound<'_, PyAny>| -> Result<isize, ConvError> {
        if v.is_instance_of::<pyo3::types::PyBool>() {
            return Err(ConvError::type_(
                func,
                format!("axes must hold ints, got {}", repr(ob)),
            ));
        }
        v.call_method0("__index__")
            .and_then(|i| i.extract::<isize>())
            .map_err(|_| ConvError::type_(func, format!("axes must hold ints, got {}", repr(ob))))
    };
    Ok((int(a)?, int(b)?))
}

pub fn parse_mode(func: &str, ob: &Bound<'_, PyAny>) -> Result<Mode, ConvError> {
    let s = option(func, "mode", ob, "'valid', 'same', 'full'")?;
    Mode::parse(func, &s)
}

pub fn parse_boundary(func: &str, ob: &Bound<'_, PyAny>) -> Result<Boundary, ConvError> {
    let s = option(
        func,
        "boundary",
        ob,
        "'fill', 'pad', 'symm', 'symmetric', 'wrap', 'circular'",
    )?;
    Boundary::parse(func, &s)
}

pub fn parse_op(func: &str, ob: &Bound<'_, PyAny>) -> Result<Op, ConvError> {
    match option(func, "op", ob, "'correlate', 'convolve', 'corr2d'")?.as_ref() {
        "correlate" => Ok(Op::Correlate),
        "convolve" => Ok(Op::Convolve),
        "corr2d" => Ok(Op::Corr2d),
        s => Err(ConvError::internal(func, format!("unknown op {s:?}"))),
    }
}

/// `method=` of the signal functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Auto,
    Direct,
    Fft,
    /// Two 1-D passes (a kernel of rank 1).
    Separable,
    /// `rconv.dask`'s blocks of an image for which 'auto' chose the FFT: the FFT unless the
    /// block holds NaN or Inf (private).
    FftIfFinite,
    /// The same for the separable passes (private).
    SeparableIfFinite,
}

impl Method {
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "auto",
            Method::Direct => "direct",
            Method::Fft => "fft",
            Method::Separable => "separable",
            Method::FftIfFinite => "fft-if-finite",
            Method::SeparableIfFinite => "separable-if-finite",
        }
    }
}

pub fn parse_method(func: &str, ob: &Bound<'_, PyAny>) -> Result<Method, ConvError> {
    let bad = || {
        ConvError::value(
            func,
            format!(
                "method must be 'auto', 'direct', 'fft' or 'separable', got {}",
                repr(ob)
            ),
        )
    };
    match option(func, "method", ob, "'auto', 'direct', 'fft', 'separable'")
        .map_err(|_| bad())?
        .as_ref()
    {
        "auto" => Ok(Method::Auto),
        "direct" => Ok(Method::Direct),
        "fft" => Ok(Method::Fft),
        "separable" => Ok(Method::Separable),
        "fft-if-finite" => Ok(Method::FftIfFinite),
        "separable-if-finite" => Ok(Method::SeparableIfFinite),
        _ => Err(bad()),
    }
}

/// The options of a correlate2d/convolve2d/corr2d call:
/// `(func, op, mode, boundary, method, fft_terms)`.
pub struct SignalArgs {
    pub func: String,
    pub op: Op,
    pub mode: Mode,
    pub boundary: Boundary,
    pub method: Method,
    /// Terms per sum for the exactness bound of an integer FFT (`None`: from the shapes;
    /// `rconv.dask` passes the whole image's for each chunk).
    pub fft_terms: Option<usize>,
}

impl SignalArgs {
    pub fn parse(ob: &Bound<'_, PyAny>) -> PyResult<Self> {
        let it = items("correlate2d", ob, 6)?;
        let func: String = it[0].extract()?;
        let f = func.as_str();
        Ok(SignalArgs {
            op: parse_op(f, &it[1])?,
            mode: parse_mode(f, &it[2])?,
            boundary: parse_boundary(f, &it[3])?,
            method: parse_method(f, &it[4])?,
            fft_terms: if it[5].is_none() {
                None
            } else {
                Some(size(f, "fft_terms", &it[5])?)
            },
            func,
        })
    }
}

fn parse_padding(func: &str, ob: &Bound<'_, PyAny>) -> Result<Padding, ConvError> {
    if let Ok(s) = ob.cast::<PyString>() {
        return match s.to_cow().ok().as_deref() {
            Some("valid") => Ok(Padding::Valid),
            Some("same") => Ok(Padding::Same),
            _ => Err(ConvError::value(
                func,
                format!(
                    "padding must be 'valid', 'same', an int or a pair, got {}",
                    repr(ob)
                ),
            )),
        };
    }
    Ok(Padding::Explicit(pair(func, "padding", ob)?))
}

fn parse_pad_mode(func: &str, ob: &Bound<'_, PyAny>) -> Result<PadMode, ConvError> {
    let allowed = "'zeros', 'reflect', 'replicate' or 'circular'";
    let bad = || {
        ConvError::value(
            func,
            format!("padding_mode must be {allowed}, got {}", repr(ob)),
        )
    };
    match option(func, "padding_mode", ob, allowed)
        .map_err(|_| bad())?
        .as_ref()
    {
        "zeros" => Ok(PadMode::Zeros),
        "reflect" => Ok(PadMode::Reflect),
        "replicate" => Ok(PadMode::Replicate),
        "circular" => Ok(PadMode::Circular),
        _ => Err(bad()),
    }
}

/// The options of a conv2d-family call:
/// `(func, stride, padding, dilation, groups, padding_mode, output_padding)`.
pub struct ConvArgs {
    pub func: String,
    pub spec: ConvSpec,
    /// conv_transpose2d's `output_padding` (`(0, 0)` elsewhere).
    pub output_padding: Pair,
}

impl ConvArgs {
    pub fn parse(ob: &Bound<'_, PyAny>) -> PyResult<Self> {
        let it = items("conv2d", ob, 7)?;
        let func: String = it[0].extract()?;
        let f = func.as_str();
        let groups = size(f, "groups", &it[4])?;
        let spec = ConvSpec {
            stride: pair(f, "stride", &it[1])?,
            padding: parse_padding(f, &it[2])?,
            dilation: pair(f, "dilation", &it[3])?,
            groups,
            pad_mode: parse_pad_mode(f, &it[5])?,
        };
        let output_padding = pair(f, "output_padding", &it[6])?;
        Ok(ConvArgs {
            func,
            spec,
            output_padding,
        })
    }
}

/// The options of a max/avg pooling call:
/// `(func, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
/// divisor_override)`; `stride` None means `kernel_size`.
pub struct PoolArgs {
    pub func: String,
    pub spec: PoolSpec,
    pub count_include_pad: bool,
    pub divisor_override: Option<i64>,
}

impl PoolArgs {
    pub fn parse(ob: &Bound<'_, PyAny>) -> PyResult<Self> {
        let it = items("max_pool2d", ob, 8)?;
        let func: String = it[0].extract()?;
        let f = func.as_str();
        let kernel = pair(f, "kernel_size", &it[1])?;
        let stride = if it[2].is_none() {
            kernel
        } else {
            pair(f, "stride", &it[2])?
        };
        let divisor_override = if it[7].is_none() {
            None
        } else {
            Some(it[7].extract::<i64>().map_err(|_| {
                ConvError::type_(
                    f,
                    format!("divisor_override must be an int, got {}", repr(&it[7])),
                )
            })?)
        };
        Ok(PoolArgs {
            spec: PoolSpec {
                kernel,
                stride,
                padding: pair(f, "padding", &it[3])?,
                dilation: pair(f, "dilation", &it[4])?,
                ceil_mode: it[5].is_truthy()?,
            },
            count_include_pad: it[6].is_truthy()?,
            divisor_override,
            func,
        })
    }
}

/// An adaptive pool's `output_size`: a pair whose entries may be None (keep the input size).
pub fn adaptive_size(
    func: &str,
    ob: &Bound<'_, PyAny>,
) -> Result<(Option<usize>, Option<usize>), ConvError> {
    let (a, b): (Bound<'_, PyAny>, Bound<'_, PyAny>) = ob.extract().map_err(|_| {
        ConvError::value(
            func,
            format!("output_size must be an int or a pair, got {}", repr(ob)),
        )
    })?;
    let one = |v: &Bound<'_, PyAny>| -> Result<Option<usize>, ConvError> {
        if v.is_none() {
            Ok(None)
        } else {
            size(func, "output_size", v).map(Some)
        }
    };
    Ok((one(&a)?, one(&b)?))
}
