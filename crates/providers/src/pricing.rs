//! Bundled per-token prices and LiteLLM's cost formula, so spend can be counted without a
//! network fetch or a database.
//!
//! `prices.json` is a subset of LiteLLM's `model_prices_and_context_window.json` in the same
//! format (the same keys, the same `litellm_provider`, the same four per-token cost fields),
//! taken from the copy LiteLLM v1.81.13 ships as
//! `litellm/model_prices_and_context_window_backup.json`: the chat and embedding models of every
//! provider sluice translates (OpenAI, Azure, Anthropic, Vertex AI and Google AI Studio Gemini,
//! Bedrock). Keeping LiteLLM's shape means refreshing it is a copy of entries, and a spend figure
//! sluice computes matches the one LiteLLM would log for the same usage. Tiered prices (e.g.
//! gemini-2.5-pro above 200k input tokens) are not carried: the base tier applies.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

/// USD per token of one model.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input_per_token: f64,
    pub output_per_token: f64,
    pub cache_read_per_token: Option<f64>,
    pub cache_creation_per_token: Option<f64>,
}

/// Token counts of one call, as the provider reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// All input tokens, including the cached and cache-creation ones below (how LiteLLM
    /// normalises every provider's usage, Anthropic's included).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// part of prompt_tokens read from the provider's cache
    pub cached_prompt_tokens: u64,
    /// Part of `prompt_tokens` written to the provider's cache (Anthropic, Bedrock).
    pub cache_creation_tokens: u64,
}

impl Price {
    /// LiteLLM's formula (`generic_cost_per_token`): the uncached rest of the prompt at the
    /// input price, cached prompt tokens at the cache-read price, cache-creation tokens at the
    /// cache-creation price, completion tokens at the output price.
    ///
    /// A cache price the table does not list counts as 0, as in LiteLLM (`_get_cost_per_unit`
    /// defaults a missing key to 0.0), so sluice's spend matches LiteLLM's for the same usage.
    /// Those models are ones whose providers report no cache tokens for them anyway.
    pub fn cost(&self, usage: &TokenUsage) -> f64 {
        let uncached =
            usage.prompt_tokens.saturating_sub(usage.cached_prompt_tokens).saturating_sub(usage.cache_creation_tokens);
        uncached as f64 * self.input_per_token
            + usage.cached_prompt_tokens as f64 * self.cache_read_per_token.unwrap_or(0.0)
            + usage.cache_creation_tokens as f64 * self.cache_creation_per_token.unwrap_or(0.0)
            + usage.completion_tokens as f64 * self.output_per_token
    }
}

/// One entry of `prices.json`, under LiteLLM's field names.
#[derive(Debug, Deserialize)]
struct Entry {
    litellm_provider: String,
    input_cost_per_token: f64,
    #[serde(default)]
    output_cost_per_token: f64,
    cache_read_input_token_cost: Option<f64>,
    cache_creation_input_token_cost: Option<f64>,
}

impl Entry {
    fn price(&self) -> Price {
        Price {
            input_per_token: self.input_cost_per_token,
            output_per_token: self.output_cost_per_token,
            cache_read_per_token: self.cache_read_input_token_cost,
            cache_creation_per_token: self.cache_creation_input_token_cost,
        }
    }
}

/// The parsed table, built on first use: most processes price many requests, and parsing 200
/// entries once is cheaper than carrying a generated Rust table.
fn table() -> &'static HashMap<String, Entry> {
    static TABLE: OnceLock<HashMap<String, Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        // The file is part of the crate and checked by a test; an unparsable one yields no prices
        // rather than a panic on the request path.
        serde_json::from_str(include_str!("prices.json")).unwrap_or_default()
    })
}

/// The bundled price of `model` as LiteLLM names it for `provider` (the litellm provider prefix,
/// e.g. "openai", "azure", "vertex_ai", "gemini", "anthropic", "bedrock"); tolerant lookup like
/// LiteLLM's: try "provider/model", then "model", then with date suffixes / region prefixes
/// stripped (e.g. "us.anthropic.claude-3-5-sonnet-20240620-v1:0" →
/// "anthropic.claude-3-5-sonnet-20240620-v1:0").
///
/// A bare-name entry counts only when its `litellm_provider` fits `provider` (LiteLLM's
/// `_check_provider_match`), so an OpenAI-compatible server that happens to serve a model called
/// `gpt-4o` is not billed at OpenAI's price under another provider.
pub fn lookup(provider: &str, model: &str) -> Option<Price> {
    let table = table();
    let model = model.strip_prefix(provider).and_then(|m| m.strip_prefix('/')).unwrap_or(model);
    let find = |name: &str| {
        if let Some(e) =
            table.get(&format!("{provider}/{name}")).filter(|e| provider_matches(&e.litellm_provider, provider))
        {
            return Some(e.price());
        }
        table.get(name).filter(|e| provider_matches(&e.litellm_provider, provider)).map(Entry::price)
    };
    let routed = strip_bedrock_route(provider, model);
    let regionless = strip_region(provider, routed);
    [model, routed, regionless]
        .into_iter()
        .find_map(find)
        .or_else(|| strip_date(routed).and_then(find))
        .or_else(|| strip_date(regionless).and_then(find))
}

/// The models the bundled table prices for `provider`, by the name the provider knows them by
/// (no `provider/` prefix), sorted: what a `provider/*` wildcard lists in `/v1/models`.
pub fn models_of(provider: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = table()
        .iter()
        .filter(|(_, e)| e.litellm_provider == provider)
        .map(|(name, _)| name.strip_prefix(provider).and_then(|n| n.strip_prefix('/')).unwrap_or(name))
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// LiteLLM's `_check_provider_match`: an entry's provider fits the deployment's, allowing the
/// families LiteLLM files under several names.
fn provider_matches(entry: &str, provider: &str) -> bool {
    entry == provider
        || (provider.starts_with("vertex_ai") && entry.starts_with("vertex_ai"))
        || (provider.starts_with("bedrock") && entry.starts_with("bedrock"))
        || (provider == "azure_ai" && matches!(entry, "azure" | "openai"))
        // A LiteLLM proxy in front of the real provider: the model name is the provider's.
        || provider == "litellm_proxy"
}

/// Bedrock's route prefixes (`bedrock/converse/<model>`, `bedrock/invoke/<model>`) choose the
/// API, not the model.
fn strip_bedrock_route<'a>(provider: &str, model: &'a str) -> &'a str {
    if !provider.starts_with("bedrock") {
        return model;
    }
    ["converse/", "invoke/"].iter().find_map(|p| model.strip_prefix(p)).unwrap_or(model)
}

/// Bedrock cross-region inference profiles (`us.anthropic.claude-…`) bill like the base model
/// where the table has no price of their own (LiteLLM's `BedrockModelInfo.get_base_model`).
fn strip_region<'a>(provider: &str, model: &'a str) -> &'a str {
    if !provider.starts_with("bedrock") {
        return model;
    }
    ["us.", "eu.", "apac.", "global.", "jp.", "au.", "us-gov.", "ca."]
        .iter()
        .find_map(|p| model.strip_prefix(p))
        .unwrap_or(model)
}

/// `model` without a trailing release date (`-2024-08-06`, `-20241022`, `@20240620`): a new
/// snapshot of a model usually keeps the family's price until LiteLLM lists it.
fn strip_date(model: &str) -> Option<&str> {
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let b = model.as_bytes();
    let n = b.len();
    // -YYYY-MM-DD
    if n > 11 {
        let t = &b[n - 11..];
        if t[0] == b'-' && t[5] == b'-' && t[8] == b'-' && digits(&t[1..5]) && digits(&t[6..8]) && digits(&t[9..]) {
            return model.get(..n - 11);
        }
    }
    // -YYYYMMDD or @YYYYMMDD (this century: a date, not some other 8-digit version)
    if n > 9 {
        let t = &b[n - 9..];
        if matches!(t[0], b'-' | b'@') && t[1..3] == *b"20" && digits(&t[1..]) {
            return model.get(..n - 9);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(provider: &str, model: &str) -> Price {
        lookup(provider, model).unwrap_or_else(|| panic!("no price for {provider}/{model}"))
    }

    #[test]
    fn the_table_parses_and_covers_every_provider() {
        let t = table();
        assert!(t.len() > 150, "{}", t.len());
        for provider in
            ["openai", "azure", "anthropic", "vertex_ai-language-models", "gemini", "bedrock", "bedrock_converse"]
        {
            assert!(t.values().any(|e| e.litellm_provider == provider), "{provider}");
        }
    }

    #[test]
    fn lists_a_providers_priced_models_by_their_own_names() {
        let anthropic = models_of("anthropic");
        assert!(anthropic.contains(&"claude-3-5-sonnet-20240620"), "{anthropic:?}");
        assert!(anthropic.iter().all(|m| !m.starts_with("anthropic/")), "{anthropic:?}");
        assert!(!anthropic.contains(&"gpt-4o"));
        assert!(models_of("no-such-provider").is_empty());
    }

    #[test]
    fn known_prices_are_litellms() {
        assert_eq!(
            price("openai", "gpt-4o"),
            Price {
                input_per_token: 2.5e-6,
                output_per_token: 1e-5,
                cache_read_per_token: Some(1.25e-6),
                cache_creation_per_token: None
            }
        );
        assert_eq!(price("openai", "gpt-4o-mini").input_per_token, 1.5e-7);
        assert_eq!(price("openai", "text-embedding-3-small").input_per_token, 2e-8);
        // Azure prices its own way where it differs (gpt-4o-mini is dearer on Azure).
        assert_eq!(price("azure", "gpt-4o-mini").input_per_token, 1.65e-7);
        assert_eq!(
            price("anthropic", "claude-3-5-sonnet-20241022"),
            Price {
                input_per_token: 3e-6,
                output_per_token: 1.5e-5,
                cache_read_per_token: Some(3e-7),
                cache_creation_per_token: Some(3.75e-6)
            }
        );
        // The same Gemini model costs differently on Vertex and on AI Studio.
        assert_eq!(price("vertex_ai", "gemini-1.5-pro").input_per_token, 1.25e-6);
        assert_eq!(price("gemini", "gemini-1.5-pro").input_per_token, 3.5e-6);
        assert_eq!(price("bedrock", "amazon.nova-pro-v1:0").output_per_token, 3.2e-6);
    }

    #[test]
    fn lookup_accepts_the_provider_prefix_in_the_model() {
        assert_eq!(price("azure", "azure/gpt-4o"), price("azure", "gpt-4o"));
        assert_eq!(price("gemini", "gemini/gemini-2.5-flash"), price("gemini", "gemini-2.5-flash"));
    }

    #[test]
    fn unknown_dates_fall_back_to_the_family() {
        assert_eq!(price("openai", "gpt-4o-2099-01-01"), price("openai", "gpt-4o"));
        assert_eq!(price("anthropic", "claude-sonnet-4-5-20991231"), price("anthropic", "claude-sonnet-4-5"));
        // A listed snapshot keeps its own price.
        assert_eq!(price("openai", "gpt-4o-2024-05-13").input_per_token, 5e-6);
        assert_eq!(strip_date("gpt-4o"), None);
        assert_eq!(strip_date("claude-3-5-sonnet@20240620"), Some("claude-3-5-sonnet"));
    }

    #[test]
    fn bedrock_regions_and_routes_fall_back_to_the_base_model() {
        let base = price("bedrock", "anthropic.claude-3-5-sonnet-20240620-v1:0");
        // Listed profiles keep their own price (us. Sonnet 4.5 costs 10% more) ...
        assert_eq!(price("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0").input_per_token, 3.3e-6);
        // ... unlisted ones bill as the base model.
        assert_eq!(price("bedrock", "ca.anthropic.claude-3-5-sonnet-20240620-v1:0"), base);
        assert_eq!(price("bedrock", "converse/us.anthropic.claude-3-5-sonnet-20240620-v1:0").input_per_token, 3e-6);
        assert_eq!(price("bedrock", "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"), base);
    }

    #[test]
    fn unknown_models_and_mismatched_providers_have_no_price() {
        assert_eq!(lookup("openai", "my-finetune"), None);
        assert_eq!(lookup("azure", "my-deployment"), None);
        // A self-hosted server's `gpt-4o` is not OpenAI's.
        assert_eq!(lookup("hosted_vllm", "gpt-4o"), None);
        assert_eq!(lookup("gemini", "claude-sonnet-4-5"), None);
    }

    #[test]
    fn cost_follows_litellms_formula() {
        let p = price("openai", "gpt-4o");
        let plain = TokenUsage { prompt_tokens: 1000, completion_tokens: 100, ..Default::default() };
        assert!((p.cost(&plain) - (1000.0 * 2.5e-6 + 100.0 * 1e-5)).abs() < 1e-12);
        let cached = TokenUsage { cached_prompt_tokens: 400, ..plain };
        let want = 600.0 * 2.5e-6 + 400.0 * 1.25e-6 + 100.0 * 1e-5;
        assert!((p.cost(&cached) - want).abs() < 1e-12);

        let claude = price("anthropic", "claude-sonnet-4-5");
        let u = TokenUsage {
            prompt_tokens: 1000,
            completion_tokens: 10,
            cached_prompt_tokens: 200,
            cache_creation_tokens: 300,
        };
        let want = 500.0 * 3e-6 + 200.0 * 3e-7 + 300.0 * 3.75e-6 + 10.0 * 1.5e-5;
        assert!((claude.cost(&u) - want).abs() < 1e-12);

        // No cache price listed: cached tokens cost nothing, as in LiteLLM.
        let gpt4 = price("openai", "gpt-4");
        let u = TokenUsage { prompt_tokens: 10, cached_prompt_tokens: 4, ..Default::default() };
        assert!((gpt4.cost(&u) - 6.0 * 3e-5).abs() < 1e-12);
        // Counts that do not add up never go negative.
        let odd = TokenUsage { prompt_tokens: 1, cached_prompt_tokens: 5, ..Default::default() };
        assert!(p.cost(&odd) >= 0.0);
    }
}
