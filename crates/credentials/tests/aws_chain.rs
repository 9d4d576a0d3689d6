//! The AWS credential chain against local stand-ins that follow each service's public
//! protocol: STS's `AssumeRoleWithWebIdentity` and `AssumeRole` (form POST, XML answer), the ECS
//! container endpoint, EC2's IMDSv2 (token PUT, then GETs carrying it), and the shared files.

mod standin;

use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_credentials::aws::{credentials, credentials_with_margin, Credentials, Settings};
use sluice_credentials::Env;
use standin::{in_secs, sts_answer, StandIn, TempDir};

fn env(pairs: &[(&str, &str)]) -> Env {
    // No HOME: the machine's own ~/.aws never takes part; no EC2 unless a test points at one.
    let mut all: Vec<(&str, &str)> = vec![("AWS_EC2_METADATA_DISABLED", "true")];
    all.extend_from_slice(pairs);
    Env::from_pairs(&all)
}

fn keys(id: &str, secret: &str) -> Credentials {
    Credentials { access_key_id: id.into(), secret_access_key: secret.into(), session_token: None }
}

/// An STS stand-in answering the web identity call with `ASIA<n>` for its n-th call, living
/// `lifetime` seconds.
async fn sts_web_identity(lifetime: u64, delay: Duration) -> StandIn {
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    StandIn::start_slow(delay, move |req| {
        if req.method != "POST" || req.form("Action").as_deref() != Some("AssumeRoleWithWebIdentity") {
            return (400, "text/xml", "<ErrorResponse><Error><Code>InvalidAction</Code></Error></ErrorResponse>".into());
        }
        if req.form("WebIdentityToken").as_deref() != Some("eyJ.oidc+token/=") {
            return (400, "text/xml", "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>bad token</Message></Error></ErrorResponse>".into());
        }
        let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        (200, "text/xml", sts_answer("AssumeRoleWithWebIdentity", &format!("ASIA{n}"), "web-secret", "web-session", &in_secs(lifetime)))
    })
    .await
}

/// IRSA: the token file and the role from the environment, exchanged at STS; concurrent callers
/// share one call, and the credentials are refreshed before they expire without a caller waiting.
#[tokio::test]
async fn web_identity_from_the_environment_is_fetched_once_and_refreshed_early() {
    let sts = sts_web_identity(3, Duration::from_millis(100)).await;
    let dir = TempDir::new("irsa");
    let token = dir.file("token", "eyJ.oidc+token/=\n");
    let e = env(&[
        ("AWS_WEB_IDENTITY_TOKEN_FILE", &token),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/bedrock"),
        ("AWS_ROLE_SESSION_NAME", "pod-a"),
        ("AWS_ENDPOINT_URL_STS", &sts.url),
    ]);
    // Lives 3 s with a 2 s margin: due for a refresh after 1.5 s.
    let c = credentials_with_margin(Settings::default(), e, Duration::from_secs(2));
    let calls: Vec<_> = (0..20).map(|_| c.clone()).map(|c| tokio::spawn(async move { c.get().await })).collect();
    for call in calls {
        let got = call.await.unwrap().unwrap();
        assert_eq!((got.access_key_id.as_str(), got.session_token.as_deref()), ("ASIA1", Some("web-session")));
    }
    let seen = sts.seen();
    assert_eq!(seen.len(), 1, "one STS call for 20 concurrent callers");
    assert_eq!(seen[0].form("RoleArn").as_deref(), Some("arn:aws:iam::123456789012:role/bedrock"));
    assert_eq!(seen[0].form("RoleSessionName").as_deref(), Some("pod-a"));
    assert_eq!(seen[0].form("Version").as_deref(), Some("2011-06-15"));
    assert!(seen[0].header("authorization").is_none(), "the web identity call is not signed");

    tokio::time::sleep(Duration::from_millis(1700)).await;
    // Due but valid: answered at once with the current credentials while one refresh runs.
    let started = Instant::now();
    assert_eq!(c.get().await.unwrap().access_key_id, "ASIA1");
    assert!(started.elapsed() < Duration::from_millis(50), "a caller waited for the refresh");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.get().await.unwrap().access_key_id, "ASIA2", "refreshed before expiry");
    assert_eq!(sts.seen().len(), 2);
}

/// LiteLLM's `aws_role_name` + `aws_session_name`: STS AssumeRole signed with the base keys.
#[tokio::test]
async fn assume_role_is_signed_with_the_base_credentials() {
    let sts = StandIn::start(|req| {
        if req.form("Action").as_deref() != Some("AssumeRole") {
            return (400, "text/xml", String::new());
        }
        (200, "text/xml", sts_answer("AssumeRole", "ASIAROLE", "role-secret", "role-token", &in_secs(3600)))
    })
    .await;
    let settings = Settings {
        keys: Some(keys("AKIDBASE", "base-secret")),
        role_arn: Some("arn:aws:iam::1:role/r".into()),
        session_name: Some("litellm-session".into()),
        sts_endpoint: Some(sts.url.clone()),
        region: Some("eu-west-1".into()),
        ..Settings::default()
    };
    let got = credentials(settings, env(&[])).get().await.unwrap();
    assert_eq!(*got, Credentials { session_token: Some("role-token".into()), ..keys("ASIAROLE", "role-secret") });
    let seen = sts.seen();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.form("RoleSessionName").as_deref(), Some("litellm-session"));
    assert_eq!(req.form("DurationSeconds").as_deref(), Some("3600"));
    // The signature is the one SigV4 gives these bytes with the base keys, for STS in the region.
    let auth = req.header("authorization").unwrap();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDBASE/") && auth.contains("/eu-west-1/sts/aws4_request"),
        "{auth}"
    );
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let url = format!("{}/", sts.url);
    let matches = (now - 10..=now).any(|t| {
        let signed = sluice_sigv4::sign(
            "sts",
            sluice_sigv4::PathRule::EncodeTwice,
            "POST",
            &url,
            &[],
            req.body.as_bytes(),
            "eu-west-1",
            &keys("AKIDBASE", "base-secret"),
            t,
        )
        .unwrap();
        signed[0].1 == auth
    });
    assert!(matches, "the AssumeRole signature does not verify");
}

/// STS's refusal reaches the error with its code and message, and no secret.
#[tokio::test]
async fn a_refusal_says_which_source_and_why() {
    let sts = StandIn::start(|_| {
        (403, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error></ErrorResponse>".into())
    })
    .await;
    let settings = Settings {
        keys: Some(keys("AKIDBASE", "base-very-secret")),
        role_arn: Some("arn:aws:iam::1:role/r".into()),
        sts_endpoint: Some(sts.url.clone()),
        ..Settings::default()
    };
    let e = credentials(settings, env(&[])).get().await.unwrap_err();
    assert!(e.contains("aws_role_name") && e.contains("AccessDenied") && e.contains("sts:AssumeRole"), "{e}");
    assert!(!e.contains("base-very-secret"), "{e}");
}

/// Profiles from the shared files: keys, a named profile, a role with a source profile.
#[tokio::test]
async fn shared_files_and_profiles() {
    let sts = StandIn::start(|req| {
        let signed_by_dev = req.header("authorization").is_some_and(|a| a.contains("Credential=AKIDDEV/"));
        match (req.form("Action").as_deref(), signed_by_dev) {
            (Some("AssumeRole"), true) => {
                (200, "text/xml", sts_answer("AssumeRole", "ASIAOPS", "ops-secret", "ops-token", &in_secs(3600)))
            }
            _ => (403, "text/xml", "<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>".into()),
        }
    })
    .await;
    let dir = TempDir::new("profiles");
    let creds_file = dir.file("credentials", "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n[dev]\naws_access_key_id=AKIDDEV\naws_secret_access_key=dev-secret\naws_session_token=dev-token\n");
    let config_file = dir.file("config", "[profile ops]\nrole_arn = arn:aws:iam::1:role/ops\nsource_profile = dev\nrole_session_name = ops-session\n[profile sso]\nsso_session = corp\n");
    let files = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds_file.as_str()),
        ("AWS_CONFIG_FILE", config_file.as_str()),
        ("AWS_ENDPOINT_URL_STS", sts.url.as_str()),
    ];
    let with = |more: &[(&'static str, &'static str)]| {
        let mut all = files.to_vec();
        all.extend_from_slice(more);
        env(&all)
    };
    let default = credentials(Settings::default(), with(&[])).get().await.unwrap();
    assert_eq!(default.access_key_id, "AKIDDEFAULT");
    let dev = credentials(Settings::default(), with(&[("AWS_PROFILE", "dev")])).get().await.unwrap();
    assert_eq!((dev.access_key_id.as_str(), dev.session_token.as_deref()), ("AKIDDEV", Some("dev-token")));
    // aws_profile_name wins over the environment's keys.
    let named = Settings { profile: Some("dev".into()), ..Settings::default() };
    let got = credentials(named, with(&[("AWS_ACCESS_KEY_ID", "AKIDENV"), ("AWS_SECRET_ACCESS_KEY", "s")]))
        .get()
        .await
        .unwrap();
    assert_eq!(got.access_key_id, "AKIDDEV");
    let ops =
        credentials(Settings { profile: Some("ops".into()), ..Settings::default() }, with(&[])).get().await.unwrap();
    assert_eq!(ops.access_key_id, "ASIAOPS");
    assert_eq!(sts.seen()[0].form("RoleSessionName").as_deref(), Some("ops-session"));
    let e = credentials(Settings { profile: Some("nope".into()), ..Settings::default() }, with(&[]))
        .get()
        .await
        .unwrap_err();
    assert!(e.contains("\"nope\"") && e.contains("aws_profile_name") && e.contains(&creds_file), "{e}");
    let e = credentials(Settings::default(), with(&[("AWS_PROFILE", "sso")])).get().await.unwrap_err();
    assert!(e.contains("sso_session") && e.contains("not support"), "{e}");
}

/// The environment's keys come before everything after them in the chain.
#[tokio::test]
async fn the_chain_takes_the_first_source_configured() {
    let never = StandIn::start(|_| (500, "text/plain", "must not be asked".into())).await;
    let full_uri = format!("{}/creds", never.url);
    let e = env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "env-secret"),
        ("AWS_SESSION_TOKEN", "env-token"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", &never.url),
    ]);
    let got = credentials(Settings::default(), e).get().await.unwrap();
    assert_eq!((got.access_key_id.as_str(), got.session_token.as_deref()), ("AKIDENV", Some("env-token")));
    // Keys in the config come first of all.
    let e = env(&[("AWS_ACCESS_KEY_ID", "AKIDENV"), ("AWS_SECRET_ACCESS_KEY", "env-secret")]);
    let got =
        credentials(Settings { keys: Some(keys("AKIDCONF", "c")), ..Settings::default() }, e).get().await.unwrap();
    assert_eq!(got.access_key_id, "AKIDCONF");
    assert!(never.seen().is_empty());
}

/// ECS: the full URI with the authorization token read from its file.
#[tokio::test]
async fn ecs_container_credentials() {
    let ecs = StandIn::start(|req| match (req.path.as_str(), req.header("authorization")) {
        ("/v2/credentials/task", Some("ecs-auth-token")) => (
            200,
            "application/json",
            format!(r#"{{"RoleArn":"arn:aws:iam::1:role/task","AccessKeyId":"ASIAECS","SecretAccessKey":"ecs-secret","Token":"ecs-token","Expiration":"{}"}}"#, in_secs(3600)),
        ),
        _ => (401, "application/json", r#"{"code":"AccessDenied"}"#.into()),
    })
    .await;
    let dir = TempDir::new("ecs");
    let token_file = dir.file("token", "ecs-auth-token\n");
    let full = format!("{}/v2/credentials/task", ecs.url);
    let e =
        env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full), ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file)]);
    let got = credentials(Settings::default(), e).get().await.unwrap();
    assert_eq!((got.access_key_id.as_str(), got.session_token.as_deref()), ("ASIAECS", Some("ecs-token")));
    // The token given directly works too; a wrong one is the endpoint's 401, named.
    let e = env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full), ("AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong")]);
    let err = credentials(Settings::default(), e).get().await.unwrap_err();
    assert!(err.contains("ECS container credentials") && err.contains("401"), "{err}");
}

/// EC2 IMDSv2: the session token from a PUT, then the role and its credentials with it.
#[tokio::test]
async fn ec2_imds_v2() {
    let imds = StandIn::start(|req| {
        let token = req.header("x-aws-ec2-metadata-token");
        match (req.method.as_str(), req.path.as_str()) {
            ("PUT", "/latest/api/token") if req.header("x-aws-ec2-metadata-token-ttl-seconds").is_some() => {
                (200, "text/plain", "imds-session-token".into())
            }
            (_, _) if token != Some("imds-session-token") => (401, "text/plain", String::new()),
            ("GET", "/latest/meta-data/iam/security-credentials/") => (200, "text/plain", "instance-role\n".into()),
            ("GET", "/latest/meta-data/iam/security-credentials/instance-role") => (
                200,
                "text/plain",
                format!(r#"{{"Code":"Success","LastUpdated":"2026-01-01T00:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAEC2","SecretAccessKey":"ec2-secret","Token":"ec2-token","Expiration":"{}"}}"#, in_secs(21600)),
            ),
            _ => (404, "text/plain", String::new()),
        }
    })
    .await;
    let e = Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url)]);
    let got = credentials(Settings::default(), e).get().await.unwrap();
    assert_eq!((got.access_key_id.as_str(), got.session_token.as_deref()), ("ASIAEC2", Some("ec2-token")));
    let seen = imds.seen();
    assert_eq!(seen.iter().map(|s| s.method.as_str()).collect::<Vec<_>>(), ["PUT", "GET", "GET"]);
    assert_eq!(seen[0].header("x-aws-ec2-metadata-token-ttl-seconds"), Some("21600"));
}

/// Whatever answers, the call is bounded: an oversized answer and a silent service both fail
/// in time, saying what happened.
#[tokio::test]
async fn answers_are_bounded_in_size_and_time() {
    let huge = StandIn::start(|_| (200, "application/json", "x".repeat(200 * 1024))).await;
    let full = format!("{}/creds", huge.url);
    let err = credentials(Settings::default(), env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full)]))
        .get()
        .await
        .unwrap_err();
    assert!(err.contains("64 KiB"), "{err}");
    let silent = StandIn::start_slow(Duration::from_secs(30), |_| (200, "text/plain", String::new())).await;
    let started = Instant::now();
    let err = credentials(Settings::default(), Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &silent.url)]))
        .get()
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert!(err.contains("did not answer within 2 s") && err.contains("AWS_ACCESS_KEY_ID"), "{err}");
}

/// `aws_web_identity_token` + `aws_role_name` (LiteLLM's): the token given in the config.
#[tokio::test]
async fn web_identity_token_from_the_config() {
    let sts = sts_web_identity(3600, Duration::ZERO).await;
    let settings = Settings {
        role_arn: Some("arn:aws:iam::1:role/r".into()),
        web_identity_token: Some("eyJ.oidc+token/=".into()),
        sts_endpoint: Some(sts.url.clone()),
        ..Settings::default()
    };
    let got = credentials(settings, env(&[])).get().await.unwrap();
    assert_eq!(got.access_key_id, "ASIA1");
    assert!(sts.seen()[0].form("RoleSessionName").is_some_and(|s| s.starts_with("sluice-")));
}
