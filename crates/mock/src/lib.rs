//! `sluice-mock`: the fake LLM provider behind `sluice mock`.
//!
//! It answers like LiteLLM's `example_openai_endpoint` (the upstream of the seed load test) on
//! the OpenAI routes, adds Vertex AI / Gemini `generateContent` with SSE streaming, a Google OAuth
//! token endpoint, Anthropic's `/v1/messages` with its typed event streams, Ollama's native
//! `/api/chat`, `/api/generate` and `/api/embed` with NDJSON streams, Cohere's v2 `/v2/chat` (typed
//! SSE events), `/v2/embed` and `/v2/rerank`, Cloudflare Workers AI's
//! `/client/v4/accounts/{account}/ai/run/{model}` (`cloudflare`: chat and the `@cf/baai/` embedding
//! models), Vertex AI's partner-model doors (Claude's `:rawPredict`/`:streamRawPredict` in
//! Anthropic's format, Mistral's and AI21's in OpenAI's, the `endpoints/openapi/chat/completions`
//! of the MaaS models: `vertex_partner`), Hugging Face's feature extraction (the router's `hf-inference` pipeline and TEI's
//! `/embed`: `huggingface`), Predibase's TGI
//! `/generate(_stream)` and Triton's `/generate(_stream)` and `/infer` (`textgen`), watsonx.ai's
//! `/ml/v1/text/chat(_stream)` and `/ml/v1/text/embeddings` behind IBM Cloud IAM's `/identity/token` (`watsonx`), SageMaker's
//! `/endpoints/{name}/invocations` (TGI, chat and embedding containers) and its event-stream
//! `invocations-response-stream` (`sagemaker`), Replicate's predictions, polled and streamed (`replicate`), an OpenAI-compatible
//! server's `/rerank` (vLLM's shape), Voyage AI's embeddings and rerank (under `/voyage/v1`), OpenAI's Responses API
//! (`/v1/responses`, whole and streamed, and `GET`/`DELETE` by id), OpenAI's images, moderations
//! and speech (`media`), Deepgram's `/v1/listen`, Google Cloud Text-to-Speech and ElevenLabs'
//! text to speech (`voice`), OpenAI's Files and Batches APIs (`files`: uploads kept in memory, batches
//! that complete with an output file of answers), and knobs a gateway's tests and benchmarks need: latency, chunk pacing,
//! slowapi-style fixed-window rate limits, injected 500s, and model names that trigger a chosen
//! failure (`error-503`, `stream-reset`, `retry-after-2`, …) or, on Anthropic's route, cache reads
//! in the usage (`claude-cached-100`). `GET /mock/stats` reports what it saw.
//! For a gateway's pass-through tests, `--provider-key` refuses requests that do not carry the
//! provider's credential and `--record` keeps the last request for `GET /mock/last` (`witness`).
//!
//! It is built to never be a benchmark's bottleneck: hyper directly, fixed response text, a
//! scanner instead of a JSON tree for the request, atomics for every counter.

mod anthropic;
mod bedrock;
mod bedrock_invoke;
mod body;
mod cloudflare;
mod cohere;
mod config;
mod files;
mod google;
mod huggingface;
mod image_models;
mod latency;
mod media;
mod ollama;
mod openai;
mod ratelimit;
mod replicate;
mod respond;
mod responses;
mod sagemaker;
mod service;
mod sniff;
mod stats;
mod textgen;
mod token;
mod triggers;
mod vectors;
mod vertex_partner;
mod voice;
mod voyage;
mod watsonx;
mod witness;

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

pub use config::{MockArgs, MockConfig, DEFAULT_RATE_LIMIT};
pub use latency::{parse_duration, Latency};
pub use openai::STREAM_SENTENCE;
pub use ratelimit::RateLimitRule;
pub use token::VertexKey;

/// Runs the mock until ctrl-c or SIGTERM, on a runtime of its own (`--threads`).
///
/// Prints `sluice mock listening on http://HOST:PORT` to stdout once it accepts connections.
pub fn run(args: MockArgs) -> std::io::Result<()> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let config = MockConfig::from_args(&args).map_err(invalid)?;
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()?
    };
    runtime.block_on(async move {
        let listener = TcpListener::bind((args.host.as_str(), args.port)).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("sluice mock: cannot listen on {}:{}: {e}", args.host, args.port))
        })?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "sluice mock listening on http://{addr}")?;
            out.flush()?;
        }
        tokio::select! {
            r = serve(listener, config) => r,
            _ = shutdown_signal() => Ok(()),
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Serves HTTP/1.1 (keep-alive) and cleartext HTTP/2 on an already-bound listener, forever.
///
/// Meant for in-process tests: bind `127.0.0.1:0`, read the address, spawn this.
pub async fn serve(listener: TcpListener, config: MockConfig) -> std::io::Result<()> {
    let mock = Arc::new(service::Mock::new(config));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Answer pipelined requests in one write; harmless for clients that do not pipeline.
    builder.http1().timer(TokioTimer::new()).keep_alive(true).pipeline_flush(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection aborted before accept: keep serving
                // the connections we have rather than dying under load.
                tracing::warn!(error = %e, "sluice mock: accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mock = Arc::clone(&mock);
        let builder = Arc::clone(&builder);
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let mock = Arc::clone(&mock);
                async move { Ok::<_, Infallible>(mock.handle(req).await) }
            });
            // Connection errors (client hung up, malformed HTTP) concern only that client.
            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}
