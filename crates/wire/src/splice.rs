//! Replacing one JSON value inside a body without re-serialising the rest.
//!
//! The gateway rewrites `model` in requests (client name → upstream name) and in responses
//! (upstream name → client name). The rest of the body is forwarded as the same bytes: the parts
//! before and after the value are zero-copy slices of the original buffer.

use bytes::{BufMut, Bytes, BytesMut};
use std::ops::Range;

/// `src` with the bytes in `span` replaced by `value`, as three slices to send in order.
pub fn replace(src: &Bytes, span: Range<usize>, value: Bytes) -> [Bytes; 3] {
    [src.slice(..span.start), value, src.slice(span.end..)]
}

/// A JSON string literal for `s`, quotes included.
pub fn json_string(s: &str) -> Bytes {
    // A model name rarely needs escaping (what ends a string's plain run is exactly what JSON
    // escapes): then one exact allocation, where serde's `String` grows and `Bytes` reallocates
    // one whose capacity is not its length.
    if crate::scan::plain_run(s.as_bytes()).is_none() {
        let mut out = Vec::with_capacity(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return Bytes::from(out);
    }
    Bytes::from(serde_json::to_string(s).expect("a str always serialises"))
}

/// One SSE `data:` frame holding `json` with `span` replaced by `value` (or unchanged).
pub fn sse_frame(json: &str, span: Option<Range<usize>>, value: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + value.len() + 8);
    out.put_slice(b"data: ");
    match span {
        Some(r) => {
            out.put_slice(&json.as_bytes()[..r.start]);
            out.put_slice(value);
            out.put_slice(&json.as_bytes()[r.end..]);
        }
        None => out.put_slice(json.as_bytes()),
    }
    out.put_slice(b"\n\n");
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_span() {
        let src = Bytes::from_static(br#"{"model":"a","x":1}"#);
        let parts = replace(&src, 9..12, json_string("b\"c"));
        let joined: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        let v: serde_json::Value = serde_json::from_slice(&joined).unwrap();
        assert_eq!(v["model"], "b\"c");
        assert_eq!(v["x"], 1);
    }

    #[test]
    fn json_strings_match_serde() {
        for s in ["gpt-4o", "", "modèle/ß 🚀", "a\"b", "back\\slash", "tab\there", "\u{1}", "\u{7f}"] {
            assert_eq!(json_string(s), serde_json::to_string(s).unwrap().as_bytes(), "{s:?}");
        }
    }

    #[test]
    fn frames() {
        let f = sse_frame(r#"{"model":"a"}"#, Some(9..12), b"\"zz\"");
        assert_eq!(&f[..], b"data: {\"model\":\"zz\"}\n\n");
        let f = sse_frame("{}", None, b"");
        assert_eq!(&f[..], b"data: {}\n\n");
    }
}
