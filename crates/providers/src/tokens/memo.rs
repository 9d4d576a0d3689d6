//! Token counts of short pieces, remembered per thread. Prompts repeat their words, and BPE on a
//! piece (an automaton walk and an allocation) costs several times a lookup here. One fixed table
//! per encoding and thread, direct-mapped: a piece evicts whatever shared its slot, so the memory
//! is bounded (`TABLES` × `SLOTS` slots of 24 bytes for each thread that counts: the runtime's
//! workers) whatever the traffic.

use std::cell::RefCell;

/// Pieces longer than this are counted every time (they are rare: long words, runs of spaces).
const LONGEST: usize = 16;
const SLOT_BITS: u32 = 11;
const SLOTS: usize = 1 << SLOT_BITS;
/// One table per encoding (`Rules as usize`).
const TABLES: usize = 2;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// The piece's bytes, as `key` reads them: with `len`, they are the whole piece.
    key: (u64, u64),
    /// 0 for an empty slot: no piece is empty.
    len: u8,
    count: u8,
}

/// A piece of 1 to 16 bytes in two words, without a loop or a copy of unknown length: its first
/// and last 8 (or 4) bytes, overlapping when shorter than 16 (or 8); its first, middle and last
/// byte when shorter than 4. Together with the length they name the piece exactly.
fn key(piece: &[u8]) -> (u64, u64) {
    let n = piece.len();
    if n >= 8 {
        let (mut first, mut last) = ([0u8; 8], [0u8; 8]);
        first.copy_from_slice(&piece[..8]);
        last.copy_from_slice(&piece[n - 8..]);
        (u64::from_le_bytes(first), u64::from_le_bytes(last))
    } else if n >= 4 {
        let (mut first, mut last) = ([0u8; 4], [0u8; 4]);
        first.copy_from_slice(&piece[..4]);
        last.copy_from_slice(&piece[n - 4..]);
        (u64::from(u32::from_le_bytes(first)), u64::from(u32::from_le_bytes(last)))
    } else {
        let (a, b, c) = (piece[0], piece[n / 2], piece[n - 1]);
        (u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16, 0)
    }
}

thread_local! {
    static MEMO: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// One encoding's slots, held for one count; `None` (nothing remembered) where the thread's
/// memo is out of reach.
pub(crate) struct Table<'a>(Option<&'a mut [Slot]>);

impl Table<'_> {
    pub(crate) fn none() -> Self {
        Table(None)
    }

    /// `piece`'s count, from the memo or from `count` (then remembered).
    pub(crate) fn count(&mut self, piece: &[u8], count: impl FnOnce(&[u8]) -> usize) -> usize {
        let Some(slots) = self.0.as_deref_mut() else { return count(piece) };
        if piece.is_empty() || piece.len() > LONGEST {
            return count(piece);
        }
        let key = key(piece);
        let len = piece.len() as u8;
        let folded = key.0 ^ key.1.rotate_left(31) ^ u64::from(len);
        let slot = &mut slots[(folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - SLOT_BITS)) as usize % SLOTS];
        if slot.len == len && slot.key == key {
            return usize::from(slot.count);
        }
        let n = count(piece);
        // A piece of at most 16 bytes has at most 16 tokens; anything else is not remembered.
        if let Ok(small) = u8::try_from(n) {
            *slot = Slot { key, len, count: small };
        }
        n
    }
}

/// Runs `f` with table `table` of this thread's memo; `None` where the thread has none (it is
/// being torn down).
pub(crate) fn with_table<R>(table: usize, f: impl FnOnce(&mut Table<'_>) -> R) -> Option<R> {
    MEMO.try_with(|memo| match memo.try_borrow_mut() {
        Ok(mut slots) => {
            if slots.is_empty() {
                slots.resize(TABLES * SLOTS, Slot::default());
            }
            match slots.get_mut(table * SLOTS..(table + 1) * SLOTS) {
                Some(slots) => f(&mut Table(Some(slots))),
                None => f(&mut Table::none()),
            }
        }
        Err(_) => f(&mut Table::none()),
    })
    .ok()
}
