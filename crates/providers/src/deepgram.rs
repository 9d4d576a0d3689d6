//! Deepgram (`deepgram/…`), as LiteLLM calls it: `/audio/transcriptions` only, sent to
//! Deepgram's pre-recorded API, `POST {base}/listen?model={model}`, with the uploaded file's bytes
//! alone as the body (the form is read by `sluice_wire::form`, the same reader that finds an
//! OpenAI upload's `model`; the file is a slice of the client's body, not a copy) and
//! `Authorization: Token {key}`. The form's `language` goes as Deepgram's `language` query option,
//! and every field that is not one of OpenAI's (Deepgram's own `punctuate`, `diarize`,
//! `smart_format`, …) as a query option of its name, as LiteLLM passes extra parameters on;
//! OpenAI's others (`prompt`, `temperature`, `response_format`, …) Deepgram has no use for.
//! The answer's first channel's first alternative becomes OpenAI's transcription, with the
//! `duration` of `metadata` (which bills the call per second) and the words' timings, as
//! LiteLLM's `TranscriptionResponse` carries them. `api_base` defaults to `DEEPGRAM_API_BASE`,
//! then `https://api.deepgram.com/v1`; the key to `api_key`, then `DEEPGRAM_API_KEY`.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::{json, Value};
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

use crate::provider::{Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest};
use crate::stream::StreamTranslator;

pub const DEFAULT_BASE: &str = "https://api.deepgram.com/v1";

/// The base a deployment calls: `api_base`, else `DEEPGRAM_API_BASE`, else Deepgram's own.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> String {
    api_base
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .or_else(|| env("DEEPGRAM_API_BASE"))
        .unwrap_or_else(|| DEFAULT_BASE.to_string())
}

/// The most words of an answer carried into OpenAI's `words` (an hour of speech has ~10,000).
const MAX_WORDS: usize = 100_000;

/// OpenAI's transcription fields, which are not Deepgram options.
const OPENAI_FIELDS: &[&str] = &[
    "prompt",
    "temperature",
    "response_format",
    "timestamp_granularities",
    "timestamp_granularities[]",
    "stream",
    "chunking_strategy",
    "include",
    "include[]",
    "user",
];

#[derive(Debug)]
pub struct Deepgram {
    /// `{base}/listen`, without a query: the model and options are added per call.
    address: Address,
    listen: String,
    model: String,
}

impl Deepgram {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let key = p.api_key.map(str::to_string).or_else(|| env("DEEPGRAM_API_KEY")).ok_or_else(|| {
            format!("{}.api_key: missing; set it (or DEEPGRAM_API_KEY) to a Deepgram API key", p.path())
        })?;
        let root = base(p.api_base, env);
        let listen = format!("{}/listen", root.trim_end_matches('/'));
        let mut address = Address::new(p, listen.clone(), listen.clone())?;
        // The body is audio, not JSON: each call sets its own content type.
        address.headers.clear();
        address.headers.push(p.secret_header(HeaderName::from_static("authorization"), &format!("Token {key}"))?);
        Ok(Deepgram { address, listen, model: p.model.upstream.clone() })
    }

    /// `{base}/listen?model=…&{option}=…`, each name and value percent-encoded.
    fn url(&self, options: &[(&str, &str)]) -> String {
        let enc = |v: &str| percent_encoding::utf8_percent_encode(v, crate::provider::QUERY_VALUE).to_string();
        let mut url = format!("{}?model={}", self.listen, enc(&self.model));
        for (name, value) in options {
            url.push('&');
            url.push_str(&enc(name));
            url.push('=');
            url.push_str(&enc(value.trim()));
        }
        url
    }
}

/// What Deepgram is sent of an upload.
struct Upload<'a> {
    /// The file's bytes (a slice of the client's body) and their content type.
    audio: Bytes,
    kind: HeaderValue,
    /// The form's `language` and the fields that are not OpenAI's, as query options.
    options: Vec<(&'a str, &'a str)>,
}

fn read_upload(body: &Bytes) -> Result<Upload<'_>, ApiError> {
    let content_type = sluice_wire::form::content_type_of(body)
        .ok_or_else(|| ApiError::bad_request("Request body is not multipart/form-data."))?;
    let boundary = sluice_wire::form::boundary(&content_type)
        .ok_or_else(|| ApiError::bad_request("Request body is not multipart/form-data."))?;
    let form = sluice_wire::form::read(body, boundary)?;
    let file = form.file.ok_or_else(|| {
        ApiError::bad_request("Missing required form field `file`: add the audio to the upload.").param("file")
    })?;
    let kind = file
        .content_type
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let language = form.language.filter(|l| !l.trim().is_empty()).map(|l| ("language", l));
    let own = form.other.into_iter().filter(|(name, _)| !OPENAI_FIELDS.contains(name));
    Ok(Upload { audio: body.slice(file.range), kind, options: language.into_iter().chain(own).collect() })
}

/// Deepgram's answer as OpenAI's transcription (LiteLLM's fields: `text`, `task`, `language`,
/// `duration`, `words`).
fn transcription(answer: &Value) -> Result<Value, String> {
    let alternative = answer
        .pointer("/results/channels/0/alternatives/0")
        .ok_or("the answer has no results.channels[0].alternatives[0]")?;
    let text = alternative.get("transcript").and_then(Value::as_str).ok_or("the answer has no transcript")?;
    let mut out = json!({"text": text, "task": "transcribe", "language": "english"});
    if let Some(d) = answer.pointer("/metadata/duration").and_then(Value::as_f64).filter(|d| d.is_finite()) {
        out["duration"] = json!(d);
    }
    if let Some(words) = alternative.get("words").and_then(Value::as_array) {
        let words: Vec<Value> = words
            .iter()
            .take(MAX_WORDS)
            .map(|w| json!({"word": w.get("word"), "start": w.get("start"), "end": w.get("end")}))
            .collect();
        out["words"] = Value::Array(words);
    }
    Ok(out)
}

impl ChatProvider for Deepgram {
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Transcriptions
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let Upload { audio, kind, options } = read_upload(call.body)?;
        let mut req = self.address.request(false, audio);
        req.url = self.url(&options).parse().map_err(|_| {
            ApiError::bad_request("The form's Deepgram options cannot be sent in a URL: check their names and values.")
        })?;
        req.headers.insert(http::header::CONTENT_TYPE, kind);
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], _meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let answer = self.address.answer_json(body)?;
        transcription(&answer).map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    /// Deepgram's pre-recorded API does not stream: never reached (the server streams chat only).
    fn stream_translator(&self, _meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::OpenAi(sluice_wire::sse::Parser::new(), None)
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        // Deepgram's errors read `{"err_code", "err_msg"}`.
        let text = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("err_msg").and_then(Value::as_str).map(str::to_string));
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
    use crate::catalogue::parse_model;

    fn form(parts: &[(&str, &[u8])]) -> Bytes {
        let mut out = Vec::new();
        for (name, value) in parts {
            out.extend_from_slice(b"--b0und\r\n");
            let file = if *name == "file" { "; filename=\"a.wav\"\r\nContent-Type: audio/wav" } else { "" };
            out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--b0und--\r\n");
        Bytes::from(out)
    }

    fn deepgram(api_base: Option<&str>) -> Deepgram {
        let model = parse_model("deepgram/nova-2", None).unwrap();
        let p = Params { api_base, api_key: Some("dg-key"), ..crate::provider::test_params(&model) };
        Deepgram::new(&p, &|_: &str| None).unwrap()
    }

    #[test]
    fn sends_the_file_alone_with_the_model_and_language_in_the_query() {
        let body = form(&[
            ("model", b"group"),
            ("language", b"de-CH"),
            ("temperature", b"0"),
            ("smart_format", b"true"),
            ("file", b"RIFF\x01\x02"),
        ]);
        let call =
            ChatCall { endpoint: Endpoint::Transcriptions, body: &body, model_span: None, stream: false, now: 0 };
        let req = deepgram(Some("http://dg.local/v1/")).build_request(&call).unwrap();
        assert_eq!(req.url.to_string(), "http://dg.local/v1/listen?model=nova-2&language=de-CH&smart_format=true");
        assert_eq!(req.body.concat(), b"RIFF\x01\x02");
        assert_eq!(req.headers["content-type"], "audio/wav");
        assert_eq!(req.headers["authorization"], "Token dg-key");
        assert!(req.headers["authorization"].is_sensitive());
        let no_file = form(&[("model", b"group")]);
        let call = ChatCall { body: &no_file, ..call };
        let refused = deepgram(None).build_request(&call).err().unwrap();
        assert_eq!(refused.param.as_deref(), Some("file"));
    }

    #[test]
    fn the_answer_becomes_openais_transcription_with_its_duration() {
        let answer = json!({
            "metadata": {"duration": 2.5, "channels": 1},
            "results": {"channels": [{"alternatives": [{"transcript": "hello world", "confidence": 0.9,
                "words": [{"word": "hello", "start": 0.1, "end": 0.4, "confidence": 0.9}]}]}]}
        });
        let out = transcription(&answer).unwrap();
        assert_eq!(out["text"], "hello world");
        assert_eq!(out["duration"], 2.5);
        assert_eq!(out["words"], json!([{"word": "hello", "start": 0.1, "end": 0.4}]));
        assert_eq!(sluice_wire::units::audio_seconds(out.to_string().as_bytes()), Some(2.5));
        assert!(transcription(&json!({"results": {"channels": []}})).is_err());
    }

    #[test]
    fn errors_read_deepgrams_err_msg() {
        let api = deepgram(None).map_error(
            401,
            &NoHeaders,
            br#"{"err_code":"INVALID_AUTH","err_msg":"Invalid credentials."}"#,
        );
        assert_eq!(api.status, 401);
        assert_eq!(api.message, "litellm.AuthenticationError: DeepgramException - Invalid credentials.");
    }

    struct NoHeaders;
    impl Headers for NoHeaders {
        fn get(&self, _: &str) -> Option<&str> {
            None
        }
    }
}
