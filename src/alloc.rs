//! The allocator of the `bazaar` binary and benchmarks: the system allocator, tuned for a
//! run's pattern of allocation, which fills large blocks ahead of their writer on request.
//!
//! While the population is spawned, the kernel's zeroing of the new columns' pages is most of
//! the spawning thread's time at 10M customers, and the other core is idle; a helper thread
//! asks the kernel to fault those pages in ahead of the writes ([`Prefault`]).
//!
//! Large blocks are left on ordinary 4 KiB pages. Transparent huge pages would spare the
//! shopping system's scattered reads some TLB misses, but a huge-page fault is only cheap
//! where the kernel has free 2 MiB blocks at hand: on a virtual machine whose free memory
//! the host takes back, as the benchmark machine's is, each one cost about 20 ms (2 GiB
//! first touched in 21 s, against 2.1 s on 4 KiB pages), which made the 10M-customer spawn
//! 9.4 s instead of 0.9 s.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, queueing blocks of [`Alloc::THRESHOLD`] bytes or more for the
/// [`Prefault`] helper while a prefault window is open.
///
/// ```no_run
/// #[global_allocator]
/// static ALLOC: bazaar::alloc::Alloc = bazaar::alloc::Alloc;
/// ```
pub struct Alloc;

impl Alloc {
    /// Blocks this large or larger are queued for prefaulting; smaller ones fault in as
    /// they are written.
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

// SAFETY: every call is forwarded to `System` with the caller's arguments unchanged; the
// prefault queue does not touch the memory.
unsafe impl GlobalAlloc for Alloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc(layout) };
        prefault::added(p, layout.size());
        p
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded as is.
        let p = unsafe { System.alloc_zeroed(layout) };
        prefault::added(p, layout.size());
        p
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        prefault::removed(ptr, layout.size());
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        prefault::removed(ptr, layout.size());
        // SAFETY: forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        prefault::added(p, new_size);
        p
    }
}

/// Faults in large blocks ahead of the thread that fills them, for as long as it lives.
///
/// While a `Prefault` exists, every block of [`Alloc::THRESHOLD`] bytes or more that the
/// allocator hands out is queued to a helper thread, which asks the kernel to fault its
/// pages in (`MADV_POPULATE_WRITE`: the pages are allocated and zeroed as a write would, and
/// their contents are never read or written). The helper advances all queued blocks by the
/// same fraction at a time, as a batch spawn writes row after row of every column. Only for
/// blocks that will be filled end to end: a block used in part would be made resident in
/// full. Linux 5.14 or later with [`Alloc`] as the global allocator; elsewhere it does
/// nothing.
///
/// ```no_run
/// bazaar::alloc::Prefault::enable(); // once, in a program using `Alloc`
/// let _prefault = bazaar::alloc::Prefault::start();
/// // ... allocate and fill the world's columns ...
/// ```
pub struct Prefault {
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    started: bool,
}

/// Whether the program asked for prefaulting ([`Prefault::enable`]).
static ENABLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Prefault {
    /// Lets [`Prefault::start`] start its helper thread: for a program whose global
    /// allocator is [`Alloc`] (the `bazaar` binary, the benchmarks). Without it the library
    /// starts no thread of its own for the allocator, and `start` does nothing.
    pub fn enable() {
        ENABLED.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Starts queueing large blocks, and the helper thread if no other `Prefault` is alive
    /// (windows may overlap: the helper runs until the last one ends). Does nothing unless
    /// [`Prefault::enable`] was called.
    pub fn start() -> Self {
        let started = ENABLED.load(std::sync::atomic::Ordering::Relaxed);
        #[cfg(target_os = "linux")]
        if started {
            prefault::start();
        }
        Self { started }
    }

    /// Bytes the helper has faulted in so far in this process.
    pub fn faulted_bytes() -> u64 {
        #[cfg(target_os = "linux")]
        {
            prefault::FAULTED.load(std::sync::atomic::Ordering::Relaxed)
        }
        #[cfg(not(target_os = "linux"))]
        0
    }
}

impl Drop for Prefault {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if self.started {
            prefault::stop();
        }
    }
}

/// The queue between the allocator and the prefault helper. The allocator's side takes a
/// lock around a fixed array and never allocates; blocks are dropped from the queue when
/// freed, so the helper never asks for a block that is gone (one it already took a step of
/// may be freed meanwhile: the kernel then refuses or faults pages of whatever mapping took
/// the addresses, neither of which changes any memory's contents).
/// Elsewhere there is no helper (no `MADV_POPULATE_WRITE`): the allocator's side is empty.
#[cfg(not(target_os = "linux"))]
mod prefault {
    #[inline]
    pub(super) fn added(_: *mut u8, _: usize) {}

    #[inline]
    pub(super) fn removed(_: *mut u8, _: usize) {}
}

#[cfg(target_os = "linux")]
mod prefault {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::thread::{JoinHandle, Thread};

    use super::Alloc;

    /// Blocks queued at most; more are left to fault in as written.
    const SLOTS: usize = 64;
    /// Each step faults in this fraction of a block (at least [`STEP_MIN`] bytes).
    const STEPS: usize = 256;
    /// The smallest step.
    const STEP_MIN: usize = 2 << 20;
    /// The kernel's page size (rounding of the ranges asked for).
    const PAGE: usize = 4096;

    /// One queued block: where it starts, its length, and how much has been faulted in.
    #[derive(Clone, Copy)]
    struct Block {
        start: usize,
        len: usize,
        done: usize,
    }

    struct Queue {
        blocks: [Block; SLOTS],
        n: usize,
        /// The helper, to wake when a block is queued.
        helper: Option<Thread>,
        /// Tells the helper to end.
        stop: bool,
    }

    /// What the helper does next.
    enum Next {
        /// Faults in this range of addresses.
        Fault(usize, usize),
        /// Waits for a block.
        Wait,
        /// Ends.
        Stop,
    }

    static QUEUE: Mutex<Queue> = Mutex::new(Queue {
        blocks: [Block {
            start: 0,
            len: 0,
            done: 0,
        }; SLOTS],
        n: 0,
        helper: None,
        stop: false,
    });
    /// Whether a [`super::Prefault`] is alive (checked before any lock is taken).
    static ACTIVE: AtomicBool = AtomicBool::new(false);
    /// Bytes faulted in by helpers.
    pub(super) static FAULTED: AtomicU64 = AtomicU64::new(0);

    fn queue() -> std::sync::MutexGuard<'static, Queue> {
        QUEUE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a new block (allocator side).
    #[inline]
    pub(super) fn added(ptr: *mut u8, len: usize) {
        if len < Alloc::THRESHOLD || ptr.is_null() || !ACTIVE.load(Ordering::Relaxed) {
            return;
        }
        let mut q = queue();
        // A window that ended after the check above has emptied the queue for good.
        if !q.stop && q.n < SLOTS {
            let n = q.n;
            q.blocks[n] = Block {
                start: ptr as usize,
                len,
                done: 0,
            };
            q.n += 1;
            if let Some(t) = &q.helper {
                t.unpark();
            }
        }
    }

    /// Drops a block that is being freed from the queue (allocator side).
    #[inline]
    pub(super) fn removed(ptr: *mut u8, len: usize) {
        if len < Alloc::THRESHOLD || !ACTIVE.load(Ordering::Relaxed) {
            return;
        }
        let mut q = queue();
        let n = q.n;
        if let Some(k) = q.blocks[..n].iter().position(|b| b.start == ptr as usize) {
            q.blocks.copy_within(k + 1..n, k);
            q.n -= 1;
        }
    }

    /// The next range to fault in: a step of the block least far along, which is retired
    /// once done.
    fn next_step() -> Next {
        let mut q = queue();
        if q.stop {
            return Next::Stop;
        }
        let n = q.n;
        let Some(k) = (0..n).min_by(|&a, &b| {
            let (a, b) = (&q.blocks[a], &q.blocks[b]);
            // done / len, compared without division.
            (a.done as u128 * b.len as u128).cmp(&(b.done as u128 * a.len as u128))
        }) else {
            return Next::Wait;
        };
        let b = &mut q.blocks[k];
        let step = (b.len / STEPS).max(STEP_MIN);
        let from = b.start + b.done;
        let to = (from + step).min(b.start + b.len);
        b.done = to - b.start;
        if b.done == b.len {
            q.blocks.copy_within(k + 1..n, k);
            q.n -= 1;
        }
        Next::Fault(from & !(PAGE - 1), to.next_multiple_of(PAGE))
    }

    /// Live [`super::Prefault`]s, and the helper's handle while any is. The allocator never
    /// takes this lock, so the helper can be started and joined under it.
    static LIVE: Mutex<(usize, Option<JoinHandle<()>>)> = Mutex::new((0, None));

    fn live() -> std::sync::MutexGuard<'static, (usize, Option<JoinHandle<()>>)> {
        LIVE.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Counts a new window; the first starts the helper and the queueing.
    pub(super) fn start() {
        let mut live = live();
        live.0 += 1;
        if live.0 > 1 {
            return;
        }
        // Queueing is still off here, so the thread's own allocations are not queued.
        let mut q = queue();
        q.stop = false;
        q.n = 0;
        drop(q);
        let Ok(helper) = std::thread::Builder::new()
            .name("bazaar-prefault".into())
            .spawn(run)
        else {
            return; // no helper: blocks fault in as they are written
        };
        queue().helper = Some(helper.thread().clone());
        live.1 = Some(helper);
        ACTIVE.store(true, Ordering::SeqCst);
    }

    /// Ends a window; the last stops queueing, forgets what is queued and joins the helper.
    pub(super) fn stop() {
        let mut live = live();
        live.0 -= 1;
        if live.0 > 0 {
            return;
        }
        ACTIVE.store(false, Ordering::SeqCst);
        let mut q = queue();
        q.n = 0;
        q.stop = true;
        let thread = q.helper.take();
        drop(q);
        if let (Some(t), Some(h)) = (thread, live.1.take()) {
            t.unpark();
            let _ = h.join();
        }
    }

    /// Whether a block starting at `ptr` is queued (for tests).
    #[cfg(test)]
    pub(super) fn is_queued(ptr: *mut u8) -> bool {
        let q = queue();
        q.blocks[..q.n].iter().any(|b| b.start == ptr as usize)
    }

    /// The helper: faults in queued steps until stopped, or until the kernel refuses (an old
    /// kernel without `MADV_POPULATE_WRITE`).
    fn run() {
        loop {
            let (from, to) = match next_step() {
                Next::Fault(from, to) => (from, to),
                Next::Wait => {
                    std::thread::park();
                    continue;
                }
                Next::Stop => return,
            };
            // SAFETY: the advice only makes the kernel allocate the range's pages as a write
            // would; it reads and writes no memory of the process, so it cannot race with the
            // block's writer. A range no longer mapped is refused with an error.
            let r = unsafe {
                libc::madvise(
                    from as *mut libc::c_void,
                    to - from,
                    libc::MADV_POPULATE_WRITE,
                )
            };
            if r == 0 {
                FAULTED.fetch_add((to - from) as u64, Ordering::Relaxed);
            } else if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINVAL) {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_and_small_blocks_keep_their_contents() {
        for size in [64, Alloc::THRESHOLD, 3 * Alloc::THRESHOLD + 4096] {
            let layout = Layout::from_size_align(size, 64).unwrap();
            // SAFETY: the layout is non-zero; the block is freed with the same layout.
            unsafe {
                let p = Alloc.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert!((0..size).step_by(4093).all(|i| *p.add(i) == 0));
                p.add(size - 1).write(7);
                let q = Alloc.realloc(p, layout, size * 2);
                assert_eq!(*q.add(size - 1), 7);
                Alloc.dealloc(q, Layout::from_size_align(size * 2, 64).unwrap());
            }
        }
    }

    /// Resident pages of the `len` bytes at `p`, and the pages they span.
    #[cfg(target_os = "linux")]
    fn resident(p: *mut u8, len: usize) -> (usize, usize) {
        let start = (p as usize) & !4095;
        let end = (p as usize + len).next_multiple_of(4096);
        let mut pages = vec![0u8; (end - start) / 4096];
        // SAFETY: the range is whole pages of a live block; `mincore` only fills `pages`.
        let r =
            unsafe { libc::mincore(start as *mut libc::c_void, end - start, pages.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", std::io::Error::last_os_error());
        (pages.iter().filter(|&&b| b & 1 == 1).count(), pages.len())
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_prefault_window_faults_its_blocks_in_and_forgets_freed_ones() {
        let size = 64 << 20;
        let layout = Layout::from_size_align(size, 64).unwrap();
        // SAFETY: every block is non-zero in size and freed with its layout; the memory
        // read is inside the blocks.
        unsafe {
            // A fresh block nobody has written stays out of memory: what `mincore` sees of
            // the window's block below is the helper's doing.
            let untouched = System.alloc(layout);
            assert!(
                resident(untouched, size).0 <= 1,
                "{:?}",
                resident(untouched, size)
            );
            Prefault::enable();
            let window = Prefault::start();
            let before = Prefault::faulted_bytes();
            let freed = Alloc.alloc(layout);
            Alloc.dealloc(freed, layout);
            assert!(!prefault::is_queued(freed));
            let block = Alloc.alloc(layout);
            // The helper retires a block when it takes its last step, before that step's
            // pages are in and counted: wait for the pages and the count, not the queue.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
            let done = || {
                let (resident_pages, pages) = resident(block, size);
                !prefault::is_queued(block)
                    && resident_pages == pages
                    && Prefault::faulted_bytes() - before >= size as u64
            };
            while !done() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let (resident_pages, pages) = resident(block, size);
            assert_eq!(resident_pages, pages);
            assert!(Prefault::faulted_bytes() - before >= size as u64);
            // Faulted in, not written: a fresh block still reads as zeros.
            assert!((0..size).step_by(4096).all(|i| *block.add(i) == 0));
            drop(window);
            Alloc.dealloc(block, layout);
            System.dealloc(untouched, layout);
        }
    }
}
