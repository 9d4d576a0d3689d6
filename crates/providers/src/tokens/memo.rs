//! Token counts remembered per thread: of short pieces, and of spans (runs of whole pieces, see
//! `pieces::span_end`). Prompts repeat their words, and BPE on a piece (an automaton walk and an
//! allocation) costs several times a lookup here; a span found here also skips cutting its
//! pieces, which for a UUID or a number is most of the work. One fixed table per encoding and
//! thread of two-slot buckets for keys up to 15 bytes (a piece's or a span's, told apart by a
//! tag: a span's count is its pieces' sum, not the BPE of its bytes), where a key evicts the older
//! of its bucket's two, and one direct-mapped table for spans of 16 to 48 bytes; so the memory is
//! bounded (`TABLES` × (`SLOTS` × 24 + `LONG_SLOTS` × 64 + `CHUNK_SLOTS` × 16) bytes, 160 KiB,
//! for each thread that counts: the runtime's workers) whatever the traffic. Two ways rather than
//! one because two pieces of a repeated sentence that share a direct-mapped slot evict each other
//! on every repetition.
//!
//! A lookup sits in the estimate's inner loop, so its key is the bytes as two words read straight
//! from the text (two unaligned 8-byte reads, the bytes past the key masked off by a table of
//! masks) rather than assembled byte by byte, and the tables' sizes are fixed so that an index
//! needs no bounds check.
//!
//! Chunks (`chunks`: runs of spans hundreds of bytes long) are remembered by a hash of their
//! bytes, keyed by a seed of the thread's own, and their length, in two-way buckets: a chunk's
//! bytes are too long to keep, and the seed keeps anyone from choosing a text whose chunk would
//! answer for another's.

use std::cell::RefCell;

/// Pieces longer than this are counted every time (they are rare: long words, runs of spaces).
/// 15 rather than 16 leaves a key's last byte free for the length and the tag.
const LONGEST: usize = 15;
/// Spans longer than this are counted piece by piece every time.
const LONGEST_SPAN: usize = 48;
const SLOT_BITS: u32 = 11;
const SLOTS: usize = 1 << SLOT_BITS;
const BUCKETS: usize = SLOTS / 2;
const LONG_BITS: u32 = 8;
const LONG_SLOTS: usize = 1 << LONG_BITS;
/// One table per encoding (`Rules as usize`).
const TABLES: usize = 2;
/// In a short key's last byte, beside the length: the key is a span's.
const SPAN: u64 = 0x80;
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
const CHUNK_BITS: u32 = 10;
const CHUNK_SLOTS: usize = 1 << CHUNK_BITS;
const CHUNK_BUCKETS: usize = CHUNK_SLOTS / 2;

#[derive(Clone, Copy, Default)]
struct Slot {
    /// The bytes, little-endian, zero past their end, and their length (with `SPAN` for a span)
    /// in the last byte: the whole key. All zero for an empty slot: no key is empty.
    key: [u64; 2],
    count: u8,
}

/// A span of 16 to `LONGEST_SPAN` bytes and its count.
#[derive(Clone, Copy)]
struct Long {
    hash: u64,
    /// 0 for an empty slot.
    len: u8,
    count: u8,
    bytes: [u8; LONGEST_SPAN],
}

impl Default for Long {
    fn default() -> Self {
        Long { hash: 0, len: 0, count: 0, bytes: [0; LONGEST_SPAN] }
    }
}

/// A chunk's hash, length and count; all zero for an empty slot (no chunk is empty).
#[derive(Clone, Copy, Default)]
struct ChunkSlot {
    hash: u64,
    len: u32,
    count: u32,
}

/// What a chunk is looked up and remembered by: its bytes' hash and its length.
#[derive(Clone, Copy)]
pub(crate) struct ChunkKey {
    hash: u64,
    len: u32,
}

/// The `len` (1 to 15) bytes at `text[start..]` as two words, zero past them, and `len | tag` as
/// the last byte. Away from the text's end this is two unaligned 8-byte reads and a mask.
#[inline(always)]
fn key(text: &[u8], start: usize, len: usize, tag: u64) -> [u64; 2] {
    let mask = MASKS[len];
    let words = match text.get(start..start + 16) {
        Some(window) => [word(&window[..8]), word(&window[8..])],
        None => key_at_end(&text[start..start + len]),
    };
    [words[0] & mask[0], words[1] & mask[1] | (len as u64 | tag) << 56]
}

/// `key` for bytes that end less than 16 bytes before the text does.
#[cold]
fn key_at_end(piece: &[u8]) -> [u64; 2] {
    let mut window = [0u8; 16];
    window[..piece.len()].copy_from_slice(piece);
    [word(&window[..8]), word(&window[8..])]
}

#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or_default())
}

/// `MASKS[n]` keeps the first `n` bytes of two little-endian words.
static MASKS: [[u64; 2]; 16] = {
    let mut masks = [[0; 2]; 16];
    let mut n = 1;
    while n <= LONGEST {
        masks[n] = if n <= 8 { [u64::MAX >> (64 - 8 * n), 0] } else { [u64::MAX, u64::MAX >> (128 - 8 * n)] };
        n += 1;
    }
    masks
};

/// A hash of 16 or more bytes: their 8-byte words, the last one overlapping.
#[inline(always)]
fn long_hash(bytes: &[u8]) -> u64 {
    let (words, _) = bytes.as_chunks::<8>();
    let last = word(&bytes[bytes.len() - 8..]);
    let mut h = bytes.len() as u64 ^ last.wrapping_mul(MULTIPLIER);
    for w in words {
        h = (h ^ u64::from_le_bytes(*w)).wrapping_mul(MULTIPLIER).rotate_left(23);
    }
    h
}

/// A thread's memo: both encodings' tables side by side.
struct Memo {
    short: Vec<Slot>,
    long: Vec<Long>,
    chunks: Vec<ChunkSlot>,
    /// The chunks' hash, seeded per thread.
    seed: foldhash::fast::RandomState,
}

thread_local! {
    static MEMO: RefCell<Option<Memo>> = const { RefCell::new(None) };
}

/// One encoding's tables, held for one count; `None` (nothing remembered) where the thread's
/// memo is out of reach.
pub(crate) struct Table<'a>(Option<Parts<'a>>);

struct Parts<'a> {
    short: &'a mut [[Slot; 2]; BUCKETS],
    long: &'a mut [Long; LONG_SLOTS],
    chunks: &'a mut [[ChunkSlot; 2]; CHUNK_BUCKETS],
    seed: &'a foldhash::fast::RandomState,
}

impl Table<'_> {
    pub(crate) fn none() -> Self {
        Table(None)
    }

    #[inline(always)]
    fn bucket(&mut self, key: [u64; 2]) -> Option<&mut [Slot; 2]> {
        let short = &mut self.0.as_mut()?.short;
        let folded = key[0] ^ key[1].rotate_left(29);
        Some(&mut short[(folded.wrapping_mul(MULTIPLIER) >> (64 - SLOT_BITS + 1)) as usize])
    }

    /// The count of the piece `text[start..end]`, from the memo or from `count`
    /// (then remembered).
    #[inline(always)]
    pub(crate) fn count(&mut self, text: &[u8], start: usize, end: usize, count: impl FnOnce(&[u8]) -> usize) -> usize {
        let len = end - start;
        if len == 0 || len > LONGEST {
            return count(&text[start..end]);
        }
        let key = key(text, start, len, 0);
        let Some(bucket) = self.bucket(key) else { return count(&text[start..end]) };
        for slot in bucket.iter() {
            if slot.key == key {
                return usize::from(slot.count);
            }
        }
        let n = count(&text[start..end]);
        // A piece of at most 15 bytes has at most 15 tokens; anything else is not remembered.
        if let Ok(small) = u8::try_from(n) {
            *bucket = [Slot { key, count: small }, bucket[0]];
        }
        n
    }

    /// The count remembered for the span `text[start..end]`, if any.
    #[inline(always)]
    pub(crate) fn span(&mut self, text: &[u8], start: usize, end: usize) -> Option<u64> {
        let len = end - start;
        if len == 0 {
            return None;
        }
        if len <= LONGEST {
            let key = key(text, start, len, SPAN);
            let bucket = self.bucket(key)?;
            return bucket.iter().find(|slot| slot.key == key).map(|slot| u64::from(slot.count));
        }
        if len > LONGEST_SPAN {
            return None;
        }
        let long = &self.0.as_mut()?.long;
        let bytes = &text[start..end];
        let hash = long_hash(bytes);
        let slot = &long[(hash.wrapping_mul(MULTIPLIER) >> (64 - LONG_BITS)) as usize];
        (slot.hash == hash && usize::from(slot.len) == len && slot.bytes[..len] == *bytes)
            .then_some(u64::from(slot.count))
    }

    /// Remembers `count` for the span `text[start..end]`.
    pub(crate) fn remember_span(&mut self, text: &[u8], start: usize, end: usize, count: u64) {
        let len = end - start;
        let Ok(count) = u8::try_from(count) else { return };
        if len == 0 || len > LONGEST_SPAN {
            return;
        }
        if len <= LONGEST {
            let key = key(text, start, len, SPAN);
            if let Some(bucket) = self.bucket(key) {
                *bucket = [Slot { key, count }, bucket[0]];
            }
            return;
        }
        let Some(Parts { long, .. }) = self.0.as_mut() else { return };
        let bytes = &text[start..end];
        let hash = long_hash(bytes);
        let slot = &mut long[(hash.wrapping_mul(MULTIPLIER) >> (64 - LONG_BITS)) as usize];
        slot.hash = hash;
        slot.len = len as u8;
        slot.count = count;
        slot.bytes[..len].copy_from_slice(bytes);
    }

    /// What the chunk `bytes` is remembered by; `None` where nothing is remembered.
    pub(crate) fn chunk_key(&self, bytes: &[u8]) -> Option<ChunkKey> {
        use std::hash::BuildHasher;
        let parts = self.0.as_ref()?;
        Some(ChunkKey { hash: parts.seed.hash_one(bytes), len: u32::try_from(bytes.len()).ok()? })
    }

    fn chunk_bucket(&mut self, key: ChunkKey) -> Option<&mut [ChunkSlot; 2]> {
        let chunks = &mut self.0.as_mut()?.chunks;
        Some(&mut chunks[(key.hash >> (64 - CHUNK_BITS + 1)) as usize])
    }

    /// The count remembered for the chunk `key` names, if any.
    pub(crate) fn chunk(&mut self, key: ChunkKey) -> Option<u64> {
        let bucket = self.chunk_bucket(key)?;
        bucket.iter().find(|s| s.hash == key.hash && s.len == key.len).map(|s| u64::from(s.count))
    }

    /// Remembers `count` for the chunk `key` names.
    pub(crate) fn remember_chunk(&mut self, key: ChunkKey, count: u64) {
        let Ok(count) = u32::try_from(count) else { return };
        if let Some(bucket) = self.chunk_bucket(key) {
            *bucket = [ChunkSlot { hash: key.hash, len: key.len, count }, bucket[0]];
        }
    }
}

/// Runs `f` with table `table` of this thread's memo; `None` where the thread has none (it is
/// being torn down).
pub(crate) fn with_table<R>(table: usize, f: impl FnOnce(&mut Table<'_>) -> R) -> Option<R> {
    MEMO.try_with(|memo| match memo.try_borrow_mut() {
        Ok(mut memo) => {
            let memo = memo.get_or_insert_with(|| Memo {
                short: vec![Slot::default(); TABLES * SLOTS],
                long: vec![Long::default(); TABLES * LONG_SLOTS],
                chunks: vec![ChunkSlot::default(); TABLES * CHUNK_SLOTS],
                seed: foldhash::fast::RandomState::default(),
            });
            let Memo { short, long, chunks, seed } = memo;
            let short = short.get_mut(table * SLOTS..(table + 1) * SLOTS).map(|s| s.as_chunks_mut::<2>().0);
            let short = short.and_then(|buckets| buckets.try_into().ok());
            let long = long.get_mut(table * LONG_SLOTS..(table + 1) * LONG_SLOTS).and_then(|s| s.try_into().ok());
            let chunks =
                chunks.get_mut(table * CHUNK_SLOTS..(table + 1) * CHUNK_SLOTS).map(|s| s.as_chunks_mut::<2>().0);
            let chunks = chunks.and_then(|buckets| buckets.try_into().ok());
            let parts = match (short, long, chunks) {
                (Some(short), Some(long), Some(chunks)) => Some(Parts { short, long, chunks, seed }),
                _ => None,
            };
            f(&mut Table(parts))
        }
        Err(_) => f(&mut Table::none()),
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in count that tells keys apart: any slot answering for the wrong key shows.
    fn fake(bytes: &[u8]) -> usize {
        bytes.iter().fold(bytes.len(), |h, &b| (h * 31 + usize::from(b)) % 251)
    }

    #[test]
    fn keys_are_the_whole_bytes() {
        // Zero bytes, prefixes and suffixes of one another, every length up to past the longest
        // span, near the text's end and away from it.
        let mut text = Vec::new();
        for n in 0..70u8 {
            text.extend((0..n).map(|i| if i % 3 == 0 { 0 } else { b'a' + i % 5 }));
            text.push(b' ');
        }
        text.extend([0u8; 40]);
        with_table(0, |table| {
            for round in 0..2 {
                for start in (0..text.len()).step_by(7) {
                    for end in start + 1..text.len().min(start + 60) {
                        let piece = &text[start..end];
                        let n = table.count(&text, start, end, fake);
                        assert_eq!(n, fake(piece), "piece {piece:?}");
                        let span = fake(piece) as u64 + 1;
                        match table.span(&text, start, end) {
                            Some(remembered) if round == 1 && end - start <= LONGEST_SPAN => {
                                assert_eq!(remembered, span, "span {piece:?}")
                            }
                            Some(remembered) => assert_eq!(remembered, span, "span {piece:?}"),
                            None => table.remember_span(&text, start, end, span),
                        }
                        // A span's count never answers for a piece of the same bytes.
                        assert_eq!(table.count(&text, start, end, fake), fake(piece));
                    }
                }
            }
        });
    }
}
