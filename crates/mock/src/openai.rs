//! OpenAI-shaped answers: chat completions, legacy completions, embeddings and the model list.
//!
//! Bodies are fixed text around the two parts that vary (a fresh id and the echoed model), so an
//! answer is a few `memcpy`s rather than a serializer run.

use std::borrow::Cow;
use std::sync::OnceLock;

use base64::Engine as _;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::respond::{hex_id, push_json_str, sse_frame};

/// What LiteLLM's fake answers with when the request names no model.
pub const DEFAULT_CHAT_MODEL: &str = "gpt-3.5-turbo-0301";
const DEFAULT_COMPLETION_MODEL: &str = "gpt-3.5-turbo-instruct";
const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-ada-002";

/// The seed fake's stream sentence, one word per chunk.
pub const STREAM_SENTENCE: &str = "Hello this is a test response from a fixed OpenAI endpoint.";

const CREATED: &str = "1677652288";
const FINGERPRINT: &str = r#""system_fingerprint":"fp_44709d6fcb","#;

const CHAT_TAIL: &str = r#","system_fingerprint":"fp_44709d6fcb","choices":[{"index":0,"message":{"role":"assistant","content":"\n\nHello there, how may I assist you today?"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#;
const CHAT_USAGE: &str = r#"{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}"#;

const COMPLETION_TAIL: &str = r#","system_fingerprint":"fp_44709d6fcb","choices":[{"text":"\n\nThis is indeed a test","index":0,"logprobs":null,"finish_reason":"length"}],"usage":{"prompt_tokens":10,"completion_tokens":16,"total_tokens":26}}"#;
const COMPLETION_USAGE: &str = r#"{"prompt_tokens":10,"completion_tokens":16,"total_tokens":26}"#;

/// Which OpenAI endpoint a stream answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Chat,
    Completion,
}

impl Kind {
    fn default_model(self) -> &'static str {
        match self {
            Kind::Chat => DEFAULT_CHAT_MODEL,
            Kind::Completion => DEFAULT_COMPLETION_MODEL,
        }
    }
}

/// `{"id":"<prefix><hex>","object":"<object>","created":…,"model":<model>`
fn head(id_prefix: &str, object: &str, model: &str, capacity: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(capacity + model.len());
    v.extend_from_slice(br#"{"id":""#);
    v.extend_from_slice(id_prefix.as_bytes());
    v.extend_from_slice(&hex_id());
    v.extend_from_slice(br#"","object":""#);
    v.extend_from_slice(object.as_bytes());
    v.extend_from_slice(br#"","created":"#);
    v.extend_from_slice(CREATED.as_bytes());
    v.extend_from_slice(br#","model":"#);
    push_json_str(&mut v, model);
    v
}

/// The seed fake's non-stream `chat.completion`, echoing the requested model.
pub fn chat_body(model: Option<&str>) -> Bytes {
    let mut v = head("chatcmpl-", "chat.completion", model.unwrap_or(DEFAULT_CHAT_MODEL), CHAT_TAIL.len() + 96);
    v.extend_from_slice(CHAT_TAIL.as_bytes());
    Bytes::from(v)
}

pub fn completion_body(model: Option<&str>) -> Bytes {
    let mut v = head("cmpl-", "text_completion", model.unwrap_or(DEFAULT_COMPLETION_MODEL), COMPLETION_TAIL.len() + 96);
    v.extend_from_slice(COMPLETION_TAIL.as_bytes());
    Bytes::from(v)
}

/// The SSE frames of a streamed answer.
///
/// Normal mode: 11 content chunks (the first carrying `role`), a `finish_reason: "stop"` chunk,
/// a usage chunk when asked for, and `data: [DONE]`; the contents concatenate to
/// [`STREAM_SENTENCE`]. `seed_compat`: exactly LiteLLM's fake — `chat.completion.chunk` objects
/// for both endpoints, each word with a trailing space, nothing after the last word.
pub fn stream_frames(kind: Kind, model: Option<&str>, include_usage: bool, seed_compat: bool) -> Vec<Bytes> {
    let model = model.unwrap_or(kind.default_model());
    let (id_prefix, object) = match (kind, seed_compat) {
        (Kind::Completion, false) => ("cmpl-", "text_completion"),
        _ => ("chatcmpl-", "chat.completion.chunk"),
    };
    let mut prefix = head(id_prefix, object, model, 64);
    prefix.push(b',');
    if !seed_compat {
        prefix.extend_from_slice(FINGERPRINT.as_bytes());
    }
    prefix.extend_from_slice(br#""choices":"#);

    let frame = |choices: &[u8], extra: &[u8]| {
        let mut v = Vec::with_capacity(prefix.len() + choices.len() + extra.len() + 1);
        v.extend_from_slice(&prefix);
        v.extend_from_slice(choices);
        v.extend_from_slice(extra);
        v.push(b'}');
        sse_frame(&v)
    };

    let mut frames = Vec::with_capacity(15);
    for (i, word) in STREAM_SENTENCE.split(' ').enumerate() {
        let mut choice = Vec::with_capacity(128);
        if seed_compat {
            choice.extend_from_slice(br#"[{"index":0,"delta":{"content":""#);
            choice.extend_from_slice(word.as_bytes());
            choice.extend_from_slice(br#" "}}]"#);
        } else {
            let text = if i == 0 { Cow::Borrowed(word) } else { Cow::Owned(format!(" {word}")) };
            match kind {
                Kind::Chat => {
                    choice.extend_from_slice(br#"[{"index":0,"delta":{"#);
                    if i == 0 {
                        choice.extend_from_slice(br#""role":"assistant","#);
                    }
                    choice.extend_from_slice(br#""content":""#);
                    choice.extend_from_slice(text.as_bytes());
                    choice.extend_from_slice(br#""},"logprobs":null,"finish_reason":null}]"#);
                }
                Kind::Completion => {
                    choice.extend_from_slice(br#"[{"text":""#);
                    choice.extend_from_slice(text.as_bytes());
                    choice.extend_from_slice(br#"","index":0,"logprobs":null,"finish_reason":null}]"#);
                }
            }
        }
        frames.push(frame(&choice, b""));
    }
    if seed_compat {
        return frames;
    }
    let (finish, usage) = match kind {
        Kind::Chat => (&br#"[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]"#[..], CHAT_USAGE),
        Kind::Completion => {
            (&br#"[{"text":"","index":0,"logprobs":null,"finish_reason":"stop"}]"#[..], COMPLETION_USAGE)
        }
    };
    frames.push(frame(finish, b""));
    if include_usage {
        let mut extra = Vec::with_capacity(usage.len() + 10);
        extra.extend_from_slice(br#","usage":"#);
        extra.extend_from_slice(usage.as_bytes());
        frames.push(frame(b"[]", &extra));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    frames
}

/// The seed fake's vector: these four values, repeated to 400 dimensions.
const EMBEDDING_VALUES: [f32; 4] = [-0.006_929_283_5, -0.005_336_422, -4.547_132_3e-5, -0.024_047_505];
const EMBEDDING_DIMS: usize = 400;

/// The vector as a JSON array and as OpenAI's base64 (little-endian f32s), built once.
fn embedding_texts() -> &'static (String, String) {
    static TEXTS: OnceLock<(String, String)> = OnceLock::new();
    TEXTS.get_or_init(|| {
        let values: Vec<f32> = (0..EMBEDDING_DIMS).map(|i| EMBEDDING_VALUES[i % EMBEDDING_VALUES.len()]).collect();
        let floats = serde_json::to_string(&values).unwrap_or_default();
        let bytes: Vec<u8> = values.iter().flat_map(|f| f.to_le_bytes()).collect();
        let b64 = serde_json::to_string(&base64::engine::general_purpose::STANDARD.encode(bytes)).unwrap_or_default();
        (floats, b64)
    })
}

/// The model names whose embeddings are a hashed bag of words.
const BAG_OF_WORDS: &str = "bag-of-words";
const BAG_DIMS: usize = 256;

/// The input's texts (a string or a list of strings); token-id inputs have none.
fn texts_of(input: &str) -> Result<Vec<String>, String> {
    match serde_json::from_str::<serde_json::Value>(input).map_err(|e| e.to_string())? {
        serde_json::Value::String(s) => Ok(vec![s]),
        serde_json::Value::Array(items) => Ok(items.into_iter().filter_map(|i| i.as_str().map(String::from)).collect()),
        _ => Ok(Vec::new()),
    }
}

/// A text's words (lower-cased letters and digits) counted into hashed buckets, normalised to
/// length 1: texts sharing most words have a cosine near 1, texts sharing none near 0.
fn bag_of_words(text: &str, base64: bool) -> String {
    let mut v = [0f32; BAG_DIMS];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()) {
        // FNV-1a: a stable hash, the same in every run.
        let h = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        v[(h % BAG_DIMS as u64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    match base64 {
        true => {
            let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
            serde_json::to_string(&base64::engine::general_purpose::STANDARD.encode(bytes)).unwrap_or_default()
        }
        false => serde_json::to_string(&v[..]).unwrap_or_default(),
    }
}

/// Answers an embeddings request: one vector per input item, usage 5/5 as the seed fake.
pub fn embeddings_body(body: &[u8]) -> Result<Bytes, String> {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow, default)]
        model: Option<Cow<'a, str>>,
        #[serde(borrow)]
        input: Option<&'a RawValue>,
        #[serde(borrow, default)]
        encoding_format: Option<Cow<'a, str>>,
    }
    let r: Request<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let input = r.input.ok_or("field required: input")?.get();
    let count = match input.as_bytes().first() {
        Some(b'"') => 1,
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(input).map_err(|e| e.to_string())?;
            match items.first().and_then(|i| i.get().as_bytes().first()) {
                None => return Err("input must not be empty".to_string()),
                // An array of token ids is one input; an array of strings or of token arrays
                // is several.
                Some(b'-' | b'0'..=b'9') => 1,
                Some(_) => items.len(),
            }
        }
        _ => return Err("input must be a string or an array".to_string()),
    };
    let base64 = match r.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(format!("encoding_format {other:?} is not supported (use \"float\" or \"base64\")")),
    };
    // `bag-of-words…` models: each text's own vector, so similar texts are close (the semantic
    // cache's tests); every other model gets the seed fake's one vector.
    let words = r.model.as_deref().is_some_and(|m| m.rsplit('/').next().unwrap_or(m).starts_with(BAG_OF_WORDS));
    let texts: Vec<String> = match words {
        true => texts_of(input)?,
        false => Vec::new(),
    };
    let fixed = if base64 { &embedding_texts().1 } else { &embedding_texts().0 };
    let mut v = Vec::with_capacity(count * (fixed.len() + 48) + 128);
    v.extend_from_slice(br#"{"object":"list","data":["#);
    for i in 0..count {
        if i > 0 {
            v.push(b',');
        }
        v.extend_from_slice(br#"{"object":"embedding","index":"#);
        v.extend_from_slice(i.to_string().as_bytes());
        v.extend_from_slice(br#","embedding":"#);
        match texts.get(i) {
            Some(text) => v.extend_from_slice(bag_of_words(text, base64).as_bytes()),
            None => v.extend_from_slice(fixed.as_bytes()),
        }
        v.push(b'}');
    }
    v.extend_from_slice(br#"],"model":"#);
    push_json_str(&mut v, r.model.as_deref().unwrap_or(DEFAULT_EMBEDDING_MODEL));
    v.extend_from_slice(br#","usage":{"prompt_tokens":5,"total_tokens":5}}"#);
    Ok(Bytes::from(v))
}

/// `GET /models`: a few well-known ids in OpenAI's list shape.
pub fn models_body() -> Bytes {
    Bytes::from_static(
        br#"{"object":"list","data":[{"id":"fake-openai-endpoint","object":"model","created":1677610602,"owned_by":"sluice-mock"},{"id":"gpt-3.5-turbo","object":"model","created":1677610602,"owned_by":"openai"},{"id":"gpt-4o","object":"model","created":1715367049,"owned_by":"system"},{"id":"text-embedding-ada-002","object":"model","created":1671217299,"owned_by":"openai-internal"}]}"#,
    )
}

/// The first chunk of an Azure OpenAI stream: prompt filter results and an empty `choices`.
pub const AZURE_FILTER_CHUNK: &str = r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"},"self_harm":{"filtered":false,"severity":"safe"},"sexual":{"filtered":false,"severity":"safe"},"violence":{"filtered":false,"severity":"safe"}}}]}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parse(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[test]
    fn chat_body_is_the_seed_shape() {
        let v = parse(&chat_body(Some("fake-\"model")));
        assert_eq!(v["model"], "fake-\"model");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["id"].as_str().unwrap().len(), "chatcmpl-".len() + 32);
        assert_eq!(v["choices"][0]["message"]["content"], "\n\nHello there, how may I assist you today?");
        assert_eq!(v["usage"]["total_tokens"], 21);
        assert_eq!(parse(&chat_body(None))["model"], DEFAULT_CHAT_MODEL);
        assert_eq!(parse(&completion_body(Some("m")))["object"], "text_completion");
    }

    fn payloads(frames: &[Bytes]) -> Vec<String> {
        frames
            .iter()
            .map(|f| {
                let s = std::str::from_utf8(f).unwrap();
                s.strip_prefix("data: ").unwrap().strip_suffix("\n\n").unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn streams() {
        let p = payloads(&stream_frames(Kind::Chat, Some("m"), true, false));
        assert_eq!(p.len(), 11 + 3);
        assert_eq!(p.last().unwrap(), "[DONE]");
        let chunks: Vec<Value> = p[..13].iter().map(|s| serde_json::from_str(s).unwrap()).collect();
        let text: String = chunks[..11].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
        assert_eq!(text, STREAM_SENTENCE);
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        assert!(chunks.iter().all(|c| c["id"] == chunks[0]["id"]));
        assert_eq!(chunks[11]["choices"][0]["finish_reason"], "stop");
        assert_eq!(chunks[12]["choices"], serde_json::json!([]));
        assert_eq!(chunks[12]["usage"]["total_tokens"], 21);

        let seed = payloads(&stream_frames(Kind::Completion, None, true, true));
        assert_eq!(seed.len(), 11);
        let first: Value = serde_json::from_str(&seed[0]).unwrap();
        assert_eq!(first["object"], "chat.completion.chunk");
        assert_eq!(first["choices"][0]["delta"]["content"], "Hello ");

        let c = payloads(&stream_frames(Kind::Completion, Some("m"), false, false));
        assert_eq!(c.len(), 11 + 2);
        let first: Value = serde_json::from_str(&c[0]).unwrap();
        assert_eq!(first["object"], "text_completion");
        assert_eq!(first["choices"][0]["text"], "Hello");
    }

    #[test]
    fn embeddings() {
        let v = parse(&embeddings_body(br#"{"model":"e","input":["a","b","c"]}"#).unwrap());
        assert_eq!(v["data"].as_array().unwrap().len(), 3);
        assert_eq!(v["data"][2]["index"], 2);
        assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 400);
        assert_eq!(v["usage"]["prompt_tokens"], 5);
        let v = parse(&embeddings_body(br#"{"input":[1,2,3],"encoding_format":"base64"}"#).unwrap());
        assert_eq!(v["data"].as_array().unwrap().len(), 1);
        assert!(v["data"][0]["embedding"].is_string());
        assert!(embeddings_body(br#"{"input":[]}"#).is_err());
        // Bag-of-words vectors: close for texts that share words, far for texts that do not.
        let v = parse(&embeddings_body(br#"{"model":"openai/bag-of-words","input":["the red cat sat","The red cat sat down","stock prices fell"]}"#).unwrap());
        let vec_of = |i: usize| -> Vec<f64> {
            v["data"][i]["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
        };
        let cos = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let (a, b, c) = (vec_of(0), vec_of(1), vec_of(2));
        assert!(cos(&a, &b) > 0.85, "{}", cos(&a, &b));
        assert!(cos(&a, &c) < 0.3, "{}", cos(&a, &c));
        assert!(embeddings_body(br#"{"model":"e"}"#).is_err());
        assert!(embeddings_body(b"nope").is_err());
    }
}
