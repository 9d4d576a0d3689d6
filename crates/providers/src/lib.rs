//! Upstream providers: which ones exist, how a deployment's `model` string names one, and —
//! behind one trait, [`ChatProvider`] — how to address, authenticate, build, parse, stream and
//! classify the errors of a call to it. The server builds each deployment's provider once
//! ([`build`]) and then asks it; it never matches on a provider family itself.
//!
//! Each provider family is a module. `openai` covers OpenAI itself and every provider that differs
//! only by base URL and key (groq, together_ai, mistral, deepseek, hosted_vllm, …): for those the
//! gateway forwards the client's bytes with only `model` rewritten. Gemini (Vertex and AI Studio),
//! Anthropic, Bedrock, SageMaker, Ollama, Cohere, Cloudflare, watsonx.ai, Replicate, Predibase,
//! Triton and Azure's text completions translate both ways; `deepgram` (transcriptions) and
//! `elevenlabs` (speech) serve one audio route each; `azure_ai` and `huggingface` only address
//! OpenAI-format servers their own way. `text_completion` makes `/v1/completions` a chat call for
//! every translated provider without a completions API of its own.

pub mod anthropic;
pub mod azure;
pub mod azure_ai;
pub mod azure_text;
pub mod bedrock;
mod bulk;
pub mod catalogue;
pub mod chunks;
pub mod clarifai;
pub mod cloudflare;
pub mod codestral;
pub mod cohere;
pub mod datarobot;
pub mod deepgram;
pub mod elevenlabs;
pub mod embedding;
pub mod errors;
pub mod gemini;
pub mod huggingface;
pub mod images;
mod json_read;
pub mod ndjson;
pub mod ollama;
pub mod openai;
pub mod passthrough;
pub mod predibase;
pub mod pricing;
pub mod provider;
pub mod ragflow;
pub mod replicate;
pub mod sagemaker;
pub mod stream;
pub mod text_completion;
pub mod textgen;
pub mod tokens;
pub mod triton;
mod turns;
pub mod vertex_partner;
pub mod voyage;
pub mod watsonx;

pub use catalogue::{build, parse_model, reported_base, Built, Family, ModelRef, Provider, Translated};
pub use errors::ExceptionClass;
pub use provider::{AnswerMeta, ChatCall, ChatProvider, NextExchange, Params, TokenSource, UpstreamRequest};
/// Moved to `sluice-credentials`; re-exported for the mock and the tests that sign with it.
pub use sluice_credentials::gcp::google_auth;
pub use stream::StreamTranslator;
