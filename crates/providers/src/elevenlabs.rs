//! ElevenLabs (`elevenlabs/…`), as LiteLLM calls it: `/audio/speech` only, sent to
//! `POST {base}/v1/text-to-speech/{voice_id}` with `{"text", "model_id"}` and `xi-api-key`.
//! OpenAI's `voice` names map to ElevenLabs voices as LiteLLM maps them (any other value is a
//! voice id, or an object with `voice_id`); `response_format` becomes the `output_format` query
//! option (`mp3` → `mp3_44100_128`, `pcm` → `pcm_44100`, `opus` → `opus_48000_128`, others as
//! given), `speed` goes in `voice_settings`, OpenAI's `instructions` and `stream_format` are
//! dropped, and any other field (ElevenLabs' own: `voice_settings`, `language_code`, `seed`, …)
//! is passed on. The answer is the audio itself, relayed as it comes. `api_base` defaults to
//! `ELEVENLABS_API_BASE`, then `https://api.elevenlabs.io`; the key to `api_key`, then
//! `ELEVENLABS_API_KEY`.

use http::HeaderName;
use serde_json::{Map, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

use crate::provider::{
    parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

pub const DEFAULT_BASE: &str = "https://api.elevenlabs.io";

/// The base a deployment calls: `api_base`, else `ELEVENLABS_API_BASE`, else ElevenLabs' own.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> String {
    api_base
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .or_else(|| env("ELEVENLABS_API_BASE"))
        .unwrap_or_else(|| DEFAULT_BASE.to_string())
}

/// OpenAI's voice names and the ElevenLabs voices LiteLLM sends for them.
const VOICES: &[(&str, &str)] = &[
    ("alloy", "21m00Tcm4TlvDq8ikWAM"),
    ("amber", "5Q0t7uMcjvnagumLfvZi"),
    ("ash", "AZnzlk1XvdvUeBnXmlld"),
    ("august", "D38z5RcWu1voky8WS1ja"),
    ("blue", "2EiwWnXFnvU5JabPnv8n"),
    ("coral", "9BWtsMINqrJLrRacOk9x"),
    ("lily", "EXAVITQu4vr4xnSDxMaL"),
    ("onyx", "29vD33N1CtxCmqQRPOHJ"),
    ("sage", "CwhRBWXzGAHq8TQ4Fs17"),
    ("verse", "CYw3kZ02Hs0563khs1Fj"),
];

/// The fields of OpenAI's speech request that are not passed on as they are.
const OPENAI_FIELDS: &[&str] =
    &["model", "input", "voice", "response_format", "speed", "instructions", "stream_format", "user"];

/// The longest voice id sent in a path (ElevenLabs' ids are 20 characters).
const MAX_VOICE: usize = 128;

#[derive(Debug)]
pub struct ElevenLabs {
    address: Address,
    /// `{base}/v1/text-to-speech`: the voice and options are added per call.
    root: String,
    model: String,
}

impl ElevenLabs {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let key = p.api_key.map(str::to_string).or_else(|| env("ELEVENLABS_API_KEY")).ok_or_else(|| {
            format!("{}.api_key: missing; set it (or ELEVENLABS_API_KEY) to an ElevenLabs API key", p.path())
        })?;
        let root = format!("{}/v1/text-to-speech", base(p.api_base, env).trim_end_matches('/'));
        let mut address = Address::new(p, root.clone(), root.clone())?;
        address.headers.push(p.secret_header(HeaderName::from_static("xi-api-key"), &key)?);
        Ok(ElevenLabs { address, root, model: p.model.upstream.clone() })
    }
}

/// The ElevenLabs voice id a request's `voice` names.
fn voice_id(voice: Option<&Value>) -> Result<String, ApiError> {
    let named = match voice {
        Some(Value::String(s)) => Some(s.trim()),
        Some(Value::Object(o)) => ["voice_id", "id", "name"].iter().find_map(|k| o.get(*k)?.as_str()).map(str::trim),
        _ => None,
    };
    let named = named.filter(|v| !v.is_empty()).ok_or_else(|| {
        ApiError::bad_request("`voice` is required: an OpenAI voice name (alloy, onyx, …) or an ElevenLabs voice id")
            .param("voice")
    })?;
    let lower = named.to_ascii_lowercase();
    let id = VOICES.iter().find(|(name, _)| *name == lower).map_or(named, |(_, id)| id);
    if id.len() > MAX_VOICE || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::bad_request("`voice` is not an ElevenLabs voice id (letters and digits)").param("voice"));
    }
    Ok(id.to_string())
}

/// `output_format` for OpenAI's `response_format`, as LiteLLM maps it.
fn output_format(response_format: &str) -> &str {
    match response_format {
        "mp3" => "mp3_44100_128",
        "pcm" => "pcm_44100",
        "opus" => "opus_48000_128",
        other => other,
    }
}

/// The path and query after `/v1/text-to-speech`, and the JSON body, for an OpenAI speech request.
fn speech_request(req: &Map<String, Value>, model: &str) -> Result<(String, Value), ApiError> {
    let text = req
        .get("input")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad_request("`input` is required: the text to speak, as a string").param("input"))?;
    let mut path = format!("/{}", voice_id(req.get("voice"))?);
    if let Some(format) = req.get("response_format").and_then(Value::as_str) {
        let enc = percent_encoding::utf8_percent_encode(output_format(format), crate::provider::QUERY_VALUE);
        path.push_str(&format!("?output_format={enc}"));
    }
    let mut body = Map::new();
    body.insert("text".into(), Value::String(text.to_string()));
    body.insert("model_id".into(), Value::String(model.to_string()));
    for (k, v) in req.iter().filter(|(k, v)| !OPENAI_FIELDS.contains(&k.as_str()) && !v.is_null()) {
        body.insert(k.clone(), v.clone());
    }
    if let Some(speed) = req.get("speed").and_then(Value::as_f64).filter(|s| s.is_finite()) {
        let settings = body.entry("voice_settings").or_insert_with(|| Value::Object(Map::new()));
        if let Some(s) = settings.as_object_mut() {
            s.insert("speed".into(), speed.into());
        }
    }
    Ok((path, Value::Object(body)))
}

impl ChatProvider for ElevenLabs {
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Speech
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let request =
            request.as_object().ok_or_else(|| ApiError::bad_request("the request body must be a JSON object"))?;
        let (path, body) = speech_request(request, &self.model)?;
        let mut req = self.address.request(false, crate::provider::json_body(&body));
        req.url = format!("{}{path}", self.root)
            .parse()
            .map_err(|_| ApiError::bad_request("`voice` cannot be sent in a URL").param("voice"))?;
        Ok(req)
    }

    /// Never reached: the server relays a speech answer's audio as it is.
    fn parse_answer(&self, body: &[u8], _meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        Err(crate::errors::malformed(&self.address.provider, "a speech answer is audio, not JSON", body))
    }

    fn stream_translator(&self, _meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::OpenAi(sluice_wire::sse::Parser::new(), None)
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        // ElevenLabs' errors read `{"detail": {"status", "message"}}`.
        let text = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.pointer("/detail/message").and_then(Value::as_str).map(str::to_string));
        match text {
            Some(text) => {
                let class = crate::ExceptionClass::from_status(status);
                crate::errors::classified(&self.address.provider, (class.status(Some(status)), class.name(), text))
            }
            None => crate::errors::openai_shaped(&self.address.provider, status, body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> Result<(String, Value), ApiError> {
        speech_request(v.as_object().unwrap(), "eleven_multilingual_v2")
    }

    #[test]
    fn openais_speech_request_becomes_elevenlabs_text_to_speech() {
        let (path, body) =
            request(json!({"model": "g", "input": "hi", "voice": "alloy", "response_format": "mp3", "speed": 1.2}))
                .unwrap();
        assert_eq!(path, "/21m00Tcm4TlvDq8ikWAM?output_format=mp3_44100_128");
        assert_eq!(body, json!({"text": "hi", "model_id": "eleven_multilingual_v2", "voice_settings": {"speed": 1.2}}));
        let (path, body) = request(json!({"input": "hi", "voice": {"voice_id": "abcDEF123"}, "seed": 7,
            "instructions": "cheerful"}))
        .unwrap();
        assert_eq!(path, "/abcDEF123");
        assert_eq!(body, json!({"text": "hi", "model_id": "eleven_multilingual_v2", "seed": 7}));
    }

    #[test]
    fn a_missing_or_unsendable_voice_is_refused_with_its_param() {
        assert_eq!(request(json!({"input": "hi"})).unwrap_err().param.as_deref(), Some("voice"));
        assert_eq!(request(json!({"input": "hi", "voice": "../admin"})).unwrap_err().param.as_deref(), Some("voice"));
        assert_eq!(request(json!({"voice": "alloy"})).unwrap_err().param.as_deref(), Some("input"));
    }

    #[test]
    fn builds_the_url_and_key_header() {
        let m = crate::catalogue::parse_model("elevenlabs/eleven_turbo_v2", None).unwrap();
        let p = Params {
            api_base: Some("http://el.local/"),
            api_key: Some("xi-secret"),
            ..crate::provider::test_params(&m)
        };
        let e = ElevenLabs::new(&p, &|_: &str| None).unwrap();
        let body = bytes::Bytes::from_static(br#"{"model":"g","input":"hi","voice":"onyx"}"#);
        let call = ChatCall { endpoint: Endpoint::Speech, body: &body, model_span: None, stream: false, now: 0 };
        let req = e.build_request(&call).unwrap();
        assert_eq!(req.url.to_string(), "http://el.local/v1/text-to-speech/29vD33N1CtxCmqQRPOHJ");
        assert_eq!(req.headers["xi-api-key"], "xi-secret");
        assert!(req.headers["xi-api-key"].is_sensitive());
        assert!(e.serves(Endpoint::Speech) && !e.serves(Endpoint::Chat));
    }
}
