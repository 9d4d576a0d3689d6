//! A counting global allocator for the tests that prove a path allocates nothing (or only what
//! it must): a test binary of its own installs it with
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: sluice_alloc_count::Counting = sluice_alloc_count::Counting;
//! ```
//!
//! and asks [`allocations_in`] how many allocations the calling thread made while running a
//! closure. Other threads' allocations are not counted: a runtime's workers or a writer thread
//! do not blur the figure. A dev-dependency only; nothing in the gateway links it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting this thread's allocations (and reallocations) while
/// [`allocations_in`] runs.
pub struct Counting;

thread_local! {
    // `const` and `Drop`-free: touching them from inside the allocator never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note() {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Allocations this thread makes while running `f` (0 unless [`Counting`] is the binary's
/// global allocator).
pub fn allocations_in(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}
