//! Test helpers shared by the kernels' unit tests (compiled for tests only).

/// A xorshift64 generator from `seed` (non-zero): deterministic random test cases.
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}
