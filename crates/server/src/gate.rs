//! The proxy-wide allowlists checked before a request is routed or its key looked at:
//! `general_settings.allowed_ips` (with `use_x_forwarded_for`) and `allowed_routes`, answered
//! with LiteLLM's 403s. LiteLLM runs them first in its auth dependency, so they hold for every
//! caller, the master key included, and not for what it serves without that dependency: the
//! health probes and `/metrics`.
//!
//! Built once at start; with neither list set a request pays one comparison.

use crate::config::{GeneralSettings, IpRange};
use sluice_wire::ApiError;
use std::net::IpAddr;

/// Paths LiteLLM serves outside its auth dependency, which its allowlists therefore never cover:
/// an orchestrator's probes and the Prometheus scrape keep working from any address.
const UNGATED: &[&str] = &["/health/liveliness", "/health/liveness", "/health/readiness", "/metrics"];

/// The longest client-sent address echoed back in a refusal.
const ECHO_MAX: usize = 64;

#[derive(Debug, Default)]
pub struct Gate {
    routes: Option<Box<[Box<str>]>>,
    ips: Option<Box<[IpRange]>>,
    use_x_forwarded_for: bool,
}

impl Gate {
    pub fn new(general: &GeneralSettings) -> Gate {
        Gate {
            routes: general.allowed_routes.as_ref().map(|r| r.iter().map(|p| p.as_str().into()).collect()),
            ips: general.allowed_ips.as_ref().map(|r| r.clone().into_boxed_slice()),
            use_x_forwarded_for: general.use_x_forwarded_for,
        }
    }

    /// Whether a request to `path` from `peer` (the connection's address) may go on.
    #[inline]
    pub fn check(&self, path: &str, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Result<(), ApiError> {
        if self.routes.is_none() && self.ips.is_none() {
            return Ok(());
        }
        self.check_lists(path, peer, headers)
    }

    fn check_lists(&self, path: &str, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Result<(), ApiError> {
        if UNGATED.contains(&path) {
            return Ok(());
        }
        if let Some(ips) = &self.ips {
            let forwarded = self
                .use_x_forwarded_for
                .then(|| headers.get("x-forwarded-for"))
                .flatten()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string());
            // As in LiteLLM, the forwarded header is taken whole: a list of hops is no single
            // address and is refused rather than trusted in part.
            let (shown, ip) = match forwarded {
                Some(text) => {
                    let ip = text.parse::<IpAddr>().ok();
                    (text, ip)
                }
                None => (peer.map(|p| p.to_canonical().to_string()).unwrap_or_default(), peer),
            };
            if !ip.is_some_and(|ip| ips.iter().any(|range| range.contains(ip))) {
                let shown: String = shown.chars().take(ECHO_MAX).collect();
                return Err(forbidden(format!("Access forbidden: IP address {shown} not allowed.")));
            }
        }
        if let Some(routes) = &self.routes {
            if !routes.iter().any(|r| r.as_ref() == path) {
                return Err(forbidden(format!("Access forbidden: Route {path} not allowed")));
            }
        }
        Ok(())
    }
}

fn forbidden(message: String) -> ApiError {
    ApiError::new(403, message).kind("auth_error")
}

/// A key's `allowed_cache_controls`: when it lists any, a request's `cache` object may name only
/// those — any other member, even one sluice does not read, is LiteLLM's 403 (its
/// `cache_control_check` hook, in its words).
pub(crate) fn cache_controls_allowed(
    identity: &sluice_access::Identity,
    asked: &sluice_wire::controls::CacheControls,
) -> Result<(), ApiError> {
    let sluice_access::Identity::Key(key) = identity else { return Ok(()) };
    let allowed = &key.record.allowed_cache_controls;
    match asked.named.iter().find(|name| !allowed.is_empty() && !allowed.contains(name)) {
        Some(name) => Err(forbidden(format!(
            "Not allowed to set {name} as a cache control. Contact admin to change permissions."
        ))),
        None => Ok(()),
    }
}

/// LiteLLM's answer to an LLM request without `user` under `enforce_user_param` (its auth
/// handler wraps the check's error as a 401 `auth_error`).
pub fn user_param_missing() -> ApiError {
    sluice_access::auth::auth_error("'user' param not passed in. 'enforce_user_param'=True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(routes: Option<&[&str]>, ips: Option<&[&str]>, xff: bool) -> Gate {
        let general = GeneralSettings {
            allowed_routes: routes.map(|r| r.iter().map(|s| s.to_string()).collect()),
            allowed_ips: ips.map(|r| r.iter().map(|s| IpRange::parse(s).unwrap()).collect()),
            use_x_forwarded_for: xff,
            ..GeneralSettings::default()
        };
        Gate::new(&general)
    }

    fn headers(xff: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(v) = xff {
            h.insert("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn no_lists_let_everything_through() {
        let g = gate(None, None, false);
        assert!(g.check("/key/generate", None, &headers(None)).is_ok());
    }

    #[test]
    fn routes_are_matched_exactly() {
        let g = gate(Some(&["/chat/completions"]), None, false);
        assert!(g.check("/chat/completions", None, &headers(None)).is_ok());
        let e = g.check("/v1/chat/completions", None, &headers(None)).unwrap_err();
        assert_eq!((e.status, e.message.as_str()), (403, "Access forbidden: Route /v1/chat/completions not allowed"));
        assert_eq!(e.kind.as_deref(), Some("auth_error"));
        assert!(g.check("/key/generate", None, &headers(None)).is_err());
        assert!(g.check("/health/readiness", None, &headers(None)).is_ok(), "probes stay reachable");
    }

    #[test]
    fn addresses_come_from_the_connection_or_the_forwarded_header() {
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let g = gate(None, Some(&["10.0.0.0/8"]), false);
        let e = g.check("/chat/completions", Some(local), &headers(Some("10.1.2.3"))).unwrap_err();
        assert_eq!(e.message, "Access forbidden: IP address 127.0.0.1 not allowed.");
        assert!(g.check("/chat/completions", Some("10.9.9.9".parse().unwrap()), &headers(None)).is_ok());
        assert!(g.check("/chat/completions", None, &headers(None)).is_err(), "no address: refused");

        let g = gate(None, Some(&["10.0.0.0/8"]), true);
        assert!(g.check("/chat/completions", Some(local), &headers(Some("10.1.2.3"))).is_ok());
        let e = g.check("/chat/completions", Some(local), &headers(Some("10.1.2.3, 10.0.0.1"))).unwrap_err();
        assert!(e.message.contains("10.1.2.3, 10.0.0.1"), "{}", e.message);
        assert!(g.check("/chat/completions", Some(local), &headers(None)).is_err(), "falls back to the peer");
        assert!(g.check("/metrics", Some(local), &headers(None)).is_ok());
    }
}
