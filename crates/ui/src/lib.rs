//! The admin web UI served at `/ui`: its files, embedded in the binary at build time (`assets`),
//! and the sign-in sessions that let the browser call the management API with the key it signed
//! in with (`session`).
//!
//! The UI is a small client-side app on the existing management API: it has no route of its own
//! that reads or changes data, so it can do exactly what its key could do with `curl`. This
//! crate knows nothing of HTTP frameworks or of keys' meaning; `sluice-server`'s `ui` module
//! mounts the files, checks a sign-in as the API would, and turns a session into the caller's
//! credential.

pub mod assets;
pub mod session;

pub use assets::{Asset, CSP};
pub use session::{Sessions, SignedIn};
