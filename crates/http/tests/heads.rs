//! Heads thrown at the upstream client's codecs: answer heads generated, mutated and split
//! anywhere, parsed as httparse parses them and framed as hyper frames them; request heads
//! written by the client that parse back with httparse to what was asked for.

mod common;

use bytes::BytesMut;
use common::{chunked, hyper_reads, ours_reads, runtime, Fields};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use proptest::prelude::*;
use sluice_http::answer::UpstreamHeaders;
use sluice_http::h1::{encode_request, parse_response};

/// A header field hyper and httparse both take: a token name and a visible-ASCII value.
fn field() -> impl Strategy<Value = (String, String)> {
    ("x-[a-z0-9-]{1,12}|content-type|x-request-id|openai-model", "[!-~]([ -~]{0,30}[!-~])?")
}

/// How the generated answer's body is framed.
#[derive(Debug, Clone)]
enum Framed {
    Length,
    Chunked(Vec<usize>),
    /// Both fields: Transfer-Encoding wins (RFC 9112 §6.3).
    ChunkedAndLength,
    UntilClose,
}

fn framed() -> impl Strategy<Value = Framed> {
    prop_oneof![
        Just(Framed::Length),
        prop::collection::vec(1usize..40, 0..4).prop_map(Framed::Chunked),
        Just(Framed::ChunkedAndLength),
        Just(Framed::UntilClose),
    ]
}

/// A generated answer: status, fields, body, its framing, and whether names are in capitals.
type Answer = (u16, Vec<(String, String)>, Vec<u8>, Framed, bool);

fn answer() -> impl Strategy<Value = Answer> {
    (
        prop_oneof![Just(200u16), Just(201), Just(400), Just(429), Just(500), Just(503), 200u16..600],
        prop::collection::vec(field(), 0..8),
        prop::collection::vec(any::<u8>(), 0..200),
        framed(),
        any::<bool>(),
    )
}

fn write_answer(status: u16, fields: &[(String, String)], body: &[u8], framed: &Framed, capitals: bool) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} Whatever\r\n").into_bytes();
    let name = |n: &str| if capitals { n.to_ascii_uppercase() } else { n.to_string() };
    for (n, v) in fields {
        out.extend_from_slice(format!("{}: {v}\r\n", name(n)).as_bytes());
    }
    match framed {
        Framed::Length => out.extend_from_slice(format!("{}: {}\r\n", name("content-length"), body.len()).as_bytes()),
        Framed::Chunked(_) => out.extend_from_slice(format!("{}: chunked\r\n", name("transfer-encoding")).as_bytes()),
        Framed::ChunkedAndLength => out.extend_from_slice(
            format!("content-length: {}\r\ntransfer-encoding: chunked\r\n", body.len() + 3).as_bytes(),
        ),
        Framed::UntilClose => {}
    }
    out.extend_from_slice(b"\r\n");
    match framed {
        Framed::Chunked(sizes) => out.extend(chunked(body, sizes, false, false, &[])),
        Framed::ChunkedAndLength => out.extend(chunked(body, &[], false, false, &[])),
        _ => out.extend_from_slice(body),
    }
    out
}

/// The fields httparse finds in `wire`'s head, names lower-cased, and the head's length.
fn httparse_fields(wire: &[u8]) -> Option<(u16, Fields, usize)> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = resp.parse(wire).ok()? else { return None };
    let fields = resp.headers.iter().map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec())).collect();
    Some((resp.code?, fields, len))
}

fn fields_of(headers: UpstreamHeaders) -> Fields {
    let mut fields = Vec::new();
    headers.for_each(|n, v| fields.push((String::from_utf8_lossy(n).to_ascii_lowercase(), v.to_vec())));
    fields
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn generated_answers_read_as_hyper_reads_them(
        (status, fields, body, framed, capitals) in answer(), step in 1usize..48,
    ) {
        let wire = write_answer(status, &fields, &body, &framed, capitals);
        let rt = runtime();
        let hyper = rt.block_on(hyper_reads(wire.clone())).expect("hyper reads a well-formed answer");
        let ours = rt.block_on(ours_reads(wire, step)).expect("a well-formed answer");
        prop_assert_eq!(ours.status, hyper.status);
        prop_assert_eq!(&ours.body, &hyper.body);
        let bodiless = status == 204 || status == 304;
        prop_assert_eq!(&ours.body[..], if bodiless { &[][..] } else { &body[..] });
        // hyper's map groups repeated names; compare as sorted lists.
        let (mut a, mut b) = (ours.fields, hyper.fields);
        a.sort();
        b.sort();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn answer_heads_split_anywhere_parse_as_httparse_parses_them(
        (status, fields, body, framed, capitals) in answer(), cut in any::<prop::sample::Index>(),
    ) {
        let wire = write_answer(status, &fields, &body, &framed, capitals);
        let (code, expected, len) = httparse_fields(&wire).expect("a complete head");
        let cut = cut.index(len);
        let mut buf = BytesMut::from(&wire[..cut]);
        prop_assert!(parse_response(&mut buf, &Method::POST).expect("a prefix is not an error").is_none());
        buf.extend_from_slice(&wire[cut..]);
        let answer = parse_response(&mut buf, &Method::POST).expect("well-formed").expect("complete");
        prop_assert_eq!(answer.status.as_u16(), code);
        prop_assert_eq!(buf.len(), wire.len() - len, "the body is left in the buffer");
        prop_assert_eq!(fields_of(UpstreamHeaders::Raw(answer.headers)), expected);
    }

    #[test]
    fn mutated_answer_heads_never_panic_and_agree_with_httparse(
        (status, fields, body, framed, capitals) in answer(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 1..4),
    ) {
        let mut wire = write_answer(status, &fields, &body, &framed, capitals);
        for (at, byte, insert) in edits {
            let at = at.index(wire.len());
            if insert { wire.insert(at, byte) } else { wire[at] = byte }
        }
        let mut buf = BytesMut::from(&wire[..]);
        match parse_response(&mut buf, &Method::POST) {
            Ok(Some(answer)) => {
                let (code, expected, len) = httparse_fields(&wire).expect("httparse parses what we parsed");
                if !(100..200).contains(&code) {
                    prop_assert_eq!(answer.status.as_u16(), code);
                    prop_assert_eq!(buf.len(), wire.len() - len);
                    prop_assert_eq!(fields_of(UpstreamHeaders::Raw(answer.headers)), expected);
                }
            }
            Ok(None) => prop_assert!(httparse_fields(&wire).is_none_or(|(code, _, _)| (100..200).contains(&code))),
            Err(_) => {}
        }
    }

    #[test]
    fn arbitrary_bytes_are_an_answer_an_error_or_a_wait(wire in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = BytesMut::from(&wire[..]);
        if let Ok(Some(_)) = parse_response(&mut buf, &Method::GET) {
            prop_assert!(buf.len() < wire.len(), "a head was taken from the buffer");
        }
    }

    #[test]
    fn request_heads_parse_back_to_what_was_asked(
        method in prop::sample::select(vec![Method::GET, Method::POST, Method::PUT, Method::DELETE, Method::HEAD]),
        path in "/[a-zA-Z0-9/_.~-]{0,40}(\\?[a-z0-9=&]{0,20})?",
        host in "[a-z0-9.-]{1,20}(:[0-9]{1,5})?",
        fields in prop::collection::vec(field(), 0..8),
        body_len in prop_oneof![Just(0u64), 1u64..1 << 40],
    ) {
        let mut headers = HeaderMap::new();
        for (n, v) in &fields {
            headers.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let mut out = Vec::new();
        encode_request(&mut out, &method, &path, &host, &headers, body_len);
        let mut parsed = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut parsed);
        prop_assert_eq!(req.parse(&out), Ok(httparse::Status::Complete(out.len())));
        prop_assert_eq!(req.method, Some(method.as_str()));
        prop_assert_eq!(req.path, Some(path.as_str()));
        prop_assert_eq!(req.version, Some(1));
        let got: Vec<(&str, &[u8])> = req.headers.iter().map(|h| (h.name, h.value)).collect();
        let mut want: Vec<(&str, &[u8])> = vec![("host", host.as_bytes())];
        want.extend(headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
        let length = body_len.to_string();
        let bodiless = matches!(method, Method::GET | Method::HEAD | Method::DELETE);
        if body_len > 0 || !bodiless {
            want.push(("content-length", length.as_bytes()));
        }
        prop_assert_eq!(got, want);
    }
}

/// The answer-head cases of the codec's unit tests, through hyper too.
#[test]
fn seeds_from_the_unit_tests_read_as_hyper_reads_them() {
    let rt = runtime();
    for wire in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Request-Id: abc\r\n\r\nhello"[..],
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 9\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\nto the end",
        b"HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\n\r\nsevenb.",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    ] {
        let hyper = rt.block_on(hyper_reads(wire.to_vec())).unwrap();
        let ours = rt.block_on(ours_reads(wire.to_vec(), 2)).unwrap();
        assert_eq!((ours.status, &ours.body), (hyper.status, &hyper.body), "{:?}", String::from_utf8_lossy(wire));
    }
    for broken in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 4\r\n\r\nabcd"[..],
        b"HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort",
    ] {
        assert!(rt.block_on(hyper_reads(broken.to_vec())).is_err(), "{:?}", String::from_utf8_lossy(broken));
        assert!(rt.block_on(ours_reads(broken.to_vec(), 2)).is_err(), "{:?}", String::from_utf8_lossy(broken));
    }
}
