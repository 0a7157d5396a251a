//! The FMA peak of this machine at rconv's level: a register-only loop of independent fused
//! multiply-adds, the ceiling against which the benchmarks judge a kernel's GFLOP/s.

use super::vector::{dispatch, SimdReal, Vector, WithVector};

/// Independent accumulator chains: enough to cover the FMA latency on two pipes.
const CHAINS: usize = 12;

struct Peak<T> {
    iters: usize,
    seed: T,
}

impl<T: SimdReal> WithVector<T> for Peak<T> {
    type Out = (T, usize);
    #[inline(always)]
    fn call<V: Vector<Elem = T>>(self) -> (T, usize) {
        // SAFETY: `dispatch` runs this at a level the CPU has; no memory is accessed but `out`,
        // which holds `LANES` elements.
        unsafe {
            let a = V::splat(T::from_f64(0.999_999));
            let b = V::splat(self.seed);
            let mut acc = [V::splat(self.seed); CHAINS];
            for _ in 0..self.iters {
                for c in acc.iter_mut() {
                    *c = c.fma(a, b);
                }
            }
            let mut sum = acc[0];
            for c in &acc[1..] {
                sum = sum.add(*c);
            }
            let mut out = vec![T::ZERO; V::LANES];
            sum.store(out.as_mut_ptr());
            (out[0], V::LANES)
        }
    }
}

/// Floating-point operations per second (2 per lane per FMA) of `threads` threads each running
/// the FMA loop for about `seconds`, at the process's level, in GFLOP/s.
pub fn fma_peak<T: SimdReal>(threads: usize, seconds: f64) -> f64 {
    use rayon::prelude::*;
    let threads = threads.max(1);
    let iters = 1usize << 16;
    // calibrate the number of rounds on one thread
    let t0 = std::time::Instant::now();
    let mut rounds = 1usize;
    loop {
        for _ in 0..rounds {
            std::hint::black_box(dispatch(Peak {
                iters,
                seed: T::from_f64(1e-3),
            }));
        }
        let dt = t0.elapsed().as_secs_f64();
        if dt > seconds / 8.0 || rounds > 1 << 20 {
            rounds = ((rounds as f64 * seconds / dt.max(1e-9)).ceil() as usize).max(1);
            break;
        }
        rounds *= 2;
    }
    let lanes = std::sync::atomic::AtomicUsize::new(1);
    let start = std::time::Instant::now();
    crate::base::threads::run(threads, || {
        (0..threads).into_par_iter().for_each(|_| {
            for _ in 0..rounds {
                let (v, n) = dispatch(Peak {
                    iters,
                    seed: T::from_f64(1e-3),
                });
                std::hint::black_box(v);
                lanes.store(n, std::sync::atomic::Ordering::Relaxed);
            }
        })
    });
    let dt = start.elapsed().as_secs_f64();
    let n = lanes.load(std::sync::atomic::Ordering::Relaxed);
    let flops = 2.0 * (threads * rounds * iters * CHAINS * n) as f64;
    flops / dt / 1e9
}
