//! The global allocator: mimalloc, called through the entry points that are fastest for what
//! Rust asks of it.
//!
//! The `mimalloc` crate's allocator passes every request to `mi_malloc_aligned`, alignment 1 or 8
//! included. mimalloc takes its fast path there only for blocks up to 1 KiB; a larger one (a
//! request body, a read buffer) goes through its over-allocating aligned path, several times per
//! proxied request. Every mimalloc block is aligned to at
//! least 8 bytes (its size classes are whole words), so for those alignments plain `mi_malloc`
//! is exact and takes the fast path at every size.
//!
//! [`give_back_when_quiet`] returns what mimalloc holds freed to the system once the process goes
//! quiet after a busy spell.

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc, mi_zalloc_aligned,
};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::time::{Duration, Instant};

extern "C" {
    /// mimalloc's collection: frees the calling thread's empty pages and, forced, purges every
    /// arena's freed memory at once instead of after its delay.
    fn mi_collect(force: bool);
}

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

/// How often the process's CPU time is read.
const QUIET_CHECK: Duration = Duration::from_millis(100);
/// A check that used more CPU than this (10 % of a core) saw a busy process ...
const BUSY: Duration = Duration::from_millis(10);
/// ... and one that used less than this (1 %), a quiet one.
const QUIET: Duration = Duration::from_millis(1);
/// Collections are at least this far apart, whatever the load's rhythm.
const MIN_GAP: Duration = Duration::from_secs(1);

/// Whether the process just went quiet after a busy spell, from its CPU time at each check.
#[derive(Default)]
struct QuietWatch {
    busy: bool,
    last_collect: Option<Instant>,
}

impl QuietWatch {
    /// `used`: the CPU time since the last check. True when the memory should be given back now.
    fn observe(&mut self, used: Duration, now: Instant) -> bool {
        if used > BUSY {
            self.busy = true;
        } else if self.busy && used < QUIET && self.last_collect.is_none_or(|t| now - t >= MIN_GAP) {
            self.busy = false;
            self.last_collect = Some(now);
            return true;
        }
        false
    }
}

/// The CPU time of every thread of the process so far.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_PROCESS_CPUTIME_ID always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec.max(0) as u64, ts.tv_nsec.clamp(0, 999_999_999) as u32)
}

/// Runs for the process's life: when a busy spell ends (a check with more than 10 % of a core,
/// then one with under 1 %), gives the memory mimalloc holds freed back to the system. mimalloc
/// purges freed pages only a second after they are freed *and* only when the thread that holds
/// them next allocates, so a gateway that goes idle after a burst kept the burst's peak resident
/// until its next request (after a closed loop at full speed, 4–8 MB of spend-log rows and
/// buffers: bench/README.md). A forced collection costs about what giving the pages back costs
/// (~5 ms for the 64 MB of the test below; a gateway's burst leaves a few MB), at most once a
/// second, on a process that has just gone quiet. It collects the pages of the runtime thread it
/// runs on (the only one with `--num_workers 1`) and the freed memory of every arena.
pub async fn give_back_when_quiet() {
    let mut watch = QuietWatch::default();
    let mut tick = tokio::time::interval(QUIET_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut before = process_cpu();
    loop {
        tick.tick().await;
        let now = process_cpu();
        if watch.observe(now.saturating_sub(before), Instant::now()) {
            // SAFETY: mi_collect takes no pointers and may be called from any thread at any time.
            unsafe { mi_collect(true) };
        }
        before = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A collection follows the end of a busy spell, once; a steady moderate load, a quiet
    /// process and a spell ending within a second of the last collection get none.
    #[test]
    fn a_collection_follows_the_end_of_a_busy_spell() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut w = QuietWatch::default();
        assert!(!w.observe(ms(0), t0), "quiet from the start: nothing to give back");
        assert!(!w.observe(ms(5), t0 + ms(100)), "5 % of a core is neither busy nor quiet");
        assert!(!w.observe(ms(60), t0 + ms(200)), "busy");
        assert!(!w.observe(ms(5), t0 + ms(300)), "still working");
        assert!(w.observe(ms(0), t0 + ms(400)), "quiet after busy: collect");
        assert!(!w.observe(ms(0), t0 + ms(500)), "once");
        assert!(!w.observe(ms(90), t0 + ms(600)), "busy again");
        assert!(!w.observe(ms(0), t0 + ms(700)), "within a second of the last collection");
        assert!(w.observe(ms(0), t0 + ms(1_400)), "a second later, still owed");
    }

    /// A forced collection gives freed memory back at once: 64 MB written in small blocks and
    /// freed is still resident (mimalloc's purge waits a second and for the next allocation),
    /// and no longer after `mi_collect(true)`.
    #[test]
    fn a_forced_collection_gives_freed_memory_back() {
        fn rss_anon_kb() -> i64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        let blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|i| vec![i as u8; 1000]).collect();
        drop(blocks);
        let freed = rss_anon_kb();
        // SAFETY: as in `give_back_when_quiet`.
        unsafe { mi_collect(true) };
        let collected = rss_anon_kb();
        assert!(freed - collected > 32 * 1024, "RssAnon {freed} kB freed, {collected} kB after the collection");
    }

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
