//! Routing and the order in which the knobs apply to a request.
//!
//! For an LLM route: count → read the body → rate limit → authenticate (Google) → parse →
//! latency → injected failures (`--fail-every`, `--fail-percent`) → model-name triggers → answer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use rand::Rng;

use crate::anthropic;
use crate::bedrock;
use crate::body::StreamEnd;
use crate::cloudflare;
use crate::cohere;
use crate::config::MockConfig;
use crate::google::{self, GoogleCall};
use crate::huggingface;
use crate::ollama;
use crate::openai::{self, Kind};
use crate::ratelimit::Limiter;
use crate::replicate;
use crate::respond::{self, Resp};
use crate::responses;
use crate::sagemaker;
use crate::sniff::sniff;
use crate::stats::{RequestGuard, Route, Stats};
use crate::textgen;
use crate::token;
use crate::triggers::Trigger;
use crate::vertex_partner;
use crate::voice;
use crate::voyage;
use crate::watsonx;

/// Larger bodies get a 413; no LLM request needs more, and the cap bounds memory per connection.
const MAX_BODY: usize = 64 * 1024 * 1024;

/// What a path and method ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    Chat(Option<&'a str>),
    Completions(Option<&'a str>),
    Embeddings(Option<&'a str>),
    Models,
    Google(GoogleCall<'a>),
    Anthropic,
    /// `/v1/messages/count_tokens`.
    AnthropicCount,
    Bedrock(bedrock::Call<'a>),
    /// Ollama's `/api/chat` and `/api/generate`.
    Ollama(ollama::Api),
    /// Ollama's `/api/embed`.
    OllamaEmbed,
    /// Hugging Face's feature extraction: the router's pipeline, TEI's `/embed`.
    HuggingFace(huggingface::Door<'a>),
    /// Cloudflare Workers AI's `/client/v4/accounts/{account}/ai/run/{model}`.
    Cloudflare(&'a str),
    /// Predibase's TGI routes and Triton's (`textgen`).
    TextGen(textgen::Call<'a>),
    /// watsonx.ai's chat and IBM Cloud IAM's token endpoint.
    Watsonx(watsonx::Call<'a>),
    IbmToken,
    /// SageMaker's runtime `invocations` (and its response stream).
    SageMaker(sagemaker::Call<'a>),
    /// Replicate's predictions: created, polled, streamed.
    Replicate(replicate::Call<'a>),
    /// Vertex AI's partner-model doors (`vertex_partner`).
    VertexPartner(vertex_partner::Call<'a>),
    /// Cohere's v2 `/v2/chat`, `/v2/embed`, `/v2/rerank`.
    CohereChat,
    CohereEmbed,
    CohereRerank,
    /// `/rerank`, `/v1/rerank`: an OpenAI-compatible rerank server (vLLM's shape).
    Rerank,
    /// Voyage AI's `/v1/embeddings` and `/v1/rerank`, under `/voyage`.
    VoyageEmbed,
    VoyageRerank,
    /// OpenAI's `/v1/images/generations`, `/v1/moderations`, `/v1/audio/speech` (`media`).
    Images,
    /// OpenAI's image uploads: `/v1/images/edits` and `/v1/images/variations` (`media`).
    ImageUpload(crate::media::ImageUpload),
    Moderations,
    Speech,
    Transcriptions,
    /// Deepgram's `/v1/listen`, Google's `/v1/text:synthesize`, ElevenLabs' text to speech.
    Voice(voice::Call<'a>),
    /// `POST /v1/responses` (OpenAI's, and Azure's `/openai/…` paths).
    Responses,
    /// `GET` or `DELETE /v1/responses/{id}`.
    ResponseItem(&'a str),
    Token,
    Stats,
    Last,
    Reset,
    Health,
    NotFound,
}

impl Endpoint<'_> {
    fn route(self) -> Option<Route> {
        Some(match self {
            Endpoint::Chat(_) => Route::Chat,
            Endpoint::Completions(_) => Route::Completions,
            Endpoint::Embeddings(_) | Endpoint::HuggingFace(_) => Route::Embeddings,
            Endpoint::Models => Route::Models,
            Endpoint::Google(c) if c.door == google::Door::Vertex => Route::Vertex,
            Endpoint::VertexPartner(_) => Route::Vertex,
            Endpoint::Google(_) => Route::Gemini,
            Endpoint::Anthropic | Endpoint::AnthropicCount => Route::Anthropic,
            Endpoint::Bedrock(_) => Route::Bedrock,
            Endpoint::Ollama(_) | Endpoint::OllamaEmbed => Route::Ollama,
            Endpoint::Cloudflare(_) => Route::Cloudflare,
            Endpoint::TextGen(_) => Route::TextGen,
            Endpoint::Watsonx(_) | Endpoint::IbmToken => Route::Watsonx,
            Endpoint::SageMaker(_) => Route::SageMaker,
            Endpoint::Replicate(_) => Route::Replicate,
            Endpoint::CohereChat | Endpoint::CohereEmbed | Endpoint::CohereRerank => Route::Cohere,
            Endpoint::Rerank => Route::Rerank,
            Endpoint::VoyageEmbed | Endpoint::VoyageRerank => Route::Voyage,
            Endpoint::Images | Endpoint::ImageUpload(_) => Route::Images,
            Endpoint::Moderations => Route::Moderations,
            Endpoint::Speech | Endpoint::Transcriptions | Endpoint::Voice(_) => Route::Audio,
            Endpoint::Responses | Endpoint::ResponseItem(_) => Route::Responses,
            Endpoint::Token => Route::Token,
            Endpoint::NotFound => Route::NotFound,
            Endpoint::Stats | Endpoint::Last | Endpoint::Reset | Endpoint::Health => return None,
        })
    }

    fn method(self) -> Method {
        match self {
            Endpoint::Models | Endpoint::Stats | Endpoint::Last | Endpoint::Health => Method::GET,
            Endpoint::Replicate(c) if c.is_get() => Method::GET,
            _ => Method::POST,
        }
    }
}

fn classify(path: &str) -> Endpoint<'_> {
    match path {
        "/chat/completions" | "/v1/chat/completions" => Endpoint::Chat(None),
        // Mistral's fill-in-the-middle completions answer in chat's shape, streams included.
        "/fim/completions" | "/v1/fim/completions" => Endpoint::Chat(None),
        // DataRobot's LLM gateway, at the path LiteLLM writes (a trailing slash).
        "/api/v2/genai/llmgw/chat/completions/" => Endpoint::Chat(None),
        "/completions" | "/v1/completions" => Endpoint::Completions(None),
        "/embeddings" | "/v1/embeddings" => Endpoint::Embeddings(None),
        "/models" | "/v1/models" => Endpoint::Models,
        "/v1/messages" => Endpoint::Anthropic,
        "/responses" | "/v1/responses" | "/openai/responses" | "/openai/v1/responses" => Endpoint::Responses,
        "/v1/messages/count_tokens" => Endpoint::AnthropicCount,
        "/token" => Endpoint::Token,
        "/identity/token" => Endpoint::IbmToken,
        "/api/chat" => Endpoint::Ollama(ollama::Api::Chat),
        "/api/generate" => Endpoint::Ollama(ollama::Api::Generate),
        "/api/embed" => Endpoint::OllamaEmbed,
        "/v2/chat" => Endpoint::CohereChat,
        "/v2/embed" => Endpoint::CohereEmbed,
        "/v2/rerank" => Endpoint::CohereRerank,
        "/rerank" | "/v1/rerank" => Endpoint::Rerank,
        "/voyage/v1/embeddings" => Endpoint::VoyageEmbed,
        "/voyage/v1/rerank" => Endpoint::VoyageRerank,
        "/images/generations" | "/v1/images/generations" => Endpoint::Images,
        "/images/edits" | "/v1/images/edits" => Endpoint::ImageUpload(crate::media::ImageUpload::Edit),
        "/images/variations" | "/v1/images/variations" => Endpoint::ImageUpload(crate::media::ImageUpload::Variation),
        "/moderations" | "/v1/moderations" => Endpoint::Moderations,
        "/audio/speech" | "/v1/audio/speech" => Endpoint::Speech,
        "/audio/transcriptions" | "/v1/audio/transcriptions" => Endpoint::Transcriptions,
        "/audio/translations" | "/v1/audio/translations" => Endpoint::Transcriptions,
        "/mock/stats" => Endpoint::Stats,
        "/mock/last" => Endpoint::Last,
        "/mock/reset" => Endpoint::Reset,
        "/health" | "/mock/health" => Endpoint::Health,
        _ if response_item(path).is_some() => Endpoint::ResponseItem(response_item(path).unwrap_or_default()),
        _ => {
            // Azure (`/openai/deployments/{m}/…`) and the legacy engines paths name the model
            // in the path.
            let deployment = ["/openai/deployments/", "/engines/", "/v1/engines/"]
                .iter()
                .find_map(|p| path.strip_prefix(p))
                .and_then(|rest| rest.split_once('/'));
            if let Some((model, tail)) = deployment {
                let model = Some(model).filter(|m| !m.is_empty());
                return match tail {
                    "chat/completions" => Endpoint::Chat(model),
                    "completions" => Endpoint::Completions(model),
                    "embeddings" => Endpoint::Embeddings(model),
                    "images/generations" => Endpoint::Images,
                    "images/edits" => Endpoint::ImageUpload(crate::media::ImageUpload::Edit),
                    "images/variations" => Endpoint::ImageUpload(crate::media::ImageUpload::Variation),
                    "moderations" => Endpoint::Moderations,
                    "audio/speech" => Endpoint::Speech,
                    "audio/transcriptions" | "audio/translations" => Endpoint::Transcriptions,
                    _ => Endpoint::NotFound,
                };
            }
            if let Some(call) = vertex_partner::parse_path(path) {
                return Endpoint::VertexPartner(call);
            }
            // RAGFlow's chat assistants and agents: `/api/v1/{chats,agents}_openai/{id}/chat/completions`.
            let ragflow = ["/api/v1/chats_openai/", "/api/v1/agents_openai/"].iter().find_map(|p| path.strip_prefix(p));
            if let Some((id, "chat/completions")) = ragflow.and_then(|rest| rest.split_once('/')) {
                if !id.is_empty() {
                    return Endpoint::Chat(None);
                }
            }
            if let Some(call) = voice::parse_path(path) {
                return Endpoint::Voice(call);
            }
            if let Some(call) = bedrock::parse_path(path) {
                return Endpoint::Bedrock(call);
            }
            if let Some(model) = cloudflare::parse_path(path) {
                return Endpoint::Cloudflare(model);
            }
            if let Some(door) = huggingface::parse_path(path) {
                return Endpoint::HuggingFace(door);
            }
            if let Some(call) = textgen::parse_path(path) {
                return Endpoint::TextGen(call);
            }
            if let Some(call) = watsonx::parse_path(path) {
                return Endpoint::Watsonx(call);
            }
            if let Some(call) = sagemaker::parse_path(path) {
                return Endpoint::SageMaker(call);
            }
            if let Some(call) = replicate::parse_path(path) {
                return Endpoint::Replicate(call);
            }
            match google::parse_path(path) {
                Some(call) => Endpoint::Google(call),
                None => Endpoint::NotFound,
            }
        }
    }
}

/// The id in `/v1/responses/{id}` (or Azure's `/openai/…` forms).
fn response_item(path: &str) -> Option<&str> {
    ["/v1/responses/", "/responses/", "/openai/responses/", "/openai/v1/responses/"]
        .iter()
        .find_map(|p| path.strip_prefix(p))
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Everything the handlers share. Only atomics change after start-up.
pub struct Mock {
    cfg: MockConfig,
    stats: Arc<Stats>,
    limiters: Vec<Limiter>,
    /// Counts LLM requests for `--fail-every`, like the seed fake's global counter.
    llm_requests: AtomicU64,
    tokens_issued: AtomicU64,
    /// IBM Cloud IAM tokens handed out (`wx-iam-<n>`).
    iam_issued: AtomicU64,
    /// The last request, when `--record` is on.
    last: crate::witness::Last,
    /// Files and batches (`files`), kept in memory.
    files: crate::files::Files,
}

impl Mock {
    pub fn new(cfg: MockConfig) -> Mock {
        Mock {
            limiters: cfg.rate_limits.iter().cloned().map(Limiter::new).collect(),
            cfg,
            stats: Arc::new(Stats::default()),
            llm_requests: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            iam_issued: AtomicU64::new(0),
            last: crate::witness::Last::default(),
            files: Default::default(),
        }
    }

    pub async fn handle<B>(self: Arc<Self>, req: Request<B>) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path().to_string();
        if let Some(call) = crate::files::classify(&path) {
            return self.files(call, parts, body).await;
        }
        let endpoint = classify(parts.uri.path());
        let guard = endpoint.route().map(|r| {
            self.stats.count(r);
            self.stats.begin()
        });
        let item_method = matches!(endpoint, Endpoint::ResponseItem(_))
            && (parts.method == Method::GET || parts.method == Method::DELETE);
        if endpoint != Endpoint::NotFound && parts.method != endpoint.method() && !item_method {
            return finish(guard, respond::method_not_allowed());
        }
        match endpoint {
            Endpoint::Stats => return respond::json(StatusCode::OK, self.stats.to_json()),
            Endpoint::Last => return respond::json(StatusCode::OK, self.last.to_json()),
            Endpoint::Health => return respond::json(StatusCode::OK, r#"{"status":"ok"}"#),
            Endpoint::Reset => {
                self.reset();
                return respond::json(StatusCode::OK, r#"{"reset":true}"#);
            }
            Endpoint::Models => {
                return finish(guard, respond::openai_headers(respond::json(StatusCode::OK, openai::models_body())))
            }
            Endpoint::NotFound => return finish(guard, respond::not_found()),
            Endpoint::ResponseItem(id) => {
                let body = match parts.method {
                    Method::DELETE => responses::deleted(id),
                    _ => responses::stored(id),
                };
                return finish(guard, respond::openai_headers(respond::json(StatusCode::OK, body)));
            }
            _ => {}
        }
        let Some(guard) = guard else {
            return respond::not_found();
        };
        // Read the whole body first even when the answer will be an error: an unread body
        // would cost the client its keep-alive connection.
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                let status = if e.is::<http_body_util::LengthLimitError>() {
                    StatusCode::PAYLOAD_TOO_LARGE
                } else {
                    StatusCode::BAD_REQUEST
                };
                return finish(Some(guard), respond::detail(status, "could not read the request body"));
            }
        };
        if self.cfg.record {
            self.last.record(&parts, &body);
        }
        if let Some(expected) = &self.cfg.provider_key {
            let own_check = matches!(
                endpoint,
                Endpoint::Token | Endpoint::IbmToken | Endpoint::Watsonx(_) | Endpoint::VertexPartner(_)
            ) || matches!(endpoint, Endpoint::Google(c) if c.door == google::Door::Vertex);
            if !own_check && !crate::witness::credential_matches(expected, &parts.headers, parts.uri.query()) {
                let body = crate::witness::refused_credential(&parts.headers);
                return finish(Some(guard), respond::json(StatusCode::UNAUTHORIZED, body));
            }
        }
        let path = parts.uri.path();
        for limiter in self.limiters.iter().filter(|l| l.matches(path)) {
            if !limiter.hit() {
                self.stats.rate_limited();
                return finish(Some(guard), respond::json(StatusCode::TOO_MANY_REQUESTS, limiter.body.clone()));
            }
        }
        match endpoint {
            Endpoint::Chat(m) => self.openai(Kind::Chat, m, &body, &parts.headers, guard).await,
            Endpoint::Completions(m) => self.openai(Kind::Completion, m, &body, &parts.headers, guard).await,
            Endpoint::Embeddings(_) => self.embeddings(&body, guard).await,
            Endpoint::HuggingFace(door) => self.huggingface(door, &parts.headers, &body, guard).await,
            Endpoint::Google(call) => self.google(call, &parts.headers, parts.uri.query(), &body, guard).await,
            Endpoint::Anthropic => self.anthropic(&parts.headers, &body, guard).await,
            Endpoint::VertexPartner(call) => self.vertex_partner(call, &parts.headers, &body, guard).await,
            Endpoint::AnthropicCount => self.count_tokens(&parts.headers, &body, guard),
            Endpoint::Bedrock(call) => self.bedrock(call, &parts.headers, &body, guard).await,
            Endpoint::Responses => self.responses(&body, guard).await,
            Endpoint::Ollama(api) => self.ollama(api, &body, guard).await,
            Endpoint::OllamaEmbed => self.ollama_embed(&body, guard).await,
            Endpoint::Cloudflare(model) => self.cloudflare(model, &parts.headers, &body, guard).await,
            Endpoint::TextGen(call) => self.textgen(call, &parts.headers, &body, guard).await,
            Endpoint::Watsonx(call) => self.watsonx(call, &parts.headers, parts.uri.query(), &body, guard).await,
            Endpoint::SageMaker(call) => self.sagemaker(call, &parts.headers, &body, guard).await,
            Endpoint::Replicate(call) => self.replicate(call, &parts.headers, &body, guard).await,
            Endpoint::IbmToken => {
                let n = self.iam_issued.load(Ordering::Relaxed) + 1;
                let resp = match watsonx::iam(&body, n) {
                    Ok(answer) => {
                        self.iam_issued.fetch_add(1, Ordering::Relaxed);
                        self.stats.token_issued();
                        respond::json(StatusCode::OK, answer)
                    }
                    Err(refusal) => respond::json(StatusCode::BAD_REQUEST, refusal),
                };
                finish(Some(guard), resp)
            }
            Endpoint::CohereChat => self.cohere_chat(&parts.headers, &body, guard).await,
            Endpoint::CohereEmbed => self.cohere_other(&parts.headers, cohere::embed_body(&body), guard).await,
            Endpoint::CohereRerank => self.cohere_other(&parts.headers, cohere::rerank_body(&body), guard).await,
            Endpoint::VoyageEmbed | Endpoint::VoyageRerank => {
                let answer = match endpoint {
                    Endpoint::VoyageEmbed => voyage::embed_body(&body),
                    _ => voyage::rerank_body(&body),
                };
                let resp = match (crate::cohere::authorised(&parts.headers), answer) {
                    (false, _) => respond::detail(StatusCode::UNAUTHORIZED, "Provided API key is invalid."),
                    (true, Ok(a)) => respond::json(StatusCode::OK, a),
                    (true, Err(e)) => respond::detail(StatusCode::BAD_REQUEST, &e),
                };
                finish(Some(guard), resp)
            }
            Endpoint::Rerank => {
                let resp = match cohere::compatible_rerank_body(&body) {
                    Ok(answer) => respond::json(StatusCode::OK, answer),
                    Err(e) => respond::detail(StatusCode::BAD_REQUEST, &e),
                };
                finish(Some(guard), resp)
            }
            Endpoint::Images | Endpoint::Moderations => {
                let answer = match endpoint {
                    Endpoint::Images => crate::media::images_body(&body),
                    _ => crate::media::moderations_body(&body),
                };
                let resp = match answer {
                    Ok(a) => respond::openai_headers(respond::json(StatusCode::OK, a)),
                    Err(e) => respond::openai_error(StatusCode::BAD_REQUEST, &e, "invalid_request_error", "400"),
                };
                finish(Some(guard), resp)
            }
            Endpoint::ImageUpload(kind) => {
                let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let resp = match crate::media::image_upload_body(content_type, &body, kind) {
                    Ok((model, answer)) => match Trigger::from_model(&model) {
                        Trigger::Error(code) => {
                            self.stats.injected_error();
                            let message = format!("mock error {code}");
                            respond::openai_error(status(code), &message, "mock_error", &code.to_string())
                        }
                        _ => respond::openai_headers(respond::json(StatusCode::OK, answer)),
                    },
                    Err(e) => respond::openai_error(StatusCode::BAD_REQUEST, &e, "invalid_request_error", "400"),
                };
                finish(Some(guard), resp)
            }
            Endpoint::Speech => match crate::media::speech_frames(&body) {
                Ok(frames) => respond::audio(frames, self.cfg.chunk_delay, guard),
                Err(e) => finish(
                    Some(guard),
                    respond::openai_error(StatusCode::BAD_REQUEST, &e, "invalid_request_error", "400"),
                ),
            },
            Endpoint::Transcriptions => {
                let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                let resp = match crate::media::transcription(content_type, &body) {
                    Ok(t) => {
                        let mut r = respond::json(StatusCode::OK, t.body);
                        r.headers_mut()
                            .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static(t.content_type));
                        respond::openai_headers(r)
                    }
                    Err(e) => respond::openai_error(StatusCode::BAD_REQUEST, &e, "invalid_request_error", "400"),
                };
                finish(Some(guard), resp)
            }
            Endpoint::Voice(call) => self.voice(call, &parts.headers, parts.uri.query(), &body, guard),
            Endpoint::Token => self.token(&body, guard),
            _ => finish(Some(guard), respond::not_found()),
        }
    }

    /// OpenAI's Files and Batches APIs (`files`); an upload cut off on the way is not kept.
    async fn files<B>(&self, call: crate::files::Call<'_>, parts: http::request::Parts, body: B) -> Resp
    where
        B: hyper::body::Body<Data = Bytes> + Send,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let route = match call {
            crate::files::Call::Batches | crate::files::Call::Batch(_) | crate::files::Call::Cancel(_) => {
                Route::Batches
            }
            _ => Route::Files,
        };
        self.stats.count(route);
        let body = Limited::new(body, MAX_BODY).collect().await.ok().map(|b| b.to_bytes());
        if body.is_none() {
            self.stats.upload_cut_off();
        }
        if let Some(expected) = &self.cfg.provider_key {
            if !crate::witness::credential_matches(expected, &parts.headers, parts.uri.query()) {
                return respond::json(StatusCode::UNAUTHORIZED, crate::witness::refused_credential(&parts.headers));
            }
        }
        let content_type = parts.headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        self.files.handle(call, &parts.method, content_type, body.as_ref())
    }

    fn reset(&self) {
        self.stats.reset();
        for l in &self.limiters {
            l.reset();
        }
        self.llm_requests.store(0, Ordering::Relaxed);
    }

    /// The delay from `--latency`, then the failure knobs; `Some` is the failure to send.
    async fn delay_and_fail(&self) -> Option<String> {
        if !self.cfg.latency.is_none() {
            tokio::time::sleep(self.cfg.latency.sample()).await;
        }
        if self.cfg.fail_every > 0 {
            let n = self.llm_requests.fetch_add(1, Ordering::Relaxed) + 1;
            if n % self.cfg.fail_every == 0 {
                self.stats.injected_error();
                return Some(format!("Simulated error for every {} request", ordinal(self.cfg.fail_every)));
            }
        }
        if self.cfg.fail_percent > 0.0 && rand::thread_rng().gen::<f64>() * 100.0 < self.cfg.fail_percent {
            self.stats.injected_error();
            return Some("Simulated random error".to_string());
        }
        None
    }

    fn gap(&self, trigger: Trigger) -> Duration {
        match trigger {
            Trigger::SlowStream(d) => d,
            _ => self.cfg.chunk_delay,
        }
    }

    async fn openai(
        &self,
        kind: Kind,
        path_model: Option<&str>,
        body: &[u8],
        headers: &http::HeaderMap,
        guard: RequestGuard,
    ) -> Resp {
        let req = match sniff(body) {
            Ok(r) => r,
            Err(e) => {
                return finish(
                    Some(guard),
                    respond::detail(StatusCode::BAD_REQUEST, &format!("Invalid JSON body: {e}")),
                )
            }
        };
        let model = req.model.as_deref().or(path_model);
        if let Some(message) = self.delay_and_fail().await {
            return finish(
                Some(guard),
                respond::openai_headers(respond::openai_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &message,
                    "internal_server_error",
                    "500",
                )),
            );
        }
        let trigger = model.map_or(Trigger::None, Trigger::from_model);
        if trigger.is_error(req.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => respond::detail(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            Trigger::Error(code) => {
                respond::openai_error(status(code), &format!("mock error {code}"), "mock_error", &code.to_string())
            }
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                respond::openai_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Rate limit reached for requests (mock: retry after {secs}s)"),
                    "requests",
                    "rate_limit_exceeded",
                ),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if req.stream {
                    let mut frames = openai::stream_frames(kind, model, req.include_usage, self.cfg.seed_compat);
                    if path_model.is_some() {
                        // Azure opens its streams with a content-filter chunk that has no choices.
                        frames.insert(0, respond::sse_frame(openai::AZURE_FILTER_CHUNK.as_bytes()));
                    }
                    let (frames, end) = match trigger {
                        Trigger::StreamEchoKey => (echo_key(frames, headers), StreamEnd::Eof),
                        _ => misbehave(frames, trigger),
                    };
                    return respond::openai_headers(respond::sse(frames, self.gap(trigger), end, guard));
                }
                match kind {
                    Kind::Chat => respond::json(StatusCode::OK, openai::chat_body(model)),
                    Kind::Completion => respond::json(StatusCode::OK, openai::completion_body(model)),
                }
            }
        };
        finish(Some(guard), respond::openai_headers(resp))
    }

    async fn embeddings(&self, body: &[u8], guard: RequestGuard) -> Resp {
        let answer = openai::embeddings_body(body);
        let resp = match answer {
            Err(e) => respond::detail(StatusCode::BAD_REQUEST, &format!("Invalid request: {e}")),
            Ok(answer) => match self.delay_and_fail().await {
                Some(message) => {
                    respond::openai_error(StatusCode::INTERNAL_SERVER_ERROR, &message, "internal_server_error", "500")
                }
                None => respond::json(StatusCode::OK, answer),
            },
        };
        finish(Some(guard), respond::openai_headers(resp))
    }

    async fn google(
        &self,
        call: GoogleCall<'_>,
        headers: &http::HeaderMap,
        query: Option<&str>,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        if let Some(refused) = self.google_refusal(call.door, headers, query) {
            return finish(Some(guard), refused);
        }
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            return finish(
                Some(guard),
                respond::google_error(StatusCode::BAD_REQUEST, &format!("Invalid JSON payload received. {e}")),
            );
        }
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), respond::google_error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
        if call.embed && call.door == google::Door::Vertex && crate::image_models::is_imagen(call.model) {
            let resp = match crate::image_models::imagen_body(body) {
                Ok(answer) => respond::json(StatusCode::OK, answer),
                Err(e) => respond::google_error(StatusCode::BAD_REQUEST, &e),
            };
            return finish(Some(guard), resp);
        }
        if call.embed {
            let resp = match google::embed_body(call.door, body) {
                Ok(answer) => respond::json(StatusCode::OK, answer),
                Err(e) => respond::google_error(StatusCode::BAD_REQUEST, &e),
            };
            return finish(Some(guard), resp);
        }
        let trigger = Trigger::from_model(call.model);
        if trigger.is_error(call.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => {
                respond::google_error(StatusCode::TOO_MANY_REQUESTS, "Resource exhausted. Please try again later.")
            }
            Trigger::Error(code) => respond::google_error(status(code), &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                respond::google_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Resource exhausted (mock: retry after {secs}s)."),
                ),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if let Some(name) = google::tool_call(body) {
                    let answer = google::tool_body(&name);
                    if call.stream {
                        let (frames, end) = misbehave(vec![respond::sse_frame(&answer)], trigger);
                        return respond::sse(frames, self.gap(trigger), end, guard);
                    }
                    return finish(Some(guard), respond::json(StatusCode::OK, answer));
                }
                if call.stream {
                    let (frames, end) = misbehave(google::stream_frames(), trigger);
                    return respond::sse(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, google::body())
            }
        };
        finish(Some(guard), resp)
    }

    /// The fake Messages API: Anthropic's headers, bodies, errors and event streams.
    /// Anthropic's token counting: the request checked as a Messages request, and about four
    /// bytes of it per token.
    fn count_tokens(&self, headers: &http::HeaderMap, body: &[u8], guard: RequestGuard) -> Resp {
        if let Err(message) = anthropic::check_headers(headers) {
            return finish(Some(guard), anthropic::error(StatusCode::UNAUTHORIZED, message));
        }
        if let Err(e) = anthropic::parse_for_count(body) {
            return finish(Some(guard), anthropic::error(StatusCode::BAD_REQUEST, &e));
        }
        let tokens = body.len().div_ceil(4);
        finish(Some(guard), respond::json(StatusCode::OK, format!("{{\"input_tokens\":{tokens}}}")))
    }

    async fn anthropic(&self, headers: &http::HeaderMap, body: &[u8], guard: RequestGuard) -> Resp {
        if let Err(message) = anthropic::check_headers(headers) {
            return finish(Some(guard), anthropic::error(StatusCode::UNAUTHORIZED, message));
        }
        let req = match anthropic::parse(body) {
            Ok(r) => r,
            Err(e) => return finish(Some(guard), anthropic::error(StatusCode::BAD_REQUEST, &e)),
        };
        self.anthropic_answer(req, guard).await
    }

    /// Vertex AI's partner doors: Google's bearer check (a token `/token` issued, with
    /// `--vertex-credentials`), then Claude's Messages API or OpenAI's chat.
    async fn vertex_partner(
        &self,
        call: vertex_partner::Call<'_>,
        headers: &http::HeaderMap,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        if let Some(refused) = self.google_refusal(google::Door::Vertex, headers, None) {
            return finish(Some(guard), refused);
        }
        match call {
            vertex_partner::Call::RawPredict { publisher: vertex_partner::Publisher::Anthropic, model, stream } => {
                let req = vertex_partner::check_claude_body(body, stream)
                    .and_then(|()| anthropic::parse_for_vertex(body, model));
                match req {
                    Ok(req) => self.anthropic_answer(req, guard).await,
                    Err(e) => finish(Some(guard), anthropic::error(StatusCode::BAD_REQUEST, &e)),
                }
            }
            // The body names the model too (without its `@version`): the triggers read it there.
            vertex_partner::Call::RawPredict { stream, .. } => {
                let checked = serde_json::from_slice::<serde_json::Value>(body)
                    .map_err(|e| format!("Invalid JSON payload received. {e}"))
                    .and_then(|v| vertex_partner::check_stream(&v, stream));
                match checked {
                    Ok(()) => self.openai(Kind::Chat, None, body, headers, guard).await,
                    Err(e) => finish(Some(guard), respond::google_error(StatusCode::BAD_REQUEST, &e)),
                }
            }
            vertex_partner::Call::OpenApi => self.openai(Kind::Chat, None, body, headers, guard).await,
        }
    }

    /// A Messages request's answer: the triggers its model names, a stream or a whole message.
    async fn anthropic_answer(&self, req: anthropic::Request, guard: RequestGuard) -> Resp {
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), anthropic::error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
        let trigger = Trigger::from_model(&req.model);
        let stream_error = req.model.rsplit('/').next() == Some(anthropic::STREAM_ERROR);
        if trigger.is_error(req.stream) || (stream_error && req.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => anthropic::error(
                StatusCode::TOO_MANY_REQUESTS,
                "Number of request tokens has exceeded your per-minute rate limit",
            ),
            Trigger::Error(code) => anthropic::error_for_code(status(code)),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                anthropic::error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("Number of requests has exceeded your rate limit (mock: retry after {secs}s)"),
                ),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if req.stream {
                    let (frames, end) = misbehave(anthropic::stream_frames(&req, stream_error), trigger);
                    return respond::sse(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, anthropic::body(&req))
            }
        };
        finish(Some(guard), resp)
    }

    /// The fake Bedrock Converse API: AWS's auth failure, error style and event streams.
    async fn bedrock(
        &self,
        call: bedrock::Call<'_>,
        headers: &http::HeaderMap,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        if !bedrock::authorised(headers) {
            return finish(Some(guard), bedrock::missing_auth());
        }
        if call.invoke {
            return self.bedrock_invoke(call, body, guard).await;
        }
        let req = match bedrock::parse(call, body) {
            Ok(r) => r,
            Err(e) => return finish(Some(guard), bedrock::error(StatusCode::BAD_REQUEST, "ValidationException", &e)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(
                Some(guard),
                bedrock::error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", &message),
            );
        }
        let trigger = Trigger::from_model(&req.model);
        if trigger.is_error(req.stream) || req.stream_error() {
            self.stats.injected_error();
        }
        if let Trigger::Sleep(d) = trigger {
            tokio::time::sleep(d).await;
        }
        bedrock::answer(&req, trigger, self.gap(trigger), guard)
    }

    /// The fake Bedrock InvokeModel, for embedding and image models, with the same knobs as
    /// Converse (whose authentication it has passed).
    async fn bedrock_invoke(&self, call: bedrock::Call<'_>, body: &[u8], guard: RequestGuard) -> Resp {
        if let Some(message) = self.delay_and_fail().await {
            return finish(
                Some(guard),
                bedrock::error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerException", &message),
            );
        }
        let model = bedrock::model_of(call);
        let trigger = Trigger::from_model(&model);
        if trigger.is_error(false) {
            self.stats.injected_error();
        }
        if let Trigger::Sleep(d) = trigger {
            tokio::time::sleep(d).await;
        }
        finish(Some(guard), bedrock::invoke_answer(&model, body, trigger))
    }

    /// OpenAI's Responses API, with the same failure knobs and model-name triggers as chat.
    async fn responses(&self, body: &[u8], guard: RequestGuard) -> Resp {
        let req = match responses::parse(body) {
            Ok(r) => r,
            Err(e) => return finish(Some(guard), respond::detail(StatusCode::BAD_REQUEST, &e)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(
                Some(guard),
                respond::openai_headers(respond::openai_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &message,
                    "internal_server_error",
                    "500",
                )),
            );
        }
        let trigger = Trigger::from_model(&req.model);
        if trigger.is_error(req.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => respond::detail(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            Trigger::Error(code) => {
                respond::openai_error(status(code), &format!("mock error {code}"), "mock_error", &code.to_string())
            }
            Trigger::Garbage => respond::garbage(),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if req.stream {
                    let (frames, end) = misbehave(responses::stream_frames(&req), trigger);
                    return respond::openai_headers(respond::sse(frames, self.gap(trigger), end, guard));
                }
                respond::json(StatusCode::OK, responses::body(&req))
            }
        };
        finish(Some(guard), respond::openai_headers(resp))
    }

    /// Ollama's chat and generate: its error shape, NDJSON streams, and the model-name triggers
    /// (a stream trigger fails with an `error` line, as Ollama reports a failure mid-stream).
    async fn ollama(&self, api: ollama::Api, body: &[u8], guard: RequestGuard) -> Resp {
        let req = match ollama::parse(api, body) {
            Ok(r) => r,
            Err(e) => return finish(Some(guard), respond::ollama_error(StatusCode::BAD_REQUEST, &e)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), respond::ollama_error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
        if req.model.rsplit('/').next() == Some(ollama::MISSING) {
            let message = format!("model \"{}\" not found, try pulling it first", req.model);
            return finish(Some(guard), respond::ollama_error(StatusCode::NOT_FOUND, &message));
        }
        let trigger = Trigger::from_model(&req.model);
        if trigger.is_error(req.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => respond::ollama_error(StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
            Trigger::Error(code) => respond::ollama_error(status(code), &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                respond::ollama_error(StatusCode::TOO_MANY_REQUESTS, &format!("mock: retry after {secs}s")),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if req.stream {
                    let mut frames = ollama::stream_lines(&req);
                    let end = match trigger {
                        Trigger::StreamGarbage => {
                            frames.truncate(1);
                            frames.push(ollama::error_line("mock: the model runner crashed"));
                            StreamEnd::Eof
                        }
                        Trigger::StreamReset => {
                            frames.truncate(2);
                            StreamEnd::Reset
                        }
                        _ => StreamEnd::Eof,
                    };
                    return respond::ndjson(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, ollama::body(&req))
            }
        };
        finish(Some(guard), resp)
    }

    async fn ollama_embed(&self, body: &[u8], guard: RequestGuard) -> Resp {
        let resp = match ollama::embed_body(body) {
            Err(e) => respond::ollama_error(StatusCode::BAD_REQUEST, &e),
            Ok((model, answer)) => match self.delay_and_fail().await {
                Some(message) => respond::ollama_error(StatusCode::INTERNAL_SERVER_ERROR, &message),
                None if model.rsplit('/').next() == Some(ollama::MISSING) => respond::ollama_error(
                    StatusCode::NOT_FOUND,
                    &format!("model \"{model}\" not found, try pulling it first"),
                ),
                None => match Trigger::from_model(&model) {
                    Trigger::Error(code) => respond::ollama_error(status(code), &format!("mock error {code}")),
                    _ => respond::json(StatusCode::OK, answer),
                },
            },
        };
        finish(Some(guard), resp)
    }

    /// Hugging Face's feature extraction: a bearer token on the router (not on TEI), the
    /// vectors or the error in each one's shape, and the model-name triggers on the router.
    async fn huggingface(
        &self,
        door: huggingface::Door<'_>,
        headers: &http::HeaderMap,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        let error = |status: StatusCode, message: &str| respond::json(status, huggingface::error_body(door, message));
        if matches!(door, huggingface::Door::Router(_)) && !cohere::authorised(headers) {
            return finish(Some(guard), error(StatusCode::UNAUTHORIZED, "Invalid credentials in Authorization header"));
        }
        let invalid = match door {
            huggingface::Door::Tei => StatusCode::UNPROCESSABLE_ENTITY,
            huggingface::Door::Router(_) => StatusCode::BAD_REQUEST,
        };
        let resp = match huggingface::body(body) {
            Err(e) => error(invalid, &e),
            Ok(answer) => match door {
                huggingface::Door::Router(model) => match Trigger::from_model(model) {
                    Trigger::TooManyRequests => error(StatusCode::TOO_MANY_REQUESTS, "Rate limit reached"),
                    Trigger::Error(code) => error(status(code), &format!("mock error {code}")),
                    _ => respond::json(StatusCode::OK, answer),
                },
                huggingface::Door::Tei => respond::json(StatusCode::OK, answer),
            },
        };
        finish(Some(guard), resp)
    }

    /// Workers AI's run route: the bearer check, Cloudflare's error envelope, SSE pieces of text,
    /// and the model-name triggers (the model is the path's).
    async fn cloudflare(&self, model: &str, headers: &http::HeaderMap, body: &[u8], guard: RequestGuard) -> Resp {
        let error =
            |status: StatusCode, code: u32, message: &str| respond::json(status, cloudflare::error_body(code, message));
        if !cohere::authorised(headers) {
            return finish(Some(guard), error(StatusCode::UNAUTHORIZED, 10000, "Authentication error"));
        }
        if cloudflare::is_embedding_model(model) {
            let resp = match cloudflare::embed_body(body) {
                Ok(answer) => match Trigger::from_model(model) {
                    Trigger::Error(code) => error(status(code), 3043, &format!("mock error {code}")),
                    _ => respond::json(StatusCode::OK, answer),
                },
                Err(e) => error(StatusCode::BAD_REQUEST, 5006, &e),
            };
            return finish(Some(guard), resp);
        }
        let req = match cloudflare::parse(body) {
            Ok(r) => r,
            Err(e) => return finish(Some(guard), error(StatusCode::BAD_REQUEST, 5006, &e)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), error(StatusCode::INTERNAL_SERVER_ERROR, 3043, &message));
        }
        let trigger = Trigger::from_model(model);
        if trigger.is_error(req.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => error(StatusCode::TOO_MANY_REQUESTS, 3040, "Capacity temporarily exceeded"),
            Trigger::Error(code) => error(status(code), 3043, &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                error(StatusCode::TOO_MANY_REQUESTS, 3040, &format!("mock: retry after {secs}s")),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if req.stream {
                    let (frames, end) = misbehave(cloudflare::stream_frames(&req), trigger);
                    return respond::sse(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, cloudflare::body(&req))
            }
        };
        finish(Some(guard), resp)
    }

    /// Predibase's TGI (bearer token required) and Triton: each one's validation and error
    /// shape, SSE streams, and the model-name triggers (the model is the path's).
    async fn textgen(
        &self,
        call: textgen::Call<'_>,
        headers: &http::HeaderMap,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        let tgi = matches!(call, textgen::Call::Tgi(..));
        let error = |status: StatusCode, message: &str| {
            respond::json(status, if tgi { textgen::tgi_error(message) } else { textgen::triton_error(message) })
        };
        if tgi && !cohere::authorised(headers) {
            return finish(Some(guard), error(StatusCode::UNAUTHORIZED, "Unauthorized: no API token"));
        }
        if let Err(e) = textgen::check(call, body) {
            return finish(Some(guard), error(StatusCode::UNPROCESSABLE_ENTITY, &e));
        }
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
        let stream = matches!(call, textgen::Call::Tgi(_, true) | textgen::Call::TritonGenerate(_, true));
        let trigger = Trigger::from_model(call.model());
        if trigger.is_error(stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => error(StatusCode::TOO_MANY_REQUESTS, "Model is overloaded"),
            Trigger::Error(code) => error(status(code), &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                error(StatusCode::TOO_MANY_REQUESTS, &format!("mock: retry after {secs}s")),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if stream {
                    let (frames, end) = misbehave(textgen::stream_frames(call), trigger);
                    return respond::sse(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, textgen::body(call))
            }
        };
        finish(Some(guard), resp)
    }

    /// watsonx.ai's chat: a token this IAM issued, the `version` query, the project or space,
    /// watsonx's error list, SSE chunks, and the model-name triggers.
    async fn watsonx(
        &self,
        call: watsonx::Call<'_>,
        headers: &http::HeaderMap,
        query: Option<&str>,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        let error = |status: u16, code: &str, message: &str| {
            respond::json(self::status(status), watsonx::error_body(status, code, message))
        };
        let auth = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !watsonx::authorised(auth, self.iam_issued.load(Ordering::Relaxed)) {
            let message = "Failed to authenticate the request due to invalid token";
            return finish(Some(guard), error(401, "authentication_token_not_valid", message));
        }
        if call.embed {
            let resp = match watsonx::parse_embed(call, query, body) {
                Ok((model, inputs)) => match Trigger::from_model(&model) {
                    Trigger::TooManyRequests => error(429, "token_quota_reached", "You have reached your token quota"),
                    _ => respond::json(StatusCode::OK, watsonx::embed_body(&model, &inputs)),
                },
                Err((status, code, message)) => error(status, code, &message),
            };
            return finish(Some(guard), resp);
        }
        let req = match watsonx::parse(call, query, body) {
            Ok(r) => r,
            Err((status, code, message)) => return finish(Some(guard), error(status, code, &message)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), error(500, "internal_error", &message));
        }
        let trigger = Trigger::from_model(&req.model);
        if trigger.is_error(call.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => error(429, "token_quota_reached", "You have reached your token quota"),
            Trigger::Error(code) => error(code, "mock_error", &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => {
                respond::with_retry_after(error(429, "rate_limit", &format!("mock: retry after {secs}s")), secs)
            }
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if call.stream {
                    let (frames, end) = misbehave(watsonx::stream_frames(&req), trigger);
                    return respond::sse(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, watsonx::body(&req))
            }
        };
        finish(Some(guard), resp)
    }

    /// SageMaker's runtime: a SigV4 signature, the container the body speaks to, event-stream
    /// responses, and the model-name triggers (the endpoint's name).
    async fn sagemaker(
        &self,
        call: sagemaker::Call<'_>,
        headers: &http::HeaderMap,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        if !bedrock::authorised(headers) {
            let resp = sagemaker::error(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            );
            return finish(Some(guard), resp);
        }
        let container = match sagemaker::container(body) {
            Ok(sagemaker::Container::Embedding(_)) if call.stream => {
                let e = "an embedding container does not stream";
                return finish(Some(guard), sagemaker::error(StatusCode::BAD_REQUEST, "ValidationError", e));
            }
            Ok(c) => c,
            Err(e) => return finish(Some(guard), sagemaker::error(StatusCode::BAD_REQUEST, "ModelError", &e)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(
                Some(guard),
                sagemaker::error(StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure", &message),
            );
        }
        let trigger = Trigger::from_model(call.endpoint);
        if trigger.is_error(call.stream) || (call.stream && call.endpoint == sagemaker::STREAM_ERROR) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => {
                sagemaker::error(StatusCode::TOO_MANY_REQUESTS, "ThrottlingException", "Rate exceeded")
            }
            Trigger::Error(code) => sagemaker::error(status(code), "ModelError", &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if call.stream {
                    let (frames, end) = bedrock::misbehave(sagemaker::stream_frames(container, call.endpoint), trigger);
                    return bedrock::stream(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, sagemaker::body(container))
            }
        };
        finish(Some(guard), resp)
    }

    /// Replicate: its token check (not on stream URLs, which need none), error shape, predictions
    /// that are processing and then finish, SSE streams, and the model-name triggers on creation.
    async fn replicate(
        &self,
        call: replicate::Call<'_>,
        headers: &http::HeaderMap,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        let error = |status: StatusCode, title: &str, detail: &str| {
            respond::json(status, replicate::error_body(status.as_u16(), title, detail))
        };
        let auth = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !matches!(call, replicate::Call::Stream(_)) && !replicate::authorised(auth) {
            let resp =
                error(StatusCode::UNAUTHORIZED, "Unauthenticated", "You did not pass a valid authentication token");
            return finish(Some(guard), resp);
        }
        let not_found = || error(StatusCode::NOT_FOUND, "Not found", "The requested resource could not be found.");
        let resp = match call {
            replicate::Call::Create(model) => {
                if let Some(message) = self.delay_and_fail().await {
                    return finish(Some(guard), error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", &message));
                }
                let trigger = Trigger::from_model(model.unwrap_or_default());
                if trigger.is_error(false) {
                    self.stats.injected_error();
                }
                match trigger {
                    Trigger::TooManyRequests => {
                        error(StatusCode::TOO_MANY_REQUESTS, "Request was throttled", "Request was throttled.")
                    }
                    Trigger::Error(code) => error(status(code), "Mock error", &format!("mock error {code}")),
                    Trigger::Garbage => respond::garbage(),
                    _ => {
                        let host = headers.get(http::header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
                        match replicate::create(model, host, body) {
                            Ok(prediction) => respond::json(StatusCode::CREATED, prediction),
                            Err(e) => error(StatusCode::UNPROCESSABLE_ENTITY, "Input validation failed", &e),
                        }
                    }
                }
            }
            replicate::Call::Get(id) => match replicate::get(id) {
                Some(prediction) => respond::json(StatusCode::OK, prediction),
                None => not_found(),
            },
            replicate::Call::Stream(id) => match replicate::stream_frames(id) {
                Some(frames) => return respond::sse(frames, self.cfg.chunk_delay, StreamEnd::Eof, guard),
                None => not_found(),
            },
        };
        finish(Some(guard), resp)
    }

    /// Cohere's v2 chat: its bearer check, error shape, typed SSE events, and the triggers.
    async fn cohere_chat(&self, headers: &http::HeaderMap, body: &[u8], guard: RequestGuard) -> Resp {
        let error = |status: StatusCode, message: &str| respond::json(status, cohere::error_body(message));
        if !cohere::authorised(headers) {
            return finish(Some(guard), error(StatusCode::UNAUTHORIZED, "no api key supplied"));
        }
        let req = match cohere::parse_chat(body) {
            Ok(r) => r,
            Err(e) => return finish(Some(guard), error(StatusCode::BAD_REQUEST, &e)),
        };
        if let Some(message) = self.delay_and_fail().await {
            return finish(Some(guard), error(StatusCode::INTERNAL_SERVER_ERROR, &message));
        }
        let trigger = Trigger::from_model(&req.model);
        if trigger.is_error(req.stream) {
            self.stats.injected_error();
        }
        let resp = match trigger {
            Trigger::TooManyRequests => {
                error(StatusCode::TOO_MANY_REQUESTS, "You are using a Trial key, which is limited")
            }
            Trigger::Error(code) => error(status(code), &format!("mock error {code}")),
            Trigger::Garbage => respond::garbage(),
            Trigger::RetryAfter(secs) => respond::with_retry_after(
                error(StatusCode::TOO_MANY_REQUESTS, &format!("mock: retry after {secs}s")),
                secs,
            ),
            _ => {
                if let Trigger::Sleep(d) = trigger {
                    tokio::time::sleep(d).await;
                }
                if req.stream {
                    let (frames, end) = misbehave(cohere::stream_frames(&req), trigger);
                    return respond::sse(frames, self.gap(trigger), end, guard);
                }
                respond::json(StatusCode::OK, cohere::chat_body(&req))
            }
        };
        finish(Some(guard), resp)
    }

    /// Cohere's embed and rerank: the bearer check, then the answer or its 400.
    async fn cohere_other(
        &self,
        headers: &http::HeaderMap,
        answer: Result<Bytes, String>,
        guard: RequestGuard,
    ) -> Resp {
        let error = |status: StatusCode, message: &str| respond::json(status, cohere::error_body(message));
        let resp = if !cohere::authorised(headers) {
            error(StatusCode::UNAUTHORIZED, "no api key supplied")
        } else {
            match answer {
                Err(e) => error(StatusCode::BAD_REQUEST, &e),
                Ok(answer) => match self.delay_and_fail().await {
                    Some(message) => error(StatusCode::INTERNAL_SERVER_ERROR, &message),
                    None => respond::json(StatusCode::OK, answer),
                },
            }
        };
        finish(Some(guard), resp)
    }

    /// Deepgram's listen, Google's text-to-speech and ElevenLabs' (`voice`), each refusing a call
    /// without its credential as the real API does.
    fn voice(
        &self,
        call: voice::Call<'_>,
        headers: &http::HeaderMap,
        query: Option<&str>,
        body: &[u8],
        guard: RequestGuard,
    ) -> Resp {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let resp = match call {
            voice::Call::Listen if !voice::deepgram_authorised(header("authorization")) => {
                respond::json(StatusCode::UNAUTHORIZED, voice::deepgram_error("INVALID_AUTH", "Invalid credentials."))
            }
            voice::Call::Listen => match voice::listen(query, body) {
                Ok(answer) => respond::json(StatusCode::OK, answer),
                Err(e) => respond::json(StatusCode::BAD_REQUEST, e),
            },
            voice::Call::Synthesize => {
                let bearer = header("authorization").is_some_and(|a| a.starts_with("Bearer "));
                if !bearer || (self.cfg.vertex_key.is_some() && !self.issued_bearer(headers)) {
                    respond::google_error(
                        StatusCode::UNAUTHORIZED,
                        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                    )
                } else {
                    match voice::synthesize(body) {
                        Ok(answer) => respond::json(StatusCode::OK, answer),
                        Err(e) => respond::google_error(StatusCode::BAD_REQUEST, &e),
                    }
                }
            }
            voice::Call::ElevenLabs { .. } if !voice::elevenlabs_authorised(header("xi-api-key")) => {
                respond::json(StatusCode::UNAUTHORIZED, voice::elevenlabs_error("invalid_api_key", "Invalid API key"))
            }
            voice::Call::ElevenLabs { .. } => match voice::elevenlabs(body) {
                Ok(frames) => return respond::audio(frames, self.cfg.chunk_delay, guard),
                Err(e) => respond::json(StatusCode::BAD_REQUEST, e),
            },
        };
        finish(Some(guard), resp)
    }

    /// Google's 401 for a call without the door's credential, or (Vertex, with
    /// `--vertex-credentials`) with a bearer token `/token` did not hand out.
    fn google_refusal(&self, door: google::Door, headers: &http::HeaderMap, query: Option<&str>) -> Option<Resp> {
        if !google::authorised(door, headers, query) {
            return Some(respond::google_error(StatusCode::UNAUTHORIZED, google::unauthenticated_message(door)));
        }
        if door == google::Door::Vertex && self.cfg.vertex_key.is_some() && !self.issued_bearer(headers) {
            return Some(respond::google_error(
                StatusCode::UNAUTHORIZED,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            ));
        }
        None
    }

    /// With `--vertex-credentials`, a Vertex bearer token must be one `/token` handed out.
    fn issued_bearer(&self, headers: &http::HeaderMap) -> bool {
        let bearer = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.get(7..));
        bearer.is_some_and(|t| token::issued(t.trim(), self.tokens_issued.load(Ordering::Relaxed)))
    }

    fn token(&self, body: &[u8], guard: RequestGuard) -> Resp {
        let resp = match token::check_request(body, self.cfg.vertex_key.as_deref()) {
            Ok(_) => {
                let n = self.tokens_issued.fetch_add(1, Ordering::Relaxed) + 1;
                self.stats.token_issued();
                respond::json(StatusCode::OK, token::token_body(n))
            }
            Err(e) => respond::json(StatusCode::BAD_REQUEST, e.to_json()),
        };
        finish(Some(guard), resp)
    }
}

/// Cuts a stream short the way a stream trigger asks.
fn misbehave(mut frames: Vec<Bytes>, trigger: Trigger) -> (Vec<Bytes>, StreamEnd) {
    match trigger {
        Trigger::StreamGarbage => {
            frames.truncate(1);
            frames.push(Bytes::from_static(b"data: {not json\n\n"));
            (frames, StreamEnd::Eof)
        }
        Trigger::StreamReset => {
            frames.truncate(2);
            (frames, StreamEnd::Reset)
        }
        _ => (frames, StreamEnd::Eof),
    }
}

/// The first frame, then OpenAI's error chunk for a bad key, which quotes the key it was sent.
fn echo_key(mut frames: Vec<Bytes>, headers: &http::HeaderMap) -> Vec<Bytes> {
    let sent = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let key = sent.strip_prefix("Bearer ").unwrap_or(sent);
    let error = serde_json::json!({"error": {
        "message": format!("Incorrect API key provided: {key}. You can find your API key in your account settings."),
        "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
    frames.truncate(1);
    frames.push(respond::sse_frame(error.to_string().as_bytes()));
    frames
}

fn finish(guard: Option<RequestGuard>, resp: Resp) -> Resp {
    if let Some(mut g) = guard {
        g.finish();
    }
    resp
}

fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// 1st, 2nd, 3rd, 4th … 11th, 12th, 13th … 21st, as the seed fake's "every 200th request".
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(classify("/v1/chat/completions"), Endpoint::Chat(None));
        assert_eq!(classify("/v1/fim/completions"), Endpoint::Chat(None));
        assert_eq!(classify("/api/v2/genai/llmgw/chat/completions/"), Endpoint::Chat(None));
        assert_eq!(classify("/api/v1/agents_openai/a1/chat/completions"), Endpoint::Chat(None));
        assert_eq!(classify("/api/v1/chats_openai//chat/completions"), Endpoint::NotFound);
        assert_eq!(classify("/openai/deployments/gpt-4o/chat/completions"), Endpoint::Chat(Some("gpt-4o")));
        assert_eq!(classify("/engines/davinci/completions"), Endpoint::Completions(Some("davinci")));
        assert_eq!(classify("/v1/models"), Endpoint::Models);
        assert_eq!(classify("/v1/messages"), Endpoint::Anthropic);
        assert_eq!(classify("/v1/messages/count_tokens"), Endpoint::AnthropicCount);
        assert_eq!(classify("/mock/last"), Endpoint::Last);
        assert!(matches!(classify("/model/m%3A0/converse-stream"), Endpoint::Bedrock(c) if c.stream));
        assert_eq!(classify("/nope"), Endpoint::NotFound);
        assert_eq!(classify("/api/chat"), Endpoint::Ollama(ollama::Api::Chat));
        assert_eq!(classify("/api/generate"), Endpoint::Ollama(ollama::Api::Generate));
        assert_eq!(classify("/api/embed"), Endpoint::OllamaEmbed);
        assert_eq!(classify("/v2/chat"), Endpoint::CohereChat);
        assert_eq!(classify("/v2/rerank"), Endpoint::CohereRerank);
        assert_eq!(classify("/v1/rerank"), Endpoint::Rerank);
        assert_eq!(classify("/v1/responses"), Endpoint::Responses);
        assert_eq!(classify("/openai/responses"), Endpoint::Responses);
        assert_eq!(classify("/v1/responses/resp_1"), Endpoint::ResponseItem("resp_1"));
        assert_eq!(classify("/v1/responses/resp_1/input_items"), Endpoint::NotFound);
        assert!(matches!(classify("/v1beta/models/g:generateContent"), Endpoint::Google(_)));
        assert_eq!(classify("/client/v4/accounts/a/ai/run/@cf/meta/llama-3"), Endpoint::Cloudflare("@cf/meta/llama-3"));
        assert_eq!(classify("/v2/models/m/infer"), Endpoint::TextGen(textgen::Call::TritonInfer("m")));
        assert_eq!(classify("/v2/chat"), Endpoint::CohereChat);
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal(200), "200th");
        assert_eq!(ordinal(1), "1st");
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(ordinal(113), "113th");
    }
}
