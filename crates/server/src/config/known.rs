//! The keys LiteLLM reads in each config section, whether or not sluice acts on them: a key that
//! matches none of them is most likely a misspelling, and the nearest known key is suggested.

/// Top-level sections (reference §1), with sluice's own. The eight sluice reads come first
/// (`TOP_LEVEL_IMPLEMENTED` in `config` takes them from here).
pub(crate) const TOP_LEVEL: &[&str] = &[
    "model_list",
    "litellm_settings",
    "router_settings",
    "general_settings",
    "environment_variables",
    "include",
    "sluice_settings",
    "callback_settings",
    "credential_list",
    "guardrails",
    "prompts",
    "assistant_settings",
    "finetune_settings",
    "files_settings",
    "default_vertex_config",
    "search_tools",
    "mcp_servers",
    "vector_store_registry",
];

/// `general_settings` (reference §1.5 and LiteLLM's config settings page).
pub(crate) const GENERAL: &[&str] = &[
    "master_key",
    "database_url",
    "database_connection_pool_limit",
    "database_connection_timeout",
    "allow_requests_on_db_unavailable",
    "store_model_in_db",
    "store_prompts_in_spend_logs",
    "disable_spend_logs",
    "disable_spend_updates",
    "proxy_batch_write_at",
    "proxy_budget_rescheduler_min_time",
    "proxy_budget_rescheduler_max_time",
    "proxy_batch_polling_interval",
    "user_api_key_cache_ttl",
    "alerting",
    "alerting_threshold",
    "alerting_args",
    "alert_types",
    "alert_to_webhook_url",
    "spend_report_frequency",
    "background_health_checks",
    "health_check_interval",
    "health_check_details",
    "max_parallel_requests",
    "global_max_parallel_requests",
    "custom_auth",
    "custom_auth_settings",
    "custom_key_generate",
    "custom_sso",
    "enforce_user_param",
    "enforced_params",
    "reject_clientside_metadata_tags",
    "allowed_routes",
    "admin_only_routes",
    "public_routes",
    "allowed_ips",
    "use_x_forwarded_for",
    "model_ip_policies",
    "litellm_key_header_name",
    "user_header_name",
    "max_request_size_mb",
    "max_response_size_mb",
    "maximum_spend_logs_retention_period",
    "maximum_spend_logs_retention_interval",
    "ui_access_mode",
    "pass_through_endpoints",
    "forward_client_headers_to_llm_api",
    "forward_openai_org_id",
    "use_redis_transaction_buffer",
    "token_rate_limit_type",
    "litellm_license",
    "key_management_system",
    "key_management_settings",
    "use_google_kms",
    "use_azure_key_vault",
    "enable_jwt_auth",
    "litellm_jwtauth",
    "enable_oauth2_auth",
    "enable_oauth2_proxy_auth",
    "allow_client_side_credentials",
    "disable_master_key_return",
    "disable_adding_master_key_hash_to_db",
    "disable_reset_budget",
    "disable_retry_on_max_parallel_request_limit_error",
    "disable_prisma_schema_update",
    "infer_model_from_keys",
    "role_permissions",
    "service_account_settings",
    "default_team_disabled",
    "require_auth_for_metrics_endpoint",
    "embedding_model",
    "moderation_model",
];

/// `router_settings` (reference §1.3).
pub(crate) const ROUTER: &[&str] = &[
    "routing_strategy",
    "routing_strategy_args",
    "num_retries",
    "max_fallbacks",
    "timeout",
    "stream_timeout",
    "retry_after",
    "allowed_fails",
    "allowed_fails_policy",
    "retry_policy",
    "model_group_retry_policy",
    "cooldown_time",
    "disable_cooldowns",
    "fallbacks",
    "default_fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "enable_pre_call_checks",
    "optional_pre_call_checks",
    "redis_host",
    "redis_port",
    "redis_password",
    "redis_url",
    "redis_db",
    "cache_responses",
    "cache_kwargs",
    "caching_groups",
    "client_ttl",
    "model_group_alias",
    "default_max_parallel_requests",
    "default_priority",
    "polling_interval",
    "enable_tag_filtering",
    "tag_filtering_match_any",
    "provider_budget_config",
    "default_litellm_params",
    "debug_level",
    "set_verbose",
    "health_check_interval",
];

/// `litellm_settings` (reference §1.4).
pub(crate) const LITELLM: &[&str] = &[
    "cache",
    "cache_params",
    "callbacks",
    "success_callback",
    "failure_callback",
    "service_callback",
    "drop_params",
    "modify_params",
    "request_timeout",
    "num_retries",
    "fallbacks",
    "default_fallbacks",
    "context_window_fallbacks",
    "content_policy_fallbacks",
    "allowed_fails",
    "set_verbose",
    "json_logs",
    "turn_off_message_logging",
    "redact_messages_in_exceptions",
    "redact_user_api_key_info",
    "max_budget",
    "budget_duration",
    "max_parallel_requests",
    "max_end_user_budget",
    "max_internal_user_budget",
    "internal_user_budget_duration",
    "default_max_internal_user_budget",
    "default_internal_user_params",
    "default_key_generate_params",
    "upperbound_key_generate_params",
    "key_generation_settings",
    "default_team_settings",
    "force_ipv4",
    "enable_preview_features",
    "prometheus_metrics_config",
    "custom_prometheus_metadata_labels",
    "custom_prometheus_tags",
    "require_auth_for_metrics_endpoint",
    "prometheus_initialize_budget_metrics",
    "enable_end_user_cost_tracking_prometheus_only",
    "disable_end_user_cost_tracking",
    "guardrails",
    "pre_call_rules",
    "post_call_rules",
    "model_group_settings",
    "custom_provider_map",
    "tag_budget_config",
    "public_model_groups",
    "s3_callback_params",
];

/// `model_list[].litellm_params` (reference §1.2), with the completion parameters LiteLLM
/// passes on to the provider as defaults.
pub(crate) const LITELLM_PARAMS: &[&str] = &[
    "model",
    "api_base",
    "base_url",
    "api_key",
    "api_version",
    "custom_llm_provider",
    "rpm",
    "tpm",
    "weight",
    "order",
    "timeout",
    "stream_timeout",
    "max_retries",
    "num_retries",
    "cooldown_time",
    "max_parallel_requests",
    "organization",
    "region_name",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "aws_region_name",
    "aws_role_name",
    "aws_session_name",
    "aws_profile_name",
    "aws_web_identity_token",
    "aws_sts_endpoint",
    "vertex_project",
    "vertex_location",
    "vertex_credentials",
    "watsonx_region_name",
    "project_id",
    "space_id",
    "tenant_id",
    "predibase_tenant_id",
    "azure_ad_token",
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_second",
    "output_cost_per_second",
    "cache_read_input_token_cost",
    "cache_creation_input_token_cost",
    "output_cost_per_image",
    "input_cost_per_image",
    "input_cost_per_pixel",
    "input_cost_per_character",
    "input_cost_per_token_batches",
    "output_cost_per_token_batches",
    "input_cost_per_query",
    "max_budget",
    "budget_duration",
    "tags",
    "mock_response",
    "drop_params",
    "use_in_pass_through",
    "use_litellm_proxy",
    "merge_reasoning_content_in_choices",
    "litellm_credential_name",
    "configurable_clientside_auth_params",
    "max_file_size_mb",
    "model_info",
    "use_psc_endpoint_format",
    "temperature",
    "max_tokens",
    "top_p",
    "stop",
    "seed",
    "extra_headers",
    "extra_body",
    "headers",
    "response_format",
    "stream_options",
];

/// The keys of one `model_list` entry.
pub(crate) const MODEL_ENTRY: &[&str] = &["model_name", "litellm_params", "model_info", "rpm", "tpm"];

/// The known keys of the section a (normalised) YAML path's last key lives in, if sluice keeps a
/// list for it.
pub(crate) fn keys_for(section: &str) -> Option<&'static [&'static str]> {
    Some(match section {
        "" => TOP_LEVEL,
        "general_settings" => GENERAL,
        "router_settings" => ROUTER,
        "litellm_settings" => LITELLM,
        "model_list[]" => MODEL_ENTRY,
        "model_list[].litellm_params" => LITELLM_PARAMS,
        _ => return None,
    })
}

/// The known key nearest to `word`, when it is close enough to be a slip of the keyboard: at
/// most two edits, and fewer than a third of the word.
pub(crate) fn nearest(word: &str, known: &[&'static str]) -> Option<&'static str> {
    let limit = (word.chars().count() / 3).clamp(1, 2);
    known
        .iter()
        .map(|k| (*k, edit_distance(word, k)))
        .filter(|(_, d)| *d <= limit)
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

/// Levenshtein distance, counting a swap of two neighbouring letters as one edit (the commonest
/// typing slip).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1).min(row[j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_known_key() {
        assert_eq!(nearest("maser_key", GENERAL), Some("master_key"));
        assert_eq!(nearest("router_setings", TOP_LEVEL), Some("router_settings"));
        assert_eq!(nearest("routing_stratgy", ROUTER), Some("routing_strategy"));
        assert_eq!(nearest("master_kye", GENERAL), Some("master_key"));
        assert_eq!(nearest("api_bse", LITELLM_PARAMS), Some("api_base"));
        assert_eq!(nearest("colour", GENERAL), None);
        assert_eq!(nearest("x", TOP_LEVEL), None);
    }
}
