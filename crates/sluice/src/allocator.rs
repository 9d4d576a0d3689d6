//! The global allocator: mimalloc, called through the entry points that are fastest for what
//! Rust asks of it.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`, alignment 1 or 8
//! included. mimalloc takes its fast path there only for blocks up to 1 KiB; a larger one (a
//! request body, a read buffer) goes through its over-allocating aligned path, several times per
//! proxied request. Every mimalloc block is aligned to at
//! least 8 bytes (its size classes are whole words), so for those alignments plain `mi_malloc`
//! is exact and takes the fast path at every size.

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every block mimalloc hands out has, whatever its size.
const WORD_ALIGN: usize = std::mem::size_of::<usize>();

pub struct MiMalloc;

// SAFETY: each method forwards to the mimalloc function with the same contract, asking for the
// layout's alignment explicitly whenever it exceeds what every mimalloc block has; blocks from
// either family are freed and resized by the same `mi_free`/`mi_realloc*`.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            mi_malloc(layout.size()).cast()
        } else {
            mi_malloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            mi_zalloc(layout.size()).cast()
        } else {
            mi_zalloc_aligned(layout.size(), layout.align()).cast()
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        mi_free(ptr.cast::<c_void>());
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= WORD_ALIGN {
            mi_realloc(ptr.cast::<c_void>(), new_size).cast()
        } else {
            mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every size around mimalloc's size-class edges, at every alignment up to a page: the block
    /// is aligned as asked, writable to its end, and survives growing and shrinking.
    #[test]
    fn blocks_are_aligned_and_usable_at_every_size() {
        let a = MiMalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in (1..200).chain([1000, 1024, 1025, 4096, 16_385, 70_000, 1 << 20]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layout has a non-zero size; each block is used within its size and
                // freed once with the layout it was allocated with (or resized to).
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null() && (p as usize).is_multiple_of(align), "size {size} align {align}");
                    p.write_bytes(0xab, size);
                    let z = a.alloc_zeroed(layout);
                    assert!((z as usize).is_multiple_of(align) && (0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                    let grown = a.realloc(p, layout, size * 3);
                    assert!((grown as usize).is_multiple_of(align) && (0..size).all(|i| *grown.add(i) == 0xab));
                    let big = Layout::from_size_align(size * 3, align).unwrap();
                    let shrunk = a.realloc(grown, big, size.div_ceil(2));
                    assert!(
                        (shrunk as usize).is_multiple_of(align)
                            && (0..size.div_ceil(2)).all(|i| *shrunk.add(i) == 0xab)
                    );
                    a.dealloc(shrunk, Layout::from_size_align(size.div_ceil(2), align).unwrap());
                }
            }
        }
    }
}
