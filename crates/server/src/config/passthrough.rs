//! `general_settings.pass_through_endpoints` (custom routes relayed to a fixed target) and the
//! top-level `default_vertex_config` (where `/vertex_ai/*` goes and with which credentials), read
//! the way LiteLLM reads them.

use super::error::err;
use super::yaml::{key_str, mapping, scalar_string};
use super::{ConfigError, Env};
use http::{HeaderName, HeaderValue};
use serde_yaml_ng::Value;
use sluice_providers::passthrough::VertexDefaults;

/// The most `cost_per_request` may be: a larger value is a typo (a budget would be spent by one
/// call), refused at start.
const MAX_COST_PER_REQUEST: f64 = 1_000.0;

/// The pass-through settings.
#[derive(Debug, Clone, Default)]
pub struct PassThrough {
    pub endpoints: Vec<PassThroughEndpoint>,
    pub vertex: VertexDefaults,
}

/// One of `general_settings.pass_through_endpoints`.
#[derive(Clone)]
pub struct PassThroughEndpoint {
    /// The route, starting with `/`, without a trailing one.
    pub path: String,
    /// Where its requests go (an `http(s)://` URL).
    pub target: http::Uri,
    /// Headers added to every request (`os.environ/` resolved; secrets marked sensitive).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The client's headers go along too (its sluice key excepted when `auth` is on).
    pub forward_headers: bool,
    /// Callers need a sluice key; their spend is charged to it.
    pub auth: bool,
    /// `/path/anything` is relayed to `target/anything`.
    pub include_subpath: bool,
    /// USD charged per request (to the key, with `auth`).
    pub cost_per_request: f64,
}

impl std::fmt::Debug for PassThroughEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassThroughEndpoint")
            .field("path", &self.path)
            .field("target", &self.target)
            .field("headers", &self.headers.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>())
            .field("forward_headers", &self.forward_headers)
            .field("auth", &self.auth)
            .field("include_subpath", &self.include_subpath)
            .field("cost_per_request", &self.cost_per_request)
            .finish()
    }
}

/// Reads both settings from the config's root.
pub(crate) fn read(
    root: &serde_yaml_ng::Mapping,
    env: &Env,
    warnings: &mut Vec<String>,
) -> Result<PassThrough, ConfigError> {
    let mut out = PassThrough::default();
    if let Some(general) = root.get("general_settings").and_then(|g| g.get("pass_through_endpoints")) {
        const AT: &str = "general_settings.pass_through_endpoints";
        match general {
            Value::Null => {}
            Value::Sequence(items) => {
                for (i, item) in items.iter().enumerate() {
                    out.endpoints.push(endpoint(&format!("{AT}[{i}]"), item, env, warnings)?);
                }
            }
            _ => return Err(err(AT, "expected a list of endpoints, each with path and target")),
        }
        let mut seen = std::collections::HashSet::new();
        for (i, e) in out.endpoints.iter().enumerate() {
            if !seen.insert(e.path.as_str()) {
                return Err(err(&format!("{AT}[{i}].path"), format!("\"{}\" is listed twice", e.path)));
            }
        }
    }
    if let Some(v) = root.get("default_vertex_config") {
        const AT: &str = "default_vertex_config";
        if !v.is_null() {
            let m = mapping(AT, v)?;
            let text = |key: &str, warnings: &mut Vec<String>| -> Result<Option<String>, ConfigError> {
                match m.get(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => {
                        let s = scalar_string(v).ok_or_else(|| err(&format!("{AT}.{key}"), "expected a string"))?;
                        Ok(env.resolve_str(&format!("{AT}.{key}"), &s, warnings))
                    }
                }
            };
            out.vertex = VertexDefaults {
                project: text("vertex_project", warnings)?,
                location: text("vertex_location", warnings)?,
                credentials: text("vertex_credentials", warnings)?,
                api_base: text("api_base", warnings)?,
            };
            for (k, _) in m {
                let key = key_str(k);
                if !["vertex_project", "vertex_location", "vertex_credentials", "api_base"].contains(&key.as_str()) {
                    warnings.push(format!("{AT}.{key}: not a setting sluice knows; ignored"));
                }
            }
        }
    }
    Ok(out)
}

fn endpoint(at: &str, v: &Value, env: &Env, warnings: &mut Vec<String>) -> Result<PassThroughEndpoint, ConfigError> {
    let m = mapping(at, v)?;
    let text = |key: &str| -> Result<Option<String>, ConfigError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => scalar_string(v).map(Some).ok_or_else(|| err(&format!("{at}.{key}"), "expected a string")),
        }
    };
    let flag = |key: &str, default: bool| -> Result<bool, ConfigError> {
        match m.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(err(&format!("{at}.{key}"), "expected true or false")),
        }
    };
    for (k, _) in m {
        let key = key_str(k);
        if !KEYS.contains(&key.as_str()) {
            return Err(err(
                &format!("{at}.{key}"),
                format!("unknown pass-through setting; the settings are {}", KEYS.join(", ")),
            ));
        }
    }
    let path = text("path")?
        .ok_or_else(|| err(&format!("{at}.path"), "missing; the route to serve, e.g. \"/cohere/rerank\""))?;
    let path = path.trim_end_matches('/').to_string();
    if !path.starts_with('/') || path.len() < 2 || path.contains(['{', '}', '*', '?', '#']) {
        return Err(err(
            &format!("{at}.path"),
            format!("\"{path}\" is not a route path; write it like \"/cohere/rerank\""),
        ));
    }
    let target_text = text("target")?.ok_or_else(|| {
        err(&format!("{at}.target"), "missing; the URL requests go to, e.g. \"https://api.cohere.com/v1/rerank\"")
    })?;
    let target: http::Uri = target_text
        .parse()
        .ok()
        .filter(|u: &http::Uri| matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some())
        .ok_or_else(|| err(&format!("{at}.target"), format!("\"{target_text}\" is not an http:// or https:// URL")))?;
    let mut headers = Vec::new();
    match m.get("headers") {
        None | Some(Value::Null) => {}
        Some(Value::Mapping(h)) => {
            for (k, v) in h {
                let name = key_str(k);
                let hpath = format!("{at}.headers.{name}");
                let raw = scalar_string(v).ok_or_else(|| err(&hpath, "expected a string"))?;
                let Some(value) = header_value(&hpath, &raw, env, warnings) else { continue };
                let name =
                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| err(&hpath, "is not a valid header name"))?;
                let mut value = HeaderValue::from_str(&value)
                    .map_err(|_| err(&hpath, "contains characters that cannot be sent in a header"))?;
                // Anything resolved from the environment is treated as a secret.
                value.set_sensitive(raw.contains("os.environ/"));
                headers.push((name, value));
            }
        }
        Some(_) => return Err(err(&format!("{at}.headers"), "expected a mapping of header: value")),
    }
    let cost_per_request = match m.get("cost_per_request") {
        None | Some(Value::Null) => 0.0,
        Some(v) => scalar_string(v)
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|c| c.is_finite() && (0.0..=MAX_COST_PER_REQUEST).contains(c))
            .ok_or_else(|| {
                err(
                    &format!("{at}.cost_per_request"),
                    format!("expected a price in USD between 0 and {MAX_COST_PER_REQUEST}"),
                )
            })?,
    };
    Ok(PassThroughEndpoint {
        path,
        target,
        headers,
        forward_headers: flag("forward_headers", false)?,
        auth: flag("auth", false)?,
        include_subpath: flag("include_subpath", false)?,
        cost_per_request,
    })
}

/// The keys of one endpoint.
const KEYS: &[&str] = &["path", "target", "headers", "forward_headers", "auth", "include_subpath", "cost_per_request"];

/// A header's value with `os.environ/VAR` resolved where it stands: the whole value, or after a
/// scheme as LiteLLM allows (`"Bearer os.environ/COHERE_API_KEY"`). An unset variable leaves the
/// header out, with a warning.
pub(crate) fn header_value(path: &str, raw: &str, env: &Env, warnings: &mut Vec<String>) -> Option<String> {
    match raw.find("os.environ/") {
        None => Some(raw.to_string()),
        Some(at) => {
            let (before, reference) = raw.split_at(at);
            env.resolve_str(path, reference.trim(), warnings).map(|v| format!("{before}{v}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_yaml(text: &str, env: &Env) -> Result<PassThrough, ConfigError> {
        let root: serde_yaml_ng::Mapping = serde_yaml_ng::from_str(text).unwrap();
        read(&root, env, &mut Vec::new())
    }

    #[test]
    fn reads_litellms_endpoint_settings() {
        let env = Env::fixed([("COHERE_API_KEY", "co-secret")]);
        let p = read_yaml(
            r#"
general_settings:
  pass_through_endpoints:
    - path: "/v1/rerank/"
      target: "https://api.cohere.com/v1/rerank"
      headers:
        Authorization: "bearer os.environ/COHERE_API_KEY"
        content-type: application/json
      forward_headers: true
      auth: true
      include_subpath: true
      cost_per_request: 0.25
default_vertex_config:
  vertex_project: proj
  vertex_location: us-east5
  vertex_credentials: os.environ/NOT_SET
"#,
            &env,
        )
        .unwrap();
        let e = &p.endpoints[0];
        assert_eq!(e.path, "/v1/rerank");
        assert_eq!(e.target.host(), Some("api.cohere.com"));
        assert_eq!(e.headers[0].1, "bearer co-secret");
        assert!(e.headers[0].1.is_sensitive());
        assert!(!e.headers[1].1.is_sensitive());
        assert!(e.forward_headers && e.auth && e.include_subpath);
        assert_eq!(e.cost_per_request, 0.25);
        assert!(!format!("{e:?}").contains("co-secret"));
        assert_eq!(p.vertex.project.as_deref(), Some("proj"));
        assert_eq!(p.vertex.location.as_deref(), Some("us-east5"));
        assert_eq!(p.vertex.credentials, None);
    }

    #[test]
    fn bad_settings_name_their_path() {
        let env = Env::fixed([]);
        let cases = [
            ("- {target: 'http://x'}", "[0].path"),
            ("- {path: 'x', target: 'http://x'}", "[0].path"),
            ("- {path: '/x', target: 'ftp://x'}", "[0].target"),
            ("- {path: '/x', target: 'http://x', cost_per_request: -1}", "[0].cost_per_request"),
            ("- {path: '/x', target: 'http://x', cost_per_request: 1e12}", "[0].cost_per_request"),
            ("- {path: '/x', target: 'http://x', auth: maybe}", "[0].auth"),
            ("- {path: '/x', target: 'http://x', tagret: 1}", "[0].tagret"),
            ("- {path: '/x', target: 'http://x'}\n    - {path: '/x/', target: 'http://y'}", "[1].path"),
        ];
        for (list, at) in cases {
            let yaml = format!("general_settings:\n  pass_through_endpoints:\n    {list}\n");
            let e = read_yaml(&yaml, &env).unwrap_err().to_string();
            assert!(e.contains(&format!("general_settings.pass_through_endpoints{at}")), "{list}: {e}");
        }
    }
}
