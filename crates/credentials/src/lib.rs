//! Where the gateway's cloud credentials come from, and how long they are good for.
//!
//! AWS ([`aws`]): the provider chain in the order the AWS SDKs walk it — keys given in the
//! config, the environment, web identity (IRSA) through STS, the shared `credentials`/`config`
//! files, ECS container credentials, EC2's IMDSv2 — and LiteLLM's `aws_role_name` assume-role on
//! top. Google ([`gcp`]): Application Default Credentials — a service-account key or gcloud's
//! user credentials (a file or inline JSON), else the GCE/GKE metadata server. IBM Cloud
//! ([`ibm`]): an IAM API key exchanged for watsonx.ai's bearer token.
//!
//! Every temporary credential sits in a [`cache::Cached`]: refreshed five minutes before it
//! expires, by one task for all the requests that want it, while those requests go on with the
//! credential still valid. Everything that comes from outside is bounded: answers are read up to
//! 64 KiB, every call has a timeout, and a lifetime a server states is capped before it becomes
//! a deadline. Errors name the source that failed and what to set; they never quote a secret.
//!
//! This crate does the I/O (on its own small connection pool: credential calls are rare and off
//! the hot path); `providers` and `export` hold its handles and ask them for credentials when a
//! request is about to be signed.

pub mod aws;
pub mod cache;
pub mod env;
mod fetch;
pub mod gcp;
pub mod ibm;
mod time;

pub use cache::Cached;
pub use env::Env;
