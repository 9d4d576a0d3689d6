//! A chat's long texts kept out of its translation. Translators build a tree of the request and
//! write it out again; a chat request is mostly one long text (the prompt), which the tree would
//! decode, copy and escape once more, only to carry it across unchanged. So the long plain-text
//! `content` of each user and system message is swapped for a short stand-in before the
//! translator sees the body, and the client's own string literal (still escaped, exactly as sent)
//! is put back where the stand-in comes out.
//!
//! A stand-in is `U+E000`, the text's number, `U+E001`: private-use characters no translator
//! escapes or alters. A body whose translated part (all but the hidden texts) already holds
//! `U+E000`, as sent or as a `\u` escape, is translated as sent. What is put back is valid inside
//! any JSON string (it was one), so a translator may also copy a text into a larger string (a
//! prompt template). A translator that reads the text itself (trims it, parses it, measures it)
//! must not be given stand-ins: `tests` checks every translated provider's output against the one
//! it builds from the body as sent.
//!
//! The longest text put back is not copied: the body goes out in pieces (before it, the client's
//! own bytes of it, after it), which the connection writes in one vectored call.

use bytes::Bytes;
use sluice_wire::members;
use std::ops::Range;

/// Texts shorter than this are left in place: the swap costs more than it saves.
const MIN_LEN: usize = 512;
const OPEN: &str = "\u{e000}";
const CLOSE: &str = "\u{e001}";

/// The hidden texts: each the inside of a string literal as the client wrote it, as its range in
/// the client's body.
#[derive(Debug)]
pub(crate) struct Hidden<'a> {
    body: &'a Bytes,
    texts: Vec<Range<usize>>,
}

impl Hidden<'_> {
    fn text(&self, n: usize) -> Option<&[u8]> {
        self.texts.get(n).map(|r| &self.body[r.clone()])
    }
}

/// `body` with its long user and system texts swapped for stand-ins, and those texts; `None` when
/// there is nothing worth hiding, or the body is not a chat request the scanner reads.
pub(crate) fn hide(body: &Bytes) -> Option<(Bytes, Hidden<'_>)> {
    if body.len() < MIN_LEN {
        return None;
    }
    let ranges = members::chat_texts(body, MIN_LEN)?;
    if ranges.is_empty() {
        return None;
    }
    // Only what the translator reads could make a stand-in it did not get: the hidden texts are
    // put back after the search for stand-ins, so they may hold anything.
    let mut at = 0;
    for r in ranges.iter().map(|r| r.start..r.end).chain(std::iter::once(body.len()..body.len())) {
        if holds_open(&body[at..r.start]) {
            return None;
        }
        at = r.end;
    }
    let hidden: usize = ranges.iter().map(|r| r.len()).sum();
    let mut out = Vec::with_capacity(body.len() - hidden + 16 * ranges.len());
    let mut texts = Vec::with_capacity(ranges.len());
    let mut at = 0;
    for (n, r) in ranges.into_iter().enumerate() {
        out.extend_from_slice(&body[at..r.start]);
        out.push(b'"');
        out.extend_from_slice(OPEN.as_bytes());
        out.extend_from_slice(sluice_wire::decimal::digits(n as u64, &mut [0; 20]));
        out.extend_from_slice(CLOSE.as_bytes());
        out.push(b'"');
        texts.push(r.start + 1..r.end - 1);
        at = r.end;
    }
    out.extend_from_slice(&body[at..]);
    Some((Bytes::from(out), Hidden { body, texts }))
}

/// Whether `json` (a stretch of a body) holds `U+E000` as sent or escaped (`\ue000`, `\uE000`),
/// which the translator would write out as a stand-in's first character.
fn holds_open(json: &[u8]) -> bool {
    memchr::memmem::find(json, OPEN.as_bytes()).is_some()
        || memchr::memmem::find_iter(json, b"\\u").any(|at| matches!(json.get(at + 2..at + 6), Some(b"e000" | b"E000")))
}

/// `built` (a translated body) with every stand-in replaced by its text; `None` when a stand-in
/// is broken (a translator changed it), so the caller translates the body as sent instead.
pub(crate) fn restore(built: &[Bytes; 3], hidden: &Hidden<'_>) -> Option<[Bytes; 3]> {
    // Translators build one piece; a spliced body (three) is joined first, so that a stand-in
    // across a seam is still found.
    let whole = match built {
        [one, b, c] if b.is_empty() && c.is_empty() => one.clone(),
        pieces => Bytes::from(pieces.concat()),
    };
    // Each stand-in's span in `whole` and the text it stands for.
    let mut found: Vec<(Range<usize>, &[u8])> = Vec::with_capacity(hidden.texts.len());
    let mut from = 0;
    while let Some(open) = memchr::memmem::find(&whole[from..], OPEN.as_bytes()) {
        let open = from + open;
        let number = open + OPEN.len();
        let close = number + memchr::memmem::find(&whole[number..], CLOSE.as_bytes())?;
        let n: usize = std::str::from_utf8(&whole[number..close]).ok()?.parse().ok()?;
        from = close + CLOSE.len();
        found.push((open..from, hidden.text(n)?));
    }
    // The longest text goes out as the client's own bytes; the rest is copied around it.
    let Some(longest) = (0..found.len()).max_by_key(|&k| (found[k].1.len(), std::cmp::Reverse(k))) else {
        return Some([whole, Bytes::new(), Bytes::new()]);
    };
    let (before, after) = (&found[..longest], &found[longest + 1..]);
    let span = found[longest].0.clone();
    let text = hidden.body.slice_ref(found[longest].1);
    Some([joined(&whole, 0..span.start, before), text, joined(&whole, span.end..whole.len(), after)])
}

/// `whole[range]` with the stand-ins `found` (which lie inside it, in order) replaced by their
/// texts: a slice of `whole` when there are none.
fn joined(whole: &Bytes, range: Range<usize>, found: &[(Range<usize>, &[u8])]) -> Bytes {
    if found.is_empty() {
        return whole.slice(range);
    }
    let len = range.len() + found.iter().map(|(span, text)| text.len().saturating_sub(span.len())).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    let mut at = range.start;
    for (span, text) in found {
        out.extend_from_slice(&whole[at..span.start]);
        out.extend_from_slice(text);
        at = span.end;
    }
    out.extend_from_slice(&whole[at..range.end]);
    Bytes::from(out)
}

/// Whether `url` holds a stand-in, as sent or percent-encoded (a translator put a text where it
/// cannot be restored).
pub(crate) fn leaks(url: &http::Uri) -> bool {
    // One pass over each part for the bytes a stand-in starts with, sent or percent-encoded.
    let holds = |part: Option<&str>| {
        part.is_some_and(|p| {
            memchr::memchr2_iter(b'%', OPEN.as_bytes()[0], p.as_bytes()).any(|at| {
                let rest = &p.as_bytes()[at..];
                rest.starts_with(OPEN.as_bytes()) || rest.starts_with(b"%EE%80%80") || rest.starts_with(b"%ee%80%80")
            })
        })
    };
    holds(url.authority().map(|a| a.as_str())) || holds(url.path_and_query().map(|p| p.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn long_user_and_system_texts_are_hidden_and_restored() {
        let long = "é \"quoted\" \\ line\n".repeat(40);
        let longer = long.repeat(2);
        let body = Bytes::from(
            serde_json::to_vec(&json!({"model": "m", "messages": [
                {"role": "system", "content": long},
                {"role": "assistant", "content": long},
                {"role": "user", "content": [{"type": "text", "text": long}]},
                {"role": "user", "content": "short"},
                {"role": "user", "content": longer},
                {"role": "user", "content": long},
            ]}))
            .unwrap(),
        );
        let (hidden_body, hidden) = hide(&body).unwrap();
        assert_eq!(hidden.texts.len(), 3, "the system text and the last user texts");
        let v: Value = serde_json::from_slice(&hidden_body).unwrap();
        assert_eq!(v["messages"][0]["content"], "\u{e000}0\u{e001}");
        assert_eq!(v["messages"][1]["content"], long.as_str(), "assistant texts stay");
        assert_eq!(v["messages"][4]["content"], "\u{e000}1\u{e001}");
        assert_eq!(v["messages"][5]["content"], "\u{e000}2\u{e001}");
        let restored = restore(&[hidden_body.clone(), Bytes::new(), Bytes::new()], &hidden).unwrap();
        assert_eq!(restored.concat(), body);
        // The longest text goes out as the client's own bytes, not a copy.
        let text = &restored[1];
        assert_eq!(&text[..], serde_json::to_string(&longer).unwrap().trim_matches('"').as_bytes());
        assert!(body.as_ptr_range().contains(&text.as_ptr()), "a slice of the client's body");
        // A body built in pieces is restored just the same, a stand-in across a seam included.
        let seam = memchr::memmem::find(&hidden_body, OPEN.as_bytes()).unwrap() + 1;
        let pieces = [hidden_body.slice(..seam), hidden_body.slice(seam..seam + 5), hidden_body.slice(seam + 5..)];
        assert_eq!(restore(&pieces, &hidden).unwrap().concat(), body);
        // A translator that copies a text twice gets it twice.
        let twice = Bytes::from("[\"\u{e000}1\u{e001}\",\"\u{e000}1\u{e001}\",\"\u{e000}0\u{e001}\"]");
        let restored = restore(&[twice, Bytes::new(), Bytes::new()], &hidden).unwrap();
        let both = format!("[{},{},{}]", json!(longer), json!(longer), json!(long));
        assert_eq!(restored.concat(), both.as_bytes());
        let none = Bytes::from_static(b"{}");
        assert_eq!(restore(&[none.clone(), Bytes::new(), Bytes::new()], &hidden).unwrap().concat(), none);
    }

    #[test]
    fn bodies_with_nothing_long_or_with_a_stand_in_character_are_left_alone() {
        let long = "x".repeat(600);
        let chat = |messages: Value| Bytes::from(serde_json::to_vec(&json!({ "messages": messages })).unwrap());
        assert!(hide(&chat(json!([{"role": "user", "content": "hi"}]))).is_none());
        // The stand-in character where the translator reads it, as sent or escaped.
        for short in ["\u{e000}", "a\u{e000}0\u{e001}"] {
            assert!(hide(&chat(json!([{"role": "assistant", "content": short}, {"role": "user", "content": long}])))
                .is_none());
        }
        for escaped in [r"\ue000", r"\uE000"] {
            let body = format!(
                r#"{{"messages":[{{"role":"user","content":"{escaped}0\ue001"}},{{"role":"user","content":"{long}"}}]}}"#
            );
            assert!(hide(&Bytes::from(body)).is_none(), "{escaped}");
        }
        // In a hidden text it is put back as sent.
        let marked = format!("{long}\u{e000}0\u{e001}");
        let body = chat(json!([{"role": "user", "content": marked}]));
        let (hidden_body, hidden) = hide(&body).unwrap();
        assert_eq!(restore(&[hidden_body, Bytes::new(), Bytes::new()], &hidden).unwrap().concat(), body);
        let twice = format!(r#"{{"messages":[],"messages":[{{"role":"user","content":"{long}"}}]}}"#);
        assert!(hide(&Bytes::from(twice)).is_none());
        assert!(hide(&Bytes::from(format!("{{\"messages\":[{{\"role\":\"user\",\"content\":\"{long}\"}}]"))).is_none());
    }

    struct NoToken;
    impl crate::provider::TokenSource for NoToken {
        fn token(
            &self,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<http::HeaderValue, String>> + Send + '_>>
        {
            Box::pin(async { Err("no token in tests".to_string()) })
        }
    }

    /// Every translated chat provider, as a deployment would configure it.
    fn providers() -> Vec<(String, crate::catalogue::Translated)> {
        let models = [
            "vertex_ai/gemini-1.5-pro",
            "vertex_ai/claude-3-5-sonnet@20240620",
            "vertex_ai/mistral-large@2407",
            "vertex_ai/meta/llama3-405b-instruct-maas",
            "gemini/gemini-1.5-pro",
            "anthropic/claude-3-5-sonnet-20241022",
            "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0",
            "bedrock/converse/meta.llama3-70b",
            "cohere_chat/command-r-plus",
            "ollama/llama3",
            "ollama_chat/llama3.1",
            "watsonx/ibm/granite-3-8b-instruct",
            "sagemaker/tgi-endpoint",
            "sagemaker_chat/chat-endpoint",
            "cloudflare/@cf/meta/llama-3-8b-instruct",
            "azure_text/gpt-35-turbo-instruct",
            "predibase/llama-3-8b-instruct",
            "triton/ensemble",
            "replicate/meta/llama-3-8b-instruct",
        ];
        let env = |k: &str| match k {
            "WATSONX_URL" | "AZURE_API_BASE" => Some("https://example.test".to_string()),
            "WATSONX_PROJECT_ID" => Some("p1".to_string()),
            "AZURE_API_VERSION" => Some("2024-02-01".to_string()),
            "CLOUDFLARE_ACCOUNT_ID" => Some("acct".to_string()),
            "PREDIBASE_TENANT_ID" => Some("t1".to_string()),
            _ => None,
        };
        let mut out = Vec::new();
        for model in models {
            let m = crate::catalogue::parse_model(model, None).unwrap();
            let mut p = crate::provider::test_params(&m);
            p.api_key = Some("test-key");
            p.api_base = Some(match model {
                "triton/ensemble" => "https://example.test/v2/models/ensemble/generate",
                _ => "https://example.test/v1/endpoint",
            });
            p.vertex_project = Some("p");
            p.aws_region_name = Some("us-east-1");
            p.aws_access_key_id = Some("AKIDEXAMPLE");
            p.aws_secret_access_key = Some("secret");
            p.tenant_id = Some("t1");
            p.project_id = Some("p1");
            let mut tokens = |_: &str| std::sync::Arc::new(NoToken) as std::sync::Arc<dyn crate::provider::TokenSource>;
            match crate::catalogue::build(&p, &env, &mut tokens) {
                Ok(crate::catalogue::Built::Translated(t)) => out.push((model.to_string(), t)),
                other => panic!("{model} did not build a translated provider: {other:?}"),
            }
        }
        out
    }

    #[test]
    fn every_translated_provider_builds_from_stand_ins_what_it_builds_from_the_texts() {
        use crate::provider::{ChatCall, ChatProvider};
        use sluice_wire::sniff::Endpoint;
        let texts = [
            "x".repeat(600),
            "é \"quoted\" \\ back\nslash\t and </script> ".repeat(30),
            "  padded with spaces and a newline at the end  \n".repeat(12),
            "🦀 emoji and \u{7f} and \u{1} control ".repeat(20),
            // Stand-in characters of the client's own, inside a text that is hidden.
            format!("{} \u{e000}0\u{e001} private use", "y".repeat(520)),
            "short".to_string(),
        ];
        let roles = ["system", "user", "assistant", "developer", "user"];
        let mut seed = 11u64;
        let mut next = |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) as usize) % n
        };
        let mut requests = Vec::new();
        for _ in 0..60 {
            let n = 1 + next(4);
            let mut messages: Vec<Value> = (0..n)
                .map(|_| json!({"role": roles[next(roles.len())], "content": texts[next(texts.len())]}))
                .collect();
            messages.push(json!({"role": "user", "content": texts[next(2)]}));
            let mut req = json!({"model": "g", "messages": messages, "user": "u1"});
            if next(2) == 0 {
                req["temperature"] = json!(0.5);
                req["max_tokens"] = json!(1 + next(500));
            }
            // The client's own spelling of its strings (escapes serde would not write) is kept.
            let body = serde_json::to_string(&req).unwrap().replace("é", "\\u00e9");
            requests.push(Bytes::from(body));
        }
        for (model, t) in providers() {
            let mut hidden_taken = 0;
            for body in &requests {
                for stream in [false, true] {
                    let call = ChatCall {
                        endpoint: Endpoint::Chat,
                        body,
                        model_span: sluice_wire::sniff::model_span(body),
                        stream,
                        now: 1_700_000_000,
                    };
                    let plain = t.inner_for_tests().build_request(&call);
                    let via = t.build_request(&call);
                    let (plain, via) = match (plain, via) {
                        (Ok(a), Ok(b)) => (a, b),
                        (Err(a), Err(b)) => {
                            assert_eq!(a.message, b.message, "{model}");
                            continue;
                        }
                        (a, b) => panic!("{model}: {:?} vs {:?}", a.map(|r| r.url), b.map(|r| r.url)),
                    };
                    hidden_taken += usize::from(hide(body).is_some());
                    assert_eq!(plain.url, via.url, "{model}");
                    let (a, b) = (plain.body.concat(), via.body.concat());
                    match (serde_json::from_slice::<Value>(&a), serde_json::from_slice::<Value>(&b)) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{model} built differently from stand-ins"),
                        _ => assert_eq!(a, b, "{model}"),
                    }
                }
            }
            // Providers that copy the texts as sent are given them as sent.
            if !t.inner_for_tests().copies_texts_as_sent() {
                assert!(hidden_taken >= 40, "{model}: stand-ins used in only {hidden_taken} requests");
            }
        }
    }

    #[test]
    fn stand_in_numbers_are_decimal_and_a_url_holding_one_is_caught() {
        for n in [0, 7, 10, 12345, usize::MAX] {
            let mut out = Vec::new();
            out.extend_from_slice(sluice_wire::decimal::digits(n as u64, &mut [0; 20]));
            assert_eq!(out, n.to_string().as_bytes());
        }
        assert!(leaks(&"https://h/v1/x%EE%80%800%EE%80%81".parse().unwrap()), "percent-encoded");
        assert!(leaks(&"https://h/v1/x?q=%ee%80%801%ee%80%81".parse().unwrap()));
        assert!(!leaks(&"https://h/v1/models/m:generate?alt=sse".parse().unwrap()));
        assert!(!leaks(&"https://h/v1/x%20y?q=%EE%80%20".parse().unwrap()));
    }

    #[test]
    fn a_broken_stand_in_is_not_restored() {
        let body = Bytes::from_static(b"a");
        let hidden = Hidden { body: &body, texts: std::iter::once(0..1).collect() };
        let part = |s: &str| [Bytes::from(s.to_string()), Bytes::new(), Bytes::new()];
        assert_eq!(restore(&part("\"\u{e000}0\u{e001}\""), &hidden).unwrap().concat(), b"\"a\"");
        assert!(restore(&part("\"\u{e000}1\u{e001}\""), &hidden).is_none());
        assert!(restore(&part("\"\u{e000}0\""), &hidden).is_none());
        assert!(restore(&part("\"\u{e000}x\u{e001}\""), &hidden).is_none());
    }
}
