//! A JSON tree written out as compact text: byte for byte what `serde_json::to_vec` writes, with
//! strings crossed by the scanner's SIMD search for the bytes that need escaping.
//!
//! Translated requests are built as trees and written back out, and a chat request is mostly one
//! long string (the prompt). serde_json's writer looks at each byte of a string in turn to decide
//! whether to escape it; here the plain runs between escapes are found many bytes at a time and
//! copied whole. The escapes themselves are serde_json's: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//! `\t`, `\u00XX` (lowercase hex) for the other control characters, nothing else.

use crate::scan;
use serde_json::Value;

/// `value` as compact JSON text.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value);
    out
}

/// A buffer the text is appended to: a `Vec`, or a stream's `BytesMut` frame.
pub trait Out {
    fn put(&mut self, bytes: &[u8]);
    fn put_byte(&mut self, byte: u8);
    fn reserve_more(&mut self, additional: usize);
}

// Inlined into the writer's copies in other crates: a call per byte written costs more than the
// byte.
impl Out for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.push(byte);
    }
    #[inline]
    fn reserve_more(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

impl Out for bytes::BytesMut {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    #[inline]
    fn put_byte(&mut self, byte: u8) {
        self.extend_from_slice(&[byte]);
    }
    #[inline]
    fn reserve_more(&mut self, additional: usize) {
        self.reserve(additional);
    }
}

/// Appends `value` to `out` as compact JSON text.
pub fn write(out: &mut impl Out, value: &Value) {
    match value {
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        // serde_json's own number formatting (itoa, ryu): a number is short, and its spelling
        // must stay exactly serde_json's.
        Value::Number(n) => {
            // At most 24 characters (ryu's longest), written on the stack first.
            let mut buf = [0u8; 40];
            let mut at = std::io::Cursor::new(&mut buf[..]);
            match serde_json::to_writer(&mut at, n) {
                Ok(()) => {
                    let len = at.position() as usize;
                    out.put(&buf[..len]);
                }
                Err(_) => out.put(n.to_string().as_bytes()),
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.put_byte(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put_byte(b',');
                }
                write(out, item);
            }
            out.put_byte(b']');
        }
        Value::Object(members) => {
            out.put_byte(b'{');
            for (i, (name, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.put_byte(b',');
                }
                write_str(out, name);
                out.put_byte(b':');
                write(out, item);
            }
            out.put_byte(b'}');
        }
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_str(out: &mut impl Out, s: &str) {
    out.reserve_more(s.len() + 2);
    out.put_byte(b'"');
    let mut rest = s.as_bytes();
    while let Some(at) = scan::plain_run(rest) {
        out.put(&rest[..at]);
        escape(out, rest[at]);
        rest = &rest[at + 1..];
    }
    out.put(rest);
    out.put_byte(b'"');
}

fn escape(out: &mut impl Out, byte: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match byte {
        b'"' => b'"',
        b'\\' => b'\\',
        0x08 => b'b',
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        _ => {
            out.put(&[b'\\', b'u', b'0', b'0', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0xf)]]);
            return;
        }
    };
    out.put(&[b'\\', short]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn same_as_serde(v: &Value) {
        assert_eq!(
            String::from_utf8(to_vec(v)).unwrap(),
            serde_json::to_string(v).unwrap(),
            "written differently from serde_json"
        );
    }

    #[test]
    fn every_escape_is_serde_jsons() {
        let every_byte: String = (0u8..=0x7f).map(char::from).collect();
        same_as_serde(&json!(every_byte));
        same_as_serde(&json!({"k\"\n\u{1}": ["\\", "é ☃ 🦀", "\u{7f}", "", "a/b"]}));
        // Long strings take the wide search, with escapes at every position of a block.
        for at in 0..130 {
            let mut s = "x".repeat(130);
            s.insert(at, '\u{1f}');
            s.insert(0, '"');
            same_as_serde(&json!(s));
        }
    }

    #[test]
    fn numbers_and_nesting_are_serde_jsons() {
        same_as_serde(&json!({
            "i": -17, "u": u64::MAX, "f": 0.1, "e": 1e300, "small": 5e-324, "z": 0.0, "neg": -0.0,
            "nested": [[], {}, [null, true, false, {"a": [1, 2.5]}]],
        }));
    }

    fn values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[\"\\\\\\x00-\\x1f a-z]{0,200}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
                prop::collection::vec((any::<String>(), inner), 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_tree_is_written_as_serde_json_writes_it(v in values()) {
            prop_assert_eq!(to_vec(&v), serde_json::to_vec(&v).unwrap());
        }
    }
}
