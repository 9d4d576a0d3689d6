//! OpenAI's Responses API (`/v1/responses`) for deployments that speak only chat completions:
//! a Responses request becomes a chat request ([`to_chat`]), and the chat answer becomes a
//! Response ([`Turn::answer`]) or, streamed, OpenAI's Responses event sequence
//! ([`EventStream`]). OpenAI and Azure deployments get the client's bytes instead; only the
//! response ids they mint are wrapped ([`id`]) so that later calls find the deployment again.
//!
//! These paths build JSON trees: they serve providers whose latency dwarfs the cost.

mod answer;
mod events;
pub mod id;
mod request;

pub use answer::{output_messages, Turn};
pub use events::EventStream;
pub use request::{to_chat, ChatRequest};

use crate::ApiError;

/// The error for an input the translation cannot carry to a chat-only provider.
fn unsupported(what: impl std::fmt::Display, param: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{what} is not supported for this model: it is served through chat completions. Remove it, or route the request to an OpenAI or Azure deployment."
    ))
    .param(param)
}

/// Where a Response's `id` and `model` values sit in `json` (a Response object, or a stream
/// event carrying one under `response`), and its usage: what a native answer needs re-stamped
/// and billed. `None` when `json` is neither.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Spans {
    pub id: Option<std::ops::Range<usize>>,
    pub model: Option<std::ops::Range<usize>>,
    pub usage: Option<crate::sniff::Usage>,
}

pub fn spans(json: &str) -> Option<Spans> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow, default)]
        response: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, default)]
        id: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, default)]
        model: Option<&'a serde_json::value::RawValue>,
        #[serde(borrow, default)]
        usage: Option<&'a serde_json::value::RawValue>,
    }
    if !json.trim_start().starts_with('{') {
        return None;
    }
    let [response, id, model, usage] = match crate::scan::fields(json, ["response", "id", "model", "usage"]) {
        Some(f) => f,
        None => {
            let raw: Raw<'_> = serde_json::from_str(json).ok()?;
            [raw.response, raw.id, raw.model, raw.usage].map(|v| v.map(serde_json::value::RawValue::get))
        }
    };
    let at = |inner: &str| {
        let start = inner.as_ptr() as usize - json.as_ptr() as usize;
        start..start + inner.len()
    };
    if let Some(r) = response.filter(|r| r.starts_with('{')) {
        let inner = spans(r)?;
        let shift = at(r).start;
        let moved = |s: std::ops::Range<usize>| s.start + shift..s.end + shift;
        return Some(Spans { id: inner.id.map(moved), model: inner.model.map(moved), usage: inner.usage });
    }
    let string = |v: &&str| v.starts_with('"');
    Some(Spans {
        id: id.filter(string).map(at),
        model: model.filter(string).map(at),
        usage: usage.filter(|u| u.starts_with('{')).and_then(|u| serde_json::from_str(u).ok()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_of_a_response_and_of_an_event() {
        let r = r#"{"id":"resp_1","object":"response","model":"gpt-4o","usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}"#;
        let s = spans(r).unwrap();
        assert_eq!(&r[s.id.unwrap()], "\"resp_1\"");
        assert_eq!(&r[s.model.unwrap()], "\"gpt-4o\"");
        assert_eq!(s.usage.unwrap().completion_tokens, 4);
        let e = format!(r#"{{"type":"response.completed","sequence_number":9,"response":{r}}}"#);
        let s = spans(&e).unwrap();
        assert_eq!(&e[s.id.unwrap()], "\"resp_1\"");
        assert_eq!(&e[s.model.unwrap()], "\"gpt-4o\"");
        assert_eq!(s.usage.unwrap().prompt_tokens, 3);
        // A delta event names an item, not a response: nothing to re-stamp.
        let d = r#"{"type":"response.output_text.delta","item_id":"msg_1","delta":"Hi"}"#;
        assert_eq!(spans(d), Some(Spans::default()));
        assert_eq!(spans("[1]"), None);
        assert_eq!(spans("not json"), None);
    }

    const EVENT: &str = r#"{"type":"response.completed","response":{"id":"resp_1","model":"gpt-4o","usage":{"input_tokens":3,"output_tokens":4}}}"#;

    proptest::proptest! {
        /// Whatever an upstream sends, reading it never panics, and every span found lies
        /// inside the text on a JSON string's quotes (what is spliced there stays JSON).
        #[test]
        fn any_answer_reads_without_panic(
            junk in ".{0,200}",
            cut in 0usize..EVENT.len(),
            at in 0usize..EVENT.len(),
            byte in proptest::char::any(),
        ) {
            let mut mutated = EVENT.to_string();
            if mutated.is_char_boundary(at) {
                mutated.insert(at, byte);
            }
            for text in [junk.as_str(), &EVENT[..cut], &mutated, &format!("{{\"response\":{junk}}}")] {
                if let Some(s) = spans(text) {
                    for span in [s.id, s.model].into_iter().flatten() {
                        proptest::prop_assert!(span.end <= text.len() && span.start < span.end);
                        proptest::prop_assert!(text[span.clone()].starts_with('"') && text[span].ends_with('"'));
                    }
                }
            }
        }
    }
}
