//! A cheap scanner for server-sent event streams: it finds `data:` lines that carry generated
//! text (a non-empty `"content"` or `"text"` string) without parsing any JSON, so that time to
//! first token and tokens/s cost a memchr per line.

use memchr::memmem;
use tokio::time::Instant;

/// What one stream yielded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFigures {
    /// From the request's start to the first content-bearing chunk.
    pub ttft_us: Option<u64>,
    /// Content-bearing chunks (about one token each with OpenAI-style streams).
    pub chunks: u64,
    /// Seconds from the first to the last content-bearing chunk.
    pub span_secs: f64,
}

/// Feeds on body frames as they arrive.
#[derive(Debug)]
pub struct SseScanner {
    started: Instant,
    /// The unfinished last line of the previous frame.
    carry: Vec<u8>,
    chunks: u64,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl SseScanner {
    /// `started`: when the request started (TTFT is measured from it).
    pub fn new(started: Instant) -> SseScanner {
        SseScanner { started, carry: Vec::new(), chunks: 0, first: None, last: None }
    }

    /// One body frame, received at `now`.
    pub fn feed(&mut self, data: &[u8], now: Instant) {
        let mut rest = data;
        if !self.carry.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    let mut line = std::mem::take(&mut self.carry);
                    line.extend_from_slice(&rest[..i]);
                    self.line(&line, now);
                    rest = &rest[i + 1..];
                }
                None => {
                    self.carry.extend_from_slice(rest);
                    return;
                }
            }
        }
        while let Some(i) = memchr::memchr(b'\n', rest) {
            self.line(&rest[..i], now);
            rest = &rest[i + 1..];
        }
        self.carry.extend_from_slice(rest);
    }

    fn line(&mut self, line: &[u8], now: Instant) {
        let Some(payload) = line.strip_prefix(b"data:") else {
            return;
        };
        if has_text(payload, b"\"content\":") || has_text(payload, b"\"text\":") {
            self.chunks += 1;
            self.first.get_or_insert(now);
            self.last = Some(now);
        }
    }

    /// The figures once the body has ended (a last line without a newline still counts).
    pub fn finish(mut self, now: Instant) -> StreamFigures {
        if !self.carry.is_empty() {
            let line = std::mem::take(&mut self.carry);
            self.line(&line, now);
        }
        StreamFigures {
            ttft_us: self.first.map(|f| f.duration_since(self.started).as_micros() as u64),
            chunks: self.chunks,
            span_secs: match (self.first, self.last) {
                (Some(f), Some(l)) => l.duration_since(f).as_secs_f64(),
                _ => 0.0,
            },
        }
    }
}

/// Whether `payload` holds `key` followed by a non-empty JSON string.
fn has_text(payload: &[u8], key: &[u8]) -> bool {
    let finder = memmem::find_iter(payload, key);
    for at in finder {
        let mut rest = &payload[at + key.len()..];
        while let [b' ' | b'\t', tail @ ..] = rest {
            rest = tail;
        }
        if let [b'"', next, ..] = rest {
            if *next != b'"' {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn counts_content_chunks_across_split_frames() {
        let t0 = Instant::now();
        let mut s = SseScanner::new(t0);
        let role = b"data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n";
        s.feed(role, t0 + Duration::from_millis(5));
        let c1 = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hel";
        s.feed(c1, t0 + Duration::from_millis(10));
        s.feed(
            b"lo\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\": \"!\"}}]}\n\n",
            t0 + Duration::from_millis(20),
        );
        s.feed(
            b"data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
            t0 + Duration::from_millis(30),
        );
        let f = s.finish(t0 + Duration::from_millis(31));
        assert_eq!(f.chunks, 2);
        // The first content line completed in the frame received at 20 ms.
        assert_eq!(f.ttft_us, Some(20_000));
        assert_eq!(f.span_secs, 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn text_streams_and_unterminated_last_line() {
        let t0 = Instant::now();
        let mut s = SseScanner::new(t0);
        s.feed(
            b"event: content_block_delta\ndata: {\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            t0 + Duration::from_millis(7),
        );
        s.feed(b"data: {\"choices\":[{\"text\":\"there\"}]}", t0 + Duration::from_millis(9));
        let f = s.finish(t0 + Duration::from_millis(12));
        assert_eq!(f.chunks, 2);
        assert_eq!(f.ttft_us, Some(7_000));
        assert!((f.span_secs - 0.005).abs() < 1e-9);
    }

    #[test]
    fn text_detection() {
        assert!(has_text(br#"{"content":"a"}"#, b"\"content\":"));
        assert!(!has_text(br#"{"content":""}"#, b"\"content\":"));
        assert!(!has_text(br#"{"content":null}"#, b"\"content\":"));
        assert!(has_text(br#"{"content":null,"x":{"content":"b"}}"#, b"\"content\":"));
        assert!(!has_text(br#"{"x":"\"content\":\"y\""}"#, b"\"content\":"));
    }
}
