//! berth's global allocator: the first allocations of a process come from a fixed arena in
//! .bss by bumping an offset; the rest, and everything once the arena is used up, from the
//! system allocator.
//!
//! Why: a `run` parses its command line and config.json into many small allocations and
//! then execs; with musl's allocator (the static release binary) that parsing cost more
//! than the parse itself. Freeing arena memory only gives back the most recent block (the
//! growth pattern of a Vec or String being built), so a long-lived process (foreground
//! `run`, `events --interval`) wastes at most the arena, and only the pages it touched.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

const SIZE: usize = 1 << 20;
const MIN_ALIGN: usize = 16;

#[repr(C, align(4096))]
struct Memory(UnsafeCell<[u8; SIZE]>);

// SAFETY: the arena hands out disjoint ranges (by atomic compare-and-swap on NEXT), so no two
// owners ever share a byte of it.
unsafe impl Sync for Memory {}

static MEMORY: Memory = Memory(UnsafeCell::new([0; SIZE]));
/// Offset of the first free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// Set by long-lived processes: no new arena blocks.
static CLOSED: AtomicBool = AtomicBool::new(false);

/// From now on every allocation comes from the system allocator. For processes that live
/// as long as a container (the monitor, `--init`): the arena never gives back a block
/// freed under a newer one, so what it serves them stays resident (about 1 MiB of .bss
/// per monitor), where the system allocator reuses and returns freed memory.
pub fn close() {
    CLOSED.store(true, Ordering::Relaxed);
}

pub struct Arena;

fn base() -> usize {
    MEMORY.0.get() as usize
}

fn in_arena(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    p >= base() && p < base() + SIZE
}

impl Arena {
    /// A block of `layout` from the arena, or None when it does not fit any more.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if CLOSED.load(Ordering::Relaxed) {
            return None;
        }
        let mut cur = NEXT.load(Ordering::Relaxed);
        loop {
            // At least malloc's alignment: code that casts a Vec<u8> to a C struct
            // (nix's control-message buffers) relies on it.
            let align = layout.align().max(MIN_ALIGN);
            let start = (base() + cur).next_multiple_of(align) - base();
            let end = start.checked_add(layout.size()).filter(|e| *e <= SIZE)?;
            match NEXT.compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some((base() + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }
}

// SAFETY: every block returned is either a fresh arena range of the requested size and
// alignment that no other caller holds, or comes from (and goes back to) `System` with the
// same layout; arena blocks are never passed to `System`.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: forwarded with the caller's layout, as GlobalAlloc requires.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if in_arena(ptr) {
            // Only the latest block can be given back; the others stay used.
            let start = ptr as usize - base();
            let _ = NEXT.compare_exchange(
                start + layout.size(),
                start,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        } else {
            // SAFETY: `ptr` came from System.alloc with this layout (not in the arena).
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !in_arena(ptr) {
            // SAFETY: `ptr` came from System with `layout`; the caller upholds the rest.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let start = ptr as usize - base();
        // The latest block grows (or shrinks) in place while it fits.
        if start + new_size <= SIZE
            && NEXT
                .compare_exchange(
                    start + layout.size(),
                    start + new_size,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return ptr;
        }
        if new_size <= layout.size() {
            // Shrunk where it is; the tail stays used.
            return ptr;
        }
        // SAFETY: the caller guarantees new_size is valid for layout.align().
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout, as above.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct, and at least this long.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
            // SAFETY: `ptr` is the caller's live block with `layout`.
            unsafe { self.dealloc(ptr, layout) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only these tests use the arena (the library's own tests keep the system allocator):
    /// one at a time, so that NEXT moves only under their control.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn blocks_are_disjoint_aligned_and_survive_realloc() {
        let _one = SERIAL.lock().unwrap();
        let a = Arena;
        let start = NEXT.load(Ordering::Relaxed);
        let mut blocks = Vec::new();
        // SAFETY: (test) every block is used with the layout it was allocated with.
        unsafe {
            for i in 1..200usize {
                let l = Layout::from_size_align(i * 13, 1 << (i % 7)).unwrap();
                let p = a.alloc(l);
                assert!(!p.is_null());
                assert_eq!(p as usize % l.align().max(MIN_ALIGN), 0);
                std::ptr::write_bytes(p, i as u8, l.size());
                blocks.push((p, l));
            }
            // Grow every other block (in place when it is the latest, by copy otherwise).
            for (k, (p, l)) in blocks.iter_mut().enumerate().filter(|(k, _)| k % 2 == 0) {
                let n = a.realloc(*p, *l, l.size() * 3);
                assert!(!n.is_null());
                let old = l.size();
                assert!((0..old).all(|j| *n.add(j) == (k + 1) as u8));
                std::ptr::write_bytes(n.add(old), (k + 1) as u8, old * 2);
                *p = n;
                *l = Layout::from_size_align(old * 3, l.align()).unwrap();
            }
            for (k, (p, l)) in blocks.iter().enumerate() {
                assert!(
                    (0..l.size()).all(|j| *p.add(j) == (k + 1) as u8),
                    "block {k}"
                );
            }
            // Past the arena's end everything comes from the system allocator.
            let big = Layout::from_size_align(SIZE, 8).unwrap();
            let q = a.alloc(big);
            assert!(!q.is_null() && !in_arena(q));
            a.dealloc(q, big);
            for (p, l) in blocks {
                a.dealloc(p, l);
            }
        }
        // Every block is free again and nobody else uses the arena: start over.
        NEXT.store(start, Ordering::Relaxed);
    }

    #[test]
    fn the_latest_block_is_given_back() {
        let _one = SERIAL.lock().unwrap();
        let a = Arena;
        let l = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: (test) blocks are freed with their own layout.
        unsafe {
            let p = a.alloc(l);
            assert!(in_arena(p));
            let q = a.alloc(l);
            let top = NEXT.load(Ordering::Relaxed);
            // Not the latest: stays used.
            a.dealloc(p, l);
            assert_eq!(NEXT.load(Ordering::Relaxed), top);
            // The latest: given back.
            a.dealloc(q, l);
            assert_eq!(NEXT.load(Ordering::Relaxed), top - 64);
        }
    }
}
