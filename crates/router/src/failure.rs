//! A failed upstream attempt, classified the way LiteLLM's router sees it.

use std::time::Duration;

/// The exception classes the router's rules distinguish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    BadRequest,
    Authentication,
    PermissionDenied,
    NotFound,
    Timeout,
    RateLimit,
    ContextWindowExceeded,
    ContentPolicyViolation,
    InternalServer,
    /// The upstream could not be reached: never a reason to cool a deployment down.
    Connection,
}

impl ErrorKind {
    /// The class for an upstream HTTP status (LiteLLM's exception mapping).
    pub fn from_status(status: u16) -> Self {
        match status {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::PermissionDenied,
            404 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            429 => ErrorKind::RateLimit,
            s if (400..500).contains(&s) => ErrorKind::BadRequest,
            _ => ErrorKind::InternalServer,
        }
    }
}

/// What the router learns from one failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    /// The upstream's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The upstream's `Retry-After` / `retry-after-ms`, when it sent one.
    pub retry_after: Option<Duration>,
    /// No connection could be made (refused, no route, no such host): nothing is serving there.
    pub unreachable: bool,
    /// Made up by a request's testing switch (`mock_testing_fallbacks` and the like), not said by
    /// the deployment: it steers retries and fallbacks, but never cools the deployment down or
    /// counts against its health.
    pub simulated: bool,
}

impl Failure {
    pub fn status(status: u16, retry_after: Option<Duration>) -> Self {
        Failure {
            kind: ErrorKind::from_status(status),
            status: Some(status),
            retry_after,
            unreachable: false,
            simulated: false,
        }
    }

    /// A connection that broke once made (closed before or while answering).
    pub fn connection() -> Self {
        Failure { kind: ErrorKind::Connection, status: None, retry_after: None, unreachable: false, simulated: false }
    }

    /// No connection could be made to the upstream at all.
    pub fn unreachable() -> Self {
        Failure { unreachable: true, ..Failure::connection() }
    }

    pub fn timeout() -> Self {
        Failure { kind: ErrorKind::Timeout, status: Some(408), retry_after: None, unreachable: false, simulated: false }
    }

    /// This failure, marked as made up by a testing switch (see [`Failure::simulated`]).
    pub fn simulated(self) -> Self {
        Failure { simulated: true, ..self }
    }

    /// LiteLLM's `_should_retry`: only 408, 409, 429 and 5xx are worth retrying.
    pub fn is_retryable_status(&self) -> bool {
        match self.status {
            Some(s) => s == 408 || s == 409 || s == 429 || s >= 500,
            None => true,
        }
    }
}
