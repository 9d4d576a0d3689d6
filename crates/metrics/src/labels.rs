//! Label sets, one struct per distinct LiteLLM label list.
//!
//! Field names are the label names and field order is the order LiteLLM declares them in
//! (reference §5), so a scrape of sluice lines up with a scrape of LiteLLM. The key, team and user
//! labels (`hashed_api_key`, `team`, `user_email`, …) come from the request's
//! [`Caller`](crate::Caller); requests without one (master key, no auth) leave them empty, as
//! LiteLLM does for unauthenticated traffic, so a dashboard's `sum by (team)` keeps working.
//! `client_ip` stays empty: sluice does not record it yet.

use prometheus_client::encoding::EncodeLabelSet;

/// `litellm_proxy_total_requests_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyRequestLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub requested_model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub status_code: String,
    pub user_email: String,
    pub route: String,
    pub client_ip: String,
    pub user_agent: String,
    pub model_id: String,
}

/// `litellm_proxy_failed_requests_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProxyFailureLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub requested_model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub user_email: String,
    pub exception_status: String,
    pub exception_class: String,
    pub route: String,
    pub client_ip: String,
    pub user_agent: String,
    pub model_id: String,
}

/// `litellm_request_total_latency_metric` and `litellm_request_queue_time_seconds`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLatencyLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub requested_model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub model: String,
    pub model_id: String,
}

/// `litellm_llm_api_latency_metric` and `litellm_llm_api_time_to_first_token_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLatencyLabels {
    pub model: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
    pub requested_model: String,
    pub end_user: String,
    pub user: String,
    pub model_id: String,
}

/// `litellm_total_tokens_metric`, `litellm_input_tokens_metric`, `litellm_output_tokens_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub user_email: String,
    pub requested_model: String,
    pub model_id: String,
}

/// `litellm_overhead_latency_metric`, `litellm_remaining_requests_metric`,
/// `litellm_remaining_tokens_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentGroupLabels {
    pub model_group: String,
    pub api_provider: String,
    pub api_base: String,
    pub litellm_model_name: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub model_id: String,
}

/// `litellm_deployment_total_requests`, `litellm_deployment_success_responses`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentRequestLabels {
    pub requested_model: String,
    pub litellm_model_name: String,
    pub model_id: String,
    pub api_base: String,
    pub api_provider: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
    pub client_ip: String,
    pub user_agent: String,
}

/// `litellm_deployment_failure_responses`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentFailureLabels {
    pub requested_model: String,
    pub litellm_model_name: String,
    pub model_id: String,
    pub api_base: String,
    pub api_provider: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
    pub client_ip: String,
    pub user_agent: String,
    pub exception_status: String,
    pub exception_class: String,
}

/// `litellm_deployment_latency_per_output_token`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PerTokenLabels {
    pub litellm_model_name: String,
    pub model_id: String,
    pub api_base: String,
    pub api_provider: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
}

/// `litellm_deployment_state`, `litellm_deployment_tpm_limit`, `litellm_deployment_rpm_limit`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeploymentIdLabels {
    pub litellm_model_name: String,
    pub model_id: String,
    pub api_base: String,
    pub api_provider: String,
}

/// `litellm_deployment_cooled_down`. LiteLLM fills `litellm_model_name` with the model *group*
/// here (unlike every other deployment metric); dashboards filter on that.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CooldownLabels {
    pub litellm_model_name: String,
    pub model_id: String,
    pub api_base: String,
    pub api_provider: String,
    pub exception_status: String,
}

/// `litellm_deployment_successful_fallbacks`, `litellm_deployment_failed_fallbacks`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FallbackLabels {
    pub requested_model: String,
    pub fallback_model: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
    pub exception_status: String,
    pub exception_class: String,
    pub model_id: String,
}

/// `litellm_spend_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpendLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub user_email: String,
    pub client_ip: String,
    pub user_agent: String,
    pub model_id: String,
}

/// `litellm_llm_api_failed_requests_metric` (deprecated in LiteLLM, kept for its dashboards).
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LlmApiFailedLabels {
    pub end_user: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub model: String,
    pub team: String,
    pub team_alias: String,
    pub user: String,
    pub model_id: String,
}

/// `litellm_remaining_api_key_budget_metric`, `litellm_api_key_max_budget_metric`,
/// `litellm_api_key_budget_remaining_hours_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyBudgetLabels {
    pub hashed_api_key: String,
    pub api_key_alias: String,
}

/// `litellm_remaining_team_budget_metric`, `litellm_team_max_budget_metric`,
/// `litellm_team_budget_remaining_hours_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TeamBudgetLabels {
    pub team: String,
    pub team_alias: String,
}

/// `litellm_remaining_user_budget_metric`, `litellm_user_max_budget_metric`,
/// `litellm_user_budget_remaining_hours_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UserBudgetLabels {
    pub user: String,
}

/// `litellm_remaining_api_key_requests_for_model`, `litellm_remaining_api_key_tokens_for_model`.
/// `model` is the model group, as in LiteLLM.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KeyModelLabels {
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub model: String,
    pub model_id: String,
}

/// `sluice_overhead_seconds`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OverheadLabels {
    pub route: String,
    pub api_provider: String,
}

/// `litellm_cache_hits_metric`, `litellm_cache_misses_metric`, `litellm_cached_tokens_metric`.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub model: String,
    pub hashed_api_key: String,
    pub api_key_alias: String,
    pub team: String,
    pub team_alias: String,
    pub end_user: String,
    pub user: String,
    pub model_id: String,
}
