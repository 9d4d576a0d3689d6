//! A request's trace, as W3C Trace Context carries it: the caller's `traceparent` read (or a new
//! trace begun), the ids of the request's own span and of each upstream attempt's, and what the
//! attempts did — gathered on the request path in a few words of memory, and turned into spans
//! only by the OpenTelemetry sink ([`crate::otel`]), off that path.

use crate::content::Content;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub type TraceId = [u8; 16];
pub type SpanId = [u8; 8];

/// The request's place in a trace, fixed when its head arrives.
#[derive(Debug, Clone)]
pub struct TraceContext {
    pub trace_id: TraceId,
    /// The request's own span: the parent of its attempts' spans.
    pub span_id: SpanId,
    /// The caller's span, when its `traceparent` named one.
    pub parent: Option<SpanId>,
    /// W3C trace flags; bit 0 is "sampled".
    pub flags: u8,
    /// The caller's `tracestate`, passed on unchanged (bounded by [`MAX_TRACESTATE`]).
    pub state: Option<Box<str>>,
    /// When the request arrived, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// The route, for the span's `http.route`.
    pub route: &'static str,
}

/// W3C's limit on `tracestate` is 32 members of at most 256 bytes; a longer header is dropped
/// rather than passed on.
pub const MAX_TRACESTATE: usize = 512;

impl TraceContext {
    /// The context of a request that arrived now with these headers' values: the caller's trace
    /// continued when its `traceparent` is valid, else a new one (sampled).
    pub fn begin(traceparent: Option<&[u8]>, tracestate: Option<&[u8]>, route: &'static str) -> TraceContext {
        let start_unix_nanos = unix_nanos();
        match traceparent.and_then(parse_traceparent) {
            Some(parent) => TraceContext {
                trace_id: parent.trace_id,
                span_id: new_span_id(),
                parent: Some(parent.span_id),
                flags: parent.flags,
                state: tracestate
                    .filter(|s| s.len() <= MAX_TRACESTATE)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
                    .map(Into::into),
                start_unix_nanos,
                route,
            },
            None => TraceContext {
                trace_id: new_trace_id(),
                span_id: new_span_id(),
                parent: None,
                flags: SAMPLED,
                state: None,
                start_unix_nanos,
                route,
            },
        }
    }

    /// Whether the trace is recorded: the caller's decision when it made one (as OpenTelemetry's
    /// default, parent-based sampler keeps it), else always.
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// The `traceparent` an upstream gets from the attempt with span `span`.
    pub fn traceparent(&self, span: &SpanId) -> [u8; TRACEPARENT_LEN] {
        let mut out = [0u8; TRACEPARENT_LEN];
        out[..3].copy_from_slice(b"00-");
        hex_into(&self.trace_id, &mut out[3..35]);
        out[35] = b'-';
        hex_into(span, &mut out[36..52]);
        out[52] = b'-';
        hex_into(&[self.flags & SAMPLED], &mut out[53..55]);
        out
    }
}

/// `00-` + 32 + `-` + 16 + `-` + 2.
pub const TRACEPARENT_LEN: usize = 55;
const SAMPLED: u8 = 1;

/// The fields of a valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub flags: u8,
}

/// Reads a `traceparent` header by W3C Trace Context's rules: lower-case hex, version `ff`
/// invalid, version `00` exactly 55 bytes, a later version at least 55 with a `-` after them,
/// and neither id all zeros. Anything else is no parent (the request starts a trace).
pub fn parse_traceparent(value: &[u8]) -> Option<TraceParent> {
    if value.len() < TRACEPARENT_LEN || value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut version = [0u8; 1];
    hex_from(&value[..2], &mut version)?;
    match version[0] {
        0xff => return None,
        0 if value.len() != TRACEPARENT_LEN => return None,
        _ if value.len() > TRACEPARENT_LEN && value[TRACEPARENT_LEN] != b'-' => return None,
        _ => {}
    }
    let mut trace_id = [0u8; 16];
    let mut span_id = [0u8; 8];
    let mut flags = [0u8; 1];
    hex_from(&value[3..35], &mut trace_id)?;
    hex_from(&value[36..52], &mut span_id)?;
    hex_from(&value[53..55], &mut flags)?;
    if trace_id == [0; 16] || span_id == [0; 8] {
        return None;
    }
    Some(TraceParent { trace_id, span_id, flags: flags[0] })
}

/// Lower-case hex only, as the specification requires.
fn hex_from(text: &[u8], out: &mut [u8]) -> Option<()> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    for (pair, byte) in text.chunks_exact(2).zip(out.iter_mut()) {
        *byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(())
}

/// `bytes` as lower-case hex into `out` (twice as long).
pub fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[(byte >> 4) as usize];
        pair[1] = DIGITS[(byte & 15) as usize];
    }
}

/// `bytes` as a lower-case hex string.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    // Only ASCII digits were written.
    String::from_utf8(out).unwrap_or_default()
}

/// A random span id, never all zeros (which means "none").
pub fn new_span_id() -> SpanId {
    loop {
        let id: SpanId = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

fn new_trace_id() -> TraceId {
    loop {
        let id: TraceId = rand::random();
        if id != [0; 16] {
            return id;
        }
    }
}

/// Now, in nanoseconds since the Unix epoch (0 on a clock set before it).
pub fn unix_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}

/// One upstream attempt: a retry or a fallback is one more.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    pub span_id: SpanId,
    pub start_unix_nanos: u64,
    /// When its answer's head (a stream's first frame) was in, or it failed.
    pub end_unix_nanos: u64,
    /// The deployment's model (`litellm_params.model`).
    pub model: Arc<str>,
    pub model_id: Option<Arc<str>>,
    /// The model group it served.
    pub model_group: Arc<str>,
    pub provider: Option<Arc<str>>,
    pub api_base: Option<Arc<str>>,
    /// The HTTP status it ended with (a failure without an answer counts as LiteLLM's: 500, 408).
    pub status: u16,
    /// LiteLLM's exception class, when it failed.
    pub error_class: Option<&'static str>,
}

/// How the call's answer ended, for `gen_ai.response.finish_reasons`: what a stream's last
/// finishing chunk said, or a whole answer, held as the bytes the request path already had
/// (bounded as records' content is) and read by the sink, off the request path.
#[derive(Debug, Default)]
pub enum Finish {
    #[default]
    Unknown,
    Streamed(Cow<'static, str>),
    Answer(Content),
}

/// The longest finish reason kept (OpenAI's longest, `content_filter`, is 14 bytes).
pub const MAX_FINISH_REASON: usize = 64;

/// A stream chunk's `finish_reason`, given as its raw JSON value: the usual ones without an
/// allocation, another plain string of at most [`MAX_FINISH_REASON`] bytes as it is, anything
/// else (null, a number, an escaped or longer string) none.
pub fn finish_reason(raw: &str) -> Option<Cow<'static, str>> {
    let text = raw.strip_prefix('"')?.strip_suffix('"')?;
    if text.is_empty() || text.len() > MAX_FINISH_REASON || text.bytes().any(|b| b == b'\\' || b < 0x20) {
        return None;
    }
    const KNOWN: [&str; 6] = ["stop", "length", "tool_calls", "content_filter", "function_call", "end_turn"];
    Some(match KNOWN.iter().find(|k| **k == text) {
        Some(known) => Cow::Borrowed(known),
        None => Cow::Owned(text.to_string()),
    })
}

/// The most choices whose finish reasons a span lists.
pub const MAX_CHOICES: usize = 128;

/// The `finish_reason` of each choice of an OpenAI-shaped answer, in order (null ones left
/// out); none for a body that is not one. Off the request path: the wire scanner finds them
/// ([`sluice_wire::sniff::finish_reasons`]); what it leaves (an escaped key, deep nesting) is
/// parsed.
pub fn finish_reasons(answer: &[u8]) -> Vec<String> {
    match sluice_wire::sniff::finish_reasons(answer, MAX_CHOICES) {
        Some(raw) => raw.into_iter().filter_map(finish_reason).map(Cow::into_owned).collect(),
        None => parsed_finish_reasons(answer),
    }
}

fn parsed_finish_reasons(answer: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow, default)]
        choices: Vec<Choice<'a>>,
    }
    #[derive(serde::Deserialize)]
    struct Choice<'a> {
        #[serde(borrow, default)]
        finish_reason: Option<Cow<'a, str>>,
    }
    let Ok(answer) = serde_json::from_slice::<Answer<'_>>(answer) else { return Vec::new() };
    answer
        .choices
        .into_iter()
        .filter_map(|c| c.finish_reason)
        .filter(|r| !r.is_empty() && r.len() <= MAX_FINISH_REASON)
        .take(MAX_CHOICES)
        .map(Cow::into_owned)
        .collect()
}

/// What the OpenTelemetry sink needs of a finished call beyond its logging record.
#[derive(Debug)]
pub struct Trace {
    pub context: TraceContext,
    pub end_unix_nanos: u64,
    /// The HTTP status the client got.
    pub http_status: u16,
    /// The provider's id of the answer (`chatcmpl-…`).
    pub response_id: Option<Box<str>>,
    pub attempts: Vec<AttemptSpan>,
    /// How the answer ended.
    pub finish: Finish,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const VALID: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_and_continued() {
        let p = parse_traceparent(VALID).unwrap();
        assert_eq!(hex(&p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&p.span_id), "00f067aa0ba902b7");
        assert_eq!(p.flags, 1);
        let ctx = TraceContext::begin(Some(VALID), Some(b"congo=t61rcWkgMzE"), "/chat/completions");
        assert_eq!(ctx.trace_id, p.trace_id);
        assert_eq!(ctx.parent, Some(p.span_id));
        assert_ne!(ctx.span_id, p.span_id);
        assert_eq!(ctx.state.as_deref(), Some("congo=t61rcWkgMzE"));
        let up = ctx.traceparent(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&up[..], b"00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01");
        assert!(parse_traceparent(&up).is_some());
    }

    #[test]
    fn invalid_traceparents_start_a_new_trace() {
        for bad in [
            &b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"[..],
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            b"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{}", String::from_utf8_lossy(bad));
            let ctx = TraceContext::begin(Some(bad), Some(b"a=b"), "/x");
            assert_eq!((ctx.parent, ctx.state.as_deref(), ctx.sampled()), (None, None, true));
        }
        // A later version may carry more fields after a dash.
        assert!(parse_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what").is_some());
    }

    #[test]
    fn an_unsampled_caller_is_not_recorded() {
        let ctx = TraceContext::begin(Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"), None, "/x");
        assert!(!ctx.sampled());
        assert!(ctx.traceparent(&ctx.span_id).ends_with(b"-00"));
    }

    #[test]
    fn finish_reasons_are_read_from_a_chunk_or_an_answer() {
        assert_eq!(finish_reason("\"stop\""), Some(Cow::Borrowed("stop")));
        assert!(matches!(finish_reason("\"tool_calls\""), Some(Cow::Borrowed("tool_calls"))));
        assert_eq!(finish_reason("\"eos\"").as_deref(), Some("eos"));
        for bad in ["null", "1", "\"\"", "\"a\\nb\"", "stop"] {
            assert_eq!(finish_reason(bad), None, "{bad}");
        }
        assert_eq!(finish_reason(&format!("\"{}\"", "x".repeat(MAX_FINISH_REASON + 1))), None);
        let answer = br#"{"id":"c","choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop"},
            {"index":1,"finish_reason":null},{"index":2,"finish_reason":"length"}],"usage":{}}"#;
        assert_eq!(finish_reasons(answer), ["stop", "length"]);
        assert!(finish_reasons(b"not json").is_empty());
        assert!(finish_reasons(br#"{"object":"list","data":[]}"#).is_empty());
    }

    proptest! {
        /// The scanner's finish reasons are the parsed ones, for answers of plain reasons.
        #[test]
        fn scanned_finish_reasons_are_the_parsed_ones(
            reasons in proptest::collection::vec(proptest::option::of("[a-z_]{1,20}"), 0..6),
            extra in "[a-z]{0,8}",
        ) {
            let choices: Vec<serde_json::Value> = reasons
                .iter()
                .enumerate()
                .map(|(i, r)| serde_json::json!({"index": i, "message": {"content": extra}, "finish_reason": r}))
                .collect();
            let answer = serde_json::to_vec(&serde_json::json!({"id": "x", "choices": choices, "model": extra})).unwrap();
            prop_assert_eq!(finish_reasons(&answer), parsed_finish_reasons(&answer));
        }

        /// Whatever a caller sends, reading it costs one request nothing worse than a new trace.
        #[test]
        fn any_header_is_read_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = parse_traceparent(&bytes);
            let ctx = TraceContext::begin(Some(&bytes), Some(&bytes), "/x");
            prop_assert!(ctx.state.as_deref().is_none_or(|s| s.len() <= MAX_TRACESTATE));
        }

        /// Mutating one byte of a valid header gives a valid parent or none, never garbage ids.
        #[test]
        fn a_mutated_header_is_read_exactly_or_refused(at in 0usize..55, byte in any::<u8>()) {
            let mut header = VALID.to_vec();
            header[at] = byte;
            if let Some(p) = parse_traceparent(&header) {
                let mut again = [0u8; TRACEPARENT_LEN];
                again[..3].copy_from_slice(&header[..3]);
                hex_into(&p.trace_id, &mut again[3..35]);
                again[35] = b'-';
                hex_into(&p.span_id, &mut again[36..52]);
                again[52] = b'-';
                hex_into(&[p.flags], &mut again[53..55]);
                prop_assert_eq!(&again[..], &header[..]);
            }
        }
    }
}
