//! The element types of ndimage's arrays, read as float64 and written from float64 as
//! scipy's C code writes them: `(type)double`, compiled for x86-64.
//!
//! C leaves an out-of-range float-to-integer conversion undefined; scipy's x86-64 wheels
//! execute `cvttsd2si`: truncation toward zero, and the integer-indefinite pattern (the
//! lowest value) for NaN, infinities and values outside the conversion's range. 8- and 16-bit
//! types, int32 and bool keep the low bits of a 32-bit conversion; uint32 and int64 those of
//! a 64-bit one; uint64 uses the compiler's two-branch sequence around 2^63. scipy's n-D
//! correlation writes unsigned outputs through `x > -1 ? (T)x : -(T)(-x)`, which changes
//! only uint64 ([`Out::Uint64Negated`]).

/// The element type of an array (bool travels as uint8: the same bytes either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    U64,
    I64,
    F32,
    F64,
}

impl Kind {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Kind::U8 | Kind::I8 => 1,
            Kind::U16 | Kind::I16 => 2,
            Kind::U32 | Kind::I32 | Kind::F32 => 4,
            Kind::U64 | Kind::I64 | Kind::F64 => 8,
        }
    }
}

/// How float64 results are written to uint64: the 1-D passes cast directly, the n-D
/// correlation negates the cast of `-x` for `x <= -1` (and NaN).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Out {
    Direct,
    Uint64Negated,
}

/// `(int32_t)x` as `cvttsd2si` computes it.
#[inline(always)]
pub fn cvt32(x: f64) -> i32 {
    if x > -2147483649.0 && x < 2147483648.0 {
        // SAFETY: finite, and its truncation is in range (checked): one cvttsd2si, not Rust's
        // saturating conversion
        unsafe { x.to_int_unchecked::<i32>() }
    } else {
        i32::MIN
    }
}

/// `(int64_t)x` as `cvttsd2si` (64-bit) computes it.
#[inline(always)]
pub fn cvt64(x: f64) -> i64 {
    if (-9223372036854775808.0..9223372036854775808.0).contains(&x) {
        // SAFETY: finite, and its truncation is in range (checked)
        unsafe { x.to_int_unchecked::<i64>() }
    } else {
        i64::MIN
    }
}

/// `(uint64_t)x` as x86-64 compilers emit it: below 2^63 (or NaN) one conversion, else the
/// conversion of `x - 2^63` with the top bit flipped.
#[inline(always)]
pub fn cvt_u64(x: f64) -> u64 {
    const TOP: f64 = 9223372036854775808.0;
    if x >= TOP {
        (cvt64(x - TOP) as u64) ^ (1u64 << 63)
    } else {
        cvt64(x) as u64
    }
}

/// An element type: read as float64 exactly, written as C's `(type)double`.
pub trait Elem: Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;
    fn from_f64(x: f64, out: Out) -> Self;
}

macro_rules! elems {
    ($($t:ty => |$x:ident, $o:ident| $e:expr),* $(,)?) => {$(
        impl Elem for $t {
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn from_f64($x: f64, $o: Out) -> Self {
                $e
            }
        }
    )*};
}

elems! {
    u8 => |x, _o| cvt32(x) as u8,
    i8 => |x, _o| cvt32(x) as i8,
    u16 => |x, _o| cvt32(x) as u16,
    i16 => |x, _o| cvt32(x) as i16,
    u32 => |x, _o| cvt64(x) as u32,
    i32 => |x, _o| cvt32(x),
    u64 => |x, o| match o {
        // `x > -1 ? (T)x : -(T)(-x)`: NaN takes the second branch
        Out::Uint64Negated if x.is_nan() || x <= -1.0 => cvt_u64(-x).wrapping_neg(),
        _ => cvt_u64(x),
    },
    i64 => |x, _o| cvt64(x),
    f32 => |x, _o| x as f32,
    f64 => |x, _o| x,
}

/// Run `$body` with `$T` bound to the Rust type of the [`Kind`] `$k`: the one place the
/// kernels' element types are dispatched (the binding maps NumPy's dtypes to a [`Kind`]).
macro_rules! with_kind {
    ($k:expr, $T:ident => $body:expr) => {
        with_kind!(@arms $k, $T, $body, U8 u8, I8 i8, U16 u16, I16 i16, U32 u32, I32 i32,
                   U64 u64, I64 i64, F32 f32, F64 f64)
    };
    (@arms $k:expr, $T:ident, $body:expr, $($v:ident $t:ty),*) => {
        match $k {
            $(Kind::$v => {
                type $T = $t;
                $body
            })*
        }
    };
}

use crate::base::simd::{dispatch, simd_twin, Vector, WithVector};

/// `dst[r * ld + j] = ` the element at `p + r * rs + j * ls` (bytes) as float64, for `r <
/// rows`, `j < lanes`: rows of a block of lines (lanes contiguous: runs converted at full
/// width; positions contiguous: each line read in runs of 8 positions).
///
/// # Safety
/// Each of those elements must be a valid, aligned element of `kind` that nothing writes
/// during the call; `dst` must hold `(rows - 1) * ld + lanes` values (checked).
#[inline]
pub unsafe fn read_block(
    kind: Kind,
    p: *const u8,
    (rs, ls): (isize, isize),
    (rows, lanes): (usize, usize),
    dst: &mut [f64],
    ld: usize,
) {
    if rows == 0 || lanes == 0 {
        return;
    }
    assert!(lanes <= ld || rows == 1, "read_block: lanes overlap");
    assert!(
        dst.len() >= (rows - 1) * ld + lanes,
        "read_block: destination too short"
    );
    // SAFETY: the caller's contract, and `dst` is long enough (checked).
    with_kind!(kind, T => unsafe { read_block_t::<T>(p as *const T, (rs, ls), (rows, lanes), dst.as_mut_ptr(), ld) })
}

simd_twin! {
    /// [`read_block`] for one element type.
    unsafe fn read_block_t<T: Elem>(
        p: *const T, strides: (isize, isize), dims: (usize, usize), dst: *mut f64, ld: usize
    ) = read_block_imp;
}

/// Positions per run of a transposed read or write.
const P: usize = 64;
/// Lanes per run of a transposed read or write.
const MAX_LANES: usize = 32;

/// `dst[c * ld + r] = src[r * ss + c]` for the `rows x cols` block at `src` (row pitch `ss`):
/// `V::LANES`-square blocks by [`Vector::transpose`] at the process's level, the edges
/// element by element.
pub fn transpose(src: &[f64], ss: usize, (rows, cols): (usize, usize), dst: &mut [f64], ld: usize) {
    struct T<'a> {
        src: &'a [f64],
        ss: usize,
        rows: usize,
        cols: usize,
        dst: &'a mut [f64],
        ld: usize,
    }
    impl WithVector<f64> for T<'_> {
        type Out = ();
        #[inline(always)]
        fn call<V: Vector<Elem = f64>>(self) {
            let T {
                src,
                ss,
                rows,
                cols,
                dst,
                ld,
            } = self;
            let l = V::LANES;
            let (fr, fc) = (rows - rows % l, cols - cols % l);
            for r in (0..fr).step_by(l) {
                for c in (0..fc).step_by(l) {
                    // SAFETY: rows r .. r + l, columns c .. c + l of `src` and the transposed
                    // block of `dst` lie inside the slices (checked by `transpose`); the CPU
                    // has `V`'s level.
                    unsafe {
                        V::transpose(
                            src.as_ptr().add(r * ss + c),
                            ss,
                            dst.as_mut_ptr().add(c * ld + r),
                            ld,
                        )
                    };
                }
            }
            for r in 0..rows {
                let cs = if r < fr { fc } else { 0 };
                for c in cs..cols {
                    dst[c * ld + r] = src[r * ss + c];
                }
            }
        }
    }
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * ss + cols && dst.len() >= (cols - 1) * ld + rows,
        "transpose: block outside its slices"
    );
    dispatch::<f64, _>(T {
        src,
        ss,
        rows,
        cols,
        dst,
        ld,
    });
}

/// # Safety
/// As [`read_block`].
#[inline(always)]
unsafe fn read_block_imp<T: Elem>(
    p: *const T,
    (rs, ls): (isize, isize),
    (rows, lanes): (usize, usize),
    dst: *mut f64,
    ld: usize,
) {
    let size = std::mem::size_of::<T>() as isize;
    let p = p as *const u8;
    let src = |r: usize, j: usize| p.wrapping_offset(r as isize * rs + j as isize * ls) as *const T;
    // SAFETY: every element read is an element of the block, and every value written is
    // inside `dst`: rows below `rows`, lanes below `lanes`, row pitch `ld` (the contract).
    unsafe {
        if lanes == 1 && rs == size && ld == 1 {
            let s = std::slice::from_raw_parts(p as *const T, rows);
            let d = std::slice::from_raw_parts_mut(dst, rows);
            for (d, s) in d.iter_mut().zip(s) {
                *d = s.to_f64();
            }
        } else if ls == size {
            for r in 0..rows {
                let s = std::slice::from_raw_parts(src(r, 0), lanes);
                let d = std::slice::from_raw_parts_mut(dst.add(r * ld), lanes);
                for (d, s) in d.iter_mut().zip(s) {
                    *d = s.to_f64();
                }
            }
        } else if rs == size && lanes > 1 {
            // each lane is a contiguous line: runs of P positions per lane converted into
            // `tmp` (lane by lane), then transposed into the rows
            let mut tmp = [0.0f64; P * MAX_LANES];
            for j0 in (0..lanes).step_by(MAX_LANES) {
                let nl = MAX_LANES.min(lanes - j0);
                for r0 in (0..rows).step_by(P) {
                    let n = P.min(rows - r0);
                    for j in 0..nl {
                        let s = std::slice::from_raw_parts(src(r0, j0 + j), n);
                        for (d, v) in tmp[j * P..j * P + n].iter_mut().zip(s) {
                            *d = v.to_f64();
                        }
                    }
                    let d =
                        std::slice::from_raw_parts_mut(dst.add(r0 * ld + j0), (n - 1) * ld + nl);
                    transpose(&tmp, P, (nl, n), d, ld);
                }
            }
        } else {
            for r in 0..rows {
                for j in 0..lanes {
                    *dst.add(r * ld + j) = (*src(r, j)).to_f64();
                }
            }
        }
    }
}

/// Writes `src[r * ld + j]` to the element at `p + r * rs + j * ls` (bytes) as C's
/// `(type)double`, for `r < rows`, `j < lanes` (the transpose of [`read_block`]).
///
/// # Safety
/// Each of those elements must be a valid, aligned element of `kind` that nothing else reads
/// or writes during the call; `src` must hold `(rows - 1) * ld + lanes` values (checked).
#[inline]
#[allow(clippy::too_many_arguments)]
pub unsafe fn write_block(
    kind: Kind,
    p: *mut u8,
    (rs, ls): (isize, isize),
    (rows, lanes): (usize, usize),
    src: &[f64],
    ld: usize,
    out: Out,
) {
    if rows == 0 || lanes == 0 {
        return;
    }
    assert!(
        src.len() >= (rows - 1) * ld + lanes,
        "write_block: source too short"
    );
    // SAFETY: the caller's contract, and `src` is long enough (checked).
    with_kind!(kind, T => unsafe { write_block_t::<T>(p as *mut T, (rs, ls), (rows, lanes), src.as_ptr(), ld, out) })
}

simd_twin! {
    /// [`write_block`] for one element type.
    unsafe fn write_block_t<T: Elem>(
        p: *mut T, strides: (isize, isize), dims: (usize, usize), src: *const f64, ld: usize,
        out: Out
    ) = write_block_imp;
}

/// # Safety
/// As [`write_block`].
#[inline(always)]
unsafe fn write_block_imp<T: Elem>(
    p: *mut T,
    (rs, ls): (isize, isize),
    (rows, lanes): (usize, usize),
    src: *const f64,
    ld: usize,
    out: Out,
) {
    let size = std::mem::size_of::<T>() as isize;
    let p = p as *mut u8;
    let dst = |r: usize, j: usize| p.wrapping_offset(r as isize * rs + j as isize * ls) as *mut T;
    // SAFETY: every element written is an element of the block, this call's alone, and every
    // value read is inside `src`: rows below `rows`, lanes below `lanes`, pitch `ld` (the
    // contract).
    unsafe {
        if lanes == 1 && rs == size && ld == 1 {
            let d = std::slice::from_raw_parts_mut(p as *mut T, rows);
            let s = std::slice::from_raw_parts(src, rows);
            for (d, &s) in d.iter_mut().zip(s) {
                *d = T::from_f64(s, out);
            }
        } else if ls == size {
            for r in 0..rows {
                let s = std::slice::from_raw_parts(src.add(r * ld), lanes);
                let d = std::slice::from_raw_parts_mut(dst(r, 0), lanes);
                for (d, &s) in d.iter_mut().zip(s) {
                    *d = T::from_f64(s, out);
                }
            }
        } else if rs == size && lanes > 1 {
            // rows of P positions transposed into `tmp` (lane by lane), then each lane's
            // run converted into its contiguous line
            let mut tmp = [0.0f64; P * MAX_LANES];
            for j0 in (0..lanes).step_by(MAX_LANES) {
                let nl = MAX_LANES.min(lanes - j0);
                for r0 in (0..rows).step_by(P) {
                    let n = P.min(rows - r0);
                    let s = std::slice::from_raw_parts(src.add(r0 * ld + j0), (n - 1) * ld + nl);
                    transpose(s, ld, (n, nl), &mut tmp, P);
                    for j in 0..nl {
                        let d = std::slice::from_raw_parts_mut(dst(r0, j0 + j), n);
                        for (d, &v) in d.iter_mut().zip(&tmp[j * P..j * P + n]) {
                            *d = T::from_f64(v, out);
                        }
                    }
                }
            }
        } else {
            for r in 0..rows {
                for j in 0..lanes {
                    *dst(r, j) = T::from_f64(*src.add(r * ld + j), out);
                }
            }
        }
    }
}

/// Each value as it reads back after being stored as `kind` (C's `(type)double`, then the
/// exact conversion back): scipy's passes store each result in the output's type.
pub fn round_to(kind: Kind, v: &mut [f64]) {
    with_kind!(kind, T => round_to_t::<T>(v, std::marker::PhantomData))
}

simd_twin! {
    /// [`round_to`] for one element type.
    fn round_to_t<T: Elem>(v: &mut [f64], _type: std::marker::PhantomData<T>) {
        for x in v.iter_mut() {
            *x = T::from_f64(*x, Out::Direct).to_f64();
        }
    }
}

/// A run of `dst.len()` elements from `p`, `stride` bytes apart ([`read_block`] of one lane).
///
/// # Safety
/// As [`read_block`].
#[inline]
pub unsafe fn read_run(kind: Kind, p: *const u8, stride: isize, dst: &mut [f64]) {
    let n = dst.len();
    // SAFETY: the caller's contract.
    unsafe { read_block(kind, p, (stride, 0), (n, 1), dst, 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn casts_follow_cvttsd2si() {
        let v = [-2.6, 300.7, 5e9 + 7.0, f64::NAN];
        let got: Vec<u8> = v.iter().map(|&x| u8::from_f64(x, Out::Direct)).collect();
        assert_eq!(got, [254, 44, 0, 0]);
        assert_eq!(i32::from_f64(5e9 + 7.0, Out::Direct), i32::MIN);
        assert_eq!(u8::from_f64(2.7, Out::Direct), 2);
        assert_eq!(u32::from_f64(5e9 + 7.0, Out::Direct), 705032711);
        assert_eq!(u64::from_f64(f64::INFINITY, Out::Direct), 0);
        assert_eq!(u64::from_f64(f64::NAN, Out::Direct), 1 << 63);
        assert_eq!(u64::from_f64(-1e19, Out::Direct), 1 << 63);
        assert_eq!(
            u64::from_f64(-1e19, Out::Uint64Negated),
            8446744073709551616
        );
        assert_eq!(u64::from_f64(f64::NEG_INFINITY, Out::Uint64Negated), 0);
        assert_eq!(u64::from_f64(1e19, Out::Direct), 10000000000000000000);
        assert_eq!(f32::from_f64(0.1, Out::Direct), 0.1f32);
    }
}
