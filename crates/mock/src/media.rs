//! OpenAI's image, moderation and speech routes as OpenAI answers them: `/v1/images/generations`
//! (`{"created", "data": [{"url"} or {"b64_json"}]}`, `n` images), `/v1/images/edits` and
//! `/v1/images/variations` (`multipart/form-data` uploads, answered the same way), `/v1/moderations` (one result
//! per input, flagged when the text says "kill"), `/v1/audio/speech` (bytes that stand for MP3
//! audio, as `audio/mpeg`, sent in several frames as OpenAI streams them) and
//! `/v1/audio/transcriptions` (a `multipart/form-data` upload; `{"text"}`, or `verbose_json` with
//! the WAV file's `duration`, or plain text).

use bytes::Bytes;
use serde_json::{json, Value};

/// The most images one answer holds (OpenAI's `n` limit).
const MAX_IMAGES: u64 = 10;
/// A 1×1 PNG, the image every `b64_json` answer carries.
pub const PIXEL_PNG_B64: &str =
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

/// Which image upload a form is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageUpload {
    Edit,
    Variation,
}

/// `/v1/images/edits` and `/v1/images/variations`: the form's `image` (or `image[]`, as the SDK
/// names several) made into `n` images, as URLs naming the model and the bytes received, or as
/// base64 PNGs; an edit needs a `prompt`. The form's model comes back beside the answer, for its
/// failure triggers.
pub fn image_upload_body(
    content_type: Option<&str>,
    body: &[u8],
    kind: ImageUpload,
) -> Result<(String, Bytes), String> {
    let boundary = content_type
        .and_then(|c| c.split(';').find_map(|p| p.trim().strip_prefix("boundary=")))
        .map(|b| b.trim_matches('"'))
        .ok_or("Invalid content type: expected multipart/form-data with a boundary")?;
    let fields = form_fields(body, boundary)?;
    let text = |name: &str| fields.iter().find(|(n, _)| n == name).and_then(|(_, v)| std::str::from_utf8(v).ok());
    let image_bytes: usize = fields.iter().filter(|(n, _)| n == "image" || n == "image[]").map(|(_, v)| v.len()).sum();
    if image_bytes == 0 {
        return Err("image is required".into());
    }
    let model = text("model").ok_or("model is required")?;
    let prompt = text("prompt");
    if kind == ImageUpload::Edit && prompt.is_none_or(str::is_empty) {
        return Err("prompt is required".into());
    }
    let n = match text("n") {
        None => 1,
        Some(n) => n
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_IMAGES).contains(n))
            .ok_or("n must be an integer from 1 to 10")?,
    };
    let b64 = text("response_format") == Some("b64_json");
    let what = match kind {
        ImageUpload::Edit => "edit",
        ImageUpload::Variation => "variation",
    };
    let data: Vec<Value> = (0..n)
        .map(|i| match b64 {
            true => json!({ "b64_json": PIXEL_PNG_B64 }),
            false => json!({ "url": format!("https://mock.invalid/images/{what}/{model}/{image_bytes}/{i}.png") }),
        })
        .collect();
    Ok((model.to_string(), Bytes::from(json!({ "created": 1_700_000_000, "data": data }).to_string())))
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

/// A transcription's answer and its content type.
pub struct Transcript {
    pub body: Bytes,
    pub content_type: &'static str,
}

/// `/v1/audio/transcriptions`: the form's `file` "heard" as `mock transcript by {model} of
/// {bytes} bytes`; `verbose_json` adds the audio's `duration` (from a WAV header, else 16 kB a
/// second); `text`, `srt` and `vtt` answer plain text.
pub fn transcription(content_type: Option<&str>, body: &[u8]) -> Result<Transcript, String> {
    let boundary = content_type
        .and_then(|c| c.split(';').find_map(|p| p.trim().strip_prefix("boundary=")))
        .map(|b| b.trim_matches('"'))
        .ok_or("Invalid content type: expected multipart/form-data with a boundary")?;
    let fields = form_fields(body, boundary)?;
    let field = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let file = field("file").ok_or("file is required")?;
    let model = field("model").and_then(|m| std::str::from_utf8(m).ok()).ok_or("model is required")?;
    let text = format!("mock transcript by {model} of {} bytes", file.len());
    let format = field("response_format").and_then(|f| std::str::from_utf8(f).ok()).unwrap_or("json");
    let json = |v: Value| Transcript { body: Bytes::from(v.to_string()), content_type: "application/json" };
    Ok(match format {
        "json" => json(json!({ "text": text })),
        "verbose_json" => json(json!({
            "task": "transcribe", "language": "english", "duration": wav_seconds(file), "text": text, "segments": []
        })),
        "text" | "srt" | "vtt" => {
            Transcript { body: Bytes::from(text + "\n"), content_type: "text/plain; charset=utf-8" }
        }
        other => return Err(format!("response_format {other} is not one of json, text, srt, verbose_json, vtt")),
    })
}

/// The seconds of a WAV file (its data over the header's byte rate), else 16 kB a second.
pub(crate) fn wav_seconds(file: &[u8]) -> f64 {
    let rate = file.get(28..32).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).filter(|r| *r > 0);
    match (file.starts_with(b"RIFF"), rate) {
        (true, Some(rate)) => file.len().saturating_sub(44) as f64 / f64::from(rate),
        _ => file.len() as f64 / 16_000.0,
    }
}

/// The (name, value) of each part of a multipart form.
fn form_fields<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<(String, &'a [u8])>, String> {
    let delimiter = format!("\r\n--{boundary}");
    let finder = memchr::memmem::Finder::new(delimiter.as_bytes());
    let first = format!("--{boundary}\r\n");
    let mut rest = body.strip_prefix(first.as_bytes()).ok_or("the form does not start with its boundary")?;
    let mut fields = Vec::new();
    loop {
        let head_end = memchr::memmem::find(rest, b"\r\n\r\n").ok_or("a part has no end of headers")?;
        let head = String::from_utf8_lossy(&rest[..head_end]);
        let name = head
            .split(';')
            .find_map(|p| p.trim().strip_prefix("name=").map(|n| n.trim_matches('"').to_string()))
            .ok_or("a part has no name")?;
        let value_and_on = &rest[head_end + 4..];
        let end = finder.find(value_and_on).ok_or("the form is not closed")?;
        fields.push((name, &value_and_on[..end]));
        let after = &value_and_on[end + delimiter.len()..];
        if after.starts_with(b"--") {
            return Ok(fields);
        }
        rest = after.strip_prefix(b"\r\n").ok_or("a boundary is not followed by a line break")?;
    }
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
    fn image_uploads_read_the_form() {
        let form = |parts: &[(&str, &str)]| {
            let mut body = Vec::new();
            for (name, value) in parts {
                body.extend_from_slice(
                    format!("--xy\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
                );
            }
            body.extend_from_slice(b"--xy--\r\n");
            body
        };
        let ct = Some("multipart/form-data; boundary=xy");
        let body = form(&[("image[]", "PNGDATA"), ("prompt", "a hat"), ("model", "dall-e-2"), ("n", "2")]);
        let (model, answer) = image_upload_body(ct, &body, ImageUpload::Edit).unwrap();
        assert_eq!(model, "dall-e-2");
        let v: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(v["data"].as_array().unwrap().len(), 2);
        assert_eq!(v["data"][0]["url"], "https://mock.invalid/images/edit/dall-e-2/7/0.png");
        let body = form(&[("image", "PNG"), ("model", "dall-e-2"), ("response_format", "b64_json")]);
        let v: Value =
            serde_json::from_slice(&image_upload_body(ct, &body, ImageUpload::Variation).unwrap().1).unwrap();
        assert_eq!(v["data"][0]["b64_json"], PIXEL_PNG_B64);
        assert!(image_upload_body(ct, &body, ImageUpload::Edit).is_err(), "an edit needs a prompt");
        assert!(image_upload_body(ct, &form(&[("model", "m")]), ImageUpload::Variation).is_err());
        assert!(image_upload_body(Some("application/json"), &body, ImageUpload::Variation).is_err());
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
    fn transcriptions_read_the_form() {
        let mut wav = b"RIFF\x00\x00\x00\x00WAVEfmt ".to_vec();
        wav.resize(28, 0);
        wav.extend_from_slice(&32_000u32.to_le_bytes());
        wav.resize(44 + 64_000, 1);
        let mut body = b"--xy\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n".to_vec();
        body.extend_from_slice(&wav);
        body.extend_from_slice(b"\r\n--xy\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1");
        body.extend_from_slice(
            b"\r\n--xy\r\nContent-Disposition: form-data; name=\"response_format\"\r\n\r\nverbose_json\r\n--xy--\r\n",
        );
        let t = transcription(Some("multipart/form-data; boundary=xy"), &body).unwrap();
        let v: Value = serde_json::from_slice(&t.body).unwrap();
        assert_eq!(v["duration"], 2.0);
        assert_eq!(v["text"], format!("mock transcript by whisper-1 of {} bytes", wav.len()));
        assert!(transcription(Some("application/json"), &body).is_err());
    }

    #[test]
    fn speech_comes_in_frames_that_make_the_whole() {
        let frames = speech_frames(br#"{"model":"tts-1","input":"hello","voice":"alloy"}"#).unwrap();
        assert!(frames.len() > 1);
        assert_eq!(frames.concat(), speech_audio(5));
        assert!(speech_frames(br#"{"input":"hello"}"#).is_err());
    }
}
