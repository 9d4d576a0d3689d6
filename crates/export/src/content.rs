//! A call's prompt and answer, kept for the logging callbacks as the JSON bytes the request path
//! holds (copied once, never parsed into a tree), and bounded: one record keeps at most
//! [`MAX_ONE`] bytes of each, and all queued records together at most [`MAX_HELD`] — past that,
//! records go out without their content, so a collector that is down cannot make queued bodies
//! hold the process's memory.
//!
//! Copied rather than shared: the request path's bytes are slices of a connection's read
//! buffer, and a slice kept until its record is exported (up to a second, in a batch) would keep
//! that whole buffer from being reused — the connection allocates another for its next read,
//! and [`MAX_HELD`] would count the slices but not the buffers they pin.

use bytes::Bytes;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest prompt or answer a record carries.
pub const MAX_ONE: usize = 1024 * 1024;
/// The most content bytes held by every record not yet delivered, all sinks together.
pub const MAX_HELD: usize = 64 * 1024 * 1024;

static HELD: AtomicUsize = AtomicUsize::new(0);

/// JSON text (an array of messages, a prompt string, an answer object) that a record carries
/// as it is, counted against [`MAX_HELD`] until the record is dropped.
#[derive(Debug)]
pub struct Content {
    json: Bytes,
}

impl Content {
    /// A copy of `json` kept, or `None` when it is larger than [`MAX_ONE`] or the records queued
    /// already hold [`MAX_HELD`].
    pub fn hold(json: &[u8]) -> Option<Content> {
        let len = json.len();
        if len > MAX_ONE {
            return None;
        }
        let mut held = HELD.load(Ordering::Relaxed);
        loop {
            if held + len > MAX_HELD {
                return None;
            }
            match HELD.compare_exchange_weak(held, held + len, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some(Content { json: Bytes::copy_from_slice(json) }),
                Err(now) => held = now,
            }
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.json
    }

    /// The text, when it is UTF-8 (it came from a JSON body that was read as text).
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.json).ok()
    }
}

impl Drop for Content {
    fn drop(&mut self) {
        HELD.fetch_sub(self.json.len(), Ordering::Relaxed);
    }
}

/// Written as the JSON it is; text that is not valid JSON (it always is: the sniffer took it
/// from a JSON body) is written as a string rather than breaking the record.
impl Serialize for Content {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = String::from_utf8_lossy(&self.json);
        match serde_json::from_str::<&serde_json::value::RawValue>(&text) {
            Ok(raw) => raw.serialize(s),
            Err(_) => s.serialize_str(&text),
        }
    }
}

/// The bytes all queued records hold now (for tests and the bench).
pub fn held() -> usize {
    HELD.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test: the budget is process-wide, and a test filling it would starve another.
    #[test]
    fn content_is_written_as_json_and_bounded() {
        let c = Content::hold(br#"[{"role":"user","content":"hi"}]"#).unwrap();
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"[{"role":"user","content":"hi"}]"#);
        let odd = Content::hold(b"not json").unwrap();
        assert_eq!(serde_json::to_string(&odd).unwrap(), r#""not json""#);
        assert!(Content::hold(&vec![b' '; MAX_ONE + 1]).is_none());

        let chunk = Bytes::from(vec![b'1'; MAX_ONE]);
        let mut kept = Vec::new();
        while let Some(c) = Content::hold(&chunk) {
            kept.push(c);
            assert!(kept.len() <= MAX_HELD / MAX_ONE, "held past the bound");
        }
        assert!(held() + MAX_ONE > MAX_HELD);
        kept.clear();
        assert!(Content::hold(&chunk).is_some(), "dropped records give their bytes back");
    }
}
