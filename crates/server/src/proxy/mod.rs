//! Carrying one OpenAI-format request to its upstream and the answer back.

pub use sluice_http::answer;
mod attempt;
pub mod body;
pub(crate) mod cache;
mod controls;
pub mod count_tokens;
pub mod headers;
pub mod messages;
pub mod mock;
pub(crate) mod outlive;
pub use sluice_http::pool;
pub mod relay;
pub mod responses;
mod responses_relay;
pub mod tags;
mod translate;
pub mod upstream;

use crate::app::App;
use crate::errors;
use crate::exchange::{ClientBody, ClientRequest, Reply};
use bytes::Bytes;
use headers::{Facts, Outcome};
use http_body_util::BodyExt;
use sluice_router::{Ctx, ExecError};
use sluice_wire::sniff::{self, Endpoint};
use sluice_wire::{splice, ApiError};
use std::sync::Arc;
use std::time::Instant;

/// Serves one OpenAI-format call, whichever server read it and will write the [`Reply`];
/// `received` is when its head arrived (the body's timeout and the reported durations count from
/// then), and `path_model` a model named in the path. A client that hangs up does not cancel the
/// call ([`outlive`]).
pub(crate) async fn handle(
    app: Arc<App>,
    endpoint: Endpoint,
    path_model: Option<String>,
    request: ClientRequest,
    received: Instant,
) -> Reply {
    outlive::Outlive::new(serve(app, endpoint, path_model, request, received)).await
}

async fn serve(
    app: Arc<App>,
    endpoint: Endpoint,
    path_model: Option<String>,
    request: ClientRequest,
    received: Instant,
) -> Reply {
    let ClientRequest { parts, body } = request;
    let mut facts = Facts::new(&parts.headers, received);
    facts.trace = trace_context(&app, &parts.headers, endpoint.route());
    let mut outcome = Outcome::default();
    let reply = match proxy(&app, endpoint, path_model, &parts, body, &mut facts, &mut outcome).await {
        Ok(reply) => reply,
        Err(e) => {
            log_failure(&app, &mut facts, endpoint.call_type(), &e);
            errors::reply_with(&e, headers::lines(&facts, &outcome, None, Some(b"0")))
        }
    };
    if !outcome.recorded {
        // Refused before the body was read (auth, size, syntax): no model or user to label with.
        let ua = parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
        record(&app, &facts, &outcome, endpoint, "", reply.status.as_u16(), "", ua);
    }
    if app.access_log {
        crate::access_log::proxied(&parts.method, parts.uri.path(), reply.status.as_u16(), &facts);
    }
    reply
}

/// The request's place in a trace, kept only while an OpenTelemetry callback runs: the caller's
/// `traceparent` continued, or a new trace.
pub(crate) fn trace_context(
    app: &App,
    headers: &http::HeaderMap,
    route: &'static str,
) -> Option<sluice_export::trace::TraceContext> {
    if !app.access.logging.get().is_some_and(|c| c.traced()) {
        return None;
    }
    let value = |name: &str| headers.get(name).map(http::HeaderValue::as_bytes);
    Some(sluice_export::trace::TraceContext::begin(value("traceparent"), value("tracestate"), route))
}

/// A request that failed outside the path that bills and logs it (refused before it was
/// admitted, or by an error on its way): the logging callbacks that take failures get its record,
/// as LiteLLM logs its proxy-only errors. A request with a bill logs through it (once).
pub(crate) fn log_failure(app: &App, facts: &mut Facts, call_type: &'static str, e: &ApiError) {
    let class = sluice_metrics::exception_class_for_status(e.status);
    if let Some(charge) = &facts.charge {
        charge.failed(&sluice_access::charge::Failure { status: e.status, class, message: &e.message });
        return;
    }
    let Some(callbacks) = app.access.logging.get().filter(|c| c.wants(sluice_export::Status::Failure)) else {
        return;
    };
    let end = sluice_export::trace::unix_nanos();
    let start = end.saturating_sub(facts.received.elapsed().as_nanos() as u64);
    let trace = facts.trace.take().map(|context| {
        Box::new(sluice_export::trace::Trace {
            context,
            end_unix_nanos: end,
            http_status: e.status,
            response_id: None,
            attempts: Vec::new(),
            finish: Default::default(),
        })
    });
    let id = String::from_utf8_lossy(facts.call_id.as_bytes()).into_owned();
    let error =
        sluice_export::ErrorInformation { error_code: e.status.to_string(), error_class: class, llm_provider: None };
    let seconds = |nanos: u64| nanos as f64 / 1e9;
    callbacks.log(sluice_export::LogRecord::refused(
        id,
        call_type,
        seconds(start),
        seconds(end),
        error,
        callbacks.error_str(&e.message),
        None,
        trace,
    ));
}

/// One finished request in the Prometheus metrics.
#[allow(clippy::too_many_arguments)]
fn record(
    app: &App,
    facts: &Facts,
    outcome: &Outcome,
    endpoint: Endpoint,
    model: &str,
    status: u16,
    end_user: &str,
    user_agent: &str,
) {
    let key = facts.charge.as_ref().and_then(|c| c.admission().key.as_ref()).map(|k| k.record.token.as_str());
    app.access.pulse.request(status, facts.received.elapsed(), model, key);
    if let Some(m) = &app.metrics {
        m.request_finished(&sluice_metrics::RequestRecord {
            requested_model: model,
            route: endpoint.route(),
            status,
            exception_class: None,
            total: facts.received.elapsed(),
            upstream: outcome.upstream,
            queue: outcome.first_sent.map(|sent| sent.saturating_duration_since(facts.received)),
            deployment: outcome.deployment.as_ref(),
            end_user,
            user_agent,
            caller: facts.caller(),
            // Added by the bill itself (`Charge::settle`), which also sees streams' cost.
            spend: 0.0,
        });
    }
}

async fn proxy(
    app: &App,
    endpoint: Endpoint,
    path_model: Option<String>,
    parts: &http::request::Parts,
    body: ClientBody,
    facts: &mut Facts,
    outcome: &mut Outcome,
) -> Result<Reply, ApiError> {
    let identity = match app.access.identify(&parts.headers).await {
        Ok(identity) => identity,
        Err(e) => {
            return Err(match body {
                ClientBody::Stream(body) => body::drain_small(&parts.headers, body, e).await,
                ClientBody::Whole(_) => e,
            });
        }
    };
    let body = match body {
        ClientBody::Whole(body) if body.len() > app.max_request_bytes => {
            return Err(body::too_large(app.max_request_bytes, Some(body.len() as u64)))
        }
        ClientBody::Whole(body) => body,
        ClientBody::Stream(body) => {
            body::read_client_body(&parts.headers, body, app.max_request_bytes, app.client_body_timeout, facts.received)
                .await?
        }
    };
    proxy_body(app, &identity, endpoint, path_model, &parts.headers, body, None, facts, outcome).await
}

/// The request path after authentication and reading the body: shared by the OpenAI routes and
/// the Anthropic front door (which hands in a translated body, and its original for Anthropic
/// deployments to receive untouched).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn proxy_body(
    app: &App,
    identity: &sluice_access::Identity,
    endpoint: Endpoint,
    path_model: Option<String>,
    headers: &http::HeaderMap,
    body: Bytes,
    native_anthropic: Option<&Bytes>,
    facts: &mut Facts,
    outcome: &mut Outcome,
) -> Result<Reply, ApiError> {
    // The Responses API's own state (a previous response's conversation, `store`), before the
    // request is read for routing.
    let (body, responses) = match endpoint {
        Endpoint::Responses => {
            let (body, prepared) = responses::prepare(app, identity, body).await?;
            (body, Some(prepared))
        }
        _ => (body, None),
    };
    let mut view = sniff::request(&body, endpoint)?;
    // The request's own controls are the gateway's, never the upstream's: a body carrying any
    // goes on without them (the common body carries none and is not touched).
    let asked = view.controls.take();
    if let Some(cache) = asked.as_ref().and_then(|c| c.cache.as_ref()) {
        crate::gate::cache_controls_allowed(identity, cache)?;
    }
    let stripped: Bytes;
    let body: &Bytes = match &asked {
        None => &body,
        Some(_) => {
            stripped = sluice_wire::strip::without_members(&body, &sluice_wire::controls::NAMES);
            view = sniff::request(&stripped, endpoint)?;
            &stripped
        }
    };
    // LiteLLM's `x-litellm-timeout` header, which wins over the body's `timeout`. One header
    // lookup per request: the header cannot be honoured without it.
    let timeout = match headers.get(&headers::TIMEOUT) {
        Some(v) => {
            Some(sluice_wire::controls::parse_timeout(v.to_str().unwrap_or("not text"), headers::TIMEOUT.as_str())?)
        }
        None => asked.as_ref().and_then(|c| c.timeout),
    };

    // Like LiteLLM, a model named in the path wins over the body's.
    let model: String = match (&path_model, &view.model) {
        (Some(m), _) => m.clone(),
        (None, Some(m)) => m.to_string(),
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "Missing required field `model`. Set it to one of: {}.",
                app.router.load().public_names().join(", ")
            ))
            .param("model"))
        }
    };
    // A team key's alias for a model (the team's `model_aliases`) names the model from here on.
    let model = app.access.team_alias(identity, &model).unwrap_or(model);
    // LiteLLM checks this for virtual keys only: the master key and an open proxy skip it.
    if app.enforce_user_param && view.user.is_none() && matches!(identity, sluice_access::Identity::Key(_)) {
        return Err(crate::gate::user_param_missing());
    }
    // The router this request started with, held to its end even if a model change swaps it.
    let router = app.router.load_full();
    // The name routing uses: the model's own unless a provider wildcard takes it bare.
    let routed = crate::wildcard::routed(&router, &model);
    // Shared budgets and caps: Redis is asked only near a budget's end or for a shared cap.
    let estimate = cost_estimate(&router, &routed, &view);
    let admission = app.access.admit_shared(identity, &model, view.user.as_deref(), estimate).await?;
    // The requested model is admitted first, so its refusal is the one a caller sees.
    let plan = match &asked {
        Some(c) => controls::plan(app, identity, endpoint, &model, c)?,
        None => sluice_router::Plan::default(),
    };
    // What metrics call the model: bounded although a wildcard lets callers pick names.
    let label_model = crate::wildcard::label(&router, &routed);
    // The spend-log row's identity is always sluice's own: a client's `x-litellm-call-id` goes
    // back in the response header and into the row beside its id, so repeating one cannot make
    // rows collide and vanish.
    let call_id = String::from_utf8_lossy(facts.call_id.as_bytes()).into_owned();
    // Read for tag routing or the spend log and logging callbacks, from the two fields the
    // sniffer found (most bodies have neither, and cost nothing here).
    let logging =
        (app.access.store().is_some() && !app.access.settings.disable_spend_logs) || app.access.logging.get().is_some();
    let tags = match router.settings.enable_tag_filtering || logging {
        true => tags::of_request(view.tags, view.metadata),
        false => Vec::new(),
    };
    let logged_tags = match logging {
        true => tags.clone(),
        false => Vec::new(),
    };
    let trace = facts.trace.take();
    // The prompt as the client sent it, a slice of the body, for the logging callbacks.
    let own_project = own_langfuse(&admission);
    let messages = app.access.logging.get().filter(|c| c.keeps_content(own_project)).and_then(|callbacks| {
        let sent = view.messages.or(view.prompt).or(view.input)?;
        callbacks.content(sent.as_bytes(), own_project)
    });
    let (request_id, client_call_id) = match facts.client_call_id {
        false => (call_id, None),
        true => {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            (headers::new_call_id(&mut buf).to_string(), Some(call_id))
        }
    };
    // What the request says for Langfuse (`metadata.trace_id`, `langfuse_*` headers, ...), kept
    // as sent (a slice of the body, the few headers) only when a sink reads it: the headers are
    // looked through then, and the sink reads both off this path.
    let request_metadata =
        app.access.logging.get().filter(|c| c.reads_request_metadata() || own_project).and_then(|_| {
            let metadata = view.metadata.map(|m| m.as_bytes());
            let headers = headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
            sluice_export::request_metadata::Carried::new(metadata, headers).map(Box::new)
        });
    let ids = sluice_access::charge::LogIds {
        request_id,
        client_call_id,
        tags: logged_tags,
        trace,
        messages,
        request_metadata,
    };
    // Copied only when there are metrics to label.
    let labels = app.metrics.as_ref().map(|_| sluice_access::charge::MetricLabels {
        route: endpoint.route(),
        user_agent: headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
        requested_model: (label_model != model).then(|| label_model.to_string()),
    });
    facts.charge = Some(sluice_access::charge::Charge::new(
        app.access.clone(),
        admission,
        &model,
        ids,
        endpoint.call_type(),
        view.user.as_deref(),
        labels,
    ));
    // Known from here on: the attempts read the facts and write only the outcome.
    let facts = &*facts;
    // Tag routing uses them only when it is on.
    let tags = match router.settings.enable_tag_filtering {
        true => tags,
        false => Vec::new(),
    };
    let ctx = Ctx {
        input_tokens: app.needs_input_tokens.load(std::sync::atomic::Ordering::Relaxed).then(|| estimate_tokens(&view)),
        tags: &tags,
        region: headers::model_region(facts).and_then(sluice_router::Region::parse),
    };
    let client_model_json = splice::json_string(&model);
    let fallback_bodies = match &asked {
        Some(c) => controls::fallback_bodies(app, &model, body, &view, c),
        None => Vec::new(),
    };
    let alternates = fallback_bodies
        .iter()
        .map(|(group, body)| {
            Ok(attempt::Alternate { group: group.as_str(), body, view: sniff::request(body, endpoint)? })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let user_agent = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    let end_user = view.user.as_deref().unwrap_or("");
    // The answer cache, once the request is admitted and billed to its key (a hit counts toward
    // its limits) and before any deployment is chosen.
    let mut cached = cache::lookup(app, endpoint, &model, body, &view, asked.as_deref(), native_anthropic.is_some());
    if let Some(lookup) = &mut cached {
        let asker = cache::Asker { view: &view, model: &model, label_model, facts };
        let found = match app.cache.as_ref().is_some_and(|c| c.answers_here()) {
            true => cache::answer_here(app, lookup, &asker, outcome),
            // Boxed: a lookup that waits (Redis, a semantic lookup's embedding call) holds more
            // state than the rest of this call, and an async call's state is copied whole each
            // time it starts.
            false => Box::pin(cache::answer(app, lookup, &asker, outcome)).await,
        };
        if let Some(reply) = found {
            record(app, facts, outcome, endpoint, label_model, 200, end_user, user_agent);
            outcome.recorded = true;
            return Ok(reply);
        }
    }
    let mut call = attempt::UpstreamCall {
        app,
        endpoint,
        body,
        view: &view,
        client_model: &model,
        routed_model: &routed,
        label_model,
        concrete: None,
        client_model_json,
        native_anthropic,
        facts,
        outcome,
        clock: attempt::UpstreamClock::default(),
        sent_secrets: Default::default(),
        controls: asked.as_deref(),
        timeout,
        alternates: &alternates,
        responses: responses.as_ref(),
    };
    let out = router.execute_planned(&routed, &ctx, &plan, &mut call).await;
    if out.fallback_depth > 0 {
        if let (Some(m), Ok(_)) = (&app.metrics, &out.result) {
            m.fallback(label_model, out.served_group.as_deref().unwrap_or(""), facts.caller(), true, 0, "");
        }
        // `fallback_reports` (only with alerting on).
        if let Some(alerts) = app.access.alerts.get() {
            alerts.fallback(label_model, out.served_group.as_deref().unwrap_or(""), out.result.is_ok());
        }
    }
    let retry_headers = |reply: &mut Reply| {
        let lines = &mut reply.lines;
        lines.push_header(&headers::ATTEMPTED_RETRIES, &headers::count(out.attempted_retries));
        lines.push_header(&headers::MAX_RETRIES, &headers::count(out.max_retries));
        if out.fallback_depth > 0 {
            lines.push_header(&headers::ATTEMPTED_FALLBACKS, &headers::count(out.fallback_depth));
        }
    };
    let outcome = call.outcome;
    // A name no group serves is labelled by nothing: callers cannot mint series with made-up
    // names (the access log and the error still name it).
    let label_model = match out.result {
        Err(ExecError::UnknownModel) => "",
        _ => label_model,
    };
    // An upstream's error becomes a reply here; its message is kept for the failure's record
    // (copied only when a logging callback runs).
    let mut out_error: Option<String> = None;
    let result = match out.result {
        Ok(mut reply) => {
            retry_headers(&mut reply);
            Ok(match cached {
                Some(lookup) => cache::keep(app, lookup, reply),
                None => reply,
            })
        }
        Err(ExecError::UnknownModel) => Err(unknown_model(app, endpoint, &model)),
        Err(ExecError::NoDeployment(n)) if n.status() != 429 => Err(ApiError::new(n.status(), n.message())),
        Err(ExecError::NoDeployment(n)) => {
            Err(ApiError::new(429, n.message()).header("retry-after", n.retry_after_secs.to_string()))
        }
        Err(ExecError::Upstream(e)) => {
            out_error = app.access.logging.get().map(|_| e.api.message.clone());
            let lines = headers::lines(facts, outcome, e.upstream_headers.as_ref(), None);
            let mut reply = errors::reply_with(&e.api, lines);
            retry_headers(&mut reply);
            Ok(reply)
        }
    };
    let status = match &result {
        Ok(r) => r.status.as_u16(),
        Err(e) => e.status,
    };
    if status >= 400 {
        if let Some(charge) = &facts.charge {
            let message = match (&result, &out_error) {
                (Err(e), _) => e.message.as_str(),
                (Ok(_), Some(m)) => m.as_str(),
                (Ok(_), None) => "",
            };
            charge.failed(&sluice_access::charge::Failure {
                status,
                class: sluice_metrics::exception_class_for_status(status),
                message,
            });
        }
    }
    record(app, facts, outcome, endpoint, label_model, status, end_user, user_agent);
    outcome.recorded = true;
    result
}

/// One health check's request to `deployment` (`crate::health`): the attempt path every request
/// takes, with no key, no bill and at most `timeout`; the error the client would see when it
/// fails.
pub(crate) async fn probe(
    app: &App,
    deployment: &Arc<sluice_router::Deployment<crate::app::Target>>,
    endpoint: Endpoint,
    body: Bytes,
    model: &str,
    timeout: std::time::Duration,
) -> Result<(), String> {
    use sluice_router::Call;
    let view = sniff::request(&body, endpoint).map_err(|e| e.message)?;
    let facts = Facts::new(&http::HeaderMap::new(), Instant::now());
    let mut outcome = Outcome::default();
    let mut call = attempt::UpstreamCall {
        app,
        endpoint,
        body: &body,
        view: &view,
        client_model: model,
        routed_model: model,
        label_model: model,
        concrete: None,
        client_model_json: splice::json_string(model),
        native_anthropic: None,
        facts: &facts,
        outcome: &mut outcome,
        clock: attempt::UpstreamClock::default(),
        sent_secrets: Default::default(),
        controls: None,
        timeout: Some(timeout),
        alternates: &[],
        responses: None,
    };
    let attempt = app.router.load().probe(deployment.clone());
    call.call(&attempt, 0).await.map(drop).map_err(|f| f.error.api.message)
}

/// The embedding of `text` by the model group `group`, routed as any request to it is (its
/// deployments, cooldowns and retries), with no key and no bill: the semantic cache's own call.
pub(crate) async fn embed(
    app: &App,
    group: &str,
    text: &str,
    timeout: std::time::Duration,
) -> Result<Vec<f32>, String> {
    let body = Bytes::from(serde_json::json!({"model": group, "input": [text]}).to_string());
    let endpoint = Endpoint::Embeddings;
    let view = sniff::request(&body, endpoint).map_err(|e| e.message)?;
    let facts = Facts::new(&http::HeaderMap::new(), Instant::now());
    let mut outcome = Outcome::default();
    let router = app.router.load_full();
    let mut call = attempt::UpstreamCall {
        app,
        endpoint,
        body: &body,
        view: &view,
        client_model: group,
        routed_model: group,
        label_model: group,
        concrete: None,
        client_model_json: splice::json_string(group),
        native_anthropic: None,
        facts: &facts,
        outcome: &mut outcome,
        clock: attempt::UpstreamClock::default(),
        sent_secrets: Default::default(),
        controls: None,
        timeout: Some(timeout),
        alternates: &[],
        responses: None,
    };
    let ctx = Ctx { input_tokens: None, tags: &[], region: None };
    let out = router.execute_planned(group, &ctx, &sluice_router::Plan::default(), &mut call).await;
    let reply = match out.result {
        Ok(reply) => reply,
        Err(ExecError::Upstream(e)) => return Err(e.api.message),
        Err(_) => return Err(format!("no deployment of {group} could embed the prompt")),
    };
    let crate::exchange::ReplyBody::Whole(parts) = reply.body else {
        return Err("the embedding came back as a stream".into());
    };
    if reply.status != http::StatusCode::OK {
        return Err(format!("the embedding deployment answered {}", reply.status));
    }
    let answer: serde_json::Value = serde_json::from_slice(&parts.concat()).map_err(|e| e.to_string())?;
    let vector = &answer["data"][0]["embedding"];
    let floats = match vector {
        serde_json::Value::Array(items) => {
            items.iter().map(|x| x.as_f64().map(|f| f as f32)).collect::<Option<Vec<f32>>>()
        }
        serde_json::Value::String(b64) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .ok()
                .filter(|b| b.len() % 4 == 0)
                .map(|b| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
        }
        _ => None,
    };
    floats
        .filter(|f| !f.is_empty() && f.len() <= sluice_cache::semantic::MAX_DIMS)
        .ok_or_else(|| "the answer held no embedding".into())
}

/// `part` as a shared slice of `whole` (no copy), when it lies within it (`Bytes::slice_ref`
/// would panic otherwise).
/// Whether the caller's key or team logs to a Langfuse project of its own.
fn own_langfuse(a: &sluice_access::admit::Admission) -> bool {
    sluice_access::own_logging::OwnLogging::of_call(
        a.key.as_ref().map(|k| &k.logging),
        a.team.as_ref().map(|t| &t.logging),
    )
    .is_some()
}

/// What the request may cost on its model group, held against its budgets while it is in flight.
fn cost_estimate(
    router: &sluice_router::Router<crate::app::Target>,
    model: &str,
    view: &sniff::RequestView<'_>,
) -> f64 {
    let Some(group) = router.resolve(model) else { return 0.0 };
    if group.pattern.is_some() {
        // The concrete model's price: a wildcard's targets are built (and kept) here.
        let served: Vec<_> = group
            .deployments
            .iter()
            .filter_map(|d| match &d.target.kind {
                crate::app::TargetKind::Wildcard(w) => w.target(model).ok().map(|t| t.served.clone()),
                _ => Some(d.target.served.clone()),
            })
            .collect();
        return sluice_access::reserve::estimate(estimate_tokens(view), view.max_tokens, served.iter().map(|s| &**s));
    }
    let served = group.deployments.iter().map(|d| &*d.target.served);
    sluice_access::reserve::estimate(estimate_tokens(view), view.max_tokens, served)
}

/// A cheap prompt-size estimate for quota and context-window checks: about four bytes per token.
fn estimate_tokens(view: &sniff::RequestView<'_>) -> u64 {
    let raw = view.messages.or(view.prompt).or(view.input).map(str::len).unwrap_or(0);
    (raw as u64).div_ceil(4)
}

fn unknown_model(app: &App, endpoint: Endpoint, model: &str) -> ApiError {
    let names = app.router.load().public_names();
    let available = if names.is_empty() {
        "No models are configured: add entries to model_list in the config.".to_string()
    } else {
        format!("Available models: {}.", names.join(", "))
    };
    ApiError::new(
        400,
        format!(
            "{{'error': '{}: Invalid model name passed in model={model}. Call `/v1/models` to view available models for your key. {available}'}}",
            endpoint.route()
        ),
    )
}

pub(crate) enum ReadError {
    Timeout,
    Broken,
}

/// Reads an upstream's whole answer body by `deadline` (the request's timeout counted from when
/// it was sent).
pub(crate) async fn read_upstream(
    mut body: pool::UpstreamBody,
    deadline: Instant,
    limit: usize,
) -> Result<Bytes, ReadError> {
    // Usually all here with the head: no collecting, and no timer to arm.
    if let Some(whole) = body.take_whole(limit) {
        return Ok(whole);
    }
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout_at(deadline.into(), limited.collect()).await {
        Err(_) => Err(ReadError::Timeout),
        Ok(Err(_)) => Err(ReadError::Broken),
        Ok(Ok(c)) => Ok(c.to_bytes()),
    }
}
