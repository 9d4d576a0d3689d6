//! A finished call's record as OpenTelemetry spans: the request's server span, named as
//! LiteLLM names it (`Received Proxy Server Request`) and parented on the caller's span, with the
//! call's GenAI attributes, and one client span per upstream attempt under it, so retries and
//! fallbacks show. With LiteLLM's `USE_OTEL_LITELLM_REQUEST_SPAN=true` the GenAI attributes go
//! instead on a `litellm_request` span (or the request's `generation_name`) between the two, as
//! LiteLLM nests them. Attribute names follow OpenTelemetry's GenAI semantic conventions and
//! LiteLLM's own (`metadata.*`, `llm.request.type`); the key itself never appears, only its hash,
//! alias, team and user.

use crate::record::{LogRecord, Status};
use crate::request_metadata::RequestMetadata;
use crate::trace::{AttemptSpan, Finish, SpanId, Trace, TraceId};
use std::borrow::Cow;

/// LiteLLM's name for the request's span.
pub const SERVER_SPAN_NAME: &str = "Received Proxy Server Request";
/// LiteLLM's name for the call's own span, under the request's, when it makes one.
pub const REQUEST_SPAN_NAME: &str = "litellm_request";

/// What the spans of a record carry, from the exporter's settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// The prompt and the answer, when the record carries them.
    pub content: bool,
    /// The call's attributes on a `litellm_request` span of its own (LiteLLM's
    /// `USE_OTEL_LITELLM_REQUEST_SPAN`) instead of on the request's span.
    pub request_span: bool,
    /// The request's own Langfuse keys as Langfuse's OpenTelemetry attributes (`langfuse_otel`).
    pub langfuse: bool,
}

/// OpenTelemetry's `SpanKind`, numbered as OTLP numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Internal = 1,
    Server = 2,
    Client = 3,
}

/// OTLP's `Status.StatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Ok = 1,
    Error = 2,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Double(f64),
    Bool(bool),
    Strs(Vec<Cow<'a, str>>),
}

pub type Attribute<'a> = (&'static str, Value<'a>);

/// An event on a span: here only OpenTelemetry's `exception`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event<'a> {
    pub name: &'static str,
    pub time_unix_nanos: u64,
    pub attributes: Vec<Attribute<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent: Option<SpanId>,
    pub trace_state: Option<&'a str>,
    pub flags: u8,
    /// The name, in two parts joined by a space when the second is not empty (GenAI's
    /// `{operation} {model}` for an attempt), so that no string is built per span.
    pub name: (&'a str, &'a str),
    pub kind: Kind,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub attributes: Vec<Attribute<'a>>,
    pub events: Vec<Event<'a>>,
    pub status: Code,
    pub status_message: Option<&'a str>,
}

impl Span<'_> {
    /// The span's name as one string (for JSON and tests).
    pub fn full_name(&self) -> String {
        match self.name {
            (first, "") => first.to_string(),
            (first, second) => format!("{first} {second}"),
        }
    }
}

/// GenAI's `gen_ai.operation.name` for LiteLLM's call types.
fn operation(call_type: &str) -> &'static str {
    match call_type {
        "acompletion" | "completion" => "chat",
        "atext_completion" | "text_completion" => "text_completion",
        "aembedding" | "embedding" => "embeddings",
        "aresponses" | "responses" => "responses",
        "anthropic_messages" => "chat",
        _ => "chat",
    }
}

fn text(s: &str) -> Value<'_> {
    Value::Str(Cow::Borrowed(s))
}

/// The spans of `record` (none when it has no sampled trace), appended to `out`; `asked` is what
/// its request said for Langfuse, read from the record ([`crate::request_metadata`]).
pub fn of_record<'a>(
    record: &'a LogRecord,
    asked: Option<&'a RequestMetadata>,
    options: Options,
    out: &mut Vec<Span<'a>>,
) {
    let Some(trace) = record.trace.as_deref() else { return };
    if !trace.context.sampled() {
        return;
    }
    let mut server = server_span(record, trace);
    // The attempts' parent: the request's span, or the call's own when it has one.
    let mut parent = trace.context.span_id;
    if options.request_span {
        let mut call = request_span(record, trace, asked, options.content);
        if let (true, Some(asked)) = (options.langfuse, asked) {
            langfuse_attributes(asked, &mut call.attributes);
        }
        parent = call.span_id;
        out.push(server);
        out.push(call);
    } else {
        call_attributes(record, trace, options.content, &mut server.attributes);
        if let (true, Some(asked)) = (options.langfuse, asked) {
            langfuse_attributes(asked, &mut server.attributes);
        }
        (server.status, server.status_message, server.events) =
            failure(record, trace.end_unix_nanos, &mut server.attributes);
        out.push(server);
    }
    for attempt in &trace.attempts {
        out.push(attempt_span(record, trace, attempt, parent));
    }
}

/// The request's span: the HTTP exchange, and whether it failed.
fn server_span<'a>(record: &'a LogRecord, trace: &'a Trace) -> Span<'a> {
    let ctx = &trace.context;
    let mut a: Vec<Attribute<'a>> = Vec::with_capacity(32);
    a.push(("http.route", text(ctx.route)));
    a.push(("http.request.method", text("POST")));
    a.push(("http.response.status_code", Value::Int(trace.http_status as i64)));
    let (status, status_message) = match record.error_information.as_ref().filter(|_| record.status == Status::Failure)
    {
        Some(info) => (Code::Error, Some(info.error_class)),
        None => (Code::Ok, None),
    };
    Span {
        trace_id: ctx.trace_id,
        span_id: ctx.span_id,
        parent: ctx.parent,
        trace_state: ctx.state.as_deref(),
        flags: ctx.flags,
        name: (SERVER_SPAN_NAME, ""),
        kind: Kind::Server,
        start_unix_nanos: ctx.start_unix_nanos,
        end_unix_nanos: trace.end_unix_nanos.max(ctx.start_unix_nanos),
        attributes: a,
        events: Vec::new(),
        status,
        status_message,
    }
}

/// LiteLLM's `litellm_request` span (named by the request's `generation_name` when it gave
/// one, as LiteLLM names it): the call's attributes, from its first attempt to its end, under
/// the request's span.
fn request_span<'a>(
    record: &'a LogRecord,
    trace: &'a Trace,
    asked: Option<&'a RequestMetadata>,
    content: bool,
) -> Span<'a> {
    let ctx = &trace.context;
    let mut a: Vec<Attribute<'a>> = Vec::with_capacity(32);
    call_attributes(record, trace, content, &mut a);
    let (status, status_message, events) = failure(record, trace.end_unix_nanos, &mut a);
    let start = trace.attempts.first().map_or(ctx.start_unix_nanos, |a| a.start_unix_nanos);
    Span {
        trace_id: ctx.trace_id,
        span_id: crate::trace::new_span_id(),
        parent: Some(ctx.span_id),
        trace_state: ctx.state.as_deref(),
        flags: ctx.flags,
        name: (asked.and_then(|m| m.generation_name.as_deref()).unwrap_or(REQUEST_SPAN_NAME), ""),
        kind: Kind::Internal,
        start_unix_nanos: start,
        end_unix_nanos: trace.end_unix_nanos.max(start),
        attributes: a,
        events,
        status,
        status_message,
    }
}

/// The call's GenAI and LiteLLM attributes.
fn call_attributes<'a>(record: &'a LogRecord, trace: &'a Trace, content: bool, a: &mut Vec<Attribute<'a>>) {
    let op = operation(record.call_type);
    a.push(("gen_ai.operation.name", text(op)));
    a.push(("llm.request.type", text(record.call_type)));
    if let Some(group) = record.model_group.as_deref().filter(|g| !g.is_empty()) {
        a.push(("gen_ai.request.model", text(group)));
    }
    if !record.model.is_empty() {
        a.push(("gen_ai.response.model", text(&record.model)));
    }
    if let Some(p) = record.custom_llm_provider.as_deref() {
        a.push(("gen_ai.system", text(p)));
        a.push(("gen_ai.provider.name", text(p)));
    }
    if let Some(id) = trace.response_id.as_deref() {
        a.push(("gen_ai.response.id", text(id)));
    }
    a.push(("gen_ai.request.id", text(&record.id)));
    if record.status == Status::Success {
        a.push(("gen_ai.usage.input_tokens", Value::Int(record.prompt_tokens.min(i64::MAX as u64) as i64)));
        a.push(("gen_ai.usage.output_tokens", Value::Int(record.completion_tokens.min(i64::MAX as u64) as i64)));
        a.push(("gen_ai.usage.total_tokens", Value::Int(record.total_tokens.min(i64::MAX as u64) as i64)));
        a.push(("gen_ai.cost.total_cost", Value::Double(record.response_cost)));
        let reasons = finish_reasons(record, trace);
        if !reasons.is_empty() {
            a.push(("gen_ai.response.finish_reasons", Value::Strs(reasons)));
        }
    }
    let m = &record.metadata;
    for (name, value) in [
        ("metadata.user_api_key_hash", m.user_api_key_hash.as_deref()),
        ("metadata.user_api_key_alias", m.user_api_key_alias.as_deref()),
        ("metadata.user_api_key_team_id", m.user_api_key_team_id.as_deref()),
        ("metadata.user_api_key_team_alias", m.user_api_key_team_alias.as_deref()),
        ("metadata.user_api_key_user_id", m.user_api_key_user_id.as_deref()),
        ("metadata.user_api_key_org_id", m.user_api_key_org_id.as_deref()),
        ("metadata.user_api_key_end_user_id", m.user_api_key_end_user_id.as_deref()),
    ] {
        if let Some(v) = value {
            a.push((name, text(v)));
        }
    }
    if !record.request_tags.is_empty() {
        a.push(("metadata.tags", Value::Strs(record.request_tags.iter().map(|t| Cow::Borrowed(t.as_str())).collect())));
    }
    // The prompt and the answer, when the records carry them (not with
    // `turn_off_message_logging`).
    if let (true, Some(m)) = (content, record.messages.as_ref().and_then(|m| m.as_str())) {
        a.push(("gen_ai.input.messages", text(m)));
    }
    if let (true, Some(r)) = (content, record.response.as_ref().and_then(|r| r.as_str())) {
        a.push(("gen_ai.output.messages", text(r)));
    }
    if trace.attempts.len() > 1 {
        a.push(("litellm.attempts", Value::Int(trace.attempts.len() as i64)));
    }
}

/// The request's Langfuse keys under the names LiteLLM's `langfuse_otel` gives them, which
/// Langfuse's OpenTelemetry endpoint reads (tags as one JSON list, as LiteLLM writes them).
fn langfuse_attributes<'a>(asked: &'a RequestMetadata, a: &mut Vec<Attribute<'a>>) {
    for (name, value) in [
        ("langfuse.generation.name", &asked.generation_name),
        ("langfuse.generation.id", &asked.generation_id),
        ("user.id", &asked.trace_user_id),
        ("session.id", &asked.session_id),
        ("langfuse.trace.name", &asked.trace_name),
        ("langfuse.trace.id", &asked.trace_id),
        ("langfuse.trace.existing_id", &asked.existing_trace_id),
        ("langfuse.version", &asked.trace_version),
        ("langfuse.release", &asked.trace_release),
    ] {
        if let Some(v) = value {
            a.push((name, text(v)));
        }
    }
    if !asked.tags.is_empty() {
        let tags = serde_json::to_string(&asked.tags).unwrap_or_default();
        a.push(("langfuse.trace.tags", Value::Str(Cow::Owned(tags))));
    }
}

/// `gen_ai.response.finish_reasons`: a stream's last finishing chunk's, else each choice's of
/// the whole answer (held for the trace, or as the record's response).
fn finish_reasons<'a>(record: &'a LogRecord, trace: &'a Trace) -> Vec<Cow<'a, str>> {
    let answer = match &trace.finish {
        Finish::Streamed(reason) => return vec![Cow::Borrowed(reason.as_ref())],
        Finish::Answer(answer) => Some(answer),
        Finish::Unknown => record.response.as_ref(),
    };
    answer.map(|a| crate::trace::finish_reasons(a.as_bytes())).unwrap_or_default().into_iter().map(Cow::Owned).collect()
}

/// A failed call: `error.type` and an `exception` event with its class and message, status
/// ERROR; a success: status OK.
fn failure<'a>(record: &'a LogRecord, at: u64, a: &mut Vec<Attribute<'a>>) -> (Code, Option<&'a str>, Vec<Event<'a>>) {
    let Some(info) = record.error_information.as_ref().filter(|_| record.status == Status::Failure) else {
        return (Code::Ok, None, Vec::new());
    };
    a.push(("error.type", text(info.error_class)));
    let mut attributes = vec![("exception.type", text(info.error_class))];
    // A redacted message (`redact_messages_in_exceptions`) is left out, not sent as the marker.
    if let Some(message) = record.error_str.as_deref().filter(|m| *m != crate::record::REDACTED) {
        attributes.push(("exception.message", text(message)));
    }
    let event = Event { name: "exception", time_unix_nanos: at, attributes };
    (Code::Error, Some(info.error_class), vec![event])
}

fn attempt_span<'a>(record: &'a LogRecord, trace: &'a Trace, attempt: &'a AttemptSpan, parent: SpanId) -> Span<'a> {
    let op = operation(record.call_type);
    let mut a: Vec<Attribute<'a>> = Vec::with_capacity(12);
    a.push(("gen_ai.operation.name", text(op)));
    a.push(("gen_ai.request.model", text(&attempt.model)));
    a.push(("litellm.model_group", text(&attempt.model_group)));
    if let Some(id) = attempt.model_id.as_deref() {
        a.push(("litellm.model_id", text(id)));
    }
    if let Some(p) = attempt.provider.as_deref() {
        a.push(("gen_ai.system", text(p)));
        a.push(("gen_ai.provider.name", text(p)));
    }
    if let Some(base) = attempt.api_base.as_deref() {
        a.push(("url.full", text(base)));
    }
    a.push(("http.response.status_code", Value::Int(attempt.status as i64)));
    let (status, status_message) = match attempt.error_class {
        Some(class) => {
            a.push(("error.type", text(class)));
            (Code::Error, Some(class))
        }
        None => (Code::Ok, None),
    };
    let ctx = &trace.context;
    Span {
        trace_id: ctx.trace_id,
        span_id: attempt.span_id,
        parent: Some(parent),
        trace_state: ctx.state.as_deref(),
        flags: ctx.flags,
        name: (op, &attempt.model),
        kind: Kind::Client,
        start_unix_nanos: attempt.start_unix_nanos,
        end_unix_nanos: attempt.end_unix_nanos.max(attempt.start_unix_nanos),
        attributes: a,
        events: Vec::new(),
        status,
        status_message,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{sample, ErrorInformation};
    use crate::trace::{TraceContext, TraceParent};

    /// A record with a trace of two attempts (the first failed), under a caller's span.
    pub(crate) fn traced() -> LogRecord {
        let parent = TraceParent { trace_id: [7; 16], span_id: [9; 8], flags: 1 };
        let context = TraceContext {
            trace_id: parent.trace_id,
            span_id: [1; 8],
            parent: Some(parent.span_id),
            flags: 1,
            state: Some("vendor=x".into()),
            start_unix_nanos: 1_000,
            route: "/chat/completions",
        };
        let attempt = |id: u8, start: u64, status: u16, class: Option<&'static str>| AttemptSpan {
            span_id: [id; 8],
            start_unix_nanos: start,
            end_unix_nanos: start + 100,
            model: "openai/gpt-4o".into(),
            model_id: Some("m1".into()),
            model_group: "gpt-4o".into(),
            provider: Some("openai".into()),
            api_base: Some("http://127.0.0.1:1/v1".into()),
            status,
            error_class: class,
        };
        LogRecord {
            trace: Some(Box::new(Trace {
                context,
                end_unix_nanos: 5_000,
                http_status: 200,
                response_id: Some("chatcmpl-1".into()),
                attempts: vec![attempt(2, 1_100, 429, Some("RateLimitError")), attempt(3, 1_300, 200, None)],
                finish: Finish::Unknown,
            })),
            ..sample()
        }
    }

    const CONTENT: Options = Options { content: true, request_span: false, langfuse: false };

    fn attr<'a>(span: &'a Span<'_>, name: &str) -> Option<&'a Value<'a>> {
        span.attributes.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn a_call_is_a_server_span_with_a_child_per_attempt() {
        let record = traced();
        let mut spans = Vec::new();
        of_record(&record, None, CONTENT, &mut spans);
        assert_eq!(spans.len(), 3);
        let server = &spans[0];
        assert_eq!(
            (server.full_name().as_str(), server.kind, server.parent),
            (SERVER_SPAN_NAME, Kind::Server, Some([9; 8]))
        );
        assert_eq!(attr(server, "gen_ai.request.model"), Some(&text("gpt-4o")));
        assert_eq!(attr(server, "gen_ai.usage.input_tokens"), Some(&Value::Int(1)));
        assert_eq!(attr(server, "gen_ai.usage.output_tokens"), Some(&Value::Int(2)));
        assert_eq!(attr(server, "gen_ai.cost.total_cost"), Some(&Value::Double(0.5)));
        assert_eq!(attr(server, "metadata.user_api_key_hash"), Some(&text("abc")));
        assert_eq!(server.status, Code::Ok);
        let (failed, served) = (&spans[1], &spans[2]);
        assert_eq!((failed.parent, failed.kind, failed.status), (Some([1; 8]), Kind::Client, Code::Error));
        assert_eq!(attr(failed, "error.type"), Some(&text("RateLimitError")));
        assert_eq!(attr(failed, "http.response.status_code"), Some(&Value::Int(429)));
        assert_eq!(
            (served.span_id, served.status, served.full_name().as_str()),
            ([3; 8], Code::Ok, "chat openai/gpt-4o")
        );
    }

    #[test]
    fn a_failure_is_an_error_with_its_exception() {
        let record = LogRecord {
            status: Status::Failure,
            error_str: Some("rate limited".into()),
            error_information: Some(ErrorInformation {
                error_code: "429".into(),
                error_class: "RateLimitError",
                llm_provider: None,
            }),
            ..traced()
        };
        let mut spans = Vec::new();
        of_record(&record, None, CONTENT, &mut spans);
        let server = &spans[0];
        assert_eq!((server.status, server.status_message), (Code::Error, Some("RateLimitError")));
        assert_eq!(server.events[0].name, "exception");
        assert!(server.events[0].attributes.contains(&("exception.message", text("rate limited"))));
        assert_eq!(attr(server, "gen_ai.usage.input_tokens"), None);
    }

    fn strs(items: &[&'static str]) -> Value<'static> {
        Value::Strs(items.iter().map(|s| Cow::Borrowed(*s)).collect())
    }

    #[test]
    fn finish_reasons_come_from_the_stream_or_the_answer() {
        let answer = br#"{"choices":[{"index":0,"finish_reason":"tool_calls"},{"index":1,"finish_reason":"stop"}]}"#;
        let with = |finish: Finish| {
            let mut record = traced();
            record.trace.as_mut().unwrap().finish = finish;
            record
        };
        let record = with(Finish::Answer(crate::content::Content::hold(answer).unwrap()));
        let mut spans = Vec::new();
        of_record(&record, None, CONTENT, &mut spans);
        assert_eq!(attr(&spans[0], "gen_ai.response.finish_reasons"), Some(&strs(&["tool_calls", "stop"])));
        let record = with(Finish::Streamed(Cow::Borrowed("length")));
        let mut spans = Vec::new();
        of_record(&record, None, CONTENT, &mut spans);
        assert_eq!(attr(&spans[0], "gen_ai.response.finish_reasons"), Some(&strs(&["length"])));
        // Without either, the record's own response (content) is read; here it has none.
        let record = with(Finish::Unknown);
        let mut spans = Vec::new();
        of_record(&record, None, CONTENT, &mut spans);
        assert_eq!(attr(&spans[0], "gen_ai.response.finish_reasons"), None);
    }

    #[test]
    fn the_request_span_carries_the_call_between_the_server_span_and_the_attempts() {
        let record = traced();
        let mut spans = Vec::new();
        of_record(&record, None, Options { request_span: true, ..Default::default() }, &mut spans);
        assert_eq!(spans.len(), 4);
        let (server, call) = (&spans[0], &spans[1]);
        assert_eq!((call.full_name().as_str(), call.kind), (REQUEST_SPAN_NAME, Kind::Internal));
        assert_eq!(call.parent, Some(server.span_id));
        assert_ne!(call.span_id, server.span_id);
        assert!(spans[2..].iter().all(|a| a.parent == Some(call.span_id)));
        // The call's attributes are on its span, not repeated on the request's.
        assert_eq!(attr(call, "gen_ai.usage.input_tokens"), Some(&Value::Int(1)));
        assert_eq!(attr(server, "gen_ai.usage.input_tokens"), None);
        assert_eq!(attr(server, "http.response.status_code"), Some(&Value::Int(200)));
        assert_eq!(call.start_unix_nanos, 1_100);
        assert_eq!(call.end_unix_nanos, 5_000);
    }

    #[test]
    fn the_requests_langfuse_keys_name_the_call_and_become_langfuse_attributes() {
        let record = traced();
        let asked = RequestMetadata {
            generation_name: Some("step-1".into()),
            session_id: Some("s-1".into()),
            trace_user_id: Some("u-1".into()),
            tags: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let mut spans = Vec::new();
        let options = Options { request_span: true, langfuse: true, ..Default::default() };
        of_record(&record, Some(&asked), options, &mut spans);
        let call = &spans[1];
        assert_eq!(call.full_name(), "step-1");
        assert_eq!(attr(call, "session.id"), Some(&text("s-1")));
        assert_eq!(attr(call, "user.id"), Some(&text("u-1")));
        assert_eq!(attr(call, "langfuse.generation.name"), Some(&text("step-1")));
        assert_eq!(attr(call, "langfuse.trace.tags"), Some(&text(r#"["a","b"]"#)));
        // Plain `otel` names the span after it too, without Langfuse's attributes.
        let mut spans = Vec::new();
        of_record(&record, Some(&asked), Options { request_span: true, ..Default::default() }, &mut spans);
        assert_eq!((spans[1].full_name().as_str(), attr(&spans[1], "session.id")), ("step-1", None));
    }

    #[test]
    fn a_redacted_failure_has_no_exception_message() {
        let failed = |message: &str| LogRecord {
            status: Status::Failure,
            error_str: Some(message.into()),
            error_information: Some(ErrorInformation {
                error_code: "400".into(),
                error_class: "BadRequestError",
                llm_provider: None,
            }),
            ..traced()
        };
        for request_span in [false, true] {
            let options = Options { content: true, request_span, langfuse: false };
            let record = failed(crate::record::REDACTED);
            let mut spans = Vec::new();
            of_record(&record, None, options, &mut spans);
            let call = &spans[request_span as usize];
            let (name, attributes) = (call.events[0].name, &call.events[0].attributes);
            assert_eq!(name, "exception");
            assert!(attributes.iter().all(|(k, _)| *k != "exception.message"), "{attributes:?}");
            assert!(attributes.contains(&("exception.type", text("BadRequestError"))));
            assert_eq!((spans[0].status, spans[0].status_message), (Code::Error, Some("BadRequestError")));
        }
    }

    #[test]
    fn records_without_a_sampled_trace_have_no_spans() {
        let plain = sample();
        let mut spans = Vec::new();
        of_record(&plain, None, CONTENT, &mut spans);
        let mut unsampled = traced();
        if let Some(t) = unsampled.trace.as_mut() {
            t.context.flags = 0;
        }
        of_record(&unsampled, None, CONTENT, &mut spans);
        assert!(spans.is_empty());
    }
}
