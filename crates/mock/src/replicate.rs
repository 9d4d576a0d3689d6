//! A fake Replicate API: predictions created at `POST /v1/models/{owner}/{name}/predictions`,
//! `/v1/deployments/{owner}/{name}/predictions` and `/v1/predictions` (with a `version`),
//! answered 201 `starting` with their `urls` (`get`, `cancel`, `stream`) on the host the request
//! named; `GET /v1/predictions/{id}` answers `processing` with part of the output for the first
//! 300 ms of a prediction's life, then `succeeded` with the output pieces and token `metrics`;
//! `GET /v1/streams/{id}` streams Replicate's SSE (`output` events, then `done`). The model
//! `fails` fails (`status: failed`, or an `error` event). Every API call needs
//! `Authorization: Token …` (or `Bearer …`), else 401 `{"title", "detail", "status"}`.
//!
//! A prediction's id carries its creation time and model, so polls need no state.

use bytes::Bytes;
use serde_json::{json, Value};
use std::time::{SystemTime, UNIX_EPOCH};

pub const PIECES: [&str; 4] = ["Hello", " from", " the fake", " Replicate."];
/// How long a prediction stays `processing`.
pub const PROCESSING_MS: u128 = 300;
/// The model whose predictions fail.
pub const FAILS: &str = "fails";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    /// A creation; the model named by the path (`None`: `/v1/predictions`, by version).
    Create(Option<&'a str>),
    Get(&'a str),
    Stream(&'a str),
}

impl Call<'_> {
    pub fn is_get(self) -> bool {
        !matches!(self, Call::Create(_))
    }
}

pub fn parse_path(path: &str) -> Option<Call<'_>> {
    if path == "/v1/predictions" {
        return Some(Call::Create(None));
    }
    if let Some(id) = path.strip_prefix("/v1/predictions/").filter(|i| !i.is_empty() && !i.contains('/')) {
        return Some(Call::Get(id));
    }
    if let Some(id) = path.strip_prefix("/v1/streams/").filter(|i| !i.is_empty() && !i.contains('/')) {
        return Some(Call::Stream(id));
    }
    let rest = path.strip_prefix("/v1/models/").or_else(|| path.strip_prefix("/v1/deployments/"))?;
    let model = rest.strip_suffix("/predictions")?;
    (model.split('/').count() == 2 && !model.contains("//")).then_some(Call::Create(Some(model)))
}

pub fn authorised(authorization: Option<&str>) -> bool {
    authorization
        .and_then(|a| a.strip_prefix("Token ").or_else(|| a.strip_prefix("Bearer ")))
        .is_some_and(|t| !t.trim().is_empty())
}

pub fn error_body(status: u16, title: &str, detail: &str) -> String {
    json!({ "title": title, "detail": detail, "status": status }).to_string()
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0)
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> =
        (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

/// `(created ms, model)` from an id this mock made.
fn parse_id(id: &str) -> Option<(u128, String)> {
    let (ms, model) = id.split_once('-')?;
    Some((ms.parse().ok()?, unhex(model)?))
}

/// The creation: the prediction, or the 422 Replicate answers for a body without `input`.
pub fn create(model: Option<&str>, host: &str, body: &[u8]) -> Result<Bytes, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    let input = v.get("input").filter(|i| i.is_object()).ok_or("- input: Additional property input is required")?;
    input.get("prompt").and_then(Value::as_str).ok_or("- input.prompt: prompt is required")?;
    let model = match (model, v.get("version").and_then(Value::as_str)) {
        (Some(m), _) => m.to_string(),
        (None, Some(version)) => format!("versioned/{}", &version[..version.len().min(8)]),
        (None, None) => return Err("- version: version is required".into()),
    };
    let id = format!("{}-{}", now_ms(), hex(&model));
    let base = format!("http://{host}");
    let answer = json!({ "id": id, "model": model, "version": "hidden", "input": input, "logs": "", "output": null,
        "error": null, "status": "starting", "created_at": "2024-11-20T10:00:00.000Z",
        "urls": { "get": format!("{base}/v1/predictions/{id}"), "cancel": format!("{base}/v1/predictions/{id}/cancel"),
            "stream": format!("{base}/v1/streams/{id}") } });
    Ok(Bytes::from(answer.to_string()))
}

/// A poll: `processing` early in the prediction's life, then its end.
pub fn get(id: &str) -> Option<Bytes> {
    let (created, model) = parse_id(id)?;
    let young = now_ms().saturating_sub(created) < PROCESSING_MS;
    let last = model.rsplit('/').next().unwrap_or_default();
    let v = if young {
        json!({ "id": id, "model": model, "status": "processing", "output": [PIECES[0]], "error": null })
    } else if last == FAILS {
        json!({ "id": id, "model": model, "status": "failed", "output": null, "error": "mock: the model failed" })
    } else {
        json!({ "id": id, "model": model, "status": "succeeded", "output": PIECES, "error": null,
            "metrics": { "input_token_count": 8, "output_token_count": 4, "predict_time": 0.25 } })
    };
    Some(Bytes::from(v.to_string()))
}

/// The prediction's SSE stream.
pub fn stream_frames(id: &str) -> Option<Vec<Bytes>> {
    let (_, model) = parse_id(id)?;
    let mut frames: Vec<Bytes> =
        PIECES.iter().enumerate().map(|(i, p)| Bytes::from(format!("event: output\nid: {i}\ndata: {p}\n\n"))).collect();
    if model.rsplit('/').next() == Some(FAILS) {
        frames.truncate(1);
        frames.push(Bytes::from(format!("event: error\ndata: {}\n\n", json!({ "detail": "mock: the model failed" }))));
    } else {
        frames.push(Bytes::from_static(b"event: done\ndata: {}\n\n"));
    }
    Some(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(parse_path("/v1/models/meta/llama/predictions"), Some(Call::Create(Some("meta/llama"))));
        assert_eq!(parse_path("/v1/deployments/acme/x/predictions"), Some(Call::Create(Some("acme/x"))));
        assert_eq!(parse_path("/v1/predictions"), Some(Call::Create(None)));
        assert_eq!(parse_path("/v1/predictions/abc"), Some(Call::Get("abc")));
        assert_eq!(parse_path("/v1/streams/abc"), Some(Call::Stream("abc")));
        assert_eq!(parse_path("/v1/models/x/predictions"), None);
    }

    #[test]
    fn a_prediction_is_processing_then_succeeds() {
        let created: Value =
            serde_json::from_slice(&create(Some("meta/llama"), "h:1", br#"{"input":{"prompt":"hi"}}"#).unwrap())
                .unwrap();
        let id = created["id"].as_str().unwrap();
        assert!(created["urls"]["get"].as_str().unwrap().starts_with("http://h:1/v1/predictions/"));
        let first: Value = serde_json::from_slice(&get(id).unwrap()).unwrap();
        assert_eq!(first["status"], "processing");
        let old = format!("1-{}", hex("meta/llama"));
        let done: Value = serde_json::from_slice(&get(&old).unwrap()).unwrap();
        assert_eq!(done["status"], "succeeded");
        let failed: Value = serde_json::from_slice(&get(&format!("1-{}", hex("x/fails"))).unwrap()).unwrap();
        assert_eq!(failed["status"], "failed");
        assert!(create(Some("m/x"), "h", br#"{"prompt":"hi"}"#).is_err());
        assert!(get("nonsense").is_none());
    }
}
