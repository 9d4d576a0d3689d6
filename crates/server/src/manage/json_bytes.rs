//! JSON written straight to bytes, for the management answers of many thousand names and
//! figures (the summarised `/spend/logs`, the daily activity, the global spend report). Built as
//! `serde_json::Value`s, a month of 1,000 teams' report was 30,000 little maps allocated, filled,
//! written and freed: most of the route's time. Written here, a name that needs no escaping (key
//! hashes, model names, dates: nearly all) is checked whole and copied; one that does is written
//! by serde_json, and so is every float, so the bytes are what serde_json would write.

use axum::response::{IntoResponse, Response};

/// A `200` answer of JSON bytes.
pub(crate) fn response(body: Vec<u8>) -> Response {
    ([(http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Writes JSON objects and arrays member by member, keeping track of the commas.
pub(crate) struct Writer {
    pub(crate) out: Vec<u8>,
    /// Whether the innermost open object or array has a member yet.
    first: Vec<bool>,
}

impl Writer {
    pub(crate) fn with_capacity(bytes: usize) -> Writer {
        Writer { out: Vec::with_capacity(bytes), first: Vec::with_capacity(8) }
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.out
    }

    /// Before a member or an element: the comma if one came before it in this container.
    fn next(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if !std::mem::replace(first, false) {
                self.out.push(b',');
            }
        }
    }

    /// `"name":` inside an object.
    pub(crate) fn key(&mut self, name: &str) -> &mut Self {
        self.next();
        string(&mut self.out, name);
        self.out.push(b':');
        // The value that follows is not a new member.
        if let Some(first) = self.first.last_mut() {
            *first = true;
        }
        self
    }

    pub(crate) fn open_object(&mut self) -> &mut Self {
        self.next();
        self.out.push(b'{');
        self.first.push(true);
        self
    }

    pub(crate) fn open_array(&mut self) -> &mut Self {
        self.next();
        self.out.push(b'[');
        self.first.push(true);
        self
    }

    /// Closes the innermost object or array.
    pub(crate) fn close(&mut self, bracket: u8) -> &mut Self {
        self.first.pop();
        self.out.push(bracket);
        self.mark_written();
        self
    }

    pub(crate) fn end_object(&mut self) -> &mut Self {
        self.close(b'}')
    }

    pub(crate) fn end_array(&mut self) -> &mut Self {
        self.close(b']')
    }

    /// After a value: the container holding it has a member now.
    fn mark_written(&mut self) {
        if let Some(first) = self.first.last_mut() {
            *first = false;
        }
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        self.next();
        string(&mut self.out, s);
        self.mark_written();
        self
    }

    /// A string, or `null` for none.
    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.raw(b"null"),
        }
    }

    pub(crate) fn f64(&mut self, x: f64) -> &mut Self {
        self.next();
        number(&mut self.out, x);
        self.mark_written();
        self
    }

    pub(crate) fn i64(&mut self, x: i64) -> &mut Self {
        self.next();
        // serde_json writes integers with itoa: no allocation.
        let _ = serde_json::to_writer(&mut self.out, &x);
        self.mark_written();
        self
    }

    /// Bytes that are already one JSON value.
    pub(crate) fn raw(&mut self, json: &[u8]) -> &mut Self {
        self.next();
        self.out.extend_from_slice(json);
        self.mark_written();
        self
    }
}

/// `s` as a JSON string.
pub(crate) fn string(out: &mut Vec<u8>, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        // Infallible: a Vec takes every write and a str is always valid.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Whether JSON needs any byte of `s` escaped: a control character, a quote or a backslash.
/// Without an early exit, so that it runs over many bytes at once.
fn needs_escape(s: &[u8]) -> bool {
    s.iter().fold(false, |bad, &b| bad | (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// As serde_json writes an f64 (a non-finite one as `null`).
pub(crate) fn number(out: &mut Vec<u8>, x: f64) {
    let _ = serde_json::to_writer(&mut *out, &x);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    fn written(f: impl FnOnce(&mut Writer)) -> Value {
        let mut w = Writer::with_capacity(0);
        f(&mut w);
        serde_json::from_slice(&w.into_bytes()).expect("the writer wrote valid JSON")
    }

    #[test]
    fn commas_go_between_members_at_every_level() {
        let v = written(|w| {
            w.open_array();
            w.open_object().end_object();
            w.open_object();
            w.key("a").i64(-1).key("b").open_array().f64(0.5).str("x").opt_str(None).end_array();
            w.key("c").open_object().key("d").raw(b"{}").end_object();
            w.end_object();
            w.open_array().end_array();
            w.end_array();
        });
        assert_eq!(v, json!([{}, {"a": -1, "b": [0.5, "x", null], "c": {"d": {}}}, []]));
    }

    proptest! {
        /// Any string and figure come out as serde_json writes them, byte for byte.
        #[test]
        fn strings_and_figures_are_what_serde_writes(s in any::<String>(), x in any::<f64>(), n in any::<i64>()) {
            let mut w = Writer::with_capacity(0);
            w.open_object().key(&s).open_array().str(&s).f64(x).i64(n).end_array().end_object();
            let expected = serde_json::to_vec(&json!({ s.clone(): [s, x, n] })).unwrap();
            let ours = w.into_bytes();
            prop_assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&expected));
        }
    }
}
