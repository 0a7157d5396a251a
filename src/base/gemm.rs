//! GEMM glue: the one entry point to the `gemm` crate. Always single-threaded: callers split
//! the work with rayon (the crate's own threading scales poorly at small M).

use gemm::Parallelism;

use crate::base::real::Real;

/// `C[m x n] (+)= A[m x k] * B[k x n]`, single-threaded; strides in elements, C has unit column
/// stride and row stride `ldc`.
///
/// # Safety
/// All three matrices must be valid for the given shapes and strides, and C must not alias A
/// or B nor be written by anyone else during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_into<T: Real>(
    m: usize,
    n: usize,
    k: usize,
    c: *mut T,
    ldc: usize,
    accumulate: bool,
    a: *const T,
    a_rs: usize,
    a_cs: usize,
    b: *const T,
    b_rs: usize,
    b_cs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::slice::from_raw_parts_mut(c.add(i * ldc), n).fill(T::ZERO);
            }
        }
        return;
    }
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        ldc as isize,
        accumulate,
        a,
        a_cs as isize,
        a_rs as isize,
        b,
        b_cs as isize,
        b_rs as isize,
        T::ONE,
        T::ONE,
        false,
        false,
        false,
        Parallelism::None,
    )
}
