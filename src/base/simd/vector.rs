//! One SIMD register of `f32`/`f64` per level ([`Vector`]), and [`dispatch`], which runs a
//! hand-blocked kernel ([`WithVector`]) compiled for the process's level with that level's
//! vector: zmm registers at `avx512`, ymm at `avx2`, plain arrays of four at `generic`.
//!
//! A kernel is written once, generic over `V: Vector`; everything it reaches must be
//! `#[inline(always)]` so that it is compiled inside the level's `#[target_feature]` function.

use super::Level;
use crate::base::real::Real;

/// One SIMD register of `Elem`.
///
/// # Safety
/// Every method needs the CPU to support the vector's level (the [`dispatch`] contract);
/// `load`/`store` need `LANES` valid elements at the pointer (no alignment needed).
#[allow(clippy::missing_safety_doc)]
pub trait Vector: Copy {
    type Elem: Real;
    /// Elements per vector.
    const LANES: usize;
    unsafe fn zero() -> Self;
    unsafe fn splat(x: Self::Elem) -> Self;
    unsafe fn load(p: *const Self::Elem) -> Self;
    unsafe fn store(self, p: *mut Self::Elem);
    /// `self * b + c`: fused (one rounding) at `avx2` and `avx512`, a product then a sum at
    /// `generic`.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    /// Lane-wise `max(self, 0)`, NaN passed through (torch's ReLU).
    unsafe fn relu(self) -> Self;
}

/// `f32`/`f64` with a vector type per level.
pub trait SimdReal: Real {
    type Avx512: Vector<Elem = Self>;
    type Avx2: Vector<Elem = Self>;
    type Generic: Vector<Elem = Self>;
}

/// A kernel generic over the vector type: [`dispatch`] calls [`WithVector::call`] with the
/// vector of the process's level, compiled for that level.
pub trait WithVector<T: SimdReal> {
    type Out;
    /// Must be `#[inline(always)]`, as everything it calls.
    fn call<V: Vector<Elem = T>>(self) -> Self::Out;
}

/// Run `k` at the process's SIMD level ([`super::level`]).
#[inline]
pub fn dispatch<T: SimdReal, K: WithVector<T>>(k: K) -> K::Out {
    dispatch_at(super::level(), k)
}

/// Run `k` at `level`, which must not be above the CPU's (it is lowered to the CPU's if it is).
#[inline]
pub fn dispatch_at<T: SimdReal, K: WithVector<T>>(level: Level, k: K) -> K::Out {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
        fn at512<T: SimdReal, K: WithVector<T>>(k: K) -> K::Out {
            k.call::<T::Avx512>()
        }
        #[target_feature(enable = "avx2,fma")]
        fn at2<T: SimdReal, K: WithVector<T>>(k: K) -> K::Out {
            k.call::<T::Avx2>()
        }
        match level.min(super::cpu_level()) {
            // SAFETY: the CPU has AVX-512 F/BW/DQ/VL (the level is at most the CPU's).
            Level::Avx512 => return unsafe { at512::<T, K>(k) },
            // SAFETY: the CPU has AVX2 and FMA (the level is at most the CPU's).
            Level::Avx2 => return unsafe { at2::<T, K>(k) },
            Level::Generic => {}
        }
    }
    let _ = level;
    k.call::<T::Generic>()
}

/// The `generic` level's vector: `N` lanes in a plain array (the compiler vectorises what the
/// baseline allows), products and sums rounded separately.
#[derive(Clone, Copy)]
pub struct Lanes<T, const N: usize>(pub [T; N]);

impl<T: Real, const N: usize> Vector for Lanes<T, N> {
    type Elem = T;
    const LANES: usize = N;
    #[inline(always)]
    unsafe fn zero() -> Self {
        Lanes([T::ZERO; N])
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> Self {
        Lanes([x; N])
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> Self {
        // SAFETY: `N` valid elements at `p` (the trait's contract).
        Lanes(unsafe { std::ptr::read_unaligned(p as *const [T; N]) })
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut T) {
        // SAFETY: `N` valid elements at `p` (the trait's contract).
        unsafe { std::ptr::write_unaligned(p as *mut [T; N], self.0) }
    }
    #[inline(always)]
    unsafe fn fma(self, b: Self, c: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] * b.0[i] + c.0[i]))
    }
    #[inline(always)]
    unsafe fn add(self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] + b.0[i]))
    }
    #[inline(always)]
    unsafe fn mul(self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] * b.0[i]))
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        Lanes(self.0.map(crate::base::real::relu))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Lanes, SimdReal, Vector};
    use std::arch::x86_64::*;

    /// Sixteen `f32` in a zmm register (`avx512`).
    #[derive(Clone, Copy)]
    pub struct F32x16(__m512);
    /// Eight `f64` in a zmm register (`avx512`).
    #[derive(Clone, Copy)]
    pub struct F64x8(__m512d);
    /// Eight `f32` in a ymm register (`avx2`).
    #[derive(Clone, Copy)]
    pub struct F32x8(__m256);
    /// Four `f64` in a ymm register (`avx2`).
    #[derive(Clone, Copy)]
    pub struct F64x4(__m256d);

    /// Implements [`Vector`] for a register type from its intrinsics. Every method's SAFETY:
    /// the CPU has the level's features and `LANES` elements lie at the pointer (the trait's
    /// contract).
    macro_rules! vector {
        ($ty:ident, $t:ty, $n:expr, $reg:ty, $zero:ident, $set1:ident, $load:ident, $store:ident,
         $fma:ident, $add:ident, $mul:ident, $relu:expr) => {
            impl Vector for $ty {
                type Elem = $t;
                const LANES: usize = $n;
                #[inline(always)]
                unsafe fn zero() -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $zero() })
                }
                #[inline(always)]
                unsafe fn splat(x: $t) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $set1(x) })
                }
                #[inline(always)]
                unsafe fn load(p: *const $t) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $load(p) })
                }
                #[inline(always)]
                unsafe fn store(self, p: *mut $t) {
                    // SAFETY: the trait's contract (see the macro).
                    unsafe { $store(p, self.0) }
                }
                #[inline(always)]
                unsafe fn fma(self, b: Self, c: Self) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $fma(self.0, b.0, c.0) })
                }
                #[inline(always)]
                unsafe fn add(self, b: Self) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $add(self.0, b.0) })
                }
                #[inline(always)]
                unsafe fn mul(self, b: Self) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $mul(self.0, b.0) })
                }
                #[inline(always)]
                unsafe fn relu(self) -> Self {
                    let f: fn($reg) -> $reg = $relu;
                    $ty(f(self.0))
                }
            }
        };
    }

    // relu: `max(0, v)` returns its second operand when either is NaN, so NaN passes.
    vector!(
        F32x16,
        f32,
        16,
        __m512,
        _mm512_setzero_ps,
        _mm512_set1_ps,
        _mm512_loadu_ps,
        _mm512_storeu_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_mul_ps,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX-512.
        |v| unsafe { _mm512_max_ps(_mm512_setzero_ps(), v) }
    );
    vector!(
        F64x8,
        f64,
        8,
        __m512d,
        _mm512_setzero_pd,
        _mm512_set1_pd,
        _mm512_loadu_pd,
        _mm512_storeu_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_mul_pd,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX-512.
        |v| unsafe { _mm512_max_pd(_mm512_setzero_pd(), v) }
    );
    vector!(
        F32x8,
        f32,
        8,
        __m256,
        _mm256_setzero_ps,
        _mm256_set1_ps,
        _mm256_loadu_ps,
        _mm256_storeu_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_mul_ps,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX2.
        |v| unsafe { _mm256_max_ps(_mm256_setzero_ps(), v) }
    );
    vector!(
        F64x4,
        f64,
        4,
        __m256d,
        _mm256_setzero_pd,
        _mm256_set1_pd,
        _mm256_loadu_pd,
        _mm256_storeu_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_mul_pd,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX2.
        |v| unsafe { _mm256_max_pd(_mm256_setzero_pd(), v) }
    );

    impl SimdReal for f32 {
        type Avx512 = F32x16;
        type Avx2 = F32x8;
        type Generic = Lanes<f32, 4>;
    }
    impl SimdReal for f64 {
        type Avx512 = F64x8;
        type Avx2 = F64x4;
        type Generic = Lanes<f64, 4>;
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{F32x16, F32x8, F64x4, F64x8};

#[cfg(not(target_arch = "x86_64"))]
mod other {
    use super::{Lanes, SimdReal};
    impl SimdReal for f32 {
        type Avx512 = Lanes<f32, 4>;
        type Avx2 = Lanes<f32, 4>;
        type Generic = Lanes<f32, 4>;
    }
    impl SimdReal for f64 {
        type Avx512 = Lanes<f64, 4>;
        type Avx2 = Lanes<f64, 4>;
        type Generic = Lanes<f64, 4>;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `sum_i a[i] * b[i]` lane-wise over chunks of `LANES`, then the lanes in order.
    struct Dot<'a>(&'a [f32], &'a [f32]);
    impl WithVector<f32> for Dot<'_> {
        type Out = (f32, usize);
        #[inline(always)]
        fn call<V: Vector<Elem = f32>>(self) -> (f32, usize) {
            let n = V::LANES;
            let mut lanes = vec![0f32; n];
            // SAFETY: dispatch runs this at a level the CPU has; every chunk has `n` elements.
            unsafe {
                let mut acc = V::zero();
                for (a, b) in self.0.chunks_exact(n).zip(self.1.chunks_exact(n)) {
                    acc = V::load(a.as_ptr()).fma(V::load(b.as_ptr()), acc);
                }
                acc.relu().store(lanes.as_mut_ptr());
            }
            (lanes.iter().sum(), n)
        }
    }

    #[test]
    fn every_level_computes_the_same_dot_product() {
        let a: Vec<f32> = (0..64).map(|i| (i % 7) as f32 - 1.0).collect();
        let b: Vec<f32> = (0..64).map(|i| (i % 5) as f32).collect();
        let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        super::super::with_each_level(|l| {
            let (got, lanes) = dispatch(Dot(&a, &b));
            let expect_lanes = match l {
                Level::Avx512 => 16,
                Level::Avx2 => 8,
                Level::Generic => 4,
            };
            assert_eq!(lanes, expect_lanes, "{l:?}");
            assert_eq!(got, want, "{l:?}"); // small integers: exact at every level
        });
    }
}
