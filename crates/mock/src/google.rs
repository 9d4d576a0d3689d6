//! Vertex AI and Google AI Studio (Gemini API) `generateContent` / `streamGenerateContent`, and
//! their embedding methods: AI Studio's `batchEmbedContents` (`{"embeddings": [{"values"}]}`)
//! and Vertex's `predict` for text-embedding models (`{"predictions": [{"embeddings": {"values",
//! "statistics": {"token_count", "truncated"}}}]}`).

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::respond::sse_frame;

/// Which Google front door a request came through; they differ in how they authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// `/{v1,v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{m}:verb`
    /// (or `…/endpoints/{id}:verb`): OAuth bearer tokens.
    Vertex,
    /// `/{v1beta,v1alpha,v1}/models/{m}:verb`: an API key.
    AiStudio,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoogleCall<'a> {
    pub door: Door,
    pub model: &'a str,
    pub stream: bool,
    /// `batchEmbedContents` (AI Studio) or `predict` (Vertex).
    pub embed: bool,
}

/// Recognises a Google model path; `None` for anything else.
pub fn parse_path(path: &str) -> Option<GoogleCall<'_>> {
    let (resource, verb) = path.rsplit_once(':')?;
    let (stream, embed) = match verb {
        "generateContent" => (false, false),
        "streamGenerateContent" => (true, false),
        "batchEmbedContents" | "predict" => (false, true),
        _ => return None,
    };
    let (version, rest) = resource.strip_prefix('/')?.split_once('/')?;
    let door = if rest.starts_with("projects/") && matches!(version, "v1" | "v1beta1") {
        Door::Vertex
    } else if rest.starts_with("models/") && matches!(version, "v1" | "v1beta" | "v1alpha") {
        Door::AiStudio
    } else {
        return None;
    };
    let (parent, model) = rest.rsplit_once('/')?;
    if model.is_empty() || !matches!(parent.rsplit('/').next(), Some("models" | "endpoints")) {
        return None;
    }
    // Each front door has its own embedding method.
    if embed && (verb == "predict") != (door == Door::Vertex) {
        return None;
    }
    Some(GoogleCall { door, model, stream, embed })
}

/// Vertex wants `Authorization: Bearer …`; AI Studio takes `x-goog-api-key`, a bearer token, or
/// `?key=`. Like LiteLLM's fake, any non-empty credential is accepted.
pub fn authorised(door: Door, headers: &HeaderMap, query: Option<&str>) -> bool {
    let bearer = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(..7).filter(|p| p.eq_ignore_ascii_case("bearer ")).map(|_| &v[7..]))
        .is_some_and(|t| !t.trim().is_empty());
    match door {
        Door::Vertex => bearer,
        Door::AiStudio => {
            bearer
                || headers.get("x-goog-api-key").is_some_and(|v| !v.as_bytes().is_empty())
                || query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("key=") && kv.len() > 4))
        }
    }
}

pub fn unauthenticated_message(door: Door) -> &'static str {
    match door {
        Door::Vertex => "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        Door::AiStudio => "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
    }
}

/// The text of an answer, streamed in these pieces.
const PIECES: [&str; 4] = ["This is a mock", " response from a fake", " Gemini endpoint", ", served by sluice."];

const SAFETY: &str = r#""safetyRatings":[{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"NEGLIGIBLE","probabilityScore":0.05,"severity":"HARM_SEVERITY_NEGLIGIBLE","severityScore":0.05},{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"NEGLIGIBLE","probabilityScore":0.05,"severity":"HARM_SEVERITY_NEGLIGIBLE","severityScore":0.05},{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE","probabilityScore":0.05,"severity":"HARM_SEVERITY_NEGLIGIBLE","severityScore":0.05},{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability":"NEGLIGIBLE","probabilityScore":0.05,"severity":"HARM_SEVERITY_NEGLIGIBLE","severityScore":0.05}]"#;
const USAGE: &str = r#""usageMetadata":{"promptTokenCount":5,"candidatesTokenCount":51,"totalTokenCount":56}"#;

fn response(text: &str, last: bool) -> String {
    let text = serde_json::to_string(text).unwrap_or_default();
    if last {
        format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":{text}}}]}},"finishReason":"STOP",{SAFETY},"index":0}}],{USAGE}}}"#
        )
    } else {
        format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":{text}}}]}},"index":0}}],"usageMetadata":{{"promptTokenCount":5}}}}"#
        )
    }
}

/// When the request offers function declarations and its last user turn says "use the tool":
/// the first function's name, so an agent loop through Gemini can be driven end to end.
pub fn tool_call(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = v["tools"].as_array()?.iter().find_map(|t| t["functionDeclarations"][0]["name"].as_str())?;
    let last_user = v["contents"].as_array()?.iter().rev().find(|c| c["role"] == "user")?;
    let says =
        last_user["parts"].as_array()?.iter().any(|p| p["text"].as_str().is_some_and(|t| t.contains("use the tool")));
    says.then(|| name.to_string())
}

/// An answer calling `name` with `{"x": 1}` (the same shape streamed, as one frame).
pub fn tool_body(name: &str) -> Bytes {
    let name = serde_json::to_string(name).unwrap_or_default();
    Bytes::from(format!(
        r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"functionCall":{{"name":{name},"args":{{"x":1}}}}}}]}},"finishReason":"STOP","index":0}}],{USAGE}}}"#
    ))
}

/// The non-stream answer; it never varies, so it is built once.
pub fn body() -> Bytes {
    static BODY: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    BODY.get_or_init(|| Bytes::from(response(&PIECES.concat(), true))).clone()
}

/// `?alt=sse` frames: text deltas, the last with `finishReason` and full usage; no `[DONE]`.
pub fn stream_frames() -> Vec<Bytes> {
    static FRAMES: std::sync::OnceLock<Vec<Bytes>> = std::sync::OnceLock::new();
    FRAMES
        .get_or_init(|| {
            PIECES.iter().enumerate().map(|(i, p)| sse_frame(response(p, i + 1 == PIECES.len()).as_bytes())).collect()
        })
        .clone()
}

/// The answer to an embedding call: one vector per AI Studio request or Vertex instance, each as
/// long as its `outputDimensionality` (8 by default), tokens counted by words. `Err` is the 400's
/// message, in Google's words.
pub fn embed_body(door: Door, body: &[u8]) -> Result<Bytes, String> {
    use serde_json::{json, Value};
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("Invalid JSON payload received. {e}"))?;
    let vector = |i: usize, dims: Option<&Value>| -> Result<Vec<f64>, String> {
        let n = match dims {
            None => 8,
            Some(d) => {
                d.as_u64().filter(|d| (1..=4096).contains(d)).ok_or("outputDimensionality must be positive")? as usize
            }
        };
        Ok((0..n).map(|j| ((i + j) % 8) as f64 / 8.0 - 0.5).collect())
    };
    let answer = match door {
        Door::AiStudio => {
            let requests =
                v.get("requests").and_then(Value::as_array).ok_or("* BatchEmbedContentsRequest.requests: required")?;
            let mut out = Vec::with_capacity(requests.len());
            for (i, r) in requests.iter().enumerate() {
                let text = r.pointer("/content/parts/0/text").and_then(Value::as_str);
                if text.is_none() || r.get("model").and_then(Value::as_str).is_none() {
                    return Err(format!("* BatchEmbedContentsRequest.requests[{i}]: content and model are required"));
                }
                out.push(json!({ "values": vector(i, r.get("outputDimensionality"))? }));
            }
            json!({ "embeddings": out })
        }
        Door::Vertex => {
            let instances = v.get("instances").and_then(Value::as_array).ok_or("instances is required")?;
            let dims = v.pointer("/parameters/outputDimensionality");
            let mut out = Vec::with_capacity(instances.len());
            for (i, inst) in instances.iter().enumerate() {
                let text = inst.get("content").and_then(Value::as_str).ok_or("instances[].content must be a string")?;
                let tokens = text.split_whitespace().count().max(1);
                out.push(json!({ "embeddings": { "values": vector(i, dims)?,
                    "statistics": { "token_count": tokens, "truncated": false } } }));
            }
            json!({ "predictions": out, "metadata": { "billableCharacterCount": 1 } })
        }
    };
    Ok(Bytes::from(answer.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let c = parse_path("/v1/projects/bad-adroit-crow-413218/locations/us-central1/publishers/google/models/gemini-1.0-pro-vision-001:generateContent").unwrap();
        assert_eq!(c.door, Door::Vertex);
        assert_eq!(c.model, "gemini-1.0-pro-vision-001");
        assert!(!c.stream);
        let c = parse_path("/v1beta1/projects/p/locations/l/publishers/google/models/g:streamGenerateContent").unwrap();
        assert!(c.stream);
        let c = parse_path("/v1beta/models/gemini-2.0-flash:streamGenerateContent").unwrap();
        assert_eq!((c.door, c.model, c.stream), (Door::AiStudio, "gemini-2.0-flash", true));
        let c = parse_path("/v1/projects/p/locations/l/publishers/google/models/g:predict").unwrap();
        assert!(c.embed && c.door == Door::Vertex);
        assert!(parse_path("/v1beta/models/text-embedding-004:batchEmbedContents").unwrap().embed);
        assert!(parse_path("/v1beta/models/g:predict").is_none());
        assert!(parse_path("/v2/models/g:generateContent").is_none());
        assert!(parse_path("/chat/completions").is_none());
    }

    #[test]
    fn auth() {
        let mut h = HeaderMap::new();
        assert!(!authorised(Door::Vertex, &h, None));
        assert!(authorised(Door::AiStudio, &h, Some("alt=sse&key=abc")));
        h.insert("x-goog-api-key", "k".parse().unwrap());
        assert!(!authorised(Door::Vertex, &h, None));
        assert!(authorised(Door::AiStudio, &h, None));
        h.insert(AUTHORIZATION, "Bearer ya29.x".parse().unwrap());
        assert!(authorised(Door::Vertex, &h, None));
        h.insert(AUTHORIZATION, "Bearer ".parse().unwrap());
        assert!(!authorised(Door::Vertex, &h, None));
    }

    #[test]
    fn bodies_parse() {
        let v: serde_json::Value = serde_json::from_slice(&body()).unwrap();
        assert_eq!(v["candidates"][0]["content"]["role"], "model");
        assert_eq!(v["candidates"][0]["finishReason"], "STOP");
        assert_eq!(v["usageMetadata"]["totalTokenCount"], 56);
        assert_eq!(stream_frames().len(), 4);
    }
}
