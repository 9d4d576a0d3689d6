//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), which ConverseStream
//! answers with instead of SSE.
//!
//! A message is: total length (u32, big-endian), headers length (u32), a CRC32 of those eight
//! bytes, the headers, the payload, and a CRC32 of everything before it. Each header is a
//! one-byte name length, the name, a one-byte value type and the value (type 7, a string with a
//! u16 length, is what Bedrock sends; the others are decoded too so a new header cannot break a
//! stream). Both CRCs are checked: a corrupted frame must end the stream with an error rather
//! than hand a half-right chunk to the client.

use base64::Engine as _;

/// AWS caps a message at 16 MiB; a larger length means the framing is lost, not a big event.
const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// Prelude (12 bytes) plus the trailing message CRC (4 bytes).
const OVERHEAD: usize = 16;

/// One decoded event-stream message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventMessage {
    /// In order of appearance; non-string values rendered as text.
    pub headers: Vec<(String, String)>,
    pub payload: Vec<u8>,
}

impl EventMessage {
    /// The first header called `name` (`:event-type`, `:message-type`, `:exception-type`, …).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Incremental decoder: [`push`](Self::push) bytes as they arrive, in any split, then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)` (needs more bytes). An `Err`
/// means the framing is corrupt; the stream cannot be resynchronised and must be abandoned.
#[derive(Debug, Default)]
pub struct EventStreamDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already consumed; compacted lazily so pushing stays cheap.
    pos: usize,
}

impl EventStreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 64 * 1024 && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet part of a returned message: non-zero at the end of a stream
    /// means it was cut off mid-message.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn next_message(&mut self) -> Result<Option<EventMessage>, String> {
        let data = &self.buf[self.pos..];
        if data.len() < 12 {
            return Ok(None);
        }
        let total = be32(&data[0..4]) as usize;
        let headers_len = be32(&data[4..8]) as usize;
        let prelude_crc = be32(&data[8..12]);
        if crc32(&data[0..8]) != prelude_crc {
            return Err("event stream: prelude checksum mismatch (corrupt or misaligned frame)".into());
        }
        if !(OVERHEAD..=MAX_MESSAGE).contains(&total) || headers_len > total - OVERHEAD {
            return Err(format!("event stream: impossible frame lengths (total {total}, headers {headers_len})"));
        }
        if data.len() < total {
            return Ok(None);
        }
        let frame = &data[..total];
        let message_crc = be32(&frame[total - 4..]);
        if crc32(&frame[..total - 4]) != message_crc {
            return Err("event stream: message checksum mismatch (corrupt frame)".into());
        }
        let headers = parse_headers(&frame[12..12 + headers_len])?;
        let payload = frame[12 + headers_len..total - 4].to_vec();
        self.pos += total;
        Ok(Some(EventMessage { headers, payload }))
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, String)>, String> {
    let short = || "event stream: truncated header".to_string();
    let mut out = Vec::new();
    while !b.is_empty() {
        let name_len = b[0] as usize;
        let name = b.get(1..1 + name_len).ok_or_else(short)?;
        let name = String::from_utf8_lossy(name).into_owned();
        b = &b[1 + name_len..];
        let (&kind, rest) = b.split_first().ok_or_else(short)?;
        b = rest;
        let fixed = |b: &[u8], n: usize| b.get(..n).map(<[u8]>::to_vec).ok_or_else(short);
        let (value, used) = match kind {
            0 => ("true".to_string(), 0),
            1 => ("false".to_string(), 0),
            2 => ((fixed(b, 1)?[0] as i8).to_string(), 1),
            3 => (i16::from_be_bytes(fixed(b, 2)?.try_into().map_err(|_| short())?).to_string(), 2),
            4 => (i32::from_be_bytes(fixed(b, 4)?.try_into().map_err(|_| short())?).to_string(), 4),
            5 | 8 => (i64::from_be_bytes(fixed(b, 8)?.try_into().map_err(|_| short())?).to_string(), 8),
            6 | 7 => {
                let len = u16::from_be_bytes(fixed(b, 2)?.try_into().map_err(|_| short())?) as usize;
                let v = b.get(2..2 + len).ok_or_else(short)?;
                let text = if kind == 7 {
                    String::from_utf8_lossy(v).into_owned()
                } else {
                    base64::engine::general_purpose::STANDARD.encode(v)
                };
                (text, 2 + len)
            }
            9 => (hex::encode(fixed(b, 16)?), 16),
            other => return Err(format!("event stream: unknown header value type {other} for {name:?}")),
        };
        b = &b[used..];
        out.push((name, value));
    }
    Ok(out)
}

/// One event-stream message with string headers (for the mock and tests).
pub fn encode_event(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        // Names are at most 255 bytes and values 65535 by the format; ours are short constants.
        let name = &name.as_bytes()[..name.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(u16::MAX as usize)];
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value);
    }
    let total = OVERHEAD + h.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as the event-stream format uses.
pub(crate) fn crc32(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut crc = !0u32;
    for &b in data {
        crc = TABLE[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The standard CRC-32 check value.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// AWS's event-stream test suite `int32_header` style: non-string header types decode.
    #[test]
    fn decodes_other_header_types() {
        let mut h = Vec::new();
        h.extend_from_slice(&[4, b'b', b'o', b'o', b'l', 0]);
        h.extend_from_slice(&[3, b'i', b'3', b'2', 4, 0, 0, 0, 42]);
        h.extend_from_slice(&[1, b'u', 9]);
        h.extend_from_slice(&[0xAB; 16]);
        let total = OVERHEAD + h.len();
        let mut m = Vec::new();
        m.extend_from_slice(&(total as u32).to_be_bytes());
        m.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let c = crc32(&m);
        m.extend_from_slice(&c.to_be_bytes());
        m.extend_from_slice(&h);
        let c = crc32(&m);
        m.extend_from_slice(&c.to_be_bytes());
        let mut d = EventStreamDecoder::new();
        d.push(&m);
        let msg = d.next_message().unwrap().unwrap();
        assert_eq!(msg.header("bool"), Some("true"));
        assert_eq!(msg.header("i32"), Some("42"));
        assert_eq!(msg.header("u"), Some("abababababababababababababababab"));
        assert!(msg.payload.is_empty());
        assert_eq!(d.pending(), 0);
    }
}
