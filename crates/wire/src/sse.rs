//! Reading server-sent events from an upstream, one event at a time, as bytes arrive.
//!
//! Upstreams are sloppy: the seed's fake never sends `[DONE]`, some servers use CRLF, omit the
//! space after `data:`, interleave `event:` lines and `:` keep-alive comments. The parser accepts
//! all of that and hands back each event's data; the gateway re-frames what it relays, so clients
//! always see canonical `data: ...\n\n` frames.

use bytes::{Buf, Bytes, BytesMut};

/// One event: its `event:` name (if any) and its data lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: Option<String>,
    pub data: Bytes,
}

impl Event {
    /// The `[DONE]` sentinel OpenAI sends last.
    pub fn is_done(&self) -> bool {
        self.data.trim_ascii() == b"[DONE]"
    }
}

/// An incremental SSE parser. Feed it chunks with [`Parser::push`], take events with
/// [`Parser::next_event`], and call [`Parser::finish`] at end of stream.
#[derive(Debug, Default)]
pub struct Parser {
    buf: BytesMut,
    /// Bytes of `buf` already scanned for a line end, so a long line is not rescanned per chunk.
    scanned: usize,
    name: Option<String>,
    data: Option<BytesMut>,
    /// Upper bound on one buffered line; a runaway upstream cannot make the gateway buffer forever.
    max_line: usize,
}

/// The upstream sent a line longer than the parser accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong;

impl Parser {
    pub fn new() -> Self {
        Parser { max_line: 16 * 1024 * 1024, ..Parser::default() }
    }

    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, if the buffered bytes hold one.
    pub fn next_event(&mut self) -> Result<Option<Event>, LineTooLong> {
        loop {
            let Some(pos) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max_line {
                    return Err(LineTooLong);
                }
                return Ok(None);
            };
            let end = self.scanned + pos;
            let mut skip = 1;
            if self.buf[end] == b'\r' {
                match self.buf.get(end + 1) {
                    Some(b'\n') => skip = 2,
                    Some(_) => {}
                    // A lone CR at the end of the buffer may be the first half of CRLF.
                    None => return Ok(None),
                }
            }
            let line = self.buf.split_to(end).freeze();
            self.buf.advance(skip);
            self.scanned = 0;
            if let Some(event) = self.line(line) {
                return Ok(Some(event));
            }
        }
    }

    /// End of stream: an event left without its closing blank line is still delivered.
    pub fn finish(&mut self) -> Option<Event> {
        if !self.buf.is_empty() {
            let line = self.buf.split().freeze();
            self.scanned = 0;
            if let Some(event) = self.line(line) {
                return Some(event);
            }
        }
        self.dispatch()
    }

    fn line(&mut self, line: Bytes) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return None;
        }
        let (field, value) = match memchr::memchr(b':', &line) {
            Some(i) => {
                let mut v = line.slice(i + 1..);
                if v.first() == Some(&b' ') {
                    v = v.slice(1..);
                }
                (line.slice(..i), v)
            }
            None => (line.clone(), Bytes::new()),
        };
        match &field[..] {
            b"data" => match &mut self.data {
                Some(d) => {
                    d.extend_from_slice(b"\n");
                    d.extend_from_slice(&value);
                }
                None => self.data = Some(BytesMut::from(&value[..])),
            },
            b"event" => self.name = Some(String::from_utf8_lossy(&value).into_owned()),
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let name = self.name.take();
        self.data.take().map(|d| Event { name, data: d.freeze() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(input: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for chunk in input {
            p.push(chunk);
            while let Some(e) = p.next_event().unwrap() {
                out.push(e);
            }
        }
        out.extend(p.finish());
        out
    }

    #[test]
    fn parses_canonical_frames_split_anywhere() {
        let text = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
        for split in 0..text.len() {
            let events = all(&[&text[..split], &text[split..]]);
            assert_eq!(events.len(), 3, "split at {split}");
            assert_eq!(&events[0].data[..], b"{\"a\":1}");
            assert!(events[2].is_done());
        }
    }

    #[test]
    fn tolerates_crlf_no_space_comments_events_and_missing_final_blank_line() {
        let events =
            all(&[b": keep-alive\r\nevent: message_start\r\ndata:{\"x\":1}\r\n\r\ndata: a\ndata: b\n\ndata: tail"]);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].name.as_deref(), Some("message_start"));
        assert_eq!(&events[0].data[..], b"{\"x\":1}");
        assert_eq!(&events[1].data[..], b"a\nb");
        assert_eq!(&events[2].data[..], b"tail");
    }

    #[test]
    fn cr_split_across_chunks_is_one_line_end() {
        let events = all(&[b"data: 1\r", b"\n\r", b"\ndata: 2\n\n"]);
        assert_eq!(events.len(), 2);
        assert_eq!(&events[0].data[..], b"1");
    }

    #[test]
    fn bounds_runaway_lines() {
        let mut p = Parser { max_line: 8, ..Parser::new() };
        p.push(b"data: 0123456789");
        assert_eq!(p.next_event(), Err(LineTooLong));
    }
}
