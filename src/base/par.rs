//! Helpers for rayon tasks that write disjoint parts of one output buffer.
//!
//! Where each task owns one contiguous chunk, callers use rayon's safe `par_chunks_mut`.
//! [`DisjointSlice`] is for the rest: tasks that own a strided block (rows of several
//! channels, columns of a tile) of one buffer. It keeps the buffer's length and borrow, so
//! every access is bounds-checked and cannot outlive the buffer; only disjointness across
//! tasks is left to the caller, and each call site says why it holds.

use std::marker::PhantomData;

/// A mutable slice that rayon tasks share, each writing its own disjoint parts.
pub struct DisjointSlice<'a, T> {
    ptr: *mut T,
    len: usize,
    _borrow: PhantomData<&'a mut [T]>,
}

// SAFETY: a `DisjointSlice` is a `&mut [T]` whose parts are handed to several threads; sending
// or sharing it is sound when `T` may be sent, because the `unsafe` accessors below require
// the parts that tasks hold at the same time to be disjoint.
unsafe impl<T: Send> Send for DisjointSlice<'_, T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for DisjointSlice<'_, T> {}

impl<'a, T> DisjointSlice<'a, T> {
    /// Shares `s` (mutably borrowed for as long as the result lives).
    pub fn new(s: &'a mut [T]) -> Self {
        DisjointSlice {
            ptr: s.as_mut_ptr(),
            len: s.len(),
            _borrow: PhantomData,
        }
    }

    /// The elements `start .. start + len`.
    ///
    /// # Safety
    /// While the result lives, no other reference or pointer obtained from this
    /// `DisjointSlice` (in any task) may overlap that range.
    ///
    /// # Panics
    /// If the range is not inside the slice.
    #[inline]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn range(&self, start: usize, len: usize) -> &'a mut [T] {
        assert!(
            start <= self.len && len <= self.len - start,
            "DisjointSlice::range out of bounds"
        );
        // SAFETY: the range is inside the borrowed slice (checked above), and the caller
        // guarantees no other live access overlaps it.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(start), len) }
    }

    /// A pointer to the row-major block of `rows` rows of `cols` elements, row stride `ld`,
    /// that starts at element `start` (for writers such as GEMM that take a strided block).
    ///
    /// # Safety
    /// While the pointer is used, no other access obtained from this `DisjointSlice` (in any
    /// task) may touch an element of the block; writes through it must stay in the block.
    ///
    /// # Panics
    /// If the block is not inside the slice.
    #[inline]
    pub unsafe fn block(&self, start: usize, rows: usize, cols: usize, ld: usize) -> *mut T {
        let end = match rows {
            0 => start,
            r => start + (r - 1) * ld + cols,
        };
        assert!(
            start <= self.len && end <= self.len && (rows <= 1 || cols <= ld),
            "DisjointSlice::block out of bounds"
        );
        // SAFETY: `start` is inside the borrowed slice (or one past its end), checked above.
        unsafe { self.ptr.add(start) }
    }
}

/// `f(scratch, t)` for every task `t` in `0..n`: in parallel when `parallel` (each rayon
/// worker making its scratch with `init`), else in order on this thread with one scratch.
/// The tasks must not depend on each other, so both give the same result.
pub fn for_each_task<S, I, F>(parallel: bool, n: usize, init: I, f: F)
where
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, usize) + Send + Sync,
{
    if parallel {
        use rayon::prelude::*;
        (0..n).into_par_iter().for_each_init(init, f);
    } else {
        let mut scratch = init();
        (0..n).for_each(|t| f(&mut scratch, t));
    }
}

/// `f(scratch, (index, chunk))` for the consecutive `size`-element chunks of `out`, as
/// [`for_each_task`] runs tasks (the last chunk may be shorter).
pub fn for_each_chunk<T, S, I, F>(parallel: bool, out: &mut [T], size: usize, init: I, f: F)
where
    T: Send,
    I: Fn() -> S + Send + Sync,
    F: Fn(&mut S, (usize, &mut [T])) + Send + Sync,
{
    if parallel {
        use rayon::prelude::*;
        out.par_chunks_mut(size).enumerate().for_each_init(init, f);
    } else {
        let mut scratch = init();
        out.chunks_mut(size)
            .enumerate()
            .for_each(|c| f(&mut scratch, c));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    #[test]
    fn tasks_write_disjoint_rows() {
        let mut v = vec![0u32; 12];
        let s = DisjointSlice::new(&mut v);
        (0..4usize).into_par_iter().for_each(|t| {
            // SAFETY: task t alone writes elements 3t .. 3t+3.
            let r = unsafe { s.range(3 * t, 3) };
            r.fill(t as u32);
        });
        assert_eq!(v, [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]);
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn range_is_checked() {
        let mut v = vec![0u8; 4];
        let s = DisjointSlice::new(&mut v);
        // SAFETY: no other access exists.
        let _ = unsafe { s.range(2, 3) };
    }

    #[test]
    #[should_panic(expected = "out of bounds")]
    fn block_is_checked() {
        let mut v = vec![0u8; 10];
        let s = DisjointSlice::new(&mut v);
        // SAFETY: no other access exists.
        let _ = unsafe { s.block(1, 3, 2, 4) };
    }
}
