//! Counters that tests read back through `GET /mock/stats`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

/// The families of routes the mock serves, one counter each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Chat,
    Completions,
    Embeddings,
    Models,
    Vertex,
    Gemini,
    Token,
    Anthropic,
    Bedrock,
    NotFound,
    Responses,
    Ollama,
    Cohere,
    Rerank,
    Voyage,
    Images,
    Moderations,
    Audio,
    Files,
    Batches,
    Cloudflare,
    TextGen,
    Watsonx,
    SageMaker,
    Replicate,
}

impl Route {
    const ALL: [Route; 25] = [
        Route::Chat,
        Route::Completions,
        Route::Embeddings,
        Route::Models,
        Route::Vertex,
        Route::Gemini,
        Route::Token,
        Route::Anthropic,
        Route::Bedrock,
        Route::NotFound,
        Route::Responses,
        Route::Ollama,
        Route::Cohere,
        Route::Rerank,
        Route::Voyage,
        Route::Images,
        Route::Moderations,
        Route::Audio,
        Route::Files,
        Route::Batches,
        Route::Cloudflare,
        Route::TextGen,
        Route::Watsonx,
        Route::SageMaker,
        Route::Replicate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Route::Chat => "chat",
            Route::Completions => "completions",
            Route::Embeddings => "embeddings",
            Route::Models => "models",
            Route::Vertex => "vertex",
            Route::Gemini => "gemini",
            Route::Token => "token",
            Route::Anthropic => "anthropic",
            Route::Bedrock => "bedrock",
            Route::NotFound => "not_found",
            Route::Responses => "responses",
            Route::Ollama => "ollama",
            Route::Cohere => "cohere",
            Route::Rerank => "rerank",
            Route::Voyage => "voyage",
            Route::Images => "images",
            Route::Moderations => "moderations",
            Route::Audio => "audio",
            Route::Files => "files",
            Route::Batches => "batches",
            Route::Cloudflare => "cloudflare",
            Route::TextGen => "textgen",
            Route::Watsonx => "watsonx",
            Route::SageMaker => "sagemaker",
            Route::Replicate => "replicate",
        }
    }
}

/// All counters are relaxed atomics: tests read them after the traffic has settled, and exact
/// cross-counter consistency is not worth a lock on the hot path.
#[derive(Debug, Default)]
pub struct Stats {
    requests: AtomicU64,
    by_route: [AtomicU64; Route::ALL.len()],
    rate_limited: AtomicU64,
    injected_errors: AtomicU64,
    cancelled: AtomicU64,
    in_flight: AtomicI64,
    tokens_issued: AtomicU64,
    /// Uploads whose body was cut off on the way (a gateway that stopped an oversized upload).
    uploads_cut_off: AtomicU64,
}

impl Stats {
    pub fn count(&self, route: Route) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.by_route[route as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn injected_error(&self) {
        self.injected_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// An access token went out: how tests see a gateway's token refreshes.
    pub fn token_issued(&self) {
        self.tokens_issued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn upload_cut_off(&self) {
        self.uploads_cut_off.fetch_add(1, Ordering::Relaxed);
    }

    /// Starts tracking one request; see [`RequestGuard`].
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard { stats: Arc::clone(self), finished: false }
    }

    /// Zeroes everything but `in_flight`, which describes requests still running and would go
    /// negative if their guards decremented it after a reset.
    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        for c in &self.by_route {
            c.store(0, Ordering::Relaxed);
        }
        self.rate_limited.store(0, Ordering::Relaxed);
        self.injected_errors.store(0, Ordering::Relaxed);
        self.cancelled.store(0, Ordering::Relaxed);
        self.tokens_issued.store(0, Ordering::Relaxed);
        self.uploads_cut_off.store(0, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> String {
        let by_route: serde_json::Map<String, serde_json::Value> = Route::ALL
            .iter()
            .map(|r| {
                let n = self.by_route[*r as usize].load(Ordering::Relaxed);
                (r.name().to_string(), n.into())
            })
            .collect();
        serde_json::json!({
            "requests": self.requests.load(Ordering::Relaxed),
            "by_route": by_route,
            "rate_limited": self.rate_limited.load(Ordering::Relaxed),
            "injected_errors": self.injected_errors.load(Ordering::Relaxed),
            "cancelled": self.cancelled.load(Ordering::Relaxed),
            "in_flight": self.in_flight.load(Ordering::Relaxed).max(0),
            "tokens_issued": self.tokens_issued.load(Ordering::Relaxed),
            "uploads_cut_off": self.uploads_cut_off.load(Ordering::Relaxed),
        })
        .to_string()
    }
}

/// Lives as long as the work for one request: the handler future, then the response body of a
/// stream. If it is dropped before [`RequestGuard::finish`] — hyper dropped the handler or the
/// body because the client went away — the request counts as cancelled.
#[derive(Debug)]
pub struct RequestGuard {
    stats: Arc<Stats>,
    finished: bool,
}

impl RequestGuard {
    pub fn finish(&mut self) {
        self.finished = true;
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        if !self.finished {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_cancellation() {
        let s = Arc::new(Stats::default());
        s.count(Route::Chat);
        let mut g = s.begin();
        g.finish();
        drop(g);
        drop(s.begin());
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["requests"], 1);
        assert_eq!(v["by_route"]["chat"], 1);
        assert_eq!(v["cancelled"], 1);
        assert_eq!(v["in_flight"], 0);
        s.reset();
        let v: serde_json::Value = serde_json::from_str(&s.to_json()).unwrap();
        assert_eq!(v["cancelled"], 0);
    }
}
