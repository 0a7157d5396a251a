//! Optimizer steps in place (torch.optim's SGD, Adam and AdamW), each one parallel pass over
//! every parameter of a model.
//!
//! The update of each element follows torch.optim's single-tensor CPU implementations
//! (`_single_tensor_sgd`, `_single_tensor_adam`) operation by operation, with their
//! rounding: every Python scalar is computed in f64 as Python does and converted once to the
//! element type, as ATen's kernels convert their `Scalar` arguments; `add(alpha=)` and
//! `lerp` are fused multiply-adds, as ATen's vectorised kernels have them (`vec::fmadd`),
//! and so is `addcmul` (GCC contracts its `self + value * t1 * t2`); `addcdiv`, `mul` and
//! `div` by a scalar are plain. (torch's CPU `sqrt` goes through MKL, which is not always
//! correctly rounded: float32 results may differ from torch's by an ulp there.)
//!
//! The parameters are one concatenation of elements, cut into fixed chunks of [`CHUNK`]
//! elements (a chunk may span several small parameters, so that biases do not each cost a
//! task); the chunks run in parallel. Each element's update is independent of every other
//! element, so the result never depends on the thread count.

use crate::base::error::ConvError;
use crate::base::par::{for_each_task, DisjointSlice};
use crate::base::real::Real;
use crate::base::simd::simd_twin;

/// Elements per parallel task.
pub const CHUNK: usize = 1 << 14;

/// What the update kernels need beyond [`Real`]: fused multiply-add and square root.
pub trait OptimReal: Real {
    /// `a * b + c` with one rounding.
    fn fma(a: Self, b: Self, c: Self) -> Self;
    /// The correctly rounded square root.
    fn sqrt(self) -> Self;
    /// The absolute value.
    fn abs(self) -> Self;
}

macro_rules! impl_optim_real {
    ($($t:ty),*) => {$(
        impl OptimReal for $t {
            #[inline(always)]
            fn fma(a: Self, b: Self, c: Self) -> Self { a.mul_add(b, c) }
            #[inline(always)]
            fn sqrt(self) -> Self { <$t>::sqrt(self) }
            #[inline(always)]
            fn abs(self) -> Self { <$t>::abs(self) }
        }
    )*};
}
impl_optim_real!(f32, f64);

/// `torch.optim.SGD`'s hyperparameters (no `maximize`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdHyper {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
}

/// One parameter of an SGD step: the parameter, its gradient and, when `momentum != 0`,
/// its momentum buffer (`fresh`: the buffer has no value yet and this step sets it to the
/// gradient, as torch's first step clones it).
pub struct SgdParam<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub buf: Option<&'a mut [T]>,
    pub fresh: bool,
}

/// `torch.optim.Adam`'s hyperparameters (no `amsgrad`, no `maximize`); `decoupled` is
/// AdamW's decoupled weight decay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamHyper {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled: bool,
}

/// One parameter of an Adam step: the parameter, its gradient, its moment estimates and
/// the step number this update makes (1 on the first update).
pub struct AdamParam<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub exp_avg: &'a mut [T],
    pub exp_avg_sq: &'a mut [T],
    pub step: u64,
}

/// SGD's scalars in the element type, as ATen's kernels receive them.
#[derive(Clone, Copy)]
struct SgdCoef<T> {
    /// `weight_decay != 0` (torch tests the Python float).
    decay: bool,
    wd: T,
    momentum: T,
    /// `1 - dampening`, computed in f64.
    keep: T,
    /// `-lr`.
    neg_lr: T,
    nesterov: bool,
}

impl<T: OptimReal> SgdCoef<T> {
    fn new(h: &SgdHyper) -> Self {
        SgdCoef {
            decay: h.weight_decay != 0.0,
            wd: T::from_f64(h.weight_decay),
            momentum: T::from_f64(h.momentum),
            keep: T::from_f64(1.0 - h.dampening),
            neg_lr: T::from_f64(-h.lr),
            nesterov: h.nesterov,
        }
    }

    /// `grad.add(param, alpha=weight_decay)` when `weight_decay != 0`.
    #[inline(always)]
    fn decayed(&self, g: T, p: T) -> T {
        if self.decay {
            T::fma(p, self.wd, g)
        } else {
            g
        }
    }

    /// The direction from the gradient `d` and the updated buffer `b`:
    /// `d.add(b, alpha=momentum)` with nesterov, else `b`.
    #[inline(always)]
    fn direction(&self, d: T, b: T) -> T {
        if self.nesterov {
            T::fma(b, self.momentum, d)
        } else {
            b
        }
    }
}

simd_twin! {
    /// SGD without momentum over one piece: `p.add_(d, alpha=-lr)`.
    fn sgd_plain<T: OptimReal>(p: &mut [T], g: &[T], c: &SgdCoef<T>) {
        for (p, &g) in p.iter_mut().zip(g) {
            let d = c.decayed(g, *p);
            *p = T::fma(d, c.neg_lr, *p);
        }
    }
}

simd_twin! {
    /// SGD's first step with momentum over one piece: the buffer becomes the gradient.
    fn sgd_first<T: OptimReal>(p: &mut [T], g: &[T], b: &mut [T], c: &SgdCoef<T>) {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            let d = c.decayed(g, *p);
            *b = d;
            *p = T::fma(c.direction(d, d), c.neg_lr, *p);
        }
    }
}

simd_twin! {
    /// SGD's later steps with momentum over one piece:
    /// `buf.mul_(momentum).add_(d, alpha=1 - dampening)`.
    fn sgd_next<T: OptimReal>(p: &mut [T], g: &[T], b: &mut [T], c: &SgdCoef<T>) {
        for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
            let d = c.decayed(g, *p);
            let nb = T::fma(d, c.keep, *b * c.momentum);
            *b = nb;
            *p = T::fma(c.direction(d, nb), c.neg_lr, *p);
        }
    }
}

/// Adam's scalars in the element type that do not depend on the step.
#[derive(Clone, Copy)]
struct AdamCoef<T> {
    /// `weight_decay != 0` (torch tests the Python float).
    decay: bool,
    decoupled: bool,
    wd: T,
    /// `1 - lr * weight_decay` (AdamW).
    shrink: T,
    /// `lerp`'s coefficient: `1 - beta1` if that is below 0.5 in magnitude, else
    /// `(1 - beta1) - 1`, with `small` saying which (ATen's `lerp_vec`).
    lerp_coef: T,
    small: bool,
    beta2: T,
    /// `1 - beta2`.
    one_minus_beta2: T,
    eps: T,
}

impl<T: OptimReal> AdamCoef<T> {
    fn new(h: &AdamHyper) -> Self {
        let w = T::from_f64(1.0 - h.beta1);
        let small = w.abs() < T::from_f64(0.5);
        AdamCoef {
            decay: h.weight_decay != 0.0,
            decoupled: h.decoupled,
            wd: T::from_f64(h.weight_decay),
            shrink: T::from_f64(1.0 - h.lr * h.weight_decay),
            lerp_coef: if small { w } else { w - T::ONE },
            small,
            beta2: T::from_f64(h.beta2),
            one_minus_beta2: T::from_f64(1.0 - h.beta2),
            eps: T::from_f64(h.eps),
        }
    }
}

/// Adam's scalars of one step number, in the element type.
#[derive(Clone, Copy)]
struct AdamStep<T> {
    /// `-lr / (1 - beta1 ** step)`.
    neg_step_size: T,
    /// `(1 - beta2 ** step) ** 0.5`.
    bc2_sqrt: T,
}

impl<T: OptimReal> AdamStep<T> {
    /// As torch computes them in Python floats (`**` is C's `pow`, as Rust's `powf`).
    fn new(h: &AdamHyper, step: u64) -> Self {
        let s = step as f64;
        let bias_correction1 = 1.0 - h.beta1.powf(s);
        let bias_correction2 = 1.0 - h.beta2.powf(s);
        let step_size = h.lr / bias_correction1;
        AdamStep {
            neg_step_size: T::from_f64(-step_size),
            bc2_sqrt: T::from_f64(bias_correction2.powf(0.5)),
        }
    }
}

simd_twin! {
    /// Adam over one piece of one parameter.
    fn adam_piece<T: OptimReal>(
        p: &mut [T],
        g: &[T],
        m: &mut [T],
        v: &mut [T],
        c: &AdamCoef<T>,
        k: &AdamStep<T>,
    ) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let (mut pv, mut gv) = (*p, g);
            if c.decay {
                if c.decoupled {
                    pv = pv * c.shrink; // param.mul_(1 - lr * weight_decay)
                } else {
                    gv = T::fma(pv, c.wd, gv); // grad.add(param, alpha=weight_decay)
                }
            }
            // exp_avg.lerp_(grad, 1 - beta1)
            let m0 = *m;
            let base = if c.small { m0 } else { gv };
            let mv = T::fma(c.lerp_coef, gv - m0, base);
            *m = mv;
            // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            let vv = T::fma(c.one_minus_beta2 * gv, gv, *v * c.beta2);
            *v = vv;
            // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            let denom = vv.sqrt() / k.bc2_sqrt + c.eps;
            // param.addcdiv_(exp_avg, denom, value=-step_size)
            *p = pv + (k.neg_step_size * mv) / denom;
        }
    }
}

/// Runs `f(i, lo, hi)` for the pieces `lo..hi` of parameter `i` that the fixed chunks of
/// [`CHUNK`] elements of the concatenation of all parameters (lengths `lens`) cut: the
/// pieces of different calls are disjoint, and together they cover every element once.
fn for_each_piece<F>(lens: &[usize], threads: usize, f: F)
where
    F: Fn(usize, usize, usize) + Send + Sync,
{
    let mut starts = Vec::with_capacity(lens.len());
    let mut total = 0usize;
    for &n in lens {
        starts.push(total);
        total += n;
    }
    let tasks = total.div_ceil(CHUNK);
    for_each_task(
        threads > 1 && tasks > 1,
        tasks,
        || (),
        |_, t| {
            let (a, b) = (t * CHUNK, ((t + 1) * CHUNK).min(total));
            // the last parameter that starts at or before `a`
            let mut i = starts.partition_point(|&s| s <= a).saturating_sub(1);
            while i < lens.len() && starts[i] < b {
                let lo = a.max(starts[i]) - starts[i];
                let hi = b.min(starts[i] + lens[i]) - starts[i];
                if lo < hi {
                    f(i, lo, hi);
                }
                i += 1;
            }
        },
    );
}

fn mismatch(what: &str, i: usize) -> ConvError {
    ConvError::internal(format!("{what} {i} has the wrong length"))
}

/// One `torch.optim.SGD.step()` (foreach=False) over `params`, in place, on up to
/// `threads` threads; the momentum buffers are required exactly when `momentum != 0`.
pub fn sgd_step<T: OptimReal>(
    params: Vec<SgdParam<'_, T>>,
    h: &SgdHyper,
    threads: usize,
) -> Result<(), ConvError> {
    let with_buf = h.momentum != 0.0;
    for (i, it) in params.iter().enumerate() {
        let n = it.param.len();
        if it.grad.len() != n {
            return Err(mismatch("gradient", i));
        }
        match &it.buf {
            Some(b) if with_buf && b.len() == n => {}
            None if !with_buf => {}
            _ => return Err(mismatch("momentum buffer", i)),
        }
    }
    let c = SgdCoef::<T>::new(h);
    let lens: Vec<usize> = params.iter().map(|it| it.param.len()).collect();
    struct Shared<'a, T> {
        p: DisjointSlice<'a, T>,
        g: &'a [T],
        b: Option<DisjointSlice<'a, T>>,
        fresh: bool,
    }
    let shared: Vec<Shared<'_, T>> = params
        .into_iter()
        .map(|it| Shared {
            p: DisjointSlice::new(it.param),
            g: it.grad,
            b: it.buf.map(DisjointSlice::new),
            fresh: it.fresh,
        })
        .collect();
    for_each_piece(&lens, threads, |i, lo, hi| {
        let s = &shared[i];
        // SAFETY: the pieces of `for_each_piece` are disjoint, so no other task holds
        // elements lo..hi of this parameter or of its buffer.
        let p = unsafe { s.p.range(lo, hi - lo) };
        let g = &s.g[lo..hi];
        match &s.b {
            None => sgd_plain(p, g, &c),
            Some(b) => {
                // SAFETY: as above.
                let b = unsafe { b.range(lo, hi - lo) };
                if s.fresh {
                    sgd_first(p, g, b, &c)
                } else {
                    sgd_next(p, g, b, &c)
                }
            }
        }
    });
    Ok(())
}

/// One `torch.optim.Adam.step()` (foreach=False, or AdamW's with `decoupled`) over
/// `params`, in place, on up to `threads` threads.
pub fn adam_step<T: OptimReal>(
    params: Vec<AdamParam<'_, T>>,
    h: &AdamHyper,
    threads: usize,
) -> Result<(), ConvError> {
    for (i, it) in params.iter().enumerate() {
        let n = it.param.len();
        if it.grad.len() != n || it.exp_avg.len() != n || it.exp_avg_sq.len() != n {
            return Err(mismatch("gradient or state", i));
        }
        if it.step == 0 {
            return Err(ConvError::internal(format!("step {i} is 0")));
        }
    }
    let c = AdamCoef::<T>::new(h);
    let lens: Vec<usize> = params.iter().map(|it| it.param.len()).collect();
    struct Shared<'a, T> {
        p: DisjointSlice<'a, T>,
        g: &'a [T],
        m: DisjointSlice<'a, T>,
        v: DisjointSlice<'a, T>,
        k: AdamStep<T>,
    }
    let shared: Vec<Shared<'_, T>> = params
        .into_iter()
        .map(|it| Shared {
            k: AdamStep::new(h, it.step),
            p: DisjointSlice::new(it.param),
            g: it.grad,
            m: DisjointSlice::new(it.exp_avg),
            v: DisjointSlice::new(it.exp_avg_sq),
        })
        .collect();
    for_each_piece(&lens, threads, |i, lo, hi| {
        let s = &shared[i];
        let n = hi - lo;
        // SAFETY: the pieces of `for_each_piece` are disjoint, so no other task holds
        // elements lo..hi of this parameter or of its state.
        let (p, m, v) = unsafe { (s.p.range(lo, n), s.m.range(lo, n), s.v.range(lo, n)) };
        adam_piece(p, &s.g[lo..hi], m, v, &c, &s.k);
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parameter lengths that make chunks span several parameters, with empty ones.
    const LENS: [usize; 7] = [3 * CHUNK + 5, 7, 0, CHUNK - 3, 1, 2 * CHUNK, 11];

    fn data(seed: u64, lens: &[usize]) -> Vec<Vec<f64>> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        lens.iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        s = s
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
                    })
                    .collect()
            })
            .collect()
    }

    fn run_sgd<T: OptimReal>(h: &SgdHyper, threads: usize, steps: usize) -> Vec<Vec<T>> {
        let cast = |v: Vec<Vec<f64>>| -> Vec<Vec<T>> {
            v.into_iter()
                .map(|a| a.into_iter().map(T::from_f64).collect())
                .collect()
        };
        let mut p = cast(data(1, &LENS));
        let mut b = cast(data(0, &LENS));
        for s in 0..steps {
            let g = cast(data(10 + s as u64, &LENS));
            let items = p
                .iter_mut()
                .zip(&g)
                .zip(b.iter_mut())
                .map(|((p, g), b)| SgdParam {
                    param: p,
                    grad: g,
                    buf: (h.momentum != 0.0).then_some(b.as_mut_slice()),
                    fresh: s == 0,
                })
                .collect();
            crate::base::threads::run(threads, || sgd_step(items, h, threads)).unwrap();
        }
        p.extend(b);
        p
    }

    fn run_adam<T: OptimReal>(h: &AdamHyper, threads: usize, steps: u64) -> Vec<Vec<T>> {
        let cast = |v: Vec<Vec<f64>>| -> Vec<Vec<T>> {
            v.into_iter()
                .map(|a| a.into_iter().map(T::from_f64).collect())
                .collect()
        };
        let mut p = cast(data(1, &LENS));
        let zeros = || LENS.iter().map(|&n| vec![T::ZERO; n]).collect::<Vec<_>>();
        let (mut m, mut v) = (zeros(), zeros());
        for s in 1..=steps {
            let g = cast(data(20 + s, &LENS));
            let items = p
                .iter_mut()
                .zip(&g)
                .zip(m.iter_mut().zip(v.iter_mut()))
                .map(|((p, g), (m, v))| AdamParam {
                    param: p,
                    grad: g,
                    exp_avg: m,
                    exp_avg_sq: v,
                    step: s,
                })
                .collect();
            crate::base::threads::run(threads, || adam_step(items, h, threads)).unwrap();
        }
        p.extend(m);
        p.extend(v);
        p
    }

    #[test]
    fn sgd_follows_torch_on_one_element() {
        let h = SgdHyper {
            lr: 0.5,
            momentum: 0.9,
            dampening: 0.25,
            weight_decay: 0.1,
            nesterov: false,
        };
        let (mut p, mut b) = ([2.0f64], [0.0f64]);
        for (step, g) in [1.0f64, -3.0].into_iter().enumerate() {
            let g = [g];
            let items = vec![SgdParam {
                param: &mut p,
                grad: &g,
                buf: Some(&mut b),
                fresh: step == 0,
            }];
            sgd_step(items, &h, 1).unwrap();
        }
        // step 1: d = 1 + 0.1 * 2 = 1.2, b = 1.2, p = 2 - 0.6 = 1.4
        // step 2: d = -3 + 0.14 = -2.86, b = 0.9 * 1.2 + 0.75 * -2.86 = -1.065, p = 1.9325
        assert!((b[0] + 1.065).abs() < 1e-15, "{}", b[0]);
        assert!((p[0] - 1.9325).abs() < 1e-15, "{}", p[0]);
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let h = AdamHyper {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 0.0,
            weight_decay: 0.0,
            decoupled: false,
        };
        let (mut p, mut m, mut v) = ([1.0f64, 1.0], [0.0; 2], [0.0; 2]);
        let items = vec![AdamParam {
            param: &mut p,
            grad: &[3.0, -0.5],
            exp_avg: &mut m,
            exp_avg_sq: &mut v,
            step: 1,
        }];
        adam_step(items, &h, 1).unwrap();
        assert!(
            (p[0] - 0.9).abs() < 1e-15 && (p[1] - 1.1).abs() < 1e-15,
            "{p:?}"
        );
    }

    #[test]
    fn pieces_cover_every_element_once() {
        use std::sync::Mutex;
        let seen = Mutex::new(LENS.iter().map(|&n| vec![0u8; n]).collect::<Vec<_>>());
        crate::base::threads::run(2, || {
            for_each_piece(&LENS, 2, |i, lo, hi| {
                assert!(hi - lo <= CHUNK);
                let mut s = seen.lock().unwrap();
                s[i][lo..hi].iter_mut().for_each(|e| *e += 1);
            })
        });
        assert!(seen.into_inner().unwrap().iter().flatten().all(|&e| e == 1));
    }

    #[test]
    fn sgd_parallel_equals_serial() {
        for (momentum, dampening, weight_decay, nesterov) in [
            (0.0, 0.0, 0.0, false),
            (0.0, 0.0, 0.01, false),
            (0.9, 0.1, 0.01, false),
            (0.9, 0.0, 0.001, true),
        ] {
            let h = SgdHyper {
                lr: 0.05,
                momentum,
                dampening,
                weight_decay,
                nesterov,
            };
            assert_eq!(run_sgd::<f32>(&h, 1, 3), run_sgd::<f32>(&h, 2, 3));
            assert_eq!(run_sgd::<f64>(&h, 1, 3), run_sgd::<f64>(&h, 2, 3));
        }
    }

    #[test]
    fn adam_parallel_equals_serial() {
        for (beta1, weight_decay, decoupled) in
            [(0.9, 0.0, false), (0.3, 0.1, false), (0.6, 0.01, true)]
        {
            let h = AdamHyper {
                lr: 1e-3,
                beta1,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay,
                decoupled,
            };
            assert_eq!(run_adam::<f32>(&h, 1, 3), run_adam::<f32>(&h, 2, 3));
            assert_eq!(run_adam::<f64>(&h, 1, 3), run_adam::<f64>(&h, 2, 3));
        }
    }

    #[test]
    fn wrong_lengths_are_internal_errors() {
        let h = SgdHyper {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
        };
        let mut p = [1.0f32; 2];
        let items = vec![SgdParam {
            param: &mut p,
            grad: &[1.0],
            buf: None,
            fresh: true,
        }];
        assert!(matches!(
            sgd_step(items, &h, 1),
            Err(ConvError::Internal(_))
        ));
        let items = vec![SgdParam {
            param: &mut p,
            grad: &[1.0, 2.0],
            buf: None, // momentum != 0 needs a buffer
            fresh: true,
        }];
        assert!(matches!(
            sgd_step(items, &h, 1),
            Err(ConvError::Internal(_))
        ));
        assert_eq!(p, [1.0; 2]);
    }
}
