//! Numbers from outside — upstream headers and bodies, the management API, rows already in the
//! database — are bounded before they become durations, counts or prices: each bad one costs one
//! request (or one row), never the process or the next start.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

fn alive(p: &mut Proc) -> bool {
    p.child.try_wait().unwrap().is_none()
}

fn tmp_db(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("sluice-numbers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.db"));
    let _ = std::fs::remove_file(&path);
    format!("sqlite://{}", path.display())
}

#[test]
fn an_upstream_retry_after_beyond_any_duration_is_answered_and_serving_goes_on() {
    let m = mock(&[]);
    let mut g = gateway(
        r#"
model_list:
  - model_name: forever
    litellm_params:
      model: openai/retry-after-18446744073709551615
      api_base: "{MOCK}"
  - model_name: fine
    litellm_params:
      model: openai/fake
      api_base: "{MOCK}"
general_settings:
  master_key: sk-1234
router_settings:
  num_retries: 0
"#,
        Some(&m),
    );
    for _ in 0..3 {
        let r = post(g.addr, "/chat/completions", &chat_for("forever", false));
        assert_eq!(r.status, 429, "{}", r.text());
        r.error_message();
        let ok = post(g.addr, "/chat/completions", &chat_for("fine", false));
        assert_eq!(ok.status, 200, "{}", ok.text());
    }
    assert!(alive(&mut g), "the gateway exited: {}", g.stderr());
    let log = g.stderr();
    assert!(log.contains("waiting 3600 s instead"), "the clamp is logged: {log}");
    assert!(!log.contains("panic"), "no panic, contained or not: {log}");
}

#[test]
fn management_numbers_that_would_brick_a_start_are_refused_with_the_field_named() {
    let db = tmp_db("refused");
    let config = format!(
        r#"
model_list:
  - model_name: fine
    litellm_params:
      model: openai/fake
      mock_response: hello
general_settings:
  master_key: sk-1234
  database_url: "{db}"
  store_model_in_db: true
"#
    );
    let mut g = gateway(&config, None);
    let huge = "9223372036854775807s";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "/model/new",
            r#"{"model_name":"slow","litellm_params":{"model":"openai/x","api_base":"http://127.0.0.1:9/","timeout":1e30}}"#
                .into(),
            "litellm_params.timeout",
        ),
        (
            "/model/new",
            r#"{"model_name":"slow","litellm_params":{"model":"openai/x","api_base":"http://127.0.0.1:9/","stream_timeout":"inf"}}"#.into(),
            "litellm_params.stream_timeout",
        ),
        (
            "/model/new",
            r#"{"model_name":"slow","litellm_params":{"model":"openai/x","api_base":"http://127.0.0.1:9/","rpm":-1}}"#
                .into(),
            "litellm_params.rpm",
        ),
        (
            "/model/new",
            r#"{"model_name":"slow","litellm_params":{"model":"openai/x","api_base":"http://127.0.0.1:9/","api_key":"a\nb"}}"#
                .into(),
            "litellm_params.api_key",
        ),
        ("/key/generate", format!(r#"{{"duration":"{huge}"}}"#), "duration"),
        ("/key/generate", format!(r#"{{"budget_duration":"{huge}"}}"#), "budget_duration"),
        ("/key/generate", r#"{"max_budget":"inf"}"#.into(), "max_budget"),
        ("/key/generate", r#"{"rpm_limit":1e30}"#.into(), "rpm_limit"),
        ("/key/generate", r#"{"tpm_limit":"99999999999999999999"}"#.into(), "tpm_limit"),
        ("/team/new", format!(r#"{{"budget_duration":"{huge}"}}"#), "budget_duration"),
        ("/team/new", r#"{"max_budget":1e300}"#.into(), "max_budget"),
        ("/user/new", format!(r#"{{"budget_duration":"{huge}"}}"#), "budget_duration"),
        ("/user/new", r#"{"max_parallel_requests":1e20}"#.into(), "max_parallel_requests"),
    ];
    for (path, body, field) in &cases {
        let r = post(g.addr, path, body);
        assert_eq!(r.status, 400, "{path} {body}: {}", r.text());
        let msg = r.error_message();
        assert_eq!(r.json()["error"]["param"], *field, "{path} {body}: {msg}");
    }
    // The updates check the same fields.
    let key = post(g.addr, "/key/generate", "{}").json()["key"].as_str().unwrap().to_string();
    let r = post(g.addr, "/key/update", &format!(r#"{{"key":"{key}","duration":"{huge}"}}"#));
    assert_eq!((r.status, r.json()["error"]["param"].as_str()), (400, Some("duration")), "{}", r.text());
    let team = post(g.addr, "/team/new", "{}").json()["team_id"].as_str().unwrap().to_string();
    let r = post(g.addr, "/team/update", &format!(r#"{{"team_id":"{team}","budget_duration":"{huge}"}}"#));
    assert_eq!((r.status, r.json()["error"]["param"].as_str()), (400, Some("budget_duration")), "{}", r.text());
    let user = post(g.addr, "/user/new", "{}").json()["user_id"].as_str().unwrap().to_string();
    let r = post(g.addr, "/user/update", &format!(r#"{{"user_id":"{user}","budget_duration":"{huge}"}}"#));
    assert_eq!((r.status, r.json()["error"]["param"].as_str()), (400, Some("budget_duration")), "{}", r.text());

    // In-range values still go through, and the next start is unaffected.
    let r = post(g.addr, "/key/generate", r#"{"duration":"36500d","budget_duration":"1200mo","rpm_limit":1e6}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(alive(&mut g), "{}", g.stderr());
    assert!(!g.stderr().contains("panic"), "no panic, contained or not: {}", g.stderr());
    drop(g);
    let again = gateway(&config, None);
    let r = request(again.addr, "POST", "/chat/completions", Some(&key), chat_for("fine", false).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn bad_rows_already_in_the_database_are_skipped_at_start_and_the_rest_is_served() {
    let db = tmp_db("seeded");
    let row = |v: serde_json::Value| serde_json::from_value(v).unwrap();
    let good_key = "sk-good-seeded-key";
    let odd_key = "sk-odd-seeded-key";
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = sluice_store::Store::open(&db, 2).await.unwrap();
        let model = |id: &str, params: serde_json::Value| sluice_store::ModelRecord {
            model_id: id.into(),
            model_name: "stored".into(),
            litellm_params: params.as_object().unwrap().clone(),
            model_info: Default::default(),
            created_at: None,
        };
        let params = |extra: serde_json::Value| {
            let mut p = serde_json::json!({"model": "openai/fake", "mock_response": "from the database"});
            p.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            p
        };
        store.insert_model(&model("bad-timeout", params(serde_json::json!({"timeout": 1e30})))).await.unwrap();
        store.insert_model(&model("bad-cooldown", params(serde_json::json!({"cooldown_time": 1e300})))).await.unwrap();
        let unsendable_key =
            serde_json::json!({"model": "openai/x", "api_base": "http://127.0.0.1:9/", "api_key": "a\nb"});
        store.insert_model(&model("bad-api-key", unsendable_key)).await.unwrap();
        store.insert_model(&model("good", params(serde_json::json!({"timeout": 30})))).await.unwrap();
        let hash = sluice_server::access::hash_key;
        let key = |raw: &str, extra: serde_json::Value| -> sluice_store::KeyRecord {
            let mut v = serde_json::json!({
                "token": hash(raw), "key_name": null, "key_alias": null, "user_id": null, "team_id": null,
                "models": [], "spend": 1.0, "max_budget": null, "soft_budget": null,
                "budget_duration": null, "budget_reset_at": null, "expires": null, "tpm_limit": null,
                "rpm_limit": null, "max_parallel_requests": null, "model_max_budget": {}, "model_spend": {},
                "metadata": {}, "aliases": {}, "blocked": false, "created_at": null, "updated_at": null,
                "created_by": null, "updated_by": null,
            });
            v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            row(v)
        };
        store.insert_key(&key(good_key, serde_json::json!({}))).await.unwrap();
        // A budget period that ended, with a duration that no longer fits any clock: the reset
        // that follows must not take the process down.
        let odd = serde_json::json!({
            "budget_duration": "9223372036854775807s",
            "budget_reset_at": "2020-01-01T00:00:00Z",
            "rpm_limit": 9223372036854775807i64,
            "tpm_limit": 9223372036854775807i64,
            "max_parallel_requests": 9223372036854775807i64,
        });
        store.insert_key(&key(odd_key, odd)).await.unwrap();
    });
    let config = format!(
        r#"
model_list:
  - model_name: fine
    litellm_params:
      model: openai/fake
      mock_response: hello
general_settings:
  master_key: sk-1234
  database_url: "{db}"
  store_model_in_db: true
"#
    );
    let mut g = gateway(&config, None);
    for raw in [good_key, odd_key] {
        for model in ["fine", "stored"] {
            let r = request(g.addr, "POST", "/chat/completions", Some(raw), chat_for(model, false).as_bytes());
            assert_eq!(r.status, 200, "{raw} {model}: {}", r.text());
            assert_eq!(r.header("x-litellm-model-id") == Some("good"), model == "stored", "{model}");
        }
    }
    // The spend writer's budget reset has run (it ticks at least every 200 ms).
    std::thread::sleep(Duration::from_millis(800));
    let r = request(g.addr, "POST", "/chat/completions", Some(odd_key), chat_for("fine", false).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(alive(&mut g), "{}", g.stderr());
    let log = g.stderr();
    for id in ["bad-timeout", "bad-cooldown", "bad-api-key"] {
        assert!(log.contains(&format!("skipping stored model {id}")), "{id} not named in: {log}");
    }
    assert!(log.contains("no further budget resets are scheduled"), "{log}");
    assert!(!log.contains("panic"), "no panic, contained or not: {log}");
}

/// An upstream that answers every chat request with `body`, on a thread, for `n` requests.
fn upstream_answering(body: &'static str, n: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let Ok(mut s) = stream else { continue };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut request_body = vec![0; len];
            let _ = reader.read_exact(&mut request_body);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(body.as_bytes());
        }
    });
    format!("http://{addr}/")
}

#[test]
fn usage_an_upstream_overstates_is_clamped_billed_within_bounds_and_flagged() {
    const HUGE: &str = r#"{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551615,"total_tokens":18446744073709551615}}"#;
    let base = upstream_answering(HUGE, 3);
    let db = tmp_db("usage");
    let config = format!(
        r#"
model_list:
  - model_name: liar
    litellm_params:
      model: openai/liar
      api_base: "{base}"
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
general_settings:
  master_key: sk-1234
  database_url: "{db}"
  proxy_batch_write_at: 1
"#
    );
    let mut g = gateway(&config, None);
    let key = post(g.addr, "/key/generate", "{}").json()["key"].as_str().unwrap().to_string();
    let r = request(g.addr, "POST", "/chat/completions", Some(&key), chat_for("liar", false).as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    let cost: f64 = r.header("x-litellm-response-cost").unwrap().parse().unwrap();
    // At most 100M tokens each way: 100 USD in, 200 USD out.
    assert!((cost - 300.0).abs() < 1e-6, "billed {cost}");

    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let logs = get(g.addr, "/spend/logs").json();
        if let Some(row) = logs.as_array().and_then(|rows| rows.first()).cloned() {
            break row;
        }
        assert!(Instant::now() < deadline, "no spend-log row: {logs}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(row["total_tokens"], 200_000_000, "{row}");
    assert_eq!(row["prompt_tokens"], 100_000_000, "{row}");
    assert_eq!(row["metadata"]["usage_clamped"], true, "{row}");
    assert_eq!(row["metadata"]["reported_usage"]["prompt_tokens"], u64::MAX, "{row}");
    assert!(alive(&mut g), "{}", g.stderr());
    let log = g.stderr();
    assert!(log.contains("billed as 100000000"), "{log}");
    assert!(!log.contains("panic"), "no panic, contained or not: {log}");
}
