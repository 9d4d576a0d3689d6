//! The relay's [`Stage`] for an OpenAI or Azure deployment's Responses event stream: events
//! pass through as they came, but for the Response they carry (`response.created`,
//! `response.in_progress`, `response.completed`, …), whose `model` is re-stamped and whose id
//! is wrapped to name the deployment. The usage of the closing event is billed and metered.
//! Unlike chat there is no `[DONE]` to add: the stream ends when the upstream's does.

use super::relay::Stage;
use super::responses::{restamp, IdWrap};
use super::upstream;
use bytes::{BufMut, Bytes, BytesMut};
use sluice_providers::Provider;
use sluice_wire::responses::spans;
use sluice_wire::sniff::Usage;
use sluice_wire::{sse, ApiError};
use std::sync::Arc;

pub struct ResponsesStage {
    parser: sse::Parser,
    provider: Provider,
    /// The client's model name as a JSON string literal; empty after a fallback (the answer
    /// keeps the model that served it).
    client_model: Bytes,
    /// The deployment's id, wrapped into response ids.
    deployment: String,
    usage: Option<Usage>,
    metrics: Option<(sluice_metrics::DeploymentMetrics, String)>,
    charge: Option<Arc<sluice_access::charge::Charge>>,
}

impl ResponsesStage {
    pub fn new(
        provider: Provider,
        client_model: Bytes,
        deployment: String,
        metrics: Option<(sluice_metrics::DeploymentMetrics, String)>,
        charge: Option<Arc<sluice_access::charge::Charge>>,
    ) -> Self {
        ResponsesStage { parser: sse::Parser::new(), provider, client_model, deployment, usage: None, metrics, charge }
    }

    fn relay(&mut self, event: sse::Event, out: &mut BytesMut) {
        if let Some(name) = &event.name {
            out.put_slice(b"event: ");
            out.put_slice(name.as_bytes());
            out.put_slice(b"\n");
        }
        out.put_slice(b"data: ");
        let found = std::str::from_utf8(&event.data).ok().and_then(spans);
        match found {
            Some(s) if s.id.is_some() || s.model.is_some() => {
                if s.usage.is_some() {
                    self.usage = s.usage;
                }
                let wrap = IdWrap { provider: self.provider.name, deployment: &self.deployment };
                let model = (!self.client_model.is_empty()).then_some(&self.client_model[..]);
                out.put_slice(&restamp(&event.data, &s, &wrap, model));
            }
            _ => out.put_slice(&event.data),
        }
        out.put_slice(b"\n\n");
    }

    fn bill(&mut self) {
        let usage = self.usage.unwrap_or_default();
        if let Some((m, model)) = &self.metrics {
            if self.usage.is_some() {
                let caller = self.charge.as_ref().and_then(|c| c.caller());
                let (p, c) = (usage.prompt_tokens, usage.completion_tokens);
                m.stream_usage(model, caller, sluice_metrics::Usage { prompt_tokens: p, completion_tokens: c });
            }
        }
        if let Some(c) = self.charge.take() {
            c.settle(sluice_access::charge::token_usage(&usage));
        }
    }
}

impl Stage for ResponsesStage {
    fn push(&mut self, bytes: &[u8]) {
        self.parser.push(bytes);
    }

    fn frames(&mut self, out: &mut BytesMut) -> Result<bool, ApiError> {
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) if event.is_done() => {
                    out.put_slice(b"data: [DONE]\n\n");
                    self.bill();
                    return Ok(true);
                }
                Ok(Some(event)) => self.relay(event, out),
                Ok(None) => return Ok(false),
                Err(sse::LineTooLong) => {
                    return Err(upstream::malformed_error(&self.provider, "upstream sent an SSE line over 16 MB", b""))
                }
            }
        }
    }

    fn end(&mut self, out: &mut BytesMut, frames_sent: bool) -> Result<(), ApiError> {
        if let Some(event) = self.parser.finish() {
            self.relay(event, out);
        }
        if !frames_sent && out.is_empty() {
            return Err(upstream::malformed_error(
                &self.provider,
                "upstream ended the stream without sending any event",
                b"",
            ));
        }
        self.bill();
        Ok(())
    }

    fn abandoned(&mut self) {
        self.bill();
    }
}
