//! OpenTelemetry traces (LiteLLM's `otel` callback, and `langfuse_otel`): each finished call's
//! record, carrying its [`Trace`](crate::trace::Trace), becomes a server span with a client span
//! per upstream attempt ([`spans`]), exported in batches over OTLP — HTTP with protobuf
//! ([`protobuf`]) or JSON ([`json`]) bodies, or gRPC ([`grpc`]) — or written to standard output
//! (`console`). Settings are read LiteLLM's way and the standard way ([`Settings::from_env`]).

pub mod grpc;
pub mod json;
pub mod protobuf;
pub mod spans;

use crate::collector::{http_url, Collector};
use crate::queue::Sink;
use crate::record::LogRecord;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use std::io::Write as _;
use std::sync::Arc;

/// How spans leave the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    HttpProtobuf,
    HttpJson,
    Grpc,
    /// One JSON span a line on standard output (LiteLLM's default exporter).
    Console,
}

/// The resource the spans come from, and the instrumentation scope's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub attributes: Vec<(String, String)>,
    pub scope_name: String,
}

/// Where and how to export.
#[derive(Clone, PartialEq, Eq)]
pub struct Settings {
    pub protocol: Protocol,
    /// The full URL spans are sent to (for gRPC, the collector's address).
    pub endpoint: String,
    /// Credentials as often as not: never printed.
    pub headers: Vec<(String, String)>,
    pub resource: Resource,
    /// Spans carry the prompt and the answer (`gen_ai.input.messages`, `gen_ai.output.messages`)
    /// when the records have them: `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`, as
    /// OpenTelemetry's GenAI instrumentations ask (off by default: content is often personal, and
    /// a 16 KB prompt per span costs more than the rest of the trace); always for
    /// `langfuse_otel`, whose whole use is reading them.
    pub capture_content: bool,
    /// `USE_OTEL_LITELLM_REQUEST_SPAN=true`: the call's attributes on a `litellm_request` span
    /// under the request's, as LiteLLM before 1.81 nested them ([`spans`]).
    pub request_span: bool,
    /// The request's own Langfuse keys as Langfuse's attributes (`langfuse_otel`).
    pub langfuse: bool,
}

/// Header values hidden.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Settings")
            .field("protocol", &self.protocol)
            .field("endpoint", &self.endpoint)
            .field("headers", &names)
            .field("resource", &self.resource)
            .field("capture_content", &self.capture_content)
            .field("request_span", &self.request_span)
            .finish()
    }
}

impl Settings {
    /// The `otel` callback's settings from the environment (`var` reads a variable). LiteLLM's
    /// names, and the standard ones, which win where both are set as LiteLLM has it:
    /// - protocol: `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`, `OTEL_EXPORTER_OTLP_PROTOCOL`,
    ///   `OTEL_EXPORTER` (`console`, `otlp_http`, `http/protobuf`, `http/json`, `otlp_grpc`,
    ///   `grpc`); without one, `console`, or `otlp_http` when an endpoint is set (LiteLLM);
    /// - endpoint: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it is, else
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_ENDPOINT` with `/v1/traces` made its path's end
    ///   (LiteLLM's normalisation); else the standard local collector;
    /// - headers: `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_HEADERS`
    ///   (`k=v,k2=v2`, values percent-decoded);
    /// - resource: `service.name` (`OTEL_SERVICE_NAME`, LiteLLM's default `litellm`),
    ///   `deployment.environment` (`OTEL_ENVIRONMENT_NAME`, `production`), `model_id`
    ///   (`OTEL_MODEL_ID`), then `OTEL_RESOURCE_ATTRIBUTES`; the scope is `OTEL_TRACER_NAME`
    ///   (`litellm`);
    /// - `USE_OTEL_LITELLM_REQUEST_SPAN` (`true`): the call's own `litellm_request` span.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let exact = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        let base = var("OTEL_EXPORTER_OTLP_ENDPOINT").or_else(|| var("OTEL_ENDPOINT"));
        let named = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .or_else(|| var("OTEL_EXPORTER"));
        let protocol = match named.as_deref() {
            None | Some("console") if exact.is_some() || base.is_some() => Protocol::HttpProtobuf,
            None | Some("console") => Protocol::Console,
            Some("otlp_http" | "http/protobuf") => Protocol::HttpProtobuf,
            Some("http/json") => Protocol::HttpJson,
            Some("otlp_grpc" | "grpc") => Protocol::Grpc,
            Some(other) => {
                return Err(format!(
                    "OTEL_EXPORTER / OTEL_EXPORTER_OTLP_PROTOCOL is \"{other}\", which sluice cannot export with; use otlp_http (http/protobuf), http/json, otlp_grpc (grpc) or console"
                ))
            }
        };
        let endpoint = match (exact, base, protocol) {
            (_, _, Protocol::Console) => String::new(),
            (Some(exact), _, _) => exact,
            (None, Some(base), Protocol::Grpc) => base,
            (None, Some(base), _) => traces_path(&base),
            (None, None, Protocol::Grpc) => "http://localhost:4317".into(),
            (None, None, _) => "http://localhost:4318/v1/traces".into(),
        };
        if protocol != Protocol::Console {
            http_url("OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_ENDPOINT)", &endpoint)?;
        }
        let headers = var("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
            .or_else(|| var("OTEL_EXPORTER_OTLP_HEADERS"))
            .or_else(|| var("OTEL_HEADERS"))
            .map(|h| pairs(&h))
            .unwrap_or_default();
        header_map(&headers, "OTEL_EXPORTER_OTLP_HEADERS (or OTEL_HEADERS)")?;
        let service = var("OTEL_SERVICE_NAME").unwrap_or_else(|| "litellm".into());
        let mut attributes = vec![
            ("service.name".to_string(), service.clone()),
            ("deployment.environment".to_string(), var("OTEL_ENVIRONMENT_NAME").unwrap_or_else(|| "production".into())),
            ("model_id".to_string(), var("OTEL_MODEL_ID").unwrap_or_else(|| service.clone())),
            ("telemetry.sdk.name".to_string(), "sluice".into()),
            ("telemetry.sdk.language".to_string(), "rust".into()),
            ("telemetry.sdk.version".to_string(), env!("CARGO_PKG_VERSION").into()),
        ];
        for (key, value) in var("OTEL_RESOURCE_ATTRIBUTES").map(|a| pairs(&a)).unwrap_or_default() {
            // `OTEL_SERVICE_NAME` wins over a `service.name` here, as the specification says.
            if key == "service.name" && var("OTEL_SERVICE_NAME").is_some() {
                continue;
            }
            match attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => attributes.push((key, value)),
            }
        }
        let scope_name = var("OTEL_TRACER_NAME").unwrap_or_else(|| "litellm".into());
        let capture_content =
            var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let request_span = var("USE_OTEL_LITELLM_REQUEST_SPAN").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Ok(Settings {
            protocol,
            endpoint,
            headers,
            resource: Resource { attributes, scope_name },
            capture_content,
            request_span,
            langfuse: false,
        })
    }

    /// `langfuse_otel`: Langfuse's OTLP endpoint (`{LANGFUSE_OTEL_HOST or LANGFUSE_HOST}` +
    /// `/api/public/otel/v1/traces`, LiteLLM's default host `https://us.cloud.langfuse.com`) with
    /// Basic auth from `LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY`, over HTTP/protobuf.
    pub fn langfuse(var: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        use base64::Engine as _;
        let var = |name: &str| var(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let (Some(public), Some(secret)) = (var("LANGFUSE_PUBLIC_KEY"), var("LANGFUSE_SECRET_KEY")) else {
            return Err("callback \"langfuse_otel\" needs LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY (a Langfuse project's keys), in the environment or under environment_variables".into());
        };
        let host = var("LANGFUSE_OTEL_HOST")
            .or_else(|| var("LANGFUSE_HOST"))
            .unwrap_or_else(|| "https://us.cloud.langfuse.com".into());
        let host = match host.starts_with("http://") || host.starts_with("https://") {
            true => host,
            false => format!("https://{host}"),
        };
        let endpoint = format!("{}/api/public/otel/v1/traces", host.trim_end_matches('/'));
        http_url("LANGFUSE_OTEL_HOST (or LANGFUSE_HOST)", &endpoint)?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"));
        let mut settings = Settings::from_env(|name| match name {
            // Langfuse's own settings replace the collector's; the resource is read as for `otel`.
            n if n.starts_with("OTEL_EXPORTER") || n == "OTEL_ENDPOINT" || n == "OTEL_HEADERS" => None,
            n => var(n),
        })?;
        settings.protocol = Protocol::HttpProtobuf;
        settings.endpoint = endpoint;
        settings.headers = vec![("Authorization".into(), format!("Basic {token}"))];
        settings.capture_content = true;
        settings.langfuse = true;
        Ok(settings)
    }
}

/// LiteLLM's `_normalize_otel_endpoint` for traces: the path ends in `/v1/traces`.
fn traces_path(endpoint: &str) -> String {
    let e = endpoint.trim_end_matches('/');
    if e.ends_with("/v1/traces") {
        return e.to_string();
    }
    for other in ["/v1/metrics", "/v1/logs"] {
        if let Some(stem) = e.strip_suffix(other) {
            return format!("{stem}/v1/traces");
        }
    }
    match e.ends_with("/v1") {
        true => format!("{e}/traces"),
        false => format!("{e}/v1/traces"),
    }
}

/// `k=v,k2=v2` into trimmed pairs, values percent-decoded (OpenTelemetry's format for headers
/// and resource attributes); an item without `=` is skipped.
fn pairs(text: &str) -> Vec<(String, String)> {
    text.split(',')
        .filter_map(|item| item.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), percent_decode(v.trim())))
        .filter(|(k, _)| !k.is_empty())
        .collect()
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The headers as a map, values marked sensitive; an error names `variable` and the header,
/// never its value.
fn header_map(headers: &[(String, String)], variable: &str) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("{variable}: \"{name}\" is not a valid header name; write name=value,name2=value2"))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("{variable}: the value of {name} is not a valid header value (value not shown)"))?;
        value.set_sensitive(true);
        map.append(name, value);
    }
    Ok(map)
}

/// The exporter: a [`Sink`] of logging records that sends their spans.
#[derive(Debug)]
pub struct Otlp {
    resource: Resource,
    transport: Transport,
    options: spans::Options,
}

#[derive(Debug)]
enum Transport {
    Http { collector: Collector, json: bool },
    Grpc(Box<grpc::Grpc>),
    Console,
}

impl Otlp {
    pub fn new(settings: &Settings) -> Result<Otlp, String> {
        let variable = "OTEL_EXPORTER_OTLP_HEADERS (or OTEL_HEADERS)";
        let mut headers = header_map(&settings.headers, variable)?;
        let transport = match settings.protocol {
            Protocol::Console => Transport::Console,
            Protocol::Grpc => Transport::Grpc(Box::new(grpc::Grpc::new(&settings.endpoint, headers)?)),
            Protocol::HttpProtobuf | Protocol::HttpJson => {
                let json = settings.protocol == Protocol::HttpJson;
                let content_type = if json { "application/json" } else { "application/x-protobuf" };
                headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                let endpoint = http_url("OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_ENDPOINT)", &settings.endpoint)?;
                Transport::Http { collector: Collector::new(endpoint, headers), json }
            }
        };
        let options = spans::Options {
            content: settings.capture_content,
            request_span: settings.request_span,
            langfuse: settings.langfuse,
        };
        Ok(Otlp { resource: settings.resource.clone(), transport, options })
    }
}

impl Sink for Otlp {
    async fn send(&self, batch: &[Arc<LogRecord>]) -> Result<(), String> {
        // What each request said for Langfuse, read here (off the request path); the spans
        // borrow from it.
        let asked: Vec<_> = batch.iter().map(|r| r.request_metadata.as_deref().map(|c| c.read())).collect();
        let mut spans = Vec::with_capacity(batch.len() * 2);
        for (record, asked) in batch.iter().zip(&asked) {
            spans::of_record(record, asked.as_ref(), self.options, &mut spans);
        }
        if spans.is_empty() {
            return Ok(());
        }
        match &self.transport {
            Transport::Http { collector, json: false } => {
                collector.post(Bytes::from(protobuf::export_request(&self.resource, &spans))).await
            }
            Transport::Http { collector, json: true } => {
                let body = serde_json::to_vec(&json::export_request(&self.resource, &spans))
                    .map_err(|e| format!("cannot encode the spans: {e}"))?;
                collector.post(Bytes::from(body)).await
            }
            Transport::Grpc(grpc) => grpc.export(protobuf::export_request(&self.resource, &spans)).await,
            Transport::Console => {
                let mut out = std::io::stdout().lock();
                for span in &spans {
                    let _ = writeln!(out, "{}", json::span(span));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn litellms_variables_and_the_standard_ones() {
        let s = Settings::from_env(env(&[])).unwrap();
        assert_eq!(s.protocol, Protocol::Console);
        let s = Settings::from_env(env(&[("OTEL_EXPORTER", "otlp_http"), ("OTEL_ENDPOINT", "http://c:4318")])).unwrap();
        assert_eq!((s.protocol, s.endpoint.as_str()), (Protocol::HttpProtobuf, "http://c:4318/v1/traces"));
        // An endpoint alone means OTLP/HTTP, as LiteLLM infers.
        let s = Settings::from_env(env(&[("OTEL_ENDPOINT", "http://c:4318/v1/logs")])).unwrap();
        assert_eq!((s.protocol, s.endpoint.as_str()), (Protocol::HttpProtobuf, "http://c:4318/v1/traces"));
        let s = Settings::from_env(env(&[
            ("OTEL_EXPORTER", "otlp_http"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/v1/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "Authorization=Bearer%20abc, x-team = blue"),
            ("OTEL_SERVICE_NAME", "gateway"),
            ("OTEL_RESOURCE_ATTRIBUTES", "service.name=ignored,team=ml%2Fops"),
        ]))
        .unwrap();
        assert_eq!((s.protocol, s.endpoint.as_str()), (Protocol::HttpJson, "http://c:4318/v1/traces"));
        assert_eq!(s.headers, [("Authorization".into(), "Bearer abc".into()), ("x-team".into(), "blue".into())]);
        let attr = |k: &str| s.resource.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(attr("service.name").as_deref(), Some("gateway"));
        assert_eq!(attr("team").as_deref(), Some("ml/ops"));
        assert!(!format!("{s:?}").contains("abc"), "{s:?}");
        let s = Settings::from_env(env(&[("OTEL_EXPORTER", "grpc"), ("OTEL_ENDPOINT", "http://c:4317")])).unwrap();
        assert_eq!((s.protocol, s.endpoint.as_str()), (Protocol::Grpc, "http://c:4317"));
        let s = Settings::from_env(env(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c/custom")])).unwrap();
        assert_eq!(s.endpoint, "http://c/custom");
    }

    #[test]
    fn settings_that_cannot_export_stop_the_start() {
        let e = Settings::from_env(env(&[("OTEL_EXPORTER", "zipkin")])).unwrap_err();
        assert!(e.contains("otlp_http"), "{e}");
        let e = Settings::from_env(env(&[("OTEL_EXPORTER", "otlp_http"), ("OTEL_ENDPOINT", "collector:4318")]))
            .unwrap_err();
        assert!(e.contains("OTEL_ENDPOINT"), "{e}");
        let e =
            Settings::from_env(env(&[("OTEL_ENDPOINT", "http://c"), ("OTEL_HEADERS", "bad name=secret")])).unwrap_err();
        assert!(e.contains("OTEL_HEADERS") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn langfuse_otel_is_langfuses_endpoint_with_basic_auth() {
        let e = Settings::langfuse(env(&[])).unwrap_err();
        assert!(e.contains("LANGFUSE_PUBLIC_KEY"), "{e}");
        let s = Settings::langfuse(env(&[
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-1"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-1"),
            ("LANGFUSE_HOST", "http://127.0.0.1:3000/"),
            ("OTEL_ENDPOINT", "http://elsewhere:4318"),
        ]))
        .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:3000/api/public/otel/v1/traces");
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        // base64("pk-lf-1:sk-lf-1")
        assert_eq!(s.headers, [("Authorization".into(), "Basic cGstbGYtMTpzay1sZi0x".into())]);
    }
}
