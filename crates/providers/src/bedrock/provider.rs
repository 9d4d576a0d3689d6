//! Bedrock's Converse API as a [`ChatProvider`]: region and credentials from `litellm_params` and
//! the AWS credential chain (`sluice_credentials::aws`: keys, environment, web identity, shared
//! files, ECS, EC2, assume-role), every request SigV4-signed over its exact URL and body just
//! before it goes out (or sent with a Bedrock API key as a bearer token). An image model's
//! deployment serves `/images/generations` through InvokeModel (`super::image`).

use bytes::Bytes;
use http::Uri;
use serde_json::Value;
use sluice_wire::sniff::Endpoint;
use sluice_wire::ApiError;

use crate::provider::{
    bad_param, parse_request, Address, AnswerMeta, AwsSigning, ChatCall, ChatProvider, Env, Headers, Params,
    UpstreamRequest,
};
use crate::stream::StreamTranslator;

#[derive(Debug)]
pub struct Bedrock {
    address: Address,
    /// `None` when a Bedrock API key rides in the address's headers instead.
    sigv4: Option<AwsSigning>,
    drop_params: bool,
    /// An image model's shape and its InvokeModel URL.
    image: Option<(super::image::ImageModel, Uri)>,
}

impl Bedrock {
    /// A missing region is the deployment's own failure (as in LiteLLM): its requests say what
    /// to set, the other deployments keep serving. Credentials are looked for when the first
    /// request is signed, so a role the platform gives later (or a file written later) serves.
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
        let image = match super::image::image_model(id) {
            Some(model) => Some((model, p.uri(super::image::invoke_url(p.api_base, &region, id))?)),
            None => None,
        };
        // A Bedrock API key is a bearer token; otherwise sign with AWS credentials.
        let bearer = p.api_key.map(str::to_string).or_else(|| env(super::BEARER_TOKEN_ENV));
        let sigv4 = match bearer {
            Some(k) => {
                address.headers.push(p.secret_header(http::header::AUTHORIZATION, &format!("Bearer {k}"))?);
                None
            }
            None => Some(AwsSigning { credentials: super::credentials(p, env, &region)?, region, service: "bedrock" }),
        };
        Ok(Bedrock { address, sigv4, drop_params: p.drop_params, image })
    }
}

impl ChatProvider for Bedrock {
    fn serves(&self, endpoint: Endpoint) -> bool {
        endpoint == Endpoint::Chat || (endpoint == Endpoint::Images && self.image.is_some())
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, ApiError> {
        if let (Endpoint::Images, Some((model, url))) = (call.endpoint, &self.image) {
            let request = parse_request(call.body)?;
            let out =
                super::image::request(&request, *model, self.drop_params).map_err(|e| bad_param(e.param, e.message))?;
            let mut req = self.address.request(false, Bytes::from(out.to_string()));
            req.url = url.clone();
            req.aws = self.sigv4.clone();
            return Ok(req);
        }
        let request = parse_request(call.body)?;
        let opts = super::Options { drop_params: self.drop_params };
        let out = super::converse_request(&request, &opts).map_err(|e| bad_param(e.param, e.message))?;
        let mut req = self.address.request(call.stream, Bytes::from(out.to_string()));
        // Signed by the server once the credentials are in hand (`UpstreamRequest::sign_aws`).
        req.aws = self.sigv4.clone();
        Ok(req)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<Value, ApiError> {
        let parsed = self.address.answer_json(body)?;
        if let (Endpoint::Images, Some((model, _))) = (meta.endpoint, &self.image) {
            return super::image::response(&parsed, *model, meta.created)
                .map_err(|e| crate::errors::malformed(&self.address.provider, &e.message, body));
        }
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
