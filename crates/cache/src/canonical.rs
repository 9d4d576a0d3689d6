//! The bytes a cache key is the hash of ([`crate::key`]), written in one pass over the request
//! body: the top-level members the key counts, each as its name's length, its name, its value
//! without the whitespace between tokens and a NUL, sorted by name.
//!
//! One pass, because the seed's 16 KB prompt made every extra read of the body show: reading the
//! members first (the shared scanner, which also checks the text's UTF-8) and then walking each
//! value again to drop its spaces cost more than the hash. Here the only walk over a string is
//! the wire scanner's SIMD search for its closing quote, and the value is copied in runs between spaces. The
//! body has been read as JSON by the request sniffer before a key is asked for, so this needs
//! only its structure; what it cannot follow is refused (`None`), never guessed at.
//!
//! One contiguous buffer, hashed at once, because BLAKE3 hashes the whole kilobyte chunks of one
//! input side by side (sixteen at a time with AVX-512), while the same bytes fed to a hasher in
//! pieces after a few small fields start off a chunk boundary and go nearly one chunk at a time
//! (bench/README.md has both figures).

use sluice_wire::members::string_end;
use std::borrow::Cow;
use std::ops::Range;

/// A thread's buffers, reused from key to key: no allocation once warm.
#[derive(Default)]
pub(crate) struct Canonical {
    bytes: Vec<u8>,
    /// The same records in name order, when the body did not send them so.
    sorted: Vec<u8>,
    records: Vec<Record>,
}

/// One counted member: its name, and where its record lies in `bytes`.
struct Record {
    name: Name,
    at: Range<usize>,
}

enum Name {
    /// As sent, between its quotes (no escapes).
    Raw(Range<usize>),
    /// Decoded from a name spelled with escapes.
    Decoded(String),
}

/// The most a thread keeps between keys: a rare huge prompt's memory is given back.
const KEPT_CAPACITY: usize = 256 * 1024;

impl Canonical {
    /// `fields` (each as its length and bytes), then the members of `body` that `counted` keeps,
    /// in name order; `None` when `body` is not a JSON object as this reads it.
    pub(crate) fn write(&mut self, fields: &[&[u8]], body: &[u8], counted: impl Fn(&str) -> bool) -> Option<&[u8]> {
        self.bytes.clear();
        self.records.clear();
        for f in fields {
            field(&mut self.bytes, f);
        }
        let head = self.bytes.len();
        let mut in_order = true;
        let b = body;
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return None;
        }
        i = skip_ws(b, i + 1);
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                if b.get(i) != Some(&b'"') {
                    return None;
                }
                let (end, escaped) = string_end(b, i)?;
                let name = match escaped {
                    false => Name::Raw(i + 1..end - 1),
                    true => Name::Decoded(serde_json::from_slice::<String>(b.get(i..end)?).ok()?),
                };
                i = skip_ws(b, end);
                if b.get(i) != Some(&b':') {
                    return None;
                }
                i = skip_ws(b, i + 1);
                let text = name_of(b, &name)?;
                if counted(text) {
                    let start = self.bytes.len();
                    if let Some(last) = self.records.last() {
                        in_order &= name_of(b, &last.name)? <= text;
                    }
                    field(&mut self.bytes, text.as_bytes());
                    i = value(b, i, Some(&mut self.bytes))?;
                    self.bytes.push(0);
                    self.records.push(Record { name, at: start..self.bytes.len() });
                } else {
                    i = value(b, i, None)?;
                }
                match b.get(i) {
                    Some(b',') => i = skip_ws(b, i + 1),
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        if skip_ws(b, i) != b.len() {
            return None;
        }
        if in_order {
            return Some(&self.bytes);
        }
        // Stable, so that a name sent twice keeps its order.
        let mut order: Vec<usize> = (0..self.records.len()).collect();
        let names: Vec<Cow<'_, str>> =
            self.records.iter().map(|r| name_of(b, &r.name).map(Cow::Borrowed)).collect::<Option<_>>()?;
        order.sort_by(|&x, &y| names[x].cmp(&names[y]));
        self.sorted.clear();
        self.sorted.extend_from_slice(&self.bytes[..head]);
        for r in order {
            self.sorted.extend_from_slice(&self.bytes[self.records[r].at.clone()]);
        }
        Some(&self.sorted)
    }

    /// Lets go of a buffer a huge prompt grew.
    pub(crate) fn trim(&mut self) {
        for buf in [&mut self.bytes, &mut self.sorted] {
            if buf.capacity() > KEPT_CAPACITY {
                *buf = Vec::new();
            }
        }
    }
}

/// Lengths first, so no two different lists of members make the same bytes (a value is valid
/// JSON, so the NUL after it, which JSON text never holds raw, ends it unambiguously).
fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn name_of<'a>(body: &'a [u8], name: &'a Name) -> Option<&'a str> {
    match name {
        Name::Raw(r) => std::str::from_utf8(body.get(r.clone())?).ok(),
        Name::Decoded(s) => Some(s),
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Walks the member value that starts at `i` to the `,` or `}` after it (returned), copying it
/// to `out` without the whitespace between its tokens when there is an `out`.
fn value(b: &[u8], start: usize, mut out: Option<&mut Vec<u8>>) -> Option<usize> {
    let copy = |out: &mut Option<&mut Vec<u8>>, run: Range<usize>| {
        if let (Some(out), Some(bytes)) = (out.as_deref_mut(), b.get(run)) {
            out.extend_from_slice(bytes);
        }
    };
    let (mut i, mut run, mut depth, mut any) = (start, start, 0usize, false);
    loop {
        match *b.get(i)? {
            b' ' | b'\t' | b'\n' | b'\r' => {
                copy(&mut out, run..i);
                i += 1;
                run = i;
                continue;
            }
            b'"' => i = string_end(b, i)?.0,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' | b',' if depth == 0 => break,
            b'}' | b']' => {
                depth -= 1;
                i += 1;
            }
            _ => i += 1,
        }
        any = true;
    }
    copy(&mut out, run..i);
    any.then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(body: &str) -> Option<Vec<u8>> {
        Canonical::default().write(&[b"h"], body.as_bytes(), |n| n != "model").map(<[u8]>::to_vec)
    }

    #[test]
    fn members_are_sorted_spaceless_and_framed() {
        let got = canonical(r#" { "z" : [1, {"a": "x y"}], "model": "m", "a\u0062" :true } "#).unwrap();
        let mut want = Vec::new();
        for f in [&b"h"[..], b"ab"] {
            field(&mut want, f);
        }
        want.extend_from_slice(b"true\0");
        field(&mut want, b"z");
        want.extend_from_slice(b"[1,{\"a\":\"x y\"}]\0");
        assert_eq!(got, want);
    }

    #[test]
    fn what_is_not_an_object_is_refused() {
        for bad in [
            "",
            "[1]",
            "{",
            "{\"a\":}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{\"a\":1} x",
            "{\"a\":1]",
            "{a:1}",
            "{\"a\":\"x}",
            "{\"a\\\":1}",
        ] {
            assert!(canonical(bad).is_none(), "{bad}");
        }
        assert!(canonical(" {} ").is_some());
    }
}
