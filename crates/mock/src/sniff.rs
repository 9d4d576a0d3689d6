//! Reads the few request fields the mock acts on (`model`, `stream`,
//! `stream_options.include_usage`) without building a tree of the whole body.
//!
//! Chat bodies are often 16 KB of messages with `model` after them (the OpenAI Python SDK sends
//! `messages` first), so a fast scanner walks the top-level object, skipping strings with
//! `memchr`. Anything it does not understand — escapes in the model name, odd syntax — falls back
//! to serde_json, which is also the judge of what counts as bad JSON.

use std::borrow::Cow;

use memchr::memchr2;
use serde::Deserialize;

/// The fields the mock needs from an OpenAI-style request.
#[derive(Debug, Default, PartialEq)]
pub struct Sniffed<'a> {
    pub model: Option<Cow<'a, str>>,
    pub stream: bool,
    pub include_usage: bool,
}

/// Finds the fields, or returns serde_json's description of why the body is not JSON.
pub fn sniff(body: &[u8]) -> Result<Sniffed<'_>, String> {
    if let Some(s) = Scanner::new(body).top_level() {
        return Ok(s);
    }
    fallback(body)
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

fn fallback(body: &[u8]) -> Result<Sniffed<'_>, String> {
    #[derive(Deserialize)]
    struct Request<'a> {
        #[serde(borrow, default)]
        model: Option<Cow<'a, str>>,
        #[serde(default)]
        stream: Option<bool>,
        #[serde(default)]
        stream_options: Option<StreamOptions>,
    }
    let r: Request<'_> = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(Sniffed {
        model: r.model,
        stream: r.stream.unwrap_or(false),
        include_usage: r.stream_options.and_then(|o| o.include_usage).unwrap_or(false),
    })
}

/// A structural scanner: it checks nesting and string boundaries, not every token, and gives up
/// (returns `None`) rather than guess.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Scanner { b, i: 0 }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// At an opening quote: returns the raw contents and whether they contain escapes.
    fn string(&mut self) -> Option<(&'a [u8], bool)> {
        self.expect(b'"')?;
        let start = self.i;
        let mut escaped = false;
        loop {
            let off = memchr2(b'"', b'\\', self.b.get(self.i..)?)?;
            self.i += off;
            if self.b[self.i] == b'\\' {
                escaped = true;
                self.i += 2;
            } else {
                let s = &self.b[start..self.i];
                self.i += 1;
                return Some((s, escaped));
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => self.skip_container(),
            b't' | b'f' | b'n' | b'-' | b'0'..=b'9' => {
                let start = self.i;
                while let Some(b'a'..=b'z' | b'0'..=b'9' | b'-' | b'+' | b'.' | b'E') = self.peek() {
                    self.i += 1;
                }
                (self.i > start).then_some(())
            }
            _ => None,
        }
    }

    fn skip_container(&mut self) -> Option<()> {
        let mut depth = 0usize;
        loop {
            match self.peek()? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    self.i += 1;
                    if depth == 0 {
                        return Some(());
                    }
                }
                _ => self.i += 1,
            }
        }
    }

    fn top_level(mut self) -> Option<Sniffed<'a>> {
        let mut out = Sniffed::default();
        self.ws();
        self.expect(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let (key, _) = self.string()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
                match key {
                    b"model" => match self.peek()? {
                        b'"' => {
                            let (raw, escaped) = self.string()?;
                            // Escapes and raw control characters: let serde decode or reject.
                            if escaped || raw.iter().any(|&b| b < 0x20) {
                                return None;
                            }
                            out.model = Some(Cow::Borrowed(std::str::from_utf8(raw).ok()?));
                        }
                        b'n' if self.literal(b"null") => out.model = None,
                        _ => return None,
                    },
                    b"stream" => {
                        if self.literal(b"true") {
                            out.stream = true;
                        } else if self.literal(b"false") || self.literal(b"null") {
                            out.stream = false;
                        } else {
                            return None;
                        }
                    }
                    b"stream_options" => {
                        let start = self.i;
                        self.skip_value()?;
                        // Small and rare: let serde read it properly.
                        let o: Option<StreamOptions> = serde_json::from_slice(&self.b[start..self.i]).ok()?;
                        out.include_usage = o.and_then(|o| o.include_usage).unwrap_or(false);
                    }
                    _ => self.skip_value()?,
                }
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.ws();
        (self.i == self.b.len()).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fast(body: &str) -> Option<Sniffed<'_>> {
        Scanner::new(body.as_bytes()).top_level()
    }

    #[test]
    fn finds_model_after_large_messages() {
        let filler = "x\\\"model\\\": \\\"evil\\\" ".repeat(1000);
        let body = format!(
            r#"{{"messages":[{{"role":"user","content":"{filler}"}}],"tools":[{{"model":"nested"}}],"model":"gpt-4o","stream":true,"stream_options":{{"include_usage":true}}}}"#
        );
        let s = fast(&body).expect("fast path");
        assert_eq!(s.model.as_deref(), Some("gpt-4o"));
        assert!(s.stream && s.include_usage);
        assert_eq!(sniff(body.as_bytes()).unwrap(), s);
    }

    #[test]
    fn agrees_with_serde() {
        for body in [
            r#"{"model":"a"}"#,
            r#" { "model" : "a" , "stream" : false , "n": 1.5e3, "x": null } "#,
            r#"{"stream":null,"model":null}"#,
            r#"{}"#,
            r#"{"model":"caf\u00e9"}"#,
            r#"{"model":"a","stream_options":null}"#,
        ] {
            assert_eq!(sniff(body.as_bytes()).unwrap(), fallback(body.as_bytes()).unwrap());
        }
        assert_eq!(sniff(br#"{"model":"caf\u00e9"}"#).unwrap().model.as_deref(), Some("café"));
    }

    #[test]
    fn rejects_bad_json() {
        for body in [
            "",
            "this is not json",
            "{",
            r#"{"model":"a""#,
            r#"{"model":"a"}}"#,
            r#"{"model":"a",}"#,
            "[1,2]",
            r#"{"model":5}"#,
            r#"{"stream":"yes"}"#,
        ] {
            assert!(sniff(body.as_bytes()).is_err(), "{body:?} should be rejected");
        }
    }
}
