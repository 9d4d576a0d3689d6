//! The hand-written HTTP/1.1 fast path of the sluice gateway, fuzzed.
//!
//! hyper serves and calls everything else (HTTP/2, odd framings, the management API); this crate
//! holds the few codecs that carry the traffic, because hyper's per-request machinery (a task
//! and channels per client connection, a header map per answer) was a large share of a proxied
//! request's cost (bench/README.md has the measurements):
//!
//! - [`request_head`]: a client's request head, for the gateway's direct path, which writes its
//!   answers with [`push_field`] and [`vectored`];
//! - [`pool`]: the upstream client and its keep-alive pool, over [`h1`] connections driven by the
//!   request's own task (TLS by rustls, HTTP/2 by hyper where TLS negotiates it);
//! - [`h1`]: one upstream HTTP/1.1 connection, its request-head writer and answer-head parser;
//! - [`answer`]: an upstream answer's head, its fields left in place in the head's bytes;
//! - [`framing`] and [`chunked`]: how an answer's body is delimited, and the chunked decoder;
//! - [`vectored`] and [`rewind`]: writing pieces in one system call, and giving a connection
//!   already read from to hyper.
//!
//! It knows nothing of keys, routing or metrics: what the gateway needs to observe comes back in
//! return values. Every parser here faces bytes from outside and is thrown generated and mutated
//! input in `tests/`, compared with httparse and hyper where they apply.

pub mod answer;
mod chain;
pub mod chunked;
mod connect;
pub mod framing;
pub mod h1;
pub mod pool;
pub mod request_head;
pub mod rewind;
pub mod vectored;

pub use chain::ChainBody;
pub use connect::{client, h2_client, H2Client};
pub use h1::push_field;
