//! Every provider's stream decoder and translator behind one face: the upstream's bytes in,
//! OpenAI chunks out, as JSON values so a further stage (the `/v1/messages` front door) reads
//! them without parsing text again.

use serde_json::Value;
use sluice_wire::sse;

use crate::{
    anthropic, azure_text, bedrock, chunks, cloudflare, codestral, cohere, gemini, ndjson, ollama, replicate,
    sagemaker, textgen, triton, watsonx,
};

/// The largest SSE line a provider may send, as the parser reports it.
const LINE_TOO_LONG: &str = "an SSE line over 16 MB";
const NDJSON_LINE_TOO_LONG: &str = "a stream line over 16 MB";

pub enum StreamTranslator {
    /// An OpenAI-format stream: the chunks are already OpenAI's, read for their usage.
    OpenAi(sse::Parser, Option<(u64, u64)>),
    Gemini(sse::Parser, gemini::StreamTranslator),
    Anthropic(sse::Parser, anthropic::ChatStream),
    /// Bedrock streams are AWS's binary event-stream framing, not SSE.
    Bedrock(bedrock::EventStreamDecoder, bedrock::StreamTranslator),
    Cohere(sse::Parser, cohere::StreamTranslator),
    /// Ollama streams newline-delimited JSON.
    Ollama(ndjson::Reader, ollama::StreamTranslator),
    /// Cloudflare Workers AI: SSE events with pieces of text.
    Cloudflare(sse::Parser, cloudflare::Stream),
    /// Hugging Face TGI's `/generate_stream` (Predibase).
    Tgi(sse::Parser, textgen::TgiStream),
    /// Triton's `/generate_stream`.
    Triton(sse::Parser, triton::Stream),
    /// Azure's text completion chunks, read as chat.
    AzureText(sse::Parser, azure_text::Stream),
    /// watsonx.ai's chat stream: OpenAI's chunks under its own ids.
    Watsonx(sse::Parser, watsonx::Stream),
    /// SageMaker's response stream: AWS event-stream framing around the container's own SSE.
    SageMaker(bedrock::EventStreamDecoder, sagemaker::Stream),
    /// Replicate's prediction stream: named SSE events (`output`, `error`, `done`).
    Replicate(sse::Parser, replicate::Stream),
    /// OpenAI's chunks from a server behind another provider's door (Vertex AI's partner
    /// models), re-stamped as the gateway's.
    Restamped(sse::Parser, chunks::Restamped),
    /// Codestral's FIM stream (chat chunks), read as text completion chunks.
    Fim(sse::Parser, codestral::Stream),
}

impl StreamTranslator {
    pub fn push(&mut self, bytes: &[u8]) {
        match self {
            StreamTranslator::OpenAi(p, _)
            | StreamTranslator::Gemini(p, _)
            | StreamTranslator::Anthropic(p, _)
            | StreamTranslator::Cohere(p, _)
            | StreamTranslator::Cloudflare(p, _)
            | StreamTranslator::Tgi(p, _)
            | StreamTranslator::Triton(p, _)
            | StreamTranslator::AzureText(p, _)
            | StreamTranslator::Watsonx(p, _)
            | StreamTranslator::Replicate(p, _)
            | StreamTranslator::Restamped(p, _)
            | StreamTranslator::Fim(p, _) => p.push(bytes),
            StreamTranslator::Bedrock(d, _) | StreamTranslator::SageMaker(d, _) => d.push(bytes),
            StreamTranslator::Ollama(r, _) => r.push(bytes),
        }
    }

    /// Every chunk the buffered bytes complete. An error is a message for the stream's error
    /// event: the upstream sent something its format does not allow.
    pub fn drain(&mut self, out: &mut Vec<Value>) -> Result<(), String> {
        match self {
            StreamTranslator::OpenAi(p, usage) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    openai_event(&e, usage, out)?;
                }
            }
            StreamTranslator::Gemini(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    out.extend(t.on_event_values(&e.data).map_err(|e| e.message)?);
                }
            }
            StreamTranslator::Anthropic(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    out.extend(t.on_event_values(e.name.as_deref(), &e.data).map_err(|e| e.message)?);
                }
            }
            StreamTranslator::Bedrock(d, t) => {
                while let Some(m) = d.next_message()? {
                    out.extend(t.on_message_values(&m).map_err(|e| e.message)?);
                }
            }
            StreamTranslator::Cohere(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    out.extend(t.on_event_values(&e.data)?);
                }
            }
            StreamTranslator::Ollama(r, t) => {
                while let Some(line) = r.next_line().map_err(|_| NDJSON_LINE_TOO_LONG.to_string())? {
                    out.extend(t.on_line(&line)?);
                }
            }
            StreamTranslator::Cloudflare(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
            StreamTranslator::Tgi(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
            StreamTranslator::Triton(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
            StreamTranslator::AzureText(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
            StreamTranslator::Watsonx(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
            StreamTranslator::SageMaker(d, t) => {
                while let Some(m) = d.next_message()? {
                    t.on_message(&m, out)?;
                }
            }
            StreamTranslator::Replicate(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(e.name.as_deref(), &e.data, out)?;
                }
            }
            StreamTranslator::Restamped(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
            StreamTranslator::Fim(p, t) => {
                while let Some(e) = p.next_event().map_err(|_| LINE_TOO_LONG.to_string())? {
                    t.on_event(&e.data, out)?;
                }
            }
        }
        Ok(())
    }

    /// Token usage, once the provider has reported it.
    pub fn usage(&self) -> Option<(u64, u64)> {
        match self {
            StreamTranslator::OpenAi(_, u) => *u,
            StreamTranslator::Gemini(_, t) => t.usage(),
            StreamTranslator::Anthropic(_, t) => t.usage(),
            StreamTranslator::Bedrock(_, t) => t.usage(),
            StreamTranslator::Cohere(_, t) => t.usage(),
            StreamTranslator::Ollama(_, t) => t.usage(),
            StreamTranslator::Cloudflare(_, t) => t.usage(),
            StreamTranslator::Tgi(_, t) => t.usage(),
            StreamTranslator::Triton(_, t) => t.usage(),
            StreamTranslator::AzureText(_, t) => t.usage(),
            StreamTranslator::Watsonx(_, t) => t.usage(),
            StreamTranslator::SageMaker(_, t) => t.usage(),
            StreamTranslator::Replicate(_, t) => t.usage(),
            StreamTranslator::Restamped(_, t) => t.usage(),
            StreamTranslator::Fim(_, t) => t.usage(),
        }
    }

    /// The usage as OpenAI's `usage` object once reported, with the cache and reasoning counts
    /// the provider gave (what the bill prices; [`Self::usage`] has only the two totals).
    pub fn usage_object(&self) -> Option<Value> {
        match self {
            StreamTranslator::OpenAi(_, u) => {
                u.map(|(p, c)| serde_json::json!({"prompt_tokens": p, "completion_tokens": c}))
            }
            StreamTranslator::Gemini(_, t) => t.usage_object(),
            StreamTranslator::Anthropic(_, t) => t.usage_object(),
            StreamTranslator::Bedrock(_, t) => t.usage_object(),
            StreamTranslator::Cohere(_, t) => t.usage_object(),
            StreamTranslator::Ollama(_, t) => t.usage_object(),
            StreamTranslator::Cloudflare(_, t) => t.usage_object(),
            StreamTranslator::Tgi(_, t) => t.usage_object(),
            StreamTranslator::Triton(_, t) => t.usage_object(),
            StreamTranslator::AzureText(_, t) => t.usage_object(),
            StreamTranslator::Watsonx(_, t) => t.usage_object(),
            StreamTranslator::SageMaker(_, t) => t.usage_object(),
            StreamTranslator::Replicate(_, t) => t.usage_object(),
            StreamTranslator::Restamped(_, t) => t.usage_object(),
            StreamTranslator::Fim(_, t) => t.usage_object(),
        }
    }

    /// End of the upstream body: whatever is left, then the closing chunks.
    pub fn finish(&mut self, out: &mut Vec<Value>) -> Result<(), String> {
        match self {
            StreamTranslator::OpenAi(p, usage) => {
                if let Some(e) = p.finish() {
                    openai_event(&e, usage, out)?;
                }
            }
            StreamTranslator::Gemini(p, t) => {
                if let Some(e) = p.finish() {
                    out.extend(t.on_event_values(&e.data).map_err(|e| e.message)?);
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Anthropic(p, t) => {
                if let Some(e) = p.finish() {
                    out.extend(t.on_event_values(e.name.as_deref(), &e.data).map_err(|e| e.message)?);
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Bedrock(d, t) => {
                if d.pending() > 0 {
                    return Err("the upstream cut the event stream off mid-message".into());
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Cohere(p, t) => {
                if let Some(e) = p.finish() {
                    out.extend(t.on_event_values(&e.data)?);
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Ollama(r, t) => {
                if let Some(line) = r.finish() {
                    out.extend(t.on_line(&line)?);
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Cloudflare(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Tgi(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Triton(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::AzureText(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Watsonx(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::SageMaker(d, t) => {
                if d.pending() > 0 {
                    return Err("the upstream cut the event stream off mid-message".into());
                }
                t.finish(out)?;
            }
            StreamTranslator::Replicate(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(e.name.as_deref(), &e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Restamped(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
            StreamTranslator::Fim(p, t) => {
                if let Some(e) = p.finish() {
                    t.on_event(&e.data, out)?;
                }
                out.extend(t.finish_values());
            }
        }
        Ok(())
    }
}

/// One OpenAI stream event: `[DONE]` ends nothing here (the relay writes its own), an error
/// object or text that is not JSON fails the stream.
fn openai_event(e: &sse::Event, usage: &mut Option<(u64, u64)>, out: &mut Vec<Value>) -> Result<(), String> {
    if e.is_done() || e.data.trim_ascii().is_empty() {
        return Ok(());
    }
    let chunk: Value =
        serde_json::from_slice(&e.data).map_err(|_| "the upstream sent a stream frame that is not JSON".to_string())?;
    if let Some(err) = chunk.get("error") {
        return Err(err.get("message").and_then(Value::as_str).unwrap_or("upstream error").to_string());
    }
    if let Some(u) = crate::provider::usage(&chunk).filter(|_| chunk["usage"].is_object()) {
        *usage = Some(u);
    }
    out.push(chunk);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_chunks_pass_as_values_with_their_usage() {
        let mut t = StreamTranslator::OpenAi(sse::Parser::new(), None);
        t.push(b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n");
        let mut out = Vec::new();
        t.drain(&mut out).unwrap();
        t.finish(&mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["choices"][0]["delta"]["content"], "hi");
        assert_eq!(t.usage(), Some((3, 2)));
        let mut t = StreamTranslator::OpenAi(sse::Parser::new(), None);
        t.push(b"data: {not json\n\n");
        assert!(t.drain(&mut out).is_err());
    }

    #[test]
    fn an_anthropic_streams_usage_keeps_its_cache_counts_for_the_bill() {
        let mut t = StreamTranslator::Anthropic(sse::Parser::new(), anthropic::ChatStream::new("c", 0, false));
        assert_eq!(t.usage_object(), None);
        t.push(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":10,\"output_tokens\":1,\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":5}}}\n\nevent: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":7}}\n\n");
        let mut out = Vec::new();
        t.drain(&mut out).unwrap();
        let u = sluice_wire::sniff::Usage::from_value(&t.usage_object().unwrap()).unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens), (115, 7));
        assert_eq!((u.cached_tokens, u.cache_creation_input_tokens), (100, 5));
        assert_eq!(t.usage(), Some((115, 7)));
    }

    const OLLAMA_LINES: &str = concat!(
        "{\"message\":{\"role\":\"assistant\",\"content\":\"He\"},\"done\":false}\n",
        "{\"message\":{\"role\":\"assistant\",\"content\":\"llo\"},\"done\":false}\r\n",
        "{\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":",
        "{\"name\":\"f\",\"arguments\":{\"a\":1}}}]},\"done\":false}\n",
        "{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",",
        "\"prompt_eval_count\":3,\"eval_count\":2}",
    );

    fn ollama() -> StreamTranslator {
        StreamTranslator::Ollama(
            ndjson::Reader::new(),
            ollama::StreamTranslator::new("m", "chatcmpl-x", 1, true, false),
        )
    }

    /// Every push and drain over `cuts`, then the finish: the chunks, or the first error.
    fn run_ollama(bytes: &[u8], cuts: &[usize]) -> Result<Vec<Value>, String> {
        let mut t = ollama();
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain([bytes.len()].iter()) {
            let c = c.clamp(from, bytes.len());
            t.push(&bytes[from..c]);
            from = c;
            t.drain(&mut out)?;
        }
        t.finish(&mut out)?;
        Ok(out)
    }

    proptest::proptest! {
        /// An Ollama stream cut anywhere by the network translates to the same chunks.
        #[test]
        fn an_ollama_stream_translates_the_same_however_it_is_cut(
            mut cuts in proptest::collection::vec(0usize..OLLAMA_LINES.len(), 0..10),
        ) {
            cuts.sort_unstable();
            let whole = run_ollama(OLLAMA_LINES.as_bytes(), &[]).unwrap();
            proptest::prop_assert_eq!(run_ollama(OLLAMA_LINES.as_bytes(), &cuts).unwrap(), whole);
        }

        /// Mutated bytes, cut anywhere, never panic: they translate or fail the stream.
        #[test]
        fn a_mutated_ollama_stream_never_panics(
            flips in proptest::collection::vec((0usize..OLLAMA_LINES.len(), proptest::prelude::any::<u8>()), 0..8),
            mut cuts in proptest::collection::vec(0usize..OLLAMA_LINES.len(), 0..6),
        ) {
            let mut bytes = OLLAMA_LINES.as_bytes().to_vec();
            for (i, b) in flips {
                bytes[i] = b;
            }
            cuts.sort_unstable();
            let _ = run_ollama(&bytes, &cuts);
        }
    }

    #[test]
    fn the_whole_ollama_stream_reads_text_tool_calls_and_usage() {
        let out = run_ollama(OLLAMA_LINES.as_bytes(), &[]).unwrap();
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert!(out.iter().any(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "f"));
        assert_eq!(out.last().unwrap()["usage"]["total_tokens"], 5);
    }

    /// Every push and drain over `cuts`, then the finish, for any translator.
    fn run(mut t: StreamTranslator, bytes: &[u8], cuts: &[usize]) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        let mut from = 0;
        for &c in cuts.iter().chain([bytes.len()].iter()) {
            let c = c.clamp(from, bytes.len());
            t.push(&bytes[from..c]);
            from = c;
            t.drain(&mut out)?;
        }
        t.finish(&mut out)?;
        Ok(out)
    }

    const CLOUDFLARE_EVENTS: &str = concat!(
        "data: {\"response\":\"He\",\"p\":\"x\"}\n\n",
        "data: {\"response\":\"llo\"}\r\n\r\n",
        "data: {\"response\":\"\",\"tool_calls\":[{\"name\":\"f\",\"arguments\":{\"a\":1}}]}\n\n",
        "data: {\"response\":\"\",\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );

    fn cloudflare() -> StreamTranslator {
        StreamTranslator::Cloudflare(sse::Parser::new(), cloudflare::Stream::new("m", "chatcmpl-x", 1, true))
    }

    /// A SageMaker response stream: TGI's SSE cut into event-stream `PayloadPart`s of 7 bytes.
    fn sagemaker_frames() -> Vec<u8> {
        let sse = concat!(
            "data:{\"token\":{\"text\":\"He\",\"special\":false},\"details\":null}\n\n",
            "data:{\"token\":{\"text\":\"llo\",\"special\":false},\"details\":{\"finish_reason\":\"length\",\"generated_tokens\":2}}\n\n",
        );
        sse.as_bytes()
            .chunks(7)
            .flat_map(|p| bedrock::encode_event(&[(":event-type", "PayloadPart"), (":message-type", "event")], p))
            .collect()
    }

    fn sagemaker() -> StreamTranslator {
        StreamTranslator::SageMaker(
            bedrock::EventStreamDecoder::new(),
            sagemaker::Stream::new(sagemaker::Shape::Tgi, "m", "chatcmpl-x", 1, true),
        )
    }

    proptest::proptest! {
        /// Cloudflare's SSE and SageMaker's event-stream framing, cut anywhere by the network,
        /// translate to the same chunks.
        #[test]
        fn new_streams_translate_the_same_however_they_are_cut(
            mut cuts in proptest::collection::vec(0usize..400, 0..10),
        ) {
            cuts.sort_unstable();
            let whole = run(cloudflare(), CLOUDFLARE_EVENTS.as_bytes(), &[]).unwrap();
            proptest::prop_assert_eq!(run(cloudflare(), CLOUDFLARE_EVENTS.as_bytes(), &cuts).unwrap(), whole);
            let frames = sagemaker_frames();
            let whole = run(sagemaker(), &frames, &[]).unwrap();
            proptest::prop_assert_eq!(run(sagemaker(), &frames, &cuts).unwrap(), whole);
        }

        /// Mutated bytes never panic: they translate or fail the stream.
        #[test]
        fn mutated_new_streams_never_panic(
            flips in proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..8),
            mut cuts in proptest::collection::vec(0usize..400, 0..6),
        ) {
            cuts.sort_unstable();
            for (bytes, make) in [
                (CLOUDFLARE_EVENTS.as_bytes().to_vec(), cloudflare as fn() -> StreamTranslator),
                (sagemaker_frames(), sagemaker),
            ] {
                let mut bytes = bytes;
                for (i, b) in &flips {
                    let n = bytes.len();
                    bytes[i % n] = *b;
                }
                let _ = run(make(), &bytes, &cuts);
            }
        }
    }

    #[test]
    fn the_new_streams_read_text_tool_calls_and_usage() {
        let out = run(cloudflare(), CLOUDFLARE_EVENTS.as_bytes(), &[]).unwrap();
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        assert!(out.iter().any(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "f"));
        assert_eq!(out.last().unwrap()["usage"]["total_tokens"], 5);
        let out = run(sagemaker(), &sagemaker_frames(), &[]).unwrap();
        let text: String = out.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
        assert_eq!(text, "Hello");
        let frames = sagemaker_frames();
        assert!(run(sagemaker(), &frames[..frames.len() - 3], &[]).unwrap_err().contains("mid-message"));
    }

    #[test]
    fn a_bedrock_stream_cut_mid_message_fails_at_its_end() {
        let mut t = StreamTranslator::Bedrock(
            bedrock::EventStreamDecoder::new(),
            bedrock::StreamTranslator::new("m", "id", 0, false),
        );
        t.push(&bedrock::encode_event(&[(":event-type", "messageStart")], br#"{"role":"assistant"}"#)[..10]);
        let mut out = Vec::new();
        t.drain(&mut out).unwrap();
        assert!(t.finish(&mut out).unwrap_err().contains("mid-message"));
    }
}
