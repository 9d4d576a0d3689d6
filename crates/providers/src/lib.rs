//! Upstream providers: which ones exist, how a deployment's `model` string names one, and how to
//! address and authenticate a call to it.
//!
//! Each provider family is a module. `openai` covers OpenAI itself and every provider that differs
//! only by base URL and key (groq, together_ai, mistral, deepseek, hosted_vllm, …): for those the
//! gateway forwards the client's bytes with only `model` rewritten. Providers that need translation
//! are known by name (so configs naming them load and requests get a clear answer) until their
//! modules land.

pub mod anthropic;
pub mod azure;
pub mod bedrock;
pub mod catalogue;
pub mod errors;
pub mod gemini;
pub mod google_auth;
pub mod openai;
pub mod pricing;
mod turns;

pub use catalogue::{parse_model, Family, ModelRef, Provider};
pub use errors::ExceptionClass;
