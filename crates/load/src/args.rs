//! Command-line options of `sluice load` and the small parsers behind them (durations, wait
//! ranges, weighted endpoints, headers). Parsers return messages a person can act on; clap shows
//! them next to the flag that was wrong.

use std::path::PathBuf;
use std::time::Duration;

/// `sluice load`: drive an OpenAI-compatible gateway with closed-loop users (like locust) or at a
/// fixed open-loop rate, and report latency percentiles, failures and throughput.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Base URL the request paths are joined to (locust's --host), e.g. http://127.0.0.1:4000
    #[arg(short = 'H', long, default_value = "http://127.0.0.1:4000")]
    pub host: String,

    /// Number of concurrent closed-loop users (each sends, waits for the answer, waits --wait, repeats).
    #[arg(short = 'u', long, default_value_t = 10)]
    pub users: u32,

    /// Users started per second (default: all users within the first second).
    #[arg(short = 'r', long = "spawn-rate")]
    pub spawn_rate: Option<f64>,

    /// Pause of each user between requests, seconds: MIN..MAX (locust's `between`) or one value.
    #[arg(long, default_value = "0..0", value_name = "MIN..MAX", value_parser = parse_wait)]
    pub wait: WaitRange,

    /// How long to run: 30s, 2m, 1h, 1h30m, 500ms (default 30s unless --requests is given).
    #[arg(short = 't', long, alias = "run-time", value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Stop after this many requests in total.
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,

    /// Open loop: send this many requests per second at fixed intended times, whatever the
    /// server does; latency is measured from the intended send time. Replaces --users.
    #[arg(long)]
    pub rate: Option<f64>,

    /// Open loop: most requests in flight at once; a send beyond it is counted as a failure
    /// ("client overloaded") instead of being delayed.
    #[arg(long, default_value_t = 10_000)]
    pub max_in_flight: usize,

    /// Open loop: most connections kept open at once; sends beyond them wait for a free one
    /// (still timed from their intended time, and still counted against --max-in-flight).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,

    /// Model name put into the request bodies (default: the template's, "fake-openai-endpoint").
    #[arg(long)]
    pub model: Option<String>,

    /// Extra request header 'Name: value' (repeatable); overrides the defaults of the same name.
    #[arg(long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<Header>,

    /// JSON body template for POST endpoints; every `{{uuid}}` becomes one fresh UUID per request.
    #[arg(long, value_name = "FILE")]
    pub body: Option<PathBuf>,

    /// A weighted endpoint (repeatable), e.g. 20:POST:chat/completions
    /// (default: 1:POST:chat/completions).
    #[arg(long = "endpoint", value_name = "WEIGHT:METHOD:PATH[:BODYFILE]", value_parser = parse_endpoint)]
    pub endpoints: Vec<EndpointSpec>,

    /// Ask for streamed answers ("stream": true) and measure time to first token and tokens/s.
    #[arg(long)]
    pub stream: bool,

    /// Per-request timeout (connect, headers and body).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// File the bodies of failed responses are appended to, one per line (capped at 10 MB).
    #[arg(long, default_value = "error.txt", value_name = "FILE")]
    pub error_file: PathBuf,

    /// Write a self-contained HTML report (charts over time, latency histogram) to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// Write locust-style CSV files PREFIX_stats.csv, PREFIX_stats_history.csv, PREFIX_failures.csv.
    #[arg(long, value_name = "PREFIX")]
    pub csv: Option<String>,

    /// Write every summary figure as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Worker threads, each with its own event loop, connections and statistics.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Exit with status 1 if any request failed.
    #[arg(long)]
    pub fail_on_error: bool,

    /// API key sent as `Authorization: Bearer <key>` (like the seed's locustfile).
    #[arg(long, env = "API_KEY", default_value = "sk-1234", value_name = "KEY", hide_env_values = true)]
    pub api_key: String,

    /// No live progress line, only the final tables.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// Pause between two requests of one user: uniform in [min, max] seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitRange {
    pub min: f64,
    pub max: f64,
}

/// One `Name: value` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// One weighted endpoint, as given by `--endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub weight: u32,
    pub method: String,
    pub path: String,
    pub body: Option<PathBuf>,
}

/// Parses `30s`, `2m`, `1h`, `1h30m`, `500ms`, `1.5s` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let hint = "expected a duration such as 30s, 2m, 1h, 1h30m or 500ms";
    if s.is_empty() {
        return Err(format!("empty duration: {hint}"));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return secs_to_duration(secs).ok_or_else(|| format!("'{s}': {hint}"));
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = num.parse().map_err(|_| format!("'{s}': {hint}"))?;
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            _ => return Err(format!("'{s}': unknown unit '{unit}'; {hint}")),
        };
        total += value * scale;
        rest = tail;
    }
    secs_to_duration(total).ok_or_else(|| format!("'{s}': {hint}"))
}

/// The longest time any setting may stand for (a run, a pause, the spread of a schedule): far
/// beyond any load test, and well inside what an `Instant` can be moved by, so no setting can
/// make the generator panic where it schedules.
pub const MAX_SECONDS: f64 = 365.0 * 86_400.0;

fn secs_to_duration(secs: f64) -> Option<Duration> {
    (0.0..=MAX_SECONDS).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

/// Parses `MIN..MAX` (seconds, floats) or a single value (a fixed pause).
pub fn parse_wait(s: &str) -> Result<WaitRange, String> {
    let hint = "expected MIN..MAX in seconds, e.g. 0.5..1, or one value such as 1";
    let num = |x: &str| -> Result<f64, String> {
        let v: f64 = x.trim().parse().map_err(|_| format!("'{s}': {hint}"))?;
        if (0.0..=MAX_SECONDS).contains(&v) {
            Ok(v)
        } else {
            Err(format!("'{s}': waits must be from 0 to {MAX_SECONDS} seconds (a year)"))
        }
    };
    let (min, max) = match s.split_once("..") {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let v = num(s)?;
            (v, v)
        }
    };
    if min > max {
        return Err(format!("'{s}': MIN ({min}) is larger than MAX ({max})"));
    }
    Ok(WaitRange { min, max })
}

/// Parses `Name: value`.
pub fn parse_header(s: &str) -> Result<Header, String> {
    let (name, value) =
        s.split_once(':').ok_or_else(|| format!("'{s}': expected 'Name: value', e.g. 'X-Team: search'"))?;
    let name = name.trim();
    let value = value.trim();
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        return Err(format!("'{name}' is not a valid header name"));
    }
    if http::HeaderValue::from_str(value).is_err() {
        return Err(format!("the value of header '{name}' holds characters a header cannot carry"));
    }
    Ok(Header { name: name.to_string(), value: value.to_string() })
}

/// Parses `WEIGHT:METHOD:PATH[:BODYFILE]`.
pub fn parse_endpoint(s: &str) -> Result<EndpointSpec, String> {
    let hint = "expected WEIGHT:METHOD:PATH[:BODYFILE], e.g. 20:POST:chat/completions";
    let mut parts = s.splitn(4, ':');
    let (Some(w), Some(m), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("'{s}': {hint}"));
    };
    let weight: u32 = w.trim().parse().map_err(|_| format!("'{s}': the weight '{w}' is not a whole number; {hint}"))?;
    let method = m.trim().to_ascii_uppercase();
    if http::Method::from_bytes(method.as_bytes()).is_err() || method.is_empty() {
        return Err(format!("'{s}': '{m}' is not an HTTP method; {hint}"));
    }
    let path = p.trim();
    if path.is_empty() {
        return Err(format!("'{s}': the path is empty; {hint}"));
    }
    let body = parts.next().map(str::trim).filter(|b| !b.is_empty()).map(PathBuf::from);
    Ok(EndpointSpec { weight, method, path: path.to_string(), body })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        load: LoadArgs,
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10x").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("-3").is_err());
        for huge in ["1e30s", "1e300", "99999999999999999999h", "inf", "NaN"] {
            assert!(parse_duration(huge).is_err(), "{huge}");
        }
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn waits() {
        assert_eq!(parse_wait("0.5..1").unwrap(), WaitRange { min: 0.5, max: 1.0 });
        assert_eq!(parse_wait("0..0").unwrap(), WaitRange { min: 0.0, max: 0.0 });
        assert_eq!(parse_wait("2").unwrap(), WaitRange { min: 2.0, max: 2.0 });
        assert!(parse_wait("1..0.5").unwrap_err().contains("larger"));
        assert!(parse_wait("a..b").is_err());
        assert!(parse_wait("-1..2").is_err());
    }

    #[test]
    fn endpoints() {
        let e = parse_endpoint("20:post:chat/completions").unwrap();
        assert_eq!(e.weight, 20);
        assert_eq!(e.method, "POST");
        assert_eq!(e.path, "chat/completions");
        assert_eq!(e.body, None);
        let e = parse_endpoint("40:GET:health/readiness").unwrap();
        assert_eq!((e.weight, e.method.as_str()), (40, "GET"));
        let e = parse_endpoint("1:POST:v1/embeddings:body.json").unwrap();
        assert_eq!(e.body, Some(PathBuf::from("body.json")));
        assert!(parse_endpoint("x:GET:/a").unwrap_err().contains("weight"));
        assert!(parse_endpoint("1:GET").is_err());
        assert!(parse_endpoint("1:G ET:/a").unwrap_err().contains("method"));
        assert!(parse_endpoint("1:GET:").unwrap_err().contains("path"));
    }

    #[test]
    fn headers() {
        let h = parse_header("X-Team:  search ").unwrap();
        assert_eq!((h.name.as_str(), h.value.as_str()), ("X-Team", "search"));
        let h = parse_header("Authorization: Bearer a:b").unwrap();
        assert_eq!(h.value, "Bearer a:b");
        assert!(parse_header("novalue").is_err());
        assert!(parse_header("bad name: x").is_err());
    }

    #[test]
    fn full_command_line() {
        let cli = Cli::try_parse_from([
            "load",
            "--host",
            "http://127.0.0.1:4000",
            "-u",
            "100",
            "-r",
            "10",
            "--wait",
            "0.5..1",
            "-t",
            "2m",
            "--endpoint",
            "20:POST:chat/completions",
            "--endpoint",
            "40:GET:health/readiness",
            "--header",
            "X-A: 1",
            "--stream",
        ])
        .unwrap();
        let a = cli.load;
        assert_eq!(a.users, 100);
        assert_eq!(a.spawn_rate, Some(10.0));
        assert_eq!(a.wait, WaitRange { min: 0.5, max: 1.0 });
        assert_eq!(a.duration, Some(Duration::from_secs(120)));
        assert_eq!(a.endpoints.len(), 2);
        assert_eq!(a.headers.len(), 1);
        assert!(a.stream);
        assert_eq!(a.timeout, Duration::from_secs(60));
        assert_eq!(a.max_in_flight, 10_000);
        assert!(Cli::try_parse_from(["load", "--wait", "3..1"]).is_err());
        assert!(Cli::try_parse_from(["load", "-t", "soon"]).is_err());
    }
}
