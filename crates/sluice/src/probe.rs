//! `sluice health`: a container health probe without curl. One HTTP/1.1 GET to a plain `http://`
//! URL on the local machine; exit 0 when it answers 2xx, 1 otherwise, within a bounded time.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Most bytes of the answer read: the status line is all that matters.
const MAX_ANSWER: usize = 64 * 1024;

#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// The URL to probe (plain http). Default: this machine's gateway on $PORT (else 4000),
    /// /health/liveliness.
    #[arg(long)]
    url: Option<String>,
    /// Seconds to wait for the answer, in all (at most 60).
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
}

pub fn run(args: &HealthArgs) -> ExitCode {
    let timeout = Duration::from_secs_f64(if args.timeout.is_finite() { args.timeout.clamp(0.1, 60.0) } else { 3.0 });
    let url = args.url.clone().unwrap_or_else(|| default_url(std::env::var("PORT").ok().as_deref()));
    match probe(&url, timeout) {
        Ok(status) if (200..300).contains(&status) => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("sluice health: {url} answered {status}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("sluice health: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The gateway's liveness on this machine, at the port it was told to serve on (`PORT`, as the
/// gateway reads it), else 4000.
fn default_url(port: Option<&str>) -> String {
    let port = port.and_then(|p| p.trim().parse::<u16>().ok()).filter(|p| *p != 0).unwrap_or(4000);
    format!("http://127.0.0.1:{port}/health/liveliness")
}

/// The status `url` answers a GET with.
fn probe(url: &str, timeout: Duration) -> Result<u16, String> {
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs can be probed")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err("the URL names no host".into());
    }
    let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let deadline = Instant::now() + timeout;
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("cannot connect: {e}"))?;
    let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
    stream.set_write_timeout(Some(left())).map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: sluice-health\r\n\r\n"
    )
    .map_err(|e| format!("cannot send the request: {e}"))?;
    let mut answer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while !answer.contains(&b'\n') && answer.len() < MAX_ANSWER {
        stream.set_read_timeout(Some(left())).map_err(|e| e.to_string())?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    status(&answer).ok_or_else(|| "the answer is not HTTP".into())
}

/// The status code of an answer's status line (`HTTP/1.1 200 OK`).
fn status(answer: &[u8]) -> Option<u16> {
    let line = answer.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_ascii_whitespace();
    if !words.next()?.starts_with("HTTP/") {
        return None;
    }
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_line() {
        assert_eq!(status(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"), Some(200));
        assert_eq!(status(b"HTTP/1.1 503 Service Unavailable\r\n"), Some(503));
        assert_eq!(status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status(b""), None);
    }

    #[test]
    fn the_default_url_follows_the_gateways_port() {
        assert_eq!(default_url(None), "http://127.0.0.1:4000/health/liveliness");
        assert_eq!(default_url(Some("8080")), "http://127.0.0.1:8080/health/liveliness");
        assert_eq!(default_url(Some("not a port")), "http://127.0.0.1:4000/health/liveliness");
    }

    #[test]
    fn probes_a_listening_server_and_fails_on_a_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            // The whole head, however many reads it arrives in (one read may hold only a part).
            let mut buf = [0u8; 1024];
            let mut n = 0;
            while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") && n < buf.len() {
                let got = s.read(&mut buf[n..]).unwrap();
                assert!(got > 0, "the probe hung up before its request's head was whole");
                n += got;
            }
            assert!(buf[..n].starts_with(b"GET /health/liveliness HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").unwrap();
        });
        let url = format!("http://{addr}/health/liveliness");
        assert_eq!(probe(&url, Duration::from_secs(5)), Ok(200));
        server.join().unwrap();
        // Nothing listens there any more.
        assert!(probe(&url, Duration::from_secs(5)).is_err());
        assert!(probe("https://127.0.0.1/", Duration::from_secs(1)).is_err());
    }
}
