//! Stacks of images (`axes=`): one 2-D correlation for each (image, kernel) pair of the
//! broadcast batch that [`StackParams`] describes, in parallel over the images or, for a few
//! large images, over the rows (or tiles) of each.

use ndarray::{ArrayView2, ArrayViewD, ArrayViewMut2, ArrayViewMutD, Axis, Ix2, IxDyn};
use rayon::prelude::*;

use super::engine::{self, Engine, Job, SignalElem};
use super::params::StackParams;
use crate::base::error::{ConvError, Result};

/// How one image's engine is chosen (the binding's `method`).
pub type Pick<T> = dyn Fn(&Job<'_, T>) -> Engine + Sync;

/// A stacked correlation. `in1` has its axes permuted to `(batch..., rows, cols)`; `in2`
/// likewise, or is 2-D (one kernel for every image).
pub struct StackJob<'a, T> {
    pub in1: ArrayViewD<'a, T>,
    pub in2: ArrayViewD<'a, T>,
    pub params: &'a StackParams,
    pub fill: T,
    pub threads: usize,
    pub fft_terms: Option<usize>,
}

/// Image `idx` (a batch multi-index) of a stack in batch order, or the 2-D array itself.
pub fn plane<'a, T>(v: &ArrayViewD<'a, T>, idx: &[usize]) -> Result<ArrayView2<'a, T>> {
    let mut s = v.clone();
    if s.ndim() > 2 {
        for &i in idx {
            s = s.index_axis_move(Axis(0), i);
        }
    }
    s.into_dimensionality::<Ix2>()
        .map_err(|_| ConvError::internal("a stacked input did not reduce to 2-D"))
}

/// Images fewer than this many per thread run one after another, each on every thread.
const IMAGES_PER_THREAD: usize = 2;

/// Run `job` into `out`: the C-contiguous output of shape `params.out_shape()`.
pub fn run_stack<T: SignalElem>(
    job: &StackJob<'_, T>,
    pick: &Pick<T>,
    out: &mut [T],
) -> Result<()> {
    let p = job.params;
    let (oh, ow) = p.plane.out_shape();
    let (count, len) = (p.count(), oh * ow);
    if out.len() != count * len {
        return Err(ConvError::internal("stacked output of the wrong size"));
    }
    if count == 0 || len == 0 {
        return Ok(());
    }
    let threads = job.threads.max(1);
    let per_image = threads > 1 && count >= IMAGES_PER_THREAD * threads;
    let inner = if per_image { 1 } else { threads };
    let one = |i: usize, dst: &mut [T]| -> Result<()> {
        let a = plane(&job.in1, &p.source_index(i, &p.batch1))?;
        let b = plane(&job.in2, &p.source_index(i, &p.batch2))?;
        let (image, kernel) = if p.plane.swapped { (b, a) } else { (a, b) };
        let j = Job {
            image,
            kernel,
            params: &p.plane,
            fill: job.fill,
            threads: inner,
            fft_terms: job.fft_terms,
        };
        let dst = ArrayViewMut2::from_shape((oh, ow), dst)
            .map_err(|_| ConvError::internal("stacked output plane"))?;
        engine::run(pick(&j), &j, dst)
    };
    let all = |dst: &mut [T]| -> Result<()> {
        if per_image {
            crate::base::threads::run(threads, || {
                dst.par_chunks_mut(len)
                    .enumerate()
                    .try_for_each(|(i, d)| one(i, d))
            })
        } else {
            dst.chunks_mut(len)
                .enumerate()
                .try_for_each(|(i, d)| one(i, d))
        }
    };
    if p.planes_contiguous() {
        return all(out);
    }
    // The images are strided in the output: compute them contiguously, then move them into
    // place (workspace: one output's size).
    let mut tmp = vec![T::ZERO; count * len];
    all(&mut tmp)?;
    let shape = p.out_shape();
    let ov = ArrayViewMutD::from_shape(IxDyn(&shape), out)
        .map_err(|_| ConvError::internal("stacked output shape"))?;
    let mut ov = p.batch_order(ov, false);
    let mut tshape = p.batch.clone();
    tshape.extend([oh, ow]);
    let tv = ArrayViewD::from_shape(IxDyn(&tshape), &tmp)
        .map_err(|_| ConvError::internal("stacked scratch shape"))?;
    ov.assign(&tv);
    Ok(())
}
