//! The shape rules of the signal family, as in `scipy.signal.correlate2d`/`convolve2d`:
//! the options ([`Mode`], [`Boundary`], [`Op`]), the 'valid'-mode swap, the output shape and
//! the offsets of each mode ([`Corr2dParams`]), and the effective kernel of each op. Every
//! check on the shapes and options of these functions lives here, once.

use ndarray::{ArrayBase, ArrayView2, ArrayViewMut2, Axis, Ix2, IxDyn, RawData};

use crate::base::error::{ConvError, Result};
use crate::base::scalar::Elem;

crate::choice! {
    /// Output size rule, as in `scipy.signal.correlate2d`.
    pub enum Mode {
        Full = "full",
        Valid = "valid",
        Same = "same",
    }
}

crate::choice! {
    /// How the image is extended beyond its edges.
    pub enum Boundary {
        /// Pad with the fill value.
        Fill = "fill" | "pad",
        /// Mirror including the edge sample.
        Symm = "symm" | "symmetric",
        /// Periodic.
        Wrap = "wrap" | "circular",
    }
}

impl Boundary {
    /// Map a virtual index onto `0..n` (`n > 0`), or `None` for the fill value.
    #[inline]
    pub fn map(self, v: isize, n: usize) -> Option<usize> {
        let ni = n as isize;
        if (0..ni).contains(&v) {
            return Some(v as usize);
        }
        match self {
            Boundary::Fill => None,
            Boundary::Wrap => Some(v.rem_euclid(ni) as usize),
            Boundary::Symm => {
                let m = v.rem_euclid(2 * ni);
                Some(if m < ni { m } else { 2 * ni - 1 - m } as usize)
            }
        }
    }
}

crate::choice! {
    /// Which scipy function's semantics to follow.
    pub enum Op {
        /// `correlate2d`: conjugate `in2`; in 'valid' mode swap a larger `in2` and reverse
        /// the output.
        Correlate = "correlate",
        /// `convolve2d`: flip `in2`; in 'valid' mode swap a larger `in2`.
        Convolve = "convolve",
        /// d2l `corr2d`: 'valid' correlation without the swap (a larger kernel is an error).
        Corr2d = "corr2d",
    }
}

/// Shapes and offsets of one 2-D correlation/convolution call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corr2dParams {
    /// The image after any swap: `(rows, cols)`.
    pub image: (usize, usize),
    /// The kernel after any swap.
    pub kernel: (usize, usize),
    pub mode: Mode,
    pub boundary: Boundary,
    pub op: Op,
    /// True when scipy's 'valid'-mode swap exchanged the inputs.
    pub swapped: bool,
}

impl Corr2dParams {
    /// Validate the shapes of `in1` (image) and `in2` (kernel) for `op` in `mode`.
    pub fn new(
        in1: (usize, usize),
        in2: (usize, usize),
        mode: Mode,
        boundary: Boundary,
        op: Op,
    ) -> Result<Self> {
        let mut swapped = false;
        let (mut image, mut kernel) = (in1, in2);
        if mode == Mode::Full && (in1.0 + in2.0 == 0 || in1.1 + in2.1 == 0) {
            // scipy: the full size m + k - 1 would be negative.
            return Err(ConvError::value(format!(
                    "in1 {in1:?} and in2 {in2:?} are both empty along one axis; the 'full' output would have a negative size"
                ),
            ));
        }
        if mode == Mode::Valid {
            let ok1 = in1.0 >= in2.0 && in1.1 >= in2.1;
            let ok2 = in2.0 >= in1.0 && in2.1 >= in1.1;
            if op == Op::Corr2d {
                if !ok1 {
                    return Err(ConvError::value(format!(
                        "kernel k of shape {in2:?} is larger than the input x of shape \
                             {in1:?}; 'valid' correlation needs k.shape <= x.shape in both \
                             dimensions"
                    )));
                }
            } else if !(ok1 || ok2) {
                return Err(ConvError::value(format!(
                    "for 'valid' mode, one must be at least as large as the other in every \
                         dimension (in1 {in1:?}, in2 {in2:?})"
                )));
            } else if !ok1 {
                swapped = true;
                std::mem::swap(&mut image, &mut kernel);
            }
        }
        let p = Corr2dParams {
            image,
            kernel,
            mode,
            boundary,
            op,
            swapped,
        };
        let (oh, ow) = p.out_shape();
        let needs_data = oh > 0 && ow > 0 && kernel.0 > 0 && kernel.1 > 0;
        if needs_data && boundary != Boundary::Fill && (image.0 == 0 || image.1 == 0) {
            return Err(ConvError::value(format!(
                "boundary {:?} cannot extend an empty input of shape {image:?}; use \
                     boundary='fill'",
                match boundary {
                    Boundary::Symm => "symm",
                    _ => "wrap",
                }
            )));
        }
        Ok(p)
    }

    /// Output shape `(rows, cols)`.
    pub fn out_shape(&self) -> (usize, usize) {
        let (m, n) = self.image;
        let (p, q) = self.kernel;
        match self.mode {
            Mode::Full => (full_len(m, p), full_len(n, q)),
            Mode::Same => (m, n),
            // After the swap the image is at least as large as the kernel.
            Mode::Valid => (m + 1 - p.min(m + 1), n + 1 - q.min(n + 1)),
        }
    }

    /// Offsets `(top, left)`: output `(i, j)` reads `ext[i + a - top, j + b - left]` for the
    /// effective (conjugated or flipped) kernel tap `(a, b)`.
    pub fn offsets(&self) -> (usize, usize) {
        let (p, q) = self.kernel;
        let flip = self.op == Op::Convolve;
        let one = |k: usize| -> usize {
            match self.mode {
                Mode::Full => k.saturating_sub(1),
                // scipy: correlation anchors an even kernel at (k-1)//2, convolution at k//2.
                Mode::Same if flip => k / 2,
                Mode::Same => k.saturating_sub(1) / 2,
                Mode::Valid => 0,
            }
        };
        (one(p), one(q))
    }

    /// True when the output must be reversed in both axes (correlate2d after the valid swap).
    pub fn reversed(&self) -> bool {
        self.swapped && self.op == Op::Correlate
    }

    /// An image (or its gradient) as the engines read it: reversed in both axes where
    /// [`Corr2dParams::reversed`] says so.
    pub fn orient<S: RawData>(&self, mut v: ArrayBase<S, Ix2>) -> ArrayBase<S, Ix2> {
        if self.reversed() {
            v.invert_axis(Axis(0));
            v.invert_axis(Axis(1));
        }
        v
    }
}

/// The C-order multi-index of flat index `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (k, &n) in shape.iter().enumerate().rev() {
        idx[k] = i % n.max(1);
        i /= n.max(1);
    }
    idx
}

/// A shape as Python prints it: `(4, 20, 30)`, `(3,)`.
fn shape_str(s: &[usize]) -> String {
    match s {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            s.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `m + k - 1` (`Corr2dParams::new` refuses `m + k == 0`).
fn full_len(m: usize, k: usize) -> usize {
    (m + k).saturating_sub(1)
}

/// The effective kernel, row-major `(kh, kw)`: tap `(a, b)` multiplies `ext[i + a - top, ...]`.
///
/// correlate2d conjugates the kernel (and after the 'valid' swap reverses both inputs, which is
/// the same as reversing the output); convolve2d flips it; corr2d uses it as it is.
pub(crate) fn effective_kernel<T: Elem>(kernel: &ArrayView2<T>, p: &Corr2dParams) -> Vec<T> {
    let (kh, kw) = kernel.dim();
    let mut k = Vec::with_capacity(kh * kw);
    for a in 0..kh {
        for b in 0..kw {
            k.push(match p.op {
                Op::Convolve => kernel[[kh - 1 - a, kw - 1 - b]],
                Op::Correlate if p.reversed() => kernel[[kh - 1 - a, kw - 1 - b]].conj(),
                Op::Correlate => kernel[[a, b]].conj(),
                Op::Corr2d => kernel[[a, b]],
            });
        }
    }
    k
}

/// A correlation prepared for an engine: `out[i, j] = sum_{a, b} keff[a, b] * ext[i + a - top,
/// j + b - left]`, `ext` being `image` extended by `boundary` (with `fill` for 'fill').
pub struct Prepared<'a, T> {
    /// The image, reversed in both axes where [`Corr2dParams::reversed`] says so.
    pub image: ArrayView2<'a, T>,
    /// The effective kernel, row-major `(kh, kw)`.
    pub keff: Vec<T>,
    pub kh: usize,
    pub kw: usize,
    pub top: usize,
    pub left: usize,
    pub boundary: Boundary,
    pub fill: T,
    /// Output width (the output is `(out.len() / ow, ow)`).
    pub ow: usize,
}

impl Corr2dParams {
    /// The engines' common start: `out` must have the output shape and standard layout
    /// (otherwise an internal error); the image is oriented and the effective kernel formed.
    /// `None` when the output is empty.
    pub(crate) fn prepare<'a, 'o, T: Elem>(
        &self,
        image: ArrayView2<'a, T>,
        kernel: &ArrayView2<T>,
        fill: T,
        out: &'o mut ArrayViewMut2<T>,
    ) -> Result<Option<(Prepared<'a, T>, &'o mut [T])>> {
        let (oh, ow) = self.out_shape();
        if out.dim() != (oh, ow) {
            return Err(ConvError::internal(format!(
                "output shape {:?} != {:?}",
                out.dim(),
                (oh, ow)
            )));
        }
        let Some(out) = out.as_slice_mut() else {
            return Err(ConvError::internal("output not contiguous"));
        };
        if oh == 0 || ow == 0 {
            return Ok(None);
        }
        let image = self.orient(image);
        let (kh, kw) = kernel.dim();
        let (top, left) = self.offsets();
        let job = Prepared {
            image,
            keff: effective_kernel(kernel, self),
            kh,
            kw,
            top,
            left,
            boundary: self.boundary,
            fill,
            ow,
        };
        Ok(Some((job, out)))
    }
}

/// Shapes of a stacked call (`axes=`): two axes of `in1` carry the 2-D operation, every other
/// axis is a batch axis. `in2` is 2-D (one kernel for every image) or has `in1`'s number of
/// dimensions with its kernel axes at the same positions; its batch axes broadcast against
/// `in1`'s by NumPy's rules. Every check of such a call lives here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackParams {
    /// The row and column axes of `in1` (normalised, distinct).
    pub axes: (usize, usize),
    /// The other axes of `in1`, in increasing order.
    pub batch_axes: Vec<usize>,
    /// The broadcast batch shape (one entry per batch axis).
    pub batch: Vec<usize>,
    /// `in1`'s sizes along the batch axes.
    pub batch1: Vec<usize>,
    /// `in2`'s sizes along the batch axes (all 1 for a 2-D `in2`).
    pub batch2: Vec<usize>,
    /// The 2-D rule of each image (after scipy's 'valid' swap, decided from the 2-D shapes).
    pub plane: Corr2dParams,
    /// The number of dimensions of `in1` and of the output.
    pub ndim: usize,
}

impl StackParams {
    /// Validate a stacked call: `axes` as given by the user (negative values count from the
    /// end), the full shapes of both inputs, and the 2-D options.
    pub fn new(
        in1: &[usize],
        in2: &[usize],
        axes: (isize, isize),
        plane_rule: (Mode, Boundary, Op),
    ) -> Result<Self> {
        let nd = in1.len();
        let (n1, n2) = match plane_rule.2 {
            Op::Corr2d => ("x", "k"),
            _ => ("in1", "in2"),
        };
        if nd < 2 {
            return Err(ConvError::value(format!(
                "with axes=, {n1} must have at least 2 dimensions, got {nd}"
            )));
        }
        let norm = |a: isize| -> Result<usize> {
            let v = if a < 0 { a + nd as isize } else { a };
            if v < 0 || v >= nd as isize {
                return Err(ConvError::value(format!(
                    "axes {:?} out of range for {n1} with {nd} dimensions",
                    (axes.0, axes.1)
                )));
            }
            Ok(v as usize)
        };
        let (a, b) = (norm(axes.0)?, norm(axes.1)?);
        if a == b {
            return Err(ConvError::value(format!(
                "axes {:?} name the same axis twice; two distinct axes are needed",
                (axes.0, axes.1)
            )));
        }
        if in2.len() != 2 && in2.len() != nd {
            return Err(ConvError::value(format!(
                "with axes=, {n2} must be 2-D or have {n1}'s {nd} dimensions, got {}",
                in2.len()
            )));
        }
        let batch_axes: Vec<usize> = (0..nd).filter(|&d| d != a && d != b).collect();
        let batch1: Vec<usize> = batch_axes.iter().map(|&d| in1[d]).collect();
        let (batch2, k_plane) = if in2.len() == 2 {
            (vec![1; batch_axes.len()], (in2[0], in2[1]))
        } else {
            (
                batch_axes.iter().map(|&d| in2[d]).collect(),
                (in2[a], in2[b]),
            )
        };
        let mut batch = Vec::with_capacity(batch_axes.len());
        for (j, (&d1, &d2)) in batch1.iter().zip(&batch2).enumerate() {
            batch.push(match (d1, d2) {
                _ if d1 == d2 => d1,
                (1, d) | (d, 1) => d,
                _ => {
                    return Err(ConvError::value(format!(
                        "the batch axes of {n1} {} and {n2} {} do not broadcast (axis {}: \
                             {d1} against {d2})",
                        shape_str(in1),
                        shape_str(in2),
                        batch_axes[j]
                    )))
                }
            });
        }
        let (mode, boundary, op) = plane_rule;
        let plane = Corr2dParams::new((in1[a], in1[b]), k_plane, mode, boundary, op)?;
        Ok(StackParams {
            axes: (a, b),
            batch_axes,
            batch,
            batch1,
            batch2,
            plane,
            ndim: nd,
        })
    }

    /// The number of images (pairs) computed.
    pub fn count(&self) -> usize {
        self.batch.iter().product()
    }

    /// The output shape: the broadcast batch sizes, and the mode's sizes along `axes`.
    pub fn out_shape(&self) -> Vec<usize> {
        let (oh, ow) = self.plane.out_shape();
        let mut s = vec![0; self.ndim];
        for (&d, &n) in self.batch_axes.iter().zip(&self.batch) {
            s[d] = n;
        }
        s[self.axes.0] = oh;
        s[self.axes.1] = ow;
        s
    }

    /// True when each output image is one contiguous block of the (C-order) output: the
    /// axes are the last two, in order.
    pub fn planes_contiguous(&self) -> bool {
        self.axes == (self.ndim - 2, self.ndim - 1)
    }

    /// The batch multi-index of image `i` (C order over [`StackParams::batch`]).
    pub fn batch_index(&self, i: usize) -> Vec<usize> {
        unravel(i, &self.batch)
    }

    /// An input (`kernel`: `in2`), the output or a gradient with its axes in the batch order
    /// the engines use: `(batch..., rows, cols)`. A 2-D `in2` is one kernel in its own
    /// orientation and stays as it is.
    pub fn batch_order<S: RawData>(
        &self,
        v: ArrayBase<S, IxDyn>,
        kernel: bool,
    ) -> ArrayBase<S, IxDyn> {
        if kernel && v.ndim() == 2 {
            return v;
        }
        let mut perm = self.batch_axes.clone();
        perm.extend([self.axes.0, self.axes.1]);
        v.permuted_axes(IxDyn(&perm))
    }

    /// The batch multi-index of image `i` within an input whose batch sizes are `own`
    /// (`batch1` or `batch2`): broadcast axes of size 1 read index 0.
    pub fn source_index(&self, i: usize, own: &[usize]) -> Vec<usize> {
        self.batch_index(i)
            .into_iter()
            .zip(own)
            .map(|(v, &n)| if n == 1 { 0 } else { v })
            .collect()
    }
}

#[cfg(test)]
mod stack_tests {
    use super::*;

    fn rule() -> (Mode, Boundary, Op) {
        (Mode::Same, Boundary::Fill, Op::Correlate)
    }

    #[test]
    fn shapes_axes_and_broadcasting() {
        let p = StackParams::new(&[9, 11, 3], &[3, 3], (0, 1), rule()).unwrap();
        assert_eq!(p.out_shape(), vec![9, 11, 3]);
        assert_eq!((p.batch_axes.clone(), p.count()), (vec![2], 3));
        assert!(!p.planes_contiguous());
        let p = StackParams::new(&[2, 1, 5, 6], &[1, 4, 3, 3], (-2, -1), rule()).unwrap();
        assert_eq!(p.batch, vec![2, 4]);
        assert!(p.planes_contiguous());
        assert_eq!(p.source_index(5, &p.batch1), vec![1, 0]);
        assert_eq!(p.source_index(5, &p.batch2), vec![0, 1]);
        let full = (Mode::Full, Boundary::Fill, Op::Convolve);
        let p = StackParams::new(&[4, 5], &[2, 3], (1, 0), full).unwrap();
        assert_eq!(p.out_shape(), vec![6, 6]);
        assert_eq!(p.plane.image, (5, 4));
    }

    #[test]
    fn every_error_is_a_value_error_without_the_function_name() {
        for (s1, s2, axes) in [
            (&[5][..], &[2, 2][..], (0, 1)),
            (&[3, 4, 5], &[2, 2], (0, 3)),
            (&[3, 4, 5], &[2, 2], (-4, 0)),
            (&[3, 4, 5], &[2, 2], (2, -1)),
            (&[3, 4, 5], &[2, 2, 2, 2], (1, 2)),
            (&[3, 4, 5], &[2, 2, 2], (1, 2)),
        ] {
            let e = StackParams::new(s1, s2, axes, rule());
            assert!(
                matches!(e, Err(ConvError::Value(m)) if !m.is_empty()),
                "{s1:?}"
            );
        }
    }
}
