//! A strict JSON skipper: finds where a value ends, checking its syntax, without building it.
//!
//! serde_json skips an ignored string a word at a time; a chat request is mostly one long string
//! (the prompt), so that scan was a fifth of the gateway's instructions per request. Here string
//! bodies are crossed with `memchr` (SIMD) and checked for control characters with a vectorised
//! minimum. It accepts exactly the JSON serde_json accepts, up to [`MAX_DEPTH`] levels of nesting;
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
        self.expect(b'"')?;
        let mut escaped = false;
        loop {
            let rest = &self.bytes[self.pos..];
            let stop = memchr::memchr2(b'"', b'\\', rest).ok_or(Refused)?;
            // A raw control character inside a string is not JSON.
            if rest[..stop].iter().copied().min().is_some_and(|b| b < 0x20) {
                return Err(Refused);
            }
            self.pos += stop + 1;
            if rest[stop] == b'"' {
                return Ok(escaped);
            }
            escaped = true;
            match self.peek().ok_or(Refused)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.pos += 1,
                b'u' => {
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
