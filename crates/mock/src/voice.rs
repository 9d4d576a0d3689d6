//! Speech APIs that are not OpenAI's, at their real paths and in their real formats: Deepgram's
//! pre-recorded `POST /v1/listen?model=…` (the audio as the body, `Authorization: Token …`;
//! `{"metadata": {"duration"}, "results": {"channels": [{"alternatives": [{"transcript",
//! "words"}]}]}}`), Google Cloud Text-to-Speech's `POST /v1/text:synthesize` (`{"input": {"text"
//! or "ssml"}, "voice", "audioConfig"}` → base64 `audioContent`) and ElevenLabs'
//! `POST /v1/text-to-speech/{voice_id}` (`xi-api-key`; `{"text", "model_id"}` → the audio bytes).
//! The audio spoken is `media::speech_audio`'s, so a test can check every byte came through.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

/// Which of them a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    Listen,
    Synthesize,
    ElevenLabs { voice: &'a str },
}

pub fn parse_path(path: &str) -> Option<Call<'_>> {
    match path {
        "/v1/listen" => Some(Call::Listen),
        "/v1/text:synthesize" => Some(Call::Synthesize),
        _ => {
            let voice = path.strip_prefix("/v1/text-to-speech/")?;
            (!voice.is_empty() && !voice.contains('/')).then_some(Call::ElevenLabs { voice })
        }
    }
}

/// A query's value for `name`, as sent (not percent-decoded).
fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// Deepgram refuses a call without `Authorization: Token <key>`.
pub fn deepgram_authorised(authorization: Option<&str>) -> bool {
    authorization.and_then(|a| a.strip_prefix("Token ")).is_some_and(|k| !k.trim().is_empty())
}

/// Deepgram's error shape.
pub fn deepgram_error(code: &str, message: &str) -> Bytes {
    Bytes::from(json!({"err_code": code, "err_msg": message, "request_id": "mock"}).to_string())
}

/// `/v1/listen`: the audio "heard" as `mock transcript by {model} of {bytes} bytes` (and
/// ` in {language}` when asked), its duration from a WAV header (else 16 kB a second).
pub fn listen(query: Option<&str>, audio: &[u8]) -> Result<Bytes, Bytes> {
    let model = query_value(query, "model").unwrap_or("base");
    if audio.is_empty() {
        return Err(deepgram_error("Bad Request", "Bad Request: failed to process audio: corrupt or unsupported data"));
    }
    let mut text = format!("mock transcript by {model} of {} bytes", audio.len());
    if let Some(lang) = query_value(query, "language") {
        text.push_str(&format!(" in {lang}"));
    }
    let duration = crate::media::wav_seconds(audio);
    let words: Vec<Value> = text
        .split(' ')
        .enumerate()
        .map(|(i, w)| json!({"word": w, "start": i as f64 * 0.1, "end": i as f64 * 0.1 + 0.1, "confidence": 0.99}))
        .collect();
    Ok(Bytes::from(
        json!({
            "metadata": {"request_id": "mock", "duration": duration, "channels": 1, "models": [model]},
            "results": {"channels": [{"alternatives": [{"transcript": text, "confidence": 0.99, "words": words}]}]},
        })
        .to_string(),
    ))
}

/// `/v1/text:synthesize`: the audio for the input's characters, base64 in `audioContent`.
pub fn synthesize(body: &[u8]) -> Result<Bytes, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| "Invalid JSON payload received.".to_string())?;
    let input = v.get("input").ok_or("Either `input.text` or `input.ssml` is required.")?;
    let text = input.get("text").or_else(|| input.get("ssml")).and_then(Value::as_str);
    let text = text.ok_or("Either `input.text` or `input.ssml` is required.")?;
    v.pointer("/voice/languageCode").and_then(Value::as_str).ok_or("Voice language code is required.")?;
    v.pointer("/audioConfig/audioEncoding").and_then(Value::as_str).ok_or("Audio encoding is required.")?;
    let audio = crate::media::speech_audio(text.chars().count());
    let b64 = base64::engine::general_purpose::STANDARD.encode(audio);
    Ok(Bytes::from(json!({"audioContent": b64}).to_string()))
}

/// ElevenLabs refuses a call without `xi-api-key`.
pub fn elevenlabs_authorised(key: Option<&str>) -> bool {
    key.is_some_and(|k| !k.trim().is_empty())
}

/// ElevenLabs' error shape.
pub fn elevenlabs_error(status: &str, message: &str) -> Bytes {
    Bytes::from(json!({"detail": {"status": status, "message": message}}).to_string())
}

/// `/v1/text-to-speech/{voice}`: the audio for `text`'s characters, in four frames.
pub fn elevenlabs(body: &[u8]) -> Result<Vec<Bytes>, Bytes> {
    let v: Value = serde_json::from_slice(body).map_err(|_| elevenlabs_error("invalid_json", "Invalid JSON"))?;
    let text =
        v.get("text").and_then(Value::as_str).ok_or_else(|| elevenlabs_error("missing_text", "text is required"))?;
    let audio = crate::media::speech_audio(text.chars().count());
    let quarter = audio.len().div_ceil(4).max(1);
    Ok(audio.chunks(quarter).map(Bytes::copy_from_slice).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_each_api() {
        assert_eq!(parse_path("/v1/listen"), Some(Call::Listen));
        assert_eq!(parse_path("/v1/text:synthesize"), Some(Call::Synthesize));
        assert_eq!(parse_path("/v1/text-to-speech/abc"), Some(Call::ElevenLabs { voice: "abc" }));
        assert_eq!(parse_path("/v1/text-to-speech/"), None);
    }

    #[test]
    fn listen_answers_deepgrams_shape() {
        let out: Value =
            serde_json::from_slice(&listen(Some("model=nova-2&language=de"), &[0; 32_000]).unwrap()).unwrap();
        assert_eq!(out["metadata"]["duration"], 2.0);
        let alt = &out["results"]["channels"][0]["alternatives"][0];
        assert_eq!(alt["transcript"], "mock transcript by nova-2 of 32000 bytes in de");
        assert!(listen(None, b"").is_err());
    }

    #[test]
    fn synthesize_and_elevenlabs_speak_the_text() {
        let out: Value = serde_json::from_slice(
            &synthesize(
                br#"{"input":{"text":"hi"},"voice":{"languageCode":"en-US"},"audioConfig":{"audioEncoding":"MP3"}}"#,
            )
            .unwrap(),
        )
        .unwrap();
        let audio = base64::engine::general_purpose::STANDARD.decode(out["audioContent"].as_str().unwrap()).unwrap();
        assert_eq!(audio, crate::media::speech_audio(2));
        assert!(synthesize(br#"{"voice":{}}"#).is_err());
        assert_eq!(elevenlabs(br#"{"text":"hi","model_id":"m"}"#).unwrap().concat(), crate::media::speech_audio(2));
    }
}
