//! A strict JSON skipper: finds where a value ends, checking its syntax, without building it.
//!
//! serde_json skips an ignored string a word at a time; a chat request is mostly one long string
//! (the prompt), so that scan was a large share of the gateway's work per request. Here string
//! bodies are crossed with SIMD, looking for quotes, backslashes and control characters at once.
//! It accepts exactly the JSON serde_json accepts, up to [`MAX_DEPTH`] levels of nesting;
//! anything it refuses is handed back to serde_json, whose error message the client then sees.

/// Nesting this scanner follows before giving up (serde_json's own limit is 128).
pub(crate) const MAX_DEPTH: usize = 100;

/// The scanner refused the input: malformed, or nested deeper than [`MAX_DEPTH`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Refused;

type Scan<T> = Result<T, Refused>;

/// A cursor over a JSON text.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor { bytes, pos: 0 }
    }

    /// The whole text being crossed.
    pub(crate) fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Skips JSON whitespace (space, tab, line feed, carriage return).
    pub(crate) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    /// Consumes `byte` or refuses.
    pub(crate) fn expect(&mut self, byte: u8) -> Scan<()> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(Refused)
        }
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// Skips one value starting here (no leading whitespace), `depth` levels deep already.
    pub(crate) fn skip_value(&mut self, depth: usize) -> Scan<()> {
        match self.peek().ok_or(Refused)? {
            b'"' => self.skip_string().map(|_| ()),
            b'{' => self.skip_object(depth + 1),
            b'[' => self.skip_array(depth + 1),
            b't' => self.skip_literal(b"true"),
            b'f' => self.skip_literal(b"false"),
            b'n' => self.skip_literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_number(),
            _ => Err(Refused),
        }
    }

    /// Skips a string starting at its opening quote; says whether it held an escape.
    pub(crate) fn skip_string(&mut self) -> Scan<bool> {
        self.cross_string().map(|(escaped, _)| escaped)
    }

    /// Skips a string starting at its opening quote; says whether it held a `\u` escape (which
    /// may be a lone surrogate: valid to this scanner, refused by serde_json's decoder).
    pub(crate) fn skip_string_noting_unicode(&mut self) -> Scan<bool> {
        self.cross_string().map(|(_, unicode)| unicode)
    }

    /// Crosses a string: whether it held an escape, and whether one was a `\u` escape.
    #[inline(always)]
    fn cross_string(&mut self) -> Scan<(bool, bool)> {
        self.expect(b'"')?;
        let (mut escaped, mut unicode) = (false, false);
        loop {
            let rest = &self.bytes[self.pos..];
            let stop = plain_run(rest).ok_or(Refused)?;
            self.pos += stop + 1;
            match rest[stop] {
                b'"' => return Ok((escaped, unicode)),
                b'\\' => escaped = true,
                // A raw control character inside a string is not JSON.
                _ => return Err(Refused),
            }
            match self.peek().ok_or(Refused)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                b'u' => {
                    unicode = true;
                    let hex = self.bytes.get(self.pos + 1..self.pos + 5).ok_or(Refused)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Refused);
                    }
                    self.pos += 5;
                }
                _ => return Err(Refused),
            }
        }
    }

    fn skip_literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.bytes[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Refused)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn skip_number(&mut self) -> Scan<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.skip_digits(),
            _ => return Err(Refused),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        Ok(())
    }

    fn skip_digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Scan<()> {
        let start = self.pos;
        self.skip_digits();
        if self.pos == start {
            Err(Refused)
        } else {
            Ok(())
        }
    }

    fn skip_array(&mut self, depth: usize) -> Scan<()> {
        if depth > MAX_DEPTH {
            return Err(Refused);
        }
        self.expect(b'[')?;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.skip_value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Refused),
            }
        }
    }

    fn skip_object(&mut self, depth: usize) -> Scan<()> {
        if depth > MAX_DEPTH {
            return Err(Refused);
        }
        self.expect(b'{')?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.skip_string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            self.skip_value(depth)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(Refused),
            }
        }
    }
}

/// Whether `b` ends a string's plain run: a quote, a backslash, or a control character (which
/// JSON does not allow raw inside a string).
fn ends_plain_run(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Where the first byte of `s` that [`ends_plain_run`] is.
///
/// One SIMD pass finds all three kinds at once. `memchr2` for the quote and backslash plus a
/// vectorised minimum for control characters crossed a prompt twice, and cost more to set up
/// than a short string takes to cross: a chat answer has some 30 short strings.
pub(crate) fn plain_run(s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() >= 64 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { x86::plain_run_avx2(s) };
        }
        // SAFETY: SSE2 is part of every x86_64 CPU.
        unsafe { x86::plain_run_sse2(s) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    s.iter().position(|&b| ends_plain_run(b))
}

/// Whether every byte of `s` is ASCII: a request body nearly always is, and then it is UTF-8
/// without the costlier validation simdutf8 does.
pub(crate) fn is_ascii(s: &[u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() >= 128 && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { x86::is_ascii_avx2(s) };
        }
    }
    s.is_ascii()
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::ends_plain_run;
    use std::arch::x86_64::*;

    /// [`super::plain_run`] 16 bytes at a time (SSE2 is part of every x86_64 CPU).
    #[target_feature(enable = "sse2")]
    pub(super) fn plain_run_sse2(s: &[u8]) -> Option<usize> {
        let mut at = 0;
        let (quote, backslash, below_space) =
            (_mm_set1_epi8(b'"' as i8), _mm_set1_epi8(b'\\' as i8), _mm_set1_epi8(0x1f));
        while at + 16 <= s.len() {
            // SAFETY: the 16 bytes from `at` lie within `s`; the load needs no alignment.
            let v = unsafe { _mm_loadu_si128(s.as_ptr().add(at).cast()) };
            // Unsigned `v <= 0x1f` is `min(v, 0x1f) == v`.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);
            let hits = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), control);
            let mask = _mm_movemask_epi8(hits) as u32;
            if mask != 0 {
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 16;
        }
        s[at..].iter().position(|&b| ends_plain_run(b)).map(|p| at + p)
    }

    /// [`super::plain_run`] 64 bytes at a time (two 32-byte vectors, one test for both).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn plain_run_avx2(s: &[u8]) -> Option<usize> {
        let (quote, backslash, below_space) =
            (_mm256_set1_epi8(b'"' as i8), _mm256_set1_epi8(b'\\' as i8), _mm256_set1_epi8(0x1f));
        let hits = |at: usize| {
            // SAFETY: callers pass `at` with 32 bytes of `s` from it; the load needs no alignment.
            let v = unsafe { _mm256_loadu_si256(s.as_ptr().add(at).cast()) };
            // Unsigned `v <= 0x1f` is `min(v, 0x1f) == v`.
            let control = _mm256_cmpeq_epi8(_mm256_min_epu8(v, below_space), v);
            _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash)), control)
        };
        let mut at = 0;
        while at + 64 <= s.len() {
            let (low, high) = (hits(at), hits(at + 32));
            if _mm256_testz_si256(_mm256_or_si256(low, high), _mm256_or_si256(low, high)) == 0 {
                let mask =
                    (_mm256_movemask_epi8(low) as u32 as u64) | ((_mm256_movemask_epi8(high) as u32 as u64) << 32);
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 64;
        }
        plain_run_sse2(&s[at..]).map(|p| at + p)
    }

    /// [`super::is_ascii`] 128 bytes at a time: the high bits of four vectors are gathered with
    /// ORs and tested once at the end (a non-ASCII body is rare, so there is no early exit).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn is_ascii_avx2(s: &[u8]) -> bool {
        // SAFETY: callers pass `at` with 32 bytes of `s` from it; the load needs no alignment.
        let load = |at: usize| unsafe { _mm256_loadu_si256(s.as_ptr().add(at).cast()) };
        let mut seen = _mm256_setzero_si256();
        let mut at = 0;
        while at + 128 <= s.len() {
            let pair = |a: __m256i, b: __m256i| _mm256_or_si256(a, b);
            seen = pair(seen, pair(pair(load(at), load(at + 32)), pair(load(at + 64), load(at + 96))));
            at += 128;
        }
        _mm256_movemask_epi8(seen) == 0 && s[at..].is_ascii()
    }
}

/// Visits the members of a top-level JSON object (`text` is the whole document): `member` gets
/// each key's raw text (between the quotes, escapes undecoded, and whether it has any) and the
/// value's text. Refuses anything malformed, including trailing characters after the object.
pub(crate) fn object_members<'a>(
    text: &'a str,
    mut member: impl FnMut(&'a str, bool, &'a str) -> Scan<()>,
) -> Scan<()> {
    let mut c = Cursor::new(text.as_bytes());
    c.skip_ws();
    c.expect(b'{')?;
    c.skip_ws();
    if c.peek() == Some(b'}') {
        c.pos += 1;
    } else {
        loop {
            c.skip_ws();
            let key_start = c.pos + 1;
            let escaped = c.skip_string()?;
            let key = text.get(key_start..c.pos - 1).ok_or(Refused)?;
            c.skip_ws();
            c.expect(b':')?;
            c.skip_ws();
            let value_start = c.pos;
            c.skip_value(1)?;
            member(key, escaped, text.get(value_start..c.pos).ok_or(Refused)?)?;
            c.skip_ws();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {
                    c.pos += 1;
                    break;
                }
                _ => return Err(Refused),
            }
        }
    }
    c.skip_ws();
    if c.at_end() {
        Ok(())
    } else {
        Err(Refused)
    }
}

/// Visits the items of a JSON array (`text` is the whole document): `item` gets each one's text.
/// Refuses anything malformed, including trailing characters after the array.
pub(crate) fn array_items<'a>(text: &'a str, mut item: impl FnMut(&'a str) -> Scan<()>) -> Scan<()> {
    let mut c = Cursor::new(text.as_bytes());
    c.skip_ws();
    c.expect(b'[')?;
    c.skip_ws();
    if c.peek() == Some(b']') {
        c.pos += 1;
    } else {
        loop {
            c.skip_ws();
            let start = c.pos;
            c.skip_value(1)?;
            item(text.get(start..c.pos).ok_or(Refused)?)?;
            c.skip_ws();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b']') => {
                    c.pos += 1;
                    break;
                }
                _ => return Err(Refused),
            }
        }
    }
    c.skip_ws();
    if c.at_end() {
        Ok(())
    } else {
        Err(Refused)
    }
}

/// The raw texts of the top-level members named in `names`, in that order (null reads as
/// absent, as serde reads an `Option`). `None` for what serde_json is left to judge and word:
/// malformed JSON, an escaped key (serde would decode it), a named field given twice (serde
/// refuses it, null or not).
pub(crate) fn fields<'a, const N: usize>(text: &'a str, names: [&str; N]) -> Option<[Option<&'a str>; N]> {
    let mut values = [None; N];
    let mut seen = [false; N];
    object_members(text, |key, escaped, value| {
        if escaped {
            return Err(Refused);
        }
        let Some(i) = names.iter().position(|name| *name == key) else { return Ok(()) };
        if std::mem::replace(&mut seen[i], true) {
            return Err(Refused);
        }
        values[i] = (value != "null").then_some(value);
        Ok(())
    })
    .ok()?;
    Some(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skips(s: &str) -> bool {
        let mut c = Cursor::new(s.as_bytes());
        c.skip_ws();
        c.skip_value(0).is_ok() && {
            c.skip_ws();
            c.at_end()
        }
    }

    /// Every length around the SIMD widths, with the stop byte at every position (or none).
    #[test]
    fn plain_run_finds_the_first_stop_byte() {
        let reference = |s: &[u8]| s.iter().position(|&b| ends_plain_run(b));
        for len in 0..200 {
            for stop in [None, Some(b'"'), Some(b'\\'), Some(0x00), Some(0x1f), Some(b'\n')] {
                for at in 0..len.max(1) {
                    // Bytes either side of the stop bytes' values, and multi-byte UTF-8.
                    let mut s: Vec<u8> =
                        (0..len).map(|i| [b'a', 0x20, 0x21, b']', 0x7f, 0xc3, 0xa9, 0xff][i % 8]).collect();
                    if let (Some(b), true) = (stop, at < len) {
                        s[at] = b;
                        if at + 3 < len {
                            s[at + 3] = b'"';
                        }
                    }
                    assert_eq!(plain_run(&s), reference(&s), "len {len} stop {stop:?} at {at}");
                    if stop.is_none() {
                        break;
                    }
                }
            }
        }
    }

    /// Every length around the vector widths, with one non-ASCII byte at every position (or none).
    #[test]
    fn is_ascii_sees_every_byte() {
        for len in 0..300 {
            let plain: Vec<u8> = (0..len).map(|i| (i % 128) as u8).collect();
            assert!(is_ascii(&plain), "len {len}");
            for at in 0..len {
                for high in [0x80, 0xc3, 0xff] {
                    let mut s = plain.clone();
                    s[at] = high;
                    assert!(!is_ascii(&s), "len {len} byte {high:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn fields_are_picked_by_name_in_the_order_asked() {
        let text = r#"{"b": [1], "x": 1, "x": 2, "a": "s", "c": null}"#;
        assert_eq!(fields(text, ["a", "b", "c", "d"]), Some([Some(r#""s""#), Some("[1]"), None, None]));
        // A named field twice, or any escaped key, is left to serde_json.
        assert_eq!(fields(r#"{"a": 1, "a": null}"#, ["a"]), None);
        assert_eq!(fields(r#"{"\u0061": 1}"#, ["b"]), None);
        assert_eq!(fields(r#"{"a": 1"#, ["a"]), None);
    }

    #[test]
    fn accepts_what_serde_accepts_on_hand_picked_cases() {
        let cases = [
            r#""""#,
            r#""a\"b\\c\/d\b\f\n\r\t\u00e9\uD83D\uDE00""#,
            r#""é 😀 non-ascii""#,
            "0",
            "-0",
            "12.5e-3",
            "1E+9",
            "-",
            "01",
            "1.",
            ".5",
            "1e",
            "+1",
            "true",
            "tru",
            "nul",
            "[]",
            "[1,]",
            "[,1]",
            "{}",
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{1:2}"#,
            r#"{"a":[1,{"b":null}],"c":"d"}"#,
            "\"a\u{1}b\"",
            "\"a\u{7f}b\"",
            r#""\x""#,
            r#""\u12G4""#,
            r#""\u12""#,
            "\"unterminated",
            " [ 1 , 2 ] ",
        ];
        for s in cases {
            let serde = serde_json::from_str::<serde::de::IgnoredAny>(s).is_ok();
            assert_eq!(skips(s), serde, "{s:?}");
        }
    }

    #[test]
    fn refuses_nesting_beyond_its_depth() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(skips(&nested(MAX_DEPTH)));
        assert!(!skips(&nested(MAX_DEPTH + 1)));
    }

    #[test]
    fn lists_top_level_members_with_their_raw_values() {
        let mut seen = Vec::new();
        object_members(r#" {"a" : [1, "x"], "b\n": {"c":2} ,"d":null} "#, |k, esc, v| {
            seen.push((k.to_owned(), esc, v.to_owned()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [
                ("a".into(), false, r#"[1, "x"]"#.into()),
                (r"b\n".into(), true, r#"{"c":2}"#.into()),
                ("d".into(), false, "null".into())
            ]
        );
        assert!(object_members(r#"{"a":1} x"#, |_, _, _| Ok(())).is_err());
        assert!(object_members(r#"[1]"#, |_, _, _| Ok(())).is_err());
    }
}
