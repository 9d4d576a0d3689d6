//! A request body's top-level members as slices of it: for what reads a whole request without
//! building it (the answer cache's key is a hash of these bytes).

use crate::scan;
use std::borrow::Cow;

/// Every top-level member of `body` (a JSON object) as its name and the raw text of its value,
/// in the order sent. `None` when `body` is not a JSON object serde_json would accept.
pub fn top_level(body: &[u8]) -> Option<Vec<(Cow<'_, str>, &str)>> {
    object(std::str::from_utf8(body).ok()?)
}

/// The members of the JSON object `text` as [`top_level`] gives a body's.
pub fn object(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let mut out = Vec::with_capacity(16);
    let walked = scan::object_members(text, |key, escaped, value| {
        let name = match escaped {
            false => Cow::Borrowed(key),
            true => Cow::Owned(serde_json::from_str::<String>(&format!("\"{key}\"")).map_err(|_| scan::Refused)?),
        };
        out.push((name, value));
        Ok(())
    });
    match walked {
        Ok(()) => Some(out),
        // What the fast scanner leaves to serde_json (deep nesting): the slow way, once.
        Err(_) => {
            let tree: Vec<(String, &serde_json::value::RawValue)> =
                serde_json::from_str::<std::collections::BTreeMap<String, &serde_json::value::RawValue>>(text)
                    .ok()?
                    .into_iter()
                    .collect();
            Some(tree.into_iter().map(|(k, v)| (Cow::Owned(k), v.get())).collect())
        }
    }
}

/// The items of the JSON array `text`, as the raw text of each. `None` when `text` is not an
/// array the scanner accepts (malformed, or nested too deep for it).
pub fn items(text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::with_capacity(8);
    scan::array_items(text, |item| {
        out.push(item);
        Ok(())
    })
    .ok()?;
    Some(out)
}

/// Just past the JSON string whose opening quote is at `open` in `bytes`, and whether it holds an
/// escape; `None` when no valid string starts there. The scanner's SIMD search, for readers that
/// walk a body themselves.
pub fn string_end(bytes: &[u8], open: usize) -> Option<(usize, bool)> {
    let mut c = scan::Cursor::new(bytes);
    c.pos = open;
    let escaped = c.skip_string().ok()?;
    Some((c.pos, escaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_named_and_sliced_as_sent() {
        let body = br#" { "model" : "m", "x":1.50, "s\u0074ream": true, "o": {"a": [1, 2]} } "#;
        let m = top_level(body).unwrap();
        let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_ref(), *v)).collect();
        assert_eq!(got, vec![("model", r#""m""#), ("x", "1.50"), ("stream", "true"), ("o", r#"{"a": [1, 2]}"#)]);
    }

    #[test]
    fn items_are_sliced_as_sent() {
        assert_eq!(items(r#" [ {"a": [1]} , "s" ,null] "#), Some(vec![r#"{"a": [1]}"#, r#""s""#, "null"]));
        assert_eq!(items("[]"), Some(vec![]));
        assert_eq!(items("[1,]"), None);
        assert_eq!(items("{}"), None);
    }

    #[test]
    fn strings_end_after_their_closing_quote() {
        let text = br#"x"plain" "a\"b\u0041" "open"#;
        assert_eq!(string_end(text, 1), Some((8, false)));
        assert_eq!(string_end(text, 9), Some((21, true)));
        assert_eq!(string_end(text, 22), None, "unterminated");
        assert_eq!(string_end(text, 0), None, "not at a quote");
        assert_eq!(string_end(text, 99), None, "past the end");
        assert_eq!(string_end(b"\"a\x01\"", 0), None, "a raw control character");
    }

    #[test]
    fn what_is_not_an_object_has_no_members() {
        for bad in [&b"[1]"[..], b"{\"a\":}", b"\xff", b"{\"a\":1"] {
            assert!(top_level(bad).is_none(), "{bad:?}");
        }
        let deep = format!(r#"{{"x":{}{},"y":2}}"#, "[".repeat(110), "]".repeat(110));
        let m = top_level(deep.as_bytes()).unwrap();
        assert_eq!(m.len(), 2);
    }
}
