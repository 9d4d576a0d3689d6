//! `/audio/speech` on a `vertex_ai/` deployment, as LiteLLM sends it: Google Cloud
//! Text-to-Speech's `POST https://texttospeech.googleapis.com/v1/text:synthesize` with the
//! deployment's Vertex token and `x-goog-user-project`. OpenAI's `voice` maps to a Google voice as
//! LiteLLM maps it (OpenAI's names to Studio and Wavenet voices, any other name used as it is with
//! its language read from it, an object sent as Google's `voice`); `response_format` picks the
//! `audioEncoding` (LINEAR16, a WAV file, when none is asked), `speed` the `speakingRate`, and an
//! `input` holding `<speak>` goes as SSML. The answer's base64 `audioContent` is decoded into the
//! audio the client gets.

use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sluice_wire::ApiError;

/// Google's endpoint when the deployment sets no `api_base`.
pub const DEFAULT_URL: &str = "https://texttospeech.googleapis.com/v1/text:synthesize";

/// The voice LiteLLM asks for when the request names none.
const DEFAULT_VOICE: &str = "en-US-Studio-O";

/// OpenAI's voice names and the Google voices LiteLLM sends for them.
const VOICES: &[(&str, &str)] = &[
    ("alloy", "en-US-Studio-O"),
    ("echo", "en-US-Studio-M"),
    ("fable", "en-GB-Studio-B"),
    ("onyx", "en-US-Wavenet-D"),
    ("nova", "en-US-Studio-O"),
    ("shimmer", "en-US-Wavenet-F"),
];

/// The most audio one answer may decode to (Google caps a request at 5,000 bytes of text, which
/// makes a few minutes of audio).
const MAX_AUDIO: usize = 64 * 1024 * 1024;

/// The synthesis URL: `api_base` as it is when it names `text:synthesize` (LiteLLM takes it
/// whole), else `{api_base}/v1/text:synthesize`; Google's own without one.
pub fn url(api_base: Option<&str>) -> String {
    match api_base.map(str::trim).filter(|b| !b.is_empty()) {
        None => DEFAULT_URL.to_string(),
        Some(b) if b.contains("text:synthesize") => b.to_string(),
        Some(b) => format!("{}/v1/text:synthesize", b.trim_end_matches('/')),
    }
}

/// Google's `audioEncoding` for OpenAI's `response_format` (others are taken as Google's own).
fn encoding(request: &Map<String, Value>) -> String {
    match request.get("response_format").and_then(Value::as_str) {
        None | Some("wav") | Some("pcm") => "LINEAR16",
        Some("mp3") | Some("aac") => "MP3",
        Some("opus") => "OGG_OPUS",
        Some("flac") => "FLAC",
        Some(other) => return other.to_string(),
    }
    .to_string()
}

/// The content type of audio in `encoding`.
fn content_type(encoding: &str) -> &'static str {
    match encoding {
        "LINEAR16" => "audio/wav",
        "MP3" => "audio/mpeg",
        "OGG_OPUS" => "audio/ogg",
        "FLAC" => "audio/flac",
        "MULAW" | "ALAW" => "audio/basic",
        _ => "application/octet-stream",
    }
}

/// Google's `voice` for a request's `voice`.
fn voice(v: Option<&Value>) -> Value {
    let name = match v {
        Some(Value::Object(o)) => return Value::Object(o.clone()),
        Some(Value::String(s)) if !s.trim().is_empty() => {
            let s = s.trim();
            VOICES.iter().find(|(openai, _)| *openai == s).map_or(s, |(_, google)| google)
        }
        _ => DEFAULT_VOICE,
    };
    let mut parts = name.split('-');
    let language = match (parts.next(), parts.next()) {
        (Some(a), Some(b)) => format!("{a}-{b}"),
        _ => "en-US".to_string(),
    };
    json!({"languageCode": language, "name": name})
}

/// The `text:synthesize` body for an OpenAI speech request.
pub fn request(req: &Value) -> Result<Value, ApiError> {
    let req = req.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
    let text = req
        .get("input")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("`input` is required: the text to speak, as a string").param("input"))?;
    let input = match text.contains("<speak>") {
        true => json!({"ssml": text}),
        false => json!({"text": text}),
    };
    let rate = match req.get("speed").and_then(Value::as_f64).filter(|s| s.is_finite()) {
        Some(s) => s.to_string(),
        None => "1".to_string(),
    };
    Ok(json!({
        "input": input,
        "voice": voice(req.get("voice")),
        "audioConfig": {"audioEncoding": encoding(req), "speakingRate": rate},
    }))
}

/// The audio of a `text:synthesize` answer and its content type, from the format `request` (the
/// client's body) asked for.
pub fn audio(answer: &[u8], request: &[u8]) -> Result<(Bytes, &'static str), String> {
    let answer: Value = serde_json::from_slice(answer).map_err(|_| "the answer is not JSON".to_string())?;
    let b64 = answer.get("audioContent").and_then(Value::as_str).ok_or("the answer has no audioContent")?;
    if b64.len() / 4 * 3 > MAX_AUDIO {
        return Err(format!("the answer's audio is larger than {} MiB", MAX_AUDIO >> 20));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the answer's audioContent is not base64".to_string())?;
    let req: Value = serde_json::from_slice(request).unwrap_or_default();
    let kind = req.as_object().map_or("audio/wav", |r| content_type(&encoding(r)));
    Ok((Bytes::from(bytes), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openais_request_becomes_google_text_to_speech() {
        let out =
            request(&json!({"model": "g", "input": "hi", "voice": "onyx", "response_format": "mp3", "speed": 1.5}))
                .unwrap();
        assert_eq!(
            out,
            json!({"input": {"text": "hi"}, "voice": {"languageCode": "en-US", "name": "en-US-Wavenet-D"},
                "audioConfig": {"audioEncoding": "MP3", "speakingRate": "1.5"}})
        );
        let out = request(&json!({"input": "<speak>hi</speak>", "voice": "de-DE-Neural2-B"})).unwrap();
        assert_eq!(out["input"], json!({"ssml": "<speak>hi</speak>"}));
        assert_eq!(out["voice"], json!({"languageCode": "de-DE", "name": "de-DE-Neural2-B"}));
        assert_eq!(out["audioConfig"]["audioEncoding"], "LINEAR16");
        let own = json!({"languageCode": "fr-FR", "ssmlGender": "FEMALE"});
        assert_eq!(request(&json!({"input": "x", "voice": own})).unwrap()["voice"], own);
        assert_eq!(request(&json!({"voice": "alloy"})).unwrap_err().param.as_deref(), Some("input"));
    }

    #[test]
    fn the_answers_audio_is_decoded_with_the_asked_formats_type() {
        let answer = br#"{"audioContent":"UklGRgAB"}"#;
        let (audio, kind) = audio(answer, br#"{"input":"hi","response_format":"opus"}"#).unwrap();
        assert_eq!((&audio[..], kind), (&b"RIFF\x00\x01"[..], "audio/ogg"));
        assert_eq!(super::audio(answer, b"{}").unwrap().1, "audio/wav");
        assert!(super::audio(br#"{"audioContent":"!!"}"#, b"{}").is_err());
        assert!(super::audio(br#"{"other":1}"#, b"{}").is_err());
    }

    #[test]
    fn the_url_follows_api_base() {
        assert_eq!(url(None), DEFAULT_URL);
        assert_eq!(url(Some("http://127.0.0.1:9/")), "http://127.0.0.1:9/v1/text:synthesize");
        assert_eq!(url(Some("https://proxy/tts/v1/text:synthesize")), "https://proxy/tts/v1/text:synthesize");
    }
}
