//! Gradients of the signal functions (`correlate2d_backward`, `convolve2d_backward`): of
//! `S = sum(forward(in1, in2) * grad_output)` with respect to both arguments as passed, for
//! every mode and boundary, on one image or on stacks ([`StackParams`]).
//!
//! Each correlation is `out[i, j] = sum_{a,b} keff[a, b] * ext[i + a - top, j + b - left]`
//! ([`Prepared`](super::params::Prepared)): `ext` the (oriented) image extended by the
//! boundary, `keff` the effective kernel. With `E` the part of `ext` the outputs read:
//!
//! - `dS/dkeff = corr2d(E, grad_output)` ('valid'), mapped back onto the kernel as passed
//!   (un-flipped for convolve2d and after scipy's reversal);
//! - `dS/dE = convolve2d(grad_output, keff, 'full')`, folded back onto the image by the
//!   adjoint of the boundary extension: 'fill' drops what lies outside, 'symm' and 'wrap'
//!   add each extended cell onto the image cell it copies.
//!
//! Both correlations run on the engines `method='auto'` picks. Sums over a batch run over
//! fixed blocks of pairs, added in order: the result does not depend on the thread count.

use ndarray::{s, Array2, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, Ix2};
use rayon::prelude::*;

use super::direct::extend_row;
use super::engine::{self, Job, SignalElem};
use super::params::{effective_kernel, unravel, Corr2dParams, Mode, Op, StackParams};
use super::stack::plane;
use crate::base::error::{ConvError, Result};
use crate::signal::params::Boundary;

/// A backward call: `g` (the output gradient), `in1` and `in2` with their axes permuted to
/// `(batch..., rows, cols)` as in [`super::stack::StackJob`] (`in2` possibly 2-D).
pub struct BackwardJob<'a, T> {
    pub g: ArrayViewD<'a, T>,
    pub in1: ArrayViewD<'a, T>,
    pub in2: ArrayViewD<'a, T>,
    pub params: &'a StackParams,
    pub fill: T,
    pub threads: usize,
}

/// Pairs summed by one task of a batch reduction (fixed: the sums do not depend on threads).
const PAIRS_PER_TASK: usize = 8;

/// A correlation of `image` with `kernel` under `p`, on the engine `method='auto'` picks.
fn correlate_auto<T: SignalElem>(
    image: ArrayView2<T>,
    kernel: ArrayView2<T>,
    p: &Corr2dParams,
    threads: usize,
) -> Result<Array2<T>> {
    let mut out = Array2::from_elem(p.out_shape(), T::ZERO);
    let job = Job {
        image,
        kernel,
        params: p,
        fill: T::ZERO,
        threads,
        fft_terms: None,
    };
    engine::run(engine::choose(&job), &job, out.view_mut())?;
    Ok(out)
}

/// `dS/d(image)` of one pair (the image after the 'valid' swap, in its own orientation).
fn grad_image<T: SignalElem>(
    g: ArrayView2<T>,
    image: ArrayView2<T>,
    kernel: ArrayView2<T>,
    p: &Corr2dParams,
    threads: usize,
) -> Result<Array2<T>> {
    let (h, w) = image.dim();
    let mut gi = Array2::from_elem((h, w), T::ZERO);
    let (kh, kw) = kernel.dim();
    if g.is_empty() || kh * kw == 0 || h * w == 0 {
        return Ok(gi);
    }
    let keff = Array2::from_shape_vec((kh, kw), effective_kernel(&kernel, p))
        .map_err(|_| ConvError::internal("effective kernel shape"))?;
    let full = Corr2dParams::new(g.dim(), (kh, kw), Mode::Full, Boundary::Fill, Op::Convolve)?;
    let ge = correlate_auto(g, keff.view(), &full, threads)?;
    // the adjoint of the boundary extension: ge[r, c] is ext[r - top, c - left]
    let (top, left) = p.offsets();
    let map = |v: usize, off: usize, n: usize| p.boundary.map(v as isize - off as isize, n);
    let cols: Vec<Option<usize>> = (0..ge.ncols()).map(|c| map(c, left, w)).collect();
    {
        let mut go = p.orient(gi.view_mut());
        for (r, row) in ge.outer_iter().enumerate() {
            let Some(ir) = map(r, top, h) else { continue };
            let mut dst = go.row_mut(ir);
            for (v, c) in row.iter().zip(&cols) {
                if let Some(c) = *c {
                    dst[c] = dst[c].add(*v);
                }
            }
        }
    }
    Ok(gi)
}

/// `dS/d(kernel)` of one pair (the kernel after the 'valid' swap, as passed; for a kernel
/// that correlate2d conjugates, the derivative with respect to its conjugate).
fn grad_kernel<T: SignalElem>(
    g: ArrayView2<T>,
    image: ArrayView2<T>,
    kdim: (usize, usize),
    p: &Corr2dParams,
    fill: T,
    threads: usize,
) -> Result<Array2<T>> {
    let (kh, kw) = kdim;
    if g.is_empty() || kh * kw == 0 {
        return Ok(Array2::from_elem(kdim, T::ZERO));
    }
    let (oh, ow) = g.dim();
    let (top, left) = p.offsets();
    let img = p.orient(image);
    // E: the extended image the outputs read, rows from -top, columns from -left
    let mut e = Array2::from_elem((oh + kh - 1, ow + kw - 1), T::ZERO);
    for (r, mut row) in e.outer_iter_mut().enumerate() {
        let dst = row
            .as_slice_mut()
            .ok_or_else(|| ConvError::internal("scratch row not contiguous"))?;
        let v = r as isize - top as isize;
        extend_row(&img, p.boundary, fill, v, -(left as isize), dst);
    }
    let valid = Corr2dParams::new(e.dim(), (oh, ow), Mode::Valid, Boundary::Fill, Op::Corr2d)?;
    let gk = correlate_auto(e.view(), g, &valid, threads)?;
    // keff[a, b] is kernel[a, b] (conjugated for correlate2d), or kernel[kh-1-a, kw-1-b]
    // for convolve2d and after the reversal
    Ok(if p.op == Op::Convolve || p.reversed() {
        gk.slice(s![..;-1, ..;-1]).to_owned()
    } else {
        gk
    })
}

/// Which argument a gradient is for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arg {
    In1,
    In2,
}

/// The gradient of one argument, summed over the pairs that read each of its images, into
/// `dst` (that argument's shape, axes permuted as the inputs).
fn reduce<T: SignalElem>(
    job: &BackwardJob<'_, T>,
    arg: Arg,
    mut dst: ArrayViewMutD<T>,
) -> Result<()> {
    let p = job.params;
    let own = match arg {
        Arg::In1 => &p.batch1,
        Arg::In2 => &p.batch2,
    };
    let stacked = match arg {
        Arg::In1 => true,
        Arg::In2 => job.in2.ndim() > 2,
    };
    // the pairs of each target image, in order
    let targets: usize = if stacked { own.iter().product() } else { 1 };
    let mut pairs: Vec<Vec<usize>> = vec![Vec::new(); targets];
    for i in 0..p.count() {
        let t = if stacked {
            flat(&p.source_index(i, own), own)
        } else {
            0
        };
        pairs[t].push(i);
    }
    let tasks: Vec<(usize, &[usize])> = pairs
        .iter()
        .enumerate()
        .flat_map(|(t, ps)| ps.chunks(PAIRS_PER_TASK).map(move |c| (t, c)))
        .collect();
    let threads = job.threads.max(1);
    let inner = if tasks.len() >= 2 * threads {
        1
    } else {
        threads
    };
    let one = |pair: usize| -> Result<Array2<T>> {
        let a = plane(&job.in1, &p.source_index(pair, &p.batch1))?;
        let b = plane(&job.in2, &p.source_index(pair, &p.batch2))?;
        let g = plane(&job.g, &p.batch_index(pair))?;
        let pp = &p.plane;
        let (image, kernel) = if pp.swapped { (b, a) } else { (a, b) };
        let of_image = (arg == Arg::In1) != pp.swapped;
        if of_image {
            grad_image(g, image, kernel, pp, inner)
        } else {
            grad_kernel(g, image, kernel.dim(), pp, job.fill, inner)
        }
    };
    let task = |(_, ps): &(usize, &[usize])| -> Result<Array2<T>> {
        let mut acc = one(ps[0])?;
        for &i in &ps[1..] {
            acc.zip_mut_with(&one(i)?, |x, y| *x = x.add(*y));
        }
        Ok(acc)
    };
    let partial: Vec<Array2<T>> = if inner == 1 && threads > 1 {
        crate::base::threads::run(threads, || {
            tasks.par_iter().map(task).collect::<Result<_>>()
        })?
    } else {
        tasks.iter().map(task).collect::<Result<_>>()?
    };
    // add the partial sums of each target in order, into its image of `dst`
    let mut k = 0;
    for (t, ps) in pairs.iter().enumerate() {
        let n = ps.len().div_ceil(PAIRS_PER_TASK);
        let mut view = dst.view_mut();
        if stacked {
            for &i in &unravel(t, own) {
                view = view.index_axis_move(Axis(0), i);
            }
        }
        let mut view = view
            .into_dimensionality::<Ix2>()
            .map_err(|_| ConvError::internal("gradient plane"))?;
        if n == 0 {
            view.fill(T::ZERO);
            continue;
        }
        view.assign(&partial[k]);
        for part in &partial[k + 1..k + n] {
            view.zip_mut_with(part, |x, y| *x = x.add(*y));
        }
        k += n;
    }
    Ok(())
}

fn flat(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &n)| acc * n + i)
}

/// Both gradients of `job` into `d1` and `d2` (the arguments' shapes, axes permuted as the
/// inputs; every element is written).
pub fn backward<T: SignalElem>(
    job: &BackwardJob<'_, T>,
    d1: ArrayViewMutD<T>,
    d2: ArrayViewMutD<T>,
) -> Result<()> {
    reduce(job, Arg::In1, d1)?;
    reduce(job, Arg::In2, d2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::testing::xorshift;
    use ndarray::{ArrayD, IxDyn};

    /// `S = sum(out * g)` of the direct forward, in f64.
    fn objective(x: &Array2<f64>, k: &Array2<f64>, g: &Array2<f64>, p: &Corr2dParams) -> f64 {
        let (image, kernel) = if p.swapped { (k, x) } else { (x, k) };
        let mut out = Array2::zeros(p.out_shape());
        crate::signal::direct::correlate(image.view(), kernel.view(), p, 0.25, out.view_mut(), 1)
            .unwrap();
        (&out * g).sum()
    }

    #[test]
    fn gradients_are_the_derivatives_of_the_objective() {
        // S is bilinear: dS/dx[u] = S(x + e_u) - S(x) exactly up to rounding (the fill value
        // adds a constant that cancels).
        let mut r = xorshift(7);
        let mut next = move || (r() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
        for (s1, s2) in [
            ((5, 6), (3, 2)),
            ((2, 3), (4, 5)),
            ((4, 4), (4, 4)),
            ((3, 7), (5, 2)),
        ] {
            for boundary in [Boundary::Fill, Boundary::Symm, Boundary::Wrap] {
                for op in [Op::Correlate, Op::Convolve] {
                    for mode in [Mode::Full, Mode::Same, Mode::Valid] {
                        let Ok(p) = StackParams::new(
                            &[s1.0, s1.1],
                            &[s2.0, s2.1],
                            (0, 1),
                            (mode, boundary, op),
                        ) else {
                            continue;
                        };
                        let x = Array2::from_shape_fn(s1, |_| next());
                        let k = Array2::from_shape_fn(s2, |_| next());
                        let g = Array2::from_shape_fn(p.plane.out_shape(), |_| next());
                        let job = BackwardJob {
                            g: g.view().into_dyn(),
                            in1: x.view().into_dyn(),
                            in2: k.view().into_dyn(),
                            params: &p,
                            fill: 0.25,
                            threads: 1,
                        };
                        let mut d1 = ArrayD::<f64>::zeros(IxDyn(&[s1.0, s1.1]));
                        let mut d2 = ArrayD::<f64>::zeros(IxDyn(&[s2.0, s2.1]));
                        backward(&job, d1.view_mut(), d2.view_mut()).unwrap();
                        let s0 = objective(&x, &k, &g, &p.plane);
                        for u in 0..x.len() {
                            let mut xp = x.clone();
                            xp.as_slice_mut().unwrap()[u] += 1.0;
                            let want = objective(&xp, &k, &g, &p.plane) - s0;
                            let got = d1.as_slice().unwrap()[u];
                            assert!((want - got).abs() < 1e-9, "{p:?} x[{u}]: {got} vs {want}");
                        }
                        for u in 0..k.len() {
                            let mut kp = k.clone();
                            kp.as_slice_mut().unwrap()[u] += 1.0;
                            let want = objective(&x, &kp, &g, &p.plane) - s0;
                            let got = d2.as_slice().unwrap()[u];
                            assert!((want - got).abs() < 1e-9, "{p:?} k[{u}]: {got} vs {want}");
                        }
                    }
                }
            }
        }
    }
}
