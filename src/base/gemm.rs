//! GEMM glue: the one entry point to the `gemm` crate. Always single-threaded: callers split
//! the work with rayon (the crate's own threading scales poorly at small M).
//!
//! Matrices are passed as [`MatRef`] / [`MatMut`]: a pointer with its shape and strides,
//! built from a slice with a bounds check, so that [`gemm_into`] itself is safe.

use std::marker::PhantomData;

use gemm::Parallelism;

use crate::base::par::DisjointSlice;
use crate::base::real::Real;

/// Offset of the last element of a `rows x cols` matrix with strides `rs`, `cs` (the matrix
/// is empty when either dimension is 0).
fn last_offset(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<usize> {
    (rows > 0 && cols > 0).then(|| (rows - 1) * rs + (cols - 1) * cs)
}

/// A read-only `rows x cols` matrix inside a slice, with row and column strides in elements.
#[derive(Clone, Copy)]
pub(crate) struct MatRef<'a, T> {
    ptr: *const T,
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
    _borrow: PhantomData<&'a [T]>,
}

impl<'a, T> MatRef<'a, T> {
    /// The matrix whose element `(i, j)` is `s[i * rs + j * cs]`.
    ///
    /// # Panics
    /// If an element lies outside `s`.
    #[inline]
    pub(crate) fn new(s: &'a [T], (rows, cols): (usize, usize), (rs, cs): (usize, usize)) -> Self {
        if let Some(last) = last_offset(rows, cols, rs, cs) {
            assert!(last < s.len(), "MatRef out of bounds");
        }
        MatRef {
            ptr: s.as_ptr(),
            rows,
            cols,
            rs,
            cs,
            _borrow: PhantomData,
        }
    }
}

/// A writable `rows x cols` matrix with unit column stride and row stride `ld`.
pub(crate) struct MatMut<'a, T> {
    ptr: *mut T,
    rows: usize,
    cols: usize,
    ld: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

impl<'a, T> MatMut<'a, T> {
    /// The matrix whose element `(i, j)` is `s[i * ld + j]`.
    ///
    /// # Panics
    /// If an element lies outside `s`, or rows overlap (`cols > ld` with several rows).
    #[inline]
    pub(crate) fn new(s: &'a mut [T], (rows, cols): (usize, usize), ld: usize) -> Self {
        assert!(rows <= 1 || cols <= ld, "MatMut rows overlap");
        if let Some(last) = last_offset(rows, cols, ld, 1) {
            assert!(last < s.len(), "MatMut out of bounds");
        }
        MatMut {
            ptr: s.as_mut_ptr(),
            rows,
            cols,
            ld,
            _borrow: PhantomData,
        }
    }

    /// The block of `s` that starts at element `start` (a strided part of a buffer that
    /// several tasks write).
    ///
    /// # Safety
    /// As [`DisjointSlice::block`]: while the result lives, nothing else obtained from `s`
    /// may touch an element of the block.
    ///
    /// # Panics
    /// If the block is not inside `s`.
    #[inline]
    pub(crate) unsafe fn in_shared(
        s: &DisjointSlice<'a, T>,
        start: usize,
        (rows, cols): (usize, usize),
        ld: usize,
    ) -> Self {
        MatMut {
            // SAFETY: the caller guarantees the block is ours alone; `block` checks bounds.
            ptr: unsafe { s.block(start, rows, cols, ld) },
            rows,
            cols,
            ld,
            _borrow: PhantomData,
        }
    }
}

/// `C (+)= A * B`, single-threaded, for `A` of `m x k`, `B` of `k x n` and `C` of `m x n`.
///
/// # Panics
/// If the shapes do not agree.
pub(crate) fn gemm_into<T: Real>(
    c: MatMut<'_, T>,
    accumulate: bool,
    a: MatRef<'_, T>,
    b: MatRef<'_, T>,
) {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    assert!(
        a.rows == m && b.rows == k && b.cols == n,
        "gemm_into: shapes do not agree"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                // SAFETY: row i of C lies inside its buffer (checked when C was made) and C
                // is exclusively ours.
                unsafe { std::slice::from_raw_parts_mut(c.ptr.add(i * c.ld), n) }.fill(T::ZERO);
            }
        }
        return;
    }
    // SAFETY: the three matrices lie inside their buffers (checked when they were made), C is
    // borrowed mutably (or is a block nobody else touches) so it aliases neither A nor B.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.ptr,
            1,
            c.ld as isize,
            accumulate,
            a.ptr,
            a.cs as isize,
            a.rs as isize,
            b.ptr,
            b.cs as isize,
            b.rs as isize,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_product() {
        let a = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2x3
        let b = [1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3x2
        let mut c = [10.0f64; 4];
        gemm_into(
            MatMut::new(&mut c, (2, 2), 2),
            false,
            MatRef::new(&a, (2, 3), (3, 1)),
            MatRef::new(&b, (3, 2), (2, 1)),
        );
        assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn bounds_are_checked() {
        let a = [0.0f32; 5];
        let _ = MatRef::new(&a, (2, 3), (3, 1));
    }
}
