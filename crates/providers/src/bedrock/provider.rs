//! Bedrock's Converse API as a [`ChatProvider`]: region and credentials from `litellm_params` and
//! the standard AWS variables, every request SigV4-signed over its exact URL and body (or sent
//! with a Bedrock API key as a bearer token).

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::Value;
use sluice_wire::ApiError;

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, UpstreamRequest,
};
use crate::stream::StreamTranslator;

#[derive(Debug)]
pub struct Bedrock {
    address: Address,
    /// `None` when a Bedrock API key rides in the address's headers instead.
    sigv4: Option<(super::Credentials, String)>,
    drop_params: bool,
}

impl Bedrock {
    /// A missing region or missing credentials are the deployment's own failure (as in LiteLLM):
    /// its requests say what to set, the other deployments keep serving.
    pub fn new(p: &Params<'_>, env: Env<'_>) -> Result<Self, String> {
        let path = p.path();
        let region = p
            .aws_region_name
            .map(str::to_string)
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .ok_or_else(|| {
                format!("{path}.aws_region_name: missing; set it (or AWS_REGION) to the Bedrock region, e.g. us-east-1")
            })?;
        let id = super::model_id(&p.model.upstream);
        let mut address = Address::new(
            p,
            super::converse_url(p.api_base, &region, id, false),
            super::converse_url(p.api_base, &region, id, true),
        )?;
        // A Bedrock API key is a bearer token; otherwise sign with AWS credentials.
        let bearer = p.api_key.map(str::to_string).or_else(|| env(super::BEARER_TOKEN_ENV));
        let given = |s: Option<&str>, var: &str| s.map(str::to_string).or_else(|| env(var));
        let sigv4 = match bearer {
            Some(k) => {
                address.headers.push(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {k}"))?);
                None
            }
            None => {
                let access = given(p.aws_access_key_id, "AWS_ACCESS_KEY_ID");
                let secret = given(p.aws_secret_access_key, "AWS_SECRET_ACCESS_KEY");
                let (Some(access_key_id), Some(secret_access_key)) = (access, secret) else {
                    return Err(format!("{path}: no AWS credentials; set aws_access_key_id and aws_secret_access_key (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), or a Bedrock API key as api_key"));
                };
                let session_token = given(p.aws_session_token, "AWS_SESSION_TOKEN");
                Some((super::Credentials { access_key_id, secret_access_key, session_token }, region))
            }
        };
        Ok(Bedrock { address, sigv4, drop_params: p.drop_params })
    }
}

impl ChatProvider for Bedrock {
    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        let request = parse_request(call.body)?;
        let opts = super::Options { drop_params: self.drop_params };
        let out = super::converse_request(&request, &opts).map_err(|e| bad_param(e.param, e.message))?;
        let mut req = self.address.request(call.stream, Bytes::from(out.to_string()));
        if let Some((credentials, region)) = &self.sigv4 {
            // Signed over the exact URL and body bytes sent.
            let signed = super::sign("POST", &req.url.to_string(), &req.body[0], region, credentials, call.now)
                .map_err(|e| ApiError::bad_request(format!("cannot sign the Bedrock request: {e}")))?;
            for (name, value) in signed {
                if let Ok(mut v) = HeaderValue::from_str(&value) {
                    v.set_sensitive(name == "authorization" || name == "x-amz-security-token");
                    req.headers.insert(HeaderName::from_static(name), v);
                }
            }
        }
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        super::converse_response(&parsed, meta.model, meta.id, meta.created)
            .map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body))
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        StreamTranslator::Bedrock(
            super::EventStreamDecoder::new(),
            super::StreamTranslator::new(meta.model, meta.id, meta.created, meta.include_usage),
        )
    }

    fn map_error(&self, status: u16, headers: &dyn Headers, body: &[u8]) -> ApiError {
        crate::errors::classified(&self.address.provider, super::error(status, headers.get("x-amzn-errortype"), body))
    }
}
