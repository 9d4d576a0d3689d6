//! LiteLLM's classic `langfuse` callback: each finished call becomes a `trace-create` and a
//! `generation-create` event of Langfuse's public ingestion API, POSTed in batches to
//! `{host}/api/public/ingestion` with HTTP Basic auth (public key : secret key), the fields named
//! and filled as LiteLLM's `langfuse.py` fills them through the Langfuse SDK.
//!
//! A call goes to the project of its key or team when their `metadata.logging` names one (the
//! record carries it, [`OwnProject`], resolved when the key loaded), else to the configured one.
//! A batch is split by project, one POST each. Langfuse answers 207 with `successes` and
//! `errors`; any error makes the delivery count as failed. (Not `crate::collector`: that answer
//! is read, and one client serves every project.)

use crate::queue::Sink;
use crate::record::{LogRecord, Status};
use crate::Events;
use base64::Engine;
use bytes::Bytes;
use http::HeaderValue;
use http_body_util::BodyExt;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sluice_http::ChainBody;
use std::sync::Arc;
use std::time::Duration;

/// Where LiteLLM sends records when `LANGFUSE_HOST` is not set.
pub const DEFAULT_HOST: &str = "https://cloud.langfuse.com";

/// The ingestion route under a host.
const INGESTION_PATH: &str = "/api/public/ingestion";

/// How long one delivery may take, answer included.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of Langfuse's answer that is read: its per-event statuses of a full batch fit well.
const MAX_ANSWER: usize = 256 * 1024;

/// The most of one of Langfuse's error messages repeated in sluice's log.
const MAX_ERROR_SHOWN: usize = 300;

/// One Langfuse project's ingestion endpoint and credentials.
pub struct Project {
    endpoint: http::Uri,
    /// `Basic base64(public:secret)`, marked sensitive.
    authorization: HeaderValue,
    /// Sent in the batch's metadata, as the Langfuse SDK does.
    public_key: String,
    /// For errors and logs.
    host: String,
}

/// The host only: the keys are credentials (the public one included, as Langfuse pairs them).
impl std::fmt::Debug for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Project").field("host", &self.host).finish_non_exhaustive()
    }
}

impl PartialEq for Project {
    fn eq(&self, other: &Self) -> bool {
        self.endpoint == other.endpoint && self.authorization == other.authorization
    }
}

impl Project {
    /// A project at `host` (LiteLLM's default when `None`; `http://` put in front of a host
    /// without a scheme, as LiteLLM does). Errors say what is wrong, never a key.
    pub fn new(host: Option<&str>, public_key: &str, secret_key: &str) -> Result<Project, String> {
        let host = host.map(str::trim).filter(|h| !h.is_empty()).unwrap_or(DEFAULT_HOST);
        let host = match host.starts_with("http://") || host.starts_with("https://") {
            true => host.to_string(),
            false => format!("http://{host}"),
        };
        let base = host.trim_end_matches('/');
        let endpoint: http::Uri = format!("{base}{INGESTION_PATH}").parse().map_err(|_| {
            format!("the Langfuse host \"{host}\" is not a URL; write it as https://langfuse.example.com")
        })?;
        if endpoint.host().is_none() {
            return Err(format!("the Langfuse host \"{host}\" has no host name"));
        }
        let (public_key, secret_key) = (public_key.trim(), secret_key.trim());
        if public_key.is_empty() || secret_key.is_empty() {
            return Err("a Langfuse project needs both its public key and its secret key".into());
        }
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{public_key}:{secret_key}"));
        let mut authorization = HeaderValue::from_str(&format!("Basic {token}"))
            .map_err(|_| "the Langfuse keys hold characters a header cannot carry".to_string())?;
        authorization.set_sensitive(true);
        Ok(Project { endpoint, authorization, public_key: public_key.to_string(), host: base.to_string() })
    }

    /// The host the project's records go to.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// A key's or team's own Langfuse project (LiteLLM's `metadata.logging` entry for `langfuse`)
/// and the outcomes it asked for (its `callback_type`).
#[derive(Debug)]
pub struct OwnProject {
    pub events: Events,
    pub project: Arc<Project>,
}

/// The `langfuse` sink: the configured project (if any) and the settings every project shares.
pub struct Langfuse {
    /// `LANGFUSE_PUBLIC_KEY`/`LANGFUSE_SECRET_KEY`/`LANGFUSE_HOST`; `None` when only keys' and
    /// teams' own projects are logged to.
    default: Option<Arc<Project>>,
    /// `LANGFUSE_RELEASE`: the traces' `release`.
    release: Option<String>,
    client: sluice_http::pool::Client,
}

impl std::fmt::Debug for Langfuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Langfuse").field("default", &self.default).field("release", &self.release).finish()
    }
}

impl Langfuse {
    pub fn new(default: Option<Arc<Project>>, release: Option<String>) -> Langfuse {
        Langfuse { default, release, client: sluice_http::client(Duration::from_secs(5)) }
    }
}

impl Sink for Langfuse {
    async fn send(&self, batch: &[Arc<LogRecord>]) -> Result<(), String> {
        let groups = by_project(batch, self.default.as_ref());
        let mut failures = Vec::new();
        for (project, records) in &groups {
            let body = ingestion_body(project, records, self.release.as_deref());
            let body = serde_json::to_vec(&body).map_err(|e| format!("cannot encode the events: {e}"))?;
            let sent = match tokio::time::timeout(SEND_TIMEOUT, self.post(project, Bytes::from(body))).await {
                Ok(result) => result,
                Err(_) => {
                    Err(format!("Langfuse at {} did not answer within {} s", project.host, SEND_TIMEOUT.as_secs()))
                }
            };
            if let Err(e) = sent {
                failures.push(e);
            }
        }
        match failures.len() {
            0 => Ok(()),
            1 => Err(failures.swap_remove(0)),
            n => Err(format!("{n} of {} Langfuse projects failed; first: {}", groups.len(), failures[0])),
        }
    }
}

/// `batch` split by the project each record goes to, in order of first appearance: its key's or
/// team's own, else `default`; a record with neither is not sent. Projects are compared by
/// pointer first (keys sharing credentials share one `Project`), then by value.
fn by_project<'a>(
    batch: &'a [Arc<LogRecord>],
    default: Option<&'a Arc<Project>>,
) -> Vec<(&'a Arc<Project>, Vec<&'a LogRecord>)> {
    let mut groups: Vec<(&Arc<Project>, Vec<&LogRecord>)> = Vec::new();
    for record in batch {
        let Some(project) = record.langfuse.as_ref().map(|o| &o.project).or(default) else { continue };
        match groups.iter_mut().find(|(p, _)| Arc::ptr_eq(p, project) || ***p == **project) {
            Some((_, records)) => records.push(record),
            None => groups.push((project, vec![record])),
        }
    }
    groups
}

impl Langfuse {
    async fn post(&self, project: &Project, body: Bytes) -> Result<(), String> {
        let mut req = http::Request::new(ChainBody::full(body));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = project.endpoint.clone();
        let headers = req.headers_mut();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(http::header::AUTHORIZATION, project.authorization.clone());
        let answer =
            self.client.request(req).await.map_err(|e| format!("cannot reach Langfuse at {}: {e}", project.host))?;
        let status = answer.status();
        let body = http_body_util::Limited::new(answer.into_body(), MAX_ANSWER).collect().await;
        let body = body.map(|b| b.to_bytes()).unwrap_or_default();
        match status.as_u16() {
            401 | 403 => Err(format!(
                "Langfuse at {} answered {status}: check the project's public and secret keys",
                project.host
            )),
            s if !(200..300).contains(&s) => Err(format!("Langfuse at {} answered {status}", project.host)),
            _ => refused(&body).map_or(Ok(()), |e| Err(format!("Langfuse at {}: {e}", project.host))),
        }
    }
}

/// What Langfuse's ingestion answer (`{"successes": [...], "errors": [...]}`, 207 when some
/// failed) says was refused, if anything.
pub fn refused(answer: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(answer).ok()?;
    let errors = v.get("errors")?.as_array().filter(|e| !e.is_empty())?;
    let total = errors.len() + v.get("successes").and_then(Value::as_array).map_or(0, Vec::len);
    let first = &errors[0];
    let why = first
        .get("message")
        .or_else(|| first.get("error"))
        .map(|m| match m {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let why: String = why.chars().take(MAX_ERROR_SHOWN).collect();
    let status = first.get("status").map(Value::to_string).unwrap_or_default();
    Some(format!("refused {} of {total} events; first: {status} {why}", errors.len()))
}

/// The ingestion request of `records`: two events each, and the batch metadata the Langfuse SDK
/// sends with LiteLLM as its integration.
pub fn ingestion_body(project: &Project, records: &[&LogRecord], release: Option<&str>) -> Value {
    let mut batch = Vec::with_capacity(records.len() * 2);
    for record in records {
        let [trace, generation] = events(record, release);
        batch.push(trace);
        batch.push(generation);
    }
    json!({
        "batch": batch,
        "metadata": {
            "batch_size": batch.len(),
            "sdk_integration": "litellm",
            "sdk_name": "sluice",
            "sdk_version": env!("CARGO_PKG_VERSION"),
            "public_key": project.public_key,
        },
    })
}

/// Unix seconds as Langfuse's ISO-8601 timestamps (UTC, microseconds).
pub fn iso8601(unix_seconds: f64) -> String {
    let micros = (unix_seconds * 1e6).round() as i64;
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => "1970-01-01T00:00:00.000000Z".into(),
    }
}

/// One record's `trace-create` and `generation-create` events. Event ids are derived from the
/// call's id, so a batch sent twice is deduplicated by Langfuse rather than logged twice.
///
/// The request's own Langfuse keys (`metadata` and `langfuse_*` headers,
/// [`crate::request_metadata`]) are read as LiteLLM reads them: `trace_id` names the trace (else
/// the call id), `existing_trace_id` adds the call to a trace without touching its name, user,
/// session or tags; `trace_name`, `trace_user_id` (else the end user), `session_id`,
/// `trace_version`, `trace_release` (else `LANGFUSE_RELEASE`) and `tags` (after the record's) fill
/// a new trace; `generation_name` and `generation_id` name the generation.
pub fn events(record: &LogRecord, release: Option<&str>) -> [Value; 2] {
    let asked = record.request_metadata.as_deref().map(|c| c.read()).unwrap_or_default();
    let start = iso8601(record.start_time);
    let end = iso8601(record.end_time);
    let failed = record.status == Status::Failure;
    let default_name = format!("litellm-{}", record.call_type);
    let trace_id = match (&asked.existing_trace_id, &asked.trace_id) {
        (Some(id), _) | (None, Some(id)) => id.clone(),
        (None, None) => record.trace_id.clone(),
    };
    let mut trace = Map::new();
    trace.insert("id".into(), trace_id.clone().into());
    trace.insert("timestamp".into(), start.clone().into());
    // An existing trace is only added to (LiteLLM sends its id alone): its name, user, session
    // and tags stay as they were.
    let new_trace = asked.existing_trace_id.is_none();
    if new_trace {
        trace.insert("name".into(), asked.trace_name.clone().unwrap_or_else(|| default_name.clone()).into());
        let user = asked.trace_user_id.clone().or_else(|| record.metadata.user_api_key_end_user_id.clone());
        trace.insert("userId".into(), user.into());
        let mut tags = record.request_tags.clone();
        for tag in &asked.tags {
            if tags.len() < crate::request_metadata::MAX_TAGS && !tags.contains(tag) {
                tags.push(tag.clone());
            }
        }
        trace.insert("tags".into(), tags.into());
        if let Some(session) = &asked.session_id {
            trace.insert("sessionId".into(), session.clone().into());
        }
        if let Some(version) = &asked.trace_version {
            trace.insert("version".into(), version.clone().into());
        }
        if let Some(r) = asked.trace_release.as_deref().or(release) {
            trace.insert("release".into(), r.into());
        }
    }
    // The prompt and the answer, when the record carries them (LiteLLM's default; not with
    // `turn_off_message_logging`): `{"messages": [...]}` and the answer's message, as LiteLLM
    // writes them.
    let input = record.messages.as_ref().map(|m| json!({ "messages": content_json(m) }));
    let output = record.response.as_ref().map(|r| answer_message(content_json(r)));
    if let (Some(input), true) = (&input, new_trace) {
        trace.insert("input".into(), input.clone());
    }
    if let (Some(output), false, true) = (&output, failed, new_trace) {
        trace.insert("output".into(), output.clone());
    }

    // The request's name for it, else LiteLLM's: the key's alias when it has one.
    let generation_name = match (&asked.generation_name, &record.metadata.user_api_key_alias) {
        (Some(name), _) => name.clone(),
        (None, Some(alias)) => format!("litellm:{alias}"),
        (None, None) => default_name,
    };
    let mut generation = Map::new();
    generation.insert("id".into(), asked.generation_id.clone().unwrap_or_else(|| generation_id(record)).into());
    generation.insert("traceId".into(), trace_id.into());
    generation.insert("name".into(), generation_name.into());
    generation.insert("startTime".into(), start.clone().into());
    generation.insert("endTime".into(), end.clone().into());
    generation.insert("completionStartTime".into(), iso8601(record.completion_start_time).into());
    generation.insert("model".into(), Value::String(record.model.to_string()));
    generation.insert("modelParameters".into(), json!({}));
    generation.insert("metadata".into(), metadata(record));
    if let Some(input) = input {
        generation.insert("input".into(), input);
    }
    // A failure's output is its message, as LiteLLM writes it.
    if failed {
        generation.insert("level".into(), "ERROR".into());
        let message = record.error_str.clone().unwrap_or_else(|| "the call failed".into());
        generation.insert("statusMessage".into(), message.clone().into());
        generation.insert("output".into(), message.into());
    } else {
        generation.insert("level".into(), "DEFAULT".into());
        if let Some(output) = output {
            generation.insert("output".into(), output);
        }
        generation.insert(
            "usage".into(),
            json!({
                "input": record.prompt_tokens,
                "output": record.completion_tokens,
                "total": record.total_tokens,
                "unit": "TOKENS",
                "totalCost": record.response_cost,
            }),
        );
        generation.insert(
            "usageDetails".into(),
            json!({
                "input": record.prompt_tokens,
                "output": record.completion_tokens,
                "total": record.total_tokens,
            }),
        );
        generation.insert("costDetails".into(), json!({ "total": record.response_cost }));
    }
    [
        event("trace-create", &format!("{}-trace", record.id), &start, Value::Object(trace)),
        event("generation-create", &format!("{}-generation", record.id), &end, Value::Object(generation)),
    ]
}

/// A prompt or an answer as JSON (text that is not JSON, which the sniffer never keeps, as a
/// string).
fn content_json(content: &crate::content::Content) -> Value {
    serde_json::from_slice(content.as_bytes())
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(content.as_bytes()).into_owned()))
}

/// A chat answer's first message (LiteLLM's generation output), else the answer as it is.
fn answer_message(answer: Value) -> Value {
    match answer.pointer("/choices/0/message") {
        Some(message) => message.clone(),
        None => answer,
    }
}

fn event(kind: &str, id: &str, timestamp: &str, body: Value) -> Value {
    json!({ "id": id, "type": kind, "timestamp": timestamp, "body": body })
}

/// LiteLLM's generation id: `time-HH-MM-SS-micros_` and the call's id.
fn generation_id(record: &LogRecord) -> String {
    let micros = (record.start_time * 1e6).round() as i64;
    let at = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default();
    format!("time-{}_{}", at.format("%H-%M-%S-%6f"), record.id)
}

/// The generation's metadata: who called (never the key; its hash, as LiteLLM logs it), the
/// model group, deployment and cost, in LiteLLM's names.
fn metadata(record: &LogRecord) -> Value {
    #[derive(Serialize)]
    struct Meta<'a> {
        #[serde(flatten)]
        caller: &'a crate::record::Metadata,
        tags: &'a [String],
        model_group: Option<&'a str>,
        model_id: Option<&'a str>,
        api_base: Option<&'a str>,
        custom_llm_provider: Option<&'a str>,
        litellm_response_cost: f64,
        cache_hit: bool,
        call_id: &'a str,
        hidden_params: &'a crate::record::HiddenParams,
        error_information: Option<&'a crate::record::ErrorInformation>,
    }
    let meta = Meta {
        caller: &record.metadata,
        tags: &record.request_tags,
        model_group: record.model_group.as_deref(),
        model_id: record.model_id.as_deref(),
        api_base: record.api_base.as_deref(),
        custom_llm_provider: record.custom_llm_provider.as_deref(),
        litellm_response_cost: record.response_cost,
        cache_hit: record.cache_hit,
        call_id: &record.id,
        hidden_params: &record.hidden_params,
        error_information: record.error_information.as_ref(),
    };
    let mut v = serde_json::to_value(meta).unwrap_or_else(|_| json!({}));
    // The constant nulls of `StandardLoggingMetadata` say nothing in Langfuse's view.
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, v| !v.is_null());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{sample, ErrorInformation, Metadata};

    fn project(host: &str) -> Arc<Project> {
        Arc::new(Project::new(Some(host), "pk-lf-1", "sk-lf-secret").unwrap())
    }

    #[test]
    fn projects_read_hosts_as_litellm_does_and_hide_keys() {
        let p = Project::new(None, "pk", "sk-hidden").unwrap();
        assert_eq!(p.endpoint.to_string(), "https://cloud.langfuse.com/api/public/ingestion");
        let p = Project::new(Some("langfuse.internal:3000/"), "pk", "sk-hidden").unwrap();
        assert_eq!(p.endpoint.to_string(), "http://langfuse.internal:3000/api/public/ingestion");
        assert!(!format!("{p:?}").contains("sk-hidden"));
        assert!(p.authorization.is_sensitive());
        let e = Project::new(Some("http://exa mple"), "pk", "sk-hidden").unwrap_err();
        assert!(e.contains("not a URL") && !e.contains("sk-hidden"), "{e}");
        assert!(Project::new(None, "pk", " ").is_err());
        // Same credentials and host: the same project.
        assert_eq!(*project("http://a"), *project("http://a/"));
        assert_ne!(*project("http://a"), *project("http://b"));
    }

    fn asking(metadata: &str, headers: &[(&str, &str)]) -> LogRecord {
        let metadata = (!metadata.is_empty()).then_some(metadata.as_bytes());
        let carried =
            crate::request_metadata::Carried::new(metadata, headers.iter().map(|(n, v)| (*n, v.as_bytes()))).unwrap();
        LogRecord { request_metadata: Some(Box::new(carried)), ..sample() }
    }

    #[test]
    fn the_requests_own_keys_name_its_trace_and_generation() {
        let record = asking(
            r#"{"trace_id":"t-9","session_id":"s-1","trace_name":"checkout","trace_user_id":"u-3",
                "generation_name":"step-1","generation_id":"g-1","trace_version":"2","tags":["mine"]}"#,
            &[("langfuse_trace_release", "r-5")],
        );
        let [trace, generation] = events(&record, Some("v1"));
        let (t, g) = (&trace["body"], &generation["body"]);
        assert_eq!(
            (t["id"].as_str(), t["name"].as_str(), t["userId"].as_str()),
            (Some("t-9"), Some("checkout"), Some("u-3"))
        );
        assert_eq!(
            (t["sessionId"].as_str(), t["version"].as_str(), t["release"].as_str()),
            (Some("s-1"), Some("2"), Some("r-5"))
        );
        assert_eq!(t["tags"], json!(["t", "mine"]));
        assert_eq!(
            (g["traceId"].as_str(), g["id"].as_str(), g["name"].as_str()),
            (Some("t-9"), Some("g-1"), Some("step-1"))
        );
        // Event ids stay the call's own, so a batch sent again is deduplicated.
        assert_eq!(trace["id"], "call-1-trace");
    }

    #[test]
    fn an_existing_trace_is_added_to_without_renaming_it() {
        let record = asking(r#"{"trace_name":"ignored","session_id":"s"}"#, &[("langfuse_existing_trace_id", "old-1")]);
        let [trace, generation] = events(&record, Some("v1"));
        let t = trace["body"].as_object().unwrap();
        let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["id", "timestamp"]);
        assert_eq!(t["id"], "old-1");
        assert_eq!(generation["body"]["traceId"], "old-1");
    }

    #[test]
    fn a_success_is_a_trace_and_a_generation_with_usage_and_cost() {
        let record = LogRecord {
            metadata: Metadata {
                user_api_key_hash: Some("hash".into()),
                user_api_key_alias: Some("alias-1".into()),
                user_api_key_team_id: Some("team-1".into()),
                user_api_key_end_user_id: Some("end-7".into()),
                ..Default::default()
            },
            ..sample()
        };
        let [trace, generation] = events(&record, Some("v1"));
        assert_eq!(trace["type"], "trace-create");
        assert_eq!(trace["id"], "call-1-trace");
        assert_eq!(trace["timestamp"], "1970-01-01T00:00:01.500000Z");
        let t = &trace["body"];
        assert_eq!(t["id"], "call-1");
        assert_eq!(t["name"], "litellm-acompletion");
        assert_eq!(t["userId"], "end-7");
        assert_eq!(t["release"], "v1");
        assert_eq!(t["tags"], json!(["t"]));
        assert_eq!(generation["type"], "generation-create");
        let g = &generation["body"];
        assert_eq!(g["traceId"], "call-1");
        assert_eq!(g["id"], "time-00-00-01-500000_call-1");
        assert_eq!(g["name"], "litellm:alias-1");
        assert_eq!(g["model"], "openai/gpt-4o");
        assert_eq!(g["startTime"], "1970-01-01T00:00:01.500000Z");
        assert_eq!(g["endTime"], "1970-01-01T00:00:02.000000Z");
        assert_eq!(g["completionStartTime"], "1970-01-01T00:00:02.000000Z");
        assert_eq!(g["level"], "DEFAULT");
        assert_eq!(g["usage"], json!({"input": 1, "output": 2, "total": 3, "unit": "TOKENS", "totalCost": 0.5}));
        assert_eq!(g["usageDetails"], json!({"input": 1, "output": 2, "total": 3}));
        assert_eq!(g["costDetails"], json!({"total": 0.5}));
        let m = &g["metadata"];
        assert_eq!(m["user_api_key_alias"], "alias-1");
        assert_eq!(m["user_api_key_team_id"], "team-1");
        assert_eq!(m["user_api_key_hash"], "hash");
        assert_eq!(m["model_group"], "gpt-4o");
        assert_eq!(m["tags"], json!(["t"]));
        assert_eq!(m["litellm_response_cost"], 0.5);
        assert!(m.get("spend_logs_metadata").is_none(), "nulls are left out: {m}");
    }

    /// The prompt and the answer the record carries become the input and the output.
    #[test]
    fn the_prompt_and_the_answer_are_input_and_output() {
        let held = |text: &str| crate::content::Content::hold(text.as_bytes());
        let record = LogRecord {
            messages: held(r#"[{"role":"user","content":"hi"}]"#),
            response: held(r#"{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"hello"}}]}"#),
            ..sample()
        };
        let [trace, generation] = events(&record, None);
        let input = json!({"messages": [{"role": "user", "content": "hi"}]});
        let output = json!({"role": "assistant", "content": "hello"});
        assert_eq!((&trace["body"]["input"], &trace["body"]["output"]), (&input, &output));
        assert_eq!((&generation["body"]["input"], &generation["body"]["output"]), (&input, &output));
        // Without them (turn_off_message_logging), neither is sent.
        let [trace, generation] = events(&sample(), None);
        assert!(trace["body"].get("input").is_none() && generation["body"].get("output").is_none());
    }

    #[test]
    fn a_failure_is_an_error_level_generation_with_its_message() {
        let record = LogRecord {
            status: Status::Failure,
            response_cost: 0.0,
            error_str: Some("slow down".into()),
            error_information: Some(ErrorInformation {
                error_code: "429".into(),
                error_class: "RateLimitError",
                llm_provider: None,
            }),
            ..sample()
        };
        let [trace, generation] = events(&record, None);
        assert!(trace["body"].get("release").is_none());
        let g = &generation["body"];
        assert_eq!(g["level"], "ERROR");
        assert_eq!(g["statusMessage"], "slow down");
        assert!(g.get("usage").is_none());
        assert_eq!(g["metadata"]["error_information"]["error_class"], "RateLimitError");
    }

    #[test]
    fn batches_split_by_project() {
        let default = project("http://default");
        let own = |p: &Arc<Project>| {
            Some(Arc::new(OwnProject { events: Events { success: true, failure: true }, project: p.clone() }))
        };
        let team = project("http://team");
        let same_team = project("http://team");
        let batch: Vec<Arc<LogRecord>> = vec![
            Arc::new(LogRecord { id: "a".into(), ..sample() }),
            Arc::new(LogRecord { id: "b".into(), langfuse: own(&team), ..sample() }),
            Arc::new(LogRecord { id: "c".into(), langfuse: own(&same_team), ..sample() }),
            Arc::new(LogRecord { id: "d".into(), ..sample() }),
        ];
        let groups = by_project(&batch, Some(&default));
        let ids: Vec<(&str, Vec<&str>)> =
            groups.iter().map(|(p, rs)| (p.host(), rs.iter().map(|r| r.id.as_str()).collect())).collect();
        assert_eq!(ids, [("http://default", vec!["a", "d"]), ("http://team", vec!["b", "c"])]);
        // Without a configured project, only records with their own are sent.
        let groups = by_project(&batch, None);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].1.len(), 2);
    }

    #[test]
    fn the_body_carries_the_batch_and_its_metadata() {
        let p = project("http://h");
        let record = sample();
        let body = ingestion_body(&p, &[&record, &record], None);
        assert_eq!(body["batch"].as_array().unwrap().len(), 4);
        assert_eq!(body["metadata"]["batch_size"], 4);
        assert_eq!(body["metadata"]["public_key"], "pk-lf-1");
        assert!(!body.to_string().contains("sk-lf-secret"));
    }

    #[test]
    fn refusals_in_a_207_are_errors() {
        assert_eq!(refused(br#"{"successes":[{"id":"a","status":201}],"errors":[]}"#), None);
        assert_eq!(refused(b"not json"), None);
        let e = refused(
            br#"{"successes":[{"id":"a","status":201}],"errors":[{"id":"b","status":400,"message":"bad body"}]}"#,
        )
        .unwrap();
        assert!(e.contains("1 of 2") && e.contains("400") && e.contains("bad body"), "{e}");
    }

    /// A loopback stand-in: takes `requests` POSTs on one connection (the sink's pooled one),
    /// answers each 207 with `answer`, and keeps their heads and bodies.
    async fn stand_in(
        answer: &'static str,
        requests: usize,
    ) -> (String, tokio::task::JoinHandle<Vec<(String, Value)>>) {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            for _ in 0..requests {
                let (head, body) = crate::collector::read_request(&mut conn).await;
                got.push((head, serde_json::from_slice(&body).unwrap()));
                let reply = format!("HTTP/1.1 207 Multi-Status\r\ncontent-length: {}\r\n\r\n{answer}", answer.len());
                conn.write_all(reply.as_bytes()).await.unwrap();
            }
            got
        });
        (url, server)
    }

    /// Records reach the ingestion route with the project's Basic auth, one POST per project.
    #[tokio::test]
    async fn posts_each_project_its_events_with_basic_auth() {
        let (url, server) = stand_in(r#"{"successes":[],"errors":[]}"#, 2).await;
        let default = Arc::new(Project::new(Some(&url), "pk-default", "sk-default").unwrap());
        let team = Arc::new(Project::new(Some(&url), "pk-team", "sk-team").unwrap());
        let sink = Langfuse::new(Some(default), Some("r1".into()));
        let team_record = LogRecord {
            id: "t".into(),
            langfuse: Some(Arc::new(OwnProject { events: Events { success: true, failure: false }, project: team })),
            ..sample()
        };
        sink.send(&[Arc::new(sample()), Arc::new(team_record)]).await.unwrap();
        drop(sink);
        let got = server.await.unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        let auth =
            |pair: &str| format!("authorization: basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
        let (head, body) = &got[0];
        let head = head.to_ascii_lowercase();
        assert!(head.starts_with("post /api/public/ingestion "), "{head}");
        assert!(head.contains(&auth("pk-default:sk-default").to_ascii_lowercase()), "{head}");
        assert_eq!(body["batch"][0]["body"]["id"], "call-1");
        assert_eq!(body["batch"][0]["body"]["release"], "r1");
        let (head, body) = &got[1];
        assert!(head.to_ascii_lowercase().contains(&auth("pk-team:sk-team").to_ascii_lowercase()));
        assert_eq!(body["batch"][1]["id"], "t-generation");
    }

    /// A 207 listing errors is a failed delivery, its message shown, no key in it.
    #[tokio::test]
    async fn a_207_with_errors_fails_the_delivery() {
        let (url, _server) =
            stand_in(r#"{"successes":[],"errors":[{"id":"x","status":400,"message":"invalid body"}]}"#, 1).await;
        let sink = Langfuse::new(Some(Arc::new(Project::new(Some(&url), "pk", "sk-hidden").unwrap())), None);
        let e = sink.send(&[Arc::new(sample())]).await.unwrap_err();
        assert!(e.contains("invalid body") && !e.contains("sk-hidden"), "{e}");
    }
}
