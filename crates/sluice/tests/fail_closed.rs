//! Failing closed at start, end to end with the real binary: a security secret that did not
//! arrive stops the start, settings sluice would not enforce stop it unless told to go on, open
//! mode warns, and the allowlists and the user-param rule hold on both HTTP paths.

mod common;
use common::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `sluice <args>` (with `vars` set and `unset` removed from its environment) until it exits;
/// its exit code and what it wrote.
fn run_to_exit(args: &[&str], vars: &[(&str, &str)], unset: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    for k in unset {
        cmd.env_remove(k);
    }
    let mut child = cmd.spawn().expect("start sluice");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sluice {args:?} did not exit: it started when it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    (status.code().unwrap_or(-1), out)
}

fn config_file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sluice-fail-closed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn serve_args(config: &str) -> Vec<&str> {
    vec!["--config", config, "--host", "127.0.0.1", "--port", "0", "--num_workers", "1"]
}

const MODELS: &str = "model_list:\n  - model_name: fake-openai-endpoint\n    litellm_params:\n      model: openai/fake\n      api_key: fake-key\n      api_base: {MOCK}\n";

#[test]
fn an_unset_master_key_variable_stops_the_start_naming_it() {
    let cfg = config_file(
        "unset-master.yaml",
        &format!(
            "{}general_settings:\n  master_key: os.environ/SLUICE_TEST_MASTER_KEY_NOT_MOUNTED\n",
            MODELS.replace("{MOCK}", "http://127.0.0.1:9/")
        ),
    );
    let (code, out) =
        run_to_exit(&serve_args(&cfg), &[], &["SLUICE_TEST_MASTER_KEY_NOT_MOUNTED", "LITELLM_MASTER_KEY"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("general_settings.master_key: environment variable SLUICE_TEST_MASTER_KEY_NOT_MOUNTED is not set"),
        "{out}"
    );
    assert!(!out.contains("listening on"), "{out}");

    // A secret mounted as an empty file is no better; a real one starts (and is never printed).
    let (code, out) = run_to_exit(&serve_args(&cfg), &[("SLUICE_TEST_MASTER_KEY_NOT_MOUNTED", "")], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("SLUICE_TEST_MASTER_KEY_NOT_MOUNTED is set but empty"), "{out}");
}

#[test]
fn an_unset_database_url_variable_stops_the_start_too() {
    let cfg = config_file(
        "unset-db.yaml",
        "general_settings:\n  master_key: sk-1234\n  database_url: os.environ/SLUICE_TEST_DB_URL_NOT_MOUNTED\n",
    );
    let (code, out) = run_to_exit(&serve_args(&cfg), &[], &["SLUICE_TEST_DB_URL_NOT_MOUNTED"]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("general_settings.database_url: environment variable SLUICE_TEST_DB_URL_NOT_MOUNTED"),
        "{out}"
    );
}

#[test]
fn no_master_key_at_all_starts_open_with_a_warning() {
    let m = mock(&[]);
    let g = gateway(MODELS, Some(&m));
    let r = request(g.addr, "POST", "/chat/completions", None, CHAT.as_bytes());
    assert_eq!(r.status, 200, "open mode admits callers without a key: {}", r.text());
    assert!(g.stderr().contains("NO MASTER KEY IS SET"), "{}", g.stderr());
}

const GUARDRAILS: &str =
    "guardrails:\n  - guardrail_name: pii\n    litellm_params:\n      guardrail: presidio\n      mode: pre_call\n";

#[test]
fn a_guardrails_config_refuses_to_start_and_starts_with_the_flag() {
    let text = format!(
        "{}{GUARDRAILS}general_settings:\n  master_key: sk-1234\n",
        MODELS.replace("{MOCK}", "http://127.0.0.1:9/")
    );
    let cfg = config_file("guardrails.yaml", &text);
    let (code, out) = run_to_exit(&serve_args(&cfg), &[], &["SLUICE_ALLOW_UNENFORCED_SETTINGS"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("refusing to start: 1 setting(s) would deny or limit something"), "{out}");
    assert!(out.contains("guardrails: guardrails (content filters"), "{out}");
    assert!(out.contains("--allow-unenforced-settings"), "the message says the way past it: {out}");

    let mut args = serve_args(&cfg);
    args.push("--allow-unenforced-settings");
    let g = spawn(&args, "unenforced-flag");
    assert_eq!(get(g.addr, "/health/liveliness").status, 200);
    assert!(
        g.stderr().contains("NOT ENFORCED (started with --allow-unenforced-settings): guardrails:"),
        "{}",
        g.stderr()
    );
    drop(g);

    // The environment variable does the same, for deployments that cannot change the command.
    let g = start_with(&serve_args(&cfg), &[("SLUICE_ALLOW_UNENFORCED_SETTINGS", "1")]);
    assert_eq!(get(g.addr, "/health/liveliness").status, 200);
    assert!(g.stderr().contains("NOT ENFORCED"), "{}", g.stderr());
    // And "0" means no.
    let (code, out) = run_to_exit(&serve_args(&cfg), &[("SLUICE_ALLOW_UNENFORCED_SETTINGS", "0")], &[]);
    assert_eq!(code, 2, "{out}");
}

/// Starts `sluice <args>` with `vars` in its environment and waits until it listens.
fn start_with(args: &[&str], vars: &[(&str, &str)]) -> Proc {
    common::spawn_with(args, "fail-closed", vars)
}

/// A chat request sent chunked, which the direct HTTP/1.1 path leaves to hyper.
fn chunked_chat(path: &str, key: &str, extra_header: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\n{extra_header}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{CHAT}\r\n0\r\n\r\n",
        CHAT.len()
    )
    .into_bytes()
}

/// A chat request with a length, which the direct path serves itself.
fn sized_chat(path: &str, key: &str, extra_header: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\n{extra_header}Content-Length: {}\r\n\r\n{CHAT}",
        CHAT.len()
    )
    .into_bytes()
}

#[test]
fn allowed_routes_serve_only_the_listed_paths_on_both_http_paths() {
    let m = mock(&[]);
    let g = gateway(
        &format!("{MODELS}general_settings:\n  master_key: sk-1234\n  allowed_routes: [\"/chat/completions\"]\n"),
        Some(&m),
    );
    for request in [sized_chat("/chat/completions", "sk-1234", ""), chunked_chat("/chat/completions", "sk-1234", "")] {
        let r = raw(g.addr, &request);
        assert_eq!(r.status, 200, "{}", r.text());
    }
    for request in
        [sized_chat("/v1/chat/completions", "sk-1234", ""), chunked_chat("/v1/chat/completions", "sk-1234", "")]
    {
        let r = raw(g.addr, &request);
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.error_message(), "Access forbidden: Route /v1/chat/completions not allowed");
        assert_eq!(r.json()["error"]["type"], "auth_error");
    }
    let r = get(g.addr, "/key/info");
    assert_eq!((r.status, r.error_message()), (403, "Access forbidden: Route /key/info not allowed".to_string()));
    assert_eq!(get(g.addr, "/health/liveliness").status, 200, "probes are not behind the allowlist");
    assert_eq!(mock_stats(&m)["requests"], 2, "refused requests never reach the upstream: {}", mock_stats(&m));
}

#[test]
fn allowed_ips_refuse_other_clients_and_honour_x_forwarded_for_when_told() {
    let m = mock(&[]);
    let base = format!("{MODELS}general_settings:\n  master_key: sk-1234\n  allowed_ips: [\"10.20.0.0/16\"]\n");
    let g = gateway(&base, Some(&m));
    // The forwarded header is not trusted unless the config says so.
    for request in [
        sized_chat("/chat/completions", "sk-1234", "X-Forwarded-For: 10.20.1.1\r\n"),
        chunked_chat("/chat/completions", "sk-1234", "X-Forwarded-For: 10.20.1.1\r\n"),
    ] {
        let r = raw(g.addr, &request);
        assert_eq!(r.status, 403, "{}", r.text());
        assert_eq!(r.error_message(), "Access forbidden: IP address 127.0.0.1 not allowed.");
    }
    assert_eq!(get(g.addr, "/v1/models").status, 403);
    assert_eq!(get(g.addr, "/health/readiness").status, 200, "probes come from the orchestrator's address");
    drop(g);

    let g = gateway(&format!("{base}  use_x_forwarded_for: true\n"), Some(&m));
    for request in [
        sized_chat("/chat/completions", "sk-1234", "X-Forwarded-For: 10.20.1.1\r\n"),
        chunked_chat("/chat/completions", "sk-1234", "X-Forwarded-For: 10.20.1.1\r\n"),
    ] {
        assert_eq!(raw(g.addr, &request).status, 200);
    }
    let r = raw(g.addr, &sized_chat("/chat/completions", "sk-1234", "X-Forwarded-For: 192.168.1.1\r\n"));
    assert_eq!(
        (r.status, r.error_message()),
        (403, "Access forbidden: IP address 192.168.1.1 not allowed.".to_string())
    );
    let r = raw(g.addr, &sized_chat("/chat/completions", "sk-1234", ""));
    assert_eq!(r.status, 403, "no header: the connection's own address, which is not allowed");
}

#[test]
fn enforce_user_param_refuses_virtual_key_requests_without_a_user() {
    let m = mock(&[]);
    let g =
        gateway(&format!("{MODELS}general_settings:\n  master_key: sk-1234\n  enforce_user_param: true\n"), Some(&m));
    let created = post(g.addr, "/key/generate", "{}");
    assert_eq!(created.status, 200, "{}", created.text());
    let key = created.json()["key"].as_str().unwrap().to_string();

    for request in [sized_chat("/chat/completions", &key, ""), chunked_chat("/chat/completions", &key, "")] {
        let r = raw(g.addr, &request);
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.error_message(), "Authentication Error, 'user' param not passed in. 'enforce_user_param'=True");
    }
    let with_user =
        r#"{"model":"fake-openai-endpoint","user":"end-user-1","messages":[{"role":"user","content":"hi"}]}"#;
    let r = request(g.addr, "POST", "/chat/completions", Some(&key), with_user.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    // As in LiteLLM, the master key is not held to it.
    assert_eq!(post(g.addr, "/chat/completions", CHAT).status, 200);
}

#[test]
fn a_deployment_sluice_cannot_serve_fails_its_own_requests_only() {
    let m = mock(&[]);
    let g = gateway(
        &format!(
            "{MODELS}  - model_name: half-written\n    litellm_params:\n      model: azure/\n      api_base: https://example.openai.azure.com/\ngeneral_settings:\n  master_key: sk-1234\n"
        ),
        Some(&m),
    );
    assert!(
        g.stderr().contains("model_list[1].litellm_params.model: \"azure/\" names the provider but no model"),
        "{}",
        g.stderr()
    );
    let r = post(g.addr, "/chat/completions", &chat_for("half-written", false));
    assert_eq!(r.status, 500, "{}", r.text());
    let msg = r.error_message();
    assert!(msg.contains("Deployment model_list[1] of model group \"half-written\" cannot serve"), "{msg}");
    assert_eq!(post(g.addr, "/chat/completions", CHAT).status, 200, "the rest of the config serves");
}

#[test]
fn check_reports_refusals_and_strict_gates_on_anything_ignored() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let vars = [
        ("LITELLM_MASTER_KEY", "sk-example"),
        ("DATABASE_URL", "postgresql://u:p@127.0.0.1:9/x"),
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_PASSWORD", "pw"),
        // production.yaml alerts to Slack: without its webhook the start stops.
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/x"),
        // multi-provider.yaml logs to Langfuse: without a project's keys the start stops.
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-example"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-example"),
    ];
    let unset = ["SLUICE_ALLOW_UNENFORCED_SETTINGS"];
    let check = |args: &[&str]| run_to_exit(&[&["check"], args].concat(), &vars, &unset);

    let production = format!("{root}/litellm/production.yaml");
    let (code, out) = check(&["--config", &production]);
    assert_eq!(code, 3, "{out}");
    for needle in ["  guardrails: ", "  litellm_settings.max_internal_user_budget: "] {
        assert!(out.contains(needle), "{needle} in {out}");
    }
    let (code, out) = check(&["--config", &production, "--allow-unenforced-settings"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = check(&["--config", &production, "--allow-unenforced-settings", "--strict"]);
    assert_eq!(code, 4, "{out}");

    // Every setting of multi-provider.yaml is acted on (its Langfuse logging included).
    let multi = format!("{root}/litellm/multi-provider.yaml");
    let (code, out) = check(&["--config", &multi, "--strict"]);
    assert_eq!(code, 0, "{out}");
    // Only ignored settings (a callback sluice does not run): fine, unless strict.
    let ignored = config_file(
        "ignored.yaml",
        "model_list: []\ngeneral_settings:\n  master_key: sk-1234\nlitellm_settings:\n  success_callback: [\"lunary\"]\n",
    );
    let (code, out) = check(&["--config", &ignored]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(check(&["--config", &ignored, "--strict"]).0, 4);
    // A deployment that cannot serve fails strict.
    let azure = format!("{root}/litellm/azure-openai.yaml");
    assert_eq!(check(&["--config", &azure]).0, 0);
    let (code, out) = check(&["--config", &azure, "--strict"]);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("1 deployment(s) that cannot serve"), "{out}");
    // The seed's config is clean.
    let (code, out) = check(&["--config", &format!("{root}/seed-openai.yaml"), "--strict"]);
    assert_eq!(code, 0, "{out}");
    // A misspelled guard: refused, with the suggestion.
    let typo = config_file("typo.yaml", "general_settings:\n  maser_key: sk-1234\n");
    let (code, out) = check(&["--config", &typo]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("general_settings.maser_key: unknown setting (did you mean master_key?)"), "{out}");
    assert!(!out.contains("sk-1234"), "values are not echoed: {out}");
}
