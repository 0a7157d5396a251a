//! Row kernels of the direct correlation: given the extended input rows of a block in a ring
//! buffer, compute one or two output rows.
//!
//! The generic kernel relies on the compiler's auto-vectorisation. f32 and f64 also have
//! hand-blocked kernels ([`vectored`], at the `avx2` and `avx512` levels, chosen at run time)
//! that keep 2 x 6 vector accumulators in registers and reuse every loaded input vector for
//! two output rows.

use num_complex::Complex;

use crate::base::scalar::Elem;
use crate::base::simd::{dispatch, has_avx2_fma, simd_twin};

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

/// The widest tile any kernel reads (ring rows must allow this much overhang): the one-row
/// kernel's 8 zmm vectors of f32.
pub const MAX_TILE: usize = 128;

/// The row kernel of each scalar type: compute output row `out0` (and `out1`, the next one,
/// if given) of a correlation. The generic kernel by default; f32 and f64 use the
/// hand-blocked [`vectored`] kernels at the `avx2` and `avx512` levels.
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
                if has_avx2_fma() {
                    dispatch(vectored::Rows { g, out0, out1 });
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

/// The hand-blocked kernels of f32 and f64, written once over the level's vector
/// ([`Vector`]) and run through [`dispatch`]: ymm registers at `avx2`, zmm at `avx512` (twice
/// the lanes, the same blocking: 2 x 6 accumulators and a tile of `6 * LANES` outputs per
/// row pair). Every output sums its taps in the same order with fused multiply-adds at both
/// levels, so they give identical values.
pub mod vectored {
    use super::{Geometry, MAX_TILE};
    use crate::base::simd::{SimdReal, Vector, WithVector};

    /// Vectors per tile of the two-row kernel (2 x 6 accumulators + 1 input + 2 weights
    /// fit AVX2's 16 registers).
    const V2: usize = 6;
    /// Vectors per tile of the one-row kernel.
    const V1: usize = 8;

    /// One or two output rows of a correlation, for [`crate::base::simd::dispatch`].
    pub struct Rows<'a, 'g, T> {
        pub g: &'a Geometry<'g, T>,
        pub out0: &'a mut [T],
        pub out1: Option<&'a mut [T]>,
    }

    impl<T: SimdReal> WithVector<T> for Rows<'_, '_, T> {
        type Out = ();
        #[inline(always)]
        fn call<V: Vector<Elem = T>>(self) {
            // SAFETY: `dispatch` runs this at a level the CPU has, V's.
            unsafe {
                match self.out1 {
                    Some(out1) => two_rows::<V>(self.g, self.out0, out1),
                    None => one_row::<V>(self.g, self.out0),
                }
            }
        }
    }

    /// Store `acc` to `out[j0..]`, clipped to `out.len()`.
    ///
    /// # Safety
    /// The CPU must support V's level; `j0 <= out.len()`; `W * LANES <= MAX_TILE`.
    #[inline(always)]
    unsafe fn store_tile<V: Vector, const W: usize>(
        out: &mut [V::Elem],
        j0: usize,
        acc: &[V; W],
        stream: bool,
    ) {
        let tw = W * V::LANES;
        let bytes = V::LANES * std::mem::size_of::<V::Elem>();
        if j0 + tw <= out.len() {
            // SAFETY: `j0 + tw <= out.len()`, so the tile's `W` vectors of `LANES` lanes lie
            // in `out`; the level is the caller's contract; `stream` only at vector alignment.
            unsafe {
                let p = out.as_mut_ptr().add(j0);
                if stream && (p as usize).is_multiple_of(bytes) {
                    for (v, a) in acc.iter().enumerate() {
                        a.stream(p.add(v * V::LANES));
                    }
                    return;
                }
                for (v, a) in acc.iter().enumerate() {
                    a.store(p.add(v * V::LANES));
                }
            }
        } else {
            let mut tmp = [<V::Elem as crate::base::scalar::Elem>::ZERO; MAX_TILE];
            for (v, a) in acc.iter().enumerate() {
                // SAFETY: `W * LANES <= MAX_TILE` elements of `tmp`; the level is the
                // caller's contract.
                unsafe { a.store(tmp.as_mut_ptr().add(v * V::LANES)) };
            }
            let n = out.len() - j0;
            out[j0..].copy_from_slice(&tmp[..n]);
        }
    }

    /// `acc[v] += w * ring[p + v * LANES ..]` for every vector of the tile.
    ///
    /// # Safety
    /// The CPU must support V's level; `W * LANES` valid elements at `p`.
    #[inline(always)]
    unsafe fn fma_row<V: Vector, const W: usize>(acc: &mut [V; W], w: V, p: *const V::Elem) {
        for (v, a) in acc.iter_mut().enumerate() {
            // SAFETY: vector v lies in the `W * LANES` elements at `p` (the caller's contract).
            *a = unsafe { w.fma(V::load(p.add(v * V::LANES)), *a) };
        }
    }

    /// Orders streaming stores before anything that publishes the output.
    #[inline(always)]
    fn fence() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `sfence` is SSE, part of the x86-64 baseline.
        unsafe {
            std::arch::x86_64::_mm_sfence()
        };
    }

    /// One output row, tiles of `V1` vectors.
    ///
    /// # Safety
    /// The CPU must support V's level.
    #[inline(always)]
    pub unsafe fn one_row<V: Vector>(g: &Geometry<'_, V::Elem>, out: &mut [V::Elem]) {
        let ow = out.len();
        let tw = V1 * V::LANES;
        assert!(
            tw <= MAX_TILE && g.in_bounds(g.kh, ow, tw),
            "ring too short for the row kernel"
        );
        // SAFETY: the CPU has V's level (the caller's contract); `in_bounds` checked that
        // every tile read (ring rows offs[a] + j0 + b, `V1 * LANES` lanes) lies inside the
        // ring and that keff holds kh * kw taps; stores are clipped to `out` by `store_tile`.
        unsafe {
            let ring = g.ring.as_ptr();
            let mut j0 = 0;
            while j0 < ow {
                let mut acc = [V::zero(); V1];
                for a in 0..g.kh {
                    let row = ring.add(g.offs[a] + j0);
                    for b in 0..g.kw {
                        let w = V::splat(*g.keff.get_unchecked(a * g.kw + b));
                        fma_row(&mut acc, w, row.add(b));
                    }
                }
                store_tile(out, j0, &acc, g.stream);
                j0 += tw;
            }
        }
        if g.stream {
            fence();
        }
    }

    /// Two consecutive output rows: each input vector loaded feeds kernel row `a` of the
    /// first output row and kernel row `a - 1` of the second. Every output sums its taps in
    /// the same order as [`one_row`], so both give identical values.
    ///
    /// # Safety
    /// The CPU must support V's level.
    #[inline(always)]
    pub unsafe fn two_rows<V: Vector>(
        g: &Geometry<'_, V::Elem>,
        out0: &mut [V::Elem],
        out1: &mut [V::Elem],
    ) {
        let ow = out0.len().min(out1.len());
        let tw = V2 * V::LANES;
        let (kh, kw) = (g.kh, g.kw);
        assert!(
            tw <= MAX_TILE && g.in_bounds(kh + 1, ow, tw),
            "ring too short for the row kernel"
        );
        // SAFETY: the CPU has V's level (the caller's contract); `in_bounds` checked that
        // every tile read (ring rows offs[0..=kh] + j0 + b, `V2 * LANES` lanes) lies inside
        // the ring and that keff holds kh * kw taps; stores are clipped by `store_tile`.
        unsafe {
            let ring = g.ring.as_ptr();
            let k = g.keff.as_ptr();
            let mut j0 = 0;
            while j0 < ow {
                let mut acc0 = [V::zero(); V2];
                let mut acc1 = [V::zero(); V2];
                let row = ring.add(g.offs[0] + j0);
                for b in 0..kw {
                    fma_row(&mut acc0, V::splat(*k.add(b)), row.add(b));
                }
                for a in 1..kh {
                    let row = ring.add(g.offs[a] + j0);
                    for b in 0..kw {
                        let w0 = V::splat(*k.add(a * kw + b));
                        let w1 = V::splat(*k.add((a - 1) * kw + b));
                        let p = row.add(b);
                        for v in 0..V2 {
                            let x = V::load(p.add(v * V::LANES));
                            acc0[v] = w0.fma(x, acc0[v]);
                            acc1[v] = w1.fma(x, acc1[v]);
                        }
                    }
                }
                let row = ring.add(g.offs[kh] + j0);
                for b in 0..kw {
                    fma_row(&mut acc1, V::splat(*k.add((kh - 1) * kw + b)), row.add(b));
                }
                store_tile(out0, j0, &acc0, g.stream);
                store_tile(out1, j0, &acc1, g.stream);
                j0 += tw;
            }
        }
        if g.stream {
            fence();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::real::Real;
    use crate::base::simd::{with_each_level, Level};
    use crate::base::testing::xorshift;

    /// Each output of row `row` as the hand-blocked kernels sum it: taps in row-major order,
    /// each a fused multiply-add (`fma(w, x, acc)`).
    fn fused_reference<T: Real>(
        g: &Geometry<'_, T>,
        row: usize,
        ow: usize,
        fma: fn(T, T, T) -> T,
    ) -> Vec<T> {
        (0..ow)
            .map(|j| {
                let mut acc = T::ZERO;
                for a in 0..g.kh {
                    for b in 0..g.kw {
                        acc = fma(g.keff[a * g.kw + b], g.ring[g.offs[a + row] + j + b], acc);
                    }
                }
                acc
            })
            .collect()
    }

    /// At `avx2` and `avx512` the hand-blocked kernels give every output the bits of the fused
    /// reference, one row or two, for widths around every tile size and kernels up to 9x9.
    fn levels_agree<T: RowKernel + Real>(fma: fn(T, T, T) -> T) {
        let mut next = xorshift(0x5eed_1234);
        let mut value = move || T::from_f64((next() % 2001) as f64 / 1000.0 - 1.0);
        with_each_level(|level| {
            if level < Level::Avx2 {
                return;
            }
            for &(kh, kw) in &[(1, 1), (3, 3), (2, 5), (7, 7), (9, 4)] {
                for ow in [1, 7, 31, 48, 64, 97, 128, 129, 300] {
                    let wp = ow + MAX_TILE + kw;
                    let ring: Vec<T> = (0..(kh + 2) * wp).map(|_| value()).collect();
                    let keff: Vec<T> = (0..kh * kw).map(|_| value()).collect();
                    let offs: Vec<usize> = (0..=kh).map(|a| a * wp + 1).collect();
                    let g = Geometry {
                        ring: &ring,
                        offs: &offs,
                        keff: &keff,
                        kh,
                        kw,
                        stream: false,
                    };
                    let what = format!("{level:?} {kh}x{kw} width {ow}");
                    let (mut o0, mut o1) = (vec![T::ZERO; ow], vec![T::ZERO; ow]);
                    T::rows(&g, &mut o0, Some(&mut o1));
                    assert!(o0 == fused_reference(&g, 0, ow, fma), "{what}, row 0");
                    assert!(o1 == fused_reference(&g, 1, ow, fma), "{what}, row 1");
                    let mut one = vec![T::ZERO; ow];
                    T::rows(&g, &mut one, None);
                    assert!(one == o0, "{what}, one row");
                }
            }
        });
    }

    #[test]
    fn float_kernels_are_exact_fused_sums_at_avx2_and_avx512() {
        levels_agree::<f32>(f32::mul_add);
        levels_agree::<f64>(f64::mul_add);
    }
}
