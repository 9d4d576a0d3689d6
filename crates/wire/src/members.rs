//! A request body's top-level members as slices of it: for what reads a whole request without
//! building it (the answer cache's key is a hash of these bytes).

use crate::scan;
use std::borrow::Cow;

/// Every top-level member of `body` (a JSON object) as its name and the raw text of its value,
/// in the order sent. `None` when `body` is not a JSON object serde_json would accept.
pub fn top_level(body: &[u8]) -> Option<Vec<(Cow<'_, str>, &str)>> {
    object(crate::text::utf8(body)?)
}

/// The members of the JSON object `text` as [`top_level`] gives a body's.
pub fn object(text: &str) -> Option<Vec<(Cow<'_, str>, &str)>> {
    let mut out = Vec::with_capacity(16);
    let walked = scan::object_members(text, |key, escaped, value| {
        out.push((name(key, escaped)?, value));
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

/// The members of every object in the JSON array `text`, in one pass over it: `member` gets the
/// item's number (from 0), the member's name and the raw text of its value. The number of items;
/// `None` when `text` is not an array of objects the scanner reads (malformed, an item that is
/// not an object, or nested too deep for it), where a caller takes its slower way.
pub fn array_objects<'a>(text: &'a str, mut member: impl FnMut(usize, Cow<'a, str>, &'a str)) -> Option<usize> {
    let mut c = scan::Cursor::new(text.as_bytes());
    let mut items = 0;
    c.skip_ws();
    c.expect(b'[').ok()?;
    items_of(&mut c, |c| {
        c.expect(b'{')?;
        members_of(c, |c, raw_name| {
            let start = c.pos;
            c.skip_value(2)?;
            let key = std::str::from_utf8(raw_name).map_err(|_| scan::Refused)?;
            member(items, name(key, raw_name.contains(&b'\\'))?, text.get(start..c.pos).ok_or(scan::Refused)?);
            Ok(())
        })?;
        items += 1;
        Ok(())
    })
    .ok()?;
    c.skip_ws();
    c.at_end().then_some(items)
}

/// A member's name from its raw text between the quotes, decoded when it holds an escape.
fn name(key: &str, escaped: bool) -> Result<Cow<'_, str>, scan::Refused> {
    Ok(match escaped {
        false => Cow::Borrowed(key),
        true => Cow::Owned(serde_json::from_str::<String>(&format!("\"{key}\"")).map_err(|_| scan::Refused)?),
    })
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

/// Where the long texts of a chat body's user, system and developer messages lie: the byte
/// ranges of each such message's `content` string literal (quotes included) of at least
/// `min_len` bytes, in order, found in one pass over `body`. A message with an escaped member
/// name, or `role` or `content` given twice, is passed over; each text returned is valid UTF-8
/// and a string serde_json would decode. `None` when `body` is not a JSON object the scanner
/// reads, or names `messages` twice.
pub fn chat_texts(body: &[u8], min_len: usize) -> Option<Vec<std::ops::Range<usize>>> {
    let mut c = scan::Cursor::new(body);
    let mut found = Vec::new();
    let mut messages_seen = false;
    c.skip_ws();
    c.expect(b'{').ok()?;
    members_of(&mut c, |c, name| {
        if name != b"messages" {
            return c.skip_value(1);
        }
        if std::mem::replace(&mut messages_seen, true) {
            return Err(scan::Refused);
        }
        if c.peek() != Some(b'[') {
            return c.skip_value(1);
        }
        c.pos += 1;
        items_of(c, |c| {
            if c.peek() != Some(b'{') {
                return c.skip_value(2);
            }
            c.pos += 1;
            let (mut role, mut content, mut roles, mut contents, mut odd) = (0..0, 0..0, 0, 0, false);
            // Whether the content string holds a `\u` escape, noted while crossing it: only such
            // a text can hold what serde_json refuses to decode (a lone surrogate).
            let mut unicode = false;
            members_of(c, |c, name| {
                let start = c.pos;
                match name {
                    b"content" if c.peek() == Some(b'"') => unicode = c.skip_string_noting_unicode()?,
                    _ => c.skip_value(3)?,
                }
                match name {
                    b"role" => (role, roles) = (start..c.pos, roles + 1),
                    b"content" => (content, contents) = (start..c.pos, contents + 1),
                    _ if name.contains(&b'\\') => odd = true,
                    _ => {}
                }
                Ok(())
            })?;
            let plain = matches!(&body[role.clone()], b"\"user\"" | b"\"system\"" | b"\"developer\"");
            let text = &body[content.clone()];
            if plain && !odd && roles == 1 && contents == 1 && text.len() >= min_len && text[0] == b'"' {
                let valid =
                    crate::text::utf8(text).is_some() && (!unicode || serde_json::from_slice::<String>(text).is_ok());
                if valid {
                    found.push(content);
                }
            }
            Ok(())
        })
    })
    .ok()?;
    c.skip_ws();
    c.at_end().then_some(found)
}

/// Walks an object's members after its `{`, through its `}`: `member` gets each name's raw
/// bytes (escapes kept) with the cursor at the value, and must cross the value.
fn members_of<'a>(
    c: &mut scan::Cursor<'a>,
    mut member: impl FnMut(&mut scan::Cursor<'a>, &'a [u8]) -> Result<(), scan::Refused>,
) -> Result<(), scan::Refused> {
    c.skip_ws();
    if c.peek() == Some(b'}') {
        c.pos += 1;
        return Ok(());
    }
    loop {
        c.skip_ws();
        let start = c.pos + 1;
        c.skip_string()?;
        let name = c.bytes().get(start..c.pos - 1).ok_or(scan::Refused)?;
        c.skip_ws();
        c.expect(b':')?;
        c.skip_ws();
        member(c, name)?;
        c.skip_ws();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b'}') => {
                c.pos += 1;
                return Ok(());
            }
            _ => return Err(scan::Refused),
        }
    }
}

/// Walks an array's items after its `[`, through its `]`: `item` must cross each.
fn items_of<'a>(
    c: &mut scan::Cursor<'a>,
    mut item: impl FnMut(&mut scan::Cursor<'a>) -> Result<(), scan::Refused>,
) -> Result<(), scan::Refused> {
    c.skip_ws();
    if c.peek() == Some(b']') {
        c.pos += 1;
        return Ok(());
    }
    loop {
        c.skip_ws();
        item(c)?;
        c.skip_ws();
        match c.peek() {
            Some(b',') => c.pos += 1,
            Some(b']') => {
                c.pos += 1;
                return Ok(());
            }
            _ => return Err(scan::Refused),
        }
    }
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
    use proptest::prelude::*;

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
    fn array_objects_are_read_in_one_pass() {
        let read = |text: &str| {
            let mut got = Vec::new();
            let n = array_objects(text, |item, name, raw| got.push((item, name.into_owned(), raw.to_string())));
            n.map(|n| (n, got))
        };
        let owned = |v: &[(usize, &str, &str)]| v.iter().map(|&(i, n, r)| (i, n.to_string(), r.to_string())).collect();
        assert_eq!(
            read(r#" [ {"role": "user", "c\u006fntent" : [1, {"x": 2}]} , {}, {"a":null,"a":"b"} ] "#),
            Some((
                3,
                owned(&[
                    (0, "role", r#""user""#),
                    (0, "content", r#"[1, {"x": 2}]"#),
                    (2, "a", "null"),
                    (2, "a", r#""b""#)
                ])
            ))
        );
        assert_eq!(read("[]"), Some((0, vec![])));
        for refused in ["[1]", r#"[{"a":1},"s"]"#, r#"[{"a":1},]"#, r#"[{"a":1}] x"#, r#"{"a":1}"#, r#"[{"a" 1}]"#, "["]
        {
            assert_eq!(read(refused), None, "{refused}");
        }
    }

    fn members() -> impl Strategy<Value = Vec<Vec<(String, serde_json::Value)>>> {
        let value = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<String>().prop_map(serde_json::Value::String),
            prop::collection::vec(any::<String>(), 0..4).prop_map(serde_json::Value::from),
        ];
        let object = prop::collection::btree_map(any::<String>(), value, 0..6).prop_map(|m| m.into_iter().collect());
        prop::collection::vec(object, 0..6)
    }

    proptest! {
        /// Any array of objects serde_json writes, compact or pretty, is read back member by
        /// member as serde_json reads it.
        #[test]
        fn array_objects_read_what_serde_json_writes(objects in members(), pretty in any::<bool>()) {
            let array: Vec<serde_json::Map<String, serde_json::Value>> =
                objects.iter().map(|o| o.iter().cloned().collect()).collect();
            let text = match pretty {
                true => serde_json::to_string_pretty(&array).unwrap(),
                false => serde_json::to_string(&array).unwrap(),
            };
            let mut got = Vec::new();
            let n = array_objects(&text, |item, name, raw| {
                got.push((item, name.into_owned(), serde_json::from_str::<serde_json::Value>(raw).unwrap()))
            });
            let want: Vec<_> = objects
                .iter()
                .enumerate()
                .flat_map(|(i, o)| o.iter().map(move |(k, v)| (i, k.clone(), v.clone())))
                .collect();
            prop_assert_eq!(n, Some(objects.len()));
            prop_assert_eq!(got, want);
        }

        /// Bytes changed anywhere in such an array never panic the reader.
        #[test]
        fn array_objects_survive_mutated_text(objects in members(), at in any::<usize>(), byte in any::<u8>()) {
            let array: Vec<serde_json::Map<String, serde_json::Value>> =
                objects.iter().map(|o| o.iter().cloned().collect()).collect();
            let mut bytes = serde_json::to_vec(&array).unwrap();
            let at = at % bytes.len();
            bytes[at] = byte;
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = array_objects(text, |_, _, _| {});
            }
        }
    }

    #[test]
    fn chat_texts_are_the_long_user_and_system_contents() {
        let long = "a".repeat(20);
        let body = format!(
            r#"{{"model":"m","x":{{"messages":[]}},"messages":[
                {{"role":"system","content":"{long}"}},
                {{"content":"{long}","role":"user","name":"n"}},
                {{"role":"assistant","content":"{long}"}},
                {{"role":"user","content":"short"}},
                {{"role":"user","content":[{{"type":"text","text":"{long}"}}]}},
                {{"role":"user","content":"{long}","content":"{long}"}},
                {{"role":"user","c\u006fntent":"x","content":"{long}"}},
                {{"role":"developer","content":"{long}\n"}},
                7
            ]}} "#
        );
        let got: Vec<&str> = chat_texts(body.as_bytes(), 10).unwrap().into_iter().map(|r| &body[r]).collect();
        let quoted = format!("\"{long}\"");
        assert_eq!(got, vec![quoted.as_str(), quoted.as_str(), &format!("\"{long}\\n\"")]);
    }

    #[test]
    fn chat_texts_refuse_what_serde_would_refuse_or_read_otherwise() {
        let long = "b".repeat(20);
        let one = |content: &str| format!(r#"{{"messages":[{{"role":"user","content":{content}}}]}}"#);
        assert_eq!(chat_texts(one(&format!("\"{long}\"")).as_bytes(), 10).map(|v| v.len()), Some(1));
        // A lone surrogate: serde_json will not decode it, so it is not a text to pass on.
        assert_eq!(chat_texts(one(&format!("\"{long}\\ud800\"")).as_bytes(), 10), Some(vec![]));
        assert_eq!(chat_texts(one(&format!("\"{long}\\n\\ud800\\t\"")).as_bytes(), 10), Some(vec![]));
        // A surrogate pair, and an escaped backslash before a `u`, are texts like any other.
        for text in [format!("\"{long}\\ud83e\\udd80\""), format!("\"{long}\\\\ud800\"")] {
            assert_eq!(chat_texts(one(&text).as_bytes(), 10).map(|v| v.len()), Some(1), "{text}");
        }
        let mut bad = one(&format!("\"{long}\"")).into_bytes();
        bad[45] = 0xff;
        assert_eq!(chat_texts(&bad, 10), Some(vec![]));
        assert_eq!(chat_texts(br#"{"messages":[],"messages":[]}"#, 10), None);
        assert_eq!(chat_texts(format!("{} x", one("1")).as_bytes(), 10), None);
        assert_eq!(chat_texts(b"[1]", 10), None);
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
