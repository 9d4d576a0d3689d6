//! IBM Cloud IAM's API-key grant against a local stand-in that follows its public protocol: a
//! form POST of `grant_type=urn:ibm:params:oauth:grant-type:apikey&apikey=…`, answered with
//! `{"access_token", "expires_in", "token_type"}`, or 400 with `errorCode`/`errorMessage`.

mod standin;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_credentials::ibm::{shared, token_with_margin};
use standin::StandIn;

/// An IAM endpoint issuing `iam-<n>` living `lifetime` seconds for the key `good-key`.
async fn iam(lifetime: u64, delay: Duration) -> StandIn {
    let n = Arc::new(AtomicU32::new(0));
    StandIn::start_slow(delay, move |req| {
        if req.path != "/identity/token" || req.header("content-type") != Some("application/x-www-form-urlencoded") {
            return (404, "application/json", "{}".into());
        }
        let grant = req.form("grant_type");
        if grant.as_deref() != Some("urn:ibm:params:oauth:grant-type:apikey")
            || req.form("apikey").as_deref() != Some("good-key")
        {
            return (
                400,
                "application/json",
                r#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}"#.into(),
            );
        }
        let n = n.fetch_add(1, Ordering::SeqCst) + 1;
        (
            200,
            "application/json",
            format!(r#"{{"access_token":"iam-{n}","expires_in":{lifetime},"token_type":"Bearer"}}"#),
        )
    })
    .await
}

/// Concurrent callers share one exchange; the token is refreshed before it expires while
/// callers go on with the one they have.
#[tokio::test]
async fn one_exchange_for_concurrent_callers_and_an_early_refresh() {
    let s = iam(3, Duration::from_millis(100)).await;
    let t = token_with_margin("good-key", &format!("{}/identity/token", s.url), Duration::from_secs(2));
    let calls: Vec<_> = (0..16).map(|_| t.clone()).map(|t| tokio::spawn(async move { t.get().await })).collect();
    for call in calls {
        let v = call.await.unwrap().unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer iam-1");
        assert!(v.is_sensitive());
    }
    assert_eq!(s.seen().len(), 1, "one IAM call for 16 concurrent callers");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let started = Instant::now();
    assert_eq!(t.get().await.unwrap().to_str().unwrap(), "Bearer iam-1");
    assert!(started.elapsed() < Duration::from_millis(50), "a caller waited for the refresh");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(t.get().await.unwrap().to_str().unwrap(), "Bearer iam-2", "refreshed before expiry");
}

/// A key IAM does not know: its code and message, never the key.
#[tokio::test]
async fn a_refused_key_says_why_without_quoting_it() {
    let s = iam(3600, Duration::ZERO).await;
    let t = shared("bad-key-very-secret", &format!("{}/identity/token", s.url));
    let e = t.get().await.unwrap_err();
    assert!(e.contains("BXNIM0415E") && e.contains("api_key"), "{e}");
    assert!(!e.contains("very-secret"), "{e}");
    let same = shared("bad-key-very-secret", &format!("{}/identity/token", s.url));
    assert!(Arc::ptr_eq(&t, &same), "deployments with one key share one cache");
}
