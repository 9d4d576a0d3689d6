//! The validated run: the target address, the endpoints with their prepared headers and body
//! templates, and the load shape. Everything that can be wrong with the options is found here,
//! before a single request is sent.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use http::header::{HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, Method, Uri};

use crate::args::{EndpointSpec, LoadArgs, WaitRange, MAX_SECONDS};
use crate::template::Template;

/// The error file stops growing at this size.
pub const ERROR_FILE_CAP: u64 = 10 * 1024 * 1024;

/// Where the requests go.
#[derive(Debug, Clone)]
pub struct Target {
    /// The host URL as given, for display.
    pub url: String,
    pub addr: SocketAddr,
}

/// One endpoint, ready to send.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub method: Method,
    /// Path and query, joined onto the host's path.
    pub uri: Uri,
    /// What the tables call it: the path, like locust.
    pub name: String,
    pub weight: u32,
    /// Host, content type, authorization and --header headers.
    pub headers: HeaderMap,
    pub body: Option<Template>,
    /// The request line and header block, written once here: every request sends these bytes
    /// followed by a body from `body`.
    pub head: Box<[u8]>,
}

impl Endpoint {
    /// A HEAD request's answer has no body, whatever its framing fields say.
    pub fn answer_has_no_body(&self) -> bool {
        self.method == Method::HEAD
    }
}

/// `METHOD path HTTP/1.1`, the headers, and the body's length when there is a body. A
/// Content-Length or Transfer-Encoding given with --header is left out: the body decides those.
fn request_head(method: &Method, uri: &Uri, headers: &HeaderMap, body: Option<&Template>) -> Box<[u8]> {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(format!("{method} {target} HTTP/1.1\r\n").as_bytes());
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    if let Some(body) = body {
        head.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head.into()
}

/// Closed-loop users or an open-loop rate.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Users { users: u32, spawn_rate: f64, wait: WaitRange },
    Rate { rate: f64, max_in_flight: usize, connections: usize },
}

/// The whole run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub endpoints: Vec<Endpoint>,
    /// Running sums of the weights, for picking an endpoint with one random number.
    pub cumulative: Vec<u64>,
    pub mode: Mode,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub timeout: Duration,
    pub stream: bool,
    pub threads: usize,
    pub error_file: PathBuf,
    pub quiet: bool,
}

/// Default run length when neither --duration nor --requests bounds the run.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);

impl Plan {
    pub fn from_args(args: &LoadArgs) -> Result<Plan, String> {
        let (target, base_path, authority) = parse_host(&args.host)?;
        if args.threads == 0 {
            return Err("--threads must be 1 or more".into());
        }
        if args.timeout.is_zero() {
            return Err("--timeout must be longer than zero, e.g. --timeout 60s".into());
        }
        let mode = match args.rate {
            Some(rate) => {
                // The gap between two sends is at most a year: a smaller rate would schedule its
                // second send past what a clock can count to.
                if !(rate.is_finite() && rate >= 1.0 / MAX_SECONDS) {
                    return Err(format!(
                        "--rate {rate}: give a positive number of requests per second, e.g. --rate 1000"
                    ));
                }
                if args.max_in_flight == 0 {
                    return Err("--max-in-flight must be 1 or more".into());
                }
                if args.connections == 0 {
                    return Err("--connections must be 1 or more".into());
                }
                Mode::Rate { rate, max_in_flight: args.max_in_flight, connections: args.connections }
            }
            None => {
                if args.users == 0 {
                    return Err("--users must be 1 or more (or use --rate N for a fixed request rate)".into());
                }
                let spawn_rate = args.spawn_rate.unwrap_or(args.users as f64);
                if !(spawn_rate.is_finite() && spawn_rate > 0.0) {
                    return Err(format!("--spawn-rate {spawn_rate}: give a positive number of users per second"));
                }
                if args.users as f64 / spawn_rate > MAX_SECONDS {
                    return Err(format!(
                        "--spawn-rate {spawn_rate}: the last of {} users would start more than a year in",
                        args.users
                    ));
                }
                Mode::Users { users: args.users, spawn_rate, wait: args.wait }
            }
        };
        if args.requests == Some(0) {
            return Err("--requests 0 would send nothing; give 1 or more".into());
        }
        let duration = match (args.duration, args.requests) {
            (Some(d), _) if d.is_zero() => return Err("--duration must be longer than zero, e.g. -t 30s".into()),
            (Some(d), _) => Some(d),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_DURATION),
        };

        let mut common = HeaderMap::new();
        common.insert(HOST, authority);
        let auth = format!("Bearer {}", args.api_key);
        common.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&auth).map_err(|_| "API_KEY holds characters a header cannot carry".to_string())?,
        );
        for h in &args.headers {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| format!("'{}' is not a valid header name", h.name))?;
            let value = HeaderValue::from_str(&h.value)
                .map_err(|_| format!("the value of header '{}' is not valid", h.name))?;
            common.insert(name, value);
        }

        let default_body = match &args.body {
            Some(path) => Some(read_template(path, args.model.as_deref(), args.stream)?),
            None => None,
        };
        let specs = if args.endpoints.is_empty() {
            vec![EndpointSpec { weight: 1, method: "POST".into(), path: "chat/completions".into(), body: None }]
        } else {
            args.endpoints.clone()
        };
        let mut endpoints = Vec::with_capacity(specs.len());
        for spec in &specs {
            let method = Method::from_bytes(spec.method.as_bytes())
                .map_err(|_| format!("'{}' is not an HTTP method", spec.method))?;
            let path = join_path(&base_path, &spec.path);
            let uri: Uri = path.parse().map_err(|_| {
                format!("'{}' is not a valid request path; use letters, digits and /-_.~?=&", spec.path)
            })?;
            let body = match (&spec.body, &method) {
                (Some(file), _) => Some(read_template(file, args.model.as_deref(), args.stream)?),
                (None, &Method::POST | &Method::PUT | &Method::PATCH) => {
                    Some(default_body.clone().unwrap_or_else(|| Template::seed(args.model.as_deref(), args.stream)))
                }
                (None, _) => None,
            };
            let mut headers = common.clone();
            if body.is_some() && !headers.contains_key(CONTENT_TYPE) {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            let head = request_head(&method, &uri, &headers, body.as_ref());
            endpoints.push(Endpoint {
                method,
                name: uri.path().to_string(),
                uri,
                weight: spec.weight,
                headers,
                body,
                head,
            });
        }
        let mut cumulative = Vec::with_capacity(endpoints.len());
        let mut sum = 0u64;
        for e in &endpoints {
            sum += e.weight as u64;
            cumulative.push(sum);
        }
        if sum == 0 {
            return Err("every --endpoint has weight 0; give at least one a positive weight".into());
        }

        Ok(Plan {
            target,
            endpoints,
            cumulative,
            mode,
            duration,
            requests: args.requests,
            timeout: args.timeout,
            stream: args.stream,
            threads: args.threads,
            error_file: args.error_file.clone(),
            quiet: args.quiet,
        })
    }

    /// The endpoint for a random number `r` in `0..total_weight()`.
    #[inline]
    pub fn pick(&self, r: u64) -> usize {
        if self.cumulative.len() == 1 {
            return 0;
        }
        self.cumulative.partition_point(|&c| c <= r)
    }

    pub fn total_weight(&self) -> u64 {
        *self.cumulative.last().expect("at least one endpoint")
    }
}

fn read_template(path: &PathBuf, model: Option<&str>, stream: bool) -> Result<Template, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the body template {}: {e}; give a readable JSON file", path.display()))?;
    Template::from_file_text(&path.display().to_string(), &text, model, stream).map_err(|e| e.to_string())
}

/// Splits `http://host:port/base` into the socket address, the base path and the Host header.
fn parse_host(host: &str) -> Result<(Target, String, HeaderValue), String> {
    let uri: Uri =
        host.parse().map_err(|_| format!("--host '{host}' is not a URL; give e.g. http://127.0.0.1:4000"))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(format!(
                "--host '{host}': https is not supported yet; point --host at the gateway's plain-HTTP listener (http://...)"
            ))
        }
        _ => {
            return Err(format!(
                "--host '{host}' needs a scheme and a host, e.g. http://127.0.0.1:4000"
            ))
        }
    }
    let authority =
        uri.authority().ok_or_else(|| format!("--host '{host}' has no host name; give e.g. http://127.0.0.1:4000"))?;
    let port = authority.port_u16().unwrap_or(80);
    let name = authority.host().trim_start_matches('[').trim_end_matches(']');
    let addr = (name, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve '{name}' from --host: {e}"))?
        .next()
        .ok_or_else(|| format!("'{name}' from --host resolves to no address"))?;
    let header =
        HeaderValue::from_str(authority.as_str()).map_err(|_| format!("--host '{host}' has an invalid host name"))?;
    Ok((Target { url: host.to_string(), addr }, uri.path().to_string(), header))
}

/// Joins like locust/requests: base + "/" + path, with exactly one slash between them.
pub fn join_path(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// A plan from `sluice load` arguments, for tests.
#[cfg(test)]
pub(crate) fn plan(args: &[&str]) -> Result<Plan, String> {
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    let mut v = vec!["load"];
    v.extend_from_slice(args);
    let cli = Cli::try_parse_from(v).map_err(|e| e.to_string())?;
    Plan::from_args(&cli.load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_that_would_leave_what_a_clock_can_count_are_refused() {
        for args in [
            &["--rate", "1e-300"][..],
            &["--rate", "0.00000001"],
            &["--users", "1000", "--spawn-rate", "1e-300"],
            &["--users", "10", "--spawn-rate", "0.0000001"],
            &["--wait", "1e300"],
            &["--wait", "0..1e10"],
            &["--duration", "1e19"],
        ] {
            let mut v = vec!["--host", "http://127.0.0.1:4000"];
            v.extend_from_slice(args);
            let e = match plan(&v) {
                Ok(_) => panic!("{args:?} was accepted"),
                Err(e) => e,
            };
            assert!(!e.is_empty(), "{args:?}");
        }
        // The slowest schedules still allowed.
        assert!(plan(&["--host", "http://127.0.0.1:4000", "--rate", "0.0001"]).is_ok());
        assert!(plan(&["--host", "http://127.0.0.1:4000", "--users", "10", "--spawn-rate", "0.001"]).is_ok());
    }

    #[test]
    fn joins_paths() {
        assert_eq!(join_path("/", "chat/completions"), "/chat/completions");
        assert_eq!(join_path("", "chat/completions"), "/chat/completions");
        assert_eq!(join_path("/v1/", "/chat/completions"), "/v1/chat/completions");
        let p = plan(&["--host", "http://127.0.0.1:4000/v1"]).unwrap();
        assert_eq!(p.endpoints[0].uri.path(), "/v1/chat/completions");
        assert_eq!(p.endpoints[0].headers[HOST], "127.0.0.1:4000");
    }

    #[test]
    fn request_heads_carry_the_headers_and_the_body_length() {
        let p = plan(&["--host", "http://127.0.0.1:4000/v1", "--header", "X-Team: a", "--header", "Content-Length: 3"])
            .unwrap();
        let e = &p.endpoints[0];
        let head = std::str::from_utf8(&e.head).unwrap();
        let len = e.body.as_ref().unwrap().len();
        assert!(head.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"), "{head}");
        assert!(head.ends_with(&format!("content-length: {len}\r\n\r\n")), "{head}");
        for line in ["host: 127.0.0.1:4000", "x-team: a", "content-type: application/json"] {
            assert!(head.contains(&format!("{line}\r\n")), "{line} missing from {head}");
        }
        assert!(head.contains("\r\nauthorization: Bearer "), "{head}");
        assert_eq!(head.matches("content-length").count(), 1, "{head}");
        let mut parsed = [httparse::EMPTY_HEADER; 8];
        let mut req = httparse::Request::new(&mut parsed);
        assert_eq!(req.parse(head.as_bytes()).unwrap(), httparse::Status::Complete(head.len()));
    }

    #[test]
    fn defaults_are_the_seed() {
        let p = plan(&["--host", "http://127.0.0.1:9"]).unwrap();
        assert_eq!(p.endpoints.len(), 1);
        let e = &p.endpoints[0];
        assert_eq!((e.method.as_str(), e.name.as_str()), ("POST", "/chat/completions"));
        assert!(e.headers[AUTHORIZATION].to_str().unwrap().starts_with("Bearer "));
        assert_eq!(e.headers[CONTENT_TYPE], "application/json");
        assert_eq!(e.body.as_ref().unwrap().placeholders(), 150);
        assert_eq!(p.duration, Some(DEFAULT_DURATION));
        assert!(matches!(p.mode, Mode::Users { users: 10, .. }));
    }

    #[test]
    fn weighted_endpoints_pick_by_weight() {
        let p = plan(&[
            "--endpoint",
            "20:POST:chat/completions",
            "--endpoint",
            "40:GET:health/readiness",
            "--endpoint",
            "40:GET:health/liveliness",
            "--header",
            "Authorization: Bearer other",
        ])
        .unwrap();
        assert_eq!(p.total_weight(), 100);
        assert_eq!(p.pick(0), 0);
        assert_eq!(p.pick(19), 0);
        assert_eq!(p.pick(20), 1);
        assert_eq!(p.pick(59), 1);
        assert_eq!(p.pick(60), 2);
        assert_eq!(p.pick(99), 2);
        assert!(p.endpoints[1].body.is_none());
        assert!(!p.endpoints[1].headers.contains_key(CONTENT_TYPE));
        assert_eq!(p.endpoints[0].headers[AUTHORIZATION], "Bearer other");
        assert_eq!(
            std::str::from_utf8(&p.endpoints[1].head).unwrap(),
            "GET /health/readiness HTTP/1.1\r\nhost: 127.0.0.1:4000\r\nauthorization: Bearer other\r\n\r\n"
        );
        // A zero weight is never picked.
        let p = plan(&["--endpoint", "0:GET:a", "--endpoint", "5:GET:b"]).unwrap();
        assert!((0..5).all(|r| p.pick(r) == 1));
    }

    #[test]
    fn bad_options_explain_themselves() {
        assert!(plan(&["--host", "https://x"]).unwrap_err().contains("plain-HTTP"));
        assert!(plan(&["--host", "127.0.0.1:4000"]).unwrap_err().contains("scheme"));
        assert!(plan(&["-u", "0"]).unwrap_err().contains("--rate"));
        assert!(plan(&["--rate", "0"]).unwrap_err().contains("positive"));
        assert!(plan(&["--body", "/nonexistent/b.json"]).unwrap_err().contains("cannot read"));
        assert!(plan(&["--endpoint", "0:GET:a"]).unwrap_err().contains("weight"));
        assert!(plan(&["-n", "0"]).is_err());
        let p = plan(&["-n", "5"]).unwrap();
        assert_eq!((p.duration, p.requests), (None, Some(5)));
    }
}
