//! The allocator of the `bazaar` binary and benchmarks: the system allocator, with every large
//! block (component columns of millions of customers, output row groups) marked for
//! transparent huge pages.
//!
//! The shopping system reads a few scattered rows of each component column every hour; with
//! 4 KiB pages nearly every one of those reads also misses the TLB. Backing the large columns
//! with 2 MiB pages keeps a 10M-customer world's columns within the TLB's reach. Linux only,
//! and only where the kernel's THP mode is `always` or `madvise`; elsewhere it is the plain
//! system allocator.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, asking the kernel for huge pages behind blocks of
/// [`HugePages::THRESHOLD`] bytes or more.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: bazaar::alloc::HugePages = bazaar::alloc::HugePages;
/// ```
pub struct HugePages;

impl HugePages {
    /// Blocks this large or larger are advised; smaller ones are left to the allocator.
    pub const THRESHOLD: usize = 4 << 20;

    /// Tunes glibc's allocator for a run's pattern: output row groups of a few megabytes,
    /// allocated on the simulation thread and freed on a writer thread, one after another.
    /// By default glibc maps each such block afresh and unmaps it when freed, or trims the
    /// heap under it, so every row group faults in (and the kernel zeroes) new pages. Blocks
    /// under 32 MiB are kept in the heap instead, and up to 256 MiB of free heap is kept for
    /// reuse. Threads share one arena instead of up to eight per core: each arena keeps its
    /// own freed blocks for reuse, so a dozen simulation, output and writer threads with an
    /// arena each kept a dozen idle reserves (measured: 10M-customer peak 2,752 -> 2,595 MiB
    /// and 1M 597 -> 477 MiB going to two arenas; 1,908-1,956 -> 1,888-1,895 MiB and 1M
    /// 379 -> 336-344 MiB going from two to one; no slower either time: the hot loop does not
    /// allocate). Call once at the start of `main`; elsewhere than glibc it does nothing.
    pub fn tune_system_allocator() {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: `mallopt` only changes allocator parameters, under the allocator's own lock.
        // A refused setting leaves the default.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// What the system allocator holds, in bytes (glibc's `mallinfo2`).
#[derive(Debug, Clone, Copy)]
pub struct HeapStats {
    /// Heap bytes handed out and not yet freed.
    pub in_use: u64,
    /// Heap bytes freed and kept for reuse.
    pub free: u64,
    /// Blocks mapped on their own (over the mmap threshold), such as component columns.
    pub mapped: u64,
}

impl HeapStats {
    /// The allocator's figures now; `None` elsewhere than glibc.
    pub fn current() -> Option<Self> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: `mallinfo2` only reads the allocator's counters, under its own locks.
            let m = unsafe { libc::mallinfo2() };
            Some(Self {
                in_use: m.uordblks as u64,
                free: m.fordblks as u64,
                mapped: m.hblkhd as u64,
            })
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        None
    }
}

/// The huge-page size on x86-64 and aarch64 Linux.
#[cfg(target_os = "linux")]
const HUGE_PAGE: usize = 2 << 20;

/// Advises the whole huge pages inside `len` bytes at `ptr`.
#[inline]
fn advise(ptr: *mut u8, len: usize) {
    #[cfg(target_os = "linux")]
    if len >= HugePages::THRESHOLD && !ptr.is_null() {
        let start = (ptr as usize).next_multiple_of(HUGE_PAGE);
        let end = (ptr as usize + len) & !(HUGE_PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside a block this allocator just handed out; the advice
            // changes only how the kernel backs it, never its contents. A refusal (an old
            // kernel, THP off) leaves ordinary pages, so the result is ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (ptr, len);
}

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; `advise`
// does not touch the memory.
unsafe impl GlobalAlloc for HugePages {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        advise(p, layout.size());
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        advise(p, layout.size());
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        advise(p, new_size);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_blocks_keep_their_contents() {
        for size in [64, HugePages::THRESHOLD, 3 * HugePages::THRESHOLD + 4096] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: the layout is non-zero; the block is freed with the same layout.
            unsafe {
                let p = HugePages.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert!((0..size).step_by(4093).all(|i| *p.add(i) == 0));
                p.add(size - 1).write(7);
                let q = HugePages.realloc(p, layout, size * 2);
                assert_eq!(*q.add(size - 1), 7);
                HugePages.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }
}
