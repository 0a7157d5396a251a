//! Elementwise activations and their gradients (torch.nn semantics), parallel over fixed
//! chunks (so the result never depends on the thread count) and written to vectorise.
//!
//! Outputs are write-only (`MaybeUninit`): the bindings hand over fresh uninitialised arrays
//! (no zero-fill pass), and every element is written exactly once.
//!
//! ReLU follows torch: NaN propagates through the forward pass, and the gradient is passed
//! where the input is not `<= 0` (0 at 0, passed at NaN, as `threshold_backward` has it).

use std::mem::MaybeUninit;

use crate::base::par::for_each_chunk;
use crate::base::real::{select, Real};
use crate::base::simd::avx2_twin;

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

avx2_twin! {
    /// One chunk of [`relu_forward`], compiled for AVX2 where the CPU has it.
    fn relu_chunk<T: Real>(x: &[T], o: &mut [MaybeUninit<T>]) {
        for (o, &v) in o.iter_mut().zip(x) {
            o.write(select(passes(v), v, T::ZERO));
        }
    }
}

avx2_twin! {
    /// One chunk of [`relu_backward`], compiled for AVX2 where the CPU has it.
    fn relu_grad_chunk<T: Real>(g: &[T], x: &[T], o: &mut [MaybeUninit<T>]) {
        for ((o, &gv), &xv) in o.iter_mut().zip(g).zip(x) {
            o.write(select(passes(xv), gv, T::ZERO));
        }
    }
}

/// Not `v <= 0`: positive or NaN (branch-free).
#[inline(always)]
fn passes<T: Real>(v: T) -> bool {
    (v > T::ZERO) | v.is_nan()
}

/// `max(x, 0)`, NaN propagating, into the write-only `out` (every element written).
pub fn relu_forward<T: Real>(x: &[T], out: &mut [MaybeUninit<T>], threads: usize) {
    assert_eq!(x.len(), out.len(), "relu: length mismatch");
    for_each_chunk(
        threads > 1,
        out,
        CHUNK,
        || (),
        |_, (i, o)| relu_chunk(&x[i * CHUNK..], o),
    );
}

/// The gradient of [`relu_forward`] at `x`: `grad` where `x` is not `<= 0`, else 0 (`x` may
/// also be the forward's output: the same elements pass).
pub fn relu_backward<T: Real>(grad: &[T], x: &[T], out: &mut [MaybeUninit<T>], threads: usize) {
    assert!(
        grad.len() == out.len() && x.len() == out.len(),
        "relu_backward: length mismatch"
    );
    for_each_chunk(
        threads > 1,
        out,
        CHUNK,
        || (),
        |_, (i, o)| relu_grad_chunk(&grad[i * CHUNK..], &x[i * CHUNK..], o),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` on a fresh write-only buffer of `n` elements and returns it.
    fn fresh<T: Copy>(n: usize, f: impl FnOnce(&mut [MaybeUninit<T>])) -> Vec<T> {
        let mut v = vec![MaybeUninit::uninit(); n];
        f(&mut v);
        // SAFETY: the kernels write every element (checked by the tests' expectations; a
        // missed element would be uninitialised, which Miri reports).
        v.into_iter().map(|e| unsafe { e.assume_init() }).collect()
    }

    #[test]
    fn relu_follows_torch() {
        let x = [-1.0f64, 0.0, 2.0, f64::NAN, -0.0];
        let y = fresh(5, |o| relu_forward(&x, o, 1));
        assert_eq!(&y[..3], &[0.0, 0.0, 2.0]);
        assert!(y[3].is_nan());
        assert_eq!(y[4], 0.0);
        let g = [5.0; 5];
        let d = fresh(5, |o| relu_backward(&g, &x, o, 1));
        assert_eq!(d, [0.0, 0.0, 5.0, 5.0, 0.0]);
    }

    #[test]
    fn parallel_equals_serial() {
        let n = 3 * CHUNK + 17;
        let x: Vec<f32> = (0..n).map(|i| ((i * 7919) % 13) as f32 - 6.0).collect();
        let a = fresh(n, |o| relu_forward(&x, o, 1));
        let b = fresh(n, |o| {
            crate::base::threads::run(2, || relu_forward(&x, o, 2))
        });
        assert_eq!(a, b);
        let c = fresh(n, |o| relu_backward(&x, &x, o, 1));
        let d = fresh(n, |o| {
            crate::base::threads::run(2, || relu_backward(&x, &x, o, 2))
        });
        assert_eq!(c, d);
    }
}
