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
//! [`cost`] chooses the engine of each pass ([`ConvParams::engine`]); this module runs it; the
//! engines know nothing of each other.

pub mod cost;
pub mod depthwise;
pub mod direct;
pub mod im2col;
pub mod pad;
pub mod params;
pub mod winograd;

pub use cost::{Engine, Pass};
pub use params::{ConvParams, ConvTransposeParams, Operands};

use crate::base::error::{check_len, ConvError, Result};
use crate::base::real::Real;
use crate::base::simd::SimdReal;
use crate::signal::row_kernels::RowKernel;

use depthwise::{depthwise_backward_input, depthwise_backward_weight, depthwise_forward};
use im2col::{gemm_backward_input, gemm_backward_weight, gemm_forward};

/// Forward convolution: `out = conv(x, weight) + bias`. All slices are contiguous NCHW.
pub fn conv2d_forward<T: Real + RowKernel + SimdReal>(
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
    let size = std::mem::size_of::<T>();
    crate::base::threads::run(threads, || match p.engine(Pass::Forward, size) {
        Engine::Direct => direct::forward(p, op, out, threads),
        Engine::Depthwise => depthwise_forward(p, op, out, threads),
        Engine::Winograd => winograd::forward(p, op, out, threads),
        Engine::Gemm1x1 => match subsampled(p) {
            Some(q) => {
                let xs = subsample(p, op.x, threads);
                gemm_forward(&q, Operands { x: &xs, ..op }, out, threads)
            }
            None => gemm_forward(p, op, out, threads),
        },
        Engine::Im2col => gemm_forward(p, op, out, threads),
    });
    Ok(())
}

/// Input gradient: `grad_input = conv2d_input(grad_output, weight)`, i.e. the adjoint of the
/// forward map (also the transposed convolution of `grad_output`). `grad_input` is
/// overwritten.
pub fn conv2d_backward_input<T: Real + RowKernel + SimdReal>(
    p: &ConvParams,
    grad_output: &[T],
    weight: &[T],
    grad_input: &mut [T],
    threads: usize,
) -> Result<()> {
    check_len(
        "grad_output",
        grad_output,
        p.output_shape().iter().product(),
    )?;
    check_len("weight", weight, p.weight_shape().iter().product())?;
    check_len("grad_input", grad_input, p.input_shape().iter().product())?;
    if grad_input.is_empty() {
        return Ok(());
    }
    if p.cout == 0 || p.k_len() == 0 {
        grad_input.fill(T::ZERO); // no output channel (or no input channel) connects anything
        return Ok(());
    }
    let size = std::mem::size_of::<T>();
    match p.engine(Pass::InputGrad, size) {
        Engine::Direct => crate::base::threads::run(threads, || {
            direct::backward_input(p, grad_output, weight, grad_input, threads)
        }),
        Engine::Depthwise => crate::base::threads::run(threads, || {
            depthwise_backward_input(p, grad_output, weight, grad_input, threads)
        }),
        Engine::Winograd => {
            // The input gradient of a 3x3, stride-1 convolution is the 'full' correlation of
            // the output gradient with the kernels rotated by 180 degrees and transposed (in <->
            // out): a forward 3x3 convolution.
            let q = winograd_adjoint(p, false).ok_or_else(|| {
                ConvError::internal("the Winograd input gradient was chosen where it cannot run")
            })?;
            crate::base::threads::run(threads, || {
                winograd::forward_adjoint(&q, grad_output, weight, grad_input, threads)
            });
        }
        Engine::Gemm1x1 if subsampled(p).is_some() => {
            let q = subsampled(p).ok_or_else(|| ConvError::internal("no subsampled 1x1"))?;
            let mut ds = vec![T::ZERO; q.input_shape().iter().product()];
            crate::base::threads::run(threads, || {
                gemm_backward_input(&q, grad_output, weight, &mut ds, threads);
                grad_input.fill(T::ZERO);
                unsubsample(p, &ds, grad_input, threads);
            });
        }
        Engine::Gemm1x1 | Engine::Im2col => {
            if let Some(q) = runs_adjoint(p).filter(im2col::runs_applies) {
                // The same identity for any stride-1 ungrouped layer: on small planes the
                // forward's row-run im2col beats col2im's one scatter per (channel, tap, row).
                let wr = rotated_transposed(p, weight);
                let op = Operands::plain(grad_output, &wr);
                crate::base::threads::run(threads, || gemm_forward(&q, op, grad_input, threads));
            } else {
                grad_input.fill(T::ZERO);
                crate::base::threads::run(threads, || {
                    gemm_backward_input(p, grad_output, weight, grad_input, threads)
                });
            }
        }
    }
    Ok(())
}

/// For a stride-1 ungrouped convolution whose padding is at most the kernel's extent: the
/// forward convolution that gives its input gradient (`grad_output` in, kernels rotated by
/// 180 degrees and transposed, padding `d (k - 1) - p`), when the row-run forward computes it.
pub(crate) fn runs_adjoint(p: &ConvParams) -> Option<ConvParams> {
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
    (q.oh == p.h && q.ow == p.w).then_some(q)
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

/// For a 3x3, stride-1, dilation-1, ungrouped convolution with padding at most 2 on each side:
/// the forward convolution that gives its input gradient (`grad_output` in, kernels rotated
/// and transposed, padding `2 - p`), which Winograd computes. With `respect_off`, none when
/// `RCONV_NO_WINOGRAD` is set.
pub(crate) fn winograd_adjoint(p: &ConvParams, respect_off: bool) -> Option<ConvParams> {
    let k3s1 = p.kh == 3 && p.kw == 3 && p.sh == 1 && p.sw == 1 && p.dh == 1 && p.dw == 1;
    let pads_ok = p.pt <= 2 && p.pb <= 2 && p.pl <= 2 && p.pr <= 2;
    if !k3s1 || !pads_ok || p.groups != 1 || (respect_off && winograd_disabled()) {
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
    (q.oh == p.h && q.ow == p.w && winograd::supports(&q)).then_some(q)
}

/// `RCONV_NO_WINOGRAD` set (to anything): 3x3 layers go through im2col like the others
/// (read once).
pub(crate) fn winograd_disabled() -> bool {
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OFF.get_or_init(|| std::env::var_os("RCONV_NO_WINOGRAD").is_some())
}

/// Weight gradient: `grad_weight = conv2d_weight(x, grad_output)`, summed over the batch.
/// `grad_weight` is overwritten.
pub fn conv2d_backward_weight<T: Real + RowKernel + SimdReal>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    threads: usize,
) -> Result<()> {
    check_len("input", x, p.input_shape().iter().product())?;
    check_len(
        "grad_output",
        grad_output,
        p.output_shape().iter().product(),
    )?;
    check_len(
        "grad_weight",
        grad_weight,
        p.weight_shape().iter().product(),
    )?;
    grad_weight.fill(T::ZERO);
    if p.n == 0 || grad_weight.is_empty() || p.oh * p.ow == 0 {
        return Ok(());
    }
    let size = std::mem::size_of::<T>();
    match p.engine(Pass::WeightGrad, size) {
        Engine::Direct => crate::base::threads::run(threads, || {
            direct::backward_weight(p, x, grad_output, grad_weight, threads)
        }),
        Engine::Depthwise => crate::base::threads::run(threads, || {
            depthwise_backward_weight(p, x, grad_output, grad_weight, threads)
        }),
        Engine::Winograd => {
            return Err(ConvError::internal(
                "the Winograd engine was chosen for a weight gradient",
            ))
        }
        Engine::Gemm1x1 if subsampled(p).is_some() => {
            let q = subsampled(p).ok_or_else(|| ConvError::internal("no subsampled 1x1"))?;
            let xs = subsample(p, x, threads);
            im2col_weight_grad(&q, &xs, grad_output, grad_weight, threads)
        }
        Engine::Gemm1x1 | Engine::Im2col => {
            im2col_weight_grad(p, x, grad_output, grad_weight, threads)
        }
    }
    Ok(())
}

/// For a 1x1 unpadded convolution that is not pointwise (a stride above 1, or a cropped
/// output): the pointwise convolution of the subsampled input `x[.., i * sh, j * sw]`, which
/// a GEMM computes without im2col.
pub(crate) fn subsampled(p: &ConvParams) -> Option<ConvParams> {
    let k1 = p.kh == 1 && p.kw == 1 && p.pt + p.pb + p.pl + p.pr == 0;
    if !k1 || p.is_pointwise() || p.oh * p.ow == 0 {
        return None;
    }
    ConvParams::new(
        [p.n, p.cin, p.oh, p.ow],
        [p.cout, p.cin_g(), 1, 1],
        (1, 1),
        (0, 0, 0, 0),
        (1, 1),
        p.groups,
    )
    .ok()
}

/// `x[.., i * sh, j * sw]` for `i < oh`, `j < ow`: the input of [`subsampled`].
fn subsample<T: Real>(p: &ConvParams, x: &[T], threads: usize) -> Vec<T> {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let mut xs = vec![T::ZERO; p.n * p.cin * plane_out];
    let run = |_: &mut (), (idx, o): (usize, &mut [T])| {
        let src = &x[idx * plane_in..(idx + 1) * plane_in];
        for (i, row) in o.chunks_exact_mut(p.ow).enumerate() {
            let r = &src[i * p.sh * p.w..];
            for (j, v) in row.iter_mut().enumerate() {
                *v = r[j * p.sw];
            }
        }
    };
    crate::base::par::for_each_chunk(threads > 1, &mut xs, plane_out, || (), run);
    xs
}

/// The adjoint of [`subsample`]: `grad_input[.., i * sh, j * sw] = ds[.., i, j]`
/// (`grad_input` holds zeros).
fn unsubsample<T: Real>(p: &ConvParams, ds: &[T], grad_input: &mut [T], threads: usize) {
    let (plane_in, plane_out) = (p.h * p.w, p.oh * p.ow);
    let run = |_: &mut (), (idx, d): (usize, &mut [T])| {
        let src = &ds[idx * plane_out..(idx + 1) * plane_out];
        for (i, row) in src.chunks_exact(p.ow).enumerate() {
            let r = &mut d[i * p.sh * p.w..];
            for (j, &v) in row.iter().enumerate() {
                r[j * p.sw] = v;
            }
        }
    };
    crate::base::par::for_each_chunk(threads > 1, grad_input, plane_in, || (), run);
}

/// The weight gradient by im2col + GEMM, added to `grad_weight` (zeros) in a fixed order.
fn im2col_weight_grad<T: Real + RowKernel>(
    p: &ConvParams,
    x: &[T],
    grad_output: &[T],
    grad_weight: &mut [T],
    threads: usize,
) {
    let partials =
        crate::base::threads::run(threads, || gemm_backward_weight(p, x, grad_output, threads));
    for part in partials {
        for (d, s) in grad_weight.iter_mut().zip(part) {
            *d += s;
        }
    }
}

/// The bias gradient: `grad_output` (`[n, c, h, w]`) summed over batch and space, per
/// channel (accumulated in float64, in a fixed order).
pub fn bias_grad<T: Real>(grad_output: &[T], [n, c, h, w]: [usize; 4]) -> Vec<T> {
    let plane = h * w;
    let mut acc = vec![0f64; c];
    if plane == 0 {
        return vec![T::ZERO; c];
    }
    for img in grad_output.chunks_exact(c * plane).take(n) {
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
