//! The shape rules of the pooling family: [`PoolParams`] (max/avg pooling),
//! [`AvgOptions`] (avg_pool2d's divisor), [`AdaptiveParams`] and [`UnpoolParams`]. Every
//! output-size formula and every check on pooling shapes and parameters lives here, once.

use std::marker::PhantomData;

use crate::base::error::{check_shapes, positive, ConvError, Result};
use crate::base::real::Real;

/// The options of one max/avg pooling call, as torch.nn.functional takes them (avg_pool2d has
/// dilation 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSpec {
    pub kernel: (usize, usize),
    pub stride: (usize, usize),
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    pub ceil_mode: bool,
}

/// Shapes of one (non-adaptive) pooling call over `(n, c, h, w)` planes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolParams {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub dh: usize,
    pub dw: usize,
    pub oh: usize,
    pub ow: usize,
}

/// Kernel, stride, padding and dilation along one axis.
type Axis = (usize, usize, usize, usize);

/// torch's `pooling_output_shape`: floor (or ceil) division, and with `ceil_mode` a last
/// window that would start in the right padding is dropped.
fn pool_len(axis: &str, len: usize, (k, s, p, d): Axis, ceil: bool) -> Result<usize> {
    let num = len as i128 + 2 * p as i128 - d as i128 * (k as i128 - 1) - 1
        + if ceil { s as i128 - 1 } else { 0 };
    let mut out = num.div_euclid(s as i128) + 1;
    if ceil && (out - 1) * s as i128 >= len as i128 + p as i128 {
        out -= 1;
    }
    if out < 1 {
        return Err(ConvError::value(format!(
            "input {axis} {len} is too small for kernel {k} (dilation {d}, padding {p}): \
                 the output size would be {out}"
        )));
    }
    usize::try_from(out).map_err(|_| ConvError::value("output size overflows"))
}

impl PoolSpec {
    /// The rules that need no input: kernel, stride, dilation >= 1; padding at most half the
    /// kernel (a pooling layer checks them when it is built).
    pub fn check(&self) -> Result<()> {
        let (kernel, padding) = (self.kernel, self.padding);
        positive("kernel_size", kernel)?;
        positive("stride", self.stride)?;
        positive("dilation", self.dilation)?;
        if padding.0 > kernel.0 / 2 || padding.1 > kernel.1 / 2 {
            return Err(ConvError::value(format!(
                "padding {padding:?} must be at most half of kernel_size {kernel:?}"
            )));
        }
        Ok(())
    }
}

impl PoolParams {
    /// Validate as torch does: kernel, stride, dilation >= 1; padding at most half the kernel.
    pub fn new(input: [usize; 4], spec: &PoolSpec) -> Result<Self> {
        let PoolSpec {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
        } = *spec;
        let [n, c, h, w] = input;
        spec.check()?;
        let len = |axis, n, k, s, pad, d| pool_len(axis, n, (k, s, pad, d), ceil_mode);
        let oh = len("height", h, kernel.0, stride.0, padding.0, dilation.0)?;
        let ow = len("width", w, kernel.1, stride.1, padding.1, dilation.1)?;
        check_shapes(&[[n, c, h, w], [n, c, oh, ow]])?;
        Ok(PoolParams {
            n,
            c,
            h,
            w,
            kh: kernel.0,
            kw: kernel.1,
            sh: stride.0,
            sw: stride.1,
            ph: padding.0,
            pw: padding.1,
            dh: dilation.0,
            dw: dilation.1,
            oh,
            ow,
        })
    }

    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
    pub fn input_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    /// In-bounds window taps along one axis for output `o`: first index, step, end (exclusive).
    #[inline]
    pub(crate) fn taps(
        o: usize,
        s: usize,
        p: usize,
        d: usize,
        k: usize,
        len: usize,
    ) -> (usize, usize) {
        let start = (o * s) as isize - p as isize;
        let end = (start + ((k - 1) * d) as isize + 1).min(len as isize);
        let mut first = start;
        while first < 0 {
            first += d as isize;
        }
        (first as usize, end.max(first) as usize)
    }
}

/// How avg_pool2d divides: torch's `count_include_pad` and `divisor_override`.
#[derive(Debug, Clone, Copy)]
pub struct AvgOptions {
    pub count_include_pad: bool,
    /// A non-zero divisor replacing the window size (negative divisors negate, as in torch).
    divisor_override: Option<i64>,
}

impl AvgOptions {
    /// torch's rule: a `divisor_override` must be non-zero.
    pub fn new(count_include_pad: bool, divisor_override: Option<i64>) -> Result<Self> {
        if divisor_override == Some(0) {
            return Err(ConvError::value("divisor_override must be non-zero"));
        }
        Ok(AvgOptions {
            count_include_pad,
            divisor_override,
        })
    }

    /// The divisor of a window of `pool` positions (clipped to the padded input) of which
    /// `inside` lie in the input.
    #[inline(always)]
    pub(crate) fn divisor<T: Real>(&self, pool: usize, inside: usize) -> T {
        match self.divisor_override {
            Some(d) if d < 0 => T::ZERO - T::from_usize(d.unsigned_abs() as usize),
            Some(d) => T::from_usize(d as usize),
            None if self.count_include_pad => T::from_usize(pool),
            None => T::from_usize(inside),
        }
    }
}

/// Shapes of a call that maps input planes `(n, c, h, w)` to output planes `(n, c, oh, ow)`
/// by a rule `R` ([`Adaptive`] or [`Unpool`]), whose constructor checks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneMap<R> {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    _rule: PhantomData<R>,
}

impl<R> PlaneMap<R> {
    /// Checked by the rule's constructor only.
    fn checked([n, c, h, w]: [usize; 4], (oh, ow): (usize, usize)) -> Result<Self> {
        check_shapes(&[[n, c, h, w], [n, c, oh, ow]])?;
        Ok(PlaneMap {
            n,
            c,
            h,
            w,
            oh,
            ow,
            _rule: PhantomData,
        })
    }

    pub fn output_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }
}

/// The rule of adaptive pooling (torch's start/end windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adaptive;
/// The rule of max_unpool2d (torch's default output size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unpool;

/// Shapes of an adaptive pooling call: input planes `(n, c, h, w)` to `(oh, ow)`.
pub type AdaptiveParams = PlaneMap<Adaptive>;
/// Shapes of one max_unpool2d call: pooled planes `(n, c, h, w)` to `(n, c, oh, ow)`.
pub type UnpoolParams = PlaneMap<Unpool>;

impl PlaneMap<Adaptive> {
    /// `out`: the target `(oh, ow)`; `None` keeps the input's size along that axis.
    pub fn new(input: [usize; 4], out: (Option<usize>, Option<usize>)) -> Result<Self> {
        let [n, c, h, w] = input;
        let out = (out.0.unwrap_or(h), out.1.unwrap_or(w));
        if (h == 0 || w == 0) && out.0 * out.1 > 0 && n * c > 0 {
            return Err(ConvError::value(format!(
                "input of spatial size ({h}, {w}) cannot be pooled to {out:?}"
            )));
        }
        Self::checked(input, out)
    }

    /// torch: start = floor(o * len / out), end = ceil((o + 1) * len / out).
    #[inline(always)]
    pub(crate) fn range(o: usize, out: usize, len: usize) -> (usize, usize) {
        ((o * len) / out, ((o + 1) * len).div_ceil(out))
    }
}

impl PlaneMap<Unpool> {
    /// torch's rule: the default size is `(h - 1) stride - 2 padding + kernel`; an explicit
    /// `output_size` (its last two entries) must lie strictly within one stride of it.
    pub fn new(
        input: [usize; 4],
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        output_size: Option<&[usize]>,
    ) -> Result<Self> {
        let [_, _, h, w] = input;
        positive("kernel_size", kernel)?;
        positive("stride", stride)?;
        let default = |len: usize, s: usize, p: usize, k: usize| -> i128 {
            (len as i128 - 1) * s as i128 - 2 * p as i128 + k as i128
        };
        let def = (
            default(h, stride.0, padding.0, kernel.0),
            default(w, stride.1, padding.1, kernel.1),
        );
        let size = match output_size {
            None => def,
            Some(sz) => {
                if !(2..=4).contains(&sz.len()) {
                    return Err(ConvError::value(format!(
                        "output_size must have 2, 3 or 4 elements, got {}",
                        sz.len()
                    )));
                }
                let want = (sz[sz.len() - 2] as i128, sz[sz.len() - 1] as i128);
                let (s0, s1) = (stride.0 as i128, stride.1 as i128);
                let inside = |v: i128, d: i128, s: i128| d - s < v && v < d + s;
                if !(inside(want.0, def.0, s0) && inside(want.1, def.1, s1)) {
                    return Err(ConvError::value(format!(
                        "output_size {want:?} must be strictly between {:?} and {:?}",
                        (def.0 - s0, def.1 - s1),
                        (def.0 + s0, def.1 + s1)
                    )));
                }
                want
            }
        };
        if size.0 < 0 || size.1 < 0 {
            return Err(ConvError::value(format!(
                "the output size {size:?} is negative"
            )));
        }
        let to_usize =
            |v: i128| usize::try_from(v).map_err(|_| ConvError::value("output size overflows"));
        let (oh, ow) = (to_usize(size.0)?, to_usize(size.1)?);
        Self::checked(input, (oh, ow))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// [`PoolParams::new`] with the window options as arguments: the pooling kernels' unit
    /// tests build their shapes with it.
    pub(crate) fn pp(
        input: [usize; 4],
        kernel: (usize, usize),
        stride: (usize, usize),
        padding: (usize, usize),
        dilation: (usize, usize),
        ceil_mode: bool,
    ) -> Result<PoolParams> {
        let spec = PoolSpec {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
        };
        PoolParams::new(input, &spec)
    }

    #[test]
    fn ceil_mode_drops_window_starting_in_padding() {
        let p = pp([1, 1, 5, 5], (2, 2), (2, 2), (1, 1), (1, 1), true).unwrap();
        assert_eq!((p.oh, p.ow), (3, 3));
        let p = pp([1, 1, 5, 5], (2, 2), (2, 2), (0, 0), (1, 1), true).unwrap();
        assert_eq!((p.oh, p.ow), (3, 3));
        assert!(pp([1, 1, 4, 4], (5, 5), (1, 1), (0, 0), (1, 1), false).is_err());
        assert!(pp([1, 1, 4, 4], (3, 3), (1, 1), (2, 2), (1, 1), false).is_err());
    }
}
