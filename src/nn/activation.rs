//! Elementwise activations and their gradients (torch.nn semantics), parallel over fixed
//! chunks (so the result never depends on the thread count) and written to vectorise.
//!
//! Outputs are write-only (`MaybeUninit`): the bindings hand over fresh uninitialised arrays
//! (no zero-fill pass), and every element is written exactly once.
//!
//! ReLU follows torch: NaN propagates through the forward pass, and the gradient is passed
//! where the input is not `<= 0` (0 at 0, passed at NaN, as `threshold_backward` has it).
//!
//! LeakyReLU, Sigmoid and Tanh ([`Activation`]) evaluate torch's CPU expressions in torch's
//! order: LeakyReLU `x * (x > 0 ? 1 : slope)` and its gradient `g * (x > 0 ? 1 : slope)`
//! (so NaN propagates, the gradient at 0 and at NaN is `g * slope`, and `-inf * 0` is NaN
//! as in torch); Sigmoid `1 / (1 + exp(-x))` with the gradient `g * (1 - y) * y` from the
//! output `y`; Tanh with the gradient `g * (1 - y * y)` (`1 - y * y` fused where the CPU has
//! FMA, as torch's contracted kernel has it). exp and tanh are the vectorisable ones of
//! [`crate::base::vmath`].

use std::mem::MaybeUninit;

use crate::base::par::for_each_chunk;
use crate::base::real::{select, Real};
use crate::base::simd::{has_avx2_fma, simd_twin};
use crate::base::vmath::{Fused, MulAdd, Unfused, VMath};

/// Elements per parallel task.
const CHUNK: usize = 1 << 15;

simd_twin! {
    /// One chunk of [`relu_forward`], compiled for AVX2 where the CPU has it.
    fn relu_chunk<T: Real>(x: &[T], o: &mut [MaybeUninit<T>]) {
        for (o, &v) in o.iter_mut().zip(x) {
            o.write(select(passes(v), v, T::ZERO));
        }
    }
}

simd_twin! {
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

/// An elementwise activation with its parameter, for [`forward`] and [`backward`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation<T> {
    /// `x` where `x > 0`, else `negative_slope * x`.
    LeakyRelu { negative_slope: T },
    /// `1 / (1 + exp(-x))`.
    Sigmoid,
    /// `tanh(x)`.
    Tanh,
}

impl<T> Activation<T> {
    /// What [`backward`] reads beside the gradient: the forward's `"input"` or `"output"`.
    /// (LeakyReLU's output serves too when `negative_slope >= 0`: it is `> 0` exactly where
    /// the input is.)
    pub fn saved(&self) -> &'static str {
        match self {
            Activation::LeakyRelu { .. } => "input",
            Activation::Sigmoid | Activation::Tanh => "output",
        }
    }
}

/// A map `x -> y` applied elementwise by [`map_chunk`].
trait Unary<T>: Copy + Send + Sync {
    fn at(self, x: T) -> T;
}

/// A gradient `(g, s) -> dx` applied elementwise by [`zip_chunk`] (`s` the saved array).
trait Binary<T>: Copy + Send + Sync {
    fn at(self, g: T, s: T) -> T;
}

#[derive(Clone, Copy)]
struct Leaky<T>(T);
#[derive(Clone, Copy)]
struct Sigmoid<M>(M);
#[derive(Clone, Copy)]
struct Tanh<M>(M);

impl<T: Real> Unary<T> for Leaky<T> {
    #[inline(always)]
    fn at(self, x: T) -> T {
        x * select(x > T::ZERO, T::ONE, self.0)
    }
}

impl<T: Real> Binary<T> for Leaky<T> {
    #[inline(always)]
    fn at(self, g: T, x: T) -> T {
        g * select(x > T::ZERO, T::ONE, self.0)
    }
}

impl<T: VMath, M: MulAdd> Unary<T> for Sigmoid<M> {
    #[inline(always)]
    fn at(self, x: T) -> T {
        x.sigmoid_v::<M>()
    }
}

impl<T: Real, M: MulAdd> Binary<T> for Sigmoid<M> {
    #[inline(always)]
    fn at(self, g: T, y: T) -> T {
        g * (T::ONE - y) * y
    }
}

impl<T: VMath, M: MulAdd> Unary<T> for Tanh<M> {
    #[inline(always)]
    fn at(self, x: T) -> T {
        x.tanh_v::<M>()
    }
}

impl<T: VMath, M: MulAdd> Binary<T> for Tanh<M> {
    /// `g * (1 - y * y)`, with `1 - y * y` one fused operation where torch's build has it
    /// contracted (its AVX2/AVX-512 kernels: the same bits).
    #[inline(always)]
    fn at(self, g: T, y: T) -> T {
        g * M::mul_add(-y, y, T::ONE)
    }
}

simd_twin! {
    /// One chunk of a forward pass, compiled for AVX2 where the CPU has it.
    fn map_chunk<T: Real, F: Unary<T>>(f: F, x: &[T], o: &mut [MaybeUninit<T>]) {
        for (o, &v) in o.iter_mut().zip(x) {
            o.write(f.at(v));
        }
    }
}

simd_twin! {
    /// One chunk of a backward pass, compiled for AVX2 where the CPU has it.
    fn zip_chunk<T: Real, F: Binary<T>>(f: F, g: &[T], s: &[T], o: &mut [MaybeUninit<T>]) {
        for ((o, &gv), &sv) in o.iter_mut().zip(g).zip(s) {
            o.write(f.at(gv, sv));
        }
    }
}

fn map<T: Real, F: Unary<T>>(f: F, x: &[T], out: &mut [MaybeUninit<T>], threads: usize) {
    for_each_chunk(
        threads > 1,
        out,
        CHUNK,
        || (),
        |_, (i, o)| map_chunk(f, &x[i * CHUNK..], o),
    );
}

fn zip<T: Real, F: Binary<T>>(f: F, g: &[T], s: &[T], out: &mut [MaybeUninit<T>], threads: usize) {
    for_each_chunk(
        threads > 1,
        out,
        CHUNK,
        || (),
        |_, (i, o)| zip_chunk(f, &g[i * CHUNK..], &s[i * CHUNK..], o),
    );
}

/// `act(x)` into the write-only `out` (every element written once). With AVX2+FMA the
/// polynomials of exp and tanh use fused multiply-adds (see [`MulAdd`]).
pub fn forward<T: VMath>(act: Activation<T>, x: &[T], out: &mut [MaybeUninit<T>], threads: usize) {
    assert_eq!(x.len(), out.len(), "activation: length mismatch");
    if has_avx2_fma() {
        forward_with(Fused, act, x, out, threads)
    } else {
        forward_with(Unfused, act, x, out, threads)
    }
}

fn forward_with<T: VMath, M: MulAdd>(
    m: M,
    act: Activation<T>,
    x: &[T],
    out: &mut [MaybeUninit<T>],
    threads: usize,
) {
    match act {
        Activation::LeakyRelu { negative_slope } => map(Leaky(negative_slope), x, out, threads),
        Activation::Sigmoid => map(Sigmoid(m), x, out, threads),
        Activation::Tanh => map(Tanh(m), x, out, threads),
    }
}

/// The gradient of [`forward`] for the output gradient `grad`, from `saved`: the forward's
/// input or output as [`Activation::saved`] says, into the write-only `out`.
pub fn backward<T: VMath>(
    act: Activation<T>,
    grad: &[T],
    saved: &[T],
    out: &mut [MaybeUninit<T>],
    threads: usize,
) {
    assert!(
        grad.len() == out.len() && saved.len() == out.len(),
        "activation backward: length mismatch"
    );
    if has_avx2_fma() {
        backward_with(Fused, act, grad, saved, out, threads)
    } else {
        backward_with(Unfused, act, grad, saved, out, threads)
    }
}

fn backward_with<T: VMath, M: MulAdd>(
    m: M,
    act: Activation<T>,
    grad: &[T],
    saved: &[T],
    out: &mut [MaybeUninit<T>],
    threads: usize,
) {
    match act {
        Activation::LeakyRelu { negative_slope } => {
            zip(Leaky(negative_slope), grad, saved, out, threads)
        }
        Activation::Sigmoid => zip(Sigmoid(m), grad, saved, out, threads),
        Activation::Tanh => zip(Tanh(m), grad, saved, out, threads),
    }
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

    #[test]
    fn leaky_relu_follows_torch() {
        let x = [
            -2.0f32,
            -0.0,
            0.0,
            3.0,
            f32::NAN,
            f32::NEG_INFINITY,
            f32::INFINITY,
        ];
        let act = Activation::LeakyRelu {
            negative_slope: 0.1f32,
        };
        let y = fresh(7, |o| forward(act, &x, o, 1));
        assert_eq!(&y[..4], &[-2.0 * 0.1, -0.0, 0.0, 3.0]);
        assert_eq!(y[1].to_bits(), (-0.0f32).to_bits());
        assert!(y[4].is_nan());
        assert_eq!(&y[5..], &[f32::NEG_INFINITY, f32::INFINITY]);
        let g = [2.0f32; 7];
        let d = fresh(7, |o| backward(act, &g, &x, o, 1));
        assert_eq!(d, [0.2, 0.2, 0.2, 2.0, 0.2, 0.2, 2.0]);
        // torch: -inf * 0 is NaN; a negative slope flips the sign of 0
        let zero = Activation::LeakyRelu {
            negative_slope: 0.0,
        };
        assert!(fresh(1, |o| forward(zero, &[f64::NEG_INFINITY], o, 1))[0].is_nan());
        let neg = Activation::LeakyRelu {
            negative_slope: -1.5,
        };
        assert_eq!(
            fresh(1, |o| forward(neg, &[0.0f64], o, 1))[0].to_bits(),
            (-0.0f64).to_bits()
        );
    }

    #[test]
    fn sigmoid_tanh_and_gradients() {
        let x = [-1000.0f64, -1.0, 0.0, 1.0, 1000.0, f64::NAN];
        let y = fresh(6, |o| forward(Activation::Sigmoid, &x, o, 1));
        assert_eq!(y[0], 0.0);
        assert_eq!(y[2], 0.5);
        assert_eq!(y[4], 1.0);
        assert!(y[5].is_nan());
        assert!((y[3] - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-16);
        let g = [3.0f64; 6];
        let d = fresh(6, |o| backward(Activation::Sigmoid, &g, &y, o, 1));
        for i in 0..5 {
            assert_eq!(d[i], 3.0 * (1.0 - y[i]) * y[i]);
        }
        let t = fresh(6, |o| forward(Activation::Tanh, &x, o, 1));
        assert_eq!(t[0], -1.0);
        assert_eq!(t[2], 0.0);
        let d = fresh(6, |o| backward(Activation::Tanh, &g, &t, o, 1));
        assert!((d[1] - 3.0 * (1.0 - t[1] * t[1])).abs() <= 1e-15);
    }

    #[test]
    fn activations_parallel_equal_serial() {
        let n = 3 * CHUNK + 17;
        let x: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1013) as f32 / 50.0 - 10.0)
            .collect();
        let acts = [
            Activation::LeakyRelu {
                negative_slope: 0.01,
            },
            Activation::Sigmoid,
            Activation::Tanh,
        ];
        for act in acts {
            let a = fresh(n, |o| forward(act, &x, o, 1));
            let b = fresh(n, |o| {
                crate::base::threads::run(2, || forward(act, &x, o, 2))
            });
            assert_eq!(a, b);
            let c = fresh(n, |o| backward(act, &x, &a, o, 1));
            let d = fresh(n, |o| {
                crate::base::threads::run(2, || backward(act, &x, &a, o, 2))
            });
            assert_eq!(c, d);
        }
    }
}
