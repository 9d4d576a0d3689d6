//! Per-token prices of LiteLLM's whole model price map and LiteLLM's cost formula, so spend is
//! counted without a network fetch or a database.
//!
//! `prices.json` is LiteLLM's `model_prices_and_context_window.json` in its own shape, cut to the
//! models priced per token and the fields the formula reads (per-token input and output, cache
//! reads and writes, reasoning tokens, the tier above N prompt tokens). It is the copy a LiteLLM
//! release ships in its package, written by `scripts/refresh-prices.sh VERSION` together with
//! `prices.version` (the release and the file's sha256; [`SOURCE`], shown by `sluice check`).
//! Keeping LiteLLM's names means a spend figure sluice computes matches the one LiteLLM would log
//! for the same usage, and a refresh is a readable diff.
//!
//! `build.rs` compiles the file into a compact table (rows of numbers, sorted by name, and one
//! string of names): nothing is parsed at start, nothing of it is on the heap, and a lookup is a
//! binary search that allocates nothing — cheap enough for a route that learns its concrete
//! model per request (a wildcard deployment).

use std::cmp::Ordering;

/// USD per token of one model, and the tier it switches to above a prompt size.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Price {
    pub input_per_token: f64,
    pub output_per_token: f64,
    pub cache_read_per_token: Option<f64>,
    pub cache_creation_per_token: Option<f64>,
    /// `output_cost_per_reasoning_token`; reasoning tokens cost the output price without it.
    pub reasoning_per_token: Option<f64>,
    /// `input_cost_per_token_batches` / `output_cost_per_token_batches`: the prices of a batch's
    /// tokens (OpenAI's and Azure's batch discount); half the token prices without them
    /// ([`Price::batch_cost`]).
    pub input_per_token_batches: Option<f64>,
    pub output_per_token_batches: Option<f64>,
    /// Prices for calls whose prompt is longer than a threshold (Gemini 2.5 Pro above 200k
    /// tokens, Claude Sonnet 4 above 200k, …).
    pub above: Option<Tier>,
    /// USD per second of the call, in and out (a deployment's own `input_cost_per_second` /
    /// `output_cost_per_second`, for upstreams billed by the time they run, such as a SageMaker
    /// endpoint); 0 for the price map's models.
    pub input_per_second: f64,
    pub output_per_second: f64,
    /// The units of the endpoints that are not billed by tokens (a deployment's own
    /// `output_cost_per_image`, `input_cost_per_image`, `input_cost_per_pixel`,
    /// `input_cost_per_character`); 0 when not set.
    pub units: UnitPrices,
}

/// USD per unit of the endpoints LiteLLM bills by something other than tokens.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UnitPrices {
    /// `output_cost_per_image`: per image generated.
    pub output_per_image: f64,
    /// `input_cost_per_image`: per image, where a model lists only that.
    pub input_per_image: f64,
    /// `input_cost_per_pixel`: per pixel of each image generated (DALL·E's map entries).
    pub input_per_pixel: f64,
    /// `input_cost_per_character`: per character of the text spoken (text to speech).
    pub input_per_character: f64,
    /// `input_cost_per_query`: per search unit of a rerank (Cohere's `meta.billed_units`), the
    /// one unit price LiteLLM's map carries.
    pub input_per_query: f64,
}

/// The most search units one rerank answer is billed for: Cohere counts one per query of up to
/// 100 documents, and takes at most 1,000 documents (10 units) a request.
pub const MAX_SEARCH_UNITS: u64 = 10_000;

/// The most images one request is billed for, and the most pixels one image is, as the request
/// is read (`sluice_wire::units`).
pub const MAX_IMAGES: u64 = sluice_wire::units::MAX_IMAGES;
pub const MAX_IMAGE_PIXELS: u64 = sluice_wire::units::MAX_SIDE * sluice_wire::units::MAX_SIDE;

impl UnitPrices {
    /// Whether any unit price is set.
    pub fn any(&self) -> bool {
        *self != UnitPrices::default()
    }

    /// LiteLLM's image cost (`default_image_cost_calculator`): `n` images of `pixels` each at the
    /// per-pixel price when the model has one, else at the price per image. Both counts are
    /// clamped to [`MAX_IMAGES`] and [`MAX_IMAGE_PIXELS`].
    pub fn images(&self, n: u64, pixels: u64) -> f64 {
        let n = n.min(MAX_IMAGES) as f64;
        if self.input_per_pixel > 0.0 {
            return self.input_per_pixel * pixels.min(MAX_IMAGE_PIXELS) as f64 * n;
        }
        let per_image = if self.output_per_image > 0.0 { self.output_per_image } else { self.input_per_image };
        per_image * n
    }

    /// The cost of speaking `characters` characters (LiteLLM bills text to speech per input
    /// character).
    pub fn speech(&self, characters: u64) -> f64 {
        self.input_per_character * characters as f64
    }

    /// The cost of a rerank that the provider billed `search_units` for (LiteLLM's
    /// `calculate_rerank_cost`: the units times `input_cost_per_query`), the count clamped to
    /// [`MAX_SEARCH_UNITS`].
    pub fn queries(&self, search_units: u64) -> f64 {
        self.input_per_query * search_units.min(MAX_SEARCH_UNITS) as f64
    }
}

/// The prices of calls whose prompt has more than `above_prompt_tokens` tokens (LiteLLM's
/// `input_cost_per_token_above_200k_tokens` and its siblings): they apply to the whole call,
/// each falling back to the base price where the tier lists none.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Tier {
    pub above_prompt_tokens: u64,
    pub input_per_token: f64,
    pub output_per_token: Option<f64>,
    pub cache_read_per_token: Option<f64>,
    pub cache_creation_per_token: Option<f64>,
}

/// Token counts of one call, as the provider reported them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    /// All input tokens, including the cached and cache-creation ones below (how LiteLLM
    /// normalises every provider's usage, Anthropic's included).
    pub prompt_tokens: u64,
    /// All output tokens, the reasoning ones below included.
    pub completion_tokens: u64,
    /// part of prompt_tokens read from the provider's cache
    pub cached_prompt_tokens: u64,
    /// Part of `prompt_tokens` written to the provider's cache (Anthropic, Bedrock).
    pub cache_creation_tokens: u64,
    /// Part of `completion_tokens` spent reasoning (`completion_tokens_details.reasoning_tokens`).
    pub reasoning_tokens: u64,
}

impl Price {
    /// LiteLLM's formula (`generic_cost_per_token`): the uncached rest of the prompt at the
    /// input price, cached prompt tokens at the cache-read price, cache-creation tokens at the
    /// cache-creation price, reasoning tokens at the reasoning price (else the output price),
    /// the rest of the completion at the output price; all from the tier when the prompt is
    /// longer than its threshold (`_get_token_base_cost`).
    ///
    /// A cache price the table does not list counts as 0, as in LiteLLM (`_get_cost_per_unit`
    /// defaults a missing key to 0.0), so sluice's spend matches LiteLLM's for the same usage.
    /// Those models are ones whose providers report no cache tokens for them anyway.
    pub fn cost(&self, usage: &TokenUsage) -> f64 {
        let (mut input, mut output) = (self.input_per_token, self.output_per_token);
        let (mut cache_read, mut cache_creation) = (self.cache_read_per_token, self.cache_creation_per_token);
        if let Some(t) = self.above.filter(|t| usage.prompt_tokens > t.above_prompt_tokens) {
            input = t.input_per_token;
            output = t.output_per_token.unwrap_or(output);
            cache_read = t.cache_read_per_token.or(cache_read);
            cache_creation = t.cache_creation_per_token.or(cache_creation);
        }
        let uncached =
            usage.prompt_tokens.saturating_sub(usage.cached_prompt_tokens).saturating_sub(usage.cache_creation_tokens);
        let reasoning = usage.reasoning_tokens.min(usage.completion_tokens);
        uncached as f64 * input
            + usage.cached_prompt_tokens as f64 * cache_read.unwrap_or(0.0)
            + usage.cache_creation_tokens as f64 * cache_creation.unwrap_or(0.0)
            + (usage.completion_tokens - reasoning) as f64 * output
            + reasoning as f64 * self.reasoning_per_token.unwrap_or(output)
    }
}

impl Price {
    /// LiteLLM's `batch_cost_calculator`: a batch's prompt tokens at the batch input price when
    /// the model has one, else its uncached prompt tokens and its cached ones at half the input
    /// and the cache-read prices; its completion tokens at the batch output price, else at half
    /// the output price ("batch cost is usually half of the regular token cost"). A batch price of
    /// 0 counts as none, as LiteLLM tests it for truth. Tiers and reasoning prices do not apply.
    pub fn batch_cost(&self, usage: &TokenUsage) -> f64 {
        let set = |p: Option<f64>| p.filter(|p| *p > 0.0);
        let prompt = match set(self.input_per_token_batches) {
            Some(per_token) => usage.prompt_tokens as f64 * per_token,
            None => {
                let cached = usage.cached_prompt_tokens.min(usage.prompt_tokens);
                ((usage.prompt_tokens - cached) as f64 * self.input_per_token
                    + cached as f64 * self.cache_read_per_token.unwrap_or(0.0))
                    / 2.0
            }
        };
        let completion = match set(self.output_per_token_batches) {
            Some(per_token) => usage.completion_tokens as f64 * per_token,
            None => usage.completion_tokens as f64 * self.output_per_token / 2.0,
        };
        prompt + completion
    }

    /// Whether the call's time is part of its price.
    pub fn per_second(&self) -> bool {
        self.input_per_second != 0.0 || self.output_per_second != 0.0
    }

    /// The cost of a call that took `seconds`: [`Price::cost`] for its tokens plus its time at
    /// the per-second prices (LiteLLM's `_cost_per_token_custom_pricing_helper`: the call's
    /// duration at the input and at the output price per second).
    pub fn cost_of_call(&self, usage: &TokenUsage, seconds: f64) -> f64 {
        let seconds = if seconds.is_finite() { seconds.clamp(0.0, MAX_CALL_SECONDS) } else { 0.0 };
        self.cost(usage) + seconds * (self.input_per_second + self.output_per_second)
    }
}

/// The longest a call is billed for by time: a day. A clock that jumped is not a bill.
const MAX_CALL_SECONDS: f64 = 86_400.0;

/// Which LiteLLM release the bundled table came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    /// The LiteLLM release, e.g. "1.81.13".
    pub litellm: &'static str,
    /// sha256 of the `model_prices_and_context_window_backup.json` it shipped.
    pub sha256: &'static str,
    /// How many models the table prices.
    pub models: usize,
}

/// One model of the table: `name` as LiteLLM's map keys it, `provider` its `litellm_provider`,
/// `mode` (chat, embedding, completion, …).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Listed {
    pub name: &'static str,
    pub provider: &'static str,
    pub mode: &'static str,
    pub price: Price,
}

/// One row of the compiled table: indexes and numbers only, so the table needs no relocation.
/// Its name is apart (`NAMES`, `NAME_ENDS`), so a search does not page the rows in.
struct Row {
    provider: u8,
    mode: u8,
    input: f64,
    output: f64,
    cache_read: Option<f64>,
    cache_creation: Option<f64>,
    reasoning: Option<f64>,
    batch_input: Option<f64>,
    batch_output: Option<f64>,
    /// `input_cost_per_query` (rerank models); 0 when the map lists none.
    query: f64,
    /// 1-based index into `TIERS`; 0: none.
    tier: u16,
}

include!(concat!(env!("OUT_DIR"), "/prices_table.rs"));

/// The name of row `i`.
fn name(i: usize) -> &'static str {
    let end = NAME_ENDS.get(i).map_or(0, |&e| e as usize);
    let start = i.checked_sub(1).and_then(|j| NAME_ENDS.get(j)).map_or(0, |&e| e as usize);
    NAMES.get(start..end).unwrap_or_default()
}

impl Row {
    fn provider(&self) -> &'static str {
        PROVIDERS.get(usize::from(self.provider)).copied().unwrap_or_default()
    }

    fn price(&self) -> Price {
        Price {
            input_per_token: self.input,
            output_per_token: self.output,
            cache_read_per_token: self.cache_read,
            cache_creation_per_token: self.cache_creation,
            reasoning_per_token: self.reasoning,
            input_per_token_batches: self.batch_input,
            output_per_token_batches: self.batch_output,
            above: usize::from(self.tier).checked_sub(1).and_then(|i| TIERS.get(i)).copied(),
            units: UnitPrices { input_per_query: self.query, ..Default::default() },
            ..Default::default()
        }
    }
}

/// Every model of the table, by name.
pub fn listed() -> impl Iterator<Item = Listed> {
    ROWS.iter().enumerate().map(|(i, r)| Listed {
        name: name(i),
        provider: r.provider(),
        mode: MODES.get(usize::from(r.mode)).copied().unwrap_or_default(),
        price: r.price(),
    })
}

/// The row named by `parts` joined (`["openai", "/", "gpt-4o"]`), found without building the
/// joined name.
fn row(parts: &[&str]) -> Option<&'static Row> {
    let wanted = || parts.iter().flat_map(|p| p.bytes());
    let (mut low, mut high) = (0, ROWS.len());
    while low < high {
        let mid = low + (high - low) / 2;
        match name(mid).bytes().cmp(wanted()) {
            Ordering::Less => low = mid + 1,
            Ordering::Greater => high = mid,
            Ordering::Equal => return ROWS.get(mid),
        }
    }
    None
}

/// The bundled price of `model` as LiteLLM names it for `provider` (the litellm provider prefix,
/// e.g. "openai", "azure", "vertex_ai", "gemini", "anthropic", "bedrock"); tolerant lookup like
/// LiteLLM's: try "provider/model", then "model", then with date suffixes / region prefixes
/// stripped (e.g. "us.anthropic.claude-3-5-sonnet-20240620-v1:0" →
/// "anthropic.claude-3-5-sonnet-20240620-v1:0"). Allocates nothing and takes no lock.
///
/// A bare-name entry counts only when its `litellm_provider` fits `provider` (LiteLLM's
/// `_check_provider_match`), so an OpenAI-compatible server that happens to serve a model called
/// `gpt-4o` is not billed at OpenAI's price under another provider.
pub fn lookup(provider: &str, model: &str) -> Option<Price> {
    let model = model.strip_prefix(provider).and_then(|m| m.strip_prefix('/')).unwrap_or(model);
    let find = |name: &str| {
        [&[provider, "/", name][..], &[name][..]]
            .into_iter()
            .filter_map(row)
            .find(|r| provider_matches(r.provider(), provider))
            .map(Row::price)
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
    let mut out: Vec<&'static str> = listed()
        .filter(|m| m.provider == provider)
        .map(|m| m.name.strip_prefix(provider).and_then(|n| n.strip_prefix('/')).unwrap_or(m.name))
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
        || (provider == "ai21_chat" && entry == "ai21")
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

    #[test]
    fn rerank_models_carry_litellms_price_per_search_unit() {
        let cohere = lookup("cohere", "rerank-v3.5").unwrap();
        assert_eq!((cohere.units.input_per_query, cohere.input_per_token), (0.002, 0.0));
        assert_eq!(cohere.units.queries(3), 0.006);
        assert_eq!(lookup("bedrock", "cohere.rerank-v3-5:0").unwrap().units.input_per_query, 0.002);
        assert_eq!(lookup("azure_ai", "cohere-rerank-v4.0-pro").unwrap().units.input_per_query, 0.0025);
        // Token-priced models have none.
        assert_eq!(lookup("openai", "gpt-4o").unwrap().units.input_per_query, 0.0);
        assert_eq!(cohere.units.queries(u64::MAX), 0.002 * MAX_SEARCH_UNITS as f64);
    }

    fn price(provider: &str, model: &str) -> Price {
        lookup(provider, model).unwrap_or_else(|| panic!("no price for {provider}/{model}"))
    }

    #[test]
    fn batches_cost_the_batch_prices_else_half_the_token_prices() {
        // The bundled map carries OpenAI's batch prices (half gpt-4o's, as OpenAI lists them).
        let gpt = price("openai", "gpt-4o");
        assert_eq!((gpt.input_per_token_batches, gpt.output_per_token_batches), (Some(1.25e-06), Some(5e-06)));
        let usage =
            TokenUsage { prompt_tokens: 1000, completion_tokens: 100, cached_prompt_tokens: 400, ..Default::default() };
        // With batch prices, every prompt token is at the batch input price, cached or not.
        assert!((gpt.batch_cost(&usage) - (1000.0 * 1.25e-06 + 100.0 * 5e-06)).abs() < 1e-12);
        let own = Price {
            input_per_token: 0.002,
            output_per_token: 0.004,
            cache_read_per_token: Some(0.001),
            input_per_token_batches: Some(0.0),
            ..Default::default()
        };
        // Without (a 0 is none, as LiteLLM tests it): half the uncached and cached prompt
        // prices, half the output price.
        let want = (600.0 * 0.002 + 400.0 * 0.001) / 2.0 + 100.0 * 0.004 / 2.0;
        assert!((own.batch_cost(&usage) - want).abs() < 1e-12);
        let batch = Price { input_per_token_batches: Some(0.0003), output_per_token_batches: Some(0.0007), ..own };
        assert!((batch.batch_cost(&usage) - (1000.0 * 0.0003 + 100.0 * 0.0007)).abs() < 1e-12);
    }

    #[test]
    fn the_table_is_litellms_whole_map_sorted_for_the_search() {
        let rows: Vec<Listed> = listed().collect();
        assert!(rows.len() > 2000, "{}", rows.len());
        assert_eq!(rows.len(), SOURCE.models);
        assert!(rows.windows(2).all(|w| w[0].name < w[1].name), "not strictly sorted");
        for provider in [
            "openai",
            "azure",
            "anthropic",
            "vertex_ai-language-models",
            "gemini",
            "bedrock",
            "bedrock_converse",
            "mistral",
            "deepseek",
            "groq",
            "xai",
            "together_ai",
            "fireworks_ai",
            "openrouter",
        ] {
            assert!(rows.iter().any(|e| e.provider == provider), "{provider}");
        }
        assert!(SOURCE.litellm.split('.').all(|n| n.parse::<u32>().is_ok()), "{}", SOURCE.litellm);
        assert_eq!(SOURCE.sha256.len(), 64);
        // Every model is found under its own provider and name.
        for r in &rows {
            assert!(lookup(r.provider, r.name).is_some(), "{} {}", r.provider, r.name);
        }
    }

    #[test]
    fn models_only_the_whole_map_has_are_priced() {
        // Not in the subset sluice bundled before: each cost 0 then.
        assert_eq!(price("deepseek", "deepseek-chat").input_per_token, 2.8e-7);
        assert_eq!(price("mistral", "mistral-large-latest").output_per_token, 6e-6);
        assert_eq!(price("groq", "llama-3.3-70b-versatile").input_per_token, 5.9e-7);
        assert_eq!(price("xai", "xai/grok-3").input_per_token, 3e-6);
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
                cache_creation_per_token: None,
                input_per_token_batches: Some(1.25e-6),
                output_per_token_batches: Some(5e-6),
                ..Default::default()
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
                cache_creation_per_token: Some(3.75e-6),
                ..Default::default()
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
            ..Default::default()
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

    #[test]
    fn tiers_above_a_prompt_size_price_the_whole_call() {
        let p = price("anthropic", "claude-sonnet-4-20250514");
        let tier = p.above.expect("Sonnet 4 has a tier above 200k");
        assert_eq!(tier.above_prompt_tokens, 200_000);
        let u = |prompt| TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: 1000,
            cached_prompt_tokens: 100_000,
            cache_creation_tokens: 50_000,
            ..Default::default()
        };
        // At the threshold: the base prices.
        let at = u(200_000);
        let want = 50_000.0 * 3e-6 + 100_000.0 * 3e-7 + 50_000.0 * 3.75e-6 + 1000.0 * 1.5e-5;
        assert!((p.cost(&at) - want).abs() < 1e-9, "{}", p.cost(&at));
        // One token above: every part at the tier's price.
        let above = u(200_001);
        let want = 50_001.0 * 6e-6 + 100_000.0 * 6e-7 + 50_000.0 * 7.5e-6 + 1000.0 * 2.25e-5;
        assert!((p.cost(&above) - want).abs() < 1e-9, "{}", p.cost(&above));

        // A tier without cache or output prices keeps the base ones for those.
        let g = price("vertex_ai", "gemini-1.5-pro");
        let big = TokenUsage { prompt_tokens: 200_000, completion_tokens: 10, ..Default::default() };
        assert!((g.cost(&big) - (200_000.0 * 2.5e-6 + 10.0 * 1e-5)).abs() < 1e-9);
        let only_input = Price {
            input_per_token: 1.0,
            output_per_token: 2.0,
            cache_read_per_token: Some(0.5),
            above: Some(Tier { above_prompt_tokens: 10, input_per_token: 3.0, ..Default::default() }),
            ..Default::default()
        };
        let u = TokenUsage { prompt_tokens: 11, completion_tokens: 1, cached_prompt_tokens: 1, ..Default::default() };
        assert_eq!(only_input.cost(&u), 10.0 * 3.0 + 0.5 + 2.0);
    }

    #[test]
    fn reasoning_tokens_cost_their_own_price_where_listed() {
        let p = price("vertex_ai", "gemini-2.5-flash-preview-04-17");
        assert_eq!(p.reasoning_per_token, Some(3.5e-6));
        let u = TokenUsage { prompt_tokens: 10, completion_tokens: 100, reasoning_tokens: 60, ..Default::default() };
        let want = 10.0 * 1.5e-7 + 40.0 * 6e-7 + 60.0 * 3.5e-6;
        assert!((p.cost(&u) - want).abs() < 1e-12);
        // Without a reasoning price they are output tokens like the rest.
        let o = price("openai", "o3-mini");
        assert_eq!(o.cost(&u), o.cost(&TokenUsage { reasoning_tokens: 0, ..u }));
        // More reasoning than completion tokens reported never counts twice.
        let odd = TokenUsage { completion_tokens: 5, reasoning_tokens: 50, ..Default::default() };
        assert!((p.cost(&odd) - 5.0 * 3.5e-6).abs() < 1e-12);
    }

    #[test]
    fn lookup_allocates_nothing_and_finds_joined_names() {
        // The search compares "provider/name" without building it.
        assert_eq!(row(&["gemini", "/", "gemini-2.5-pro"]).map(Row::provider), Some("gemini"));
        assert_eq!(row(&["gemini-2.5-pro"]).map(Row::provider), Some("vertex_ai-language-models"));
        assert!(row(&["gemini", "/"]).is_none());
        assert!(row(&[""]).is_none());
    }

    #[test]
    fn images_cost_per_pixel_else_per_image_with_bounded_counts() {
        let per_image = UnitPrices { output_per_image: 0.04, ..Default::default() };
        assert!((per_image.images(2, 1024 * 1024) - 0.08).abs() < 1e-12);
        let per_pixel = UnitPrices { input_per_pixel: 3.81469e-8, output_per_image: 9.0, ..Default::default() };
        assert!((per_pixel.images(1, 1024 * 1024) - 3.81469e-8 * 1_048_576.0).abs() < 1e-12);
        let only_input = UnitPrices { input_per_image: 0.5, ..Default::default() };
        assert!((only_input.images(3, 0) - 1.5).abs() < 1e-12);
        // Counts from outside are clamped before they are billed.
        assert!((per_image.images(u64::MAX, u64::MAX) - 0.04 * MAX_IMAGES as f64).abs() < 1e-9);
        let clamped = per_pixel.images(u64::MAX, u64::MAX);
        assert!((clamped - 3.81469e-8 * MAX_IMAGE_PIXELS as f64 * MAX_IMAGES as f64).abs() < 1e-9);
        assert_eq!(UnitPrices::default().images(4, 1024), 0.0);
        let tts = UnitPrices { input_per_character: 1.5e-5, ..Default::default() };
        assert!((tts.speech(1000) - 0.015).abs() < 1e-12);
    }

    #[test]
    fn per_second_prices_bill_the_calls_time() {
        let p = Price { input_per_second: 0.01, output_per_second: 0.02, ..Default::default() };
        let u = TokenUsage { prompt_tokens: 100, completion_tokens: 100, ..Default::default() };
        assert!((p.cost_of_call(&u, 2.0) - 0.06).abs() < 1e-12);
        // A clock gone wrong bills nothing, or at most a day.
        assert_eq!(p.cost_of_call(&u, -5.0), 0.0);
        assert_eq!(p.cost_of_call(&u, f64::NAN), 0.0);
        assert!((p.cost_of_call(&u, 1e12) - 86_400.0 * 0.03).abs() < 1e-6);
        // The map's models have no time price: the call costs its tokens.
        let gpt = price("openai", "gpt-4o");
        assert_eq!(gpt.cost_of_call(&u, 30.0), gpt.cost(&u));
    }
}
