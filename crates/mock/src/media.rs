//! OpenAI's image, moderation and speech routes as OpenAI answers them: `/v1/images/generations`
//! (`{"created", "data": [{"url"} or {"b64_json"}]}`, `n` images), `/v1/moderations` (one result
//! per input, flagged when the text says "kill"), `/v1/audio/speech` (bytes that stand for MP3
//! audio, as `audio/mpeg`, sent in several frames as OpenAI streams them).

use bytes::Bytes;
use serde_json::{json, Value};

/// The most images one answer holds (OpenAI's `n` limit).
const MAX_IMAGES: u64 = 10;
/// A 1×1 PNG, the image every `b64_json` answer carries.
const PIXEL_PNG_B64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn object(body: &[u8]) -> Result<Value, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        _ => Err("Invalid JSON body: expected an object".into()),
    }
}

/// `/v1/images/generations`: `n` images (1 to 10), as URLs or, with
/// `response_format: "b64_json"`, as base64 PNGs.
pub fn images_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    let prompt = v.get("prompt").and_then(Value::as_str).ok_or("prompt is required")?;
    let n = match v.get("n") {
        None | Some(Value::Null) => 1,
        Some(n) => n.as_u64().filter(|n| (1..=MAX_IMAGES).contains(n)).ok_or("n must be an integer from 1 to 10")?,
    };
    let b64 = v.get("response_format").and_then(Value::as_str) == Some("b64_json");
    let data: Vec<Value> = (0..n)
        .map(|i| match b64 {
            true => json!({ "b64_json": PIXEL_PNG_B64, "revised_prompt": prompt }),
            false => json!({ "url": format!("https://mock.invalid/images/{i}.png"), "revised_prompt": prompt }),
        })
        .collect();
    Ok(Bytes::from(json!({ "created": 1_700_000_000, "data": data }).to_string()))
}

const CATEGORIES: [&str; 11] = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
];

/// `/v1/moderations`: one result per input text, `violence` flagged when it says "kill".
pub fn moderations_body(body: &[u8]) -> Result<Bytes, String> {
    let v = object(body)?;
    let texts: Vec<&str> = match v.get("input") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err("input is required".into()),
    };
    let model = v.get("model").and_then(Value::as_str).unwrap_or("omni-moderation-latest");
    let results: Vec<Value> = texts
        .iter()
        .map(|t| {
            let violent = t.to_lowercase().contains("kill");
            let flags: serde_json::Map<String, Value> =
                CATEGORIES.iter().map(|c| (c.to_string(), Value::Bool(violent && *c == "violence"))).collect();
            let scores: serde_json::Map<String, Value> = CATEGORIES
                .iter()
                .map(|c| (c.to_string(), json!(if violent && *c == "violence" { 0.9 } else { 0.0001 })))
                .collect();
            json!({ "flagged": violent, "categories": flags, "category_scores": scores })
        })
        .collect();
    Ok(Bytes::from(json!({ "id": "modr-mock", "model": model, "results": results }).to_string()))
}

/// `/v1/audio/speech`: the "audio" for `input` in frames: an ID3 tag, then 64 bytes per
/// character of input (so tests can check every byte came through), in four frames.
pub fn speech_frames(body: &[u8]) -> Result<Vec<Bytes>, String> {
    let v = object(body)?;
    let input = v.get("input").and_then(Value::as_str).ok_or("input is required")?;
    v.get("voice").ok_or("voice is required")?;
    let audio = speech_audio(input.chars().count());
    let quarter = audio.len().div_ceil(4).max(1);
    Ok(audio.chunks(quarter).map(Bytes::copy_from_slice).collect())
}

/// The bytes [`speech_frames`] sends for an input of `characters` characters.
pub fn speech_audio(characters: usize) -> Vec<u8> {
    let mut audio = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    audio.extend((0..characters.min(4096) * 64).map(|i| (i % 251) as u8));
    audio
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_answer_n_urls_or_base64() {
        let v: Value = serde_json::from_slice(&images_body(br#"{"prompt":"a cat","n":3}"#).unwrap()).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 3);
        assert!(v["data"][0]["url"].is_string());
        let v: Value =
            serde_json::from_slice(&images_body(br#"{"prompt":"a cat","response_format":"b64_json"}"#).unwrap())
                .unwrap();
        assert_eq!(v["data"][0]["b64_json"], PIXEL_PNG_B64);
        assert!(images_body(br#"{"prompt":"a cat","n":11}"#).is_err());
        assert!(images_body(br#"{"n":1}"#).is_err());
    }

    #[test]
    fn moderations_flag_violence() {
        let v: Value =
            serde_json::from_slice(&moderations_body(br#"{"input":["I will kill it","hello"]}"#).unwrap()).unwrap();
        assert_eq!(v["results"][0]["flagged"], true);
        assert_eq!(v["results"][0]["categories"]["violence"], true);
        assert_eq!(v["results"][1]["flagged"], false);
    }

    #[test]
    fn speech_comes_in_frames_that_make_the_whole() {
        let frames = speech_frames(br#"{"model":"tts-1","input":"hello","voice":"alloy"}"#).unwrap();
        assert!(frames.len() > 1);
        assert_eq!(frames.concat(), speech_audio(5));
        assert!(speech_frames(br#"{"input":"hello"}"#).is_err());
    }
}
