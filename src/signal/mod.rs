//! The scipy.signal domain: 2-D correlation and convolution with every mode, boundary and
//! dtype of `scipy.signal.correlate2d`/`convolve2d`.
//!
//! - [`params`]: the shape rules and options ([`params::Corr2dParams`]);
//! - [`direct`]: the direct engine (blocks of output rows over a ring of extended rows);
//! - [`row_kernels`]: the SIMD row kernels the direct engine (and depthwise convolution) run;
//! - [`fft`]: the overlap-save FFT engine for real floats, and its cost model;
//! - [`engine`]: `method='auto'`'s choice, and the FFT adapters for integers and complex;
//! - [`stack`]: stacks of images (`axes=`), one correlation per broadcast pair
//!   ([`params::StackParams`] holds their shape rules);
//! - [`separable`]: kernels of rank 1 as two 1-D passes (`method='separable'`);
//! - [`backward`]: the gradients of both arguments, for every mode and boundary.
//!
//! The binding layer calls [`engine`], which chooses the engine.

pub mod backward;
pub mod direct;
pub mod engine;
pub mod fft;
pub mod params;
pub mod row_kernels;
pub mod separable;
pub mod stack;
