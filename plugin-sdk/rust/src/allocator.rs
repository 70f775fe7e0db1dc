//! The allocator of a plugin built without WASI (`wasm32-unknown-unknown`,
//! what `tessera plugin build` makes by default).
//!
//! Every call usually runs on a fresh instance, so what matters is how
//! little a first allocation costs. Rust's own allocator for that target
//! starts with an empty heap and grows the linear memory for its first
//! allocation, and a grow is a protection change in the host's instance pool
//! and more pages to reset afterwards. This one starts in [`ARENA`], a region
//! of the module's initial memory that is zero and untouched until used, and
//! grows the memory only when a call needs more than that.
//!
//! Turn it off with `default-features = false` on the SDK dependency to use
//! an allocator of your own.

use core::alloc::Layout;
use core::arch::wasm32;
use core::mem::MaybeUninit;
use core::ptr::{NonNull, addr_of_mut};

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::cell::TalcSyncCell;
use talc::source::Source;
use talc::wasm::WasmBinning;

/// Bytes allocated before the memory grows.
const ARENA_BYTES: usize = 512 * 1024;
/// A WebAssembly page.
const PAGE: usize = 64 * 1024;
/// Grow by at least this many pages at once (1 MiB), so a plugin that
/// outgrows the arena does not grow a page per allocation.
const MIN_GROW_PAGES: usize = 16;

/// The initial heap: part of the module's zero-initialised data, so it costs
/// nothing until a page of it is written.
static mut ARENA: [MaybeUninit<u8>; ARENA_BYTES] = [MaybeUninit::uninit(); ARENA_BYTES];

#[global_allocator]
static ALLOCATOR: TalcSyncCell<ArenaThenGrow, WasmBinning> =
    TalcSyncCell::new_wasm(ArenaThenGrow {
        arena_claimed: false,
        end: None,
    });

/// Where memory comes from: [`ARENA`] first, then `memory.grow`, each grown
/// region extending the last one when they touch.
#[derive(Debug)]
struct ArenaThenGrow {
    arena_claimed: bool,
    /// The end of the heap made of grown memory, to extend.
    end: Option<NonNull<u8>>,
}

// SAFETY: `acquire` only claims memory nothing else uses (the arena, which
// only this module names, and pages `memory.grow` just added) and never
// allocates.
unsafe impl Source for ArenaThenGrow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.arena_claimed {
            talc.source.arena_claimed = true;
            // SAFETY: the arena is a static of this module that nothing else
            // reads or writes; it is handed to the allocator once.
            let base = addr_of_mut!(ARENA).cast::<u8>();
            if unsafe { talc.claim(base, ARENA_BYTES) }.is_some() {
                return Ok(());
            }
        }
        let needed = (layout.size() + layout.align() + PAGE).div_ceil(PAGE);
        let mut pages = needed.max(MIN_GROW_PAGES);
        let mut previous = wasm32::memory_grow::<0>(pages);
        if previous == usize::MAX && pages > needed {
            // Near the plugin's memory cap: what this allocation needs may
            // still fit where a whole step does not.
            pages = needed;
            previous = wasm32::memory_grow::<0>(pages);
        }
        if previous == usize::MAX {
            return Err(());
        }
        let base = (previous * PAGE) as *mut u8;
        let bytes = pages * PAGE;
        let new_end = base.wrapping_add(bytes);
        if let Some(end) = talc.source.end.take()
            && end.as_ptr() == base
        {
            // SAFETY: the grown pages start where the last grown heap ends.
            talc.source.end = Some(unsafe { talc.extend(end, new_end) });
            return Ok(());
        }
        // SAFETY: `memory.grow` just made these pages; nothing uses them.
        talc.source.end = unsafe { talc.claim(base, bytes) };
        if talc.source.end.is_some() {
            Ok(())
        } else {
            Err(())
        }
    }
}
