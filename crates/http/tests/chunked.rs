//! Chunked bodies, generated and then mutated, decoded by `sluice_http::chunked` however their
//! bytes arrive, and compared with hyper's decoding of the same bytes.

mod common;

use bytes::BytesMut;
use common::{chunked, hyper_reads, ours_reads, runtime};
use proptest::prelude::*;
use sluice_http::chunked::{Chunk, Decoder};

const HEAD: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";

/// The body `wire` decodes to when fed `step` bytes at a time, whether it ended, and how many
/// calls the decoder took: the work is bounded by the input, whatever the bytes.
fn decode(wire: &[u8], step: usize) -> (Result<Vec<u8>, &'static str>, bool, usize) {
    let (mut d, mut buf, mut body, mut calls) = (Decoder::default(), BytesMut::new(), Vec::new(), 0);
    for piece in wire.chunks(step.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            calls += 1;
            match d.decode(&mut buf) {
                Err(e) => return (Err(e), false, calls),
                Ok(None) => break,
                Ok(Some(Chunk::Data(b))) => {
                    assert!(!b.is_empty(), "a data piece with no data: the caller would spin");
                    body.extend_from_slice(&b);
                }
                Ok(Some(Chunk::End)) => return (Ok(body), true, calls),
            }
        }
    }
    (Ok(body), false, calls)
}

fn trailers() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec(("x-[a-z]{1,8}", "[ -~]{0,16}"), 0..3)
}

/// A body, how it is cut into chunks, and how those are written.
fn encoded() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        prop::collection::vec(any::<u8>(), 0..600),
        prop::collection::vec(1usize..300, 0..8),
        any::<bool>(),
        any::<bool>(),
        trailers(),
    )
        .prop_map(|(body, sizes, ext, upper, trailers)| {
            let wire = chunked(&body, &sizes, ext, upper, &trailers);
            (body, wire)
        })
}

/// Byte edits to apply to an encoding: overwrite, insert or delete at a position.
fn mutations() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    prop::collection::vec(
        (0u8..3, any::<usize>(), prop::sample::select(&b"0123456789abcdefABCDEFxz;= \t\r\n\0"[..])),
        1..4,
    )
}

fn mutate(wire: &mut Vec<u8>, edits: &[(u8, usize, u8)]) {
    for &(kind, at, byte) in edits {
        let at = at % (wire.len() + 1);
        match kind {
            0 if at < wire.len() => wire[at] = byte,
            2 if at < wire.len() => {
                wire.remove(at);
            }
            _ => wire.insert(at, byte),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn generated_bodies_decode_to_what_was_encoded_as_hyper_does((body, wire) in encoded(), step in 1usize..64) {
        let (decoded, ended, calls) = decode(&wire, step);
        prop_assert_eq!(decoded.as_deref(), Ok(&body[..]));
        prop_assert!(ended);
        prop_assert!(calls <= 2 * wire.len() + 4, "{} calls for {} bytes", calls, wire.len());

        let answer = [HEAD, &wire].concat();
        let rt = runtime();
        let hyper = rt.block_on(hyper_reads(answer.clone())).expect("hyper reads a valid chunked body");
        prop_assert_eq!(&hyper.body, &body);
        let ours = rt.block_on(ours_reads(answer, step)).expect("a valid chunked body");
        prop_assert_eq!(ours.body, hyper.body);
    }

    #[test]
    fn mutated_bodies_never_panic_and_agree_with_hyper_when_both_accept(
        (_, mut wire) in encoded(), edits in mutations(), step in 1usize..64,
    ) {
        mutate(&mut wire, &edits);
        let (decoded, ended, calls) = decode(&wire, step);
        prop_assert!(calls <= 2 * wire.len() + 4, "{} calls for {} bytes", calls, wire.len());
        let whole = decode(&wire, wire.len());
        prop_assert_eq!(&whole.0, &decoded, "the result does not depend on how the bytes arrive");

        let answer = [HEAD, &wire].concat();
        let rt = runtime();
        let hyper = rt.block_on(hyper_reads(answer.clone()));
        let ours = rt.block_on(ours_reads(answer, step));
        if let (Ok(decoded), true) = (&decoded, ended) {
            prop_assert_eq!(&ours.as_ref().expect("the connection reads what the decoder accepts").body, decoded);
        }
        if let (Ok(ours), Ok(hyper)) = (&ours, &hyper) {
            prop_assert_eq!(&ours.body, &hyper.body);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(wire in prop::collection::vec(any::<u8>(), 0..512), step in 1usize..32) {
        let (_, _, calls) = decode(&wire, step);
        prop_assert!(calls <= 2 * wire.len() + 4);
    }
}

/// The cases the decoder's unit tests hold, through hyper too.
#[test]
fn seeds_from_the_unit_tests_read_as_hyper_reads_them() {
    let rt = runtime();
    for (wire, body) in [
        (&b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n"[..], &b"hello, world"[..]),
        (b"A\r\nabcdefghij\r\n0\r\n\r\n", b"abcdefghij"),
    ] {
        let answer = [HEAD, wire].concat();
        let hyper = rt.block_on(hyper_reads(answer.clone())).unwrap();
        let ours = rt.block_on(ours_reads(answer, 1)).unwrap();
        assert_eq!((&hyper.body[..], &ours.body[..]), (body, body));
    }
    for broken in [&b"zz\r\n"[..], b"3 x\r\nabc\r\n", b"11111111111111111\r\n", b"3\r\nabcd\r\n0\r\n\r\n"] {
        let answer = [HEAD, broken].concat();
        assert!(rt.block_on(hyper_reads(answer.clone())).is_err(), "{:?}", String::from_utf8_lossy(broken));
        assert!(rt.block_on(ours_reads(answer, 3)).is_err(), "{:?}", String::from_utf8_lossy(broken));
    }
}
