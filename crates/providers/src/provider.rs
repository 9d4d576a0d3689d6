//! The one face every provider shows the server: [`ChatProvider`].
//!
//! A provider is built once per deployment from its `litellm_params` and the environment
//! ([`Params`], by `catalogue::build`), and then, per request, describes the upstream request
//! ([`UpstreamRequest`]: method POST, URL, headers, body), turns the answer's bytes into OpenAI's
//! shape, translates its stream and maps its errors to LiteLLM's classes. Sending stays with the
//! server's HTTP layer: nothing here does I/O, so every provider is testable on bytes alone.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Uri};
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::catalogue::ModelRef;
use crate::stream::StreamTranslator;

/// What a deployment's `litellm_params` say about reaching its provider. Secrets are borrowed
/// from the config and copied only into the headers that carry them.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    /// Position in `model_list`, for messages that name the setting to fix.
    pub index: usize,
    /// `model_info.id` and `model_name`, for messages.
    pub id: &'a str,
    pub model_name: &'a str,
    pub model: &'a ModelRef,
    pub api_base: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub api_version: Option<&'a str>,
    pub organization: Option<&'a str>,
    pub azure_ad_token: Option<&'a str>,
    pub vertex_project: Option<&'a str>,
    pub vertex_location: Option<&'a str>,
    /// Predibase's tenant (`tenant_id`, `predibase_tenant_id`).
    pub tenant_id: Option<&'a str>,
    /// watsonx.ai's project or deployment space.
    pub project_id: Option<&'a str>,
    pub space_id: Option<&'a str>,
    /// A path to a service-account JSON file, or the JSON itself.
    pub vertex_credentials: Option<&'a str>,
    pub aws_region_name: Option<&'a str>,
    pub aws_access_key_id: Option<&'a str>,
    pub aws_secret_access_key: Option<&'a str>,
    pub aws_session_token: Option<&'a str>,
    /// LiteLLM's assume-role and profile settings (`aws_role_name`, `aws_session_name`,
    /// `aws_profile_name`, `aws_web_identity_token`, `aws_sts_endpoint`).
    pub aws_role_name: Option<&'a str>,
    pub aws_session_name: Option<&'a str>,
    pub aws_profile_name: Option<&'a str>,
    pub aws_web_identity_token: Option<&'a str>,
    pub aws_sts_endpoint: Option<&'a str>,
    /// Per-deployment `drop_params`, already defaulted from `litellm_settings`.
    pub drop_params: bool,
    pub timeout: Duration,
    pub stream_timeout: Duration,
}

impl Params<'_> {
    /// `model_list[i].litellm_params`: where error messages point.
    pub fn path(&self) -> String {
        format!("model_list[{}].litellm_params", self.index)
    }

    /// A header carrying a secret: marked sensitive so it never reaches `Debug` output.
    pub fn secret_header(&self, name: HeaderName, value: &str) -> Result<(HeaderName, HeaderValue), String> {
        let mut v = HeaderValue::from_str(value)
            .map_err(|_| format!("{}.api_key: contains characters not allowed in a header", self.path()))?;
        v.set_sensitive(true);
        Ok((name, v))
    }

    pub fn uri(&self, url: String) -> Result<Uri, String> {
        url.parse::<Uri>()
            .map_err(|e| format!("{}.api_base: builds the URL {url:?}, which is not valid ({e})", self.path()))
    }
}

/// Params with only the model set, for unit tests to fill in what they need.
#[cfg(test)]
pub(crate) fn test_params(model: &ModelRef) -> Params<'_> {
    Params {
        index: 0,
        id: "d",
        model_name: "g",
        model,
        api_base: None,
        api_key: None,
        api_version: None,
        organization: None,
        azure_ad_token: None,
        vertex_project: None,
        vertex_location: None,
        tenant_id: None,
        project_id: None,
        space_id: None,
        vertex_credentials: None,
        aws_region_name: None,
        aws_access_key_id: None,
        aws_secret_access_key: None,
        aws_session_token: None,
        aws_role_name: None,
        aws_session_name: None,
        aws_profile_name: None,
        aws_web_identity_token: None,
        aws_sts_endpoint: None,
        drop_params: false,
        timeout: Duration::from_secs(5),
        stream_timeout: Duration::from_secs(5),
    }
}

/// How a provider reads the environment (the process's, or a fixed one in tests).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// An access token fetched on first use and cached (Vertex's service-account OAuth). The server
/// implements it, since fetching is I/O; providers only say when a request needs one.
pub trait TokenSource: Send + Sync {
    /// An `Authorization` value, or a message saying what to fix.
    fn token(&self) -> Pin<Box<dyn Future<Output = Result<HeaderValue, String>> + Send + '_>>;
}

/// Makes (or shares) the token source for a credential: deployments naming the same key share
/// one cache and one refresh.
pub type TokenSources<'a> = &'a mut dyn FnMut(&str) -> Arc<dyn TokenSource>;

/// One call as the server hands it to a provider.
pub struct ChatCall<'a> {
    pub endpoint: Endpoint,
    /// The client's OpenAI-format request body.
    pub body: &'a Bytes,
    /// Where the body's `model` value lies, when the sniffer found it.
    pub model_span: Option<Range<usize>>,
    pub stream: bool,
    /// Seconds since the epoch, for signatures.
    pub now: u64,
}

/// What the server sends: a POST, but for the polls and stream fetches of a call made in
/// several exchanges ([`NextExchange`]).
pub struct UpstreamRequest {
    pub method: http::Method,
    pub url: Uri,
    /// A header map, not a list: the server sends it as it is, and inserting names known at
    /// compile time into the map costs less than copying a list into one per request.
    pub headers: http::HeaderMap,
    /// Pieces sent one after another: a splice keeps the client's bytes where only `model`
    /// changes.
    pub body: [Bytes; 3],
    /// A token to fetch and send as `Authorization` before the request goes out.
    pub token: Option<Arc<dyn TokenSource>>,
    /// AWS credentials to sign the request with before it goes out ([`UpstreamRequest::sign_aws`]).
    pub aws: Option<AwsSigning>,
    pub timeout: Duration,
}

/// A request still to be signed with SigV4: the credentials are fetched (or taken from their
/// cache) when the request is about to go out, which a provider building bytes cannot wait for.
#[derive(Clone, Debug)]
pub struct AwsSigning {
    pub credentials: Arc<sluice_credentials::aws::AwsCredentials>,
    pub region: String,
    /// `bedrock`, `sagemaker`, …
    pub service: &'static str,
}

impl UpstreamRequest {
    /// Signs the request (its exact URL and body) when it asks for SigV4; a message saying which
    /// credential source failed and what to set when there are no credentials.
    pub async fn sign_aws(&mut self, now: u64) -> Result<(), String> {
        let Some(aws) = self.aws.take() else { return Ok(()) };
        let creds = aws.credentials.get().await?;
        let [a, b, c] = &self.body;
        let signed = sluice_sigv4::sign_pieces(
            aws.service,
            sluice_sigv4::PathRule::EncodeTwice,
            self.method.as_str(),
            &self.url.to_string(),
            &[],
            &[a, b, c],
            &aws.region,
            &creds,
            now,
        )?;
        for (name, value) in signed {
            let mut v = HeaderValue::from_str(&value)
                .map_err(|_| "the AWS credentials hold characters an HTTP header cannot carry".to_string())?;
            v.set_sensitive(name == "authorization" || name == "x-amz-security-token");
            self.headers.insert(HeaderName::from_static(name), v);
        }
        Ok(())
    }
}

/// What a translated answer is stamped with.
pub struct AnswerMeta<'a> {
    /// The model name the client asked for.
    pub model: &'a str,
    /// `chatcmpl-…`, from the call id.
    pub id: &'a str,
    pub created: u64,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The route the client called (chat, embeddings or rerank).
    pub endpoint: Endpoint,
    /// The client's request body, for what the answer depends on (an embedding's
    /// `encoding_format`, whether tools were offered).
    pub request: &'a [u8],
}

/// What follows an answer, for a provider that answers a call in several exchanges (Replicate:
/// create a prediction, then poll it or fetch its stream).
pub struct NextExchange {
    pub request: UpstreamRequest,
    /// How long to wait before sending it (a poll's interval).
    pub after: Duration,
    /// Its answer is the stream to relay.
    pub streams: bool,
    /// The answer just read is one of those [`ChatProvider::parse_answers`] joins; otherwise
    /// it is dropped (a poll's answer is superseded by the next).
    pub keep_answer: bool,
}

/// The method, URL and timing; never a header's value (keys ride in them).
impl std::fmt::Debug for NextExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextExchange")
            .field("method", &self.request.method)
            .field("url", &self.request.url)
            .field("after", &self.after)
            .field("streams", &self.streams)
            .field("keep_answer", &self.keep_answer)
            .finish()
    }
}

/// The upstream's headers, as far as error mapping reads them.
pub trait Headers {
    fn get(&self, name: &str) -> Option<&str>;
}

/// Everything the server asks of a provider.
pub trait ChatProvider {
    /// Whether the provider serves this route; the others answer 400 without an upstream call.
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Chat
    }

    /// The upstream request for one call; a 400 the client can act on when the request cannot
    /// be expressed in the provider's format.
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError>;

    /// A successful answer body as OpenAI's `chat.completion`; a 500 naming the provider when it
    /// is not what the provider promises.
    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError>;

    /// The translator for a streamed answer: the provider's bytes in, OpenAI chunks out.
    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator;

    /// A non-2xx answer as LiteLLM's error: status, `litellm.<Class>: <Provider>Exception - …`.
    fn map_error(&self, status: u16, headers: &dyn Headers, body: &[u8]) -> ApiError;

    /// Whether a call on `endpoint` takes several exchanges: every answer but the last is read
    /// whole (a stream's too) and handed to [`next_exchange`](Self::next_exchange).
    fn in_exchanges(&self, _endpoint: Endpoint) -> bool {
        false
    }

    /// After a successful answer read whole, the next exchange; `None` when that answer is the
    /// last one (then the answers are parsed: [`parse_answers`](Self::parse_answers)). `request`
    /// is the client's body; `made` counts the exchanges made so far (1 after the first). An
    /// error ends the call with it.
    fn next_exchange(
        &self,
        _answer: &[u8],
        _request: &[u8],
        _stream: bool,
        _made: u32,
    ) -> Result<Option<NextExchange>, ApiError> {
        Ok(None)
    }

    /// Whether a chat's plain texts reach the upstream copied from the body as sent (Gemini's
    /// plain-text path, the OpenAI-format bodies forwarded with `model` spliced): keeping them
    /// out of the translation ([`crate::bulk`]) would then only add work.
    fn copies_texts_as_sent(&self) -> bool {
        false
    }

    /// Whether a `/audio/speech` answer carries its audio inside JSON (Google's base64
    /// `audioContent`): it is then read whole and handed to [`speech_audio`](Self::speech_audio).
    /// Otherwise the answer's body is the audio, relayed to the client as it comes.
    fn speech_in_json(&self) -> bool {
        false
    }

    /// The audio of a speech answer read whole, with its content type; `request` is the client's
    /// body (the format it asked for).
    fn speech_audio(&self, answer: &[u8], _request: &[u8]) -> Result<(Bytes, &'static str), ApiError> {
        Err(ApiError::new(500, format!("speech answer of {} bytes has no reader", answer.len())))
    }

    /// The answers of a call made in several exchanges, each read whole, in order, as one OpenAI
    /// answer: by default the last one's ([`parse_answer`](Self::parse_answer)); a provider that
    /// splits one call into several requests (Bedrock's Titan: one text per call) joins them.
    fn parse_answers(&self, answers: &[Bytes], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        self.parse_answer(answers.last().map_or(&[][..], |b| b.as_ref()), meta)
    }
}

/// `(prompt_tokens, completion_tokens)` of an OpenAI-shaped answer.
pub fn usage(answer: &Value) -> Option<(u64, u64)> {
    answer
        .get("usage")
        .map(|u| (u["prompt_tokens"].as_u64().unwrap_or(0), u["completion_tokens"].as_u64().unwrap_or(0)))
}

/// The body as JSON, or the 400 LiteLLM answers when it is not.
pub(crate) fn parse_request(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}")))
}

/// A built request's body: the tree as compact JSON, its long strings (the prompt) copied in
/// runs rather than a byte at a time ([`sluice_wire::compact`]).
pub(crate) fn json_body(body: &Value) -> Bytes {
    Bytes::from(sluice_wire::compact::to_vec(body))
}

/// A translation refused: a 400 naming the parameter when there is one.
pub(crate) fn bad_param(param: Option<String>, message: String) -> ApiError {
    let api = ApiError::bad_request(message);
    match param {
        Some(p) => api.param(p),
        None => api,
    }
}

/// What a query value escapes: everything but RFC 3986's unreserved characters.
pub(crate) const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The JSON content type every translated request carries.
pub(crate) fn json_content_type() -> (HeaderName, HeaderValue) {
    (http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"))
}

/// Where a translated call goes and what it always carries. `Debug` shows the URLs and header
/// names, never a value (keys ride in the headers).
pub(crate) struct Address {
    pub provider: crate::catalogue::Provider,
    pub url: Uri,
    pub stream_url: Uri,
    /// Content type, key and version headers (secrets marked sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub timeout: Duration,
    pub stream_timeout: Duration,
}

impl Address {
    pub fn new(p: &Params<'_>, url: String, stream_url: String) -> Result<Self, String> {
        Ok(Address {
            provider: p.model.provider,
            url: p.uri(url)?,
            stream_url: p.uri(stream_url)?,
            headers: vec![json_content_type()],
            timeout: p.timeout,
            stream_timeout: p.stream_timeout,
        })
    }

    /// The request for `body`, to the streaming URL when `stream`.
    pub fn request(&self, stream: bool, body: Bytes) -> UpstreamRequest {
        UpstreamRequest {
            method: http::Method::POST,
            url: if stream { self.stream_url.clone() } else { self.url.clone() },
            headers: self.headers.iter().cloned().collect(),
            body: [body, Bytes::new(), Bytes::new()],
            token: None,
            aws: None,
            timeout: if stream { self.stream_timeout } else { self.timeout },
        }
    }

    /// An answer body as JSON, or LiteLLM's 500 for one that is not.
    pub fn answer_json(&self, body: &[u8]) -> Result<Value, ApiError> {
        serde_json::from_slice(body)
            .map_err(|_| crate::errors::malformed(&self.provider, "upstream returned a body that is not JSON", body))
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Address")
            .field("provider", &self.provider.name)
            .field("url", &self.url)
            .field("stream_url", &self.stream_url)
            .field("headers", &self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
            .finish()
    }
}
