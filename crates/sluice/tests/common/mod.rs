//! Harness for end-to-end tests: real `sluice` and `sluice mock` processes on ephemeral ports,
//! and a deliberately dumb HTTP/1.1 client over std sockets (so tests can also misbehave: send
//! half a request, hang up early).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_path: PathBuf,
    /// The lines written to stdout after the "listening on" line (the `console` OpenTelemetry
    /// exporter's spans), read on as they come so the child never blocks on a full pipe.
    pub stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// The process's log so far. The gateway writes its lines from a thread of its own in
    /// batches (`sluice/src/logs.rs`), so a line logged a moment ago may not be in the file yet:
    /// this waits until the file has stopped growing (up to 3 s).
    pub fn stderr(&self) -> String {
        let read = || std::fs::read_to_string(&self.stderr_path).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut seen = read();
        loop {
            std::thread::sleep(Duration::from_millis(40));
            let now = read();
            if now.len() == seen.len() || Instant::now() > deadline {
                return now;
            }
            seen = now;
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The stdout lines so far (after the "listening on" line).
    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Starts `sluice <args>` and waits for its "listening on http://ADDR" line.
pub fn spawn(args: &[&str], label: &str) -> Proc {
    spawn_with(args, label, &[])
}

/// [`spawn`] with `vars` added to the child's environment.
pub fn spawn_with(args: &[&str], label: &str, vars: &[(&str, &str)]) -> Proc {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let stderr_path = tmp(&format!("{label}-{n}.stderr"));
    // Each gateway gets its own SQLite file unless the test names a database.
    let db = format!("sqlite://{}", tmp(&format!("{label}-{n}.db")).display());
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("DATABASE_URL", std::env::var("DATABASE_URL").unwrap_or(db))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    for (name, value) in vars {
        cmd.env(name, value);
    }
    let child = cmd.spawn().expect("start sluice");
    // Owned by a Proc from the start, so a failed start still kills the child.
    let mut proc = Proc { child, addr: SocketAddr::from(([127, 0, 0, 1], 0)), stderr_path, stdout: Default::default() };
    let stdout = proc.child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "{label} did not start");
        let Some(Ok(line)) = lines.next() else {
            panic!("{label} exited: {}", proc.stderr());
        };
        if let Some(rest) = line.split("listening on http://").nth(1) {
            // The address ends the line, or a JSON string (`--json_logs`).
            let addr: SocketAddr = rest.split(['"', ' ']).next().unwrap_or_default().trim().parse().unwrap();
            proc.addr = SocketAddr::from(([127, 0, 0, 1], addr.port()));
            let kept = proc.stdout.clone();
            std::thread::spawn(move || {
                for line in lines.map_while(Result::ok) {
                    kept.lock().unwrap().push(line);
                }
            });
            return proc;
        }
    }
}

pub fn mock(extra: &[&str]) -> Proc {
    let mut args = vec!["mock", "--host", "127.0.0.1", "--port", "0"];
    args.extend_from_slice(extra);
    spawn(&args, "mock")
}

/// Starts the gateway on a config; `{MOCK}` in the text is replaced by the mock's base URL.
pub fn gateway(config: &str, mock: Option<&Proc>) -> Proc {
    let text = match mock {
        Some(m) => config.replace("{MOCK}", &format!("http://{}/", m.addr)),
        None => config.to_string(),
    };
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = tmp(&format!("config-{}.yaml", N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
    std::fs::write(&path, text).unwrap();
    spawn(&["--config", path.to_str().unwrap(), "--host", "127.0.0.1", "--port", "0", "--num_workers", "2"], "gateway")
}

pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The OpenAI error envelope's message, asserting the envelope's shape on the way.
    pub fn error_message(&self) -> String {
        let v = self.json();
        let e = &v["error"];
        for k in ["message", "type", "param", "code"] {
            assert!(e.get(k).is_some(), "error envelope lacks {k}: {v}");
        }
        assert_eq!(e["code"], self.status.to_string(), "code is the status as a string");
        e["message"].as_str().unwrap().to_string()
    }
}

/// Sends raw bytes and reads the whole response (the request must say `Connection: close`).
pub fn raw(addr: SocketAddr, request: &[u8]) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    parse(&buf)
}

pub fn request(addr: SocketAddr, method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Response {
    raw(addr, &build(method, path, key, body))
}

pub fn build(method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n", body.len());
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    req.push_str("\r\n");
    let mut out = req.into_bytes();
    out.extend_from_slice(body);
    out
}

pub fn post(addr: SocketAddr, path: &str, body: &str) -> Response {
    request(addr, "POST", path, Some("sk-1234"), body.as_bytes())
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, Some("sk-1234"), b"")
}

pub fn parse(buf: &[u8]) -> Response {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = buf[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Response { status, headers, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = end + 2;
        if b.len() < start + size {
            out.extend_from_slice(&b[start..]);
            break;
        }
        out.extend_from_slice(&b[start..start + size]);
        b = &b[(start + size + 2).min(b.len())..];
    }
    out
}

/// A connection to `addr` whose reads give up after 10 s.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads one HTTP/1.1 response with a Content-Length from a kept-alive connection.
pub fn read_one_response(s: &mut TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).expect("read response head"), 1, "connection closed before a response");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("content-length");
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    (status, head)
}

/// SSE `data:` payloads of a stream body.
pub fn sse_data(body: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(body).split("\n\n").filter_map(|f| f.strip_prefix("data: ")).map(str::to_string).collect()
}

pub fn mock_stats(mock: &Proc) -> serde_json::Value {
    get(mock.addr, "/mock/stats").json()
}

/// Resident memory of a process in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).unwrap().parse().unwrap()
}

pub const CHAT: &str = r#"{"model":"fake-openai-endpoint","messages":[{"role":"user","content":"hi"}]}"#;

pub fn chat_for(model: &str, stream: bool) -> String {
    format!(r#"{{"model":"{model}","stream":{stream},"messages":[{{"role":"user","content":"hi"}}]}}"#)
}

/// Mock model names that make it misbehave; each gets a deployment of the same name.
pub const TRIGGERS: &[&str] = &[
    "error-400",
    "error-404",
    "error-503",
    "429",
    "retry-after-7",
    "garbage",
    "sleep-3000",
    "sleep-5000",
    "stream-garbage",
    "stream-reset",
    "slow-stream-300",
];

/// A config with the seed's deployment, one deployment per trigger (timeout 1 s), a refused
/// upstream and the seed's vertex_ai deployment.
pub fn config(extra_general: &str) -> String {
    let mut triggers = String::new();
    for t in TRIGGERS {
        triggers.push_str(&format!(
            "  - model_name: \"{t}\"\n    litellm_params:\n      model: openai/{t}\n      api_base: {{MOCK}}\n      timeout: 1\n"
        ));
    }
    format!(
        r#"
model_list:
  - model_name: fake-openai-endpoint
    litellm_params:
      model: openai/fake
      api_key: fake-key
      api_base: {{MOCK}}
  - model_name: passthrough
    litellm_params:
      model: openai/passthrough
      api_base: {{MOCK}}
      timeout: 1
  - model_name: refused
    litellm_params:
      model: openai/x
      api_base: http://127.0.0.1:9/
  - model_name: gemini-vision
    litellm_params:
      model: vertex_ai/gemini-1.0-pro-vision-001
      vertex_project: "adroit-crow-413218"
      vertex_credentials: /etc/secrets/adroit_crow.json
  - model_name: replicate-model
    litellm_params:
      model: replicate/meta/llama-3-8b-instruct
{triggers}general_settings:
  master_key: sk-1234
{extra_general}
router_settings:
  num_retries: 0
sluice_settings:
  client_body_timeout: 1
  client_header_timeout: 1
"#
    )
}

/// The text a chat stream's chunks carry, joined.
pub fn stream_text(frames: &[String]) -> String {
    frames
        .iter()
        .filter_map(|f| serde_json::from_str::<serde_json::Value>(f).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_string))
        .collect()
}
