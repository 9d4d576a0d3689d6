//! The providers sluice knows, parsing LiteLLM's `provider/model` strings, and building a
//! deployment's provider from its `litellm_params`: the one place that maps a family to its
//! implementation.

use crate::provider::{AnswerMeta, ChatCall, ChatProvider, Env, Headers, Params, TokenSources, UpstreamRequest};
use crate::stream::StreamTranslator;
use crate::{
    anthropic, azure, azure_ai, azure_text, bedrock, clarifai, cloudflare, codestral, cohere, datarobot, deepgram,
    elevenlabs, gemini, huggingface, ollama, openai, predibase, ragflow, replicate, sagemaker, triton, vertex_partner,
    voyage, watsonx,
};

/// How sluice talks to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// OpenAI's wire format at a base URL: forward the body, rewrite `model`.
    OpenAiCompatible {
        /// Base URL used when a deployment sets no `api_base`; `None` when one is required.
        default_base: Option<&'static str>,
        /// Environment variables consulted for a base URL when `api_base` is absent.
        base_env: &'static [&'static str],
        /// Environment variables consulted for the key when `api_key` is absent.
        key_env: &'static [&'static str],
        /// Key sent when none is configured (local servers accept anything).
        default_key: Option<&'static str>,
        /// The path LiteLLM adds to a configured base (`api_base` or the base variable) that does
        /// not already end with it (Heroku's `/v1`); the default base has it already.
        base_path: &'static str,
    },
    /// Google's Gemini on Vertex AI: service-account OAuth, generateContent; and the partner
    /// models Vertex serves beside it (`vertex_partner`), told apart by model name.
    Vertex,
    /// Google AI Studio's Gemini API: `x-goog-api-key`, generateContent.
    GoogleAiStudio,
    /// Anthropic's Messages API.
    Anthropic,
    /// Azure OpenAI: OpenAI's format at per-deployment URLs with `api-version` and `api-key`.
    Azure,
    /// Azure OpenAI's text completions, also serving chat as a completion (`azure_text`).
    AzureText,
    /// Azure AI Foundry and serverless endpoints: OpenAI's format at `api_base` (`azure_ai`).
    AzureAi,
    /// Hugging Face's router or an endpoint's OpenAI-compatible server (`huggingface`).
    HuggingFace,
    /// AWS Bedrock's Converse API: SigV4 (or a Bedrock API key), binary event streams.
    Bedrock,
    /// Ollama's native API: `/api/generate` (`chat: false`) or `/api/chat`, NDJSON streams.
    Ollama { chat: bool },
    /// Cohere's v2 API: `/v2/chat` with typed SSE events, `/v2/embed`.
    Cohere,
    /// Voyage AI: embeddings and rerank, no chat.
    Voyage,
    /// Cloudflare Workers AI: `/ai/run/{model}`, its own answer envelope, SSE pieces of text.
    Cloudflare,
    /// Predibase: Hugging Face TGI's `/generate` under the tenant's deployment.
    Predibase,
    /// Amazon SageMaker endpoints: SigV4, `invocations`, event-stream answers; `chat`: the
    /// container speaks OpenAI's chat (`sagemaker_chat`), else TGI's (`sagemaker`).
    SageMaker { chat: bool },
    /// Replicate: a prediction created, then polled (or its stream fetched).
    Replicate,
    /// IBM watsonx.ai: `/ml/v1/text/chat`, an IAM token from an API key.
    Watsonx,
    /// NVIDIA Triton: `/generate` (TensorRT-LLM) or `/infer` (KServe v2) at `api_base`.
    Triton,
    /// Deepgram: transcriptions only, the upload's audio sent to `/v1/listen`.
    Deepgram,
    /// ElevenLabs: speech only, `/v1/text-to-speech/{voice_id}`.
    ElevenLabs,
    /// Clarifai's OpenAI-compatible API, its models named by URL (`clarifai`).
    Clarifai,
    /// DataRobot's LLM gateway or a deployment, at the full chat URL LiteLLM makes of `api_base`.
    DataRobot,
    /// RAGFlow's chat assistants and agents, named in the model (`ragflow`).
    RagFlow,
    /// Codestral's fill-in-the-middle API, `/v1/fim/completions` (`text-completion-codestral`).
    CodestralFim,
    /// No provider sluice can call: a LiteLLM prefix sluice knows but does not serve
    /// ([`NOT_SERVED`], its requests answered with why), or what a deployment the config could
    /// not place is marked with (every prefix in [`PROVIDERS`] is served).
    NotImplemented,
}

/// One provider: its LiteLLM prefix and how to call it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provider {
    pub name: &'static str,
    pub family: Family,
}

const fn compat(
    name: &'static str,
    default_base: Option<&'static str>,
    base_env: &'static [&'static str],
    key_env: &'static [&'static str],
) -> Provider {
    Provider {
        name,
        family: Family::OpenAiCompatible { default_base, base_env, key_env, default_key: None, base_path: "" },
    }
}

const fn local(name: &'static str, default_base: Option<&'static str>, base_env: &'static [&'static str]) -> Provider {
    Provider {
        name,
        family: Family::OpenAiCompatible {
            default_base,
            base_env,
            key_env: &[],
            default_key: Some("fake-api-key"),
            base_path: "",
        },
    }
}

/// `p` (an OpenAI-compatible provider) with `path` added to a configured base that lacks it.
const fn based_at(p: Provider, path: &'static str) -> Provider {
    match p.family {
        Family::OpenAiCompatible { default_base, base_env, key_env, default_key, .. } => Provider {
            name: p.name,
            family: Family::OpenAiCompatible { default_base, base_env, key_env, default_key, base_path: path },
        },
        _ => p,
    }
}

/// `p` (an OpenAI-compatible provider) sending `key` when none is configured.
const fn keyed(p: Provider, key: &'static str) -> Provider {
    match p.family {
        Family::OpenAiCompatible { default_base, base_env, key_env, base_path, .. } => Provider {
            name: p.name,
            family: Family::OpenAiCompatible { default_base, base_env, key_env, default_key: Some(key), base_path },
        },
        _ => p,
    }
}

/// Every provider prefix sluice recognises (reference/formats.md §5 and LiteLLM's provider list).
pub static PROVIDERS: &[Provider] = &[
    compat("openai", Some("https://api.openai.com/v1"), &["OPENAI_BASE_URL", "OPENAI_API_BASE"], &["OPENAI_API_KEY"]),
    compat(
        "text-completion-openai",
        Some("https://api.openai.com/v1"),
        &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
        &["OPENAI_API_KEY"],
    ),
    compat("custom_openai", None, &[], &["OPENAI_API_KEY"]),
    compat("openai_like", None, &[], &[]),
    compat("groq", Some("https://api.groq.com/openai/v1"), &["GROQ_API_BASE"], &["GROQ_API_KEY"]),
    compat(
        "together_ai",
        Some("https://api.together.xyz/v1"),
        &["TOGETHER_AI_API_BASE"],
        &["TOGETHER_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_API_KEY"],
    ),
    compat("mistral", Some("https://api.mistral.ai/v1"), &["MISTRAL_API_BASE"], &["MISTRAL_API_KEY"]),
    compat("codestral", Some("https://codestral.mistral.ai/v1"), &["CODESTRAL_API_BASE"], &["CODESTRAL_API_KEY"]),
    compat("deepseek", Some("https://api.deepseek.com/beta"), &["DEEPSEEK_API_BASE"], &["DEEPSEEK_API_KEY"]),
    compat(
        "fireworks_ai",
        Some("https://api.fireworks.ai/inference/v1"),
        &["FIREWORKS_API_BASE"],
        &["FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY"],
    ),
    compat(
        "openrouter",
        Some("https://openrouter.ai/api/v1"),
        &["OPENROUTER_API_BASE"],
        &["OPENROUTER_API_KEY", "OR_API_KEY"],
    ),
    compat("xai", Some("https://api.x.ai/v1"), &["XAI_API_BASE"], &["XAI_API_KEY"]),
    compat(
        "perplexity",
        Some("https://api.perplexity.ai"),
        &["PERPLEXITY_API_BASE"],
        &["PERPLEXITYAI_API_KEY", "PERPLEXITY_API_KEY"],
    ),
    compat("deepinfra", Some("https://api.deepinfra.com/v1/openai"), &["DEEPINFRA_API_BASE"], &["DEEPINFRA_API_KEY"]),
    compat("cerebras", Some("https://api.cerebras.ai/v1"), &["CEREBRAS_API_BASE"], &["CEREBRAS_API_KEY"]),
    compat(
        "nvidia_nim",
        Some("https://integrate.api.nvidia.com/v1"),
        &["NVIDIA_NIM_API_BASE"],
        &["NVIDIA_NIM_API_KEY"],
    ),
    compat("sambanova", Some("https://api.sambanova.ai/v1"), &["SAMBANOVA_API_BASE"], &["SAMBANOVA_API_KEY"]),
    compat("anyscale", Some("https://api.endpoints.anyscale.com/v1"), &["ANYSCALE_API_BASE"], &["ANYSCALE_API_KEY"]),
    compat("litellm_proxy", None, &["LITELLM_PROXY_API_BASE"], &["LITELLM_PROXY_API_KEY"]),
    local("hosted_vllm", None, &["HOSTED_VLLM_API_BASE"]),
    // LiteLLM's `vllm/` runs the vllm library in its own process; a gateway can only reach a vLLM
    // server, so it is served as `hosted_vllm/` is.
    local("vllm", None, &["HOSTED_VLLM_API_BASE"]),
    local("lm_studio", None, &["LM_STUDIO_API_BASE"]),
    local("llamafile", Some("http://127.0.0.1:8080/v1"), &["LLAMAFILE_API_BASE"]),
    Provider { name: "vertex_ai", family: Family::Vertex },
    Provider { name: "vertex_ai_beta", family: Family::Vertex },
    Provider { name: "gemini", family: Family::GoogleAiStudio },
    Provider { name: "anthropic", family: Family::Anthropic },
    Provider { name: "azure", family: Family::Azure },
    Provider { name: "azure_ai", family: Family::AzureAi },
    Provider { name: "azure_text", family: Family::AzureText },
    Provider { name: "bedrock", family: Family::Bedrock },
    Provider { name: "sagemaker", family: Family::SageMaker { chat: false } },
    Provider { name: "sagemaker_chat", family: Family::SageMaker { chat: true } },
    Provider { name: "cohere", family: Family::Cohere },
    Provider { name: "cohere_chat", family: Family::Cohere },
    Provider { name: "huggingface", family: Family::HuggingFace },
    Provider { name: "ollama", family: Family::Ollama { chat: false } },
    Provider { name: "ollama_chat", family: Family::Ollama { chat: true } },
    Provider { name: "replicate", family: Family::Replicate },
    Provider { name: "watsonx", family: Family::Watsonx },
    // Serving endpoints: `https://<workspace>/serving-endpoints`, no default.
    compat("databricks", None, &["DATABRICKS_API_BASE"], &["DATABRICKS_API_KEY"]),
    Provider { name: "cloudflare", family: Family::Cloudflare },
    // Jamba's chat API is OpenAI's; `ai21_chat/` is LiteLLM's other name for it.
    compat("ai21", Some("https://api.ai21.com/studio/v1"), &["AI21_API_BASE"], &["AI21_API_KEY"]),
    compat("ai21_chat", Some("https://api.ai21.com/studio/v1"), &["AI21_API_BASE"], &["AI21_API_KEY"]),
    Provider { name: "voyage", family: Family::Voyage },
    Provider { name: "triton", family: Family::Triton },
    Provider { name: "deepgram", family: Family::Deepgram },
    Provider { name: "elevenlabs", family: Family::ElevenLabs },
    Provider { name: "predibase", family: Family::Predibase },
    compat(
        "dashscope",
        Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1"),
        &["DASHSCOPE_API_BASE"],
        &["DASHSCOPE_API_KEY"],
    ),
    compat("moonshot", Some("https://api.moonshot.ai/v1"), &["MOONSHOT_API_BASE"], &["MOONSHOT_API_KEY"]),
    // Embeddings and rerank only: Jina's `/v1/rerank` already answers in Cohere's shape.
    compat("jina_ai", Some("https://api.jina.ai/v1"), &[], &["JINA_AI_API_KEY"]),
    // The rest of LiteLLM's OpenAI-compatible prefixes, each with the default base and the
    // variables LiteLLM's `get_llm_provider` (or the provider's config class) reads.
    compat("github", Some("https://models.inference.ai.azure.com"), &["GITHUB_API_BASE"], &["GITHUB_API_KEY"]),
    compat(
        "friendliai",
        Some("https://api.friendli.ai/serverless/v1"),
        &["FRIENDLI_API_BASE"],
        &["FRIENDLIAI_API_KEY", "FRIENDLI_TOKEN"],
    ),
    compat("nebius", Some("https://api.studio.nebius.ai/v1"), &["NEBIUS_API_BASE"], &["NEBIUS_API_KEY"]),
    compat("novita", Some("https://api.novita.ai/v3/openai"), &["NOVITA_API_BASE"], &["NOVITA_API_KEY"]),
    compat(
        "featherless_ai",
        Some("https://api.featherless.ai/v1"),
        &["FEATHERLESS_API_BASE"],
        &["FEATHERLESS_API_KEY"],
    ),
    compat("hyperbolic", Some("https://api.hyperbolic.xyz/v1"), &["HYPERBOLIC_API_BASE"], &["HYPERBOLIC_API_KEY"]),
    compat("lambda_ai", Some("https://api.lambda.ai/v1"), &["LAMBDA_API_BASE"], &["LAMBDA_API_KEY"]),
    compat("nscale", Some("https://inference.api.nscale.com/v1"), &["NSCALE_API_BASE"], &["NSCALE_API_KEY"]),
    compat("galadriel", Some("https://api.galadriel.com/v1"), &["GALADRIEL_API_BASE"], &["GALADRIEL_API_KEY"]),
    compat(
        "volcengine",
        Some("https://ark.cn-beijing.volces.com/api/v3"),
        &["VOLCENGINE_API_BASE"],
        &["VOLCENGINE_API_KEY"],
    ),
    // LiteLLM picks a dedicated deployment's URL from an 8-character model id; sluice serves
    // Baseten's shared Model APIs here, and a dedicated deployment by its `api_base`.
    compat("baseten", Some("https://inference.baseten.co/v1"), &["BASETEN_API_BASE"], &["BASETEN_API_KEY"]),
    compat("meta_llama", Some("https://api.llama.com/compat/v1"), &["LLAMA_API_BASE"], &["LLAMA_API_KEY"]),
    compat(
        "vercel_ai_gateway",
        Some("https://ai-gateway.vercel.sh/v1"),
        &["VERCEL_AI_GATEWAY_API_BASE"],
        &["VERCEL_AI_GATEWAY_API_KEY", "VERCEL_OIDC_TOKEN"],
    ),
    compat("wandb", Some("https://api.inference.wandb.ai/v1"), &["WANDB_API_BASE"], &["WANDB_API_KEY"]),
    compat("aiml", Some("https://api.aimlapi.com/v1"), &["AIML_API_BASE"], &["AIML_API_KEY"]),
    // Local servers that need no key: LiteLLM sends a stub when none is set.
    keyed(
        compat("xinference", Some("http://127.0.0.1:9997/v1"), &["XINFERENCE_API_BASE"], &["XINFERENCE_API_KEY"]),
        "stub-xinference-key",
    ),
    keyed(
        compat(
            "docker_model_runner",
            Some("http://localhost:12434/engines/v1"),
            &["DOCKER_MODEL_RUNNER_API_BASE"],
            &["DOCKER_MODEL_RUNNER_API_KEY"],
        ),
        "dummy-key",
    ),
    // Infinity's embeddings and `/rerank` (Cohere's answer shape) at its server's base.
    compat("infinity", None, &["INFINITY_API_BASE"], &["INFINITY_API_KEY"]),
    // LiteLLM 1.81's remaining OpenAI-compatible prefixes: its `get_llm_provider` branches and
    // config classes, then its JSON registry (`openai_like/providers.json`).
    compat("zai", Some("https://api.z.ai/api/paas/v4"), &["ZAI_API_BASE"], &["ZAI_API_KEY"]),
    compat("empower", Some("https://app.empower.dev/api/v1"), &["EMPOWER_API_BASE"], &["EMPOWER_API_KEY"]),
    compat("compactifai", Some("https://api.compactif.ai/v1"), &[], &["COMPACTIFAI_API_KEY"]),
    compat("amazon_nova", Some("https://api.nova.amazon.com/v1"), &["AMAZON_NOVA_API_BASE"], &["AMAZON_NOVA_API_KEY"]),
    compat("v0", Some("https://api.v0.dev/v1"), &["V0_API_BASE"], &["V0_API_KEY"]),
    compat("morph", Some("https://api.morphllm.com/v1"), &["MORPH_API_BASE"], &["MORPH_API_KEY"]),
    compat("maritalk", Some("https://chat.maritaca.ai/api"), &["MARITALK_API_BASE"], &["MARITALK_API_KEY"]),
    compat(
        "ovhcloud",
        Some("https://oai.endpoints.kepler.ai.cloud.ovh.net/v1"),
        &["OVHCLOUD_API_BASE"],
        &["OVHCLOUD_API_KEY"],
    ),
    // LiteLLM's aiohttp transport for OpenAI itself: the same API, base and key.
    compat(
        "aiohttp_openai",
        Some("https://api.openai.com/v1"),
        &["OPENAI_BASE_URL", "OPENAI_API_BASE"],
        &["OPENAI_API_KEY"],
    ),
    // A configured base gets the `/v1` (an agent endpoint's `/api/v1`) LiteLLM adds when missing.
    based_at(
        compat(
            "cometapi",
            Some("https://api.cometapi.com/v1"),
            &["COMETAPI_API_BASE"],
            &["COMETAPI_KEY", "COMETAPI_API_KEY"],
        ),
        "/v1",
    ),
    based_at(compat("minimax", Some("https://api.minimax.io/v1"), &["MINIMAX_API_BASE"], &["MINIMAX_API_KEY"]), "/v1"),
    based_at(compat("heroku", None, &["HEROKU_API_BASE"], &["HEROKU_API_KEY"]), "/v1"),
    based_at(
        compat(
            "gradient_ai",
            Some("https://inference.do-ai.run/v1"),
            &["GRADIENT_AI_AGENT_ENDPOINT"],
            &["GRADIENT_AI_API_KEY"],
        ),
        "/api/v1",
    ),
    // text-generation-webui: `api_base` only, and LiteLLM sends its chat no key.
    based_at(compat("oobabooga", None, &[], &[]), "/v1"),
    // Lemonade checks no key; LiteLLM always sends this one.
    keyed(
        compat("lemonade", Some("http://localhost:8000/api/v1"), &["LEMONADE_API_BASE"], &["LEMONADE_API_KEY"]),
        "lemonade",
    ),
    Provider { name: "clarifai", family: Family::Clarifai },
    Provider { name: "datarobot", family: Family::DataRobot },
    Provider { name: "ragflow", family: Family::RagFlow },
    Provider { name: "text-completion-codestral", family: Family::CodestralFim },
    compat("publicai", Some("https://api.publicai.co/v1"), &["PUBLICAI_API_BASE"], &["PUBLICAI_API_KEY"]),
    compat("helicone", Some("https://ai-gateway.helicone.ai/"), &[], &["HELICONE_API_KEY"]),
    compat("veniceai", Some("https://api.venice.ai/api/v1"), &[], &["VENICE_AI_API_KEY"]),
    compat("xiaomi_mimo", Some("https://api.xiaomimimo.com/v1"), &[], &["XIAOMI_MIMO_API_KEY"]),
    compat("scaleway", Some("https://api.scaleway.ai/v1"), &[], &["SCW_SECRET_KEY"]),
    compat("synthetic", Some("https://api.synthetic.new/openai/v1"), &[], &["SYNTHETIC_API_KEY"]),
    compat("apertis", Some("https://api.stima.tech/v1"), &[], &["STIMA_API_KEY"]),
    compat("nano-gpt", Some("https://nano-gpt.com/api/v1"), &[], &["NANOGPT_API_KEY"]),
    compat("poe", Some("https://api.poe.com/v1"), &[], &["POE_API_KEY"]),
    compat("chutes", Some("https://llm.chutes.ai/v1/"), &[], &["CHUTES_API_KEY"]),
    compat("abliteration", Some("https://api.abliteration.ai/v1"), &[], &["ABLITERATION_API_KEY"]),
    compat("llamagate", Some("https://api.llamagate.dev/v1"), &[], &["LLAMAGATE_API_KEY"]),
    compat("gmi", Some("https://api.gmi-serving.com/v1"), &[], &["GMI_API_KEY"]),
    compat("sarvam", Some("https://api.sarvam.ai/v1"), &[], &["SARVAM_API_KEY"]),
];

/// LiteLLM's prefixes (1.81's `LlmProviders`) that sluice knows but does not serve, with why: a
/// deployment naming one loads with a warning and its requests get a 400 saying so.
pub static NOT_SERVED: &[(&str, &str)] = &[
    ("github_copilot", "GitHub Copilot signs in through GitHub's OAuth device flow and exchanges that token for a short-lived Copilot one, which sluice does not do"),
    ("chatgpt", "the ChatGPT subscription API signs in through OpenAI's browser OAuth login and refreshes its tokens, which sluice does not do"),
    ("snowflake", "Snowflake Cortex signs requests with a key-pair JWT and speaks its own inference:complete API"),
    ("sap", "SAP's Generative AI Hub needs an OAuth client-credentials token and its deployment lookup"),
    ("oci", "Oracle Cloud's Generative AI signs each request with an OCI API key"),
    ("gigachat", "GigaChat needs Sber's OAuth token exchange"),
    ("anthropic_text", "Anthropic's legacy /v1/complete text API; use anthropic/, which speaks the Messages API"),
    ("watsonx_text", "watsonx.ai's /text/generation API; use watsonx/, which speaks its chat API"),
    ("nlp_cloud", "NLP Cloud speaks its own generation API"),
    ("bytez", "Bytez speaks its own model API"),
    ("petals", "Petals runs the model inside LiteLLM's own process"),
    ("custom", "LiteLLM's custom handlers are Python classes loaded into its process"),
    ("runwayml", "RunwayML generates images and video through its own task API"),
    ("recraft", "Recraft generates images through its own API"),
    ("fal_ai", "fal.ai generates images through its own queue API"),
    ("stability", "Stability AI generates images through its own API"),
    ("topaz", "Topaz's image API (image variations) is not OpenAI's"),
    ("aws_polly", "Amazon Polly's speech API is SigV4-signed and not OpenAI's"),
    ("assemblyai", "AssemblyAI's transcription API is served only through pass-through routes in LiteLLM"),
    ("manus", "Manus answers only OpenAI's Responses API, which sluice sends natively to OpenAI and Azure alone"),
    ("milvus", "a vector store, not a model provider"),
    ("pg_vector", "a vector store, not a model provider"),
    ("s3_vectors", "a vector store, not a model provider"),
    ("langfuse", "a prompt-management integration, not a model provider"),
    ("humanloop", "a prompt-management integration, not a model provider"),
    ("dotprompt", "a prompt-management integration, not a model provider"),
    ("auto_router", "LiteLLM's semantic auto-router, not a model provider"),
    ("a2a", "an agent-to-agent protocol endpoint, not a model provider"),
    ("a2a_agent", "an agent-to-agent protocol endpoint, not a model provider"),
    ("langgraph", "a LangGraph agent server, not a model provider"),
];

/// Why sluice does not serve the LiteLLM prefix `name`, when it is one it knows.
pub fn not_served(name: &str) -> Option<&'static str> {
    NOT_SERVED.iter().find(|(n, _)| *n == name).map(|(_, why)| *why)
}

/// A deployment's provider, built once at start.
// Built once per deployment and moved into a box by the server at once: the variants' sizes
// cost nothing on the request path.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Built {
    /// OpenAI's format: the byte-forwarding fast path.
    OpenAi(openai::OpenAi),
    /// A provider whose format is translated both ways.
    Translated(Translated),
    /// A provider LiteLLM supports whose translation sluice has not implemented yet.
    NotImplemented,
    /// A deployment that cannot serve as configured (no base URL, missing credentials): as in
    /// LiteLLM, its own requests are answered with why, and the other deployments keep serving.
    Unusable(String),
}

/// The providers that translate, as one [`ChatProvider`] (static dispatch: one match per call).
#[derive(Debug)]
pub enum Translated {
    Gemini(gemini::Gemini),
    Anthropic(anthropic::Anthropic),
    Bedrock(bedrock::Bedrock),
    Ollama(ollama::Ollama),
    Cohere(cohere::Cohere),
    Voyage(voyage::Voyage),
    Cloudflare(cloudflare::Cloudflare),
    Predibase(predibase::Predibase),
    Triton(triton::Triton),
    AzureText(azure_text::AzureText),
    Watsonx(watsonx::Watsonx),
    SageMaker(sagemaker::SageMaker),
    Replicate(replicate::Replicate),
    Deepgram(deepgram::Deepgram),
    ElevenLabs(elevenlabs::ElevenLabs),
    /// Vertex AI's partner models (Claude, Llama, Mistral, …) and Model Garden endpoints.
    VertexPartner(vertex_partner::VertexPartner),
    CodestralFim(codestral::Fim),
    /// Hugging Face's feature-extraction embeddings, held by its OpenAI-format deployment
    /// ([`openai::OpenAi::translates`]).
    HuggingFace(huggingface::embed::Embed),
}

/// Builds the provider a deployment calls. An error stops the start (an OpenAI-compatible
/// deployment whose `api_base` or key cannot be sent); what a deployment lacks is
/// [`Built::Unusable`] instead.
pub fn build(p: &Params<'_>, env: Env<'_>, tokens: TokenSources<'_>) -> Result<Built, String> {
    let unusable = |r: Result<Built, String>| r.unwrap_or_else(Built::Unusable);
    Ok(match p.model.provider.family {
        Family::OpenAiCompatible { .. } => match openai::resolve_base(&p.model.provider, p.api_base, env) {
            Some(base) => Built::OpenAi(openai::OpenAi::compatible(p, &base, env)?),
            None => Built::Unusable(format!(
                "deployment {} of model group \"{}\" has no api_base; set litellm_params.api_base for provider {}",
                p.id, p.model_name, p.model.provider.name
            )),
        },
        Family::Azure => unusable(azure::build(p, env).map(Built::OpenAi)),
        Family::AzureAi => unusable(azure_ai::build(p, env).map(Built::OpenAi)),
        Family::AzureText => {
            unusable(azure_text::AzureText::new(p, env).map(|a| Built::Translated(Translated::AzureText(a))))
        }
        Family::HuggingFace => unusable(huggingface::build(p, env).map(Built::OpenAi)),
        Family::Vertex => match vertex_partner::Partner::of(&p.model.upstream) {
            Some(partner) => unusable(
                vertex_partner::VertexPartner::new(p, env, tokens, partner)
                    .map(|v| Built::Translated(Translated::VertexPartner(v))),
            ),
            None => unusable(gemini::Gemini::vertex(p, env, tokens).map(|g| Built::Translated(Translated::Gemini(g)))),
        },
        Family::GoogleAiStudio => {
            unusable(gemini::Gemini::studio(p, env).map(|g| Built::Translated(Translated::Gemini(g))))
        }
        Family::Anthropic => {
            unusable(anthropic::Anthropic::new(p, env).map(|a| Built::Translated(Translated::Anthropic(a))))
        }
        Family::Bedrock => unusable(bedrock::Bedrock::new(p, env).map(|b| Built::Translated(Translated::Bedrock(b)))),
        Family::Ollama { chat } => {
            unusable(ollama::Ollama::new(p, env, chat).map(|o| Built::Translated(Translated::Ollama(o))))
        }
        Family::Cohere => unusable(cohere::Cohere::new(p, env).map(|c| Built::Translated(Translated::Cohere(c)))),
        Family::Voyage => unusable(voyage::Voyage::new(p, env).map(|v| Built::Translated(Translated::Voyage(v)))),
        Family::Cloudflare => {
            unusable(cloudflare::Cloudflare::new(p, env).map(|c| Built::Translated(Translated::Cloudflare(c))))
        }
        Family::Predibase => {
            unusable(predibase::Predibase::new(p, env).map(|c| Built::Translated(Translated::Predibase(c))))
        }
        Family::Triton => unusable(triton::Triton::new(p).map(|c| Built::Translated(Translated::Triton(c)))),
        Family::Watsonx => unusable(watsonx::Watsonx::new(p, env).map(|w| Built::Translated(Translated::Watsonx(w)))),
        Family::Replicate => {
            unusable(replicate::Replicate::new(p, env).map(|r| Built::Translated(Translated::Replicate(r))))
        }
        Family::SageMaker { chat } => {
            let shape = if chat { sagemaker::Shape::Chat } else { sagemaker::Shape::Tgi };
            unusable(sagemaker::SageMaker::new(p, env, shape).map(|s| Built::Translated(Translated::SageMaker(s))))
        }
        Family::Deepgram => {
            unusable(deepgram::Deepgram::new(p, env).map(|d| Built::Translated(Translated::Deepgram(d))))
        }
        Family::ElevenLabs => {
            unusable(elevenlabs::ElevenLabs::new(p, env).map(|e| Built::Translated(Translated::ElevenLabs(e))))
        }
        Family::Clarifai => unusable(clarifai::build(p, env).map(Built::OpenAi)),
        Family::DataRobot => unusable(datarobot::build(p, env).map(Built::OpenAi)),
        Family::RagFlow => unusable(ragflow::build(p, env).map(Built::OpenAi)),
        Family::CodestralFim => {
            unusable(codestral::Fim::new(p, env).map(|f| Built::Translated(Translated::CodestralFim(f))))
        }
        Family::NotImplemented => Built::NotImplemented,
    })
}

/// The base URL a deployment reports (`x-litellm-model-api-base`, metrics, spend logs): its
/// `api_base`, else an OpenAI-compatible provider's default; without its query string.
pub fn reported_base(model: &ModelRef, api_base: Option<&str>, env: Env<'_>) -> Option<String> {
    match model.provider.family {
        Family::Ollama { .. } => return Some(ollama::base(api_base, env)),
        Family::Cohere => return Some(cohere::base(api_base, env)),
        Family::Voyage => return Some(voyage::base(api_base, env)),
        Family::Cloudflare => return cloudflare::base(api_base, env),
        Family::Predibase => return Some(predibase::base(api_base, env)),
        Family::Triton => return api_base.map(str::to_string),
        Family::Watsonx => return watsonx::base(api_base, env),
        Family::Replicate => return Some(replicate::base(api_base)),
        Family::Deepgram => return Some(deepgram::base(api_base, env)),
        Family::ElevenLabs => return Some(elevenlabs::base(api_base, env)),
        Family::Clarifai => return Some(openai::display_base(&clarifai::base(api_base, env)).to_string()),
        Family::DataRobot => return Some(openai::display_base(&datarobot::chat_url(api_base, env)).to_string()),
        Family::RagFlow => return ragflow::root(api_base, env),
        Family::CodestralFim => return Some(openai::display_base(&codestral::url(api_base)).to_string()),
        Family::AzureText => {
            let base = api_base.map(str::to_string).or_else(|| crate::azure::BASE_ENV.iter().find_map(|n| env(n)));
            return base.map(|b| openai::display_base(&b).to_string());
        }
        Family::AzureAi => return azure_ai::base(api_base, env).map(|b| openai::display_base(&b).to_string()),
        Family::HuggingFace => {
            let route = huggingface::route(&model.upstream, api_base, env);
            return Some(openai::display_base(&route.root).to_string());
        }
        _ => {}
    }
    openai::resolve_base(&model.provider, api_base, env).map(|b| openai::display_base(&b).to_string())
}

impl Translated {
    /// The request for a client that already speaks this provider's format (Anthropic's
    /// `/v1/messages`): its bytes forwarded but for `model`. `None` for other providers.
    pub fn native_messages(&self, body: &bytes::Bytes, stream: bool) -> Option<UpstreamRequest> {
        match self {
            Translated::Anthropic(a) => Some(a.native_request(body, stream)),
            _ => None,
        }
    }

    fn inner(&self) -> &dyn ChatProvider {
        match self {
            Translated::Gemini(p) => p,
            Translated::Anthropic(p) => p,
            Translated::Bedrock(p) => p,
            Translated::Ollama(p) => p,
            Translated::Cohere(p) => p,
            Translated::Voyage(p) => p,
            Translated::Cloudflare(p) => p,
            Translated::Predibase(p) => p,
            Translated::Triton(p) => p,
            Translated::AzureText(p) => p,
            Translated::Watsonx(p) => p,
            Translated::SageMaker(p) => p,
            Translated::Replicate(p) => p,
            Translated::Deepgram(p) => p,
            Translated::ElevenLabs(p) => p,
            Translated::VertexPartner(p) => p,
            Translated::CodestralFim(p) => p,
            Translated::HuggingFace(p) => p,
        }
    }
}

impl Translated {
    #[cfg(test)]
    pub(crate) fn inner_for_tests(&self) -> &dyn ChatProvider {
        self.inner()
    }

    /// The chat translated with its long texts kept out of the tree ([`crate::bulk`]); `None`
    /// to translate the body as sent (nothing long, or the translator refused: its message is
    /// then the one the body as sent gets).
    fn build_with_texts_hidden(&self, call: &ChatCall<'_>) -> Option<UpstreamRequest> {
        if self.inner().copies_texts_as_sent() {
            return None;
        }
        let (body, hidden) = crate::bulk::hide(call.body)?;
        let model_span = sluice_wire::sniff::model_span(&body);
        let inner = ChatCall { endpoint: call.endpoint, body: &body, model_span, stream: call.stream, now: call.now };
        let mut req = self.inner().build_request(&inner).ok()?;
        if crate::bulk::leaks(&req.url) {
            return None;
        }
        req.body = crate::bulk::restore(&req.body, &hidden)?;
        Some(req)
    }
}

impl ChatProvider for Translated {
    fn serves(&self, endpoint: sluice_wire::sniff::Endpoint) -> bool {
        self.inner().serves(endpoint)
    }

    fn build_request(&self, call: &ChatCall<'_>) -> Result<UpstreamRequest, sluice_wire::ApiError> {
        if call.endpoint == sluice_wire::sniff::Endpoint::Chat {
            if let Some(req) = self.build_with_texts_hidden(call) {
                return Ok(req);
            }
        }
        self.inner().build_request(call)
    }

    fn parse_answer(&self, body: &[u8], meta: &AnswerMeta<'_>) -> Result<serde_json::Value, sluice_wire::ApiError> {
        self.inner().parse_answer(body, meta)
    }

    fn stream_translator(&self, meta: &AnswerMeta<'_>) -> StreamTranslator {
        self.inner().stream_translator(meta)
    }

    fn map_error(&self, status: u16, headers: &dyn Headers, body: &[u8]) -> sluice_wire::ApiError {
        self.inner().map_error(status, headers, body)
    }

    fn in_exchanges(&self, endpoint: sluice_wire::sniff::Endpoint) -> bool {
        self.inner().in_exchanges(endpoint)
    }

    fn next_exchange(
        &self,
        answer: &[u8],
        request: &[u8],
        stream: bool,
        made: u32,
    ) -> Result<Option<crate::provider::NextExchange>, sluice_wire::ApiError> {
        self.inner().next_exchange(answer, request, stream, made)
    }

    fn parse_answers(
        &self,
        answers: &[bytes::Bytes],
        meta: &AnswerMeta<'_>,
    ) -> Result<serde_json::Value, sluice_wire::ApiError> {
        self.inner().parse_answers(answers, meta)
    }

    fn speech_in_json(&self) -> bool {
        self.inner().speech_in_json()
    }

    fn speech_audio(
        &self,
        answer: &[u8],
        request: &[u8],
    ) -> Result<(bytes::Bytes, &'static str), sluice_wire::ApiError> {
        self.inner().speech_audio(answer, request)
    }
}

/// A deployment's `model`, split into the provider and the name the provider knows it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelRef {
    pub provider: Provider,
    /// The model name sent upstream (`any` in `openai/any`).
    pub upstream: String,
}

/// The provider a LiteLLM prefix names: one sluice serves, or one of [`NOT_SERVED`] (its family
/// [`Family::NotImplemented`]).
pub fn lookup(name: &str) -> Option<Provider> {
    PROVIDERS.iter().copied().find(|p| p.name == name).or_else(|| {
        NOT_SERVED.iter().find(|(n, _)| *n == name).map(|(name, _)| Provider { name, family: Family::NotImplemented })
    })
}

/// Parses a LiteLLM model string (`provider/name`, or a bare well-known model name), honouring an
/// explicit `custom_llm_provider`. The error names the fix.
pub fn parse_model(model: &str, custom_llm_provider: Option<&str>) -> Result<ModelRef, String> {
    if let Some(name) = custom_llm_provider {
        let provider = lookup(name).ok_or_else(|| unknown_provider(name))?;
        let upstream = model.strip_prefix(name).and_then(|r| r.strip_prefix('/')).unwrap_or(model);
        return Ok(ModelRef { provider, upstream: upstream.to_string() });
    }
    if let Some((prefix, rest)) = model.split_once('/') {
        if let Some(provider) = lookup(prefix) {
            if rest.is_empty() {
                return Err(format!(
                    "\"{model}\" names the provider but no model; write it as \"{prefix}/<model name>\""
                ));
            }
            return Ok(ModelRef { provider, upstream: rest.to_string() });
        }
        if let Some(provider) = infer(model) {
            return Ok(ModelRef { provider, upstream: model.to_string() });
        }
        return Err(unknown_provider(prefix));
    }
    match infer(model) {
        Some(provider) => Ok(ModelRef { provider, upstream: model.to_string() }),
        None => Err(format!(
            "cannot tell which provider serves \"{model}\"; write it as \"<provider>/{model}\", e.g. \"openai/{model}\" for an OpenAI-compatible server"
        )),
    }
}

/// LiteLLM's inference for bare model names of the big providers.
fn infer(model: &str) -> Option<Provider> {
    let starts = |p: &[&str]| p.iter().any(|x| model.starts_with(x));
    let name = if model == "gpt-3.5-turbo-instruct" || starts(&["text-davinci", "babbage-002", "davinci-002"]) {
        "text-completion-openai"
    } else if starts(&[
        "gpt-",
        "chatgpt-",
        "o1",
        "o3",
        "o4",
        "text-embedding-",
        "ft:gpt",
        "omni-moderation",
        "dall-e",
        "whisper",
        "tts-",
    ]) {
        "openai"
    } else if starts(&["claude"]) {
        "anthropic"
    } else if starts(&["gemini"]) {
        "vertex_ai"
    } else if starts(&["command"]) {
        "cohere_chat"
    } else {
        return None;
    };
    lookup(name)
}

fn unknown_provider(name: &str) -> String {
    let mut msg = format!("unknown provider \"{name}\"");
    if let Some(s) = suggest(name) {
        msg.push_str(&format!(" (did you mean \"{s}\"?)"));
    } else {
        msg.push_str("; use one of LiteLLM's provider prefixes such as \"openai/\", \"groq/\", \"hosted_vllm/\" or \"vertex_ai/\"");
    }
    msg
}

fn suggest(name: &str) -> Option<&'static str> {
    let squash = |s: &str| s.to_ascii_lowercase().replace(['_', '-', ' '], "");
    let wanted = squash(name);
    PROVIDERS
        .iter()
        .map(|p| (p.name, edit_distance(&wanted, &squash(p.name))))
        .filter(|(_, d)| *d <= 2)
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_models() {
        let m = parse_model("openai/any", None).unwrap();
        assert_eq!(m.provider.name, "openai");
        assert_eq!(m.upstream, "any");
        let m = parse_model("hosted_vllm/meta-llama/Llama-3-8B", None).unwrap();
        assert_eq!(m.provider.name, "hosted_vllm");
        assert_eq!(m.upstream, "meta-llama/Llama-3-8B");
        let m = parse_model("vertex_ai/gemini-1.0-pro-vision-001", None).unwrap();
        assert_eq!(m.provider.family, Family::Vertex);
        let m = parse_model("bedrock/anthropic.claude-3", None).unwrap();
        assert_eq!(m.provider.family, Family::Bedrock);
        let m = parse_model("sagemaker/my-endpoint", None).unwrap();
        assert_eq!(m.provider.family, Family::SageMaker { chat: false });
        let m = parse_model("replicate/meta/llama-3-8b-instruct", None).unwrap();
        assert_eq!((m.provider.family, m.upstream.as_str()), (Family::Replicate, "meta/llama-3-8b-instruct"));
        assert!(PROVIDERS.iter().all(|p| p.family != Family::NotImplemented), "every LiteLLM prefix listed is served");
        let m = parse_model("ollama_chat/llama3.1:8b", None).unwrap();
        assert_eq!((m.provider.family, m.upstream.as_str()), (Family::Ollama { chat: true }, "llama3.1:8b"));
        assert_eq!(parse_model("ollama/llama3", None).unwrap().provider.family, Family::Ollama { chat: false });
    }

    #[test]
    fn openai_compatible_prefixes_resolve_litellms_bases_and_keys() {
        let env = |k: &str| (k == "MOONSHOT_API_BASE").then(|| "https://api.moonshot.cn/v1".to_string());
        let base = |model: &str| {
            let m = parse_model(model, None).unwrap();
            crate::openai::resolve_base(&m.provider, None, env)
        };
        assert_eq!(
            base("dashscope/qwen-turbo").as_deref(),
            Some("https://dashscope-intl.aliyuncs.com/compatible-mode/v1")
        );
        assert_eq!(base("moonshot/kimi-k2").as_deref(), Some("https://api.moonshot.cn/v1"));
        assert_eq!(base("databricks/databricks-dbrx-instruct"), None, "a workspace has no default");
        assert_eq!(base("jina_ai/jina-reranker-v2-base-multilingual").as_deref(), Some("https://api.jina.ai/v1"));
        assert_eq!(base("vllm/meta-llama/Llama-3-8B"), None, "vLLM needs its server's api_base");
        let m = parse_model("vllm/x", None).unwrap();
        assert_eq!(crate::openai::resolve_key(&m.provider, None, |_: &str| None).as_deref(), Some("fake-api-key"));
        let none = |_: &str| None;
        let ollama = parse_model("ollama/llama3", None).unwrap();
        assert_eq!(reported_base(&ollama, None, &none).as_deref(), Some("http://localhost:11434"));
        let co = parse_model("cohere_chat/command-r", None).unwrap();
        assert_eq!(reported_base(&co, None, &none).as_deref(), Some("https://api.cohere.com"));
        let m = parse_model("databricks/x", None).unwrap();
        let key = |k: &str| (k == "DATABRICKS_API_KEY").then(|| "dapi-1".to_string());
        assert_eq!(crate::openai::resolve_key(&m.provider, None, key).as_deref(), Some("dapi-1"));
    }

    #[test]
    fn litellms_other_openai_compatible_prefixes_resolve_its_bases_and_keys() {
        // (prefix, LiteLLM's default base, its base variable, its first key variable)
        let table: &[(&str, Option<&str>, &str, &str)] = &[
            ("github", Some("https://models.inference.ai.azure.com"), "GITHUB_API_BASE", "GITHUB_API_KEY"),
            ("friendliai", Some("https://api.friendli.ai/serverless/v1"), "FRIENDLI_API_BASE", "FRIENDLIAI_API_KEY"),
            ("nebius", Some("https://api.studio.nebius.ai/v1"), "NEBIUS_API_BASE", "NEBIUS_API_KEY"),
            ("novita", Some("https://api.novita.ai/v3/openai"), "NOVITA_API_BASE", "NOVITA_API_KEY"),
            ("featherless_ai", Some("https://api.featherless.ai/v1"), "FEATHERLESS_API_BASE", "FEATHERLESS_API_KEY"),
            ("hyperbolic", Some("https://api.hyperbolic.xyz/v1"), "HYPERBOLIC_API_BASE", "HYPERBOLIC_API_KEY"),
            ("lambda_ai", Some("https://api.lambda.ai/v1"), "LAMBDA_API_BASE", "LAMBDA_API_KEY"),
            ("nscale", Some("https://inference.api.nscale.com/v1"), "NSCALE_API_BASE", "NSCALE_API_KEY"),
            ("galadriel", Some("https://api.galadriel.com/v1"), "GALADRIEL_API_BASE", "GALADRIEL_API_KEY"),
            (
                "volcengine",
                Some("https://ark.cn-beijing.volces.com/api/v3"),
                "VOLCENGINE_API_BASE",
                "VOLCENGINE_API_KEY",
            ),
            ("baseten", Some("https://inference.baseten.co/v1"), "BASETEN_API_BASE", "BASETEN_API_KEY"),
            ("meta_llama", Some("https://api.llama.com/compat/v1"), "LLAMA_API_BASE", "LLAMA_API_KEY"),
            (
                "vercel_ai_gateway",
                Some("https://ai-gateway.vercel.sh/v1"),
                "VERCEL_AI_GATEWAY_API_BASE",
                "VERCEL_AI_GATEWAY_API_KEY",
            ),
            ("wandb", Some("https://api.inference.wandb.ai/v1"), "WANDB_API_BASE", "WANDB_API_KEY"),
            ("aiml", Some("https://api.aimlapi.com/v1"), "AIML_API_BASE", "AIML_API_KEY"),
            ("xinference", Some("http://127.0.0.1:9997/v1"), "XINFERENCE_API_BASE", "XINFERENCE_API_KEY"),
            (
                "docker_model_runner",
                Some("http://localhost:12434/engines/v1"),
                "DOCKER_MODEL_RUNNER_API_BASE",
                "DOCKER_MODEL_RUNNER_API_KEY",
            ),
            ("infinity", None, "INFINITY_API_BASE", "INFINITY_API_KEY"),
        ];
        let none = |_: &str| None;
        for (prefix, default_base, base_var, key_var) in table {
            let m = parse_model(&format!("{prefix}/some-model"), None).unwrap();
            assert_eq!(m.upstream, "some-model", "{prefix}");
            let p = &m.provider;
            assert_eq!(crate::openai::resolve_base(p, None, none).as_deref(), *default_base, "{prefix}");
            let from_env = |k: &str| (k == *base_var).then(|| "http://env.example/v1".to_string());
            assert_eq!(
                crate::openai::resolve_base(p, None, from_env).as_deref(),
                Some("http://env.example/v1"),
                "{prefix} reads {base_var}"
            );
            let key = |k: &str| (k == *key_var).then(|| "k-1".to_string());
            assert_eq!(crate::openai::resolve_key(p, None, key).as_deref(), Some("k-1"), "{prefix} reads {key_var}");
        }
        let m = parse_model("friendliai/x", None).unwrap();
        let token = |k: &str| (k == "FRIENDLI_TOKEN").then(|| "t".to_string());
        assert_eq!(crate::openai::resolve_key(&m.provider, None, token).as_deref(), Some("t"));
        let m = parse_model("docker_model_runner/ai/smollm2", None).unwrap();
        assert_eq!(m.upstream, "ai/smollm2");
        assert_eq!(crate::openai::resolve_key(&m.provider, None, none).as_deref(), Some("dummy-key"));
        let m = parse_model("xinference/bge-base-en", None).unwrap();
        assert_eq!(crate::openai::resolve_key(&m.provider, None, none).as_deref(), Some("stub-xinference-key"));
    }

    /// LiteLLM 1.81.13's provider prefixes: its `LlmProviders` enum, then the prefixes its JSON
    /// registry (`openai_like/providers.json`) adds.
    const LITELLM_PREFIXES: &[&str] = &[
        "openai",
        "chatgpt",
        "openai_like",
        "jina_ai",
        "xai",
        "zai",
        "custom_openai",
        "text-completion-openai",
        "cohere",
        "cohere_chat",
        "clarifai",
        "anthropic",
        "anthropic_text",
        "bytez",
        "replicate",
        "runwayml",
        "aws_polly",
        "huggingface",
        "together_ai",
        "openrouter",
        "datarobot",
        "vertex_ai",
        "vertex_ai_beta",
        "gemini",
        "ai21",
        "baseten",
        "azure",
        "azure_text",
        "azure_ai",
        "sagemaker",
        "sagemaker_chat",
        "bedrock",
        "vllm",
        "nlp_cloud",
        "petals",
        "oobabooga",
        "ollama",
        "ollama_chat",
        "deepinfra",
        "perplexity",
        "mistral",
        "milvus",
        "groq",
        "a2a",
        "gigachat",
        "nvidia_nim",
        "cerebras",
        "ai21_chat",
        "volcengine",
        "codestral",
        "text-completion-codestral",
        "dashscope",
        "moonshot",
        "publicai",
        "v0",
        "morph",
        "lambda_ai",
        "deepseek",
        "sambanova",
        "maritalk",
        "voyage",
        "cloudflare",
        "xinference",
        "fireworks_ai",
        "friendliai",
        "featherless_ai",
        "watsonx",
        "watsonx_text",
        "triton",
        "predibase",
        "databricks",
        "empower",
        "github",
        "ragflow",
        "compactifai",
        "docker_model_runner",
        "custom",
        "litellm_proxy",
        "hosted_vllm",
        "llamafile",
        "lm_studio",
        "galadriel",
        "nebius",
        "infinity",
        "deepgram",
        "elevenlabs",
        "novita",
        "aiohttp_openai",
        "langfuse",
        "humanloop",
        "topaz",
        "sap",
        "assemblyai",
        "github_copilot",
        "snowflake",
        "gradient_ai",
        "meta_llama",
        "nscale",
        "pg_vector",
        "s3_vectors",
        "helicone",
        "hyperbolic",
        "recraft",
        "fal_ai",
        "stability",
        "heroku",
        "aiml",
        "cometapi",
        "oci",
        "auto_router",
        "vercel_ai_gateway",
        "dotprompt",
        "manus",
        "wandb",
        "ovhcloud",
        "lemonade",
        "amazon_nova",
        "a2a_agent",
        "langgraph",
        "minimax",
        "synthetic",
        "apertis",
        "nano-gpt",
        "poe",
        "chutes",
        "xiaomi_mimo",
        "veniceai",
        "scaleway",
        "abliteration",
        "llamagate",
        "gmi",
        "sarvam",
    ];

    #[test]
    fn every_litellm_prefix_is_served_or_says_why_not() {
        for prefix in LITELLM_PREFIXES {
            let m = parse_model(&format!("{prefix}/some-model"), None).unwrap_or_else(|e| panic!("{prefix}: {e}"));
            assert_eq!(m.provider.name, *prefix);
            let served = m.provider.family != Family::NotImplemented;
            assert!(served != not_served(prefix).is_some(), "{prefix}: served, or listed as not served");
        }
        for (name, why) in NOT_SERVED {
            assert!(PROVIDERS.iter().all(|p| p.name != *name), "{name} is both served and not");
            assert!(LITELLM_PREFIXES.contains(name), "{name} is not one of LiteLLM's prefixes");
            assert!(!why.is_empty());
        }
        let m = parse_model("github_copilot/gpt-4o", None).unwrap();
        assert_eq!(m.provider.family, Family::NotImplemented);
        assert!(not_served("github_copilot").unwrap().contains("device flow"));
        assert!(parse_model("not_a_provider/x", None).unwrap_err().contains("unknown provider"));
    }

    #[test]
    fn litellms_remaining_openai_compatible_prefixes_resolve_its_bases_and_keys() {
        // (prefix, LiteLLM's default base, its base variable if it reads one, its first key variable)
        type Row = (&'static str, Option<&'static str>, Option<&'static str>, Option<&'static str>);
        let table: &[Row] = &[
            ("zai", Some("https://api.z.ai/api/paas/v4"), Some("ZAI_API_BASE"), Some("ZAI_API_KEY")),
            ("empower", Some("https://app.empower.dev/api/v1"), Some("EMPOWER_API_BASE"), Some("EMPOWER_API_KEY")),
            ("compactifai", Some("https://api.compactif.ai/v1"), None, Some("COMPACTIFAI_API_KEY")),
            (
                "amazon_nova",
                Some("https://api.nova.amazon.com/v1"),
                Some("AMAZON_NOVA_API_BASE"),
                Some("AMAZON_NOVA_API_KEY"),
            ),
            ("v0", Some("https://api.v0.dev/v1"), Some("V0_API_BASE"), Some("V0_API_KEY")),
            ("morph", Some("https://api.morphllm.com/v1"), Some("MORPH_API_BASE"), Some("MORPH_API_KEY")),
            ("maritalk", Some("https://chat.maritaca.ai/api"), Some("MARITALK_API_BASE"), Some("MARITALK_API_KEY")),
            (
                "ovhcloud",
                Some("https://oai.endpoints.kepler.ai.cloud.ovh.net/v1"),
                Some("OVHCLOUD_API_BASE"),
                Some("OVHCLOUD_API_KEY"),
            ),
            ("aiohttp_openai", Some("https://api.openai.com/v1"), Some("OPENAI_BASE_URL"), Some("OPENAI_API_KEY")),
            ("cometapi", Some("https://api.cometapi.com/v1"), Some("COMETAPI_API_BASE"), Some("COMETAPI_KEY")),
            ("minimax", Some("https://api.minimax.io/v1"), Some("MINIMAX_API_BASE"), Some("MINIMAX_API_KEY")),
            ("heroku", None, Some("HEROKU_API_BASE"), Some("HEROKU_API_KEY")),
            (
                "gradient_ai",
                Some("https://inference.do-ai.run/v1"),
                Some("GRADIENT_AI_AGENT_ENDPOINT"),
                Some("GRADIENT_AI_API_KEY"),
            ),
            ("oobabooga", None, None, None),
            ("lemonade", Some("http://localhost:8000/api/v1"), Some("LEMONADE_API_BASE"), Some("LEMONADE_API_KEY")),
            ("publicai", Some("https://api.publicai.co/v1"), Some("PUBLICAI_API_BASE"), Some("PUBLICAI_API_KEY")),
            ("helicone", Some("https://ai-gateway.helicone.ai/"), None, Some("HELICONE_API_KEY")),
            ("veniceai", Some("https://api.venice.ai/api/v1"), None, Some("VENICE_AI_API_KEY")),
            ("xiaomi_mimo", Some("https://api.xiaomimimo.com/v1"), None, Some("XIAOMI_MIMO_API_KEY")),
            ("scaleway", Some("https://api.scaleway.ai/v1"), None, Some("SCW_SECRET_KEY")),
            ("synthetic", Some("https://api.synthetic.new/openai/v1"), None, Some("SYNTHETIC_API_KEY")),
            ("apertis", Some("https://api.stima.tech/v1"), None, Some("STIMA_API_KEY")),
            ("nano-gpt", Some("https://nano-gpt.com/api/v1"), None, Some("NANOGPT_API_KEY")),
            ("poe", Some("https://api.poe.com/v1"), None, Some("POE_API_KEY")),
            ("chutes", Some("https://llm.chutes.ai/v1/"), None, Some("CHUTES_API_KEY")),
            ("abliteration", Some("https://api.abliteration.ai/v1"), None, Some("ABLITERATION_API_KEY")),
            ("llamagate", Some("https://api.llamagate.dev/v1"), None, Some("LLAMAGATE_API_KEY")),
            ("gmi", Some("https://api.gmi-serving.com/v1"), None, Some("GMI_API_KEY")),
            ("sarvam", Some("https://api.sarvam.ai/v1"), None, Some("SARVAM_API_KEY")),
        ];
        let none = |_: &str| None;
        for (prefix, default_base, base_var, key_var) in table {
            let m = parse_model(&format!("{prefix}/some-model"), None).unwrap();
            let p = &m.provider;
            assert_eq!(crate::openai::resolve_base(p, None, none).as_deref(), *default_base, "{prefix}");
            if let Some(var) = base_var {
                // Bases from the environment here end in the path LiteLLM adds, so none is added.
                let from_env = |k: &str| (k == *var).then(|| "http://env.example/api/v1".to_string());
                assert_eq!(
                    crate::openai::resolve_base(p, None, from_env).as_deref(),
                    Some("http://env.example/api/v1"),
                    "{prefix} reads {var}"
                );
            }
            let others = |k: &str| k.ends_with("_API_BASE").then(|| "http://other.example/v1".to_string());
            if base_var.is_none() {
                assert_eq!(crate::openai::resolve_base(p, None, others).as_deref(), *default_base, "{prefix}");
            }
            match key_var {
                Some(var) => {
                    let key = |k: &str| (k == *var).then(|| "k-1".to_string());
                    assert_eq!(
                        crate::openai::resolve_key(p, None, key).as_deref(),
                        Some("k-1"),
                        "{prefix} reads {var}"
                    );
                }
                None => assert_eq!(crate::openai::resolve_key(p, None, none), None, "{prefix} sends no key"),
            }
        }
        let m = parse_model("lemonade/Qwen3-0.6B-GGUF", None).unwrap();
        assert_eq!(crate::openai::resolve_key(&m.provider, None, none).as_deref(), Some("lemonade"));
        let m = parse_model("cometapi/gpt-4o", None).unwrap();
        let key = |k: &str| (k == "COMETAPI_API_KEY").then(|| "c".to_string());
        assert_eq!(crate::openai::resolve_key(&m.provider, None, key).as_deref(), Some("c"));
    }

    #[test]
    fn a_configured_base_gets_the_path_litellm_adds() {
        let none = |_: &str| None;
        let base = |model: &str, api_base: Option<&str>| {
            let m = parse_model(model, None).unwrap();
            crate::openai::resolve_base(&m.provider, api_base, none)
        };
        assert_eq!(
            base("heroku/claude-4-sonnet", Some("https://us.inference.heroku.com")).as_deref(),
            Some("https://us.inference.heroku.com/v1")
        );
        assert_eq!(base("heroku/x", Some("https://h.example/v1/")).as_deref(), Some("https://h.example/v1"));
        assert_eq!(base("heroku/x", None), None, "Heroku has no default");
        assert_eq!(base("oobabooga/x", Some("http://127.0.0.1:5000")).as_deref(), Some("http://127.0.0.1:5000/v1"));
        assert_eq!(
            base("minimax/MiniMax-M2", Some("https://api.minimaxi.com")).as_deref(),
            Some("https://api.minimaxi.com/v1")
        );
        assert_eq!(
            base("minimax/MiniMax-M2", Some("https://api.minimaxi.com/v1")).as_deref(),
            Some("https://api.minimaxi.com/v1")
        );
        assert_eq!(
            base("gradient_ai/x", Some("https://agent.example")).as_deref(),
            Some("https://agent.example/api/v1")
        );
        assert_eq!(base("gradient_ai/x", None).as_deref(), Some("https://inference.do-ai.run/v1"));
        assert_eq!(base("cometapi/x", Some("https://c.example?x=1")).as_deref(), Some("https://c.example/v1?x=1"));
        // Every other prefix keeps its base exactly as configured.
        assert_eq!(base("groq/x", Some("http://g.example/")).as_deref(), Some("http://g.example/"));
    }

    #[test]
    fn clarifai_datarobot_and_codestral_fim_report_their_bases() {
        let none = |_: &str| None;
        let reported = |model: &str| reported_base(&parse_model(model, None).unwrap(), None, &none);
        assert_eq!(reported("clarifai/a.b.c").as_deref(), Some("https://api.clarifai.com/v2/ext/openai/v1"));
        assert_eq!(
            reported("datarobot/x").as_deref(),
            Some("https://app.datarobot.com/api/v2/genai/llmgw/chat/completions/")
        );
        assert_eq!(
            reported("text-completion-codestral/codestral-latest").as_deref(),
            Some("https://codestral.mistral.ai/v1/fim/completions")
        );
    }

    #[test]
    fn infers_bare_names() {
        assert_eq!(parse_model("gpt-4o", None).unwrap().provider.name, "openai");
        assert_eq!(parse_model("gpt-3.5-turbo-instruct", None).unwrap().provider.name, "text-completion-openai");
        assert_eq!(parse_model("claude-3-haiku", None).unwrap().provider.name, "anthropic");
        assert!(parse_model("my-model", None).unwrap_err().contains("openai/my-model"));
    }

    #[test]
    fn custom_llm_provider_overrides() {
        let m = parse_model("meta-llama/x", Some("hosted_vllm")).unwrap();
        assert_eq!(m.provider.name, "hosted_vllm");
        assert_eq!(m.upstream, "meta-llama/x");
    }

    #[test]
    fn suggests_the_provider_meant() {
        let e = parse_model("vertexai/gemini", None).unwrap_err();
        assert!(e.contains("did you mean \"vertex_ai\""), "{e}");
        let e = parse_model("opneai/gpt", None).unwrap_err();
        assert!(e.contains("did you mean \"openai\""), "{e}");
        let e = parse_model("zzzzzzzz/gpt", None).unwrap_err();
        assert!(e.contains("unknown provider \"zzzzzzzz\""), "{e}");
    }
}
