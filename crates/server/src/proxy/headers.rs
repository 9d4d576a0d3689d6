//! The `x-litellm-*` response headers and the upstream's headers forwarded under `llm_provider-`.

use super::answer::UpstreamHeaders;
use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use rustc_hash::FxHashMap;
use std::cell::RefCell;
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
const RESPONSE_COST: HeaderName = HeaderName::from_static("x-litellm-response-cost");
pub const RATELIMIT_REMAINING_REQUESTS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
pub const RATELIMIT_REMAINING_TOKENS: HeaderName = HeaderName::from_static("x-ratelimit-remaining-tokens");

/// Room for what an answer usually carries (the upstream's headers twice over, plus ours: 21 for
/// an OpenAI-style upstream), so the map is sized once instead of growing three or four times.
/// 24 is the most a 32-slot map holds; asking for more doubles it, and that costs every idle
/// connection, not only the request: hyper keeps each connection's last response map to parse
/// the next request into (~5 KB for 48 entries, ~2.5 KB for 24).
const TYPICAL_RESPONSE_HEADERS: usize = 24;

/// What the response headers report about one call.
pub struct CallMeta {
    pub call_id: HeaderValue,
    /// `call_id` is the client's own `x-litellm-call-id`, not one sluice made.
    pub client_call_id: bool,
    pub started: Instant,
    pub model_id: Option<HeaderValue>,
    pub api_base: Option<HeaderValue>,
    /// Time spent waiting on the upstream, subtracted to report the gateway's own overhead.
    pub upstream: Duration,
    /// Metrics handles of the deployment that served (or failed) last.
    pub deployment: Option<sluice_metrics::DeploymentMetrics>,
    /// The request's outcome has been recorded in the metrics already.
    pub recorded: bool,
    /// Whom the request is billed to, once admitted.
    pub charge: Option<std::sync::Arc<crate::access::charge::Charge>>,
    /// `x-litellm-response-cost`, once the usage is known before the headers go out.
    pub cost: Option<f64>,
    /// The response's head is written by `listen::direct`: [`CallMeta::finish`] hands it the
    /// upstream's headers and ours as lines ([`HeadLines`], in `lines`) instead of a header
    /// map's entries.
    pub head_lines: bool,
    pub lines: Option<HeadLines>,
}

/// A fresh call id, written into `buf`: a UUID, version 7 (time-ordered), because the id keys the
/// spend-log row, and ids that grow with time keep the table's index appending instead of
/// scattering writes over its whole B-tree.
pub fn new_call_id(buf: &mut [u8; uuid::fmt::Hyphenated::LENGTH]) -> &str {
    uuid::Uuid::now_v7().hyphenated().encode_lower(buf)
}

/// Response headers already written as `name: value\r\n` lines, for a response whose head
/// `listen::direct` writes itself. Inserting them into the header map hashed every name (a
/// multiply per byte, ~730 bytes of names per answer): ~9k instructions of a proxied request.
#[derive(Clone, Default)]
pub struct HeadLines(pub Vec<u8>);

impl HeadLines {
    fn push(&mut self, name: &[u8], value: &[u8]) {
        super::push_field(&mut self.0, name, value);
    }

    pub fn push_header(&mut self, name: &HeaderName, value: &HeaderValue) {
        self.push(name.as_str().as_bytes(), value.as_bytes());
    }

    /// A line for an upstream's field: `prefix` and the name in lower case, as `http`'s names
    /// are (an HTTP/1.1 upstream may spell them with capitals).
    fn push_lower(&mut self, prefix: &[u8], name: &[u8], value: &[u8]) {
        let start = self.0.len() + prefix.len();
        self.0.extend_from_slice(prefix);
        self.push(name, value);
        self.0[start..start + name.len()].make_ascii_lowercase();
    }
}

impl CallMeta {
    /// Honours a client-supplied `x-litellm-call-id` (as newer LiteLLM does), else a fresh id
    /// ([`new_call_id`]).
    pub fn new(request_headers: &HeaderMap, started: Instant) -> Self {
        let client = request_headers.get(CALL_ID).filter(|v| !v.is_empty() && v.len() <= 128).cloned();
        let client_call_id = client.is_some();
        let call_id = client.unwrap_or_else(|| {
            let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
            HeaderValue::from_str(new_call_id(&mut buf)).expect("a uuid is a valid header value")
        });
        CallMeta {
            call_id,
            client_call_id,
            started,
            model_id: None,
            api_base: None,
            upstream: Duration::ZERO,
            deployment: None,
            recorded: false,
            charge: None,
            cost: None,
            head_lines: false,
            lines: None,
        }
    }

    /// The calling key's metrics labels, when a virtual key is calling.
    pub fn caller(&self) -> Option<&sluice_metrics::Caller> {
        self.charge.as_ref()?.admission().key.as_ref()?.caller.as_ref()
    }

    pub fn apply(&self, out: &mut HeaderMap) {
        self.each(|name, value| {
            if let Some(value) = value.header() {
                out.insert(name, value);
            }
        });
    }

    /// Adds the upstream's headers (see [`forward_upstream`]) and ours to `resp`: as lines (kept
    /// in `self.lines`, not in the response's extensions, which cost three allocations) when
    /// `listen::direct` writes the head, else into its header map. `x-litellm-attempted-retries`
    /// is left to the caller, which knows the count ([`super::proxy_body`] sets it on every
    /// response that comes through here).
    pub fn finish<B>(&mut self, upstream: Option<&UpstreamHeaders>, resp: &mut http::Response<B>) {
        if !self.head_lines {
            if let Some(up) = upstream {
                forward_upstream(up, resp.headers_mut());
            }
            self.apply(resp.headers_mut());
            return;
        }
        let mut lines = HeadLines(Vec::with_capacity(1024));
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
        self.each(|name, value| {
            if name != ATTEMPTED_RETRIES {
                lines.push(name.as_str().as_bytes(), value.bytes());
            }
        });
        self.lines = Some(lines);
    }

    /// Every `x-litellm-*` header of the call, then the key's rate-limit headers, each name once
    /// (the lines write what they are given; the map's `insert` would hide a repeat). Values made
    /// here (durations, cost) come as text, so the lines need no header value built for them.
    fn each(&self, mut put: impl FnMut(HeaderName, Value<'_>)) {
        put(CALL_ID, Value::Header(&self.call_id));
        if let Some(id) = &self.model_id {
            put(MODEL_ID, Value::Header(id));
        }
        if let Some(base) = &self.api_base {
            put(MODEL_API_BASE, Value::Header(base));
        }
        put(ATTEMPTED_RETRIES, Value::Text(b"0"));
        let total = self.started.elapsed();
        let mut buf = [0u8; 48];
        put(RESPONSE_DURATION, Value::Text(millis(total, &mut buf)));
        put(OVERHEAD_DURATION, Value::Text(millis(total.saturating_sub(self.upstream), &mut buf)));
        if let Some(cost) = self.cost {
            let mut text = std::io::Cursor::new([0u8; 48]);
            if write!(text, "{cost}").is_ok() {
                let len = text.position() as usize;
                put(RESPONSE_COST, Value::Text(&text.get_ref()[..len]));
            }
        }
        if let Some(charge) = &self.charge {
            for (name, value) in &charge.admission().headers {
                put(name.clone(), Value::Header(value));
            }
        }
    }
}

/// A response header's value as [`CallMeta::each`] gives it.
enum Value<'a> {
    Header(&'a HeaderValue),
    /// Digits and dots: always a valid header value.
    Text(&'a [u8]),
}

impl Value<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Value::Header(v) => v.as_bytes(),
            Value::Text(t) => t,
        }
    }

    fn header(&self) -> Option<HeaderValue> {
        match self {
            Value::Header(v) => Some((*v).clone()),
            Value::Text(t) => HeaderValue::from_bytes(t).ok(),
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

thread_local! {
    /// Upstream header names as upstreams spell them, with their `llm_provider-<name>` forms,
    /// built once per thread: building a name that is not one of `http`'s standard ones
    /// allocates. A fast hasher: the keys come from the configured upstreams' answers, not from
    /// clients.
    static NAMES: RefCell<FxHashMap<Box<[u8]>, ForwardedNames>> = RefCell::new(FxHashMap::default());
}

/// An upstream header's name, and the `llm_provider-` one it is forwarded under.
type ForwardedNames = (HeaderName, HeaderName);

/// Names kept in [`NAMES`], at most.
const NAMES_KEPT: usize = 256;

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

/// Copies the upstream's headers: every one under `llm_provider-`, and OpenAI's rate-limit headers
/// also as they are.
pub fn forward_upstream(upstream: &UpstreamHeaders, out: &mut HeaderMap) {
    NAMES.with(|cache| {
        let mut cache = cache.borrow_mut();
        // Every answer that carries upstream headers passes here first, streamed or not.
        out.reserve(TYPICAL_RESPONSE_HEADERS.saturating_sub(out.len()));
        upstream.for_each_value(|name, value| {
            let Some(also_as_is) = forwarded(name) else { return };
            let (plain, prefixed) = match cache.get(name) {
                Some(names) => names.clone(),
                None => {
                    let lower = name.to_ascii_lowercase();
                    let (Ok(plain), Ok(prefixed)) = (
                        HeaderName::from_bytes(&lower),
                        HeaderName::from_bytes(&[b"llm_provider-", &lower[..]].concat()),
                    ) else {
                        return;
                    };
                    if cache.len() < NAMES_KEPT {
                        cache.insert(name.into(), (plain.clone(), prefixed.clone()));
                    }
                    (plain, prefixed)
                }
            };
            if also_as_is {
                out.append(plain, value.clone());
            }
            out.append(prefixed, value);
        });
    });
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

    #[test]
    fn forwards_with_prefix_and_copies_rate_limits() {
        let up = UpstreamHeaders::Map(upstream_headers());
        let mut out = HeaderMap::new();
        forward_upstream(&up, &mut out);
        assert_eq!(out["llm_provider-openai-processing-ms"], "12");
        assert_eq!(out["x-ratelimit-remaining-requests"], "99");
        assert_eq!(out["llm_provider-x-ratelimit-remaining-requests"], "99");
        assert!(out.get("llm_provider-transfer-encoding").is_none());
        assert_eq!(out.get_all("llm_provider-set-cookie").iter().count(), 2);
    }

    #[test]
    fn call_meta_headers() {
        let meta = CallMeta::new(&HeaderMap::new(), Instant::now());
        let mut out = HeaderMap::new();
        meta.apply(&mut out);
        assert_eq!(out["x-litellm-call-id"].len(), 36);
        assert_eq!(out["x-litellm-attempted-retries"], "0");
        assert!(out["x-litellm-response-duration-ms"].to_str().unwrap().parse::<f64>().is_ok());
    }

    #[test]
    fn head_lines_carry_what_the_header_map_gets() {
        // As hyper's HTTP/2 map gives them, and as an HTTP/1.1 head spelled them.
        head_lines_match_the_map(UpstreamHeaders::Map(upstream_headers()));
        head_lines_match_the_map(crate::proxy::answer::raw(
            "OpenAI-Processing-Ms: 12\r\nX-RateLimit-Remaining-Requests: 99\r\nSet-Cookie: a=1\r\n\
             set-cookie: b=2\r\nTransfer-Encoding: chunked\r\n",
        ));
    }

    fn head_lines_match_the_map(up: UpstreamHeaders) {
        let mut meta = CallMeta::new(&HeaderMap::new(), Instant::now());
        meta.model_id = Some(HeaderValue::from_static("m1"));
        meta.cost = Some(0.25);
        let mut mapped = http::Response::new(());
        meta.finish(Some(&up), &mut mapped);
        meta.head_lines = true;
        let mut lined = http::Response::new(());
        meta.finish(Some(&up), &mut lined);
        let lines = String::from_utf8(meta.lines.take().unwrap().0).unwrap();
        let mut from_lines: Vec<(String, String)> = lines
            .split_terminator("\r\n")
            .map(|l| l.split_once(": ").map(|(n, v)| (n.to_string(), v.to_string())).unwrap())
            .collect();
        // The caller sets the retry count on both; durations differ by the time between calls.
        let mut from_map: Vec<(String, String)> = mapped
            .headers()
            .iter()
            .filter(|(n, _)| *n != ATTEMPTED_RETRIES)
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        for pairs in [&mut from_lines, &mut from_map] {
            for (name, value) in pairs.iter_mut() {
                if name.ends_with("-duration-ms") {
                    value.clear();
                }
            }
            pairs.sort();
        }
        assert_eq!(from_lines, from_map);
        assert!(from_lines.contains(&("llm_provider-set-cookie".into(), "b=2".into())));
        assert!(from_lines.contains(&("x-ratelimit-remaining-requests".into(), "99".into())));
        assert!(from_lines.contains(&("llm_provider-openai-processing-ms".into(), "12".into())));
        assert!(from_lines.iter().all(|(n, _)| !n.contains("transfer-encoding")));
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
