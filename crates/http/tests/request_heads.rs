//! Request heads, generated, mutated and cut anywhere, thrown at the direct path's parser
//! (`request_head`) and compared with httparse: what it serves, it reads as httparse does, and
//! what it does not serve it leaves to hyper without a panic.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_http::request_head::{parse, Parsed, MAX_HEAD, MAX_HEADERS};

/// Header fields as read: names lower-cased, values as they came.
type Fields = Vec<(String, Vec<u8>)>;

const MAX_BODY: usize = 1 << 20;

fn route(method: &str, path: &str) -> Option<()> {
    (method == "POST" && matches!(path, "/chat/completions" | "/v1/chat/completions")).then_some(())
}

/// httparse's reading of the head: method, path, whether HTTP/1.1, fields, length.
fn httparse_reads(buf: &[u8]) -> Option<(String, String, bool, Fields, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let httparse::Status::Complete(len) = req.parse(buf).ok()? else { return None };
    let fields = req.headers.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect();
    Some((req.method?.to_string(), req.path?.to_string(), req.version? == 1, fields, len))
}

fn field() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        ("x-[a-z0-9-]{1,12}|authorization|content-type|user-agent", "[!-~]([ -~]{0,30}[!-~])?"),
        Just(("Connection".to_string(), "keep-alive".to_string())),
        Just(("connection".to_string(), "close".to_string())),
        Just(("Connection".to_string(), "upgrade".to_string())),
        Just(("Transfer-Encoding".to_string(), "chunked".to_string())),
        Just(("Expect".to_string(), "100-continue".to_string())),
        Just(("content-length".to_string(), "7".to_string())),
    ]
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("POST"), Just("GET"), Just("PUT")],
        prop_oneof![
            Just("/chat/completions".to_string()),
            Just("/v1/chat/completions".to_string()),
            Just("/v1/models".to_string()),
            "/[a-z/]{0,20}",
        ],
        prop_oneof![Just("HTTP/1.1"), Just("HTTP/1.0")],
        prop::collection::vec(field(), 0..10),
        prop_oneof![Just(None), (0usize..2 * MAX_BODY).prop_map(Some), Just(Some(12))],
    )
        .prop_map(|(method, path, version, fields, length)| {
            let mut out = format!("{method} {path} {version}\r\nHost: gateway\r\n").into_bytes();
            for (n, v) in fields {
                out.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
            }
            if let Some(n) = length {
                out.extend_from_slice(format!("Content-Length: {n}\r\n").as_bytes());
            }
            out.extend_from_slice(b"\r\n{\"model\":1}");
            out
        })
}

/// What the direct path must make of a head httparse reads as `fields`: serve it (`Some`, with
/// the body's length and whether to close after), or leave it to hyper.
fn expected(method: &str, path: &str, http11: bool, fields: &Fields) -> Option<(usize, bool)> {
    if !http11 || route(method, path).is_none() {
        return None;
    }
    let (mut length, mut close) = (None, false);
    for (name, value) in fields {
        match name.as_str() {
            "content-length" if length.is_some() => return None,
            "content-length" => {
                let digits = !value.is_empty() && value.len() <= 12 && value.iter().all(u8::is_ascii_digit);
                length = Some(std::str::from_utf8(value).ok().filter(|_| digits)?.parse::<usize>().ok()?);
            }
            "transfer-encoding" | "expect" | "upgrade" => return None,
            "connection" => match value.trim_ascii().to_ascii_lowercase().as_slice() {
                b"close" => close = true,
                b"keep-alive" => {}
                _ => return None,
            },
            _ => {}
        }
    }
    length.filter(|&n| n <= MAX_BODY).map(|n| (n, close))
}

/// Checks what `parse` made of `buf` against httparse and the rules above.
fn agrees(buf: &[u8]) -> Result<(), TestCaseError> {
    match parse(buf, MAX_BODY, route) {
        Parsed::Partial => {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let partial = httparse::Request::new(&mut headers).parse(buf);
            prop_assert!(matches!(partial, Ok(httparse::Status::Partial)), "{:?}", partial);
        }
        Parsed::NotOurs => {
            if let Some((method, path, http11, fields, len)) = httparse_reads(buf) {
                prop_assert!(
                    len > MAX_HEAD || expected(&method, &path, http11, &fields).is_none(),
                    "a head the direct path should serve went to hyper"
                );
            }
        }
        Parsed::Head(head) => {
            let (method, path, http11, fields, len) = httparse_reads(buf).expect("httparse reads what was served");
            prop_assert_eq!(head.len, len);
            prop_assert!(len <= MAX_HEAD);
            prop_assert_eq!(Some((head.body_len, head.close)), expected(&method, &path, http11, &fields));
            if let Some(parts) = head.parts(&Bytes::copy_from_slice(buf)) {
                prop_assert_eq!(parts.method.as_str(), method);
                prop_assert_eq!(parts.uri.to_string(), path);
                let got: Fields =
                    parts.headers.iter().map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec())).collect();
                let mut want = fields;
                // The map groups repeated names together, in the order each name first came.
                let order: Vec<String> = want.iter().map(|(n, _)| n.clone()).collect();
                want.sort_by_key(|(n, _)| order.iter().position(|o| o == n));
                prop_assert_eq!(got, want);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn generated_heads_are_served_exactly_when_they_should_be(wire in request()) {
        agrees(&wire)?;
    }

    #[test]
    fn heads_cut_anywhere_wait_for_the_rest(wire in request(), cut in any::<prop::sample::Index>()) {
        let cut = cut.index(wire.len());
        agrees(&wire[..cut])?;
    }

    #[test]
    fn mutated_heads_never_panic_and_agree_with_httparse(
        mut wire in request(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..5),
    ) {
        for (at, byte, kind) in edits {
            let at = at.index(wire.len());
            match kind {
                0 => wire[at] = byte,
                1 => wire.insert(at, byte),
                _ => { wire.remove(at); }
            }
        }
        agrees(&wire)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(wire in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse(&wire, MAX_BODY, route);
    }
}

/// The direct path's unit-test cases, against httparse too.
#[test]
fn seeds_from_the_unit_tests() {
    let post = |path: &str, extra: &str| format!("POST {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
    let served = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\nConnection: keep-alive\r\nContent-Length: 12\r\n\r\n{\"model\":1}";
    assert!(matches!(parse(served.as_bytes(), MAX_BODY, route), Parsed::Head(h) if h.body_len == 12 && !h.close));
    for text in [
        post("/chat/completions", "Transfer-Encoding: chunked\r\n"),
        post("/chat/completions", "Content-Length: 5\r\nExpect: 100-continue\r\n"),
        post("/chat/completions", "Content-Length: 5\r\nConnection: close, upgrade\r\n"),
        post("/chat/completions", "Content-Length: 5\r\nContent-Length: 5\r\n"),
        post("/chat/completions", "Content-Length: +5\r\n"),
        post("/chat/completions", ""),
        post("/chat/completions", &format!("Content-Length: {}\r\n", MAX_BODY + 1)),
        "POST /chat/completions HTTP/1.0\r\nContent-Length: 5\r\n\r\n".to_string(),
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_string(),
    ] {
        assert!(matches!(parse(text.as_bytes(), MAX_BODY, route), Parsed::NotOurs), "{text:?}");
        agrees(text.as_bytes()).unwrap();
    }
}
