//! The OpenAI side of the wire: what sluice reads from clients and writes back to them.
//!
//! sluice never builds a full tree of a request's messages on the hot path. This crate holds the
//! small borrowed "sniff" views that pull out only the fields the gateway acts on, the helpers that
//! splice a new `model` into a body without re-serialising it, the SSE codec used to relay streams
//! frame by frame, the OpenAI error envelope every failure is reported in, and the Responses API's
//! mapping onto chat completions (`responses`).

pub mod compact;
pub mod controls;
pub mod decimal;
pub mod error;
pub mod form;
pub mod form_head;
pub mod members;
pub mod responses;
mod scan;
pub mod sniff;
pub mod splice;
pub mod sse;
pub mod strip;
pub mod text;
pub mod units;

pub use error::ApiError;
