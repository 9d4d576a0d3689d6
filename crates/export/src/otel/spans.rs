//! A finished call's record as OpenTelemetry spans: the request's server span, named as
//! LiteLLM names it (`Received Proxy Server Request`) and parented on the caller's span, with the
//! call's GenAI attributes, and one client span per upstream attempt under it, so retries and
//! fallbacks show. Attribute names follow OpenTelemetry's GenAI semantic conventions and
//! LiteLLM's own (`metadata.*`, `llm.request.type`); the key itself never appears, only its hash,
//! alias, team and user.

use crate::record::{LogRecord, Status};
use crate::trace::{AttemptSpan, SpanId, Trace, TraceId};
use std::borrow::Cow;

/// LiteLLM's name for the request's span.
pub const SERVER_SPAN_NAME: &str = "Received Proxy Server Request";

/// OpenTelemetry's `SpanKind`, numbered as OTLP numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
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
    Strs(Vec<&'a str>),
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
    pub name: (&'static str, &'a str),
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

/// The spans of `record` (none when it has no sampled trace), appended to `out`; with the prompt
/// and answer the record carries when `content`.
pub fn of_record<'a>(record: &'a LogRecord, content: bool, out: &mut Vec<Span<'a>>) {
    let Some(trace) = record.trace.as_deref() else { return };
    if !trace.context.sampled() {
        return;
    }
    out.push(server_span(record, trace, content));
    for attempt in &trace.attempts {
        out.push(attempt_span(record, trace, attempt));
    }
}

fn server_span<'a>(record: &'a LogRecord, trace: &'a Trace, content: bool) -> Span<'a> {
    let ctx = &trace.context;
    let op = operation(record.call_type);
    let mut a: Vec<Attribute<'a>> = Vec::with_capacity(32);
    a.push(("http.route", text(ctx.route)));
    a.push(("http.request.method", text("POST")));
    a.push(("http.response.status_code", Value::Int(trace.http_status as i64)));
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
        a.push(("metadata.tags", Value::Strs(record.request_tags.iter().map(String::as_str).collect())));
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
    let (status, status_message, events) = failure(record, trace.end_unix_nanos, &mut a);
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
        events,
        status,
        status_message,
    }
}

/// A failed call: `error.type` and an `exception` event with its class and message, status
/// ERROR; a success: status OK.
fn failure<'a>(record: &'a LogRecord, at: u64, a: &mut Vec<Attribute<'a>>) -> (Code, Option<&'a str>, Vec<Event<'a>>) {
    let Some(info) = record.error_information.as_ref().filter(|_| record.status == Status::Failure) else {
        return (Code::Ok, None, Vec::new());
    };
    a.push(("error.type", text(info.error_class)));
    let mut attributes = vec![("exception.type", text(info.error_class))];
    if let Some(message) = record.error_str.as_deref() {
        attributes.push(("exception.message", text(message)));
    }
    let event = Event { name: "exception", time_unix_nanos: at, attributes };
    (Code::Error, Some(info.error_class), vec![event])
}

fn attempt_span<'a>(record: &'a LogRecord, trace: &'a Trace, attempt: &'a AttemptSpan) -> Span<'a> {
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
        parent: Some(ctx.span_id),
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
            })),
            ..sample()
        }
    }

    fn attr<'a>(span: &'a Span<'_>, name: &str) -> Option<&'a Value<'a>> {
        span.attributes.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    #[test]
    fn a_call_is_a_server_span_with_a_child_per_attempt() {
        let record = traced();
        let mut spans = Vec::new();
        of_record(&record, true, &mut spans);
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
        of_record(&record, true, &mut spans);
        let server = &spans[0];
        assert_eq!((server.status, server.status_message), (Code::Error, Some("RateLimitError")));
        assert_eq!(server.events[0].name, "exception");
        assert!(server.events[0].attributes.contains(&("exception.message", text("rate limited"))));
        assert_eq!(attr(server, "gen_ai.usage.input_tokens"), None);
    }

    #[test]
    fn records_without_a_sampled_trace_have_no_spans() {
        let plain = sample();
        let mut spans = Vec::new();
        of_record(&plain, true, &mut spans);
        let mut unsampled = traced();
        if let Some(t) = unsampled.trace.as_mut() {
            t.context.flags = 0;
        }
        of_record(&unsampled, true, &mut spans);
        assert!(spans.is_empty());
    }
}
