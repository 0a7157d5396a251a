//! Row kernels of the direct correlation: given the extended input rows of a block in a ring
//! buffer, compute one or two output rows.
//!
//! The generic kernel relies on the compiler's auto-vectorisation. f32 and f64 also have
//! explicit AVX2+FMA kernels (chosen at run time after CPU feature detection) that keep
//! 2 x 6 vector accumulators in registers and reuse every loaded input vector for two output
//! rows.

use num_complex::Complex;

use crate::base::scalar::Elem;
use crate::base::simd::{has_avx2_fma, simd_twin};

/// The inputs of the row kernels.
pub struct Geometry<'a, T> {
    /// Extended input rows.
    pub ring: &'a [T],
    /// `offs[a]`: where the extended row for kernel row `a` (of the first output row) starts.
    /// Two-row calls need `kh + 1` entries.
    pub offs: &'a [usize],
    /// Effective kernel, row-major `(kh, kw)`.
    pub keff: &'a [T],
    pub kh: usize,
    pub kw: usize,
    /// Write output tiles with non-temporal (streaming) stores where aligned: for outputs
    /// much larger than the caches, this saves reading every output line before writing it.
    pub stream: bool,
}

impl<T> Geometry<'_, T> {
    /// True when every ring row read for outputs `0..ow` (tiles of `tw`) lies inside `ring`.
    pub fn in_bounds(&self, rows: usize, ow: usize, tw: usize) -> bool {
        let span = ow.div_ceil(tw) * tw + self.kw.saturating_sub(1);
        self.offs.len() >= rows
            && self.offs[..rows]
                .iter()
                .all(|&o| o.checked_add(span).is_some_and(|e| e <= self.ring.len()))
            && self.keff.len() >= self.kh * self.kw
    }
}

/// Tile width of the generic kernel, by element size.
pub const fn generic_tile(size: usize) -> usize {
    match size {
        1 | 2 | 4 => 64,
        8 => 32,
        _ => 8,
    }
}

/// The widest tile any kernel reads (ring rows must allow this much overhang).
pub const MAX_TILE: usize = 64;

/// The row kernel of each scalar type: compute output row `out0` (and `out1`, the next one,
/// if given) of a correlation. The generic kernel by default; f32 and f64 use the explicit
/// AVX2+FMA kernels when the CPU has them.
pub trait RowKernel: Elem {
    fn rows(g: &Geometry<'_, Self>, out0: &mut [Self], out1: Option<&mut [Self]>) {
        generic_rows_best(g, out0, out1)
    }
}

macro_rules! generic_row_kernel {
    ($($t:ty),*) => {$( impl RowKernel for $t {} )*};
}
generic_row_kernel!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    u64,
    Complex<f32>,
    Complex<f64>
);

macro_rules! simd_row_kernel {
    ($($t:ty),*) => {$(
        impl RowKernel for $t {
            fn rows(g: &Geometry<'_, Self>, out0: &mut [Self], out1: Option<&mut [Self]>) {
                #[cfg(target_arch = "x86_64")]
                if has_avx2_fma() {
                    // SAFETY: AVX2 and FMA were detected on this CPU.
                    unsafe {
                        match out1 {
                            Some(out1) => avx2::two_rows(g, out0, out1),
                            None => avx2::one_row(g, out0),
                        }
                    }
                    return;
                }
                generic_rows_best(g, out0, out1)
            }
        }
    )*};
}
simd_row_kernel!(f32, f64);

simd_twin! {
    /// The generic kernels, compiled for AVX2 when the CPU has it.
    pub fn generic_rows_best<T: Elem>(g: &Geometry<'_, T>, out0: &mut [T], out1: Option<&mut [T]>) = generic_rows;
}

/// Generic kernels: each output row on its own (the second one reads the ring one row down).
#[inline(always)]
pub fn generic_rows<T: Elem>(g: &Geometry<'_, T>, out0: &mut [T], out1: Option<&mut [T]>) {
    one_row_dispatch(g, out0);
    if let Some(out1) = out1 {
        let g1 = Geometry {
            ring: g.ring,
            offs: &g.offs[1..],
            keff: g.keff,
            kh: g.kh,
            kw: g.kw,
            stream: g.stream,
        };
        one_row_dispatch(&g1, out1);
    }
}

#[inline(always)]
fn one_row_dispatch<T: Elem>(g: &Geometry<'_, T>, out: &mut [T]) {
    match generic_tile(std::mem::size_of::<T>()) {
        64 => one_row::<T, 64>(g, out),
        32 => one_row::<T, 32>(g, out),
        _ => one_row::<T, 8>(g, out),
    }
}

/// `TW` outputs accumulate over all taps (kernel rows, then columns, ascending).
#[inline(always)]
fn one_row<T: Elem, const TW: usize>(g: &Geometry<'_, T>, out: &mut [T]) {
    let ow = out.len();
    assert!(
        g.in_bounds(g.kh, ow, TW),
        "ring too short for the row kernel"
    );
    let mut j0 = 0;
    while j0 < ow {
        let mut acc = [T::ZERO; TW];
        for a in 0..g.kh {
            for b in 0..g.kw {
                let w = g.keff[a * g.kw + b];
                let start = g.offs[a] + j0 + b;
                let src: &[T; TW] = match g.ring[start..start + TW].try_into() {
                    Ok(s) => s,
                    Err(_) => unreachable!("a slice of length TW"),
                };
                for l in 0..TW {
                    acc[l] = T::madd(acc[l], w, src[l]);
                }
            }
        }
        let n = TW.min(ow - j0);
        out[j0..j0 + n].copy_from_slice(&acc[..n]);
        j0 += TW;
    }
}

/// Explicit AVX2+FMA kernels for f32 and f64.
#[cfg(target_arch = "x86_64")]
pub mod avx2 {
    use super::Geometry;
    use std::arch::x86_64::*;

    /// A float type with an AVX2 vector of `N` lanes.
    ///
    /// # Safety
    /// Every method needs a CPU with AVX2 and FMA; `loadu`/`storeu` need `N` valid elements
    /// at the pointer.
    #[allow(clippy::missing_safety_doc)]
    pub trait Lane: Copy + Default {
        type V: Copy;
        const N: usize;
        unsafe fn zero() -> Self::V;
        unsafe fn splat(x: Self) -> Self::V;
        unsafe fn loadu(p: *const Self) -> Self::V;
        unsafe fn storeu(p: *mut Self, v: Self::V);
        /// Non-temporal store; `p` must be 32-byte aligned.
        unsafe fn stream(p: *mut Self, v: Self::V);
        /// `acc + w * x`, fused.
        unsafe fn fma(w: Self::V, x: Self::V, acc: Self::V) -> Self::V;
    }

    impl Lane for f32 {
        type V = __m256;
        const N: usize = 8;
        #[inline(always)]
        unsafe fn zero() -> __m256 {
            // SAFETY: the caller guarantees AVX2 and FMA (the trait's contract).
            unsafe { _mm256_setzero_ps() }
        }
        #[inline(always)]
        unsafe fn splat(x: f32) -> __m256 {
            // SAFETY: the caller guarantees AVX2 and FMA (the trait's contract).
            unsafe { _mm256_set1_ps(x) }
        }
        #[inline(always)]
        unsafe fn loadu(p: *const f32) -> __m256 {
            // SAFETY: AVX2, and `N` valid elements at `p` (the trait's contract).
            unsafe { _mm256_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn storeu(p: *mut f32, v: __m256) {
            // SAFETY: AVX2, and `N` valid elements at `p` (the trait's contract).
            unsafe { _mm256_storeu_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn stream(p: *mut f32, v: __m256) {
            // SAFETY: AVX2, and `N` valid elements at the 32-byte aligned `p` (the trait's
            // contract).
            unsafe { _mm256_stream_ps(p, v) }
        }
        #[inline(always)]
        unsafe fn fma(w: __m256, x: __m256, acc: __m256) -> __m256 {
            // SAFETY: the caller guarantees AVX2 and FMA (the trait's contract).
            unsafe { _mm256_fmadd_ps(w, x, acc) }
        }
    }

    impl Lane for f64 {
        type V = __m256d;
        const N: usize = 4;
        #[inline(always)]
        unsafe fn zero() -> __m256d {
            // SAFETY: the caller guarantees AVX2 and FMA (the trait's contract).
            unsafe { _mm256_setzero_pd() }
        }
        #[inline(always)]
        unsafe fn splat(x: f64) -> __m256d {
            // SAFETY: the caller guarantees AVX2 and FMA (the trait's contract).
            unsafe { _mm256_set1_pd(x) }
        }
        #[inline(always)]
        unsafe fn loadu(p: *const f64) -> __m256d {
            // SAFETY: AVX2, and `N` valid elements at `p` (the trait's contract).
            unsafe { _mm256_loadu_pd(p) }
        }
        #[inline(always)]
        unsafe fn storeu(p: *mut f64, v: __m256d) {
            // SAFETY: AVX2, and `N` valid elements at `p` (the trait's contract).
            unsafe { _mm256_storeu_pd(p, v) }
        }
        #[inline(always)]
        unsafe fn stream(p: *mut f64, v: __m256d) {
            // SAFETY: AVX2, and `N` valid elements at the 32-byte aligned `p` (the trait's
            // contract).
            unsafe { _mm256_stream_pd(p, v) }
        }
        #[inline(always)]
        unsafe fn fma(w: __m256d, x: __m256d, acc: __m256d) -> __m256d {
            // SAFETY: the caller guarantees AVX2 and FMA (the trait's contract).
            unsafe { _mm256_fmadd_pd(w, x, acc) }
        }
    }

    /// Vectors per tile of the two-row kernel (2 x 6 accumulators + 1 input + 2 weights
    /// fit the 16 AVX2 registers).
    const V2: usize = 6;
    /// Vectors per tile of the one-row kernel.
    const V1: usize = 8;

    /// Store `acc` to `out[j0..]`, clipped to `out.len()`.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `j0 <= out.len()`; `V * N <= 64`.
    #[inline(always)]
    unsafe fn store_tile<L: Lane, const V: usize>(
        out: &mut [L],
        j0: usize,
        acc: &[L::V; V],
        stream: bool,
    ) {
        let tw = V * L::N;
        if j0 + tw <= out.len() {
            // SAFETY: `j0 + tw <= out.len()`, so the tile's `V` vectors of `N` lanes lie in
            // `out`; AVX2 is the caller's contract; `stream` only at 32-byte alignment.
            unsafe {
                let p = out.as_mut_ptr().add(j0);
                if stream && (p as usize).is_multiple_of(32) {
                    for (v, a) in acc.iter().enumerate() {
                        L::stream(p.add(v * L::N), *a);
                    }
                    return;
                }
                for (v, a) in acc.iter().enumerate() {
                    L::storeu(p.add(v * L::N), *a);
                }
            }
        } else {
            let mut tmp = [L::default(); 64];
            for (v, a) in acc.iter().enumerate() {
                // SAFETY: `V * N <= 64` elements of `tmp`; AVX2 is the caller's contract.
                unsafe { L::storeu(tmp.as_mut_ptr().add(v * L::N), *a) };
            }
            let n = out.len() - j0;
            out[j0..].copy_from_slice(&tmp[..n]);
        }
    }

    /// `acc[v] += w * ring[p + v * N ..]` for every vector of the tile.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA; `V * N` valid elements at `p`.
    #[inline(always)]
    unsafe fn fma_row<L: Lane, const V: usize>(acc: &mut [L::V; V], w: L::V, p: *const L) {
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: vector v lies in the `V * N` elements at `p` (the caller's contract).
            *a = unsafe { L::fma(w, L::loadu(p.add(v * L::N)), *a) };
        }
    }

    /// One output row, tiles of `V1` vectors.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn one_row<L: Lane>(g: &Geometry<'_, L>, out: &mut [L]) {
        let ow = out.len();
        let tw = V1 * L::N;
        assert!(
            g.in_bounds(g.kh, ow, tw),
            "ring too short for the row kernel"
        );
        // SAFETY: the CPU has AVX2 and FMA (the caller's contract); `in_bounds` checked that
        // every tile read (ring rows offs[a] + j0 + b, `V1 * N` lanes) lies inside the ring and
        // that keff holds kh * kw taps; stores are clipped to `out` by `store_tile`.
        unsafe {
            let ring = g.ring.as_ptr();
            let mut j0 = 0;
            while j0 < ow {
                let mut acc = [L::zero(); V1];
                for a in 0..g.kh {
                    let row = ring.add(g.offs[a] + j0);
                    for b in 0..g.kw {
                        let w = L::splat(*g.keff.get_unchecked(a * g.kw + b));
                        fma_row(&mut acc, w, row.add(b));
                    }
                }
                store_tile(out, j0, &acc, g.stream);
                j0 += tw;
            }
            if g.stream {
                // Order the streaming stores before anything that publishes the output.
                _mm_sfence();
            }
        }
    }

    /// Two consecutive output rows: each input vector loaded feeds kernel row `a` of the
    /// first output row and kernel row `a - 1` of the second. Every output sums its taps in
    /// the same order as [`one_row`], so both give identical values.
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn two_rows<L: Lane>(g: &Geometry<'_, L>, out0: &mut [L], out1: &mut [L]) {
        let ow = out0.len().min(out1.len());
        let tw = V2 * L::N;
        let (kh, kw) = (g.kh, g.kw);
        assert!(
            g.in_bounds(kh + 1, ow, tw),
            "ring too short for the row kernel"
        );
        // SAFETY: the CPU has AVX2 and FMA (the caller's contract); `in_bounds` checked that
        // every tile read (ring rows offs[0..=kh] + j0 + b, `V2 * N` lanes) lies inside the
        // ring and that keff holds kh * kw taps; stores are clipped by `store_tile`.
        unsafe {
            let ring = g.ring.as_ptr();
            let k = g.keff.as_ptr();
            let mut j0 = 0;
            while j0 < ow {
                let mut acc0 = [L::zero(); V2];
                let mut acc1 = [L::zero(); V2];
                let row = ring.add(g.offs[0] + j0);
                for b in 0..kw {
                    fma_row(&mut acc0, L::splat(*k.add(b)), row.add(b));
                }
                for a in 1..kh {
                    let row = ring.add(g.offs[a] + j0);
                    for b in 0..kw {
                        let w0 = L::splat(*k.add(a * kw + b));
                        let w1 = L::splat(*k.add((a - 1) * kw + b));
                        let p = row.add(b);
                        for v in 0..V2 {
                            let x = L::loadu(p.add(v * L::N));
                            acc0[v] = L::fma(w0, x, acc0[v]);
                            acc1[v] = L::fma(w1, x, acc1[v]);
                        }
                    }
                }
                let row = ring.add(g.offs[kh] + j0);
                for b in 0..kw {
                    fma_row(&mut acc1, L::splat(*k.add((kh - 1) * kw + b)), row.add(b));
                }
                store_tile(out0, j0, &acc0, g.stream);
                store_tile(out1, j0, &acc1, g.stream);
                j0 += tw;
            }
            if g.stream {
                // Order the streaming stores before anything that publishes the output.
                _mm_sfence();
            }
        }
    }
}
