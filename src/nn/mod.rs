//! The torch.nn.functional domain: CNN layers over NCHW float32/float64 slices.
//!
//! - [`conv`]: conv2d, its gradients and the transposed convolution;
//! - [`pool`]: max, average, adaptive pooling, unpooling and their gradients;
//! - [`activation`]: elementwise activations and their gradients;
//! - [`linear`]: fully connected layers (one GEMM over the batch) and their gradients;
//! - [`norm`]: batch normalisation (batch statistics, running statistics, the output pass,
//!   eval mode) and its gradients;
//! - [`loss`]: cross-entropy and mean squared error, and their gradients;
//! - [`optim`]: optimizer steps in place (SGD, Adam, AdamW), one pass over all parameters.
//!
//! Homes for what comes next: more activations and fused kernels go in `activation`.

pub mod activation;
pub mod conv;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod pool;

/// For window tap `j` along one axis (dilation `d`, padding `pad`, stride `stride`): its
/// offset `off` (the tap of output `o` reads input `o * stride + off`) and the outputs
/// `lo..hi` (`lo <= hi <= out_len`) whose tap lies inside `0..in_len`. Shared by im2col,
/// col2im and the pooling kernels.
#[inline(always)]
pub(crate) fn tap_span(
    j: usize,
    (d, pad, stride): (usize, usize, usize),
    in_len: usize,
    out_len: usize,
) -> (isize, usize, usize) {
    let off = (j * d) as isize - pad as isize;
    let lo = if off >= 0 {
        0
    } else {
        ((-off) as usize).div_ceil(stride)
    };
    let hi = if (in_len as isize) > off {
        (((in_len as isize - off - 1) as usize) / stride + 1).min(out_len)
    } else {
        0
    };
    let lo = lo.min(out_len);
    (off, lo, hi.max(lo))
}
