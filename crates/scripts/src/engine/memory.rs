//! The memory limit of one runtime: an allocator around rquickjs's
//! `RustAllocator` that counts live bytes, refuses allocations past the
//! limit, and remembers that it refused. QuickJS reports some out-of-memory
//! failures by throwing `null` (when even the error object cannot be made);
//! the flag tells those apart from a script that throws `null` itself.

use std::ptr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rquickjs::allocator::{Allocator, RustAllocator};

/// Counts and caps the bytes a QuickJS runtime holds.
pub(crate) struct LimitedAllocator {
    inner: RustAllocator,
    used: usize,
    limit: usize,
    refused: Arc<AtomicBool>,
}

impl LimitedAllocator {
    /// An allocator that holds at most `limit` bytes and sets `refused`
    /// when it turns an allocation down.
    pub(crate) fn new(limit: usize, refused: Arc<AtomicBool>) -> Self {
        Self { inner: RustAllocator, used: 0, limit, refused }
    }

    /// Whether `extra` more bytes fit; records a refusal.
    fn admit(&mut self, extra: usize) -> bool {
        if self.used.saturating_add(extra) > self.limit {
            self.refused.store(true, Ordering::Relaxed);
            return false;
        }
        true
    }
}

// SAFETY: every block is allocated, resized and freed by the inner
// `RustAllocator`, which meets the trait's contract (alignment, sizes,
// `usable_size`). This wrapper only adds bookkeeping and may answer null
// instead of allocating, which the contract allows.
unsafe impl Allocator for LimitedAllocator {
    fn alloc(&mut self, size: usize) -> *mut u8 {
        if !self.admit(size) {
            return ptr::null_mut();
        }
        let block = self.inner.alloc(size);
        if !block.is_null() {
            // SAFETY: `block` was just allocated by the inner allocator.
            self.used += unsafe { RustAllocator::usable_size(block) };
        }
        block
    }

    fn calloc(&mut self, count: usize, size: usize) -> *mut u8 {
        // Checked here: the inner allocator panics on overflow.
        let Some(total) = count.checked_mul(size) else {
            return ptr::null_mut();
        };
        if !self.admit(total) {
            return ptr::null_mut();
        }
        let block = self.inner.calloc(count, size);
        if !block.is_null() {
            // SAFETY: `block` was just allocated by the inner allocator.
            self.used += unsafe { RustAllocator::usable_size(block) };
        }
        block
    }

    unsafe fn dealloc(&mut self, block: *mut u8) {
        if block.is_null() {
            return;
        }
        // SAFETY: the caller guarantees `block` came from this allocator,
        // that is from the inner one, and is still live.
        unsafe {
            self.used = self.used.saturating_sub(RustAllocator::usable_size(block));
            self.inner.dealloc(block);
        }
    }

    unsafe fn realloc(&mut self, block: *mut u8, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `block` came from this allocator,
        // that is from the inner one, and is still live.
        let old = unsafe { RustAllocator::usable_size(block) };
        if new_size > old && !self.admit(new_size - old) {
            return ptr::null_mut();
        }
        // SAFETY: as above; on failure the old block stays valid and counted.
        let moved = unsafe { self.inner.realloc(block, new_size) };
        if !moved.is_null() {
            // SAFETY: `moved` was just allocated by the inner allocator.
            let new = unsafe { RustAllocator::usable_size(moved) };
            self.used = self.used.saturating_sub(old) + new;
        }
        moved
    }

    unsafe fn usable_size(block: *mut u8) -> usize {
        // SAFETY: forwarded with the caller's guarantee that `block` came
        // from this allocator, that is from the inner one.
        unsafe { RustAllocator::usable_size(block) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_refuses_and_flags() {
        let refused = Arc::new(AtomicBool::new(false));
        let mut alloc = LimitedAllocator::new(1000, refused.clone());
        let a = alloc.alloc(600);
        assert!(!a.is_null());
        assert!(alloc.alloc(600).is_null());
        assert!(refused.load(Ordering::Relaxed));
        // SAFETY: `a` is live and came from `alloc`.
        let b = unsafe { alloc.realloc(a, 100) };
        assert!(!b.is_null());
        let c = alloc.calloc(2, 300);
        assert!(!c.is_null());
        assert!(alloc.calloc(usize::MAX, 2).is_null());
        // SAFETY: `b` and `c` are live and came from `alloc`.
        unsafe {
            alloc.dealloc(b);
            alloc.dealloc(c);
        }
        assert_eq!(alloc.used, 0);
    }
}
