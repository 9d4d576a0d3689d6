//! Newline-delimited JSON, as Ollama streams its answers: bytes in as the network hands them,
//! one complete line out at a time. The reader faces the network, so a line is bounded (a
//! provider that never sends a newline costs a bounded buffer and an error, not the process's
//! memory) and any split of the bytes yields the same lines (property-tested below).

/// The longest line a provider may send: far above any real chunk, low enough to bound memory.
pub const MAX_LINE: usize = 16 * 1024 * 1024;

/// A line grew past [`MAX_LINE`] without ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

/// Buffers bytes and hands out whole lines, `\n` or `\r\n` ended, blank lines skipped.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    /// Where the unread bytes start; the consumed prefix is dropped once it outweighs the rest.
    start: usize,
    /// How far into the unread bytes no newline was found (the next search starts there).
    scanned: usize,
}

impl Reader {
    pub fn new() -> Self {
        Reader::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete non-blank line, without its line ending; `Ok(None)` when none is
    /// buffered yet.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        loop {
            let unread = &self.buf[self.start..];
            let Some(pos) = unread[self.scanned..].iter().position(|&b| b == b'\n').map(|p| p + self.scanned) else {
                self.scanned = unread.len();
                if unread.len() > MAX_LINE {
                    return Err(LineTooLong);
                }
                return Ok(None);
            };
            if pos > MAX_LINE {
                return Err(LineTooLong);
            }
            let line = trim_line(&unread[..pos]).to_vec();
            self.start += pos + 1;
            self.scanned = 0;
            if !line.is_empty() {
                return Ok(Some(line));
            }
        }
    }

    /// The end of the body: a last line the provider did not end with a newline, if any.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = trim_line(&self.buf[self.start..]).to_vec();
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        (!rest.is_empty()).then_some(rest)
    }

    /// Bytes buffered but not yet handed out as a line.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.start
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    line.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn all_lines(r: &mut Reader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            out.push(l);
        }
        out
    }

    #[test]
    fn lines_come_out_whole_across_pushes() {
        let mut r = Reader::new();
        r.push(b"{\"a\":1}\n{\"b\"");
        assert_eq!(all_lines(&mut r), vec![b"{\"a\":1}".to_vec()]);
        r.push(b":2}\r\n\n\n{\"c\":3}");
        assert_eq!(all_lines(&mut r), vec![b"{\"b\":2}".to_vec()]);
        assert_eq!(r.pending(), 7);
        assert_eq!(r.finish(), Some(b"{\"c\":3}".to_vec()));
        assert_eq!(r.finish(), None);
    }

    #[test]
    fn a_line_that_never_ends_is_refused_not_buffered_forever() {
        let mut r = Reader::new();
        let chunk = vec![b'x'; 1024 * 1024];
        let mut refused = false;
        for _ in 0..20 {
            r.push(&chunk);
            if r.next_line() == Err(LineTooLong) {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }

    proptest! {
        /// However the network splits the bytes, the same lines come out, in order.
        #[test]
        fn any_split_yields_the_same_lines(
            lines in proptest::collection::vec("[ -~]{0,40}", 0..12),
            crlf in any::<bool>(),
            cuts in proptest::collection::vec(0usize..600, 0..8),
        ) {
            let end = if crlf { "\r\n" } else { "\n" };
            let text: String = lines.iter().map(|l| format!("{l}{end}")).collect();
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut r = Reader::new();
            let mut got = Vec::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([bytes.len()]) {
                r.push(&bytes[from..c]);
                from = c;
                got.extend(all_lines(&mut r));
            }
            got.extend(r.finish());
            let want: Vec<Vec<u8>> =
                lines.iter().map(|l| l.trim().as_bytes().to_vec()).filter(|l| !l.is_empty()).collect();
            prop_assert_eq!(got, want);
        }

        /// Arbitrary bytes, arbitrarily split, never panic and never yield a line with a newline.
        #[test]
        fn arbitrary_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..2048),
            cuts in proptest::collection::vec(0usize..2048, 0..8),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut r = Reader::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                r.push(&data[from..c]);
                from = c;
                while let Ok(Some(l)) = r.next_line() {
                    prop_assert!(!l.contains(&b'\n') && !l.is_empty());
                }
            }
            if let Some(l) = r.finish() {
                prop_assert!(!l.contains(&b'\n'));
            }
            prop_assert_eq!(r.pending(), 0);
        }
    }
}
