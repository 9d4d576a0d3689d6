//! Wildcard deployments (`model_name: "anthropic/*"`, `litellm_params.model: "anthropic/*"`):
//! the provider a requested name reaches, built on its first request and kept.
//!
//! The router matches the name to the wildcard group (`sluice_router::pattern`); here the name
//! fills the deployment's `model` template, which names the provider and the upstream model,
//! and that deployment's target is built as a configured one would be: its prices are the
//! concrete model's, and its spend logs name it.
//!
//! Metric labels stay bounded although callers choose the names: a concrete model in the price
//! table is labelled by its name, any other name by the wildcard pattern, one set of series for
//! all of them (a deployment's own prices do not count: they price any name a caller makes up). Targets are kept for every priced
//! name (the price table bounds them) and for up to [`MAX_UNPRICED`] others; past that an
//! unpriced name's target is built for its request and dropped.

use crate::app::{build_target, Target, TargetCtx};
use crate::config::{DeploymentSpec, Env};
use crate::proxy::upstream::Client;
use sluice_metrics::{DeploymentMetrics, Metrics};
use sluice_router::pattern::Pattern;
use sluice_wire::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Unpriced names whose targets are kept.
pub const MAX_UNPRICED: usize = 64;

/// A wildcard deployment's template and the targets built from it.
pub struct Wildcard {
    pattern: Pattern,
    spec: DeploymentSpec,
    env: Env,
    default_timeout: f64,
    default_stream_timeout: f64,
    drop_params: bool,
    metrics: Option<Arc<Metrics>>,
    client: Client,
    /// The one set of series for names not in the price table, labelled by the pattern.
    generic_metrics: Option<DeploymentMetrics>,
    /// Targets by requested name, and how many of them are unpriced.
    built: RwLock<(HashMap<String, Arc<Target>>, usize)>,
}

impl std::fmt::Debug for Wildcard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wildcard").field("pattern", &self.pattern.text()).field("id", &self.spec.id).finish()
    }
}

impl Wildcard {
    /// `spec` is a wildcard deployment (`DeploymentSpec::is_wildcard`).
    pub(crate) fn new(spec: &DeploymentSpec, ctx: &TargetCtx<'_>) -> Option<Wildcard> {
        let pattern = Pattern::parse(&spec.model_name)?;
        let generic_metrics = ctx.metrics.map(|m| {
            m.deployment(&sluice_metrics::DeploymentLabels {
                model_group: spec.model_name.clone(),
                litellm_model_name: spec.model_template.clone(),
                model_id: spec.id.clone(),
                api_base: spec.api_base.clone().unwrap_or_default(),
                api_provider: spec.model.provider.name.to_string(),
                tpm_limit: spec.tpm,
                rpm_limit: spec.rpm,
            })
        });
        Some(Wildcard {
            pattern,
            spec: spec.clone(),
            env: ctx.env.clone(),
            default_timeout: ctx.default_timeout,
            default_stream_timeout: ctx.default_stream_timeout,
            drop_params: ctx.drop_params,
            metrics: ctx.metrics.cloned(),
            client: ctx.client.clone(),
            generic_metrics,
            built: RwLock::new((HashMap::new(), 0)),
        })
    }

    /// The target serving `requested`: kept from an earlier request, or built now. An error is
    /// the client's (a name that names no provider sluice knows), in LiteLLM's words.
    pub fn target(&self, requested: &str) -> Result<Arc<Target>, ApiError> {
        if let Some(t) = self.built.read().unwrap_or_else(std::sync::PoisonError::into_inner).0.get(requested) {
            return Ok(t.clone());
        }
        let (target, priced) = self.build(requested)?;
        let target = Arc::new(target);
        let mut built = self.built.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Another request may have built it meanwhile: the first one kept stays.
        if let Some(kept) = built.0.get(requested) {
            return Ok(kept.clone());
        }
        if priced || built.1 < MAX_UNPRICED {
            built.1 += usize::from(!priced);
            built.0.insert(requested.to_string(), target.clone());
        }
        Ok(target)
    }

    /// The names this deployment serves that the price table knows (`anthropic/claude-…` for
    /// `anthropic/*`), as `/models` lists them; `None` when the template names no provider
    /// (`model: "*"`), so there is no list to draw from.
    pub fn known_names(&self) -> Option<Vec<String>> {
        let template =
            sluice_providers::parse_model(&self.spec.model_template, self.spec.custom_llm_provider.as_deref()).ok()?;
        let upstream = Pattern::parse(&template.upstream)?;
        let names = sluice_providers::pricing::models_of(template.provider.name)
            .into_iter()
            .filter_map(|m| upstream.upstream(self.pattern.text(), m))
            // Only names that route back here (a prefix pattern may map onto others).
            .filter(|n| self.pattern.matches(n))
            .collect();
        Some(names)
    }

    /// The concrete model string `requested` fills the template with (`anthropic/claude-x`).
    pub fn upstream(&self, requested: &str) -> Option<String> {
        self.pattern.upstream(&self.spec.model_template, requested)
    }

    fn build(&self, requested: &str) -> Result<(Target, bool), ApiError> {
        if !plain_name(requested) {
            return Err(ApiError::bad_request(format!(
                "model={requested} cannot be sent to a provider: a model name holds letters, digits and . _ - : / @ + = only, and no `.` or `..` path segment"
            ))
            .param("model"));
        }
        let model_str = self.upstream(requested).ok_or_else(|| no_provider(requested))?;
        let model = sluice_providers::parse_model(&model_str, self.spec.custom_llm_provider.as_deref())
            .map_err(|_| no_provider(requested))?;
        // Known to the price table: the names that may have series of their own (a deployment's
        // own prices apply to any name a caller makes up, so they do not count).
        let priced = sluice_providers::pricing::lookup(model.provider.name, &model.upstream).is_some();
        let mut spec = self.spec.clone();
        spec.model = model;
        // Spend logs and `x-litellm-model-group` name what was asked for.
        spec.model_name = requested.to_string();
        let tokens = std::cell::RefCell::new(HashMap::new());
        let ctx = TargetCtx {
            env: &self.env,
            default_timeout: self.default_timeout,
            default_stream_timeout: self.default_stream_timeout,
            // Series of their own only for priced names: the rest share the pattern's.
            metrics: self.metrics.as_ref().filter(|_| priced),
            drop_params: self.drop_params,
            vertex_tokens: &tokens,
            client: &self.client,
        };
        let mut target = build_target(&spec, &ctx).map_err(|why| {
            tracing::warn!(model_id = %self.spec.id, "wildcard deployment cannot serve {requested:?}: {why}");
            ApiError::bad_request(format!(
                "litellm.BadRequestError: deployment {} of model group \"{}\" cannot serve model={requested}: {why}",
                self.spec.id,
                self.pattern.text()
            ))
            .param("model")
        })?;
        if !priced {
            target.metrics = self.generic_metrics.clone();
        }
        Ok((target, priced))
    }

    /// The label a metric names `requested` by: itself when priced, else the pattern.
    pub fn label<'a>(&'a self, requested: &'a str) -> &'a str {
        let priced = self
            .upstream(requested)
            .and_then(|m| sluice_providers::parse_model(&m, self.spec.custom_llm_provider.as_deref()).ok())
            .is_some_and(|m| sluice_providers::pricing::lookup(m.provider.name, &m.upstream).is_some());
        if priced {
            requested
        } else {
            self.pattern.text()
        }
    }
}

/// Whether a requested name is safe to put where providers put model names, URL paths included
/// (Bedrock, Vertex, Gemini): a caller choosing the name must not be able to steer the request
/// to another path on the provider's host with the deployment's credentials.
fn plain_name(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-:/@+=".contains(c);
    !name.is_empty() && name.chars().all(allowed) && !name.split('/').any(|seg| seg == "." || seg == "..")
}

/// LiteLLM's answer to a model name no provider claims.
fn no_provider(model: &str) -> ApiError {
    ApiError::bad_request(format!(
        "litellm.BadRequestError: LLM Provider NOT provided. Pass in the LLM provider you are trying to call. You passed model={model}\n Pass model as E.g. For 'Huggingface' inference endpoints pass in `completion(model='huggingface/starcoder',..)` Learn more: https://docs.litellm.ai/docs/providers"
    ))
    .param("model")
}

/// The name the router is asked for a request naming `model`: `model` itself, or, as LiteLLM's
/// `get_pattern` does, for a bare name that no group, alias or pattern takes, the name with the
/// provider its name implies (`claude-3-opus` → `anthropic/claude-3-opus`) when a wildcard takes
/// that. Costs one check on configs without wildcards.
pub fn routed<'a>(router: &sluice_router::Router<Target>, model: &'a str) -> std::borrow::Cow<'a, str> {
    use std::borrow::Cow;
    if !router.has_wildcards() || router.resolve(model).is_some() {
        return Cow::Borrowed(model);
    }
    match sluice_providers::parse_model(model, None) {
        // Inferred, not written: the name has no provider prefix of its own.
        Ok(m) if m.upstream == model => {
            let prefixed = format!("{}/{model}", m.provider.name);
            match router.wildcard(&prefixed) {
                Some(_) => Cow::Owned(prefixed),
                None => Cow::Borrowed(model),
            }
        }
        _ => Cow::Borrowed(model),
    }
}

/// The name metrics give a request for `model`: itself, unless a wildcard group serves it and it
/// is not priced, when it is the group's pattern (or the group's name, for a wildcard group with
/// a fixed model). Costs one check on configs without wildcards.
pub fn label<'a>(router: &'a sluice_router::Router<Target>, model: &'a str) -> &'a str {
    if !router.has_wildcards() || router.group(model).is_some() || router.settings.aliases.contains_key(model) {
        return model;
    }
    let Some(group) = router.wildcard(model) else { return model };
    match group.deployments.first().map(|d| &d.target.kind) {
        Some(crate::app::TargetKind::Wildcard(w)) => w.label(model),
        _ => &group.name,
    }
}

#[cfg(test)]
mod tests {
    use super::plain_name;

    #[test]
    fn names_that_could_steer_an_upstream_url_are_refused() {
        for ok in ["claude-3-5-sonnet@20240620", "anthropic.claude-3-5-sonnet-20240620-v1:0", "openrouter/a/b", "x+y=z"]
        {
            assert!(plain_name(ok), "{ok}");
        }
        for bad in ["", "a/../b", "..", "a/.", "a b", "a?b", "a#b", "a%2e", "a\\b", "é"] {
            assert!(!plain_name(bad), "{bad}");
        }
    }
}
