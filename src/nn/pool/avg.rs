//! Average pooling (avg_pool2d, torch's CPU windows and divisors) and its input gradient.

use super::params::{AvgOptions, PoolParams};
use super::planes::{column_sums, run_planes, run_planes_grouped, sum_in_order};
use crate::base::real::Real;
use crate::base::simd::simd_twin;

/// The averaging window of torch's CPU kernel: clipped start/end per axis and the divisor.
#[inline(always)]
fn avg_window(o: usize, s: usize, p: usize, k: usize, len: usize) -> (isize, isize, usize) {
    let start = (o * s) as isize - p as isize;
    let end = (start + k as isize).min((len + p) as isize);
    let pool = (end - start) as usize;
    (start.max(0), end.min(len as isize), pool)
}

/// The averaging window of every output column (the same for every row and plane).
fn avg_columns(p: &PoolParams) -> Vec<(isize, isize, usize)> {
    (0..p.ow)
        .map(|ox| avg_window(ox, p.sw, p.pw, p.kw, p.w))
        .collect()
}

/// Average pooling forward (dilation is 1 for avg_pool2d): for each output row the window
/// rows are summed column by column (vectorisable), then over the window columns.
pub fn avg_pool2d_forward<T: Real>(
    p: &PoolParams,
    x: &[T],
    out: &mut [T],
    opt: AvgOptions,
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let cols = avg_columns(p);
    run_planes(threads, out, plane_out, |i, o| {
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        forward_plane(p, &cols, xp, o, opt)
    });
}

simd_twin! {
    /// One plane of [`avg_pool2d_forward`], compiled for the process's level.
    fn forward_plane<T: Real>(
        p: &PoolParams, cols: &[(isize, isize, usize)], xp: &[T], o: &mut [T], opt: AvgOptions
    ) = forward_plane_imp;
}

#[inline(always)]
fn forward_plane_imp<T: Real>(
    p: &PoolParams,
    cols: &[(isize, isize, usize)],
    xp: &[T],
    o: &mut [T],
    opt: AvgOptions,
) {
    let mut colsum = vec![T::ZERO; p.w];
    for oy in 0..p.oh {
        let (y0, y1, ph) = avg_window(oy, p.sh, p.ph, p.kh, p.h);
        let orow = &mut o[oy * p.ow..(oy + 1) * p.ow];
        if y0 >= y1 {
            orow.fill(T::ZERO);
            continue;
        }
        column_sums(xp, p.w, y0 as usize..y1 as usize, &mut colsum);
        for (out, &(x0, x1, pw)) in orow.iter_mut().zip(cols) {
            if x0 >= x1 {
                *out = T::ZERO;
                continue;
            }
            let s = sum_in_order(&colsum[x0 as usize..x1 as usize]);
            let inside = ((y1 - y0) * (x1 - x0)) as usize;
            *out = s / opt.divisor::<T>(ph * pw, inside);
        }
    }
}

/// Average pooling backward: each output's gradient is spread evenly over its window; per
/// output row the spread is built once along the row, then added to the window rows.
pub fn avg_pool2d_backward<T: Real>(
    p: &PoolParams,
    grad_output: &[T],
    grad_input: &mut [T],
    opt: AvgOptions,
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let cols = avg_columns(p);
    // Every window's divisor, once for all planes (1 where the window is empty): per plane
    // the quotients are then one vectorised division per row, where a scalar division per
    // window took ~45% of the time.
    let mut divs = vec![T::ONE; plane_out];
    for oy in 0..p.oh {
        let (y0, y1, ph) = avg_window(oy, p.sh, p.ph, p.kh, p.h);
        for (ox, &(x0, x1, pw)) in cols.iter().enumerate() {
            if y0 < y1 && x0 < x1 {
                let inside = ((y1 - y0) * (x1 - x0)) as usize;
                divs[oy * p.ow + ox] = opt.divisor::<T>(ph * pw, inside);
            }
        }
    }
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    // Windows that tile the plane exactly (kernel == stride, no padding, no remainder): each
    // input element gets one quotient, so the rows are written once, without the zeroing
    // pass and the additions.
    let tiles = p.kh == p.sh
        && p.kw == p.sw
        && p.ph == 0
        && p.pw == 0
        && p.oh * p.sh == p.h
        && p.ow * p.sw == p.w;
    let b = Backward {
        p,
        cols: &cols,
        divs: &divs,
        tiles,
    };
    run_planes_grouped(threads, grad_input, plane_in, group, |i, d| {
        let g = &grad_output[i * plane_out..(i + 1) * plane_out];
        backward_plane(&b, g, d)
    });
}

/// What [`avg_pool2d_backward`]'s planes share.
struct Backward<'a, T> {
    p: &'a PoolParams,
    cols: &'a [(isize, isize, usize)],
    divs: &'a [T],
    tiles: bool,
}

simd_twin! {
    /// One plane of [`avg_pool2d_backward`], compiled for the process's level.
    fn backward_plane<T: Real>(b: &Backward<'_, T>, g: &[T], d: &mut [T]) = backward_plane_imp;
}

#[inline(always)]
fn backward_plane_imp<T: Real>(b: &Backward<'_, T>, g: &[T], d: &mut [T]) {
    let Backward {
        p,
        cols,
        divs,
        tiles,
    } = *b;
    let mut spread = vec![T::ZERO; p.w];
    let mut quot = vec![T::ZERO; p.ow];
    if tiles {
        for oy in 0..p.oh {
            let row = oy * p.ow..(oy + 1) * p.ow;
            for ((q, &gv), &dv) in quot.iter_mut().zip(&g[row.clone()]).zip(&divs[row]) {
                *q = gv / dv;
            }
            for (chunk, &v) in spread.chunks_exact_mut(p.kw).zip(&quot) {
                chunk.fill(v);
            }
            for y in oy * p.kh..(oy + 1) * p.kh {
                d[y * p.w..(y + 1) * p.w].copy_from_slice(&spread);
            }
        }
        return;
    }
    d.fill(T::ZERO); // per plane, in parallel, just before the scatter
    for oy in 0..p.oh {
        let (y0, y1, _) = avg_window(oy, p.sh, p.ph, p.kh, p.h);
        if y0 >= y1 {
            continue;
        }
        let row = oy * p.ow..(oy + 1) * p.ow;
        for ((q, &gv), &dv) in quot.iter_mut().zip(&g[row.clone()]).zip(&divs[row]) {
            *q = gv / dv;
        }
        spread.fill(T::ZERO);
        for (&v, &(x0, x1, _)) in quot.iter().zip(cols) {
            if x0 >= x1 {
                continue;
            }
            for e in &mut spread[x0 as usize..x1 as usize] {
                *e += v;
            }
        }
        for y in y0 as usize..y1 as usize {
            for (e, &v) in d[y * p.w..(y + 1) * p.w].iter_mut().zip(&spread) {
                *e += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::pool::params::tests::pp;

    #[test]
    fn avg_backward_of_tiling_windows_is_the_spread_quotient() {
        for (h, w, k, div) in [
            (4, 6, 2, None),
            (6, 6, 3, Some(-2)),
            (5, 10, 5, Some(3)),
            (1, 1, 1, None),
        ] {
            let p = pp([2, 3, h, w], (k, k), (k, k), (0, 0), (1, 1), false).unwrap();
            let opt = AvgOptions::new(true, div).unwrap();
            let grad_output: Vec<f64> = (0..2 * 3 * p.oh * p.ow)
                .map(|i| (i % 7) as f64 - 3.0)
                .collect();
            for threads in [1, 2] {
                let mut grad_input = vec![f64::NAN; 2 * 3 * h * w];
                avg_pool2d_backward(&p, &grad_output, &mut grad_input, opt, threads);
                for (i, &v) in grad_input.iter().enumerate() {
                    let (plane, y, x) = (i / (h * w), i % (h * w) / w, i % w);
                    let g = grad_output[plane * p.oh * p.ow + (y / k) * p.ow + x / k];
                    assert_eq!(
                        v,
                        g / opt.divisor::<f64>(k * k, k * k),
                        "{h}x{w} k{k} at {i}"
                    );
                }
            }
        }
    }
}
