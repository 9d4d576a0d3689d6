//! Every metric family sluice exports, registered under LiteLLM's names.
//!
//! Counters are registered without `_total`; the Prometheus text encoder appends it, so
//! `litellm_deployment_cooled_down` is scraped as `litellm_deployment_cooled_down_total`, exactly
//! as Python's `prometheus_client` exposes LiteLLM's counters.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::histogram::{AtomicHistogram, DEFAULT_BUCKETS, LATENCY_BUCKETS, OVERHEAD_BUCKETS};
use crate::labels::*;

pub(crate) type Counters<S> = Family<S, Counter>;
pub(crate) type Gauges<S> = Family<S, Gauge>;
pub(crate) type FloatGauge = Gauge<f64, AtomicU64>;
pub(crate) type FloatGauges<S> = Family<S, FloatGauge>;
pub(crate) type FloatCounter = Counter<f64, AtomicU64>;
pub(crate) type Histograms<S> = Family<S, AtomicHistogram, fn() -> AtomicHistogram>;

fn latency_histogram() -> AtomicHistogram {
    AtomicHistogram::new(LATENCY_BUCKETS)
}

/// A histogram family on `LATENCY_BUCKETS`.
fn latency<S: Clone + std::hash::Hash + Eq>() -> Histograms<S> {
    Histograms::new_with_constructor(latency_histogram)
}

fn default_histogram() -> AtomicHistogram {
    AtomicHistogram::new(DEFAULT_BUCKETS)
}

fn overhead_histogram() -> AtomicHistogram {
    AtomicHistogram::new(OVERHEAD_BUCKETS)
}

/// The three gauges LiteLLM keeps per budget owner (key, team or user).
#[derive(Debug)]
pub(crate) struct BudgetFamilies<S> {
    pub remaining: FloatGauges<S>,
    pub max: FloatGauges<S>,
    pub remaining_hours: FloatGauges<S>,
}

impl<S: Clone + std::hash::Hash + Eq> BudgetFamilies<S> {
    fn new() -> Self {
        BudgetFamilies {
            remaining: FloatGauges::default(),
            max: FloatGauges::default(),
            remaining_hours: FloatGauges::default(),
        }
    }
}

/// Handles to the families; cloning a `Family` shares its series, so these are the same series
/// the registry encodes.
#[derive(Debug)]
pub(crate) struct Families {
    pub proxy_requests: Counters<ProxyRequestLabels>,
    pub proxy_failures: Counters<ProxyFailureLabels>,
    pub request_latency: Histograms<RequestLatencyLabels>,
    pub queue_time: Histograms<RequestLatencyLabels>,
    /// `litellm_requests_metric` (deprecated): successes, with the spend metric's labels.
    pub requests: Counters<SpendLabels>,
    /// `litellm_llm_api_failed_requests_metric` (deprecated).
    pub llm_api_failed: Counters<LlmApiFailedLabels>,
    pub api_latency: Histograms<ApiLatencyLabels>,
    pub ttft: Histograms<ApiLatencyLabels>,
    pub overhead_latency: Histograms<DeploymentGroupLabels>,
    pub total_tokens: Counters<TokenLabels>,
    pub input_tokens: Counters<TokenLabels>,
    pub output_tokens: Counters<TokenLabels>,
    pub deployment_total: Counters<DeploymentRequestLabels>,
    pub deployment_success: Counters<DeploymentRequestLabels>,
    pub deployment_failure: Counters<DeploymentFailureLabels>,
    pub per_output_token: Histograms<PerTokenLabels>,
    pub state: Gauges<DeploymentIdLabels>,
    pub cooled_down: Counters<CooldownLabels>,
    pub fallback_ok: Counters<FallbackLabels>,
    pub fallback_failed: Counters<FallbackLabels>,
    pub tpm_limit: FloatGauges<DeploymentIdLabels>,
    pub rpm_limit: FloatGauges<DeploymentIdLabels>,
    pub remaining_requests: FloatGauges<DeploymentGroupLabels>,
    pub remaining_tokens: FloatGauges<DeploymentGroupLabels>,
    pub spend: Family<SpendLabels, FloatCounter>,
    pub key_budget: BudgetFamilies<KeyBudgetLabels>,
    pub team_budget: BudgetFamilies<TeamBudgetLabels>,
    pub user_budget: BudgetFamilies<UserBudgetLabels>,
    pub key_remaining_requests: FloatGauges<KeyModelLabels>,
    pub key_remaining_tokens: FloatGauges<KeyModelLabels>,
    pub sluice_overhead: Histograms<OverheadLabels>,
}

impl Families {
    pub(crate) fn register(registry: &mut Registry) -> Families {
        let f = Families {
            proxy_requests: Counters::default(),
            proxy_failures: Counters::default(),
            request_latency: latency(),
            queue_time: latency(),
            requests: Counters::default(),
            llm_api_failed: Counters::default(),
            api_latency: latency(),
            ttft: latency(),
            overhead_latency: latency(),
            total_tokens: Counters::default(),
            input_tokens: Counters::default(),
            output_tokens: Counters::default(),
            deployment_total: Counters::default(),
            deployment_success: Counters::default(),
            deployment_failure: Counters::default(),
            per_output_token: Histograms::new_with_constructor(default_histogram),
            state: Gauges::default(),
            cooled_down: Counters::default(),
            fallback_ok: Counters::default(),
            fallback_failed: Counters::default(),
            tpm_limit: FloatGauges::default(),
            rpm_limit: FloatGauges::default(),
            remaining_requests: FloatGauges::default(),
            remaining_tokens: FloatGauges::default(),
            spend: Family::default(),
            key_budget: BudgetFamilies::new(),
            team_budget: BudgetFamilies::new(),
            user_budget: BudgetFamilies::new(),
            key_remaining_requests: FloatGauges::default(),
            key_remaining_tokens: FloatGauges::default(),
            sluice_overhead: Histograms::new_with_constructor(overhead_histogram),
        };
        // Help texts follow LiteLLM's where they exist, so a side-by-side scrape reads the same.
        let r = registry;
        r.register(
            "litellm_proxy_total_requests_metric",
            "Total number of requests made to the proxy server - track number of client side requests",
            f.proxy_requests.clone(),
        );
        r.register(
            "litellm_proxy_failed_requests_metric",
            "Total number of failed responses from proxy - the client did not get a success response from litellm proxy",
            f.proxy_failures.clone(),
        );
        r.register(
            "litellm_request_total_latency_metric",
            "Total latency (seconds) for a request to LiteLLM",
            f.request_latency.clone(),
        );
        r.register(
            "litellm_request_queue_time_seconds",
            "Time spent in the queue before the LLM API call starts (seconds)",
            f.queue_time.clone(),
        );
        r.register(
            "litellm_requests_metric",
            "deprecated - use litellm_proxy_total_requests_metric. Total number of LLM calls to litellm - track total per API Key, team, user",
            f.requests.clone(),
        );
        r.register(
            "litellm_llm_api_failed_requests_metric",
            "deprecated - use litellm_proxy_failed_requests_metric. Total number of failed LLM API calls via litellm",
            f.llm_api_failed.clone(),
        );
        r.register(
            "litellm_llm_api_latency_metric",
            "Total latency (seconds) for a models LLM API call",
            f.api_latency.clone(),
        );
        r.register(
            "litellm_llm_api_time_to_first_token_metric",
            "Time to first token for a models LLM API call",
            f.ttft.clone(),
        );
        r.register(
            "litellm_overhead_latency_metric",
            "Latency overhead (seconds) added by LiteLLM processing",
            f.overhead_latency.clone(),
        );
        r.register(
            "litellm_total_tokens_metric",
            "Total number of input + output tokens from LLM requests",
            f.total_tokens.clone(),
        );
        r.register(
            "litellm_input_tokens_metric",
            "Total number of input tokens from LLM requests",
            f.input_tokens.clone(),
        );
        r.register(
            "litellm_output_tokens_metric",
            "Total number of output tokens from LLM requests",
            f.output_tokens.clone(),
        );
        r.register(
            "litellm_deployment_total_requests",
            "LLM Deployment Analytics - Total number of LLM API calls via litellm - success + failure",
            f.deployment_total.clone(),
        );
        r.register(
            "litellm_deployment_success_responses",
            "LLM Deployment Analytics - Total number of successful LLM API calls via litellm",
            f.deployment_success.clone(),
        );
        r.register(
            "litellm_deployment_failure_responses",
            "LLM Deployment Analytics - Total number of failed LLM API calls for a specific LLM deploymeny. exception_status is the status of the exception from the llm api",
            f.deployment_failure.clone(),
        );
        r.register(
            "litellm_deployment_latency_per_output_token",
            "LLM Deployment Analytics - Latency per output token",
            f.per_output_token.clone(),
        );
        r.register(
            "litellm_deployment_state",
            "LLM Deployment Analytics - The state of the deployment: 0 = healthy, 1 = partial outage, 2 = complete outage",
            f.state.clone(),
        );
        r.register(
            "litellm_deployment_cooled_down",
            "LLM Deployment Analytics - Number of times a deployment has been cooled down by LiteLLM load balancing logic. exception_status is the status of the exception that caused the deployment to be cooled down",
            f.cooled_down.clone(),
        );
        r.register(
            "litellm_deployment_successful_fallbacks",
            "LLM Deployment Analytics - Number of successful fallback requests from primary model -> fallback model",
            f.fallback_ok.clone(),
        );
        r.register(
            "litellm_deployment_failed_fallbacks",
            "LLM Deployment Analytics - Number of failed fallback requests from primary model -> fallback model",
            f.fallback_failed.clone(),
        );
        r.register("litellm_deployment_tpm_limit", "Deployment TPM limit found in config", f.tpm_limit.clone());
        r.register("litellm_deployment_rpm_limit", "Deployment RPM limit found in config", f.rpm_limit.clone());
        r.register(
            "litellm_remaining_requests_metric",
            "LLM Deployment Analytics - remaining requests for model, returned from LLM API Provider",
            f.remaining_requests.clone(),
        );
        r.register(
            "litellm_remaining_tokens_metric",
            "remaining tokens for model, returned from LLM API Provider",
            f.remaining_tokens.clone(),
        );
        r.register("litellm_spend_metric", "Total spend on LLM requests", f.spend.clone());
        r.register(
            "litellm_remaining_team_budget_metric",
            "Remaining budget for team",
            f.team_budget.remaining.clone(),
        );
        r.register("litellm_team_max_budget_metric", "Maximum budget set for team", f.team_budget.max.clone());
        r.register(
            "litellm_team_budget_remaining_hours_metric",
            "Remaining days for team budget to be reset",
            f.team_budget.remaining_hours.clone(),
        );
        r.register(
            "litellm_remaining_api_key_budget_metric",
            "Remaining budget for api key",
            f.key_budget.remaining.clone(),
        );
        r.register("litellm_api_key_max_budget_metric", "Maximum budget set for api key", f.key_budget.max.clone());
        r.register(
            "litellm_api_key_budget_remaining_hours_metric",
            "Remaining hours for api key budget to be reset",
            f.key_budget.remaining_hours.clone(),
        );
        r.register(
            "litellm_remaining_user_budget_metric",
            "Remaining budget for user",
            f.user_budget.remaining.clone(),
        );
        r.register("litellm_user_max_budget_metric", "Maximum budget set for user", f.user_budget.max.clone());
        r.register(
            "litellm_user_budget_remaining_hours_metric",
            "Remaining hours for user budget to be reset",
            f.user_budget.remaining_hours.clone(),
        );
        r.register(
            "litellm_remaining_api_key_requests_for_model",
            "Remaining Requests API Key can make for model (model based rpm limit on key)",
            f.key_remaining_requests.clone(),
        );
        r.register(
            "litellm_remaining_api_key_tokens_for_model",
            "Remaining Tokens API Key can make for model (model based tpm limit on key)",
            f.key_remaining_tokens.clone(),
        );
        r.register(
            "sluice_overhead_seconds",
            "Time sluice spent on a request itself: total time minus time waiting on upstreams",
            f.sluice_overhead.clone(),
        );
        f
    }
}
