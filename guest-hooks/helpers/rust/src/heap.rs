//! The hook's heap: dlmalloc, started on the free part of the linear memory the hook is
//! instantiated with, growing memory only once that is used up.
//!
//! Rust's default allocator on wasm32 grows linear memory for its very first allocation, even
//! when the memory the module starts with is mostly unused. With a fresh instance per message
//! that is a `memory.grow` on every message, and the host pays for each one twice (making the
//! new pages accessible, then hiding them again before the slot is reused): about a quarter of a
//! fresh call's cost. Starting the heap on the memory that is already there (sized by
//! `--initial-memory` in `guest-hooks/.cargo/config.toml`: 256 KiB, of which the stack takes
//! 128 KiB) takes that away; hooks that need more still grow as before. The initial memory is
//! kept small on purpose: the host zeroes all of a fresh instance's memory after each message.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::{Cell, UnsafeCell};

const PAGE: usize = 65536;

unsafe extern "C" {
    /// Where the linker ends the stack and static data: the first byte free for the heap.
    static __heap_base: u8;
}

/// Hands dlmalloc the initial memory's free tail first, then pages from `memory.grow`.
struct Pages {
    tail_unused: Cell<bool>,
}

// SAFETY: wasm32 hooks run on one thread; nothing is shared.
unsafe impl Send for Pages {}

// SAFETY: regions handed out are never handed out twice (the tail once, grown pages are new), and
// nothing is ever released.
unsafe impl dlmalloc::Allocator for Pages {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        if self.tail_unused.get() {
            let start = (&raw const __heap_base as usize).next_multiple_of(16);
            let end = wasm32::memory_size(0) * PAGE;
            if end.saturating_sub(start) >= size {
                self.tail_unused.set(false);
                return (start as *mut u8, end - start, 0);
            }
        }
        let pages = size.div_ceil(PAGE);
        match wasm32::memory_grow(0, pages) {
            usize::MAX => (core::ptr::null_mut(), 0, 0),
            previous => ((previous * PAGE) as *mut u8, pages * PAGE, 0),
        }
    }

    fn remap(&self, _: *mut u8, _: usize, _: usize, _: bool) -> *mut u8 {
        core::ptr::null_mut()
    }

    fn free_part(&self, _: *mut u8, _: usize, _: usize) -> bool {
        false
    }

    fn free(&self, _: *mut u8, _: usize) -> bool {
        false
    }

    fn can_release_part(&self, _: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        // The tail is handed out once, before anything wrote to it; grown pages are zero.
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

struct Heap(UnsafeCell<dlmalloc::Dlmalloc<Pages>>);

// SAFETY: wasm32 hooks run on one thread.
unsafe impl Sync for Heap {}

#[global_allocator]
static HEAP: Heap = Heap(UnsafeCell::new(dlmalloc::Dlmalloc::new_with_allocator(
    Pages {
        tail_unused: Cell::new(true),
    },
)));

// SAFETY: each call forwards to dlmalloc with the layout the caller gave, on the one thread.
unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { (*self.0.get()).free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}
