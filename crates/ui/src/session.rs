//! Sign-in sessions: a random 256-bit id in an `HttpOnly` cookie names a session held in this
//! process's memory, which holds the credential the browser signed in with and a CSRF token the
//! app sends back in a header. The cookie alone is worth nothing: the server accepts it as a
//! caller's credential only beside that token, which a page of another site cannot read.
//!
//! The store is bounded (at most [`MAX_SESSIONS`]; when full, the session nearest its end makes
//! room) and every session ends [`SESSION_TTL`] after sign-in. Ids are kept only as their SHA-256,
//! so a look-up's timing says nothing of a live id. Sessions live in one replica's memory: behind
//! a load balancer a browser needs sticky sessions, or signs in again on another replica.

use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The name of the session cookie.
pub const COOKIE: &str = "sluice_ui";
/// The header the app sends its session's CSRF token in.
pub const CSRF_HEADER: &str = "x-sluice-csrf";
/// Sessions held at once.
pub const MAX_SESSIONS: usize = 10_000;
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// What a signed-in browser acts as.
#[derive(Clone)]
pub struct SignedIn {
    /// The key the session calls the management API with (empty on a proxy with no master key,
    /// where the API asks for none).
    pub credential: String,
    /// The token a request must carry in [`CSRF_HEADER`].
    pub csrf: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedIn { .. }")
    }
}

impl SignedIn {
    /// Whether `presented` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        !presented.is_empty() && bool::from(presented.as_bytes().ct_eq(self.csrf.as_bytes()))
    }
}

struct Held {
    signed_in: SignedIn,
    ends: Instant,
}

/// The sessions of this process.
pub struct Sessions {
    held: Mutex<HashMap<[u8; 32], Held>>,
    max: usize,
    ttl: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(MAX_SESSIONS, SESSION_TTL)
    }
}

impl Sessions {
    pub fn new(max: usize, ttl: Duration) -> Sessions {
        Sessions { held: Mutex::new(HashMap::new()), max: max.max(1), ttl }
    }

    /// Starts a session acting as `credential`: gives back the cookie's value (the session id)
    /// and the session.
    pub fn start(&self, credential: String) -> (String, SignedIn) {
        let id = random_token();
        let signed_in = SignedIn { credential, csrf: random_token() };
        let now = Instant::now();
        let mut held = self.lock();
        if held.len() >= self.max {
            held.retain(|_, s| s.ends > now);
        }
        if held.len() >= self.max {
            if let Some(soonest) = held.iter().min_by_key(|(_, s)| s.ends).map(|(k, _)| *k) {
                held.remove(&soonest);
            }
        }
        held.insert(digest(&id), Held { signed_in: signed_in.clone(), ends: now + self.ttl });
        (id, signed_in)
    }

    /// The live session the cookie value `id` names.
    pub fn get(&self, id: &str) -> Option<SignedIn> {
        if !well_formed(id) {
            return None;
        }
        let key = digest(id);
        let mut held = self.lock();
        match held.get(&key) {
            Some(s) if s.ends > Instant::now() => Some(s.signed_in.clone()),
            Some(_) => {
                held.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session `id` names (sign-out).
    pub fn end(&self, id: &str) {
        if well_formed(id) {
            self.lock().remove(&digest(id));
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Held>> {
        // A panic while holding the map leaves it consistent (every change is one call).
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The session id in a `Cookie` header's value, if it carries one.
pub fn cookie_value(cookie_header: &str) -> Option<&str> {
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value that hands the browser session `id`.
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_TTL.as_secs())
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// 256 random bits from the operating system's generator, as 64 hex digits.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn well_formed(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_only_and_ends_at_sign_out() {
        let sessions = Sessions::default();
        let (id, s) = sessions.start("sk-user".into());
        assert_eq!(id.len(), 64);
        assert_eq!(s.csrf.len(), 64);
        assert_ne!(id, s.csrf);
        let found = sessions.get(&id).expect("live");
        assert_eq!(found.credential, "sk-user");
        assert!(found.csrf_matches(&s.csrf));
        assert!(!found.csrf_matches(""));
        assert!(!found.csrf_matches(&id));
        assert!(sessions.get(&s.csrf).is_none(), "the CSRF token is not a session id");
        assert!(sessions.get("not-hex").is_none());
        sessions.end(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn ids_do_not_repeat() {
        let sessions = Sessions::default();
        let ids: std::collections::HashSet<String> = (0..200).map(|_| sessions.start(String::new()).0).collect();
        assert_eq!(ids.len(), 200);
    }

    #[test]
    fn sessions_expire_and_the_store_stays_bounded() {
        let expired = Sessions::new(10, Duration::ZERO);
        let (id, _) = expired.start("k".into());
        assert!(expired.get(&id).is_none(), "a session past its end is refused");

        let sessions = Sessions::new(3, SESSION_TTL);
        let first = sessions.start("a".into()).0;
        for _ in 0..5 {
            sessions.start("b".into());
        }
        assert_eq!(sessions.len(), 3);
        assert!(sessions.get(&first).is_none(), "the oldest made room");
    }

    #[test]
    fn cookies_are_read_and_written_with_their_flags() {
        assert_eq!(cookie_value("a=1; sluice_ui=abc ; b=2"), Some("abc"));
        assert_eq!(cookie_value("sluice_uix=1"), None);
        assert_eq!(cookie_value(""), None);
        let set = set_cookie("abc", false);
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(flag), "{set}");
        }
        assert!(!set.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn debug_output_shows_no_credential() {
        let s = SignedIn { credential: "sk-secret".into(), csrf: "t".into() };
        assert!(!format!("{s:?}").contains("sk-secret"));
    }
}
