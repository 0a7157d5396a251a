//! max_unpool2d: each value written at its saved index in a zero-filled output plane.

use crate::base::error::{ConvError, Result};
use crate::base::real::Real;

/// max_unpool2d: `out` (planes of `plane_out`, zero-filled here) receives `x[k]` at
/// `indices[k]` of its plane. An index outside the plane is a `ValueError`.
pub fn max_unpool2d<T: Real>(
    x: &[T],
    indices: &[i64],
    plane_in: usize,
    out: &mut [T],
    plane_out: usize,
) -> Result<()> {
    out.fill(T::ZERO);
    if plane_in == 0 || x.is_empty() {
        return Ok(());
    }
    if plane_out == 0 {
        return Err(ConvError::value(format!(
            "found an invalid max index {} (the output plane is empty)",
            indices[0]
        )));
    }
    for (i, (o, (xp, ip))) in out
        .chunks_exact_mut(plane_out)
        .zip(x.chunks_exact(plane_in).zip(indices.chunks_exact(plane_in)))
        .enumerate()
    {
        for (&v, &idx) in xp.iter().zip(ip) {
            let k = usize::try_from(idx).ok().filter(|&k| k < plane_out).ok_or_else(|| {
                ConvError::value(format!("found an invalid max index {idx} in plane {i} (output plane has {plane_out} elements)"),
                )
            })?;
            o[k] = v;
        }
    }
    Ok(())
}
