//! The common case translated without building a tree: plain text messages plus a few sampling
//! numbers (the seed's load test, and most chat traffic). The client's JSON string literals are
//! copied into Gemini's shape as they are — no decoding and re-encoding of the message text, which
//! is most of the cost of translating a 16 KB prompt. Anything else (content parts, tools,
//! response formats, other parameters) returns `None` and goes to the full translator, whose
//! output this matches (see the tests). The longest text is not even copied: it goes out as a
//! slice of the client's body between the two pieces written here.

use bytes::Bytes;
use sluice_wire::members;
use std::borrow::Cow;

/// One message of the simple kind: a role and, if any, the raw text of its content.
struct Message<'a> {
    role: Cow<'a, str>,
    content: Option<&'a str>,
}

/// A message object with no member but `role` and `content`, each at most once.
fn message(raw: &str) -> Option<Message<'_>> {
    let (mut role, mut content) = (None, None);
    for (key, value) in members::object(raw)? {
        let slot = match key.as_ref() {
            "role" => &mut role,
            "content" => &mut content,
            _ => return None,
        };
        if slot.replace(value).is_some() {
            return None;
        }
    }
    let role = serde_json::from_str::<Cow<'_, str>>(role?).ok()?;
    Some(Message { role, content })
}

/// The Gemini request body for `body` (an OpenAI chat request), when it is the simple kind.
///
/// Read with the wire scanner, which crosses the prompt many bytes at a time and accepts exactly
/// the JSON serde_json accepts; a member named twice goes to the full translator.
pub fn chat_request(body: &Bytes) -> Option<[Bytes; 3]> {
    let top = members::top_level(body)?;
    let mut seen: Vec<&str> = Vec::with_capacity(top.len());
    let mut messages: Option<Vec<Message<'_>>> = None;
    let (mut temperature, mut top_p, mut max_tokens, mut max_completion_tokens) = (None, None, None, None);
    for (key, raw) in &top {
        if seen.contains(&key.as_ref()) {
            return None;
        }
        seen.push(key.as_ref());
        let raw = *raw;
        if raw == "null" {
            continue;
        }
        match key.as_ref() {
            "model" | "stream" | "stream_options" | "user" => {}
            "messages" => messages = Some(members::items(raw)?.into_iter().map(message).collect::<Option<_>>()?),
            "temperature" => temperature = Some(number(raw)?),
            "top_p" => top_p = Some(number(raw)?),
            "max_tokens" => max_tokens = Some(integer(raw)?),
            "max_completion_tokens" => max_completion_tokens = Some(integer(raw)?),
            _ => return None,
        }
    }
    let messages = messages?;

    let mut system: Vec<&str> = Vec::new();
    let mut turns: Vec<(&str, Vec<&str>)> = Vec::new();
    for m in &messages {
        let text = match m.content {
            None | Some("null") | Some("\"\"") => None,
            Some(t) if t.starts_with('"') => Some(t),
            Some(_) => return None,
        };
        let role = match m.role.as_ref() {
            "system" | "developer" => {
                system.extend(text);
                continue;
            }
            "user" => "user",
            "assistant" => "model",
            _ => return None,
        };
        let Some(text) = text else { continue };
        match turns.last_mut() {
            Some((r, parts)) if *r == role => parts.push(text),
            _ => turns.push((role, vec![text])),
        }
    }

    if turns.is_empty() {
        // Nothing to send: the full translator explains what is missing.
        return None;
    }
    // Sent as the client's bytes: the longest text, when it is long enough for a copy to matter.
    let longest = turns.iter().flat_map(|(_, parts)| parts).chain(&system).copied().max_by_key(|t| t.len());
    let mut spliced = Splice { text: longest.filter(|t| t.len() >= SPLICED), at: None };
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(b"{\"contents\":[");
    for (i, (role, parts)) in turns.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":\"");
        out.extend_from_slice(role.as_bytes());
        out.extend_from_slice(b"\",\"parts\":");
        write_parts(&mut out, parts, &mut spliced);
        out.push(b'}');
    }
    out.push(b']');
    if !system.is_empty() {
        out.extend_from_slice(b",\"systemInstruction\":{\"parts\":");
        write_parts(&mut out, &system, &mut spliced);
        out.push(b'}');
    }
    let max = max_completion_tokens.or(max_tokens);
    let gen: Vec<(&str, &str)> = [("temperature", temperature), ("topP", top_p), ("maxOutputTokens", max)]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
    if !gen.is_empty() {
        out.extend_from_slice(b",\"generationConfig\":{");
        for (i, (k, v)) in gen.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v.as_bytes());
        }
        out.push(b'}');
    }
    out.push(b'}');
    let out = Bytes::from(out);
    Some(match (spliced.text, spliced.at) {
        (Some(text), Some(at)) => [out.slice(..at), body.slice_ref(text.as_bytes()), out.slice(at..)],
        _ => [out, Bytes::new(), Bytes::new()],
    })
}

/// Texts at least this long go out as the client's bytes rather than copied.
const SPLICED: usize = 1024;

/// The one text left out of the written pieces, and where in them it goes.
struct Splice<'a> {
    text: Option<&'a str>,
    at: Option<usize>,
}

fn write_parts(out: &mut Vec<u8>, texts: &[&str], spliced: &mut Splice<'_>) {
    out.push(b'[');
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"text\":");
        // The same slice of the body (not just equal text): its place is marked, once.
        if spliced.at.is_none() && spliced.text.is_some_and(|s| std::ptr::eq(s, *t)) {
            spliced.at = Some(out.len());
        } else {
            out.extend_from_slice(t.as_bytes());
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// A JSON number literal, as written.
fn number(raw: &str) -> Option<&str> {
    raw.parse::<f64>().ok().filter(|f| f.is_finite()).map(|_| raw)
}

/// A JSON integer literal (digits only; `100.0` and friends go to the full translator).
fn integer(raw: &str) -> Option<&str> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::{self, Options};
    use serde_json::{json, Value};

    fn both(req: &Value) -> (Option<Value>, Option<Value>) {
        let body = Bytes::from(serde_json::to_vec(req).unwrap());
        let fast =
            chat_request(&body).map(|b| serde_json::from_slice(&b.concat()).expect("the fast path writes valid JSON"));
        let slow = gemini::chat_request(req, &Options::default()).ok();
        (fast, slow)
    }

    #[test]
    fn matches_the_full_translator_on_the_seed_payload() {
        let content = "3f8a6a52 This is a test there will be no cache hits and we'll fill up the context".repeat(150);
        let req = json!({"model": "fake-openai-endpoint", "messages": [{"role": "user", "content": content}], "user": "my-new-end-user-1"});
        let (fast, slow) = both(&req);
        assert_eq!(fast.expect("the seed payload takes the fast path"), slow.unwrap());
    }

    #[test]
    fn a_long_text_goes_out_as_the_clients_own_bytes() {
        let long = "a long prompt with \"quotes\" ".repeat(100);
        let req = json!({"model": "m", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "short"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": long},
        ]});
        let body = Bytes::from(serde_json::to_vec(&req).unwrap());
        let pieces = chat_request(&body).unwrap();
        let literal = serde_json::to_string(&long).unwrap();
        assert_eq!(pieces[1], literal.as_bytes(), "the middle piece is the text's literal");
        let within = body.as_ptr_range();
        assert!(within.contains(&pieces[1].as_ptr()), "and a slice of the client's body, not a copy");
        let joined: Value = serde_json::from_slice(&pieces.concat()).unwrap();
        assert_eq!(joined, gemini::chat_request(&req, &Options::default()).unwrap());
        // Short texts are copied: one piece.
        let short = Bytes::from(
            serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})).unwrap(),
        );
        let pieces = chat_request(&short).unwrap();
        assert!(pieces[1].is_empty() && pieces[2].is_empty());
    }

    #[test]
    fn matches_the_full_translator_on_generated_simple_requests() {
        let texts =
            ["hi", "with \"quotes\" and \\ backslash", "line\nbreak\ttab", "unicode é ☃ \u{1F600}", "", "</script>"];
        let roles = ["system", "developer", "user", "assistant", "user", "user"];
        let mut seed = 7u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % n
        };
        let mut taken = 0;
        for _ in 0..300 {
            let n = 1 + next(6);
            let messages: Vec<Value> = (0..n)
                .map(|_| json!({"role": roles[next(roles.len())], "content": texts[next(texts.len())]}))
                .collect();
            let mut req = json!({"model": "m", "messages": messages, "stream": next(2) == 0});
            if next(2) == 0 {
                req["temperature"] = json!(0.25 * next(5) as f64);
            }
            if next(2) == 0 {
                req["max_tokens"] = json!(1 + next(1000));
            }
            if next(3) == 0 {
                req["max_completion_tokens"] = json!(1 + next(1000));
            }
            if next(2) == 0 {
                req["top_p"] = json!(0.5);
            }
            match both(&req) {
                (Some(fast), Some(slow)) => {
                    assert_eq!(fast, slow, "{req}");
                    taken += 1;
                }
                (Some(fast), None) => {
                    panic!("the fast path accepted what the full translator refuses: {fast} for {req}")
                }
                // Left to the full translator (e.g. no user or assistant turn with content).
                (None, _) => {}
            }
        }
        assert!(taken > 200, "only {taken} of 300 took the fast path");
    }

    #[test]
    fn anything_else_goes_to_the_full_translator() {
        for req in [
            json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": []}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi", "name": "bob"}]}),
            json!({"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "c"}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 10.0}),
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stop": "x"}),
        ] {
            assert!(chat_request(&Bytes::from(serde_json::to_vec(&req).unwrap())).is_none(), "{req}");
        }
    }

    #[test]
    fn members_named_twice_or_malformed_bodies_go_to_the_full_translator() {
        for body in [
            r#"{"model":"m","messages":[{"role":"user","content":"a"}],"messages":[{"role":"user","content":"b"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a","content":"b"}]}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"}],"temperature":1,"temperature":2}"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a"}]"#,
            r#"{"model":"m","messages":[{"role":"user","content":"a\x"}]}"#,
            r#"{"model":"m","messages":[{"role":1,"content":"a"}]}"#,
            r#"{"model":"m","messages":[{"content":"a"}]}"#,
        ] {
            assert!(chat_request(&Bytes::from_static(body.as_bytes())).is_none(), "{body}");
        }
        // An escaped member name is read as its decoded name, as serde_json reads it.
        let escaped = r#"{"m\u006fdel":"m","messages":[{"r\u006fle":"user","content":"a"}]}"#;
        assert_eq!(
            serde_json::from_slice::<Value>(&chat_request(&Bytes::from_static(escaped.as_bytes())).unwrap().concat())
                .unwrap(),
            json!({"contents": [{"role": "user", "parts": [{"text": "a"}]}]})
        );
    }
}
