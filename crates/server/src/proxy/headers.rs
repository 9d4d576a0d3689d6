//! The `x-litellm-*` response headers and the upstream's headers forwarded under `llm_provider-`.

use super::answer::UpstreamHeaders;
use crate::exchange::Lines;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use std::io::Write as _;
use std::time::{Duration, Instant};

// Names built once: inserting by `&str` would parse and validate the name on every request.
pub const CALL_ID: HeaderName = HeaderName::from_static("x-litellm-call-id");
const MODEL_ID: HeaderName = HeaderName::from_static("x-litellm-model-id");
const MODEL_API_BASE: HeaderName = HeaderName::from_static("x-litellm-model-api-base");
pub const ATTEMPTED_RETRIES: HeaderName = HeaderName::from_static("x-litellm-attempted-retries");
pub const MAX_RETRIES: HeaderName = HeaderName::from_static("x-litellm-max-retries");
pub const ATTEMPTED_FALLBACKS: HeaderName = HeaderName::from_static("x-litellm-attempted-fallbacks");
const RESPONSE_DURATION: HeaderName = HeaderName::from_static("x-litellm-response-duration-ms");
const OVERHEAD_DURATION: HeaderName = HeaderName::from_static("x-litellm-overhead-duration-ms");
const MODEL_REGION: HeaderName = HeaderName::from_static("x-litellm-model-region");
const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
/// LiteLLM's per-request timeout header (seconds), read from requests.
pub const TIMEOUT: HeaderName = HeaderName::from_static("x-litellm-timeout");
pub const RATELIMIT_REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
pub const RATELIMIT_REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");

/// What a request knows: fixed before its first attempt, read by every attempt.
pub struct Facts {
    pub call_id: HeaderValue,
    /// `call_id` is the client's own `x-litellm-call-id`, not one sluice made.
    pub client_call_id: bool,
    /// When the request's head arrived: its durations count from here.
    pub received: Instant,
    /// Whom the request is billed to (the key, the model group), once admitted.
    pub charge: Option<std::sync::Arc<sluice_access::charge::Charge>>,
    /// The request's trace while an OpenTelemetry callback runs (`super::trace_context`), until
    /// its bill takes it over (`Charge::trace`).
    pub trace: Option<sluice_export::trace::TraceContext>,
}

/// What the attempts at a request produced, for its response headers and its metrics.
#[derive(Default)]
pub struct Outcome {
    pub model_id: Option<HeaderValue>,
    pub api_base: Option<HeaderValue>,
    /// Time spent waiting on the upstream, subtracted to report the gateway's own overhead.
    /// Measured by the attempt around its upstream call (`attempt::UpstreamClock`), nowhere else.
    pub upstream: Duration,
    /// Metrics handles of the deployment that served (or failed) last.
    pub deployment: Option<sluice_metrics::DeploymentMetrics>,
    /// The current attempt's span and when it began (Unix ns), while the request is traced:
    /// its id goes upstream in `traceparent`.
    pub attempt_span: Option<(sluice_export::trace::SpanId, u64)>,
    /// The request's outcome has been recorded in the metrics already.
    pub recorded: bool,
    /// `x-litellm-response-cost`, once the usage is known before the headers go out.
    pub cost: Option<f64>,
    /// When the first upstream call went out: the end of LiteLLM's queue time
    /// (`litellm_request_queue_time_seconds`).
    pub first_sent: Option<std::time::Instant>,
}

/// A fresh call id, written into `buf`: a UUID, version 7 (time-ordered), because the id keys the
/// spend-log row, and ids that grow with time keep the table's index appending instead of
/// scattering writes over its whole B-tree.
pub fn new_call_id(buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
    uuid::Uuid::now_v7().hyphenated().encode_lower(buf)
}

impl Facts {
    /// Honours a client-supplied `x-litellm-call-id` (as newer LiteLLM does), else a fresh id
    /// ([`new_call_id`]).
    pub fn new(request_headers: &HeaderMap, received: Instant) -> Self {
        let client = request_headers.get(CALL_ID).filter(|v| !v.is_empty() && v.len() <= 128).cloned();
        let client_call_id = client.is_some();
        let call_id = client.unwrap_or_else(|| {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            HeaderValue::from_str(new_call_id(&mut buf)).expect("a uuid is a valid header value")
        });
        Facts { call_id, client_call_id, received, charge: None, trace: None }
    }

    /// The request's trace, before or after its bill took it over.
    pub fn trace(&self) -> Option<&sluice_export::trace::TraceContext> {
        self.trace.as_ref().or_else(|| self.charge.as_ref()?.trace())
    }

    /// The calling key's metrics labels, when a virtual key is calling.
    pub fn caller(&self) -> Option<&sluice_metrics::Caller> {
        self.charge.as_ref()?.admission().key.as_ref()?.caller.as_ref()
    }
}

/// The end user's `allowed_model_region` (`eu` or `us`, checked when it was set), when the
/// request names an end user held to one: the router keeps it there, and the answer says so in
/// `x-litellm-model-region`, as LiteLLM's does.
pub fn model_region(facts: &Facts) -> Option<&str> {
    let end_user = facts.charge.as_ref()?.admission().end_user.as_ref()?;
    end_user.record.allowed_model_region.as_deref().filter(|r| sluice_router::Region::parse(r).is_some())
}

/// The upstream's headers (see [`forwarded`]) and ours, as lines. `retries` is the
/// `x-litellm-attempted-retries` value to write in its place; `None` leaves it to the caller,
/// which knows the count ([`super::proxy_body`] adds it to every answer that comes through it).
pub fn lines(facts: &Facts, outcome: &Outcome, upstream: Option<&UpstreamHeaders>, retries: Option<&[u8]>) -> Lines {
    let mut lines = Lines::with_capacity(1024);
    if let Some(up) = upstream {
        up.for_each(|name, value| {
            if let Some(also_as_is) = forwarded(name) {
                if also_as_is {
                    lines.push_lower(b"", name, value);
                }
                lines.push_lower(b"llm_provider-", name, value);
            }
        });
    }
    each(facts, outcome, |name, value| {
        if name != ATTEMPTED_RETRIES {
            lines.push(name.as_str().as_bytes(), value.bytes());
        } else if let Some(retries) = retries {
            lines.push(name.as_str().as_bytes(), retries);
        }
    });
    lines
}

/// Every `x-litellm-*` header of the call, then the key's rate-limit headers, each name once
/// (the lines write what they are given). Values made here (durations, cost) come as text, so
/// the lines need no header value built for them.
fn each(facts: &Facts, outcome: &Outcome, mut put: impl FnMut(HeaderName, Value<'_>)) {
    put(CALL_ID, Value::Header(&facts.call_id));
    if let Some(id) = &outcome.model_id {
        put(MODEL_ID, Value::Header(id));
    }
    if let Some(base) = &outcome.api_base {
        put(MODEL_API_BASE, Value::Header(base));
    }
    if let Some(region) = model_region(facts) {
        put(MODEL_REGION, Value::Text(region.as_bytes()));
    }
    put(ATTEMPTED_RETRIES, Value::Text(b"0"));
    let total = facts.received.elapsed();
    let mut buf = [0u8; 48];
    put(RESPONSE_DURATION, Value::Text(millis(total, &mut buf)));
    put(OVERHEAD_DURATION, Value::Text(millis(total.saturating_sub(outcome.upstream), &mut buf)));
    if let Some(cost) = outcome.cost {
        let mut text = std::io::Cursor::new([0u8; 48]);
        if write!(text, "{cost}").is_ok() {
            let len = text.position() as usize;
            put(RESPONSE_COST, Value::Text(&text.get_ref()[..len]));
        }
    }
    if let Some(charge) = &facts.charge {
        for (name, value) in &charge.admission().headers {
            put(name.clone(), Value::Header(value));
        }
    }
}

/// A response header's value as [`each`] gives it.
enum Value<'a> {
    Header(&'a HeaderValue),
    /// Digits and dots, or a region name checked to be `eu`/`us`: always a valid header value.
    Text(&'a [u8]),
}

impl Value<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Value::Header(v) => v.as_bytes(),
            Value::Text(t) => t,
        }
    }
}

/// A count as a header value: the small ones every answer carries (retries attempted and
/// allowed) without the allocation `HeaderValue::from(u32)` makes.
pub fn count(n: u32) -> HeaderValue {
    const SMALL: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
    match SMALL.get(n as usize) {
        Some(digit) => HeaderValue::from_static(digit),
        None => HeaderValue::from(n),
    }
}

/// Milliseconds with three decimals (`12.345`), written with integer arithmetic: float
/// formatting was a visible share of a request's instructions.
fn millis(d: Duration, buf: &mut [u8; 48]) -> &[u8] {
    let micros = d.as_micros();
    let mut at = buf.len();
    let mut put = |digit: u128| {
        at -= 1;
        buf[at] = b'0' + digit as u8;
    };
    let (mut whole, mut frac) = (micros / 1000, micros % 1000);
    for _ in 0..3 {
        put(frac % 10);
        frac /= 10;
    }
    at -= 1;
    buf[at] = b'.';
    loop {
        at -= 1;
        buf[at] = b'0' + (whole % 10) as u8;
        whole /= 10;
        if whole == 0 {
            break;
        }
    }
    &buf[at..]
}

/// Whether an upstream header goes to the client: `None` for hop-by-hop ones, else whether it
/// also goes as it is (OpenAI's rate-limit headers) besides under `llm_provider-`. Names in any
/// case.
fn forwarded(name: &[u8]) -> Option<bool> {
    (!hop_by_hop(name)).then(|| name.len() >= 12 && name[..12].eq_ignore_ascii_case(b"x-ratelimit-"))
}

/// Connection, Keep-Alive, Transfer-Encoding, Upgrade, Proxy-Connection, TE and Trailer: picked
/// by length first, as every answer's every field is checked.
fn hop_by_hop(name: &[u8]) -> bool {
    let is = |hop: &[u8]| name.eq_ignore_ascii_case(hop);
    match name.len() {
        2 => is(b"te"),
        7 => is(b"upgrade") || is(b"trailer"),
        10 => is(b"connection") || is(b"keep-alive"),
        16 => is(b"proxy-connection"),
        17 => is(b"transfer-encoding"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream's answer headers: its own, a rate-limit one, a repeated one, a hop-by-hop one.
    fn upstream_headers() -> HeaderMap {
        let mut up = HeaderMap::new();
        up.insert("openai-processing-ms", "12".parse().unwrap());
        up.insert("x-ratelimit-remaining-requests", "99".parse().unwrap());
        up.append("set-cookie", "a=1".parse().unwrap());
        up.append("set-cookie", "b=2".parse().unwrap());
        up.insert("transfer-encoding", "chunked".parse().unwrap());
        up
    }

    #[test]
    fn hop_by_hop_fields_stay_behind_in_any_case() {
        for name in ["connection", "Keep-Alive", "TRANSFER-ENCODING", "upgrade", "Proxy-Connection", "te", "Trailer"] {
            assert_eq!(forwarded(name.as_bytes()), None, "{name}");
        }
        for name in ["content-type", "tee", "trailers", "x-connection", "openai-version"] {
            assert_eq!(forwarded(name.as_bytes()), Some(false), "{name}");
        }
        assert_eq!(forwarded(b"X-RateLimit-Limit-Tokens"), Some(true));
        assert_eq!(forwarded(b"x-ratelimit"), Some(false));
    }

    /// The lines as `(name, value)` pairs.
    fn pairs(lines: &Lines) -> Vec<(String, String)> {
        lines
            .iter()
            .map(|(n, v)| (String::from_utf8(n.to_vec()).unwrap(), String::from_utf8(v.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn forwards_with_prefix_and_copies_rate_limits() {
        let up = UpstreamHeaders::Map(upstream_headers());
        let facts = Facts::new(&HeaderMap::new(), Instant::now());
        let out = pairs(&lines(&facts, &Outcome::default(), Some(&up), None));
        let has = |n: &str, v: &str| out.contains(&(n.to_string(), v.to_string()));
        assert!(has("llm_provider-openai-processing-ms", "12"));
        assert!(has("x-ratelimit-remaining-requests", "99"));
        assert!(has("llm_provider-x-ratelimit-remaining-requests", "99"));
        assert!(out.iter().all(|(n, _)| !n.contains("transfer-encoding")));
        assert_eq!(out.iter().filter(|(n, _)| n == "llm_provider-set-cookie").count(), 2);
        assert!(out.iter().all(|(n, _)| *n != ATTEMPTED_RETRIES.as_str()), "left to the caller");
    }

    #[test]
    fn call_headers() {
        let facts = Facts::new(&HeaderMap::new(), Instant::now());
        let out = pairs(&lines(&facts, &Outcome::default(), None, Some(b"0")));
        let get = |name: &str| out.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(get("x-litellm-call-id").len(), 36);
        assert_eq!(get("x-litellm-attempted-retries"), "0");
        assert!(get("x-litellm-response-duration-ms").parse::<f64>().is_ok());
    }

    #[test]
    fn upstream_fields_read_the_same_from_a_raw_head_and_from_a_map() {
        // As hyper's HTTP/2 map gives them, and as an HTTP/1.1 head spelled them.
        let facts = Facts::new(&HeaderMap::new(), Instant::now());
        let outcome =
            Outcome { model_id: Some(HeaderValue::from_static("m1")), cost: Some(0.25), ..Outcome::default() };
        let rendered = |up: UpstreamHeaders| {
            let mut p = pairs(&lines(&facts, &outcome, Some(&up), None));
            for (name, value) in p.iter_mut() {
                if name.ends_with("-duration-ms") {
                    value.clear();
                }
            }
            p.sort();
            p
        };
        let from_map = rendered(UpstreamHeaders::Map(upstream_headers()));
        let from_raw = rendered(crate::proxy::answer::raw(
            "OpenAI-Processing-Ms: 12\r\nX-RateLimit-Remaining-Requests: 99\r\nSet-Cookie: a=1\r\n\
             set-cookie: b=2\r\nTransfer-Encoding: chunked\r\n",
        ));
        assert_eq!(from_map, from_raw);
        assert!(from_raw.contains(&("x-litellm-model-id".into(), "m1".into())));
        assert!(from_raw.contains(&("x-litellm-response-cost".into(), "0.25".into())));
    }

    #[test]
    fn counts() {
        for n in [0, 1, 9, 10, 12345, u32::MAX] {
            assert_eq!(count(n), n.to_string().as_str());
        }
    }

    #[test]
    fn millis_have_three_decimals() {
        let mut buf = [0u8; 48];
        assert_eq!(millis(Duration::from_micros(12_345), &mut buf), b"12.345");
        assert_eq!(millis(Duration::from_micros(7), &mut buf), b"0.007");
        assert_eq!(millis(Duration::from_nanos(999), &mut buf), b"0.000");
        assert_eq!(millis(Duration::from_secs(90), &mut buf), b"90000.000");
        let most = Duration::MAX.as_micros();
        assert_eq!(millis(Duration::MAX, &mut buf), format!("{}.{:03}", most / 1000, most % 1000).as_bytes());
    }
}
