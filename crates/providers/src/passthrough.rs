//! Provider pass-through (LiteLLM's `/openai/*`, `/anthropic/*`, `/gemini/*`, `/vertex_ai/*`,
//! `/bedrock/*`, `/azure/*`): where each provider's native API lives, which credential it takes
//! and how it is sent, the model a native request names, and the token usage its native answers
//! report (whole or streamed). The server relays the bytes; everything provider-specific about
//! a pass-through call is decided here.

use crate::bedrock::{self, EventStreamDecoder};
use crate::pricing::TokenUsage;
use crate::provider::{Env, TokenSource};
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use std::sync::Arc;

/// A provider whose native API sluice relays under its own prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    OpenAi,
    Anthropic,
    Gemini,
    Vertex,
    Bedrock,
    Azure,
}

impl Native {
    pub const ALL: [Native; 6] =
        [Native::OpenAi, Native::Anthropic, Native::Gemini, Native::Vertex, Native::Bedrock, Native::Azure];

    /// The path prefixes LiteLLM serves it under (the first is the one metrics and logs name).
    pub fn prefixes(self) -> &'static [&'static str] {
        match self {
            Native::OpenAi => &["/openai"],
            Native::Anthropic => &["/anthropic"],
            Native::Gemini => &["/gemini"],
            // LiteLLM's older `/vertex-ai` spelling is deprecated there and not served here.
            Native::Vertex => &["/vertex_ai"],
            Native::Bedrock => &["/bedrock"],
            Native::Azure => &["/azure"],
        }
    }

    /// LiteLLM's provider name: the price table's and the spend log's.
    pub fn provider_name(self) -> &'static str {
        match self {
            Native::OpenAi => "openai",
            Native::Anthropic => "anthropic",
            Native::Gemini => "gemini",
            Native::Vertex => "vertex_ai",
            Native::Bedrock => "bedrock",
            Native::Azure => "azure",
        }
    }

    /// The provider as errors name it (`OpenAIException`, …).
    pub fn provider(self) -> crate::Provider {
        crate::catalogue::lookup(self.provider_name())
            .unwrap_or(crate::Provider { name: "openai", family: crate::Family::NotImplemented })
    }

    /// The model a native request names: in the path for Google (`models/{m}:verb`) and Bedrock
    /// (`model/{id}/…`) and Azure (`deployments/{m}/…`), else the body's `model` (read by the
    /// caller, as it already sniffs the body). `None` when the path names none.
    pub fn model_in_path(self, subpath: &str) -> Option<String> {
        match self {
            Native::Gemini | Native::Vertex => {
                let (_, rest) = subpath.rsplit_once("/models/")?;
                let model = rest.split([':', '/']).next()?;
                (!model.is_empty()).then(|| model.to_string())
            }
            Native::Bedrock => {
                let rest = subpath.split_once("/model/")?.1;
                let id = rest.split('/').next()?;
                (!id.is_empty()).then(|| percent_decode(id))
            }
            Native::Azure => {
                let rest = subpath.split_once("/deployments/")?.1;
                let m = rest.split('/').next()?;
                (!m.is_empty()).then(|| m.to_string())
            }
            Native::OpenAi | Native::Anthropic => None,
        }
    }
}

/// How the provider's credential goes with a request.
pub enum Credential {
    /// One header (OpenAI's bearer, Anthropic's `x-api-key`, Azure's `api-key`, Google AI
    /// Studio's `x-goog-api-key`, a Bedrock API key), marked sensitive.
    Header(HeaderName, HeaderValue),
    /// AWS SigV4 over the exact bytes sent, for `region`, with credentials from the chain.
    SigV4 { credentials: Arc<sluice_credentials::aws::AwsCredentials>, region: String },
    /// A Vertex access token fetched (and cached) by the server.
    Token(Arc<dyn TokenSource>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Header(name, _) => write!(f, "Header({name}: <redacted>)"),
            Credential::SigV4 { credentials, region } => write!(f, "SigV4({credentials:?}, {region})"),
            Credential::Token(_) => f.write_str("Token(<fetched>)"),
        }
    }
}

/// Where a provider's pass-through goes, and with what credential: read from the environment
/// once, at start. What is missing is said when a request arrives (as LiteLLM does), so a
/// config that does not use a provider's pass-through needs none of its variables.
#[derive(Debug)]
pub struct NativeUpstream {
    pub native: Native,
    /// The base URL, without a trailing `/`; the client's path under the prefix is appended.
    pub base: Result<String, String>,
    pub credential: Result<Credential, String>,
}

/// Vertex's defaults (`default_vertex_config`, else `VERTEXAI_PROJECT` / `VERTEXAI_LOCATION` /
/// `GOOGLE_APPLICATION_CREDENTIALS`).
#[derive(Debug, Clone, Default)]
pub struct VertexDefaults {
    pub project: Option<String>,
    pub location: Option<String>,
    pub credentials: Option<String>,
    /// Where Vertex is reached (a regional endpoint, or a private one); by default
    /// `https://{location}-aiplatform.googleapis.com`.
    pub api_base: Option<String>,
}

/// LiteLLM's variable names for each provider's pass-through.
pub fn resolve(
    native: Native,
    env: Env<'_>,
    vertex: &VertexDefaults,
    token_for: &mut dyn FnMut(&str) -> Arc<dyn TokenSource>,
) -> NativeUpstream {
    let first = |names: &[&str]| names.iter().find_map(|n| env(n)).filter(|v| !v.trim().is_empty());
    let trimmed = |s: String| s.trim_end_matches('/').to_string();
    let header = |name: &'static str, value: String, var: &str| -> Result<Credential, String> {
        let mut v = HeaderValue::from_str(&value)
            .map_err(|_| format!("{var} contains characters that cannot be sent in a header"))?;
        v.set_sensitive(true);
        Ok(Credential::Header(HeaderName::from_static(name), v))
    };
    let missing =
        |var: &str, what: &str| format!("Required '{var}' in environment to make pass-through calls to {what}.");
    let (base, credential) = match native {
        Native::OpenAi => (
            Ok(first(&["OPENAI_API_BASE", "OPENAI_BASE_URL"]).map_or("https://api.openai.com".into(), trimmed)),
            first(&["OPENAI_API_KEY"])
                .ok_or_else(|| missing("OPENAI_API_KEY", "OpenAI"))
                .and_then(|k| header("authorization", format!("Bearer {k}"), "OPENAI_API_KEY")),
        ),
        Native::Anthropic => (
            Ok(first(&crate::anthropic::BASE_ENV).map_or("https://api.anthropic.com".into(), trimmed)),
            first(&[crate::anthropic::KEY_ENV])
                .ok_or_else(|| missing("ANTHROPIC_API_KEY", "Anthropic"))
                .and_then(|k| header("x-api-key", k, "ANTHROPIC_API_KEY")),
        ),
        Native::Gemini => (
            Ok(first(&["GEMINI_API_BASE"]).map_or("https://generativelanguage.googleapis.com".into(), trimmed)),
            first(&["GEMINI_API_KEY"])
                .ok_or_else(|| missing("GEMINI_API_KEY", "Google AI Studio (Gemini)"))
                .and_then(|k| header("x-goog-api-key", k, "GEMINI_API_KEY")),
        ),
        Native::Azure => (
            first(crate::azure::BASE_ENV).map(trimmed).ok_or_else(|| missing("AZURE_API_BASE", "Azure")),
            first(crate::azure::KEY_ENV)
                .ok_or_else(|| missing("AZURE_API_KEY", "Azure"))
                .and_then(|k| header("api-key", k, "AZURE_API_KEY")),
        ),
        Native::Bedrock => {
            let region = first(&["AWS_REGION_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"]);
            let base = match (first(&["AWS_BEDROCK_RUNTIME_ENDPOINT"]), &region) {
                (Some(endpoint), _) => Ok(trimmed(endpoint)),
                (None, Some(r)) => Ok(format!("https://bedrock-runtime.{r}.amazonaws.com")),
                (None, None) => Err(missing("AWS_REGION_NAME", "Bedrock")),
            };
            let credential = match first(&[bedrock::BEARER_TOKEN_ENV]) {
                Some(token) => header("authorization", format!("Bearer {token}"), bedrock::BEARER_TOKEN_ENV),
                // The AWS credential chain (the environment's keys, a profile, web identity, ECS,
                // EC2), asked when a request is signed.
                None => {
                    let region = region.unwrap_or_else(|| "us-east-1".into());
                    let settings =
                        sluice_credentials::aws::Settings { region: Some(region.clone()), ..Default::default() };
                    let credentials = sluice_credentials::aws::shared(settings, sluice_credentials::Env::capture(env));
                    Ok(Credential::SigV4 { credentials, region })
                }
            };
            (base, credential)
        }
        Native::Vertex => {
            let location = vertex.location.clone().or_else(|| first(&["VERTEXAI_LOCATION"]));
            let base = match (&vertex.api_base, &location) {
                (Some(b), _) => Ok(trimmed(b.clone())),
                (None, Some(l)) => Ok(format!("https://{l}-aiplatform.googleapis.com")),
                (None, None) => Ok("https://us-central1-aiplatform.googleapis.com".into()),
            };
            let source = vertex.credentials.clone().or_else(|| first(&["GOOGLE_APPLICATION_CREDENTIALS"]));
            let credential = match source {
                Some(s) => Ok(Credential::Token(token_for(&s))),
                None => Err("Vertex AI pass-through needs credentials: set default_vertex_config.vertex_credentials (a service-account key's path or JSON) or GOOGLE_APPLICATION_CREDENTIALS.".into()),
            };
            (base, credential)
        }
    };
    NativeUpstream { native, base, credential }
}

impl Native {
    /// The base URL one call goes to: Bedrock's agents and knowledge bases are served by
    /// `bedrock-agent-runtime`, everything else by `bedrock-runtime` (as LiteLLM routes them);
    /// a Vertex call goes to the region its path names (`locations/{l}`) unless a base URL of
    /// its own is configured.
    pub fn base_for(self, base: &str, subpath: &str) -> String {
        match self {
            Native::Bedrock => {
                let agent = subpath.starts_with("/agents/")
                    || subpath.starts_with("/knowledgebases/")
                    || subpath == "/retrieveAndGenerate";
                match agent {
                    true => base.replacen("://bedrock-runtime.", "://bedrock-agent-runtime.", 1),
                    false => base.to_string(),
                }
            }
            Native::Vertex if base.starts_with("https://") && base.ends_with("aiplatform.googleapis.com") => {
                let location = subpath.split_once("/locations/").and_then(|(_, rest)| rest.split('/').next());
                match location {
                    Some("global") => "https://aiplatform.googleapis.com".to_string(),
                    // A location is a DNS label: anything else keeps the configured host.
                    Some(l) if !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                        format!("https://{l}-aiplatform.googleapis.com")
                    }
                    _ => base.to_string(),
                }
            }
            _ => base.to_string(),
        }
    }
}

/// The project and location a Vertex path names (`/v1/projects/{p}/locations/{l}/…`).
pub fn vertex_project_location(subpath: &str) -> Option<(&str, &str)> {
    let rest = subpath.split_once("/projects/")?.1;
    let (project, rest) = rest.split_once('/')?;
    let location = rest.strip_prefix("locations/")?.split('/').next()?;
    (!project.is_empty() && !location.is_empty()).then_some((project, location))
}

/// `%3A` → `:` in a Bedrock model id (boto3 percent-encodes the path).
fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The usage a native answer reports, whatever the provider: OpenAI's `usage.prompt_tokens`
/// (chat) or `input_tokens` (responses), Anthropic's `usage.input_tokens` plus its cache
/// counts, Gemini's `usageMetadata`, Bedrock Converse's `usage.inputTokens`. `None` when the
/// answer carries none.
pub fn answer_usage(body: &[u8]) -> Option<TokenUsage> {
    const PROMPT_TOKENS: &[u8] = b"\"prompt_tokens\"";
    // OpenAI's chat shape first, with the scanner the model routes use: no tree for the common
    // case. Only for `prompt_tokens`: the scanner also reads `input_tokens` (the Responses API's
    // name), which Anthropic uses too, with its cache counts outside it.
    let chat_shaped = body.windows(PROMPT_TOKENS.len()).any(|w| w == PROMPT_TOKENS);
    if let Some(view) = chat_shaped.then(|| sluice_wire::sniff::response(body).ok()).flatten() {
        if let Some(u) = view.usage.filter(|u| u.prompt_tokens > 0 || u.completion_tokens > 0) {
            return Some(TokenUsage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cached_prompt_tokens: u.cached_tokens.min(u.prompt_tokens),
                cache_creation_tokens: u.cache_creation_input_tokens.min(u.prompt_tokens),
                reasoning_tokens: u.reasoning_tokens.min(u.completion_tokens),
            });
        }
    }
    let v: Value = serde_json::from_slice(body).ok()?;
    let mut seen = Seen::default();
    match &v {
        // Gemini's `streamGenerateContent` without `alt=sse`: one JSON array of chunks.
        Value::Array(items) => items.iter().for_each(|item| seen.read(item)),
        _ => seen.read(&v),
    }
    seen.usage()
}

/// Usage gathered from the events of a stream: each count the largest reported (Gemini repeats
/// running totals, Anthropic reports input at the start and output at the end, OpenAI once at
/// the end).
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    prompt: Option<u64>,
    completion: Option<u64>,
    cache_read: u64,
    cache_creation: u64,
    /// Gemini's thinking tokens, outside `candidatesTokenCount`.
    thoughts: u64,
    /// Anthropic and Bedrock count cache reads and writes outside `input_tokens`.
    cache_outside_prompt: bool,
}

impl Seen {
    fn read(&mut self, v: &Value) {
        let usage = [&v["usage"], &v["message"]["usage"], &v["response"]["usage"], &v["usageMetadata"]]
            .into_iter()
            .filter(|u| u.is_object());
        for u in usage {
            let n = |k: &str| u.get(k).and_then(Value::as_u64);
            let max = |slot: &mut Option<u64>, x: Option<u64>| {
                if let Some(x) = x {
                    *slot = Some(slot.map_or(x, |s| s.max(x)));
                }
            };
            max(
                &mut self.prompt,
                n("prompt_tokens").or(n("input_tokens")).or(n("promptTokenCount")).or(n("inputTokens")),
            );
            max(
                &mut self.completion,
                n("completion_tokens").or(n("output_tokens")).or(n("candidatesTokenCount")).or(n("outputTokens")),
            );
            let cached = u["prompt_tokens_details"]["cached_tokens"]
                .as_u64()
                .or(u["input_tokens_details"]["cached_tokens"].as_u64())
                .or(n("cachedContentTokenCount"));
            if let Some(c) = cached {
                self.cache_read = self.cache_read.max(c);
            }
            // Outside the input count: Anthropic's and Bedrock's cache reads and writes.
            let read = n("cache_read_input_tokens").or(n("cacheReadInputTokens"));
            let written = n("cache_creation_input_tokens").or(n("cacheWriteInputTokens"));
            if read.is_some() || written.is_some() {
                self.cache_outside_prompt = true;
                self.cache_read = self.cache_read.max(read.unwrap_or(0));
                self.cache_creation = self.cache_creation.max(written.unwrap_or(0));
            }
            // Gemini counts thinking tokens apart from the candidates; they are billed as output.
            if let Some(t) = n("thoughtsTokenCount") {
                self.thoughts = self.thoughts.max(t);
            }
        }
    }

    fn usage(&self) -> Option<TokenUsage> {
        if self.prompt.is_none() && self.completion.is_none() && self.thoughts == 0 {
            return None;
        }
        let mut prompt = self.prompt.unwrap_or(0);
        if self.cache_outside_prompt {
            prompt = prompt.saturating_add(self.cache_read).saturating_add(self.cache_creation);
        }
        Some(TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: self.completion.unwrap_or(0).saturating_add(self.thoughts),
            cached_prompt_tokens: self.cache_read.min(prompt),
            cache_creation_tokens: self.cache_creation.min(prompt),
            // Gemini's thoughts are output tokens; billed at the output price as the map has no
            // separate one for most models.
            reasoning_tokens: 0,
        })
    }
}

/// Watches a relayed stream for the usage it reports, without changing a byte of it: SSE
/// events (OpenAI, Anthropic, Gemini) or AWS event-stream messages (Bedrock), chosen by the
/// answer's content type. Only events that mention usage are parsed.
pub struct UsageTap {
    kind: TapKind,
    seen: Seen,
    /// Bytes looked at: the tap stops (and keeps what it has) past a bound, so a huge stream
    /// costs no more than its relay.
    broken: bool,
}

enum TapKind {
    Sse(sluice_wire::sse::Parser),
    EventStream(EventStreamDecoder),
}

impl UsageTap {
    /// A tap for an answer of `content_type`.
    pub fn new(content_type: &[u8]) -> UsageTap {
        let event_stream = content_type
            .get(..bedrock::EVENT_STREAM_CONTENT_TYPE.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(bedrock::EVENT_STREAM_CONTENT_TYPE.as_bytes()));
        let kind = match event_stream {
            true => TapKind::EventStream(EventStreamDecoder::new()),
            false => TapKind::Sse(sluice_wire::sse::Parser::new()),
        };
        UsageTap { kind, seen: Seen::default(), broken: false }
    }

    /// Bytes of the stream as they pass.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.broken {
            return;
        }
        match &mut self.kind {
            TapKind::Sse(parser) => {
                parser.push(bytes);
                loop {
                    match parser.next_event() {
                        Ok(Some(event)) => read_event(&mut self.seen, &event.data),
                        Ok(None) => break,
                        Err(_) => {
                            self.broken = true;
                            break;
                        }
                    }
                }
            }
            TapKind::EventStream(decoder) => {
                decoder.push(bytes);
                loop {
                    match decoder.next_message() {
                        Ok(Some(m)) => read_event(&mut self.seen, &m.payload),
                        Ok(None) => break,
                        Err(_) => {
                            self.broken = true;
                            break;
                        }
                    }
                }
            }
        }
    }

    /// What the stream reported so far.
    pub fn usage(&mut self) -> Option<TokenUsage> {
        if let TapKind::Sse(parser) = &mut self.kind {
            if let Some(event) = parser.finish() {
                read_event(&mut self.seen, &event.data);
            }
        }
        self.seen.usage()
    }
}

/// One event's data, parsed only when it mentions usage.
fn read_event(seen: &mut Seen, data: &[u8]) {
    let mentions = |needle: &[u8]| data.windows(needle.len()).any(|w| w == needle);
    if mentions(b"sage") {
        if let Ok(v) = serde_json::from_slice::<Value>(data) {
            seen.read(&v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_named_in_paths() {
        let gemini = Native::Gemini.model_in_path("/v1beta/models/gemini-2.0-flash:generateContent");
        assert_eq!(gemini.as_deref(), Some("gemini-2.0-flash"));
        let vertex = Native::Vertex.model_in_path(
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-1.5-pro:streamGenerateContent",
        );
        assert_eq!(vertex.as_deref(), Some("gemini-1.5-pro"));
        let bedrock = Native::Bedrock.model_in_path("/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse");
        assert_eq!(bedrock.as_deref(), Some("anthropic.claude-3-haiku-20240307-v1:0"));
        let azure = Native::Azure.model_in_path("/openai/deployments/gpt-4o/chat/completions");
        assert_eq!(azure.as_deref(), Some("gpt-4o"));
        assert_eq!(Native::OpenAi.model_in_path("/v1/chat/completions"), None);
        assert_eq!(Native::Gemini.model_in_path("/v1beta/models/"), None);
        assert_eq!(Native::Bedrock.model_in_path("/guardrail/x/version/1/apply"), None);
    }

    #[test]
    fn usage_of_each_providers_answer() {
        let openai =
            br#"{"usage":{"prompt_tokens":12,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let u = answer_usage(openai).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.cached_prompt_tokens), (12, 5, 4));
        let anthropic = br#"{"type":"message","usage":{"input_tokens":10,"output_tokens":3,"cache_read_input_tokens":20,"cache_creation_input_tokens":5}}"#;
        let u = answer_usage(anthropic).unwrap();
        assert_eq!(
            (u.prompt_tokens, u.completion_tokens, u.cached_prompt_tokens, u.cache_creation_tokens),
            (35, 3, 20, 5)
        );
        let gemini =
            br#"{"candidates":[],"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":2,"totalTokenCount":9}}"#;
        let u = answer_usage(gemini).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (7, 2));
        let bedrock = br#"{"output":{},"usage":{"inputTokens":8,"outputTokens":6,"totalTokens":14}}"#;
        let u = answer_usage(bedrock).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (8, 6));
        let array = br#"[{"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":1}},{"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":4}}]"#;
        assert_eq!(answer_usage(array).map(|u| (u.prompt_tokens, u.completion_tokens)), Some((7, 4)));
        assert_eq!(answer_usage(br#"{"id":"x"}"#), None);
        assert_eq!(answer_usage(b"not json"), None);
    }

    #[test]
    fn streamed_usage_from_sse_in_any_split() {
        let anthropic = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":11,\"output_tokens\":1}}}\n\n\
            event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\n\n\
            event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":9}}\n\n";
        for split in [1, 7, 64, anthropic.len()] {
            let mut tap = UsageTap::new(b"text/event-stream");
            for piece in anthropic.as_bytes().chunks(split) {
                tap.push(piece);
            }
            let u = tap.usage().unwrap();
            assert_eq!((u.prompt_tokens, u.completion_tokens), (11, 9), "split {split}");
        }
        let openai = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
        let mut tap = UsageTap::new(b"text/event-stream; charset=utf-8");
        tap.push(openai.as_bytes());
        assert_eq!(tap.usage().map(|u| (u.prompt_tokens, u.completion_tokens)), Some((3, 4)));
        let mut none = UsageTap::new(b"text/event-stream");
        none.push(b"data: {\"choices\":[]}\n\n");
        assert_eq!(none.usage(), None);
    }

    #[test]
    fn streamed_usage_from_bedrock_event_stream() {
        let mut bytes = bedrock::encode_event(
            &[(":event-type", "contentBlockDelta"), (":message-type", "event")],
            br#"{"delta":{"text":"hi"}}"#,
        );
        bytes.extend(bedrock::encode_event(
            &[(":event-type", "metadata"), (":message-type", "event")],
            br#"{"usage":{"inputTokens":5,"outputTokens":2,"totalTokens":7}}"#,
        ));
        let mut tap = UsageTap::new(b"application/vnd.amazon.eventstream");
        for piece in bytes.chunks(5) {
            tap.push(piece);
        }
        assert_eq!(tap.usage().map(|u| (u.prompt_tokens, u.completion_tokens)), Some((5, 2)));
    }

    #[test]
    fn vertex_paths_name_project_and_location() {
        let path = "/v1/projects/my-proj/locations/us-east5/publishers/google/models/m:generateContent";
        assert_eq!(vertex_project_location(path), Some(("my-proj", "us-east5")));
        assert_eq!(vertex_project_location("/v1/projects/p"), None);
        assert_eq!(vertex_project_location("/v1/projects//locations/x"), None);
    }

    #[test]
    fn calls_go_to_the_service_and_region_their_path_names() {
        let base = "https://bedrock-runtime.us-west-2.amazonaws.com";
        assert_eq!(Native::Bedrock.base_for(base, "/model/x/converse"), base);
        assert_eq!(
            Native::Bedrock.base_for(base, "/knowledgebases/kb/retrieve"),
            "https://bedrock-agent-runtime.us-west-2.amazonaws.com"
        );
        let vertex = "https://us-central1-aiplatform.googleapis.com";
        let path = "/v1/projects/p/locations/europe-west4/publishers/google/models/m:generateContent";
        assert_eq!(Native::Vertex.base_for(vertex, path), "https://europe-west4-aiplatform.googleapis.com");
        let global = "/v1/projects/p/locations/global/publishers/google/models/m:generateContent";
        assert_eq!(Native::Vertex.base_for(vertex, global), "https://aiplatform.googleapis.com");
        assert_eq!(Native::Vertex.base_for(vertex, "/v1/projects/p/locations/evil.com#/x"), vertex);
        assert_eq!(
            Native::Vertex.base_for("http://127.0.0.1:9", path),
            "http://127.0.0.1:9",
            "a configured base stays"
        );
    }

    #[test]
    fn credentials_come_from_litellms_variables_and_never_show() {
        let vars = [("OPENAI_API_KEY", "sk-openai-secret"), ("AWS_REGION_NAME", "eu-west-1")];
        let env = |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        let mut tokens = |_: &str| -> Arc<dyn TokenSource> { unreachable!("no vertex here") };
        let openai = resolve(Native::OpenAi, &env, &VertexDefaults::default(), &mut tokens);
        assert_eq!(openai.base.as_deref(), Ok("https://api.openai.com"));
        let Ok(Credential::Header(name, value)) = &openai.credential else { panic!("{openai:?}") };
        assert_eq!((name.as_str(), value.to_str().unwrap()), ("authorization", "Bearer sk-openai-secret"));
        assert!(!format!("{openai:?}").contains("secret"));
        let anthropic = resolve(Native::Anthropic, &env, &VertexDefaults::default(), &mut tokens);
        assert!(anthropic.credential.unwrap_err().contains("ANTHROPIC_API_KEY"));
        let bedrock = resolve(Native::Bedrock, &env, &VertexDefaults::default(), &mut tokens);
        assert_eq!(bedrock.base.as_deref(), Ok("https://bedrock-runtime.eu-west-1.amazonaws.com"));
        let Ok(Credential::SigV4 { region, .. }) = &bedrock.credential else { panic!("{bedrock:?}") };
        assert_eq!(region, "eu-west-1", "signed for the region, credentials from the chain when a request is sent");
        let azure = resolve(Native::Azure, &env, &VertexDefaults::default(), &mut tokens);
        assert!(azure.base.unwrap_err().contains("AZURE_API_BASE"));
    }

    proptest::proptest! {
        /// Whatever bytes a stream carries, in whatever pieces, the tap never panics and its
        /// counts are what some event reported.
        #[test]
        fn any_stream_is_tapped_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600), split in 1usize..50, sse in proptest::bool::ANY) {
            let mut tap = UsageTap::new(if sse { b"text/event-stream".as_slice() } else { b"application/vnd.amazon.eventstream".as_slice() });
            for piece in bytes.chunks(split) {
                tap.push(piece);
            }
            let _ = tap.usage();
        }

        #[test]
        fn any_path_yields_a_model_or_none(path in "(/[a-z0-9.%:-]{0,12}){0,6}") {
            for n in Native::ALL {
                if let Some(m) = n.model_in_path(&path) {
                    proptest::prop_assert!(!m.is_empty());
                }
            }
        }
    }
}
