//! `router_settings` as the router uses them, with LiteLLM's defaults.

pub use crate::budget::RetryBudgetSettings;
use crate::failure::ErrorKind;
use std::collections::HashMap;
use std::time::Duration;

/// LiteLLM's routing strategies, plus sluice's own.
#[derive(Debug, Clone, PartialEq)]
pub enum Strategy {
    SimpleShuffle,
    LeastBusy,
    LatencyBased {
        ttl: Duration,
        buffer: f64,
        max_list: usize,
    },
    UsageBased,
    UsageBasedV2,
    CostBased,
    /// sluice's health-aware power-of-two-choices (see `strategy::p2c`).
    AdaptiveP2c,
}

impl Strategy {
    /// The names `router_settings.routing_strategy` accepts.
    pub const NAMES: &'static [&'static str] = &[
        "simple-shuffle",
        "least-busy",
        "latency-based-routing",
        "usage-based-routing",
        "usage-based-routing-v2",
        "cost-based-routing",
        "adaptive-p2c",
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Strategy::SimpleShuffle => "simple-shuffle",
            Strategy::LeastBusy => "least-busy",
            Strategy::LatencyBased { .. } => "latency-based-routing",
            Strategy::UsageBased => "usage-based-routing",
            Strategy::UsageBasedV2 => "usage-based-routing-v2",
            Strategy::CostBased => "cost-based-routing",
            Strategy::AdaptiveP2c => "adaptive-p2c",
        }
    }
}

/// Per-exception counts (`retry_policy`, `allowed_fails_policy`), keyed by error class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PerKind(pub HashMap<ErrorKind, u32>);

impl PerKind {
    pub fn get(&self, kind: ErrorKind) -> Option<u32> {
        self.0.get(&kind).copied()
    }

    /// Maps LiteLLM's policy field names (`RateLimitErrorRetries`, `TimeoutErrorAllowedFails`, …).
    pub fn kind_for_field(field: &str) -> Option<ErrorKind> {
        let stem = field.strip_suffix("Retries").or_else(|| field.strip_suffix("AllowedFails"))?;
        Some(match stem {
            "BadRequestError" => ErrorKind::BadRequest,
            "AuthenticationError" => ErrorKind::Authentication,
            "TimeoutError" => ErrorKind::Timeout,
            "RateLimitError" => ErrorKind::RateLimit,
            "ContentPolicyViolationError" => ErrorKind::ContentPolicyViolation,
            "InternalServerError" => ErrorKind::InternalServer,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub strategy: Strategy,
    pub num_retries: u32,
    /// Floor for the sleep between retries (`retry_after`).
    pub retry_after: Duration,
    pub retry_policy: Option<PerKind>,
    /// `allowed_fails` set to a non-default value: LiteLLM's legacy cooldown mode.
    pub allowed_fails: Option<u32>,
    pub allowed_fails_policy: Option<PerKind>,
    pub cooldown_time: Duration,
    pub disable_cooldowns: bool,
    pub fallbacks: Vec<(String, Vec<String>)>,
    pub context_window_fallbacks: Vec<(String, Vec<String>)>,
    pub content_policy_fallbacks: Vec<(String, Vec<String>)>,
    pub max_fallbacks: u32,
    pub enable_pre_call_checks: bool,
    /// `model_group_alias`: alias → (group, hidden from /models).
    pub aliases: HashMap<String, (String, bool)>,
    pub default_max_parallel_requests: Option<u32>,
    /// Seed for the router's random choices (tests); `None` seeds from the OS.
    pub seed: Option<u64>,
    /// How many retries each group may spend beyond its first attempts.
    pub retry_budget: RetryBudgetSettings,
    /// `enable_tag_filtering`: requests' tags pick deployments ([`crate::tags`]).
    pub enable_tag_filtering: bool,
    /// `tag_filtering_match_any`: a deployment needs one of the request's tags (else all).
    pub tag_filtering_match_any: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            strategy: Strategy::SimpleShuffle,
            num_retries: 2,
            retry_after: Duration::ZERO,
            retry_policy: None,
            allowed_fails: None,
            allowed_fails_policy: None,
            cooldown_time: Duration::from_secs(5),
            disable_cooldowns: false,
            fallbacks: Vec::new(),
            context_window_fallbacks: Vec::new(),
            content_policy_fallbacks: Vec::new(),
            max_fallbacks: 5,
            enable_pre_call_checks: false,
            aliases: HashMap::new(),
            default_max_parallel_requests: None,
            seed: None,
            retry_budget: RetryBudgetSettings::default(),
            enable_tag_filtering: false,
            tag_filtering_match_any: true,
        }
    }
}

/// LiteLLM's cooldown constants (router_utils/cooldown_handlers.py, constants.py).
pub const FAILURE_THRESHOLD: f64 = 0.5;
pub const FAILURE_THRESHOLD_MIN_REQUESTS: u64 = 5;
pub const SINGLE_DEPLOYMENT_TRAFFIC_THRESHOLD: u64 = 1000;
/// LiteLLM's retry backoff constants (utils.py `_calculate_retry_after`).
pub const INITIAL_RETRY_DELAY: f64 = 0.5;
pub const MAX_RETRY_DELAY: f64 = 8.0;
pub const JITTER: f64 = 0.75;
