//! What every pooling family shares: the drivers that run a kernel over the N x C planes
//! (serially, or in parallel in fixed groups of planes, with per-task scratch, with argmax
//! indices beside the values), torch's window-maximum rule ([`nan_max_wins`],
//! [`window_max`]) with its stepped taps, and the average pools' column sums
//! ([`column_sums`], [`sum_in_order`]).

use std::ops::Range;

use rayon::prelude::*;

use crate::base::real::{select, Real};

/// Run `f(plane index, plane)` over the planes of `out`, in parallel when `threads > 1`.
pub(super) fn run_planes<U: Send, F>(threads: usize, out: &mut [U], plane_out: usize, f: F)
where
    F: Fn(usize, &mut [U]) + Send + Sync,
{
    run_planes_grouped(threads, out, plane_out, 1, f)
}

/// [`run_planes`] with at least `min_planes` planes per parallel task (tiny planes, such as
/// a global pooling's single output, would otherwise make one task per element).
pub(super) fn run_planes_grouped<U: Send, F>(
    threads: usize,
    out: &mut [U],
    plane_out: usize,
    min_planes: usize,
    f: F,
) where
    F: Fn(usize, &mut [U]) + Send + Sync,
{
    run_planes_with(
        threads,
        out,
        plane_out,
        min_planes,
        || (),
        |_, i, o| f(i, o),
    )
}

/// [`run_planes_grouped`] with per-task scratch made by `init` (reused across the planes a
/// task runs, instead of allocated per plane).
pub(super) fn run_planes_with<U: Send, S, I, F>(
    threads: usize,
    out: &mut [U],
    plane_out: usize,
    min_planes: usize,
    init: I,
    f: F,
) where
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize, &mut [U]) + Send + Sync,
{
    if plane_out == 0 || out.is_empty() {
        return;
    }
    if threads <= 1 {
        let mut scratch = init();
        out.chunks_exact_mut(plane_out)
            .enumerate()
            .for_each(|(i, o)| f(&mut scratch, i, o));
    } else {
        crate::base::threads::run(threads, || {
            out.par_chunks_exact_mut(plane_out)
                .enumerate()
                .with_min_len(min_planes.max(1))
                .for_each_init(&init, |scratch, (i, o)| f(scratch, i, o));
        });
    }
}

/// [`run_planes_with`] over the planes of values `out` and their argmax indices `ind` (both
/// `plane_out` per plane): `f(scratch, plane index, values, indices)`.
pub(super) fn run_planes_indexed<T: Send, S, I, F>(
    threads: usize,
    (out, ind): (&mut [T], &mut [i64]),
    plane_out: usize,
    min_planes: usize,
    init: I,
    f: F,
) where
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize, &mut [T], &mut [i64]) + Send + Sync,
{
    if plane_out == 0 || out.is_empty() {
        return;
    }
    let planes = out
        .chunks_exact_mut(plane_out)
        .zip(ind.chunks_exact_mut(plane_out));
    if threads <= 1 {
        let mut scratch = init();
        planes
            .enumerate()
            .for_each(|(i, (o, ix))| f(&mut scratch, i, o, ix));
    } else {
        crate::base::threads::run(threads, || {
            out.par_chunks_exact_mut(plane_out)
                .zip(ind.par_chunks_exact_mut(plane_out))
                .enumerate()
                .with_min_len(min_planes.max(1))
                .for_each_init(&init, |sc, (i, (o, ix))| f(sc, i, o, ix));
        });
    }
}

/// `start, start + step, ...` below `end`. (`Range::step_by` divides to count its steps,
/// and a division per pooling window dominated the max-pooling time.)
#[inline(always)]
pub(super) fn stepped(start: usize, end: usize, step: usize) -> impl Iterator<Item = usize> {
    std::iter::successors(Some(start), move |&v| Some(v + step)).take_while(move |&v| v < end)
}

/// `colsum[c]` = the sum of column `c` over rows `rows` of a plane `w` wide, in row order
/// (average pooling's first step: vectorised across the columns).
#[inline(always)]
pub(super) fn column_sums<T: Real>(x: &[T], w: usize, rows: Range<usize>, colsum: &mut [T]) {
    colsum.fill(T::ZERO);
    for y in rows {
        for (c, &v) in colsum.iter_mut().zip(&x[y * w..(y + 1) * w]) {
            *c += v;
        }
    }
}

/// The sum of `v` in order, from 0 (a window's column sums).
#[inline(always)]
pub(super) fn sum_in_order<T: Real>(v: &[T]) -> T {
    v.iter().fold(T::ZERO, |s, &c| s + c)
}

/// `v` replaces the running maximum `m` when greater or NaN (torch's rule), branch-free.
#[inline(always)]
pub(super) fn nan_max_wins<T: Real>(v: T, m: T) -> bool {
    (v > m) | v.is_nan()
}

/// Window maximum as torch computes it: the first in-bounds element seeds the index, a value
/// wins if it is greater than the running maximum or NaN (so NaN propagates, ties keep the
/// first).
#[inline(always)]
pub(super) fn window_max<T: Real>(
    x: &[T],
    w: usize,
    ys: (usize, usize),
    dy: usize,
    xs: (usize, usize),
    dx: usize,
) -> (T, usize) {
    let mut best = T::NEG_INFINITY;
    let mut idx = ys.0 * w + xs.0;
    for y in stepped(ys.0, ys.1, dy) {
        let row = &x[y * w..(y + 1) * w];
        for xx in stepped(xs.0, xs.1, dx) {
            let v = row[xx];
            let win = nan_max_wins(v, best);
            best = select(win, v, best);
            idx = select(win, y * w + xx, idx);
        }
    }
    (best, idx)
}
