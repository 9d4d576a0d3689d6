//! Runs `sluice load` against a tiny in-process hyper server on 127.0.0.1:0 that answers 200 to
//! chat/completions (JSON, or SSE when asked to stream) and 500 to /fail, and checks the counts,
//! the failure grouping, the error file and the output files.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sluice_load::LoadArgs;

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    load: LoadArgs,
}

const ERROR_BODY: &str =
    r#"{"error":{"message":"deliberate failure","type":"internal_error","param":null,"code":"500"}}"#;

#[derive(Default)]
struct Seen {
    chat: AtomicU64,
    bad_bodies: AtomicU64,
}

/// Starts the server on its own thread; returns its address.
fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    let s = seen.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            loop {
                let (tcp, _) = listener.accept().await.unwrap();
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| handle(req, s.clone()));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), svc).await;
                });
            }
        });
    });
    (addr, seen)
}

async fn handle(req: Request<hyper::body::Incoming>, seen: Arc<Seen>) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let auth_ok = req.headers().get("authorization").is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let reply = |status: u16, ctype: &str, body: String| {
        Ok(Response::builder().status(status).header("content-type", ctype).body(Full::new(Bytes::from(body))).unwrap())
    };
    match path.as_str() {
        "/chat/completions" => {
            seen.chat.fetch_add(1, Ordering::Relaxed);
            let v: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(_) => {
                    seen.bad_bodies.fetch_add(1, Ordering::Relaxed);
                    return reply(400, "application/json", r#"{"error":{"message":"bad json"}}"#.into());
                }
            };
            if !auth_ok || v["messages"][0]["content"].as_str().map(str::len).unwrap_or(0) < 10_000 {
                seen.bad_bodies.fetch_add(1, Ordering::Relaxed);
            }
            if v["stream"] == true {
                let mut sse =
                    String::from("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n");
                for word in ["Hello", " there", ",", " friend", "!"] {
                    sse.push_str(&format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"{word}\"}}}}]}}\n\n"));
                }
                sse.push_str("data: [DONE]\n\n");
                return reply(200, "text/event-stream", sse);
            }
            reply(
                200,
                "application/json",
                r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#.into(),
            )
        }
        "/fail" => reply(500, "application/json", ERROR_BODY.into()),
        "/health/readiness" => reply(200, "application/json", r#"{"status":"healthy"}"#.into()),
        _ => reply(404, "application/json", r#"{"detail":"Not Found"}"#.into()),
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-load-test-{}-{}", std::process::id(), name));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn args(list: &[&str]) -> LoadArgs {
    let mut v = vec!["load", "--quiet"];
    v.extend_from_slice(list);
    Cli::try_parse_from(v).unwrap().load
}

fn read_json(path: &PathBuf) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn two_second_mixed_load_counts_and_groups_failures() {
    let (addr, seen) = server();
    let dir = tmp("mixed");
    let host = format!("http://{addr}");
    let json = dir.join("out.json");
    let errors = dir.join("errors.txt");
    let report = dir.join("report.html");
    let prefix = dir.join("run").display().to_string();
    let code = sluice_load::run(args(&[
        "--host",
        &host,
        "-u",
        "4",
        "-t",
        "2s",
        "--endpoint",
        "3:POST:chat/completions",
        "--endpoint",
        "1:POST:fail",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        &prefix,
        "--report",
        report.to_str().unwrap(),
        "--error-file",
        errors.to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "failures alone do not fail the run without --fail-on-error");

    let v = read_json(&json);
    let chat = &v["endpoints"][0];
    let fail = &v["endpoints"][1];
    assert_eq!(chat["name"], "/chat/completions");
    assert_eq!(fail["name"], "/fail");
    let chat_reqs = chat["requests"].as_u64().unwrap();
    let fail_reqs = fail["requests"].as_u64().unwrap();
    assert!(chat_reqs > 100, "only {chat_reqs} chat requests in 2 s");
    assert!(fail_reqs > 30, "only {fail_reqs} failing requests in 2 s");
    assert_eq!(chat["failures"], 0);
    assert_eq!(fail["failures"].as_u64().unwrap(), fail_reqs);
    assert_eq!(v["aggregated"]["requests"].as_u64().unwrap(), chat_reqs + fail_reqs);
    // The weights 3:1 show in the mix.
    let share = chat_reqs as f64 / (chat_reqs + fail_reqs) as f64;
    assert!((0.65..0.85).contains(&share), "chat share {share}");
    // The server saw every request the client counted, each a valid seed payload.
    assert_eq!(seen.chat.load(Ordering::Relaxed), chat_reqs);
    assert_eq!(seen.bad_bodies.load(Ordering::Relaxed), 0);
    let duration = v["duration_s"].as_f64().unwrap();
    assert!((1.9..3.0).contains(&duration), "ran {duration} s");
    assert!(v["timeline"].as_array().unwrap().len() >= 2);

    // One failure group: the endpoint, the status and the JSON error message.
    let failures = v["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0]["name"], "/fail");
    assert_eq!(failures[0]["method"], "POST");
    assert_eq!(failures[0]["status"], 500);
    assert_eq!(failures[0]["message"], "deliberate failure");
    assert_eq!(failures[0]["count"].as_u64().unwrap(), fail_reqs);

    // The error file holds each failed body on its own line.
    let text = std::fs::read_to_string(&errors).unwrap();
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len() as u64, fail_reqs);
    assert!(lines.iter().all(|l| *l == ERROR_BODY));

    // The other files are there and look right.
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script"));
    let stats = std::fs::read_to_string(format!("{prefix}_stats.csv")).unwrap();
    assert_eq!(stats.lines().count(), 4);
    assert!(stats.lines().nth(3).unwrap().starts_with("\"\",\"Aggregated\","));
    let history = std::fs::read_to_string(format!("{prefix}_stats_history.csv")).unwrap();
    assert!(history.lines().count() >= 3);
    let fails = std::fs::read_to_string(format!("{prefix}_failures.csv")).unwrap();
    assert!(fails.contains("\"POST\",\"/fail\",\"HTTP 500: deliberate failure\""));
}

#[test]
fn request_limit_is_exact_and_fail_on_error_sets_the_exit_code() {
    let (addr, _) = server();
    let dir = tmp("limit");
    let host = format!("http://{addr}");
    let json = dir.join("out.json");
    let code = sluice_load::run(args(&[
        "--host",
        &host,
        "-u",
        "8",
        "-n",
        "57",
        "--json",
        json.to_str().unwrap(),
        "--error-file",
        dir.join("e.txt").to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    assert_eq!(read_json(&json)["aggregated"]["requests"], 57);

    let code = sluice_load::run(args(&[
        "--host",
        &host,
        "-u",
        "2",
        "-n",
        "10",
        "--endpoint",
        "1:GET:nowhere",
        "--fail-on-error",
        "--json",
        json.to_str().unwrap(),
        "--error-file",
        dir.join("e.txt").to_str().unwrap(),
    ]));
    assert_eq!(code, 1, "failed requests with --fail-on-error exit 1");
    let v = read_json(&json);
    assert_eq!(v["aggregated"]["requests"], 10);
    assert_eq!(v["aggregated"]["failures"], 10);
    assert_eq!(v["failures"][0]["status"], 404);
    assert_eq!(v["failures"][0]["message"], "Not Found");
}

#[test]
fn open_loop_rate_sends_on_schedule() {
    let (addr, seen) = server();
    let dir = tmp("rate");
    let host = format!("http://{addr}");
    let json = dir.join("out.json");
    let code = sluice_load::run(args(&[
        "--host",
        &host,
        "--rate",
        "200",
        "-t",
        "2s",
        "--threads",
        "2",
        "--json",
        json.to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    let v = read_json(&json);
    // Intended times 0, 5 ms, …, 1995 ms: exactly 400 sends.
    assert_eq!(v["aggregated"]["requests"], 400);
    assert_eq!(v["aggregated"]["failures"], 0);
    assert_eq!(v["mode"], "rate");
    assert_eq!(seen.chat.load(Ordering::Relaxed), 400);
}

#[test]
fn streams_measure_ttft_and_tokens() {
    let (addr, _) = server();
    let dir = tmp("stream");
    let host = format!("http://{addr}");
    let json = dir.join("out.json");
    let code = sluice_load::run(args(&[
        "--host",
        &host,
        "--stream",
        "-u",
        "2",
        "-n",
        "10",
        "--model",
        "gpt-4o-mini",
        "--json",
        json.to_str().unwrap(),
    ]));
    assert_eq!(code, 0);
    let v = read_json(&json);
    let st = &v["endpoints"][0]["stream"];
    assert_eq!(st["streams"], 10);
    assert_eq!(st["output_tokens"], 50);
    assert!(st["ttft_ms"]["p50"].as_f64().unwrap() > 0.0);
}

#[test]
fn connection_errors_are_status_0_failures() {
    // A port with nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tmp("refused");
    let json = dir.join("out.json");
    let code = sluice_load::run(args(&[
        "--host",
        &format!("http://127.0.0.1:{port}"),
        "-u",
        "1",
        "-n",
        "5",
        "--fail-on-error",
        "--json",
        json.to_str().unwrap(),
    ]));
    assert_eq!(code, 1);
    let v = read_json(&json);
    assert_eq!(v["aggregated"]["failures"], 5);
    assert_eq!(v["failures"][0]["status"], 0);
    assert_eq!(v["failures"][0]["message"], "connection refused");
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(sluice_load::run(args(&["--host", "ftp://x"])), 2);
    assert_eq!(sluice_load::run(args(&["--body", "/nonexistent/body.json"])), 2);
}
