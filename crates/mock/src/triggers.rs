//! Model names that make the mock misbehave on purpose, so a gateway test can provoke each
//! failure by choosing a deployment's model.

use std::time::Duration;

/// What a model name asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// A normal answer.
    None,
    /// `429`: the seed fake's `{"detail":"Too many requests"}`.
    TooManyRequests,
    /// `error-<status>`: that status with the provider's error envelope.
    Error(u16),
    /// `garbage`: 200, `application/json`, a body that is not JSON.
    Garbage,
    /// `sleep-<ms>`: wait, then answer normally.
    Sleep(Duration),
    /// `stream-garbage`: one valid chunk, then `data: {not json`, then EOF.
    StreamGarbage,
    /// `stream-reset`: two valid chunks, then the connection breaks.
    StreamReset,
    /// `stream-echo-key`: one valid chunk, then an error chunk quoting the credential the
    /// request carried, as OpenAI's "Incorrect API key provided" does (OpenAI's format only).
    StreamEchoKey,
    /// `slow-stream-<ms>`: this delay between stream chunks.
    SlowStream(Duration),
    /// `retry-after-<s>`: 429 with a `Retry-After` header.
    RetryAfter(u64),
}

impl Trigger {
    /// Reads the trigger from a model name; a provider prefix (`openai/…`) is ignored. Names
    /// that only look like triggers (`error-abc`) are ordinary models.
    pub fn from_model(model: &str) -> Trigger {
        let name = model.rsplit('/').next().unwrap_or(model);
        // Nearly every model name starts with a letter other than these; skip the string
        // comparisons for them.
        if !matches!(name.as_bytes().first(), Some(b'4' | b'e' | b'g' | b's' | b'r')) {
            return Trigger::None;
        }
        let num = |s: &str| s.parse::<u64>().ok();
        match name {
            "429" => Trigger::TooManyRequests,
            "garbage" => Trigger::Garbage,
            "stream-garbage" => Trigger::StreamGarbage,
            "stream-reset" => Trigger::StreamReset,
            "stream-echo-key" => Trigger::StreamEchoKey,
            _ => {
                if let Some(s) = name.strip_prefix("error-") {
                    match num(s) {
                        Some(code @ 100..=599) => Trigger::Error(code as u16),
                        _ => Trigger::None,
                    }
                } else if let Some(ms) = name.strip_prefix("sleep-").and_then(num) {
                    Trigger::Sleep(Duration::from_millis(ms))
                } else if let Some(ms) = name.strip_prefix("slow-stream-").and_then(num) {
                    Trigger::SlowStream(Duration::from_millis(ms))
                } else if let Some(s) = name.strip_prefix("retry-after-").and_then(num) {
                    Trigger::RetryAfter(s)
                } else {
                    Trigger::None
                }
            }
        }
    }

    /// Whether answering this counts as an injected error in the stats. `streamed` matters
    /// because the stream triggers only misbehave on streams.
    pub fn is_error(self, streamed: bool) -> bool {
        match self {
            Trigger::TooManyRequests | Trigger::Error(_) | Trigger::Garbage | Trigger::RetryAfter(_) => true,
            Trigger::StreamGarbage | Trigger::StreamReset | Trigger::StreamEchoKey => streamed,
            Trigger::None | Trigger::Sleep(_) | Trigger::SlowStream(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        use Trigger::*;
        assert_eq!(Trigger::from_model("gpt-4o"), None);
        assert_eq!(Trigger::from_model("429"), TooManyRequests);
        assert_eq!(Trigger::from_model("openai/error-503"), Error(503));
        assert_eq!(Trigger::from_model("error-999"), None);
        assert_eq!(Trigger::from_model("error-x"), None);
        assert_eq!(Trigger::from_model("garbage"), Garbage);
        assert_eq!(Trigger::from_model("sleep-250"), Sleep(Duration::from_millis(250)));
        assert_eq!(Trigger::from_model("stream-garbage"), StreamGarbage);
        assert_eq!(Trigger::from_model("stream-reset"), StreamReset);
        assert_eq!(Trigger::from_model("slow-stream-10"), SlowStream(Duration::from_millis(10)));
        assert_eq!(Trigger::from_model("retry-after-7"), RetryAfter(7));
    }
}
