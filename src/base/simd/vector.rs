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
    /// [`Vector::store`] without reading the line into the caches first (a non-temporal
    /// store, for outputs far larger than the caches); `p` must be aligned to the vector's
    /// size (`LANES` elements). Callers issue a store fence before publishing the output.
    unsafe fn stream(self, p: *mut Self::Elem);
    /// `self * b + c`: fused (one rounding) at `avx2` and `avx512`, a product then a sum at
    /// `generic`.
    unsafe fn fma(self, b: Self, c: Self) -> Self;
    unsafe fn add(self, b: Self) -> Self;
    unsafe fn mul(self, b: Self) -> Self;
    unsafe fn sub(self, b: Self) -> Self;
    unsafe fn div(self, b: Self) -> Self;
    /// Lane-wise `max(self, 0)`, NaN passed through (torch's ReLU).
    unsafe fn relu(self) -> Self;
    /// Transposes a `LANES x LANES` block: `dst[j ds + i] = src[i ss + j]` for `i, j <
    /// LANES` (row `i` of the block at `src + i ss` becomes column `i` at `dst`). The two
    /// blocks must not overlap; `LANES` valid elements at every row of each.
    unsafe fn transpose(src: *const Self::Elem, ss: usize, dst: *mut Self::Elem, ds: usize);
}

/// [`Vector::transpose`] element by element (the `generic` level, and `f64` elsewhere).
///
/// # Safety
/// As [`Vector::transpose`] with `LANES = n`.
#[inline(always)]
unsafe fn transpose_scalar<T: Copy>(n: usize, src: *const T, ss: usize, dst: *mut T, ds: usize) {
    for i in 0..n {
        for j in 0..n {
            // SAFETY: both elements lie in their blocks (the caller's contract).
            unsafe { *dst.add(j * ds + i) = *src.add(i * ss + j) };
        }
    }
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

/// `V::LANES` of `T`'s vector at `level`.
pub fn lanes<T: SimdReal>(level: Level) -> usize {
    struct Lanes;
    impl<T: SimdReal> WithVector<T> for Lanes {
        type Out = usize;
        #[inline(always)]
        fn call<V: Vector<Elem = T>>(self) -> usize {
            V::LANES
        }
    }
    dispatch_at::<T, _>(level, Lanes)
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
    unsafe fn stream(self, p: *mut T) {
        // SAFETY: `N` valid elements at `p` (the trait's contract); a plain store here.
        unsafe { self.store(p) }
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
    unsafe fn sub(self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] - b.0[i]))
    }
    #[inline(always)]
    unsafe fn div(self, b: Self) -> Self {
        Lanes(std::array::from_fn(|i| self.0[i] / b.0[i]))
    }
    #[inline(always)]
    unsafe fn relu(self) -> Self {
        Lanes(self.0.map(crate::base::real::relu))
    }
    #[inline(always)]
    unsafe fn transpose(src: *const T, ss: usize, dst: *mut T, ds: usize) {
        // SAFETY: the trait's contract.
        unsafe { transpose_scalar(N, src, ss, dst, ds) }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Lanes, SimdReal, Vector};
    use std::arch::x86_64::*;

    /// [`Vector::transpose`] of 8x8 `f64` in zmm registers: pairs of rows interleaved
    /// (`unpack{lo,hi}_pd`), then two rounds of 128-bit lane shuffles.
    ///
    /// # Safety
    /// The blocks of [`Vector::transpose`], and AVX-512F.
    #[inline(always)]
    unsafe fn transpose8_f64(src: *const f64, ss: usize, dst: *mut f64, ds: usize) {
        // SAFETY: eight rows of eight at `src`, eight of eight at `dst` (the caller's
        // contract), and the CPU has AVX-512F.
        unsafe {
            let r = |i: usize| _mm512_loadu_pd(src.add(i * ss));
            let (t0, t1) = (
                _mm512_unpacklo_pd(r(0), r(1)),
                _mm512_unpackhi_pd(r(0), r(1)),
            );
            let (t2, t3) = (
                _mm512_unpacklo_pd(r(2), r(3)),
                _mm512_unpackhi_pd(r(2), r(3)),
            );
            let (t4, t5) = (
                _mm512_unpacklo_pd(r(4), r(5)),
                _mm512_unpackhi_pd(r(4), r(5)),
            );
            let (t6, t7) = (
                _mm512_unpacklo_pd(r(6), r(7)),
                _mm512_unpackhi_pd(r(6), r(7)),
            );
            let u0 = _mm512_shuffle_f64x2::<0x88>(t0, t2);
            let u1 = _mm512_shuffle_f64x2::<0xdd>(t0, t2);
            let u2 = _mm512_shuffle_f64x2::<0x88>(t1, t3);
            let u3 = _mm512_shuffle_f64x2::<0xdd>(t1, t3);
            let u4 = _mm512_shuffle_f64x2::<0x88>(t4, t6);
            let u5 = _mm512_shuffle_f64x2::<0xdd>(t4, t6);
            let u6 = _mm512_shuffle_f64x2::<0x88>(t5, t7);
            let u7 = _mm512_shuffle_f64x2::<0xdd>(t5, t7);
            _mm512_storeu_pd(dst, _mm512_shuffle_f64x2::<0x88>(u0, u4));
            _mm512_storeu_pd(dst.add(ds), _mm512_shuffle_f64x2::<0x88>(u2, u6));
            _mm512_storeu_pd(dst.add(2 * ds), _mm512_shuffle_f64x2::<0x88>(u1, u5));
            _mm512_storeu_pd(dst.add(3 * ds), _mm512_shuffle_f64x2::<0x88>(u3, u7));
            _mm512_storeu_pd(dst.add(4 * ds), _mm512_shuffle_f64x2::<0xdd>(u0, u4));
            _mm512_storeu_pd(dst.add(5 * ds), _mm512_shuffle_f64x2::<0xdd>(u2, u6));
            _mm512_storeu_pd(dst.add(6 * ds), _mm512_shuffle_f64x2::<0xdd>(u1, u5));
            _mm512_storeu_pd(dst.add(7 * ds), _mm512_shuffle_f64x2::<0xdd>(u3, u7));
        }
    }

    /// [`Vector::transpose`] of 4x4 `f64` in ymm registers.
    ///
    /// # Safety
    /// The blocks of [`Vector::transpose`], and AVX.
    #[inline(always)]
    unsafe fn transpose4_f64(src: *const f64, ss: usize, dst: *mut f64, ds: usize) {
        // SAFETY: four rows of four at `src` and at `dst` (the caller's contract); the CPU
        // has AVX (the avx2 level).
        unsafe {
            let r = |i: usize| _mm256_loadu_pd(src.add(i * ss));
            let (t0, t1) = (
                _mm256_unpacklo_pd(r(0), r(1)),
                _mm256_unpackhi_pd(r(0), r(1)),
            );
            let (t2, t3) = (
                _mm256_unpacklo_pd(r(2), r(3)),
                _mm256_unpackhi_pd(r(2), r(3)),
            );
            _mm256_storeu_pd(dst, _mm256_permute2f128_pd::<0x20>(t0, t2));
            _mm256_storeu_pd(dst.add(ds), _mm256_permute2f128_pd::<0x20>(t1, t3));
            _mm256_storeu_pd(dst.add(2 * ds), _mm256_permute2f128_pd::<0x31>(t0, t2));
            _mm256_storeu_pd(dst.add(3 * ds), _mm256_permute2f128_pd::<0x31>(t1, t3));
        }
    }

    /// [`Vector::transpose`] of 16 x 16 `f32` in zmm registers: pairs of rows interleaved by
    /// `unpack{lo,hi}_ps`, then `_pd`, then 128-bit lanes moved by two rounds of
    /// `shuffle_f32x4` (64 shuffles for 256 elements).
    ///
    /// # Safety
    /// AVX-512F, and the blocks of [`Vector::transpose`].
    #[inline(always)]
    #[allow(clippy::erasing_op, clippy::identity_op)] // the unrolled rows 0 and 1
    unsafe fn transpose16(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        // SAFETY: the caller's contract (AVX-512F on, 16 rows of 16 at `src` and `dst`).
        unsafe {
            let r0 = _mm512_loadu_ps(src.add(0 * ss));
            let r1 = _mm512_loadu_ps(src.add(1 * ss));
            let r2 = _mm512_loadu_ps(src.add(2 * ss));
            let r3 = _mm512_loadu_ps(src.add(3 * ss));
            let r4 = _mm512_loadu_ps(src.add(4 * ss));
            let r5 = _mm512_loadu_ps(src.add(5 * ss));
            let r6 = _mm512_loadu_ps(src.add(6 * ss));
            let r7 = _mm512_loadu_ps(src.add(7 * ss));
            let r8 = _mm512_loadu_ps(src.add(8 * ss));
            let r9 = _mm512_loadu_ps(src.add(9 * ss));
            let r10 = _mm512_loadu_ps(src.add(10 * ss));
            let r11 = _mm512_loadu_ps(src.add(11 * ss));
            let r12 = _mm512_loadu_ps(src.add(12 * ss));
            let r13 = _mm512_loadu_ps(src.add(13 * ss));
            let r14 = _mm512_loadu_ps(src.add(14 * ss));
            let r15 = _mm512_loadu_ps(src.add(15 * ss));
            let t0 = _mm512_unpacklo_ps(r0, r1);
            let t1 = _mm512_unpackhi_ps(r0, r1);
            let t2 = _mm512_unpacklo_ps(r2, r3);
            let t3 = _mm512_unpackhi_ps(r2, r3);
            let t4 = _mm512_unpacklo_ps(r4, r5);
            let t5 = _mm512_unpackhi_ps(r4, r5);
            let t6 = _mm512_unpacklo_ps(r6, r7);
            let t7 = _mm512_unpackhi_ps(r6, r7);
            let t8 = _mm512_unpacklo_ps(r8, r9);
            let t9 = _mm512_unpackhi_ps(r8, r9);
            let t10 = _mm512_unpacklo_ps(r10, r11);
            let t11 = _mm512_unpackhi_ps(r10, r11);
            let t12 = _mm512_unpacklo_ps(r12, r13);
            let t13 = _mm512_unpackhi_ps(r12, r13);
            let t14 = _mm512_unpacklo_ps(r14, r15);
            let t15 = _mm512_unpackhi_ps(r14, r15);
            macro_rules! pairs {
                ($f:ident, $a:expr, $b:expr) => {
                    _mm512_castpd_ps($f(_mm512_castps_pd($a), _mm512_castps_pd($b)))
                };
            }
            let u0 = pairs!(_mm512_unpacklo_pd, t0, t2);
            let u1 = pairs!(_mm512_unpackhi_pd, t0, t2);
            let u2 = pairs!(_mm512_unpacklo_pd, t1, t3);
            let u3 = pairs!(_mm512_unpackhi_pd, t1, t3);
            let u4 = pairs!(_mm512_unpacklo_pd, t4, t6);
            let u5 = pairs!(_mm512_unpackhi_pd, t4, t6);
            let u6 = pairs!(_mm512_unpacklo_pd, t5, t7);
            let u7 = pairs!(_mm512_unpackhi_pd, t5, t7);
            let u8 = pairs!(_mm512_unpacklo_pd, t8, t10);
            let u9 = pairs!(_mm512_unpackhi_pd, t8, t10);
            let u10 = pairs!(_mm512_unpacklo_pd, t9, t11);
            let u11 = pairs!(_mm512_unpackhi_pd, t9, t11);
            let u12 = pairs!(_mm512_unpacklo_pd, t12, t14);
            let u13 = pairs!(_mm512_unpackhi_pd, t12, t14);
            let u14 = pairs!(_mm512_unpacklo_pd, t13, t15);
            let u15 = pairs!(_mm512_unpackhi_pd, t13, t15);
            let v0 = _mm512_shuffle_f32x4::<0x88>(u0, u4);
            let v1 = _mm512_shuffle_f32x4::<0x88>(u1, u5);
            let v2 = _mm512_shuffle_f32x4::<0x88>(u2, u6);
            let v3 = _mm512_shuffle_f32x4::<0x88>(u3, u7);
            let v4 = _mm512_shuffle_f32x4::<0xdd>(u0, u4);
            let v5 = _mm512_shuffle_f32x4::<0xdd>(u1, u5);
            let v6 = _mm512_shuffle_f32x4::<0xdd>(u2, u6);
            let v7 = _mm512_shuffle_f32x4::<0xdd>(u3, u7);
            let v8 = _mm512_shuffle_f32x4::<0x88>(u8, u12);
            let v9 = _mm512_shuffle_f32x4::<0x88>(u9, u13);
            let v10 = _mm512_shuffle_f32x4::<0x88>(u10, u14);
            let v11 = _mm512_shuffle_f32x4::<0x88>(u11, u15);
            let v12 = _mm512_shuffle_f32x4::<0xdd>(u8, u12);
            let v13 = _mm512_shuffle_f32x4::<0xdd>(u9, u13);
            let v14 = _mm512_shuffle_f32x4::<0xdd>(u10, u14);
            let v15 = _mm512_shuffle_f32x4::<0xdd>(u11, u15);
            _mm512_storeu_ps(dst.add(0 * ds), _mm512_shuffle_f32x4::<0x88>(v0, v8));
            _mm512_storeu_ps(dst.add(1 * ds), _mm512_shuffle_f32x4::<0x88>(v1, v9));
            _mm512_storeu_ps(dst.add(2 * ds), _mm512_shuffle_f32x4::<0x88>(v2, v10));
            _mm512_storeu_ps(dst.add(3 * ds), _mm512_shuffle_f32x4::<0x88>(v3, v11));
            _mm512_storeu_ps(dst.add(4 * ds), _mm512_shuffle_f32x4::<0x88>(v4, v12));
            _mm512_storeu_ps(dst.add(5 * ds), _mm512_shuffle_f32x4::<0x88>(v5, v13));
            _mm512_storeu_ps(dst.add(6 * ds), _mm512_shuffle_f32x4::<0x88>(v6, v14));
            _mm512_storeu_ps(dst.add(7 * ds), _mm512_shuffle_f32x4::<0x88>(v7, v15));
            _mm512_storeu_ps(dst.add(8 * ds), _mm512_shuffle_f32x4::<0xdd>(v0, v8));
            _mm512_storeu_ps(dst.add(9 * ds), _mm512_shuffle_f32x4::<0xdd>(v1, v9));
            _mm512_storeu_ps(dst.add(10 * ds), _mm512_shuffle_f32x4::<0xdd>(v2, v10));
            _mm512_storeu_ps(dst.add(11 * ds), _mm512_shuffle_f32x4::<0xdd>(v3, v11));
            _mm512_storeu_ps(dst.add(12 * ds), _mm512_shuffle_f32x4::<0xdd>(v4, v12));
            _mm512_storeu_ps(dst.add(13 * ds), _mm512_shuffle_f32x4::<0xdd>(v5, v13));
            _mm512_storeu_ps(dst.add(14 * ds), _mm512_shuffle_f32x4::<0xdd>(v6, v14));
            _mm512_storeu_ps(dst.add(15 * ds), _mm512_shuffle_f32x4::<0xdd>(v7, v15));
        }
    }

    /// [`Vector::transpose`] of 8 x 8 `f32` in ymm registers (`unpack`, `shuffle_ps`,
    /// `permute2f128`: 24 shuffles for 64 elements).
    ///
    /// # Safety
    /// AVX, and the blocks of [`Vector::transpose`].
    #[inline(always)]
    #[allow(clippy::erasing_op, clippy::identity_op)] // the unrolled rows 0 and 1
    unsafe fn transpose8(src: *const f32, ss: usize, dst: *mut f32, ds: usize) {
        // SAFETY: the caller's contract (AVX on, 8 rows of 8 at `src` and `dst`).
        unsafe {
            let r0 = _mm256_loadu_ps(src.add(0 * ss));
            let r1 = _mm256_loadu_ps(src.add(1 * ss));
            let r2 = _mm256_loadu_ps(src.add(2 * ss));
            let r3 = _mm256_loadu_ps(src.add(3 * ss));
            let r4 = _mm256_loadu_ps(src.add(4 * ss));
            let r5 = _mm256_loadu_ps(src.add(5 * ss));
            let r6 = _mm256_loadu_ps(src.add(6 * ss));
            let r7 = _mm256_loadu_ps(src.add(7 * ss));
            let t0 = _mm256_unpacklo_ps(r0, r1);
            let t1 = _mm256_unpackhi_ps(r0, r1);
            let t2 = _mm256_unpacklo_ps(r2, r3);
            let t3 = _mm256_unpackhi_ps(r2, r3);
            let t4 = _mm256_unpacklo_ps(r4, r5);
            let t5 = _mm256_unpackhi_ps(r4, r5);
            let t6 = _mm256_unpacklo_ps(r6, r7);
            let t7 = _mm256_unpackhi_ps(r6, r7);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xee>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xee>(t5, t7);
            _mm256_storeu_ps(dst.add(0 * ds), _mm256_permute2f128_ps::<0x20>(u0, u4));
            _mm256_storeu_ps(dst.add(1 * ds), _mm256_permute2f128_ps::<0x20>(u1, u5));
            _mm256_storeu_ps(dst.add(2 * ds), _mm256_permute2f128_ps::<0x20>(u2, u6));
            _mm256_storeu_ps(dst.add(3 * ds), _mm256_permute2f128_ps::<0x20>(u3, u7));
            _mm256_storeu_ps(dst.add(4 * ds), _mm256_permute2f128_ps::<0x31>(u0, u4));
            _mm256_storeu_ps(dst.add(5 * ds), _mm256_permute2f128_ps::<0x31>(u1, u5));
            _mm256_storeu_ps(dst.add(6 * ds), _mm256_permute2f128_ps::<0x31>(u2, u6));
            _mm256_storeu_ps(dst.add(7 * ds), _mm256_permute2f128_ps::<0x31>(u3, u7));
        }
    }

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
         $stream:ident, $fma:ident, $add:ident, $mul:ident, $sub:ident, $div:ident, $relu:expr,
         $transpose:expr) => {
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
                unsafe fn stream(self, p: *mut $t) {
                    // SAFETY: the trait's contract (see the macro), `p` aligned to the
                    // vector's size.
                    unsafe { $stream(p, self.0) }
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
                unsafe fn sub(self, b: Self) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $sub(self.0, b.0) })
                }
                #[inline(always)]
                unsafe fn div(self, b: Self) -> Self {
                    // SAFETY: the trait's contract (see the macro).
                    $ty(unsafe { $div(self.0, b.0) })
                }
                #[inline(always)]
                unsafe fn relu(self) -> Self {
                    let f: fn($reg) -> $reg = $relu;
                    $ty(f(self.0))
                }
                #[inline(always)]
                unsafe fn transpose(src: *const $t, ss: usize, dst: *mut $t, ds: usize) {
                    // SAFETY: the trait's contract (see the macro).
                    unsafe { $transpose(src, ss, dst, ds) }
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
        _mm512_stream_ps,
        _mm512_fmadd_ps,
        _mm512_add_ps,
        _mm512_mul_ps,
        _mm512_sub_ps,
        _mm512_div_ps,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX-512.
        |v| unsafe { _mm512_max_ps(_mm512_setzero_ps(), v) },
        transpose16
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
        _mm512_stream_pd,
        _mm512_fmadd_pd,
        _mm512_add_pd,
        _mm512_mul_pd,
        _mm512_sub_pd,
        _mm512_div_pd,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX-512.
        |v| unsafe { _mm512_max_pd(_mm512_setzero_pd(), v) },
        transpose8_f64
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
        _mm256_stream_ps,
        _mm256_fmadd_ps,
        _mm256_add_ps,
        _mm256_mul_ps,
        _mm256_sub_ps,
        _mm256_div_ps,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX2.
        |v| unsafe { _mm256_max_ps(_mm256_setzero_ps(), v) },
        transpose8
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
        _mm256_stream_pd,
        _mm256_fmadd_pd,
        _mm256_add_pd,
        _mm256_mul_pd,
        _mm256_sub_pd,
        _mm256_div_pd,
        // SAFETY: reached only from `Vector::relu`, whose contract gives AVX2.
        |v| unsafe { _mm256_max_pd(_mm256_setzero_pd(), v) },
        transpose4_f64
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

    /// Transposes a `LANES x LANES` block out of a larger strided one and back.
    struct RoundTrip<'a, T>(&'a [T]);
    impl<T: SimdReal> WithVector<T> for RoundTrip<'_, T> {
        type Out = (Vec<T>, Vec<T>, usize);
        #[inline(always)]
        fn call<V: Vector<Elem = T>>(self) -> (Vec<T>, Vec<T>, usize) {
            let l = V::LANES;
            let (ss, ds) = (l + 3, l + 5);
            let mut t = vec![T::ZERO; l * ds];
            let mut back = vec![T::ZERO; l * ss];
            // SAFETY: dispatch runs this at a level the CPU has; `self.0` holds `l` rows of
            // `ss >= l`, `t` `l` rows of `ds`, `back` `l` rows of `ss`.
            unsafe {
                V::transpose(self.0.as_ptr(), ss, t.as_mut_ptr(), ds);
                V::transpose(t.as_ptr(), ds, back.as_mut_ptr(), ss);
            }
            (t, back, l)
        }
    }

    fn transposes_at_every_level<T: SimdReal>(of: fn(usize) -> T) {
        super::super::with_each_level(|level| {
            let src: Vec<T> = (0..16 * 19).map(of).collect();
            let (t, back, l) = dispatch(RoundTrip(&src));
            let (ss, ds) = (l + 3, l + 5);
            for i in 0..l {
                for j in 0..l {
                    assert!(t[j * ds + i] == src[i * ss + j], "{level:?} ({i}, {j})");
                    assert!(back[i * ss + j] == src[i * ss + j], "{level:?} ({i}, {j})");
                }
            }
        });
    }

    #[test]
    fn transposes_float32_and_float64_blocks() {
        transposes_at_every_level::<f32>(|i| i as f32);
        transposes_at_every_level::<f64>(|i| i as f64 - 100.0);
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
