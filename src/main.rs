//! The `proxy` binary: everything lives in the library; this maps the outcome to an exit code.

#[global_allocator]
static GLOBAL: Mi = Mi;

/// mimalloc, entered by its plain `mi_malloc`/`mi_realloc` whenever the alignment is one every
/// block has anyway (16 bytes, mimalloc's `MI_MAX_ALIGN_SIZE`; as std's `System` does). The
/// `mimalloc` crate calls `mi_malloc_aligned` for every allocation, and v3 serves that from its
/// fast path only up to 1 KiB: the read buffers and boxed futures of every request went
/// through the generic over-allocating path instead (callgrind: ~5 of ~22 allocations per
/// request, at several times the cost of a small one).
struct Mi;

/// Every mimalloc block of 16 bytes or more is 16-byte aligned, and smaller blocks are aligned
/// to their size class, which a Rust layout's size (a multiple of its alignment) never
/// undercuts.
const MI_MAX_ALIGN: usize = 16;

// SAFETY: each method forwards to the mimalloc function with the same contract; the plain
// entry points are used only when their guaranteed alignment covers the layout's.
unsafe impl std::alloc::GlobalAlloc for Mi {
    #[inline]
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys as mi;
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        use libmimalloc_sys as mi;
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: std::alloc::Layout) {
        // SAFETY: `ptr` came from this allocator (mimalloc frees aligned blocks the same way).
        unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        use libmimalloc_sys as mi;
        // SAFETY: see the impl; the alignment is the block's own, kept across the move.
        unsafe {
            if layout.align() <= MI_MAX_ALIGN {
                mi::mi_realloc(ptr.cast(), new).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast(), new, layout.align()).cast()
            }
        }
    }
}

/// mimalloc's `arena_eager_commit` option, by its index in v3's `mi_option_e` (the Rust
/// bindings name it only for v2).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Runs from `.init_array`, before the first allocation: mimalloc reads the option when it
/// reserves its first arena, which is too early for `main`. Lazily committed arenas let
/// purged pages leave RSS: measured with `--cores 1`, 4.2 MB at start instead of 10 MB, and
/// 630 B instead of 1.3 KB per idle keep-alive connection (10,000 held).
extern "C" fn lazy_arena_commit() {
    // SAFETY: mi_option_set only stores the value in mimalloc's option table; this runs
    // single-threaded, before main.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0) };
}

#[used]
#[unsafe(link_section = ".init_array")]
static LAZY_ARENA_COMMIT: extern "C" fn() = lazy_arena_commit;

fn main() {
    std::process::exit(proxy::cli::main());
}
