//! The base every domain builds on: scalar traits ([`scalar`], [`real`]), the thread pool
//! ([`threads`]), helpers for parallel writers ([`par`]), CPU feature detection ([`simd`]), the
//! GEMM glue ([`gemm`]), the one error type ([`error`]), the named options ([`choice`]),
//! populating fresh outputs ([`mem`]) and vectorisable exp/tanh/sigmoid ([`vmath`]). Nothing here knows an engine or
//! Python.

pub mod choice;
pub mod error;
pub mod gemm;
pub mod mem;
pub mod par;
pub mod real;
pub mod scalar;
pub mod simd;
#[cfg(test)]
pub(crate) mod testing;
pub mod threads;
pub mod vmath;
