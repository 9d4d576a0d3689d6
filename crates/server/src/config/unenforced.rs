//! Settings sluice reads but does not act on, sorted by what ignoring them would cost.
//!
//! A LiteLLM user writes some settings to *deny or limit* something: a guardrail, a route or IP
//! allowlist, a budget, a concurrency cap. Running without enforcing one of those opens what the
//! user closed, so it stops the start (unless `--allow-unenforced-settings` says to go on). Every
//! other unimplemented setting (logging, alerting, UI cosmetics) is listed as ignored. The one
//! table below is the decision; a setting that a parser implements never reaches it, because only
//! the keys the parsers leave over are reviewed.

use super::known;
use serde_yaml_ng::{Mapping, Value};

/// Settings that deny or limit something, by YAML path (`[]` for any list index), with what
/// running without them would let through.
const DENY: &[(&str, &str)] = &[
    ("guardrails", "guardrails (content filters, PII masking, prompt-injection checks) are not implemented, so requests they would block or rewrite would reach the model"),
    ("general_settings.admin_only_routes", "route restrictions for non-admin keys are not implemented, so those routes would stay open to every key"),
    ("general_settings.enforced_params", "required request parameters are not checked, so requests without them would be served"),
    ("general_settings.reject_clientside_metadata_tags", "client-set metadata tags are not rejected"),
    ("general_settings.max_response_size_mb", "the answer size limit is not enforced"),
    ("general_settings.custom_auth", "a custom auth function cannot run in sluice; only master and virtual keys would be checked"),
    ("general_settings.custom_key_generate", "the custom key-generation check cannot run in sluice, so any admin request would mint keys"),
    ("general_settings.enable_jwt_auth", "JWT authentication and its role and team restrictions are not implemented"),
    ("general_settings.key_management_system", "secrets from a key management system are not read, so the master key and credentials would not be the ones it holds"),
    ("general_settings.key_management_settings", "secrets from a key management system are not read"),
    ("general_settings.use_google_kms", "secrets encrypted with Google KMS are not decrypted"),
    ("general_settings.use_azure_key_vault", "secrets from Azure Key Vault are not read"),
    ("general_settings.model_ip_policies", "per-model IP restrictions are not enforced"),
    ("general_settings.role_permissions", "custom role permissions are not enforced"),
    ("general_settings.user_header_name", "end users named by this header would not be tracked, so their budgets would not apply"),
    ("general_settings.service_account_settings", "required fields for service-account keys are not enforced"),
    ("general_settings.default_team_disabled", "the restriction on creating personal keys is not enforced"),
    ("litellm_settings.guardrails", "guardrails are not implemented, so requests they would block or rewrite would reach the model"),
    ("litellm_settings.max_internal_user_budget", "the default budget of internal users is not applied"),
    ("litellm_settings.default_max_internal_user_budget", "the default budget of internal users is not applied"),
    ("litellm_settings.internal_user_budget_duration", "the budget period of internal users is not applied"),
    ("litellm_settings.default_internal_user_params", "the defaults (budgets, models) of new internal users are not applied"),
    ("litellm_settings.default_key_generate_params", "the defaults (budgets, models, limits) of new keys are not applied"),
    ("litellm_settings.upperbound_key_generate_params", "the upper bounds on new keys' budgets and limits are not enforced"),
    ("litellm_settings.key_generation_settings", "the restrictions on who may generate keys are not enforced"),
    ("litellm_settings.pre_call_rules", "rule functions cannot run in sluice, so requests they would reject would be served"),
    ("litellm_settings.post_call_rules", "rule functions cannot run in sluice, so answers they would reject would be returned"),
    ("litellm_settings.tag_budget_config", "tag budgets are not enforced"),
    ("router_settings.provider_budget_config", "provider budgets are not enforced"),
    ("router_settings.optional_pre_call_checks", "these pre-call checks (budget limiting, model rate limits) are not run"),
    ("model_list[].litellm_params.max_budget", "deployment budgets are not enforced"),
    ("model_list[].litellm_params.budget_duration", "deployment budgets are not enforced"),
    ("model_list[].litellm_params.max_file_size_mb", "the file size limit is not enforced"),
];

/// Settings that list options of which only some deny or limit: refused only when one of those
/// is listed.
const DENY_ONLY_WITH: &[(&str, &[&str])] =
    &[("router_settings.optional_pre_call_checks", &["router_budget_limiting", "enforce_model_rate_limits"])];

/// Callbacks that block, mask or moderate requests rather than log them.
const DENY_CALLBACKS: &[&str] = &[
    "llamaguard_moderations",
    "llmguard_moderations",
    "openai_moderations",
    "google_text_moderation",
    "azure_content_safety",
    "presidio",
    "hide_secrets",
    "lakera_prompt_injection",
    "detect_prompt_injection",
    "banned_keywords",
    "blocked_user_check",
    "aporia",
    "bedrock_guardrails",
    "guardrails_ai",
    "secret_detection",
    "pii_masking",
];

/// Implemented settings that deny or limit something: a misspelling of one of them leaves it
/// unset, which opens what it would close.
const GUARDS: &[&str] = &[
    "general_settings",
    "litellm_settings",
    "router_settings",
    "general_settings.master_key",
    "general_settings.allowed_routes",
    "general_settings.allowed_ips",
    "general_settings.use_x_forwarded_for",
    "general_settings.enforce_user_param",
    "general_settings.max_request_size_mb",
    "litellm_settings.max_end_user_budget",
    "router_settings.default_max_parallel_requests",
    "model_list[].litellm_params.rpm",
    "model_list[].litellm_params.tpm",
    "model_list[].litellm_params.max_parallel_requests",
];

/// Splits the parsers' ignored lines into those that stay ignored (with a "did you mean" where a
/// key looks misspelled) and those that stop the start.
pub(crate) fn review(root: &Mapping, ignored: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    let deny_callbacks = callbacks_that_deny(root);
    for line in ignored {
        let Some((path, _)) = line.split_once(": ") else {
            kept.push(line);
            continue;
        };
        let pattern = normalise(path);
        if let Some(name) = callback_named(&line) {
            if deny_callbacks.iter().any(|(_, n)| n == name) {
                continue;
            }
        }
        if let Some((_, why)) = DENY.iter().find(|(p, _)| *p == pattern) {
            let value = lookup(root, path);
            let harmless_options = DENY_ONLY_WITH.iter().find(|(p, _)| *p == pattern).is_some_and(|(_, deny)| {
                value
                    .and_then(Value::as_sequence)
                    .is_some_and(|l| !l.iter().any(|o| o.as_str().is_some_and(|o| deny.contains(&o))))
            });
            if is_off(value) {
                kept.push(format!("{path}: set to its off value; not implemented in sluice yet"));
            } else if harmless_options {
                kept.push(format!("{path}: not implemented in sluice yet"));
            } else {
                refused.push(format!("{path}: {why}"));
            }
            continue;
        }
        let (section, key) = pattern.rsplit_once('.').unwrap_or(("", pattern.as_str()));
        let suggestion =
            known::keys_for(section).filter(|keys| !keys.contains(&key)).and_then(|keys| known::nearest(key, keys));
        match suggestion {
            Some(s) => {
                let guarded = if section.is_empty() { s.to_string() } else { format!("{section}.{s}") };
                let msg = format!("{path}: unknown setting (did you mean {s}?)");
                if GUARDS.contains(&guarded.as_str()) || DENY.iter().any(|(p, _)| *p == guarded) {
                    refused.push(format!(
                        "{msg}; as written, {s} is not set, and it is a setting that restricts access or spend"
                    ));
                } else {
                    kept.push(msg);
                }
            }
            None => kept.push(line),
        }
    }
    for (path, name) in deny_callbacks {
        refused.push(format!(
            "{path}: callback \"{name}\" blocks or rewrites requests and cannot run in sluice, so what it would stop would reach the model"
        ));
    }
    (kept, refused)
}

/// The callbacks in `litellm_settings` that moderate or block: known guardrail callbacks, and
/// custom Python callbacks (`module.instance`), which commonly reject requests in a pre-call hook.
fn callbacks_that_deny(root: &Mapping) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(Value::Mapping(settings)) = root.get("litellm_settings") else { return out };
    for field in ["callbacks", "success_callback", "failure_callback"] {
        let names: Vec<&str> = match settings.get(field) {
            Some(Value::Sequence(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(one)) => vec![one.as_str()],
            _ => continue,
        };
        for (i, name) in names.into_iter().enumerate() {
            if DENY_CALLBACKS.contains(&name) || name.contains('.') {
                out.push((format!("litellm_settings.{field}[{i}]"), name.to_string()));
            }
        }
    }
    out
}

/// The callback an ignored line of the `callbacks` lists is about.
fn callback_named(line: &str) -> Option<&str> {
    line.split_once("callback \"").and_then(|(_, rest)| rest.split_once('"')).map(|(name, _)| name)
}

/// `model_list[3].litellm_params.tags` → `model_list[].litellm_params.tags`.
fn normalise(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            _ => out.push(c),
        }
    }
    out
}

/// The value at a YAML path like `model_list[3].litellm_params.tags`.
fn lookup<'a>(root: &'a Mapping, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut current = step(root, parts.next()?)?;
    for part in parts {
        let Value::Mapping(m) = current else { return None };
        current = step(m, part)?;
    }
    Some(current)
}

fn step<'a>(m: &'a Mapping, part: &str) -> Option<&'a Value> {
    match part.split_once('[') {
        Some((key, index)) => {
            let i: usize = index.trim_end_matches(']').parse().ok()?;
            match m.get(key)? {
                Value::Sequence(items) => items.get(i),
                _ => None,
            }
        }
        None => m.get(part),
    }
}

/// Whether a setting's value turns it off: absent, null, false, zero, or an empty list or map.
fn is_off(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty() || s.eq_ignore_ascii_case("false"),
        Some(Value::Sequence(s)) => s.is_empty(),
        Some(Value::Mapping(m)) => m.is_empty(),
        Some(Value::Bool(true)) | Some(Value::Tagged(_)) => false,
    }
}
