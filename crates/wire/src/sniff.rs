//! Borrowed views of requests, responses and stream chunks that read only what the gateway acts on.
//!
//! Deserialising into these structs skips every other field without allocating, so a 16 KB chat
//! request costs one scan, not a tree of its messages. Field values the gateway may rewrite are kept
//! as `&RawValue`, whose slice points into the original buffer: that is how [`crate::splice`]
//! finds the bytes to replace.

use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::ops::Range;

use crate::controls::{self, Controls};
use crate::error::ApiError;
use crate::scan;

/// Which OpenAI endpoint a body was sent to; each requires a different field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
    Embeddings,
    /// OpenAI's Responses API (`/v1/responses`).
    Responses,
    /// Cohere's rerank API as LiteLLM serves it (`/rerank`, `/v1/rerank`, `/v2/rerank`).
    Rerank,
    /// OpenAI's image generation (`/v1/images/generations`).
    Images,
    /// OpenAI's image edits (`/v1/images/edits`): a `multipart/form-data` upload of the image(s),
    /// an optional mask and the prompt.
    ImageEdits,
    /// OpenAI's image variations (`/v1/images/variations`): an upload of one image.
    ImageVariations,
    /// OpenAI's moderation API (`/v1/moderations`).
    Moderations,
    /// OpenAI's text to speech (`/v1/audio/speech`): JSON in, audio bytes out.
    Speech,
    /// OpenAI's speech to text (`/v1/audio/transcriptions`): a `multipart/form-data` upload.
    Transcriptions,
    /// OpenAI's speech to English text (`/v1/audio/translations`): an upload like
    /// [`Transcriptions`](Endpoint::Transcriptions).
    Translations,
}

impl Endpoint {
    /// The path below the API base, as OpenAI's SDK joins it.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Chat => "/chat/completions",
            Endpoint::Completions => "/completions",
            Endpoint::Embeddings => "/embeddings",
            Endpoint::Responses => "/responses",
            Endpoint::Rerank => "/rerank",
            Endpoint::Images => "/images/generations",
            Endpoint::ImageEdits => "/images/edits",
            Endpoint::ImageVariations => "/images/variations",
            Endpoint::Moderations => "/moderations",
            Endpoint::Speech => "/audio/speech",
            Endpoint::Transcriptions => "/audio/transcriptions",
            Endpoint::Translations => "/audio/translations",
        }
    }

    /// The route name as LiteLLM reports it in errors and metric labels.
    pub fn route(self) -> &'static str {
        self.path()
    }

    /// LiteLLM's `call_type` in spend logs.
    pub fn call_type(self) -> &'static str {
        match self {
            Endpoint::Chat => "acompletion",
            Endpoint::Completions => "atext_completion",
            Endpoint::Embeddings => "aembedding",
            Endpoint::Responses => "aresponses",
            Endpoint::Rerank => "arerank",
            Endpoint::Images => "aimage_generation",
            Endpoint::ImageEdits => "aimage_edit",
            // LiteLLM's SDK function's name: its proxy has no route of its own for variations.
            Endpoint::ImageVariations => "aimage_variation",
            Endpoint::Moderations => "amoderation",
            Endpoint::Speech => "aspeech",
            // LiteLLM has no call type of its own for translations: billed and logged as
            // transcriptions are.
            Endpoint::Transcriptions | Endpoint::Translations => "atranscription",
        }
    }

    /// The request is a `multipart/form-data` upload, not JSON; a transcription's answer may be
    /// plain text.
    pub fn is_upload(self) -> bool {
        matches!(
            self,
            Endpoint::Transcriptions | Endpoint::Translations | Endpoint::ImageEdits | Endpoint::ImageVariations
        )
    }

    /// The route answers with images, billed per image (`n` of the asked `size`).
    pub fn makes_images(self) -> bool {
        matches!(self, Endpoint::Images | Endpoint::ImageEdits | Endpoint::ImageVariations)
    }

    fn required_field(self) -> &'static str {
        match self {
            Endpoint::Chat => "messages",
            Endpoint::Completions => "prompt",
            Endpoint::Embeddings | Endpoint::Responses | Endpoint::Moderations | Endpoint::Speech => "input",
            Endpoint::Rerank => "query",
            Endpoint::Images => "prompt",
            Endpoint::Transcriptions | Endpoint::Translations => "file",
            Endpoint::ImageEdits | Endpoint::ImageVariations => "image",
        }
    }
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream: Option<&'a RawValue>,
    #[serde(borrow, default)]
    stream_options: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    prompt: Option<&'a RawValue>,
    #[serde(borrow, default)]
    input: Option<&'a RawValue>,
    #[serde(borrow, default)]
    user: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_completion_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    fallbacks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    num_retries: Option<&'a RawValue>,
    #[serde(borrow, default)]
    timeout: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mock_response: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mock_testing_fallbacks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mock_testing_rate_limit_error: Option<&'a RawValue>,
    #[serde(borrow, default)]
    mock_timeout: Option<&'a RawValue>,
    #[serde(borrow, default)]
    disable_fallbacks: Option<&'a RawValue>,
    #[serde(borrow, default)]
    cache: Option<&'a RawValue>,
    #[serde(borrow, default)]
    max_output_tokens: Option<&'a RawValue>,
    #[serde(borrow, default)]
    previous_response_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    tags: Option<&'a RawValue>,
    #[serde(borrow, default)]
    metadata: Option<&'a RawValue>,
}

/// The raw JSON text of the top-level request fields the gateway reads.
#[derive(Debug, Default, PartialEq, Eq)]
struct RequestFields<'a> {
    model: Option<&'a str>,
    stream: Option<&'a str>,
    stream_options: Option<&'a str>,
    messages: Option<&'a str>,
    prompt: Option<&'a str>,
    input: Option<&'a str>,
    user: Option<&'a str>,
    max_tokens: Option<&'a str>,
    max_completion_tokens: Option<&'a str>,
    /// The raw values of [`controls::NAMES`], in that order.
    controls: [Option<&'a str>; controls::NAMES.len()],
    max_output_tokens: Option<&'a str>,
    previous_response_id: Option<&'a str>,
    tags: Option<&'a str>,
    metadata: Option<&'a str>,
}

impl<'a> RequestFields<'a> {
    /// The fast path: [`scan`] walks the top level and skips every value. `None` for anything
    /// it does not take on itself (malformed input, an escaped key, a field given twice, deep
    /// nesting), which then goes through serde_json for its verdict and its error message.
    fn scan(text: &'a str) -> Option<RequestFields<'a>> {
        let [model, stream, stream_options, messages, prompt, input, user, max_tokens, max_completion_tokens, max_output_tokens, previous_response_id, tags, metadata, c0, c1, c2, c3, c4, c5, c6, c7, c8] =
            scan::fields(
                text,
                [
                    "model",
                    "stream",
                    "stream_options",
                    "messages",
                    "prompt",
                    "input",
                    "user",
                    "max_tokens",
                    "max_completion_tokens",
                    "max_output_tokens",
                    "previous_response_id",
                    "tags",
                    "metadata",
                    // controls::NAMES, in its order.
                    "fallbacks",
                    "num_retries",
                    "timeout",
                    "mock_response",
                    "mock_testing_fallbacks",
                    "mock_testing_rate_limit_error",
                    "mock_timeout",
                    "disable_fallbacks",
                    "cache",
                ],
            )?;
        Some(RequestFields {
            model,
            stream,
            stream_options,
            messages,
            prompt,
            input,
            user,
            max_tokens,
            max_completion_tokens,
            controls: [c0, c1, c2, c3, c4, c5, c6, c7, c8],
            max_output_tokens,
            previous_response_id,
            tags,
            metadata,
        })
    }

    fn parse(text: &'a str) -> Result<RequestFields<'a>, serde_json::Error> {
        let raw: RawRequest<'a> = serde_json::from_str(text)?;
        Ok(RequestFields {
            model: raw.model.map(RawValue::get),
            stream: raw.stream.map(RawValue::get),
            stream_options: raw.stream_options.map(RawValue::get),
            messages: raw.messages.map(RawValue::get),
            prompt: raw.prompt.map(RawValue::get),
            input: raw.input.map(RawValue::get),
            user: raw.user.map(RawValue::get),
            max_tokens: raw.max_tokens.map(RawValue::get),
            max_completion_tokens: raw.max_completion_tokens.map(RawValue::get),
            controls: [
                raw.fallbacks,
                raw.num_retries,
                raw.timeout,
                raw.mock_response,
                raw.mock_testing_fallbacks,
                raw.mock_testing_rate_limit_error,
                raw.mock_timeout,
                raw.disable_fallbacks,
                raw.cache,
            ]
            .map(|v| v.map(RawValue::get)),
            max_output_tokens: raw.max_output_tokens.map(RawValue::get),
            previous_response_id: raw.previous_response_id.map(RawValue::get),
            tags: raw.tags.map(RawValue::get),
            metadata: raw.metadata.map(RawValue::get),
        })
    }
}

#[derive(Deserialize)]
struct RawStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

/// What the gateway needs to know about a client request.
#[derive(Debug)]
pub struct RequestView<'a> {
    /// The model the client asked for. `None` when absent (the path may name it instead).
    pub model: Option<Cow<'a, str>>,
    /// Byte range of the `model` value (quotes included) inside the body.
    pub model_span: Option<Range<usize>>,
    pub stream: bool,
    pub include_usage: bool,
    /// The end user (`user` field), when it is a string.
    pub user: Option<Cow<'a, str>>,
    /// The raw JSON of the `messages` array (chat), kept for token counting when an upstream
    /// gives no usage.
    pub messages: Option<&'a str>,
    /// The raw JSON of `prompt` (completions), kept for token counting.
    pub prompt: Option<&'a str>,
    /// `max_completion_tokens`, else `max_tokens` (`max_output_tokens` for the Responses API),
    /// when a whole number: the longest answer the request allows (budgets estimate its cost
    /// from it). Anything else is left to the upstream.
    pub max_tokens: Option<u64>,
    /// The gateway's own fields ([`controls`]), when the request carries any: boxed, so the
    /// common request (none) carries one null pointer.
    pub controls: Option<Box<Controls>>,
    /// The Responses API's `input` (raw JSON), kept for token estimates; the text to speak
    /// (`/audio/speech`), which is billed per character.
    pub input: Option<&'a str>,
    /// The Responses API's `previous_response_id`, when a string.
    pub previous_response_id: Option<Cow<'a, str>>,
    /// The raw JSON of a top-level `tags` and of `metadata` (where LiteLLM reads tags first):
    /// a request's tags are read from these alone, and a body with neither has none.
    pub tags: Option<&'a str>,
    pub metadata: Option<&'a str>,
    /// What an image upload (edits, variations) asks for, as it is billed: its form's `n` and
    /// `size`. A JSON request's are read from its body when it is billed ([`crate::units::images`]).
    pub images: Option<crate::units::ImageAsk>,
}

/// Reads a request body as `endpoint` expects it, rejecting what the upstream would reject anyway
/// with a message that tells the client what to fix.
pub fn request(body: &[u8], endpoint: Endpoint) -> Result<RequestView<'_>, ApiError> {
    if endpoint.is_upload() {
        return form_request(body, endpoint);
    }
    let text = utf8(body)?;
    if text.trim_start().is_empty() {
        return Err(ApiError::bad_request(
            "Request body is empty. Send a JSON object, e.g. {\"model\": \"...\", \"messages\": [...]}.",
        ));
    }
    if !text.trim_start().starts_with('{') {
        return Err(ApiError::bad_request(
            "Request body is not a valid JSON object: it must start with `{`. Send a JSON object, e.g. {\"model\": \"...\", \"messages\": [...]}.",
        ));
    }
    let raw = match RequestFields::scan(text) {
        Some(fields) => fields,
        None => RequestFields::parse(text).map_err(|e| {
            ApiError::bad_request(format!(
                "Request body is not a valid JSON object: {e}. Send a JSON object, e.g. {{\"model\": \"...\", \"messages\": [...]}}."
            ))
        })?,
    };

    let (model, model_span) = match raw.model {
        Some(v) if is_null(v) => (None, None),
        Some(v) => {
            let name = json_str(v).ok_or_else(|| {
                ApiError::bad_request(format!("model: expected a string, got {}.", kind_of(v))).param("model")
            })?;
            (Some(name), Some(span_of(text, v)))
        }
        None => (None, None),
    };

    let stream = match raw.stream {
        None => false,
        Some(v) if is_null(v) => false,
        Some(v) => match v {
            "true" => true,
            "false" => false,
            _ => {
                return Err(ApiError::bad_request(format!("stream: expected true or false, got {}.", kind_of(v)))
                    .param("stream"))
            }
        },
    };

    // These answers are whole JSON documents or audio bytes, never OpenAI's SSE chunks (an
    // image stream's partial images, a speech `stream_format`, are not relayed as chat is).
    let stream = stream && !matches!(endpoint, Endpoint::Images | Endpoint::Moderations | Endpoint::Speech);

    let include_usage = match raw.stream_options {
        Some(v) if !is_null(v) => {
            let opts: RawStreamOptions = serde_json::from_str(v).map_err(|_| {
                ApiError::bad_request("stream_options: expected an object like {\"include_usage\": true}.")
                    .param("stream_options")
            })?;
            opts.include_usage.unwrap_or(false)
        }
        _ => false,
    };

    let required = match endpoint {
        Endpoint::Chat => raw.messages,
        Endpoint::Completions => raw.prompt,
        Endpoint::Embeddings => raw.input,
        // A stored prompt or a previous response can stand in for `input`.
        Endpoint::Responses => raw.input.or(Some("[]")),
        // `query` and `documents` are the provider's to check: the sniffer reads no rerank field.
        Endpoint::Rerank => Some("{}"),
        Endpoint::Images => raw.prompt,
        Endpoint::Moderations | Endpoint::Speech => raw.input,
        // Read as a form above.
        Endpoint::Transcriptions | Endpoint::Translations | Endpoint::ImageEdits | Endpoint::ImageVariations => None,
    };
    let field = endpoint.required_field();
    match required {
        None => return Err(ApiError::bad_request(format!("Missing required field `{field}`.")).param(field)),
        Some(v) if endpoint == Endpoint::Chat && !v.starts_with('[') => {
            return Err(ApiError::bad_request(format!(
                "messages: expected a list of messages like [{{\"role\": \"user\", \"content\": \"...\"}}], got {}.",
                kind_of(v)
            ))
            .param("messages"))
        }
        Some(v) if is_null(v) => return Err(ApiError::bad_request(format!("`{field}` must not be null.")).param(field)),
        _ => {}
    }

    let controls = controls::parse(raw.controls)?;
    let user = raw.user.and_then(json_str);
    let max_tokens = match endpoint {
        Endpoint::Responses => raw.max_output_tokens.and_then(whole_number),
        _ => raw.max_completion_tokens.and_then(whole_number).or_else(|| raw.max_tokens.and_then(whole_number)),
    };
    let previous_response_id = match raw.previous_response_id {
        Some(v) if endpoint == Endpoint::Responses && !is_null(v) => Some(json_str(v).ok_or_else(|| {
            ApiError::bad_request(format!("previous_response_id: expected a string, got {}.", kind_of(v)))
                .param("previous_response_id")
        })?),
        _ => None,
    };

    Ok(RequestView {
        model,
        model_span,
        stream,
        include_usage,
        user,
        messages: raw.messages,
        prompt: raw.prompt,
        max_tokens,
        controls,
        input: raw.input.filter(|_| matches!(endpoint, Endpoint::Responses | Endpoint::Speech)),
        previous_response_id,
        tags: raw.tags,
        metadata: raw.metadata,
        images: None,
    })
}

/// The body as text ([`crate::text::utf8`]); a body that is not gets std's validation too, which
/// finds the offset for the message.
fn utf8(body: &[u8]) -> Result<&str, ApiError> {
    if let Some(text) = crate::text::utf8(body) {
        return Ok(text);
    }
    std::str::from_utf8(body).map_err(|e| {
        ApiError::bad_request(format!(
            "Request body is not valid UTF-8 (invalid byte at offset {}). Send the body as UTF-8 encoded JSON.",
            e.valid_up_to()
        ))
    })
}

/// An upload (`/audio/transcriptions`, `/images/edits`, …): its `model` and `user` fields, and
/// where `model`'s value lies (without quotes: the deployment's name goes there as plain text);
/// for images, the image it must carry and the `n` and `size` it is billed by.
fn form_request(body: &[u8], endpoint: Endpoint) -> Result<RequestView<'_>, ApiError> {
    let what = match endpoint.makes_images() {
        true => {
            "Upload the image as the OpenAI SDK does: multipart/form-data with `image`, `prompt` and `model` fields."
        }
        false => "Upload the audio as the OpenAI SDK does: multipart/form-data with `file` and `model` fields.",
    };
    let boundary = crate::form::content_type_of(body)
        .ok_or_else(|| ApiError::bad_request(format!("Request body is not multipart/form-data. {what}")))?;
    let boundary = boundary.rsplit_once('=').map_or("", |(_, b)| b);
    let form = crate::form::read(body, boundary)?;
    let images = match endpoint.makes_images() {
        true if !form.image => {
            return Err(ApiError::bad_request(format!("Missing required form field `image`. {what}")).param("image"))
        }
        true => Some(crate::units::image_ask(form.n, form.size)),
        false => None,
    };
    let (model, model_span) = match form.model {
        Some((m, span)) => (Some(Cow::Borrowed(m)), Some(span)),
        None => (None, None),
    };
    Ok(RequestView {
        model,
        model_span,
        stream: false,
        include_usage: false,
        user: form.user.map(Cow::Borrowed),
        messages: None,
        prompt: None,
        max_tokens: None,
        controls: None,
        input: None,
        previous_response_id: None,
        tags: None,
        metadata: None,
        images,
    })
}

/// A JSON value's text as a string, if it is one: borrowed from the body when it has no escapes
/// (serde's `Cow<str>` always copies), decoded otherwise. `v` is valid JSON already.
fn json_str(v: &str) -> Option<Cow<'_, str>> {
    match v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) if !inner.contains('\\') => Some(Cow::Borrowed(inner)),
        _ => serde_json::from_str::<String>(v).ok().map(Cow::Owned),
    }
}

#[derive(Deserialize)]
struct RawResponse<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(default)]
    usage: Option<Usage>,
}

/// Token usage as an upstream reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// `input_tokens` in the Responses API's usage.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: u64,
    /// `output_tokens` in the Responses API's usage.
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    /// `prompt_tokens_details.cached_tokens` (`input_tokens_details` in the Responses API): the
    /// part of the prompt read from the provider's cache.
    #[serde(
        default,
        deserialize_with = "cached_tokens",
        rename = "prompt_tokens_details",
        alias = "input_tokens_details"
    )]
    pub cached_tokens: u64,
    /// `cache_creation_input_tokens` (Anthropic's prompt-cache writes, as LiteLLM reports them).
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    /// `completion_tokens_details.reasoning_tokens`: the part of the completion spent reasoning
    /// (priced apart for a few models).
    #[serde(default, deserialize_with = "reasoning_tokens", rename = "completion_tokens_details")]
    pub reasoning_tokens: u64,
}

fn reasoning_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    struct Details {
        #[serde(default)]
        reasoning_tokens: Option<u64>,
    }
    Ok(Option::<Details>::deserialize(d)?.and_then(|x| x.reasoning_tokens).unwrap_or(0))
}

fn cached_tokens<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    struct Details {
        #[serde(default)]
        cached_tokens: Option<u64>,
    }
    Ok(Option::<Details>::deserialize(d)?.and_then(|x| x.cached_tokens).unwrap_or(0))
}

impl Usage {
    /// Reads a `usage` object (e.g. from a translated answer).
    pub fn from_value(v: &serde_json::Value) -> Option<Usage> {
        Usage::deserialize(v).ok()
    }
}

/// What the gateway reads from a complete (non-streamed) answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseView {
    pub model_span: Option<Range<usize>>,
    pub usage: Option<Usage>,
    /// Where the answer's top-level `id` value (the provider's `chatcmpl-…`) lies, quotes
    /// included: read in the same pass as `model` and `usage`, copied only by whoever logs it
    /// ([`ResponseView::id`]).
    pub id_span: Option<Range<usize>>,
}

impl ResponseView {
    /// The answer's `id` as text, when it is a JSON string; `json` is the body read.
    pub fn id<'a>(&self, json: &'a [u8]) -> Option<Cow<'a, str>> {
        let raw = std::str::from_utf8(json.get(self.id_span.clone()?)?).ok()?;
        string_value(raw)
    }
}

/// The text of a raw JSON string value (quotes included), escapes decoded; `None` for any other
/// kind of value.
pub fn string_value(raw: &str) -> Option<Cow<'_, str>> {
    if !raw.starts_with('"') {
        return None;
    }
    json_str(raw)
}

/// The byte range of the top-level `model` value in a JSON object, if it has one.
pub fn model_span(json: &[u8]) -> Option<Range<usize>> {
    response(json).ok().and_then(|r| r.model_span)
}

/// Reads an answer's `model` position and `usage`; `Err` when the body is not a JSON object at
/// all (a JSON object without those fields is fine).
pub fn response(json: &[u8]) -> Result<ResponseView, NotJsonObject> {
    let text = std::str::from_utf8(json).map_err(|_| NotJsonObject)?;
    if !text.trim_start().starts_with('{') {
        return Err(NotJsonObject);
    }
    let [id, model, usage] = match scan::fields(text, ["id", "model", "usage"]) {
        Some(fields) => fields,
        None => {
            let raw: RawResponse<'_> = serde_json::from_str(text).map_err(|_| NotJsonObject)?;
            return Ok(ResponseView {
                model_span: raw.model.map(|v| span_of(text, v.get())),
                usage: raw.usage,
                id_span: raw.id.map(|v| span_of(text, v.get())),
            });
        }
    };
    let usage = match usage {
        Some(v) => Some(match Usage::scan(v) {
            Some(usage) => usage,
            None => serde_json::from_str::<Usage>(v).map_err(|_| NotJsonObject)?,
        }),
        None => None,
    };
    Ok(ResponseView { model_span: model.map(|v| span_of(text, v)), usage, id_span: id.map(|v| span_of(text, v)) })
}

impl Usage {
    /// Reads the usual `usage` object (whole-number counts, no nulls) without serde, which cost
    /// about as much as finding the object in the answer. `None` leaves anything else, errors
    /// included, to the derived `Deserialize`.
    fn scan(v: &str) -> Option<Usage> {
        if v.contains("null") {
            return None;
        }
        let [prompt, completion, total, details, cache_creation, completion_details, input, output, input_details, output_details] =
            scan::fields(
                v,
                [
                    "prompt_tokens",
                    "completion_tokens",
                    "total_tokens",
                    "prompt_tokens_details",
                    "cache_creation_input_tokens",
                    "completion_tokens_details",
                    // The Responses API's names for the same counts.
                    "input_tokens",
                    "output_tokens",
                    "input_tokens_details",
                    "output_tokens_details",
                ],
            )?;
        let (prompt, completion, details) = (prompt.or(input), completion.or(output), details.or(input_details));
        let completion_details = completion_details.or(output_details);
        let count = |v: Option<&str>| match v {
            None => Some(0),
            Some(v) => whole_number(v),
        };
        let cached_tokens = match details {
            None => 0,
            Some(d) => count(scan::fields(d, ["cached_tokens"])?[0])?,
        };
        let reasoning_tokens = match completion_details {
            None => 0,
            Some(d) => count(scan::fields(d, ["reasoning_tokens"])?[0])?,
        };
        Some(Usage {
            prompt_tokens: count(prompt)?,
            completion_tokens: count(completion)?,
            total_tokens: count(total)?,
            cached_tokens,
            cache_creation_input_tokens: count(cache_creation)?,
            reasoning_tokens,
        })
    }
}

/// A JSON number that is a plain non-negative integer and fits a `u64`.
fn whole_number(v: &str) -> Option<u64> {
    if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) || (v.len() > 1 && v.starts_with('0')) {
        return None;
    }
    v.parse().ok()
}

/// The raw JSON `finish_reason` of each choice of a whole OpenAI-shaped answer, in order, at
/// most `max`, null ones left out: read by the scanner, not parsed. `None` when the answer is not
/// an object the scanner reads (malformed, an escaped key, nested past its depth); an answer
/// without `choices` has none.
pub fn finish_reasons(answer: &[u8], max: usize) -> Option<Vec<&str>> {
    let text = std::str::from_utf8(answer).ok()?;
    let [choices] = scan::fields(text, ["choices"])?;
    let mut reasons = Vec::new();
    let Some(choices) = choices else { return Some(reasons) };
    scan::array_items(choices, |choice| {
        if reasons.len() < max && choice.starts_with('{') {
            if let [Some(reason)] = scan::fields(choice, ["finish_reason"]).ok_or(scan::Refused)? {
                reasons.push(reason);
            }
        }
        Ok(())
    })
    .ok()?;
    Some(reasons)
}

/// The body was expected to be a JSON object and is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotJsonObject;

#[derive(Deserialize)]
struct RawChunk<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    created: Option<&'a RawValue>,
    #[serde(borrow, default)]
    model: Option<&'a RawValue>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    choices: Option<Vec<RawChoice<'a>>>,
    #[serde(borrow, default)]
    usage: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<RawDelta<'a>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    finish_reason: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<&'a RawValue>,
}

/// What a relayed stream chunk says about the stream.
#[derive(Debug, Default)]
pub struct ChunkView<'a> {
    pub id: Option<&'a str>,
    pub created: Option<&'a str>,
    pub object: Option<Cow<'a, str>>,
    pub model_span: Option<Range<usize>>,
    /// A non-null `usage` object: the upstream reported usage itself.
    pub usage: Option<&'a str>,
    /// Some choice carried a non-null `finish_reason`.
    pub finished: bool,
    /// The last non-null `finish_reason` of the chunk's choices, as raw JSON.
    pub finish_reason: Option<&'a str>,
    /// The chunk is an error object rather than a completion chunk.
    pub is_error: bool,
    /// Generated text in this chunk (content deltas, completion text, tool-call arguments raw).
    pub text: Vec<Cow<'a, str>>,
}

/// Reads one stream chunk's JSON; `None` when it is not a JSON object.
pub fn chunk(json: &str) -> Option<ChunkView<'_>> {
    if !json.trim_start().starts_with('{') {
        return None;
    }
    let raw: RawChunk<'_> = serde_json::from_str(json).ok()?;
    let mut view = ChunkView {
        id: raw.id.map(|v| v.get()),
        created: raw.created.map(|v| v.get()),
        object: raw.object,
        model_span: raw.model.map(|v| span_of(json, v.get())),
        usage: raw.usage.map(RawValue::get).filter(|v| !is_null(v)),
        is_error: raw.error.is_some_and(|v| !is_null(v.get())),
        ..ChunkView::default()
    };
    for choice in raw.choices.into_iter().flatten() {
        if let Some(reason) = choice.finish_reason.map(RawValue::get).filter(|v| !is_null(v)) {
            view.finished = true;
            view.finish_reason = Some(reason);
        }
        if let Some(delta) = choice.delta {
            if let Some(c) = delta.content {
                view.text.push(c);
            }
            if let Some(t) = delta.tool_calls {
                view.text.push(Cow::Borrowed(t.get()));
            }
        }
        if let Some(t) = choice.text {
            view.text.push(t);
        }
    }
    Some(view)
}

/// The message inside an error body: OpenAI's `error.message`, a string `error`, FastAPI's
/// `detail`, or a top-level `message`. Error paths only: this builds a tree.
pub fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let pick = |v: &serde_json::Value| -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    };
    match (v.get("error"), v.get("detail"), v.get("message")) {
        (Some(serde_json::Value::Object(e)), _, _) => e.get("message").and_then(pick),
        (Some(e @ serde_json::Value::String(_)), _, _) => pick(e),
        (_, Some(d), _) => pick(d),
        (_, _, Some(m)) => pick(m),
        _ => None,
    }
}

fn is_null(v: &str) -> bool {
    v == "null"
}

fn kind_of(v: &str) -> &'static str {
    match v.as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'[') => "a list",
        Some(b'{') => "an object",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Where `inner` (a slice of `outer`) sits inside `outer`.
fn span_of(outer: &str, inner: &str) -> Range<usize> {
    let start = inner.as_ptr() as usize - outer.as_ptr() as usize;
    start..start + inner.len()
}

#[cfg(test)]
mod tests {
    #[test]
    fn finish_reasons_are_read_from_each_choice() {
        use super::finish_reasons;
        let answer = br#"{"id":"x","choices":[{"index":0,"message":{"content":"hi","finish_reason":"no"},"finish_reason":"stop"},
            {"index":1,"finish_reason":null},{"index":2,"finish_reason":"length"}],"usage":{}}"#;
        assert_eq!(finish_reasons(answer, 10), Some(vec![r#""stop""#, r#""length""#]));
        assert_eq!(finish_reasons(answer, 1), Some(vec![r#""stop""#]));
        assert_eq!(finish_reasons(br#"{"object":"list","data":[]}"#, 10), Some(vec![]));
        assert_eq!(finish_reasons(br#"{"choices":[]}"#, 10), Some(vec![]));
        assert_eq!(finish_reasons(br#"{"choices":[1,"a",{"finish_reason":"stop"}]}"#, 10), Some(vec![r#""stop""#]));
        assert_eq!(finish_reasons(b"not json", 10), None);
        assert_eq!(finish_reasons(br#"{"choices":"stop"}"#, 10), None);
        assert_eq!(finish_reasons(br#"{"choices":[{"finish_reason":"stop"}]"#, 10), None, "cut off");
    }

    use super::*;

    fn image_form(parts: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in parts {
            let file = if name.starts_with("image") { "; filename=\"a.png\"" } else { "" };
            body.extend_from_slice(
                format!("--bnd\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{value}\r\n").as_bytes(),
            );
        }
        body.extend_from_slice(b"--bnd--\r\n");
        body
    }

    #[test]
    fn image_uploads_need_an_image_and_carry_what_they_are_billed_by() {
        let body = image_form(&[
            ("image[]", "PNG"),
            ("prompt", "a hat"),
            ("model", "dall-e-2"),
            ("n", "4"),
            ("size", "256x256"),
        ]);
        for endpoint in [Endpoint::ImageEdits, Endpoint::ImageVariations] {
            let view = request(&body, endpoint).unwrap();
            assert_eq!(view.model.as_deref(), Some("dall-e-2"));
            assert_eq!(&body[view.model_span.unwrap()], b"dall-e-2");
            assert_eq!(view.images, Some(crate::units::ImageAsk { n: 4, pixels: 256 * 256 }));
        }
        let e = request(&image_form(&[("prompt", "a hat"), ("model", "dall-e-2")]), Endpoint::ImageEdits).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("image")));
        let e = request(br#"{"model":"dall-e-2"}"#, Endpoint::ImageVariations).unwrap_err();
        assert!(e.message.contains("multipart/form-data") && e.message.contains("`image`"), "{}", e.message);
        // A transcription's form is not asked for an image.
        let audio = image_form(&[("file", "RIFF"), ("model", "whisper-1")]);
        assert_eq!(request(&audio, Endpoint::Transcriptions).unwrap().images, None);
        assert_eq!(Endpoint::ImageEdits.call_type(), "aimage_edit");
        assert_eq!(Endpoint::ImageVariations.call_type(), "aimage_variation");
    }

    #[test]
    fn sniffs_model_stream_and_usage_option() {
        let body = br#"{"messages":[{"role":"user","content":"hi \"model\": x"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"user":"u1"}"#;
        let v = request(body, Endpoint::Chat).unwrap();
        assert_eq!(v.model.as_deref(), Some("gpt-4o"));
        assert_eq!(&body[v.model_span.clone().unwrap()], b"\"gpt-4o\"");
        assert!(v.stream);
        assert!(v.include_usage);
        assert_eq!(v.user.as_deref(), Some("u1"));
    }

    #[test]
    fn reads_the_longest_answer_a_request_allows() {
        let max = |body: &str| request(body.as_bytes(), Endpoint::Chat).unwrap().max_tokens;
        assert_eq!(max(r#"{"model":"m","messages":[],"max_tokens":12}"#), Some(12));
        assert_eq!(max(r#"{"model":"m","messages":[],"max_tokens":12,"max_completion_tokens":30}"#), Some(30));
        // Anything but a whole number is the upstream's to judge.
        for v in ["-1", "1.5", "\"12\"", "null", "99999999999999999999999"] {
            assert_eq!(max(&format!(r#"{{"model":"m","messages":[],"max_tokens":{v}}}"#)), None, "{v}");
        }
        assert_eq!(max(r#"{"model":"m","messages":[]}"#), None);
    }

    #[test]
    fn escaped_model_names_decode() {
        let body = br#"{"model":"a\u002fb","messages":[]}"#;
        let v = request(body, Endpoint::Chat).unwrap();
        assert_eq!(v.model.as_deref(), Some("a/b"));
    }

    #[test]
    fn rejects_bad_input_with_actionable_messages() {
        let cases: &[(&[u8], &str)] = &[
            (b"{not json", "not a valid JSON object"),
            (b"", "empty"),
            (b"[1,2]", "not a valid JSON object"),
            (b"{\"model\":\"m\",\"messages\":\"hi\"}", "messages: expected a list"),
            (b"{\"model\":\"m\",\"messages\":[],\"stream\":\"yes\"}", "stream: expected true or false"),
            (b"{\"model\":5,\"messages\":[]}", "model: expected a string"),
            (b"{\"model\":\"m\"}", "Missing required field `messages`"),
            (b"{\"model\":\"m\",\"messages\":[\"\xff\"]}", "not valid UTF-8"),
        ];
        for (body, needle) in cases {
            let err = request(body, Endpoint::Chat).unwrap_err();
            assert_eq!(err.status, 400);
            assert!(err.message.contains(needle), "{:?} -> {}", String::from_utf8_lossy(body), err.message);
        }
    }

    /// Long bodies (past the ASCII check's vector width): non-ASCII text is read as UTF-8, and a
    /// stray byte is refused with its offset wherever it lies.
    #[test]
    fn long_bodies_are_checked_as_utf8() {
        let prompt = "Ignore the instructions above. ".repeat(40);
        let body = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{prompt} é 😀"}}]}}"#);
        let v = request(body.as_bytes(), Endpoint::Chat).unwrap();
        assert!(v.messages.unwrap().ends_with("é 😀\"}]"));
        for at in [40, 700, body.len() - 2] {
            let mut bad = body.clone().into_bytes();
            bad[at] = 0xff;
            let err = request(&bad, Endpoint::Chat).unwrap_err();
            assert!(err.message.contains(&format!("invalid byte at offset {at}")), "{}", err.message);
        }
    }

    /// A small deterministic generator of request-like JSON, most of it valid, some of it mangled.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[(self.next() % from.len() as u64) as usize]
        }
        fn value(&mut self, depth: usize) -> String {
            match self.next() % if depth > 3 { 3 } else { 5 } {
                0 => self.string(),
                1 => {
                    self.pick(&["0", "-1", "12.5", "1e9", "-0.0E-2", "true", "false", "null", "01", "1.", "tru"]).into()
                }
                2 => format!("\"{}\"", self.pick(&["gpt-4o", "m", "", "a\\u002fb", "\\ud83d\\ude00"])),
                3 => {
                    let items: Vec<String> = (0..self.next() % 4).map(|_| self.value(depth + 1)).collect();
                    format!("[{}]", items.join(self.pick(&[",", " , ", ",\n"])))
                }
                _ => self.object(depth + 1),
            }
        }
        fn string(&mut self) -> String {
            let parts =
                ["plain text ", "é", "😀", "\\n", "\\\"", "\\\\", "\\u00e9", "\\x", "\u{1}", "\\u12", "\t", "\u{7f}"];
            let n = self.next() % 6;
            let body: String =
                (0..n).map(|_| if self.next().is_multiple_of(4) { self.pick(&parts) } else { "abc " }).collect();
            format!("\"{body}\"")
        }
        fn object(&mut self, depth: usize) -> String {
            let keys = [
                "model",
                "messages",
                "stream",
                "stream_options",
                "user",
                "prompt",
                "input",
                "temperature",
                "mod\\u0065l",
                "n",
                "fallbacks",
                "num_retries",
                "timeout",
                "mock_response",
                "mock_timeout",
            ];
            let members: Vec<String> = (0..self.next() % 6)
                .map(|_| format!("\"{}\"{}{}", self.pick(&keys), self.pick(&[":", " : "]), self.value(depth)))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        fn mangle(&mut self, mut s: String) -> String {
            if s.is_empty() || !self.next().is_multiple_of(3) {
                return s;
            }
            let at = (self.next() % s.len() as u64) as usize;
            if !s.is_char_boundary(at) {
                return s;
            }
            match self.next() % 3 {
                0 => s.truncate(at),
                1 => s.insert_str(at, self.pick(&["\"", "\\", ",", "}", "]", "\u{1}", " ", "{", "x"])),
                _ => {
                    if let Some(c) = s[at..].chars().next() {
                        s.replace_range(at..at + c.len_utf8(), "");
                    }
                }
            }
            s
        }
    }

    #[test]
    fn the_fast_scan_agrees_with_serde_json() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let (mut fast, mut slow) = (0, 0);
        for _ in 0..50_000 {
            let doc = g.object(0);
            let doc = g.mangle(doc);
            let serde = RequestFields::parse(&doc);
            match RequestFields::scan(&doc) {
                Some(fields) => {
                    fast += 1;
                    assert_eq!(serde.as_ref().ok(), Some(&fields), "{doc}");
                }
                None => slow += 1,
            }
        }
        // Most valid documents take the fast path; the rest still get serde_json's verdict.
        assert!(fast > 15_000 && slow > 5_000, "fast {fast}, slow {slow}");
    }

    /// Whatever the generator makes, a body the gateway accepts with control fields loses exactly
    /// those when stripped: what is left is accepted the same way, with the same model and
    /// messages, and carries no control.
    #[test]
    fn stripped_bodies_keep_everything_but_the_controls() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let mut stripped = 0;
        let values = ["0", "3", "1.5", "true", "false", "null", "\"x\"", "[\"m\"]", "[{\"model\":\"b\"}]", "-1"];
        for _ in 0..20_000 {
            let keys = ["model", "messages", "temperature", "n", "fallb\\u0061cks"];
            let members: Vec<String> = (0..1 + g.next() % 5)
                .map(|_| {
                    let key = if g.next().is_multiple_of(2) { g.pick(&controls::NAMES) } else { g.pick(&keys) };
                    let value = if g.next().is_multiple_of(3) { g.value(1) } else { g.pick(&values).to_string() };
                    format!("\"{key}\":{value}")
                })
                .collect();
            let doc = format!(r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],{}}}"#, members.join(","));
            let doc = g.mangle(doc);
            let Ok(view) = request(doc.as_bytes(), Endpoint::Chat) else { continue };
            if view.controls.is_none() {
                continue;
            }
            stripped += 1;
            let body = crate::strip::without_members(doc.as_bytes(), &controls::NAMES);
            let again = request(&body, Endpoint::Chat).unwrap_or_else(|e| panic!("{doc} -> {e:?}"));
            assert!(again.controls.is_none(), "{doc}");
            assert_eq!(again.model, view.model, "{doc}");
            assert_eq!(again.messages, view.messages, "{doc}");
            let (a, b): (serde_json::Value, serde_json::Value) =
                (serde_json::from_str(&doc).unwrap(), serde_json::from_slice(&body).unwrap());
            let mut a = a.as_object().unwrap().clone();
            a.retain(|k, _| !controls::NAMES.contains(&k.as_str()));
            assert_eq!(&a, b.as_object().unwrap(), "{doc}");
        }
        assert!(stripped > 100, "only {stripped} bodies with controls");
    }

    #[test]
    fn reads_controls_only_when_present() {
        let v = request(br#"{"model":"m","messages":[]}"#, Endpoint::Chat).unwrap();
        assert!(v.controls.is_none());
        let v = request(
            br#"{"model":"m","messages":[],"fallbacks":["b"],"num_retries":1,"mock_testing_fallbacks":true}"#,
            Endpoint::Chat,
        )
        .unwrap();
        let c = v.controls.unwrap();
        assert_eq!((c.num_retries, c.mock_testing_fallbacks), (Some(1), true));
        assert_eq!(c.fallbacks_for("m").unwrap(), vec![("b".to_string(), None)]);
        let e = request(br#"{"model":"m","messages":[],"num_retries":-1}"#, Endpoint::Chat).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("num_retries")));
    }

    #[test]
    fn the_fast_scan_hands_edge_cases_to_serde_json() {
        let deep = format!("{{\"model\":\"m\",\"x\":{}{}}}", "[".repeat(120), "]".repeat(120));
        assert!(RequestFields::scan(&deep).is_none());
        assert!(RequestFields::parse(&deep).is_ok());
        for doc in [r#"{"model":"a","model":"b"}"#, r#"{"mod\u0065l":"a"}"#, r#"{"model":"a"} x"#] {
            assert!(RequestFields::scan(doc).is_none(), "{doc}");
        }
        assert!(request(br#"{"model":"a","model":"b","messages":[]}"#, Endpoint::Chat)
            .unwrap_err()
            .message
            .contains("duplicate field `model`"));
        assert_eq!(
            request(br#"{"mod\u0065l":"a","messages":[]}"#, Endpoint::Chat).unwrap().model.as_deref(),
            Some("a")
        );
    }

    #[test]
    fn embeddings_need_input() {
        assert!(request(br#"{"model":"e","input":"hi"}"#, Endpoint::Embeddings).is_ok());
        assert!(request(br#"{"model":"e","messages":[]}"#, Endpoint::Embeddings).is_err());
    }

    #[test]
    fn reads_responses_requests_and_usage() {
        let body = br#"{"model":"m","input":"hi","max_output_tokens":64,"max_tokens":9,"previous_response_id":"resp_1","stream":true}"#;
        let v = request(body, Endpoint::Responses).unwrap();
        assert_eq!(v.max_tokens, Some(64));
        assert_eq!(v.input, Some("\"hi\""));
        assert_eq!(v.previous_response_id.as_deref(), Some("resp_1"));
        assert!(v.stream);
        // `input` may be left out: a previous response or a stored prompt stands in.
        assert!(request(br#"{"model":"m"}"#, Endpoint::Responses).is_ok());
        let e = request(br#"{"model":"m","previous_response_id":5}"#, Endpoint::Responses).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("previous_response_id"));
        // Chat ignores the Responses fields.
        let chat = request(br#"{"model":"m","messages":[],"previous_response_id":5}"#, Endpoint::Chat).unwrap();
        assert_eq!(chat.previous_response_id, None);

        let answer = br#"{"id":"resp_1","model":"gpt","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":4},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":123}}"#;
        let u = response(answer).unwrap().usage.unwrap();
        assert_eq!((u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens), (36, 87, 123, 4));
        let v: serde_json::Value = serde_json::from_slice(answer).unwrap();
        assert_eq!(Usage::from_value(&v["usage"]), Some(u));
    }

    /// The answer's id comes from the same scan as its model and usage, by either reader.
    #[test]
    fn reads_the_answer_id() {
        let body = br#"{"id":"chatcmpl-abc","object":"chat.completion","model":"m","usage":{"prompt_tokens":1}}"#;
        let r = response(body).unwrap();
        assert_eq!(r.id(body).as_deref(), Some("chatcmpl-abc"));
        // Escaped keys send the whole body to serde_json, which finds it too.
        let body = br#"{"id":"chatcmpl-\u0041","m\u006fdel":"m"}"#;
        assert_eq!(response(body).unwrap().id(body).as_deref(), Some("chatcmpl-A"));
        let body = br#"{"id":7,"model":"m"}"#;
        assert_eq!(response(body).unwrap().id(body), None);
        let body = br#"{"model":"m"}"#;
        assert_eq!(response(body).unwrap().id(body), None);
    }

    #[test]
    fn finds_response_model_span() {
        let body = br#"{"id":"x","model":"gpt-3.5","choices":[]}"#;
        let span = model_span(body).unwrap();
        assert_eq!(&body[span], b"\"gpt-3.5\"");
        assert_eq!(model_span(b"{\"id\":1}"), None);
        assert_eq!(model_span(b"garbage"), None);
        let r =
            response(br#"{"model":"m","usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#).unwrap();
        assert_eq!(
            r.usage,
            Some(Usage { prompt_tokens: 9, completion_tokens: 12, total_tokens: 21, ..Default::default() })
        );
        assert!(response(b"[]").is_err());
        let r = response(
            br#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":80},"cache_creation_input_tokens":7}}"#,
        )
        .unwrap();
        let u = r.usage.unwrap();
        assert_eq!((u.prompt_tokens, u.cached_tokens, u.cache_creation_input_tokens), (100, 80, 7));
        let r = response(br#"{"usage":{"prompt_tokens":1,"prompt_tokens_details":null}}"#).unwrap();
        assert_eq!(r.usage.unwrap().cached_tokens, 0);
        let r = response(
            br#"{"usage":{"prompt_tokens":1,"completion_tokens":50,"completion_tokens_details":{"reasoning_tokens":40,"audio_tokens":0}}}"#,
        )
        .unwrap();
        assert_eq!(r.usage.unwrap().reasoning_tokens, 40);
    }

    #[test]
    fn json_strings_are_borrowed_unless_escaped() {
        assert!(matches!(json_str(r#""gpt-4o""#), Some(Cow::Borrowed("gpt-4o"))));
        assert!(matches!(json_str(r#""""#), Some(Cow::Borrowed(""))));
        assert_eq!(json_str(r#""a\"b\u00e9""#).as_deref(), Some("a\"bé"));
        assert!(matches!(json_str(r#""a\nb""#), Some(Cow::Owned(_))));
        assert_eq!(json_str("5"), None);
        assert_eq!(json_str("null"), None);
        assert_eq!(json_str(r#"["x"]"#), None);
    }

    /// The scanner's answer is serde_json's, whichever of them reads the body.
    #[test]
    fn response_scan_agrees_with_serde() {
        let bodies: &[&[u8]] = &[
            br#"{"id":"x","model":"gpt-3.5","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}}"#,
            br#" { "model" : null , "usage" : null } "#,
            br#"{"model":"a","model":"b"}"#,
            br#"{"model":"m","usage":{"total_tokens":3}}"#,
            br#"{"usage":{"total_tokens":"three"}}"#,
            br#"{"usage":{"total_tokens":-1}}"#,
            br#"{"usage":[]}"#,
            br#"{"model":5,"usage":{"prompt_tokens":1,"extra":{"deep":[1,2,{"x":null}]}}}"#,
            br#"{"usage":{"prompt_tokens":100,"completion_tokens":5,"total_tokens":105,"prompt_tokens_details":{"cached_tokens":80,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
            br#"{"usage":{"prompt_tokens":1,"cache_creation_input_tokens":7,"prompt_tokens_details":{}}}"#,
            br#"{"usage":{"prompt_tokens":null}}"#,
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens_details":{"cached_tokens":null}}}"#,
            br#"{"usage":{"prompt_tokens_details":{"cached_tokens":"x"}}}"#,
            br#"{"usage":{"prompt_tokens_details":[1]}}"#,
            br#"{"usage":{"completion_tokens":3,"completion_tokens_details":{"reasoning_tokens":null}}}"#,
            br#"{"usage":{"completion_tokens_details":{"reasoning_tokens":"x"}}}"#,
            br#"{"usage":{"completion_tokens_details":null,"completion_tokens":1}}"#,
            br#"{"usage":{"prompt_tokens":1.0}}"#,
            br#"{"usage":{"prompt_tokens":1e2}}"#,
            br#"{"usage":{"prompt_tokens":18446744073709551615}}"#,
            br#"{"usage":{"prompt_tokens":18446744073709551616}}"#,
            br#"{"usage":{"prompt_tokens":99999999999999999999}}"#,
            br#"{"usage":{"prompt_tokens":1,"prompt_tokens":2}}"#,
            br#"{"usage":{"prompt_\u0074okens":3}}"#,
            br#"{"usage":{"total_tokens":0,"note":"null"}}"#,
            br#"{"model":"m"} trailing"#,
            br#"{"model":"m",}"#,
            br#"{"model":"m""#,
            b"{}",
            b"[]",
        ];
        for body in bodies {
            let text = std::str::from_utf8(body).unwrap();
            // `response` refuses anything but an object before parsing (serde would take `[]`).
            let object = text.trim_start().starts_with('{');
            let serde =
                serde_json::from_str::<RawResponse<'_>>(text).ok().filter(|_| object).ok_or(NotJsonObject).map(|raw| {
                    ResponseView {
                        model_span: raw.model.map(|v| span_of(text, v.get())),
                        usage: raw.usage,
                        id_span: raw.id.map(|v| span_of(text, v.get())),
                    }
                });
            assert_eq!(response(body), serde, "{text}");
        }
        // The scanner took the plain ones itself.
        assert!(scan::fields(r#"{"model":"m","usage":{"total_tokens":1}}"#, ["model", "usage"]).is_some());
        assert!(scan::fields(r#"{"model":"a","model":"b"}"#, ["model", "usage"]).is_none());
        let plain = r#"{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21,"prompt_tokens_details":{"cached_tokens":4}}"#;
        assert_eq!(
            Usage::scan(plain),
            Some(Usage {
                prompt_tokens: 9,
                completion_tokens: 12,
                total_tokens: 21,
                cached_tokens: 4,
                ..Default::default()
            })
        );
        assert_eq!(Usage::scan(r#"{"prompt_tokens":1.0}"#), None);
    }

    #[test]
    fn reads_chunks() {
        let c = chunk(r#"{"id":"c1","created":5,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#).unwrap();
        assert_eq!(c.id, Some("\"c1\""));
        assert!(!c.finished && c.finish_reason.is_none());
        assert_eq!(c.text, vec!["Hi"]);
        assert!(c.usage.is_none());
        let c = chunk(r#"{"choices":[],"usage":{"prompt_tokens":1}}"#).unwrap();
        assert!(c.usage.is_some());
        let c = chunk(r#"{"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}"#).unwrap();
        assert!(c.finished);
        assert_eq!(c.finish_reason, Some("\"stop\""));
        assert!(c.usage.is_none());
        assert!(chunk("{not json").is_none());
        assert!(chunk(r#"{"error":{"message":"x"}}"#).unwrap().is_error);
    }
}
