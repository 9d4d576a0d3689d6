//! `/v1/responses`: OpenAI's Responses API. The request runs the one pipeline (`proxy_body`)
//! as [`Endpoint::Responses`], so it is authenticated, limited, routed, billed (`aresponses`),
//! logged and metered like chat. Each attempt then goes one of two ways:
//!
//! - an OpenAI or Azure deployment gets the client's bytes with `model` spliced, and its answer
//!   (or event stream, [`super::responses_relay`]) comes back with `model` re-stamped and the
//!   response id wrapped to name the deployment (`wire::responses::id`, LiteLLM's format), so
//!   that `GET`/`DELETE /v1/responses/{id}` and `previous_response_id` find it again upstream;
//! - every other deployment is sent chat ([`UpstreamCall::responses_via_chat`]): the request is
//!   translated once, on the first such attempt, the chat answer becomes a Response or OpenAI's
//!   event sequence, and the Response is kept in the database (`sluice_responses`, owned by the
//!   caller's key) for `GET`, `DELETE` and `previous_response_id`.

use super::attempt::{CallError, UpstreamCall};
use crate::app::{App, Target, TargetKind};
use crate::errors;
use crate::exchange::{Reply, ReplyBody};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use serde_json::Value;
use sluice_router::{Attempt, Failed, Failure};
use sluice_store::ResponseRecord;
use sluice_wire::responses::{self as wire_responses, id, EventStream, Turn};
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::{sse, ApiError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Responses written to the database a moment ago and possibly not there yet: a client that
/// continues a conversation right after its answer arrived finds it here on this replica.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, ResponseRecord>>);

/// The most responses waiting for their write; past it (the database stalling) a response is
/// still written, only not also held here.
const MAX_PENDING: usize = 1024;

impl Pending {
    fn get(&self, id: &str) -> Option<ResponseRecord> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }
}

/// Who owns the responses a caller makes: its key's token hash; the master key and an open
/// proxy have one owner each.
fn owner(identity: &sluice_access::Identity) -> String {
    match identity {
        sluice_access::Identity::Key(k) => k.record.token.clone(),
        sluice_access::Identity::Master => "master".into(),
        sluice_access::Identity::Open => "open".into(),
    }
}

/// What a Responses request carries into its attempts.
pub(crate) struct Prepared {
    owner: String,
    /// The chat messages of the conversation a translated `previous_response_id` continues.
    history: Vec<Value>,
    /// `store: false` asks that nothing be kept.
    keep: bool,
    /// The deployment a native `previous_response_id` names: it holds the conversation.
    pinned: Option<String>,
    /// The request continues a conversation kept here: even an OpenAI deployment gets it as
    /// chat, with the conversation (its upstream would not know the id).
    continues_kept: bool,
    /// The chat translation, made by the first attempt that needs it.
    translation: OnceLock<Result<Translation, ApiError>>,
}

struct Translation {
    /// The chat request.
    body: Bytes,
    /// The client's request, echoed in the Response.
    request: Value,
    /// This turn's input as chat messages (for the kept conversation).
    input_messages: Vec<Value>,
}

/// Before routing: unwraps a `previous_response_id` minted for an OpenAI or Azure deployment
/// (the upstream gets its own id back), or loads the conversation of one kept here. Requests
/// without one (nearly all) cost a substring search.
pub(crate) async fn prepare(
    app: &App,
    identity: &sluice_access::Identity,
    body: Bytes,
) -> Result<(Bytes, Prepared), ApiError> {
    let mut prepared = Prepared {
        owner: owner(identity),
        history: Vec::new(),
        keep: true,
        pinned: None,
        continues_kept: false,
        translation: OnceLock::new(),
    };
    let mentions = |needle: &[u8]| memchr::memmem::find(&body, needle).is_some();
    if mentions(b"\"store\"") {
        let view: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        prepared.keep = view.get("store").and_then(Value::as_bool) != Some(false);
    }
    if !mentions(b"previous_response_id") {
        return Ok((body, prepared));
    }
    let previous = match sniff::request(&body, Endpoint::Responses)?.previous_response_id {
        Some(p) => p.into_owned(),
        None => return Ok((body, prepared)),
    };
    if let Some(native) = id::decode(&previous) {
        // The upstream keeps that conversation; it gets its own id back.
        let mut tree: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}.")))?;
        tree["previous_response_id"] = Value::String(native.response_id);
        prepared.pinned = Some(native.model_id);
        return Ok((Bytes::from(tree.to_string()), prepared));
    }
    let record = find(app, &previous, &prepared.owner).await?.ok_or_else(|| {
        ApiError::new(404, format!("Previous response with id '{previous}' not found."))
            .kind("invalid_request_error")
            .param("previous_response_id")
    })?;
    prepared.history = serde_json::from_str(&record.conversation).unwrap_or_default();
    prepared.continues_kept = true;
    Ok((body, prepared))
}

/// The kept response `id` if `owner` made it (another key's is as good as absent).
async fn find(app: &App, id: &str, owner: &str) -> Result<Option<ResponseRecord>, ApiError> {
    let record = match app.responses.get(id) {
        Some(r) => Some(r),
        None => match app.access.store() {
            Some(store) => store.get_response(id).await.map_err(|e| {
                tracing::warn!("could not read stored response: {e}");
                ApiError::new(503, "The database holding stored responses is unavailable; retry shortly.")
            })?,
            None => {
                return Err(ApiError::new(
                    503,
                    "Stored responses live in the database, which is not connected; retry shortly.",
                ))
            }
        },
    };
    Ok(record.filter(|r| r.owner == owner))
}

impl Prepared {
    fn translation(&self, body: &Bytes) -> Result<&Translation, ApiError> {
        let made = self.translation.get_or_init(|| {
            let request: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}.")))?;
            let chat = wire_responses::to_chat(&request, &self.history)?;
            Ok(Translation { body: Bytes::from(chat.body.to_string()), request, input_messages: chat.input_messages })
        });
        made.as_ref().map_err(Clone::clone)
    }
}

/// The deployment that must serve this attempt instead of `chosen`: the one a native
/// `previous_response_id` names, when it is another member of the same model group (an id never
/// reaches a deployment the request's model does not route to).
pub(crate) fn pinned(
    app: &App,
    prepared: Option<&Prepared>,
    chosen: &sluice_router::Deployment<Target>,
) -> Option<Arc<sluice_router::Deployment<Target>>> {
    let id = prepared?.pinned.as_deref().filter(|id| *id != chosen.id)?;
    let router = app.router.load();
    let group = router.group(&chosen.model_name)?;
    group.deployments.iter().find(|d| d.id == id && native(&d.target)).cloned()
}

/// Whether this Responses call goes to `target` as chat: it speaks only chat, or the
/// conversation the call continues is kept here.
pub(crate) fn through_chat(prepared: Option<&Prepared>, target: &Target) -> bool {
    !native(target) || prepared.is_some_and(|p| p.continues_kept)
}

/// Whether a deployment answers `/v1/responses` itself.
pub(crate) fn native(target: &Target) -> bool {
    matches!(&target.kind, TargetKind::OpenAi(t) if t.responses_native)
}

fn fail(failure: Failure, api: ApiError) -> Failed<CallError> {
    Failed { failure, error: CallError { api, upstream_headers: None } }
}

impl UpstreamCall<'_> {
    /// One attempt on a deployment that speaks only chat: the translated request goes through
    /// the chat path (its provider, relay, billing), and its answer comes back as a Response.
    pub(super) async fn responses_via_chat(
        &mut self,
        attempt: &Attempt<Target>,
        depth: u32,
    ) -> Result<Reply, Failed<CallError>> {
        let Some(prepared) = self.responses else {
            return Err(fail(Failure::status(500, None), ApiError::new(500, "a Responses call lost its request")));
        };
        let t = prepared.translation(self.body).map_err(|e| fail(Failure::status(e.status, None), e))?;
        let view = sniff::request(&t.body, Endpoint::Chat).map_err(|e| fail(Failure::status(e.status, None), e))?;
        let mut chat = UpstreamCall {
            app: self.app,
            endpoint: Endpoint::Chat,
            body: &t.body,
            view: &view,
            client_model: self.client_model,
            routed_model: self.routed_model,
            label_model: self.label_model,
            concrete: None,
            client_model_json: self.client_model_json.clone(),
            native_anthropic: None,
            facts: self.facts,
            outcome: &mut *self.outcome,
            clock: Default::default(),
            sent_secrets: Default::default(),
            controls: self.controls,
            timeout: self.timeout,
            // A fallback's own `{model, messages}` body is chat's; a Responses call has none.
            alternates: &[],
            responses: None,
        };
        let result = Box::pin(chat.attempt(attempt, depth)).await;
        chat.settle_clock();
        let reply = result?;
        let id = format!("resp_{}", uuid::Uuid::new_v4().simple());
        let turn = Turn::new(&t.request, id, self.client_model, super::translate::now_unix());
        let keep = prepared.keep.then(|| Keep::new(self.app, prepared, t, self.client_model)).flatten();
        let Reply { status, headers, lines, body, .. } = reply;
        if self.view.stream {
            let mut reply = Reply::stream(status, headers, events_body(body, EventStream::new(turn), keep));
            reply.lines = lines;
            return Ok(reply);
        }
        let ReplyBody::Whole(parts) = body else {
            return Err(fail(Failure::status(500, None), ApiError::new(500, "the chat answer came as a stream")));
        };
        let whole: Vec<u8> = parts.concat();
        let chat: Value = serde_json::from_slice(&whole).map_err(|_| {
            fail(Failure::status(500, None), ApiError::new(500, "the upstream's chat answer is not JSON"))
        })?;
        let response = turn.answer(&chat);
        if let Some(k) = keep {
            k.keep(&response);
        }
        let mut reply =
            Reply::whole(status, "application/json", [Bytes::from(response.to_string()), Bytes::new(), Bytes::new()]);
        reply.lines = lines;
        Ok(reply)
    }
}

/// Writes a finished Response to the database, owned by its caller, with the conversation it
/// ends (for a later `previous_response_id`).
struct Keep {
    store: sluice_store::Store,
    pending: Arc<Pending>,
    owner: String,
    model: String,
    /// The conversation before this turn's answer, as chat messages.
    conversation: Vec<Value>,
}

impl Keep {
    fn new(app: &App, prepared: &Prepared, t: &Translation, model: &str) -> Option<Keep> {
        let store = app.access.store()?.clone();
        let mut conversation = prepared.history.clone();
        conversation.extend(t.input_messages.iter().cloned());
        Some(Keep {
            store,
            pending: app.responses.clone(),
            owner: prepared.owner.clone(),
            model: model.into(),
            conversation,
        })
    }

    fn keep(mut self, response: &Value) {
        let Some(id) = response["id"].as_str() else { return };
        self.conversation.extend(wire_responses::output_messages(response));
        let record = ResponseRecord {
            response_id: id.to_string(),
            owner: self.owner,
            model: self.model,
            created_at: chrono::Utc::now().timestamp_millis(),
            conversation: Value::Array(self.conversation).to_string(),
            response: response.to_string(),
        };
        if record.conversation.len() + record.response.len() > sluice_store::MAX_RESPONSE_BYTES {
            tracing::warn!(response_id = id, "a response and its conversation are over the stored size; not kept");
            return;
        }
        {
            let mut pending = self.pending.0.lock().unwrap_or_else(|e| e.into_inner());
            if pending.len() < MAX_PENDING {
                pending.insert(record.response_id.clone(), record.clone());
            }
        }
        let (store, pending) = (self.store, self.pending);
        tokio::spawn(async move {
            if let Err(e) = store.insert_response(&record).await {
                tracing::warn!(response_id = %record.response_id, "could not store a response: {e}");
            }
            pending.0.lock().unwrap_or_else(|e| e.into_inner()).remove(&record.response_id);
        });
    }
}

/// A chat stream (or a whole SSE body) as the Responses event sequence; the finished Response
/// is kept at its end.
fn events_body(body: ReplyBody, events: EventStream, keep: Option<Keep>) -> axum::body::Body {
    let data: futures_util::stream::BoxStream<'static, Result<Bytes, axum::Error>> = match body {
        ReplyBody::Whole(parts) => futures_util::stream::iter(parts.into_iter().map(Ok)).boxed(),
        ReplyBody::Stream(b) => b.into_data_stream().boxed(),
    };
    let state = Events { data, parser: sse::Parser::new(), events, keep, ended: false, closed: false };
    let frames = futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.closed {
                return None;
            }
            let mut out = Vec::new();
            match st.data.next().await {
                Some(Ok(bytes)) => {
                    st.parser.push(&bytes);
                    st.drain(&mut out);
                }
                Some(Err(_)) | None => {
                    st.closed = true;
                    st.drain(&mut out);
                    if let Some(ev) = st.parser.finish() {
                        st.event(ev, &mut out);
                    }
                    st.end(&mut out);
                }
            }
            if !out.is_empty() {
                return Some((Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from(out))), st));
            }
        }
    });
    axum::body::Body::new(http_body_util::StreamBody::new(frames))
}

struct Events {
    data: futures_util::stream::BoxStream<'static, Result<Bytes, axum::Error>>,
    parser: sse::Parser,
    events: EventStream,
    keep: Option<Keep>,
    /// The Response is finished (or failed): nothing more is translated.
    ended: bool,
    closed: bool,
}

impl Events {
    fn drain(&mut self, out: &mut Vec<u8>) {
        while let Ok(Some(ev)) = self.parser.next_event() {
            self.event(ev, out);
        }
    }

    fn event(&mut self, ev: sse::Event, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        if ev.is_done() {
            self.end(out);
            return;
        }
        let Ok(chunk) = serde_json::from_slice::<Value>(&ev.data) else { return };
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            // The relay's error frame: the SDK raises it as an APIError.
            let mut frame = BytesMut::with_capacity(ev.data.len() + 8);
            frame.put_slice(b"data: ");
            frame.put_slice(&ev.data);
            frame.put_slice(b"\n\n");
            out.extend_from_slice(&frame);
            self.ended = true;
            return;
        }
        self.events.on_chunk(&chunk, out);
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let response = self.events.finish(out);
        if let Some(k) = self.keep.take() {
            k.keep(&response);
        }
    }
}

/// A native answer's `id` wrapped to name its deployment and `model` re-stamped (when `model`
/// is given), in one copy of the body.
pub(crate) fn restamp(json: &[u8], spans: &wire_responses::Spans, wrap: &IdWrap<'_>, model: Option<&[u8]>) -> Bytes {
    let mut edits: Vec<(std::ops::Range<usize>, Vec<u8>)> = Vec::with_capacity(2);
    if let Some(span) = &spans.id {
        if let Some(wrapped) = wrapped_id(json, span, wrap) {
            let mut quoted = Vec::with_capacity(wrapped.len() + 2);
            quoted.push(b'"');
            quoted.extend_from_slice(wrapped.as_bytes());
            quoted.push(b'"');
            edits.push((span.clone(), quoted));
        }
    }
    if let (Some(span), Some(m)) = (&spans.model, model) {
        edits.push((span.clone(), m.to_vec()));
    }
    edits.sort_by_key(|(s, _)| s.start);
    let mut out = Vec::with_capacity(json.len() + 160);
    let mut at = 0;
    for (span, value) in edits {
        if span.start < at || span.end > json.len() {
            continue;
        }
        out.extend_from_slice(&json[at..span.start]);
        out.extend_from_slice(&value);
        at = span.end;
    }
    out.extend_from_slice(&json[at..]);
    Bytes::from(out)
}

/// Names the deployment a native response id is wrapped with.
/// The id a client sees for the upstream id at `span` of `json`: wrapped to name the deployment.
pub(crate) fn wrapped_id(json: &[u8], span: &std::ops::Range<usize>, wrap: &IdWrap<'_>) -> Option<String> {
    let raw = json.get(span.clone()).and_then(|s| std::str::from_utf8(s).ok()).unwrap_or("");
    // Upstream ids are plain ASCII; one with escapes is decoded first.
    let upstream = match raw.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(plain) if !plain.contains('\\') => std::borrow::Cow::Borrowed(plain),
        _ => std::borrow::Cow::Owned(serde_json::from_str::<String>(raw).ok()?),
    };
    Some(id::encode(wrap.provider, wrap.deployment, &upstream))
}

pub(crate) struct IdWrap<'a> {
    pub provider: &'a str,
    pub deployment: &'a str,
}

/// `GET /v1/responses/{id}`.
pub async fn get(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    item(&app, &id, &headers, http::Method::GET)
        .await
        .unwrap_or_else(|e| errors::reply(&e, errors::Flavour::OpenAi))
        .into()
}

/// `DELETE /v1/responses/{id}`.
pub async fn delete(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    item(&app, &id, &headers, http::Method::DELETE)
        .await
        .unwrap_or_else(|e| errors::reply(&e, errors::Flavour::OpenAi))
        .into()
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(404, format!("Response with id '{id}' not found.")).kind("invalid_request_error")
}

async fn item(app: &App, id: &str, headers: &http::HeaderMap, method: http::Method) -> Result<Reply, ApiError> {
    let identity = app.access.identify(headers).await?;
    app.access.check_standing(&identity)?;
    if let Some(native) = id::decode(id) {
        return upstream_item(app, &identity, id, &native, method).await;
    }
    let owner = owner(&identity);
    let Some(record) = find(app, id, &owner).await? else { return Err(not_found(id)) };
    if method == http::Method::DELETE {
        let store =
            app.access.store().ok_or_else(|| ApiError::new(503, "The database is not connected; retry shortly."))?;
        app.responses.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
        store.delete_response(id, &owner).await.map_err(|e| {
            tracing::warn!("could not delete a stored response: {e}");
            ApiError::new(503, "The database holding stored responses is unavailable; retry shortly.")
        })?;
        let body = serde_json::json!({"id": id, "object": "response", "deleted": true}).to_string();
        return Ok(Reply::whole(
            http::StatusCode::OK,
            "application/json",
            [Bytes::from(body), Bytes::new(), Bytes::new()],
        ));
    }
    Ok(Reply::whole(
        http::StatusCode::OK,
        "application/json",
        [Bytes::from(record.response), Bytes::new(), Bytes::new()],
    ))
}

/// A response an OpenAI or Azure deployment keeps: asked of that deployment, its id wrapped
/// again in the answer. A key that may not use the deployment's model is told it does not exist.
async fn upstream_item(
    app: &App,
    identity: &sluice_access::Identity,
    id: &str,
    native: &id::Decoded,
    method: http::Method,
) -> Result<Reply, ApiError> {
    let deployment = {
        let router = app.router.load();
        let found = router.deployments().find(|d| d.id == native.model_id).cloned();
        found.ok_or_else(|| not_found(id))?
    };
    if !app.access.admit_model(identity, &deployment.model_name) {
        return Err(not_found(id));
    }
    let TargetKind::OpenAi(t) = &deployment.target.kind else { return Err(not_found(id)) };
    let (uri, headers) = t.stored_response(&native.response_id).ok_or_else(|| not_found(id))?;
    let mut req = http::Request::new(super::body::ChainBody::new([Bytes::new(), Bytes::new(), Bytes::new()]));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    let sent_secrets = crate::redact::SentSecrets::of(req.headers());
    let provider = &deployment.target.provider;
    let answer = tokio::time::timeout(t.timeout, app.client.fetch(req))
        .await
        .map_err(|_| super::upstream::timeout_error(provider, t.timeout))?
        .map_err(|e| super::upstream::transport_error(provider, &e))?;
    let deadline = std::time::Instant::now() + t.timeout;
    let body = super::read_upstream(answer.body, deadline, 64 * 1024 * 1024)
        .await
        .map_err(|_| super::upstream::timeout_error(provider, t.timeout))?;
    let status = answer.head.status;
    if !status.is_success() {
        let (api, _) = super::upstream::status_error(provider, status.as_u16(), &sent_secrets.redact(body));
        return Err(api);
    }
    let text = sluice_wire::text::utf8(&body).unwrap_or("");
    let out = match wire_responses::spans(text) {
        Some(spans) => {
            let wrap = IdWrap { provider: &native.provider, deployment: &native.model_id };
            restamp(&body, &spans, &wrap, None)
        }
        None => body,
    };
    let status = http::StatusCode::from_u16(status.as_u16()).unwrap_or(http::StatusCode::OK);
    Ok(Reply::whole(status, "application/json", [out, Bytes::new(), Bytes::new()]))
}
