//! SigV4 signing keys, kept for the day they sign for.
//!
//! The signing key is four HMACs deep (`AWS4` + secret → date → region → service →
//! `aws4_request`) and depends on nothing else, so every request of a day signed with one
//! credential for one region and service would derive the same key again. It is derived once and
//! kept here, as a ready HMAC key.
//!
//! Entries are keyed on the secret itself, never on who holds it: credentials that refresh (web
//! identity, containers, instance roles, assumed roles) bring a new secret, which finds no entry
//! and derives its own, so no request is signed with the key of a secret that was replaced. A
//! new day's key drops the entries of other days, and at most [`CAPACITY`] entries are kept
//! (the least recently used goes first), so copies of secrets no longer in use do not pile up.
//! Those copies stay in this module: entries have no `Debug`, and nothing here logs, formats or
//! returns a secret.

use ring::hmac;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Enough for every credential, region and service a gateway signs with in one day (Bedrock
/// deployments, SageMaker, S3 log export, STS), with room for credentials that rotate.
const CAPACITY: usize = 16;

/// One derived key and what it was derived from. No `Debug`: it holds a secret.
struct Entry {
    secret: Box<str>,
    date: Box<str>,
    region: Box<str>,
    service: Box<str>,
    key: hmac::Key,
}

impl Entry {
    fn is_for(&self, secret: &str, date: &str, region: &str, service: &str) -> bool {
        *self.date == *date && *self.region == *region && *self.service == *service && *self.secret == *secret
    }
}

/// Least recently used first.
static KEYS: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn keys() -> MutexGuard<'static, Vec<Entry>> {
    // A panic elsewhere cannot leave an entry half made: entries are pushed whole.
    KEYS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The signing key for `secret` on `date` (`YYYYMMDD`) in `region` for `service`, derived on the
/// first request that needs it and kept for the others.
pub(crate) fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    {
        let mut keys = keys();
        if let Some(i) = keys.iter().position(|e| e.is_for(secret, date, region, service)) {
            let key = keys[i].key.clone();
            if i + 1 != keys.len() {
                let e = keys.remove(i);
                keys.push(e);
            }
            return key;
        }
    }
    // Derived outside the lock: other requests need not wait on it.
    let key = derive(secret, date, region, service);
    let mut keys = keys();
    if !keys.iter().any(|e| e.is_for(secret, date, region, service)) {
        keys.retain(|e| *e.date == *date);
        if keys.len() >= CAPACITY {
            keys.remove(0);
        }
        keys.push(Entry {
            secret: secret.into(),
            date: date.into(),
            region: region.into(),
            service: service.into(),
            key: key.clone(),
        });
    }
    key
}

/// AWS's derivation: `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service),
/// "aws4_request")`.
pub(crate) fn derive(secret: &str, date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k_secret = Vec::with_capacity(4 + secret.len());
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret.as_bytes());
    let mut key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k_secret), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()), part.as_bytes());
    }
    hmac::Key::new(hmac::HMAC_SHA256, key.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signature(key: &hmac::Key) -> Vec<u8> {
        hmac::sign(key, b"string to sign").as_ref().to_vec()
    }

    #[test]
    fn a_kept_key_is_the_derived_one_and_each_input_has_its_own() {
        let base = ("secret-a", "20240102", "us-east-1", "bedrock");
        let derived = signature(&derive(base.0, base.1, base.2, base.3));
        // Derived, then found.
        for _ in 0..2 {
            assert_eq!(signature(&signing_key(base.0, base.1, base.2, base.3)), derived);
        }
        // A rotated secret, another day, region or service: another key, never the kept one.
        for (s, d, r, v) in [
            ("secret-b", base.1, base.2, base.3),
            (base.0, "20240103", base.2, base.3),
            (base.0, base.1, "eu-west-1", base.3),
            (base.0, base.1, base.2, "s3"),
        ] {
            let got = signature(&signing_key(s, d, r, v));
            assert_eq!(got, signature(&derive(s, d, r, v)));
            assert_ne!(got, derived, "{d} {r} {v}");
        }
        assert_eq!(signature(&signing_key(base.0, base.1, base.2, base.3)), derived);
    }

    #[test]
    fn the_cache_stays_bounded() {
        for i in 0..3 * CAPACITY {
            let secret = format!("rotating-{i}");
            let key = signing_key(&secret, "20240105", "us-east-1", "bedrock");
            assert_eq!(signature(&key), signature(&derive(&secret, "20240105", "us-east-1", "bedrock")));
            assert!(keys().len() <= CAPACITY);
        }
    }
}
