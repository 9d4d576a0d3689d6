//! OpenAI's Responses API (`/v1/responses`) for deployments that speak only chat completions:
//! a Responses request becomes a chat request ([`to_chat`]), and the chat answer becomes a
//! Response ([`Turn::answer`]) or, streamed, OpenAI's Responses event sequence
//! ([`EventStream`]). OpenAI and Azure deployments get the client's bytes instead; only the
//! response ids they mint are wrapped ([`id`]) so that later calls find the deployment again.
//!
//! These paths build JSON trees: they serve providers whose latency dwarfs the cost.

mod answer;
mod events;
pub mod id;
mod request;

pub use answer::{output_messages, Turn};
pub use events::EventStream;
pub use request::{to_chat, ChatRequest};

use crate::ApiError;

/// The error for an input the translation cannot carry to a chat-only provider.
fn unsupported(what: impl std::fmt::Display, param: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{what} is not supported for this model: it is served through chat completions. Remove it, or route the request to an OpenAI or Azure deployment."
    ))
    .param(param)
}
