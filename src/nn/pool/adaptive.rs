//! Adaptive pooling (torch's start/end windows): average, with global average pooling (one
//! output per plane) as every plane's mean, and max with its argmax indices; their input
//! gradients. Also the plane and row sums the averages use (the level's vectors at `avx2` and
//! `avx512`, interleaved partial sums at `generic`).

use super::params::AdaptiveParams;
use super::planes::{
    column_sums, run_planes_grouped, run_planes_indexed, sum_in_order, window_max,
};
use crate::base::par::for_each_chunk;
use crate::base::real::Real;
use crate::base::scalar::Elem;
use crate::base::simd::{dispatch, has_avx2_fma, simd_twin, SimdReal, Vector, WithVector};

/// Sum of `v` in four vector accumulators (fixed order), the tail in single vectors and then
/// one by one; the lanes combined pairwise (lane `i` with lane `i + LANES / 2`, ...).
///
/// # Safety
/// The CPU must support V's level.
#[inline(always)]
unsafe fn vector_sum<V: Vector>(v: &[V::Elem]) -> V::Elem {
    let n = V::LANES;
    // SAFETY: every load below reads `n` elements inside a block of
    // `v`; `lanes` holds 16 >= n elements; the level is the caller's contract.
    unsafe {
        let mut acc = [V::zero(); 4];
        let mut blocks = v.chunks_exact(4 * n);
        for b in &mut blocks {
            for (k, a) in acc.iter_mut().enumerate() {
                *a = a.add(V::load(b.as_ptr().add(k * n)));
            }
        }
        let mut tail = blocks.remainder().chunks_exact(n);
        for b in &mut tail {
            acc[0] = acc[0].add(V::load(b.as_ptr()));
        }
        let s = acc[0].add(acc[1]).add(acc[2].add(acc[3]));
        let mut lanes = [<V::Elem as Elem>::ZERO; 16];
        s.store(lanes.as_mut_ptr());
        let mut width = n / 2;
        while width > 0 {
            for i in 0..width {
                let upper = lanes[i + width];
                lanes[i] += upper;
            }
            width /= 2;
        }
        let mut total = lanes[0];
        for &x in tail.remainder() {
            total += x;
        }
        total
    }
}

/// Sum of `v` in 32 interleaved partial sums (independent additions vectorise and overlap;
/// one running sum is a chain of dependent additions), combined pairwise.
#[inline(always)]
fn lane_sum<T: Real>(v: &[T]) -> T {
    let mut acc = [T::ZERO; 32];
    let chunks = v.chunks_exact(32);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &x) in acc.iter_mut().zip(c) {
            *a += x;
        }
    }
    let mut width = 16;
    while width > 0 {
        for i in 0..width {
            let upper = acc[i + width];
            acc[i] += upper;
        }
        width /= 2;
    }
    let mut s = acc[0];
    for &x in rest {
        s += x;
    }
    s
}

/// Planes per task of global average pooling: about 16K input elements per task.
fn global_group(plane: usize) -> usize {
    ((1 << 14) / plane.max(1)).max(1)
}

/// The means of the consecutive `plane`-element planes of `x`, one per element of `out`
/// (`plane` > 0): each plane summed by [`vector_sum`] at `avx2` and `avx512` (LLVM compiled
/// [`lane_sum`] into 2-wide loads with spilled accumulators), [`lane_sum`] at `generic`, in one loop over the planes
/// (a call per plane cost more than the sum of a small plane).
fn plane_means<T: SimdReal>(x: &[T], plane: usize, out: &mut [T]) {
    if has_avx2_fma() {
        return dispatch(Means { x, plane, out });
    }
    plane_means_lanes(x, plane, out)
}

/// [`plane_means`] at a level with vectors, for [`dispatch`].
struct Means<'a, T> {
    x: &'a [T],
    plane: usize,
    out: &'a mut [T],
}

impl<T: SimdReal> WithVector<T> for Means<'_, T> {
    type Out = ();
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) {
        let div = T::from_usize(self.plane);
        for (o, v) in self.out.iter_mut().zip(self.x.chunks_exact(self.plane)) {
            // SAFETY: `dispatch` runs this at a level the CPU has, V's.
            *o = unsafe { vector_sum::<V>(v) } / div;
        }
    }
}

/// [`plane_means`] through [`lane_sum`] (the `generic` level only: no twins needed).
fn plane_means_lanes<T: Real>(x: &[T], plane: usize, out: &mut [T]) {
    let div = T::from_usize(plane);
    for (o, v) in out.iter_mut().zip(x.chunks_exact(plane)) {
        *o = lane_sum(v) / div;
    }
}

/// Global average pooling (`p.oh == p.ow == 1`, non-empty planes): every plane's mean, in
/// fixed groups of planes.
fn global_avg_pool2d_forward<T: SimdReal>(
    p: &AdaptiveParams,
    x: &[T],
    out: &mut [T],
    threads: usize,
) {
    let plane = p.h * p.w;
    let group = global_group(plane);
    for_each_chunk(
        threads > 1,
        out,
        group,
        || (),
        |_, (i, o)| {
            let start = i * group * plane;
            plane_means(&x[start..start + o.len() * plane], plane, o);
        },
    );
}

/// Adaptive average pooling forward.
pub fn adaptive_avg_pool2d_forward<T: SimdReal>(
    p: &AdaptiveParams,
    x: &[T],
    out: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    if plane_out == 1 && plane_in > 0 {
        return crate::base::threads::run(threads, || {
            global_avg_pool2d_forward(p, x, out, threads)
        });
    }
    let min_planes = (1 << 14) / plane_in.max(1);
    let cols: Vec<(usize, usize)> = (0..p.ow)
        .map(|ox| AdaptiveParams::range(ox, p.ow, p.w))
        .collect();
    run_planes_grouped(threads, out, plane_out, min_planes, |i, o| {
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        adaptive_plane(p, &cols, xp, o)
    });
}

simd_twin! {
    /// One plane of [`adaptive_avg_pool2d_forward`] (windows of more than one output),
    /// compiled for the process's level: per output row, the window's rows are summed column
    /// by column (vectorised across columns), then each output sums its columns. A function
    /// call per window row (`plane_sum`) took 1.8-2.9 ms on (8,256,28,28) to 7x7.
    fn adaptive_plane<T: Real>(p: &AdaptiveParams, cols: &[(usize, usize)], xp: &[T], o: &mut [T])
        = adaptive_plane_imp;
}

#[inline(always)]
fn adaptive_plane_imp<T: Real>(p: &AdaptiveParams, cols: &[(usize, usize)], xp: &[T], o: &mut [T]) {
    let mut colsum = vec![T::ZERO; p.w];
    for oy in 0..p.oh {
        let (y0, y1) = AdaptiveParams::range(oy, p.oh, p.h);
        column_sums(xp, p.w, y0..y1, &mut colsum);
        for (ox, &(x0, x1)) in cols.iter().enumerate() {
            let s = sum_in_order(&colsum[x0..x1]);
            o[oy * p.ow + ox] = s / T::from_usize((y1 - y0) * (x1 - x0));
        }
    }
}

/// Adaptive average pooling backward.
pub fn adaptive_avg_pool2d_backward<T: Real>(
    p: &AdaptiveParams,
    grad_output: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    if plane_out == 1 && plane_in > 0 {
        // global pooling: each plane is its gradient over the plane's size (`+ 0`: a -0.0
        // quotient gives +0.0, as the accumulation below does)
        let group = global_group(plane_in);
        let div = T::from_usize(plane_in);
        return crate::base::threads::run(threads, || {
            for_each_chunk(
                threads > 1,
                grad_input,
                group * plane_in,
                || (),
                |_, (i, d)| {
                    for (d, &g) in d.chunks_exact_mut(plane_in).zip(&grad_output[i * group..]) {
                        d.fill(g / div + T::ZERO);
                    }
                },
            )
        });
    }
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    run_planes_grouped(threads, grad_input, plane_in, group, |i, d| {
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let g = &grad_output[i * plane_out..(i + 1) * plane_out];
        for oy in 0..p.oh {
            let (y0, y1) = AdaptiveParams::range(oy, p.oh, p.h);
            for ox in 0..p.ow {
                let (x0, x1) = AdaptiveParams::range(ox, p.ow, p.w);
                let v = g[oy * p.ow + ox] / T::from_usize((y1 - y0) * (x1 - x0));
                for y in y0..y1 {
                    for e in &mut d[y * p.w + x0..y * p.w + x1] {
                        *e += v;
                    }
                }
            }
        }
    });
}

/// Adaptive max pooling forward with flattened argmax indices.
pub fn adaptive_max_pool2d_forward<T: Real>(
    p: &AdaptiveParams,
    x: &[T],
    out: &mut [T],
    ind: &mut [i64],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    run_planes_indexed(
        threads,
        (out, ind),
        plane_out,
        1,
        || (),
        |_, i, o, ix| {
            let xp = &x[i * plane_in..(i + 1) * plane_in];
            for oy in 0..p.oh {
                let ys = AdaptiveParams::range(oy, p.oh, p.h);
                for ox in 0..p.ow {
                    let xs = AdaptiveParams::range(ox, p.ow, p.w);
                    let (v, idx) = window_max(xp, p.w, ys, 1, xs, 1);
                    o[oy * p.ow + ox] = v;
                    ix[oy * p.ow + ox] = idx as i64;
                }
            }
        },
    );
}

/// Adaptive max pooling backward (argmax recomputed from `x`).
pub fn adaptive_max_pool2d_backward<T: Real>(
    p: &AdaptiveParams,
    x: &[T],
    grad_output: &[T],
    grad_input: &mut [T],
    threads: usize,
) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    // several small planes per task (about 16K input elements each)
    let group = (16_384 / plane_in).max(1);
    run_planes_grouped(threads, grad_input, plane_in, group, |i, d| {
        d.fill(T::ZERO); // per plane, in parallel, just before the scatter
        let xp = &x[i * plane_in..(i + 1) * plane_in];
        let g = &grad_output[i * plane_out..(i + 1) * plane_out];
        for oy in 0..p.oh {
            let ys = AdaptiveParams::range(oy, p.oh, p.h);
            for ox in 0..p.ow {
                let xs = AdaptiveParams::range(ox, p.ow, p.w);
                let (_, idx) = window_max(xp, p.w, ys, 1, xs, 1);
                d[idx] += g[oy * p.ow + ox];
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sum of a plane as [`plane_means`] forms it: [`vector_sum`] at the `avx2` and
    /// `avx512` levels, [`lane_sum`] at `generic`.
    fn plane_sum<T: SimdReal>(v: &[T]) -> T {
        if has_avx2_fma() {
            return dispatch(Sum(v));
        }
        lane_sum(v)
    }

    /// [`vector_sum`] of a slice, for [`dispatch`].
    struct Sum<'a, T>(&'a [T]);

    impl<T: SimdReal> WithVector<T> for Sum<'_, T> {
        type Out = T;
        #[inline(always)]
        fn call<V: Vector<Elem = T>>(self) -> T {
            // SAFETY: `dispatch` runs this at a level the CPU has, V's.
            unsafe { vector_sum::<V>(self.0) }
        }
    }

    #[test]
    fn plane_sum_matches_the_exact_sum_for_every_tail() {
        // small integers: every order of summation is exact, so every path at every level
        // (lane_sum at generic, 8- and 16-lane vectors above) must agree
        crate::base::simd::with_each_level(|level| {
            for len in 0..200usize {
                let v: Vec<f32> = (0..len).map(|i| ((i * 7919) % 23) as f32 - 11.0).collect();
                let want: f32 = v.iter().sum();
                assert_eq!(plane_sum(&v), want, "{level:?} len {len}");
                assert_eq!(lane_sum(&v), want, "len {len}");
                let v64: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
                assert_eq!(plane_sum(&v64), f64::from(want), "{level:?} len {len}");
                if len > 0 {
                    let mut means = [0f32; 3];
                    let three: Vec<f32> = v.iter().chain(&v).chain(&v).copied().collect();
                    plane_means(&three, len, &mut means);
                    assert_eq!(means, [want / len as f32; 3], "{level:?} means, len {len}");
                }
            }
        });
    }
}
