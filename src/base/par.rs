//! Helpers for rayon tasks that write disjoint parts of one output buffer.

/// A raw pointer that may be shared between rayon tasks which write disjoint parts of the
/// memory behind it (each use site states why the parts are disjoint).
#[derive(Clone, Copy)]
pub struct SyncPtr<T>(pub *mut T);

impl<T> SyncPtr<T> {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    #[inline(always)]
    pub fn get(&self) -> *mut T {
        self.0
    }
}

// SAFETY: the pointer is only dereferenced by tasks writing disjoint regions of a buffer that
// outlives the parallel section (see each use).
unsafe impl<T: Send> Send for SyncPtr<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SyncPtr<T> {}
