//! Clarifai (`clarifai/`): an OpenAI-compatible API at `https://api.clarifai.com/v2/ext/openai/v1`
//! whose models are named by their URL. LiteLLM's `ClarifaiConfig` writes a model as
//! `user_id.app_id.model_id` and sends `https://clarifai.com/{user_id}/{app_id}/models/{model_id}`
//! upstream; the client's bytes are otherwise forwarded as for any OpenAI-compatible server.

use crate::catalogue::{Family, ModelRef, Provider};
use crate::openai::{self, OpenAi};
use crate::provider::{Env, Params};

/// Base and key as LiteLLM reads them: `api_base` or the default, `api_key` or
/// `CLARIFAI_API_KEY`.
pub const ADDRESSING: Provider = Provider {
    name: "clarifai",
    family: Family::OpenAiCompatible {
        default_base: Some("https://api.clarifai.com/v2/ext/openai/v1"),
        base_env: &[],
        key_env: &["CLARIFAI_API_KEY"],
        default_key: None,
        base_path: "",
    },
};

/// The model as Clarifai's API names it: `user.app.model` as its URL; any other name (already a
/// URL) as written. LiteLLM refuses a name of another shape; Clarifai answers for it instead.
pub fn model_url(name: &str) -> String {
    let mut parts = name.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(user), Some(app), Some(model), None) if !name.contains('/') => {
            format!("https://clarifai.com/{user}/{app}/models/{model}")
        }
        _ => name.to_string(),
    }
}

/// The forwarding provider for a Clarifai deployment.
pub fn build(p: &Params<'_>, env: Env<'_>) -> Result<OpenAi, String> {
    let base = base(p.api_base, env);
    let model = ModelRef { provider: ADDRESSING, upstream: model_url(&p.model.upstream) };
    let mut t = OpenAi::compatible(&Params { model: &model, ..*p }, &base, env)?;
    t.provider = p.model.provider;
    Ok(t)
}

/// The base a deployment calls.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> String {
    // ADDRESSING has a default base, so there always is one.
    openai::resolve_base(&ADDRESSING, api_base, env).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dotted_model_is_sent_as_its_url() {
        assert_eq!(
            model_url("openai.chat-completion.gpt-4o"),
            "https://clarifai.com/openai/chat-completion/models/gpt-4o"
        );
        assert_eq!(model_url("https://clarifai.com/a/b/models/c"), "https://clarifai.com/a/b/models/c");
        assert_eq!(model_url("gpt-4o"), "gpt-4o");
        assert_eq!(model_url("a.b.c.d"), "a.b.c.d");
    }

    #[test]
    fn builds_at_the_default_base_with_the_key_variable() {
        let m = crate::catalogue::parse_model("clarifai/openai.chat-completion.gpt-4o", None).unwrap();
        let p = crate::provider::test_params(&m);
        let env = |k: &str| (k == "CLARIFAI_API_KEY").then(|| "pat-1".to_string());
        let t = build(&p, &env).unwrap();
        assert_eq!(t.chat.to_string(), "https://api.clarifai.com/v2/ext/openai/v1/chat/completions");
        assert_eq!(&t.upstream_model[..], br#""https://clarifai.com/openai/chat-completion/models/gpt-4o""#);
        assert_eq!(t.auth.unwrap().1, "Bearer pat-1");
        assert_eq!(t.provider.name, "clarifai");
    }
}
