//! Where a Gemini call goes, built exactly as LiteLLM builds it (formats.md §2.1, §2.2), so a
//! LiteLLM config's `api_base` reaches the same URL under sluice.

/// The Vertex AI URL for `model`.
///
/// Without `api_base`: `https://{location}-aiplatform.googleapis.com/v1/projects/{project}/
/// locations/{location}/publishers/google/models/{model}:{verb}` (host `aiplatform.googleapis.com`
/// for `global`, `aiplatform.{us|eu}.rep.googleapis.com` for the multi-regions; a numeric model is
/// a tuned-model endpoint, `…/endpoints/{id}`).
///
/// With `api_base`, LiteLLM's `_check_custom_proxy` rules: an empty path (or `/`) gets the whole
/// default path, a bare `/v1` or `/v1beta1` gets the path after the version, and anything else is
/// taken to name the model already and gets just `:{verb}` — the seed's
/// `…/publishers/google/models/gemini-1.0-pro-vision-001` becomes
/// `…/gemini-1.0-pro-vision-001:generateContent`. Streaming adds `alt=sse` to the query.
pub fn vertex_url(api_base: Option<&str>, project: &str, location: &str, model: &str, stream: bool) -> String {
    vertex_url_for(api_base, project, location, model, verb(stream), stream)
}

/// [`vertex_url`] for another method of the model (`predict`, for embeddings).
pub fn vertex_url_for(
    api_base: Option<&str>,
    project: &str,
    location: &str,
    model: &str,
    verb: &str,
    stream: bool,
) -> String {
    let resource = if !model.is_empty() && model.bytes().all(|b| b.is_ascii_digit()) {
        format!("projects/{project}/locations/{location}/endpoints/{model}")
    } else {
        format!("projects/{project}/locations/{location}/publishers/google/models/{model}")
    };
    with_alt_sse(vertex_resource_url(api_base, location, "v1", &resource, &format!(":{verb}")), stream)
}

/// `tail` (`:{verb}`, or a path like `/chat/completions`) on a Vertex `resource`
/// (`projects/{p}/locations/{l}/…`) under API `version`, placed as LiteLLM's
/// `_check_custom_proxy` places it ([`vertex_url`]): the default host, or a custom `api_base`
/// whose empty path gets `/{version}/{resource}`, whose bare `/v1` or `/v1beta1` gets the
/// resource, and whose any other path is taken to name the resource already. A query string on
/// `api_base` stays last.
pub(crate) fn vertex_resource_url(
    api_base: Option<&str>,
    location: &str,
    version: &str,
    resource: &str,
    tail: &str,
) -> String {
    let Some(base) = api_base.map(str::trim).filter(|b| !b.is_empty()) else {
        return format!("{}/{version}/{resource}{tail}", default_host(location));
    };
    let (base, query) = split_query(base);
    let trimmed = base.trim_end_matches('/');
    let url = match path_of(base).trim_end_matches('/') {
        "" => format!("{trimmed}/{version}/{resource}{tail}"),
        "/v1" | "/v1beta1" => format!("{trimmed}/{resource}{tail}"),
        _ => format!("{trimmed}{tail}"),
    };
    // LiteLLM would put `:verb` after a query string; keeping the query last is what it
    // evidently means, and the only form a server can parse.
    match query {
        Some(q) => format!("{url}?{q}"),
        None => url,
    }
}

/// The Google AI Studio (Gemini API) URL for `model`: `{base}/v1beta/models/{model}:{verb}` with
/// base `https://generativelanguage.googleapis.com` (`v1alpha` for Gemini 3+, as LiteLLM 1.110
/// does), or `{api_base}/models/{model}:{verb}` for a custom `api_base`. The key goes in an
/// `x-goog-api-key` header, never in the URL.
pub fn gemini_url(api_base: Option<&str>, model: &str, stream: bool) -> String {
    gemini_url_for(api_base, model, verb(stream), stream)
}

/// [`gemini_url`] for another method of the model (`batchEmbedContents`, for embeddings).
pub fn gemini_url_for(api_base: Option<&str>, model: &str, verb: &str, stream: bool) -> String {
    let model = model.strip_prefix("models/").unwrap_or(model);
    let url = match api_base.map(str::trim).filter(|b| !b.is_empty()) {
        None => {
            let version = if model.starts_with("gemini-3") { "v1alpha" } else { "v1beta" };
            format!("https://generativelanguage.googleapis.com/{version}/models/{model}:{verb}")
        }
        Some(base) => {
            let (base, query) = split_query(base);
            let url = format!("{}/models/{model}:{verb}", base.trim_end_matches('/'));
            match query {
                Some(q) => format!("{url}?{q}"),
                None => url,
            }
        }
    };
    with_alt_sse(url, stream)
}

fn verb(stream: bool) -> &'static str {
    if stream {
        "streamGenerateContent"
    } else {
        "generateContent"
    }
}

/// Vertex's regional host (`global` and the multi-regions have their own).
pub(crate) fn default_host(location: &str) -> String {
    match location {
        "global" | "" => "https://aiplatform.googleapis.com".to_string(),
        "us" | "eu" => format!("https://aiplatform.{location}.rep.googleapis.com"),
        l => format!("https://{l}-aiplatform.googleapis.com"),
    }
}

fn split_query(base: &str) -> (&str, Option<&str>) {
    match base.split_once('?') {
        Some((b, q)) => (b, Some(q).filter(|q| !q.is_empty())),
        None => (base, None),
    }
}

/// The path part of a URL (`""` when it has none).
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("", |i| &after_scheme[i..])
}

pub(crate) fn with_alt_sse(url: String, stream: bool) -> String {
    if !stream {
        return url;
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}alt=sse")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(path_of("https://h"), "");
        assert_eq!(path_of("https://h/"), "/");
        assert_eq!(path_of("http://h:1/v1"), "/v1");
    }
}
