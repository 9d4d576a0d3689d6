//! One cached answer and its bytes at rest (in memory or in Redis): the answer as the client
//! saw it whole (a streamed answer is kept assembled, [`crate::assemble`]), when it was made,
//! and its shape, so a hit can be replayed whole or as a stream ([`crate::replay`]).

use crate::key::Shape;
use bytes::{BufMut, Bytes, BytesMut};

const MAGIC: &[u8; 4] = b"SLC1";
const HEADER: usize = MAGIC.len() + 8 + 1;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Unix milliseconds when the answer was stored: what `s-maxage` compares with.
    pub created_ms: u64,
    pub shape: Shape,
    /// The whole answer's JSON.
    pub answer: Bytes,
}

impl Entry {
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(HEADER + self.answer.len());
        out.put_slice(MAGIC);
        out.put_u64_le(self.created_ms);
        out.put_u8(self.shape.code());
        out.put_slice(&self.answer);
        out.freeze()
    }

    /// `None` for bytes this build did not write (another version's, or not ours at all):
    /// a miss, never an error.
    pub fn decode(bytes: Bytes) -> Option<Entry> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return None;
        }
        let created_ms = u64::from_le_bytes(bytes[4..12].try_into().ok()?);
        let shape = Shape::from_code(bytes[12])?;
        Some(Entry { created_ms, shape, answer: bytes.slice(HEADER..) })
    }

    /// The answer's age at `now_ms`.
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.created_ms)
    }

    /// Whether the answer reports its usage.
    pub fn has_usage(&self) -> bool {
        sluice_wire::sniff::response(&self.answer).is_ok_and(|r| r.usage.is_some())
    }

    /// What the entry holds, for the size bounds.
    pub fn size(&self) -> usize {
        HEADER + self.answer.len()
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let e =
            Entry { created_ms: 1_700_000_000_123, shape: Shape::Embedding, answer: Bytes::from_static(b"{\"a\":1}") };
        assert_eq!(Entry::decode(e.encode()), Some(e));
    }

    proptest! {
        #[test]
        fn foreign_bytes_are_a_miss_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Entry::decode(Bytes::from(bytes));
        }

        #[test]
        fn a_cut_or_changed_entry_is_a_miss_or_itself(cut in 0usize..20, flip in 0usize..20) {
            let e = Entry { created_ms: 5, shape: Shape::Chat, answer: Bytes::from_static(b"{}") };
            let mut bytes = e.encode().to_vec();
            if flip < bytes.len() { bytes[flip] ^= 0x40; }
            bytes.truncate(bytes.len().saturating_sub(cut % 3));
            if let Some(d) = Entry::decode(Bytes::from(bytes)) {
                prop_assert!(d.answer.len() <= 2);
            }
        }
    }
}
