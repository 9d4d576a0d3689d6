//! One log line per request, as LiteLLM's uvicorn prints one: method, path, status and latency,
//! and for the model routes the requested model, the calling key's alias (never the key) and the
//! call id. At `info`, under the target `sluice::access`, so `RUST_LOG=info,sluice::access=off`
//! silences it too; `sluice_settings.access_log: false` turns it off at no cost.
//!
//! The model routes write their line where the request is served (`proxy`), which knows the
//! model and the caller; every other route gets its line from [`layer`]. The latency is to the
//! answer's head, as uvicorn's line is written when the response starts: a stream's line comes
//! when its first bytes go out.

use crate::app::App;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Duration;

/// What one line says. Empty strings are shown as `-`.
pub(crate) struct Line<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub latency: Duration,
    pub model: &'a str,
    pub key_alias: &'a str,
    pub call_id: &'a str,
}

/// Longest model name or path written: both come from the client (a model name can be as long
/// as the body), and one request must not make one huge log line.
const MAX_FIELD: usize = 256;

/// `s`, or `-` when empty, cut to [`MAX_FIELD`] bytes on a character boundary.
fn shown(s: &str) -> &str {
    if s.is_empty() {
        return "-";
    }
    let mut end = s.len().min(MAX_FIELD);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes `line` to the log. The path goes without its query string, which can carry a key
/// (`/key/info?key=sk-...`).
pub(crate) fn write(line: &Line<'_>) {
    // Whole microseconds, so the milliseconds print with at most three decimals.
    let micros = line.latency.as_micros().min(1 << 52) as f64;
    let path = shown(line.path);
    // `"POST /chat/completions" 200`, put together by hand: a format string's machinery was a
    // visible part of the line's cost. A field named `message` is the line's message.
    let mut message = String::with_capacity(line.method.len() + path.len() + 8);
    message.push('"');
    message.push_str(line.method);
    message.push(' ');
    message.push_str(path);
    message.push_str("\" ");
    // Decimal digits are ASCII.
    message
        .push_str(std::str::from_utf8(sluice_wire::decimal::digits(line.status.into(), &mut [0; 20])).unwrap_or("0"));
    tracing::info!(
        target: "sluice::access",
        message = message.as_str(),
        method = line.method,
        path = path,
        status = line.status,
        latency_ms = micros / 1000.0,
        model = shown(line.model),
        key_alias = shown(line.key_alias),
        call_id = shown(line.call_id),
    );
}

/// The access line of a request to a model route, from what the request knew.
pub(crate) fn proxied(method: &http::Method, path: &str, status: u16, facts: &crate::proxy::headers::Facts) {
    let charge = facts.charge.as_deref();
    write(&Line {
        method: method.as_str(),
        path,
        status,
        latency: facts.received.elapsed(),
        model: charge.map(|c| c.model_group()).unwrap_or(""),
        key_alias: charge
            .and_then(|c| c.admission().key.as_ref())
            .and_then(|k| k.record.key_alias.as_deref())
            .unwrap_or(""),
        call_id: facts.call_id.to_str().unwrap_or(""),
    });
}

/// The access line of a request to a route other than the model routes.
pub(crate) async fn layer(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if !app.access_log {
        return next.run(req).await;
    }
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let resp = next.run(req).await;
    write(&Line {
        method: method.as_str(),
        path: uri.path(),
        status: resp.status().as_u16(),
        latency: started.elapsed(),
        model: "",
        key_alias: "",
        call_id: "",
    });
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_chosen_fields_are_cut_short_on_a_character_boundary() {
        assert_eq!(shown(""), "-");
        assert_eq!(shown("gpt-4o"), "gpt-4o");
        let long = "é".repeat(MAX_FIELD);
        let cut = shown(&long);
        assert!(cut.len() <= MAX_FIELD && cut.len() >= MAX_FIELD - 1, "{}", cut.len());
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
