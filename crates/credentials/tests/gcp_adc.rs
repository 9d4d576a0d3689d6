//! Google's Application Default Credentials against local stand-ins: the GCE metadata server
//! (`Metadata-Flavor: Google`) and the OAuth token endpoint's refresh-token grant for gcloud's
//! user credentials.

mod standin;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_credentials::gcp::{token, token_with_margin};
use sluice_credentials::Env;
use standin::{StandIn, TempDir};

/// A metadata server issuing `ya29.meta-<n>` living `lifetime` seconds.
async fn metadata(lifetime: u64, delay: Duration) -> StandIn {
    let n = Arc::new(AtomicU32::new(0));
    StandIn::start_slow(delay, move |req| {
        if req.header("metadata-flavor") != Some("Google") {
            return (403, "text/html", "Missing Metadata-Flavor:Google header.".into());
        }
        if req.path != "/computeMetadata/v1/instance/service-accounts/default/token" {
            return (404, "text/html", String::new());
        }
        let n = n.fetch_add(1, Ordering::SeqCst) + 1;
        (
            200,
            "application/json",
            format!(r#"{{"access_token":"ya29.meta-{n}","expires_in":{lifetime},"token_type":"Bearer"}}"#),
        )
    })
    .await
}

/// GKE workload identity: no key anywhere, so the metadata server (at GCE_METADATA_HOST) gives
/// the token; concurrent callers share one fetch, and it is refreshed before expiry.
#[tokio::test]
async fn metadata_server_token_shared_and_refreshed_early() {
    let md = metadata(3, Duration::from_millis(100)).await;
    let env = Env::from_pairs(&[("GCE_METADATA_HOST", &md.addr)]);
    let t = token_with_margin(String::new(), env, Duration::from_secs(2));
    let calls: Vec<_> = (0..16).map(|_| t.clone()).map(|t| tokio::spawn(async move { t.get().await })).collect();
    for call in calls {
        let v = call.await.unwrap().unwrap();
        assert_eq!(v.to_str().unwrap(), "Bearer ya29.meta-1");
        assert!(v.is_sensitive());
    }
    assert_eq!(md.seen().len(), 1, "one metadata call for 16 concurrent callers");
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let started = Instant::now();
    assert_eq!(t.get().await.unwrap().to_str().unwrap(), "Bearer ya29.meta-1");
    assert!(started.elapsed() < Duration::from_millis(50), "a caller waited for the refresh");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(t.get().await.unwrap().to_str().unwrap(), "Bearer ya29.meta-2", "refreshed before expiry");
}

/// An OAuth token endpoint that trades gcloud's refresh token.
async fn oauth() -> StandIn {
    StandIn::start(|req| {
        let ok = req.form("grant_type").as_deref() == Some("refresh_token")
            && req.form("client_id").as_deref() == Some("test-client.apps.googleusercontent.com")
            && req.form("client_secret").as_deref() == Some("test-client-secret")
            && req.form("refresh_token").as_deref() == Some("1//refresh+token");
        match ok {
            true => (200, "application/json", r#"{"access_token":"ya29.user","expires_in":3599,"scope":"https://www.googleapis.com/auth/cloud-platform","token_type":"Bearer"}"#.into()),
            false => (400, "application/json", r#"{"error":"invalid_grant","error_description":"Bad Request"}"#.into()),
        }
    })
    .await
}

fn user_file(token_uri: &str, refresh: &str) -> String {
    format!(
        r#"{{"account":"","client_id":"test-client.apps.googleusercontent.com","client_secret":"test-client-secret","refresh_token":"{refresh}","type":"authorized_user","universe_domain":"googleapis.com","token_uri":"{token_uri}/token"}}"#
    )
}

/// gcloud's `application_default_credentials.json` (under CLOUDSDK_CONFIG), and the same file
/// named by GOOGLE_APPLICATION_CREDENTIALS or given inline as `vertex_credentials`.
#[tokio::test]
async fn gcloud_user_credentials() {
    let endpoint = oauth().await;
    let md = metadata(3600, Duration::ZERO).await;
    let dir = TempDir::new("gcloud");
    dir.file("application_default_credentials.json", &user_file(&endpoint.url, "1//refresh+token"));
    let env = Env::from_pairs(&[("CLOUDSDK_CONFIG", &dir.path()), ("GCE_METADATA_HOST", &md.addr)]);
    assert_eq!(token(String::new(), env).get().await.unwrap().to_str().unwrap(), "Bearer ya29.user");
    assert!(md.seen().is_empty(), "the gcloud file comes before the metadata server");
    let seen = endpoint.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("POST", "/token"));

    let named = dir.file("user.json", &user_file(&endpoint.url, "1//refresh+token"));
    let env = Env::from_pairs(&[("GOOGLE_APPLICATION_CREDENTIALS", &named)]);
    assert_eq!(token(String::new(), env).get().await.unwrap().to_str().unwrap(), "Bearer ya29.user");
    let inline = user_file(&endpoint.url, "1//refresh+token");
    assert_eq!(token(inline, Env::default()).get().await.unwrap().to_str().unwrap(), "Bearer ya29.user");

    // A revoked refresh token: the endpoint's words, not the token.
    let revoked = user_file(&endpoint.url, "1//revoked-very-secret");
    let e = token(revoked, Env::default()).get().await.unwrap_err();
    assert!(e.contains("invalid_grant") && e.contains("refresh token") && !e.contains("revoked-very-secret"), "{e}");
}

/// Nothing configured and no metadata server: the error lists what to set.
#[tokio::test]
async fn nothing_found_says_what_to_set() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let e = token(String::new(), Env::from_pairs(&[("GCE_METADATA_HOST", &closed)])).get().await.unwrap_err();
    for what in [
        "vertex_credentials",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "gcloud auth application-default login",
        "metadata server",
    ] {
        assert!(e.contains(what), "{what}: {e}");
    }
    let e = token(r#"{"type":"external_account"}"#.into(), Env::default()).get().await.unwrap_err();
    assert!(e.contains("external_account"), "{e}");
}
