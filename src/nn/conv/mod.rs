//! 2-D convolution layers (torch.nn.functional semantics) for NCHW float32/float64 slices:
//! forward, input gradient (which is also the transposed convolution) and weight gradient.
//!
//! - [`params`]: the shape rules ([`ConvParams`], [`ConvTransposeParams`]);
//! - [`im2col`]: tiled im2col + GEMM, the general engine;
//! - [`depthwise`]: direct kernels for stride-1 depthwise layers;
//! - [`direct`]: the direct engine (register-blocked microkernels over blocked layouts);
//! - [`winograd`]: F(2x2, 3x3) for large 3x3 stride-1 layers;
//! - [`pad`]: the non-zero padding modes ([`params::PadMode`]) and their adjoints.
//!
//! This module chooses the engine; the engines know nothing of each other.

pub mod depthwise;
pub mod direct;
pub mod im2col;
pub mod pad;
pub mod params;
pub mod winograd;

pub use params::{ConvParams, ConvTransposeParams, Operands};

use crate::base::error::{check_len, Result};
use crate::base::real::Real;
use crate::signal::row_kernels::RowKernel;

use depthwise::{depthwise_backward_input, depthwise_backward_weight, depthwise_forward};
use im2col::{gemm_backward_input, gemm_backward_weight, gemm_forward};

/// Forward convolution: `out = conv(x, weight) + bias`. All slices are contiguous NCHW.
pub fn conv2d_forward<T: Real + RowKernel>(
    p: &ConvParams,
    op: Operands<'_, T>,
    out: &mut [T],
    threads: usize,
) -> Result<()> {
    check_len("input", op.x, p.input_shape().iter().product())?;
    check_len("weight", op.weight, p.weight_shape().iter().product())?;
    check_len("output", out, p.output_shape().iter().product())?;
    if let Some(b) = op.bias {
        check_len("bias", b, p.cout)?;
    }
    if out.is_empty() {
        return Ok(());
    }
    if p.is_direct_depthwise() {
        crate::base::threads::run(threads, || depthwise_forward(p, op, out, threads));
    } else if winograd::applies(p, std::mem::size_of::<T>()) && !winograd_disabled() {
        crate::base::threads::run(threads, || winograd::forward(p, op, out, threads));
    } else {
        crate::base::threads::run(threads, || gemm_forward(p, op, out, threads));
    }
    Ok(())
}

/// Input gradient: `dx = conv2d_input(dy, weight)`, i.e. the adjoint of the forward map
/// (also the transposed convolution of `dy`). `dx` is overwritten.
pub fn conv2d_backward_input<T: Real + RowKernel>(
    p: &ConvParams,
    dy: &[T],
    weight: &[T],
    dx: &mut [T],
    threads: usize,
) -> Result<()> {
    check_len("grad_output", dy, p.output_shape().iter().product())?;
    check_len("weight", weight, p.weight_shape().iter().product())?;
    check_len("grad_input", dx, p.input_shape().iter().product())?;
    if dx.is_empty() {
        return Ok(());
    }
    if p.cout == 0 || p.k_len() == 0 {
        dx.fill(T::ZERO); // no output channel (or no input channel) connects anything
        return Ok(());
    }
    if p.is_direct_depthwise() && p.pt < p.kh && p.pl < p.kw {
        crate::base::threads::run(threads, || {
            depthwise_backward_input(p, dy, weight, dx, threads)
        });
        return Ok(());
    }
    if let Some(q) = winograd_adjoint::<T>(p) {
        // The input gradient of a 3x3, stride-1 convolution is the 'full' correlation of the
        // output gradient with the kernels rotated by 180 degrees and transposed (in <-> out):
        // a forward 3x3 convolution, computed by Winograd when it is large enough.
        crate::base::threads::run(threads, || {
            winograd::forward_adjoint(&q, dy, weight, dx, threads)
        });
        return Ok(());
    }
    if let Some(q) = runs_adjoint(p) {
        // The same identity for any stride-1 ungrouped layer: on small planes the forward's
        // row-run im2col beats col2im's one scatter per (channel, tap, row).
        let wr = rotated_transposed(p, weight);
        let op = Operands::plain(dy, &wr);
        crate::base::threads::run(threads, || gemm_forward(&q, op, dx, threads));
        return Ok(());
    }
    dx.fill(T::ZERO);
    crate::base::threads::run(threads, || gemm_backward_input(p, dy, weight, dx, threads));
    Ok(())
}

/// For a stride-1 ungrouped convolution whose padding is at most the kernel's extent: the
/// forward convolution that gives its input gradient (`grad_output` in, kernels rotated by
/// 180 degrees and transposed, padding `d (k - 1) - p`), when the row-run forward computes it.
fn runs_adjoint(p: &ConvParams) -> Option<ConvParams> {
    let (eh, ew) = (p.dh * (p.kh.max(1) - 1), p.dw * (p.kw.max(1) - 1));
    let pads_ok = p.pt <= eh && p.pb <= eh && p.pl <= ew && p.pr <= ew;
    // With fewer input than output channels, col2im's GEMM (`cin kh kw` rows) is the better
    // shape: measured on a Zen 3 (1 thread, float32) 5x5 6->16 @14 0.63x and 3x3 16->64
    // @16 0.79x of col2im, against 1.3-1.9x for 3x3 64->16 @8-32 and 16->16 @8-32.
    let shape_ok = p.sh == 1 && p.sw == 1 && p.groups == 1 && p.cin >= p.cout;
    if !shape_ok || !pads_ok || p.is_pointwise() {
        return None;
    }
    let q = ConvParams::new(
        [p.n, p.cout, p.oh, p.ow],
        [p.cin, p.cout, p.kh, p.kw],
        (1, 1),
        (eh - p.pt, eh - p.pb, ew - p.pl, ew - p.pr),
        (p.dh, p.dw),
        1,
    )
    .ok()?;
    let fits = q.oh == p.h && q.ow == p.w;
    (fits && im2col::runs_applies(&q)).then_some(q)
}

/// `weight` (`cout x cin x kh x kw`) as `cin x cout x kh x kw`, each kernel rotated by 180
/// degrees: the kernels of the input gradient as a forward convolution.
fn rotated_transposed<T: Real>(p: &ConvParams, weight: &[T]) -> Vec<T> {
    let (cin, cout, taps) = (p.cin, p.cout, p.kh * p.kw);
    let mut wr = vec![T::ZERO; weight.len()];
    for co in 0..cout {
        for ci in 0..cin {
            let src = &weight[(co * cin + ci) * taps..][..taps];
            let dst = &mut wr[(ci * cout + co) * taps..][..taps];
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
    wr
}

/// For a 3x3, stride-1, dilation-1, ungrouped convolution with padding at most 2 on each side
/// whose input gradient Winograd would compute: the forward convolution that gives it
/// (`grad_output` in, kernels rotated and transposed, padding `2 - p`).
fn winograd_adjoint<T>(p: &ConvParams) -> Option<ConvParams> {
    let k3s1 = p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1;
    let pads_ok = p.pt <= 2 && p.pb <= 2 && p.pl <= 2 && p.pr <= 2;
    if !k3s1 || !pads_ok || p.groups != 1 || winograd_disabled() {
        return None;
    }
    let q = ConvParams::new(
        [p.n, p.cout, p.oh, p.ow],
        [p.cin, p.cout, 3, 3],
        (1, 1),
        (2 - p.pt, 2 - p.pb, 2 - p.pl, 2 - p.pr),
        (1, 1),
        1,
    )
    .ok()?;
    let fits = q.oh == p.h && q.ow == p.w;
    (fits && winograd::applies(&q, std::mem::size_of::<T>())).then_some(q)
}

/// `RCONV_NO_WINOGRAD` set (to anything): 3x3 layers go through im2col like the others
/// (read once).
pub(crate) fn winograd_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RCONV_NO_WINOGRAD").is_some())
}

/// Weight gradient: `dw = conv2d_weight(x, dy)`, summed over the batch. `dw` is overwritten.
pub fn conv2d_backward_weight<T: Real + RowKernel>(
    p: &ConvParams,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
    threads: usize,
) -> Result<()> {
    check_len("input", x, p.input_shape().iter().product())?;
    check_len("grad_output", dy, p.output_shape().iter().product())?;
    check_len("grad_weight", dw, p.weight_shape().iter().product())?;
    dw.fill(T::ZERO);
    if p.n == 0 || dw.is_empty() || p.oh * p.ow == 0 {
        return Ok(());
    }
    if p.is_direct_depthwise() {
        crate::base::threads::run(threads, || depthwise_backward_weight(p, x, dy, dw, threads));
        return Ok(());
    }
    let partials = crate::base::threads::run(threads, || gemm_backward_weight(p, x, dy, threads));
    for part in partials {
        for (d, s) in dw.iter_mut().zip(part) {
            *d += s;
        }
    }
    Ok(())
}

/// The bias gradient: `grad_output` (`[n, c, h, w]`) summed over batch and space, per
/// channel (accumulated in float64, in a fixed order).
pub fn bias_grad<T: Real>(dy: &[T], [n, c, h, w]: [usize; 4]) -> Vec<T> {
    let plane = h * w;
    let mut acc = vec![0f64; c];
    if plane == 0 {
        return vec![T::ZERO; c];
    }
    for img in dy.chunks_exact(c * plane).take(n) {
        for (a, p) in acc.iter_mut().zip(img.chunks_exact(plane)) {
            *a += p.iter().map(|v| v.to_f64()).sum::<f64>();
        }
    }
    acc.into_iter().map(T::from_f64).collect()
}

/// Add `bias[c]` to every element of channel `c` of `out` (`[n, c, h, w]`).
pub fn add_bias<T: Real>(out: &mut [T], bias: &[T], [_, c, h, w]: [usize; 4]) {
    let plane = h * w;
    if plane == 0 || c == 0 {
        return;
    }
    for img in out.chunks_exact_mut(c * plane) {
        for (p, &b) in img.chunks_exact_mut(plane).zip(bias) {
            for v in p {
                *v += b;
            }
        }
    }
}
