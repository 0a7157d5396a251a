//! Separable correlation (`method='separable'`): a kernel of rank 1, `keff = u v^T`, as two
//! 1-D passes through the direct engine's row kernels: `v` along the rows of the extended
//! image, then `u` down the columns of that intermediate. `kh * kw` products per output
//! become `kh + kw`.
//!
//! The rank test and the factors:
//! - integers: exactly, over the integers (the 2x2 minors through a pivot vanish; the row
//!   factor is the pivot row divided by its gcd, the column factor follows exactly). The
//!   passes run in the dtype with wrapping, a ring: the result has the direct sum's bits;
//! - floats and complex: the outer product of the column and the (scaled) row through the
//!   largest-magnitude element matches every element within 8 ulps of `max|k|`.

use rayon::prelude::*;

use super::direct::{extend_row, STREAM_BYTES};
use super::params::Prepared;
use super::row_kernels::{Geometry, RowKernel, MAX_TILE};
use crate::base::scalar::Elem;

/// Factors `(u, v)` with `k[i, j] = u[i] * v[j]` exactly, over the integers, for a row-major
/// `kh x kw` kernel of integers (widened to i128); `None` when the rank exceeds 1 or a
/// product overflows i128. An all-zero kernel has zero factors.
pub fn factor_int(k: &[i128], kh: usize, kw: usize) -> Option<(Vec<i128>, Vec<i128>)> {
    let Some(pi) = k.iter().position(|&v| v != 0) else {
        return Some((vec![0; kh], vec![0; kw]));
    };
    let (p, q) = (pi / kw, pi % kw);
    let piv = k[pi];
    // rank 1 iff every 2x2 minor through the pivot vanishes (trivially so in its row and
    // column, which are skipped: their products could overflow for nothing)
    for i in (0..kh).filter(|&i| i != p) {
        for j in (0..kw).filter(|&j| j != q) {
            let a = k[i * kw + j].checked_mul(piv)?;
            let b = k[i * kw + q].checked_mul(k[p * kw + j])?;
            if a != b {
                return None;
            }
        }
    }
    let row = &k[p * kw..(p + 1) * kw];
    let g = row.iter().fold(0u128, |g, &v| gcd(g, v.unsigned_abs()));
    let g = i128::try_from(g).ok()?;
    let v: Vec<i128> = row.iter().map(|&x| x / g).collect(); // exact: g divides the row
                                                             // k[i, :] = c_i * v with c_i an integer (v is primitive): c_i = k[i, q] / v[q], checked
    let u: Vec<i128> = (0..kh).map(|i| k[i * kw + q] / v[q]).collect();
    for i in 0..kh {
        for j in 0..kw {
            if u[i].checked_mul(v[j])? != k[i * kw + j] {
                return None;
            }
        }
    }
    Some((u, v))
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Operations the float rank test needs (real and complex floats).
pub trait FloatFactor: Elem {
    const EPS: f64;
    fn magnitude(self) -> f64;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
}

/// Factors `(u, v)` of a float kernel within 8 ulps of `max|k|` (see the module doc); `None`
/// when it is not of rank 1 or holds NaN or Inf. An all-zero kernel has zero factors.
pub fn factor_float<T: FloatFactor>(k: &[T], kh: usize, kw: usize) -> Option<(Vec<T>, Vec<T>)> {
    let mut pi = 0;
    let mut m = 0.0f64;
    for (i, v) in k.iter().enumerate() {
        let a = v.magnitude();
        if !a.is_finite() {
            return None;
        }
        if a > m {
            (pi, m) = (i, a);
        }
    }
    if m == 0.0 {
        return Some((vec![T::ZERO; kh], vec![T::ZERO; kw]));
    }
    let (p, q) = (pi / kw, pi % kw);
    let piv = k[pi];
    let u: Vec<T> = (0..kh).map(|i| k[i * kw + q]).collect();
    let v: Vec<T> = (0..kw).map(|j| k[p * kw + j].div(piv)).collect();
    let tol = 8.0 * T::EPS * m;
    for i in 0..kh {
        for j in 0..kw {
            if u[i].mul(v[j]).sub(k[i * kw + j]).magnitude() > tol {
                return None;
            }
        }
    }
    Some((u, v))
}

macro_rules! float_factor {
    ($($t:ty),*) => {$(
        impl FloatFactor for $t {
            const EPS: f64 = <$t>::EPSILON as f64;
            fn magnitude(self) -> f64 { (self as f64).abs() }
            fn mul(self, o: Self) -> Self { self * o }
            fn div(self, o: Self) -> Self { self / o }
            fn sub(self, o: Self) -> Self { self - o }
        }
        impl FloatFactor for num_complex::Complex<$t> {
            const EPS: f64 = <$t>::EPSILON as f64;
            fn magnitude(self) -> f64 { (self.norm()) as f64 }
            fn mul(self, o: Self) -> Self { self * o }
            fn div(self, o: Self) -> Self { self / o }
            fn sub(self, o: Self) -> Self { self - o }
        }
    )*};
}
float_factor!(f32, f64);

/// The correlation `job` with its effective kernel `u v^T` (`u`: `kh` values, `v`: `kw`) into
/// `out`, in blocks of output rows run in parallel on `threads` threads. Returns whether
/// every intermediate row (the row pass) is finite by `finite`, checked while it is in L1: a
/// NaN or Inf the outputs read always makes one non-finite (NaN and Inf times a weight, zero
/// included, are not finite), so `true` proves that the inputs read were finite.
pub fn correlate_separable<T: RowKernel>(
    job: &Prepared<'_, T>,
    (u, v): (&[T], &[T]),
    out: &mut [T],
    threads: usize,
    finite: impl Fn(&[T]) -> bool + Sync,
) -> bool {
    let ow = job.ow;
    if ow == 0 || out.is_empty() {
        return true;
    }
    let oh = out.len() / ow;
    // about 4 blocks per thread (work stealing evens them out); each block recomputes the
    // kh - 1 intermediate rows it shares with the block above
    let block_rows = oh.div_ceil(threads.max(1) * 4).next_multiple_of(PAIR);
    // large outputs: streaming stores, as the direct engine's (measured on 2048^2 float32
    // Gaussians, alternating runs: 5x5 0.69-0.74x cv2.sepFilter2D without, 0.93-0.94x with;
    // 15x15 unchanged within the noise)
    let stream = oh * ow * std::mem::size_of::<T>() >= STREAM_BYTES;
    let run =
        |b: usize, chunk: &mut [T]| block(job, (u, v), b * block_rows, chunk, stream, &finite);
    if threads <= 1 || oh <= block_rows {
        return run(0, out);
    }
    crate::base::threads::run(threads, || {
        out.par_chunks_mut(block_rows * ow)
            .enumerate()
            .map(|(b, chunk)| run(b, chunk))
            .reduce(|| true, |a, b| a && b)
    })
}

/// Output rows computed together by the two-row kernel of the column pass.
const PAIR: usize = 2;

/// Output rows `first .. first + out.len() / ow`: a ring of `kh + 1` intermediate rows (the
/// row pass of the extended image rows `i - top ..`), each made once, read by the column
/// pass two output rows at a time. Whole rows: column strips whose ring fits L1 measured
/// slower (2048-wide float32, 15x15, one thread: 14.9 ms for 16 KiB rings, 12.0 for 64 KiB,
/// 10.7 for 256 KiB, 9.4-10.6 for whole rows).
fn block<T: RowKernel>(
    job: &Prepared<'_, T>,
    (u, v): (&[T], &[T]),
    first: usize,
    out: &mut [T],
    stream: bool,
    finite: &(impl Fn(&[T]) -> bool + Sync),
) -> bool {
    let (kh, kw, ow) = (u.len(), v.len(), job.ow);
    let mut all_finite = true;
    let n_rows = out.len() / ow;
    // ring rows a whole number of the widest tile, and room for its overhang after the last
    let stride = ow.div_ceil(MAX_TILE) * MAX_TILE;
    let slots = kh + PAIR - 1;
    let mut ring = vec![T::ZERO; slots * stride + MAX_TILE];
    let mut ext = vec![T::ZERO; stride + kw + MAX_TILE];
    let row_offs = [0usize; 1];
    let mut offs = vec![0usize; slots];
    let mut next = first; // the next intermediate row to make
    let mut k = 0;
    while k < n_rows {
        let pair = k + 1 < n_rows;
        let i = first + k;
        while next < i + kh + usize::from(pair) {
            let v_row = next as isize - job.top as isize;
            extend_row(
                &job.image,
                job.boundary,
                job.fill,
                v_row,
                -(job.left as isize),
                &mut ext,
            );
            let g = Geometry {
                ring: &ext,
                offs: &row_offs,
                keff: v,
                kh: 1,
                kw,
                stream: false,
            };
            let s0 = (next % slots) * stride;
            T::rows(&g, &mut ring[s0..s0 + ow], None);
            all_finite &= finite(&ring[s0..s0 + ow]);
            next += 1;
        }
        for (a, o) in offs.iter_mut().enumerate() {
            *o = ((i + a) % slots) * stride;
        }
        let g = Geometry {
            ring: &ring,
            offs: &offs,
            keff: u,
            kh,
            kw: 1,
            stream,
        };
        if pair {
            let (o0, o1) = out[k * ow..(k + 2) * ow].split_at_mut(ow);
            T::rows(&g, o0, Some(o1));
            k += 2;
        } else {
            T::rows(&g, &mut out[k * ow..(k + 1) * ow], None);
            k += 1;
        }
    }
    all_finite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_factors_are_exact() {
        // outer product of (2, -3, 4) and (6, 9, 0, -3): gcd 3 comes out of the row
        let u = [2i128, -3, 4];
        let v = [6i128, 9, 0, -3];
        let k: Vec<i128> = u
            .iter()
            .flat_map(|a| v.iter().map(move |b| a * b))
            .collect();
        let (fu, fv) = factor_int(&k, 3, 4).unwrap();
        assert_eq!(fv, vec![2, 3, 0, -1]);
        for i in 0..3 {
            for j in 0..4 {
                assert_eq!(fu[i] * fv[j], k[i * 4 + j]);
            }
        }
        let mut k2 = k.clone();
        k2[5] += 1;
        assert!(factor_int(&k2, 3, 4).is_none());
        assert_eq!(factor_int(&[0; 6], 2, 3), Some((vec![0; 2], vec![0; 3])));
        let m = i128::MAX;
        assert!(factor_int(&[m, m, m, 1], 2, 2).is_none()); // a minor overflows: not claimed
    }

    #[test]
    fn float_factors_within_tolerance() {
        let k = [1.0f64, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0];
        let (u, v) = factor_float(&k, 3, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                assert!((u[i] * v[j] - k[i * 3 + j]).abs() < 1e-15);
            }
        }
        let mut bad = k;
        bad[0] += 1e-12;
        assert!(factor_float(&bad, 3, 3).is_none());
        assert!(factor_float(&[f64::NAN, 1.0], 1, 2).is_none());
    }
}
