//! Command-line flags (`sluice mock …`) and the validated configuration built from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::latency::{parse_duration, Latency};
use crate::ratelimit::RateLimitRule;
use crate::token::VertexKey;

/// The route LiteLLM's fake endpoint decorates with `@limiter.limit("10000/minute")`; the seed's
/// load test depends on that limit, so the mock applies it unless told otherwise.
pub const DEFAULT_RATE_LIMIT: &str = "/v1/projects/bad-adroit-crow-413218=10000/60s";

/// Flags for `sluice mock`: a fake LLM provider for tests and benchmarks.
#[derive(clap::Args, Debug, Clone)]
pub struct MockArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on (0 = pick a free one; the ready line shows which).
    #[arg(long, default_value_t = 8090)]
    pub port: u16,

    /// Worker threads (1 = a single-threaded runtime, the cheapest for one core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Delay before every answer: `25ms`, uniform `10ms..50ms`, or `normal:100ms,20ms`.
    #[arg(long, value_name = "SPEC")]
    pub latency: Option<String>,

    /// Delay between stream chunks, e.g. `20ms` (default 0).
    #[arg(long, value_name = "DUR")]
    pub chunk_delay: Option<String>,

    /// Fixed-window limit for paths starting with PATH_PREFIX, e.g.
    /// `/v1/projects/bad-adroit-crow-413218=10000/60s` (repeatable).
    #[arg(long = "rate-limit", value_name = "PATH_PREFIX=N/WINDOW")]
    pub rate_limit: Vec<String>,

    /// Drop the default 10000/60s limit on `/v1/projects/bad-adroit-crow-413218`.
    #[arg(long)]
    pub no_default_rate_limit: bool,

    /// Answer every Nth LLM request with a 500 (0 = never).
    #[arg(long, value_name = "N")]
    pub fail_every: Option<u64>,

    /// Answer this percentage of LLM requests with a random 500 (0–100).
    #[arg(long, value_name = "P")]
    pub fail_percent: Option<f64>,

    /// Stream exactly like LiteLLM's fake: no finish_reason, no usage chunk, no `[DONE]`.
    #[arg(long)]
    pub seed_compat: bool,

    /// Service-account key file (JSON): `/token` then checks assertions' RS256 signatures and
    /// claims as Google does, and Vertex routes accept only tokens the mock issued.
    #[arg(long, value_name = "FILE")]
    pub vertex_credentials: Option<PathBuf>,

    /// The provider credential every LLM request must carry (as a bearer token, `x-api-key`,
    /// `x-goog-api-key`, `api-key`, `?key=` or a SigV4 access key id); others get a 401. Vertex
    /// routes keep their own token check.
    #[arg(long, value_name = "KEY")]
    pub provider_key: Option<String>,

    /// Keep the last request as it arrived, for `GET /mock/last`.
    #[arg(long)]
    pub record: bool,
}

/// What the mock does, validated. Build it with [`MockConfig::from_args`] or start from
/// [`MockConfig::default`] (which matches running `sluice mock` with no flags).
#[derive(Debug, Clone)]
pub struct MockConfig {
    /// Delay applied before every answer on the LLM routes.
    pub latency: Latency,
    /// Delay between stream chunks.
    pub chunk_delay: Duration,
    /// Fixed-window limits, checked on every route whose path starts with the rule's prefix.
    pub rate_limits: Vec<RateLimitRule>,
    /// Every Nth LLM request fails with a 500 (0 = off).
    pub fail_every: u64,
    /// Probability in percent of a random 500 on LLM requests.
    pub fail_percent: f64,
    /// Streams end on EOF only, as LiteLLM's fake does.
    pub seed_compat: bool,
    /// The service account `/token` trusts; `None` accepts any well-formed assertion and any
    /// bearer token on Vertex routes.
    pub vertex_key: Option<Arc<VertexKey>>,
    /// `--provider-key`.
    pub provider_key: Option<String>,
    /// `--record`.
    pub record: bool,
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            latency: Latency::None,
            chunk_delay: Duration::ZERO,
            rate_limits: vec![RateLimitRule::parse(DEFAULT_RATE_LIMIT).expect("the built-in default rate limit parses")],
            fail_every: 0,
            fail_percent: 0.0,
            seed_compat: false,
            vertex_key: None,
            provider_key: None,
            record: false,
        }
    }
}

impl MockConfig {
    /// A config with no default rate limit: what tests usually want.
    pub fn bare() -> Self {
        MockConfig { rate_limits: Vec::new(), ..MockConfig::default() }
    }

    /// Validates the flags; the error names the flag and what a valid value looks like.
    pub fn from_args(args: &MockArgs) -> Result<MockConfig, String> {
        let latency = match &args.latency {
            Some(spec) => Latency::parse(spec).map_err(|e| format!("--latency {spec:?}: {e}"))?,
            None => Latency::None,
        };
        let chunk_delay = match &args.chunk_delay {
            Some(spec) => parse_duration(spec).map_err(|e| format!("--chunk-delay {spec:?}: {e}"))?,
            None => Duration::ZERO,
        };
        let mut rate_limits = Vec::new();
        if !args.no_default_rate_limit {
            rate_limits.push(RateLimitRule::parse(DEFAULT_RATE_LIMIT)?);
        }
        for spec in &args.rate_limit {
            let rule = RateLimitRule::parse(spec).map_err(|e| format!("--rate-limit {spec:?}: {e}"))?;
            // A flag for the default route replaces the default instead of stacking on it.
            rate_limits.retain(|r: &RateLimitRule| r.prefix != rule.prefix);
            rate_limits.push(rule);
        }
        let fail_percent = args.fail_percent.unwrap_or(0.0);
        if !(0.0..=100.0).contains(&fail_percent) || fail_percent.is_nan() {
            return Err(format!("--fail-percent {fail_percent}: expected a percentage between 0 and 100"));
        }
        if args.threads == 0 {
            return Err("--threads 0: expected at least 1".to_string());
        }
        Ok(MockConfig {
            latency,
            chunk_delay,
            rate_limits,
            fail_every: args.fail_every.unwrap_or(0),
            fail_percent,
            seed_compat: args.seed_compat,
            vertex_key: match &args.vertex_credentials {
                Some(path) => {
                    Some(Arc::new(VertexKey::from_file(path).map_err(|e| format!("--vertex-credentials {e}"))?))
                }
                None => None,
            },
            provider_key: args.provider_key.clone().filter(|k| !k.is_empty()),
            record: args.record,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        mock: MockArgs,
    }

    fn args(flags: &[&str]) -> MockArgs {
        let mut argv = vec!["mock"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).unwrap().mock
    }

    #[test]
    fn defaults_match_the_seed_fake() {
        let a = args(&[]);
        assert_eq!(a.port, 8090);
        assert_eq!(a.host, "127.0.0.1");
        let c = MockConfig::from_args(&a).unwrap();
        assert_eq!(c.rate_limits.len(), 1);
        assert_eq!(c.rate_limits[0].limit, 10000);
        assert!(!c.seed_compat);
    }

    #[test]
    fn flags_parse() {
        let a = args(&[
            "--latency",
            "normal:100ms,20ms",
            "--chunk-delay",
            "5ms",
            "--rate-limit",
            "/x=5/2s",
            "--rate-limit",
            "/v1/projects/bad-adroit-crow-413218=7/1s",
            "--fail-every",
            "3",
            "--fail-percent",
            "1.5",
            "--seed-compat",
        ]);
        let c = MockConfig::from_args(&a).unwrap();
        assert_eq!(c.chunk_delay, Duration::from_millis(5));
        assert_eq!(c.rate_limits.len(), 2, "the default is replaced, not stacked");
        assert_eq!(c.fail_every, 3);
        assert!(c.seed_compat);
    }

    #[test]
    fn bad_flags_name_the_flag() {
        let e = MockConfig::from_args(&args(&["--latency", "fast"])).unwrap_err();
        assert!(e.starts_with("--latency"), "{e}");
        let e = MockConfig::from_args(&args(&["--rate-limit", "/x=five/1s"])).unwrap_err();
        assert!(e.starts_with("--rate-limit"), "{e}");
        let e = MockConfig::from_args(&args(&["--fail-percent", "150"])).unwrap_err();
        assert!(e.starts_with("--fail-percent"), "{e}");
        let a = args(&["--no-default-rate-limit"]);
        assert!(MockConfig::from_args(&a).unwrap().rate_limits.is_empty());
    }

    #[test]
    fn vertex_credentials_load_or_name_the_flag() {
        let key = concat!(env!("CARGO_MANIFEST_DIR"), "/../providers/tests/fixtures/vertex-test-sa.json");
        let c = MockConfig::from_args(&args(&["--vertex-credentials", key])).unwrap();
        assert!(c.vertex_key.is_some());
        assert!(MockConfig::from_args(&args(&[])).unwrap().vertex_key.is_none());
        let e = MockConfig::from_args(&args(&["--vertex-credentials", "/nonexistent.json"])).unwrap_err();
        assert!(e.starts_with("--vertex-credentials"), "{e}");
    }
}
