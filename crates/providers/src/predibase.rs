//! Predibase (`predibase/`), as LiteLLM's `PredibaseConfig` calls it: Hugging Face TGI's
//! `/generate` and `/generate_stream` at
//! `{api_base}/{tenant_id}/deployments/v2/llms/{model}/…`, `api_base` defaulting to
//! `PREDIBASE_API_BASE`, then `https://serving.app.predibase.com`; the tenant from `tenant_id`
//! (or `predibase_tenant_id`), else `PREDIBASE_TENANT_ID`; the key (`api_key`, else
//! `PREDIBASE_API_KEY`) as a bearer token.
//!
//! The chat becomes one prompt ([`crate::textgen::prompt`]) in `inputs`, the sampling parameters
//! TGI's `parameters` with LiteLLM's defaults (`details: true`, `max_new_tokens: 4096`,
//! `return_full_text: false`).

use http::HeaderName;
use serde_json::{Map, Value};
use sluice_wire::{sse, ApiError};

use crate::errors::openai_class;
use crate::provider::{
    parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;
use crate::textgen::{self, TgiStream};

pub const DEFAULT_BASE: &str = "https://serving.app.predibase.com";
/// LiteLLM's `DEFAULT_MAX_TOKENS`: TGI waits for the model's whole context without one.
pub const DEFAULT_MAX_NEW_TOKENS: u64 = 4096;

/// Predibase's own parameters (LoRA adapters) besides TGI's.
const NATIVE: &[&str] = &["adapter_id", "adapter_source"];

#[derive(Debug)]
pub struct Predibase {
    address: Address,
    drop_params: bool,
}

/// The base a deployment calls: `api_base`, else `PREDIBASE_API_BASE`, else Predibase's.
pub fn base(api_base: Option<&str>, env: Env<'_>) -> String {
    api_base
        .filter(|b| !b.is_empty())
        .map(str::to_string)
        .or_else(|| env("PREDIBASE_API_BASE"))
        .unwrap_or_else(|| DEFAULT_BASE.to_string())
}

impl Predibase {
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let path = p.path();
        let tenant = p.tenant_id.map(str::to_string).or_else(|| env("PREDIBASE_TENANT_ID")).ok_or_else(|| {
            format!("{path}.tenant_id: missing; set it (or PREDIBASE_TENANT_ID) to your Predibase tenant id")
        })?;
        let key = p.api_key.map(str::to_string).or_else(|| env("PREDIBASE_API_KEY")).ok_or_else(|| {
            format!("{path}.api_key: missing; set it (or PREDIBASE_API_KEY) to your Predibase API token")
        })?;
        let base = base(p.api_base, env);
        let root = format!("{}/{tenant}/deployments/v2/llms/{}", base.trim_end_matches('/'), p.model.upstream);
        let mut address = Address::new(p, format!("{root}/generate"), format!("{root}/generate_stream"))?;
        address.headers.push(p.secret_header(HeaderName::from_static("authorization"), &format!("Bearer {key}"))?);
        Ok(Predibase { address, drop_params: p.drop_params })
    }
}

/// The TGI body for an OpenAI chat request, with LiteLLM's defaults for Predibase.
pub fn generate_request(openai: &Value, drop_params: bool) -> Result<Value, ApiError> {
    let mut defaults = Map::new();
    defaults.insert("details".into(), true.into());
    defaults.insert("max_new_tokens".into(), DEFAULT_MAX_NEW_TOKENS.into());
    defaults.insert("return_full_text".into(), false.into());
    textgen::tgi_request(openai, "predibase", defaults, NATIVE, false, drop_params)
}

/// A non-2xx answer (`{"error": "…"}` or text), classified by status.
pub fn error(status: u16, body: &[u8]) -> (u16, &'static str, String) {
    let (class, text) = openai_class(status, body);
    (class.status(Some(status)), class.name(), text)
}

impl ChatProvider for Predibase {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let body = generate_request(&parse_request(call.body)?, self.drop_params)?;
        Ok(self.address.request(call.stream, crate::provider::json_body(&body)))
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        textgen::tgi_response(&parsed, meta.model, meta.id, meta.created)
            .map_err(|e| crate::errors::malformed(&self.address.provider, &e, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Tgi(sse::Parser::new(), TgiStream::new(meta.model, meta.id, meta.created, meta.include_usage))
    }

    fn map_error(&self, status: u16, _headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, error(status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_request_is_tgis_inputs_and_parameters_with_litellms_defaults() {
        let req = json!({"model": "g", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
            "temperature": 0, "max_completion_tokens": 7, "stop": "\n", "adapter_id": "my-adapter/1", "user": "u", "n": 1});
        let out = generate_request(&req, false).unwrap();
        assert_eq!(out["inputs"], "Be brief. hi");
        assert_eq!(
            out["parameters"],
            json!({"details": true, "max_new_tokens": 7, "return_full_text": false, "temperature": 0.01, "stop": ["\n"], "adapter_id": "my-adapter/1"})
        );
        let tools = json!({"messages": [{"role": "user", "content": "hi"}], "tools": []});
        assert!(generate_request(&tools, false)
            .unwrap_err()
            .message
            .contains("predibase does not support parameters: ['tools']"));
        assert!(generate_request(&tools, true).is_ok());
        assert!(generate_request(&json!({"messages": [{"role": "user", "content": "x"}], "n": 3}), false).is_err());
    }

    #[test]
    fn errors_keep_the_servers_text() {
        let (status, class, text) = error(404, br#"{"error":"deployment not found"}"#);
        assert_eq!((status, class, text.as_str()), (404, "NotFoundError", "deployment not found"));
        assert_eq!(error(429, b"").1, "RateLimitError");
    }
}
