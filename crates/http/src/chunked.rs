//! The chunked transfer coding of an HTTP/1.1 answer (RFC 9112 §7.1), decoded in place from the
//! connection's read buffer: data comes out as slices of that buffer, never copied.

use bytes::{Buf, Bytes, BytesMut};

/// Longest chunk-size line (size and extensions) accepted before the answer counts as broken.
const MAX_SIZE_LINE: usize = 4096;
/// Most trailer bytes accepted after the last chunk (they are read and dropped).
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct Decoder {
    state: State,
    trailer_bytes: usize,
}

#[derive(Debug, Default)]
enum State {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

#[derive(Debug, PartialEq)]
pub enum Chunk {
    Data(Bytes),
    End,
}

impl Decoder {
    /// The next piece of the body from `buf`, or `None` when more bytes are needed.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Chunk>, &'static str> {
        loop {
            match &mut self.state {
                State::Size => {
                    let Some(line) = take_line(buf, MAX_SIZE_LINE)? else { return Ok(None) };
                    let size = parse_size(&line)?;
                    self.state = if size == 0 { State::Trailers } else { State::Data(size) };
                }
                State::Data(left) => {
                    if buf.is_empty() {
                        return Ok(None);
                    }
                    let take = (*left).min(buf.len() as u64) as usize;
                    *left -= take as u64;
                    if *left == 0 {
                        self.state = State::DataEnd;
                    }
                    return Ok(Some(Chunk::Data(buf.split_to(take).freeze())));
                }
                State::DataEnd => match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        buf.advance(1);
                        self.state = State::Size;
                    }
                    Some(b'\r') if buf.len() < 2 => return Ok(None),
                    Some(b'\r') if buf[1] == b'\n' => {
                        buf.advance(2);
                        self.state = State::Size;
                    }
                    Some(_) => return Err("a chunk is longer than its size says"),
                },
                State::Trailers => {
                    let room = MAX_TRAILERS.saturating_sub(self.trailer_bytes).max(2);
                    let Some(line) = take_line(buf, room)? else { return Ok(None) };
                    self.trailer_bytes += line.len();
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err("the answer's trailers are too large");
                    }
                    if trim_eol(&line).is_empty() {
                        self.state = State::Done;
                        return Ok(Some(Chunk::End));
                    }
                }
                State::Done => return Ok(Some(Chunk::End)),
            }
        }
    }
}

/// Takes one line, its `\n` included, or `None` if `buf` does not hold a whole one yet.
fn take_line(buf: &mut BytesMut, max: usize) -> Result<Option<BytesMut>, &'static str> {
    match memchr::memchr(b'\n', &buf[..buf.len().min(max)]) {
        Some(end) => Ok(Some(buf.split_to(end + 1))),
        None if buf.len() >= max => Err("a chunk-size or trailer line is too long"),
        None => Ok(None),
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The hex size at the start of a chunk-size line; extensions (`;name=value`) are ignored.
fn parse_size(line: &[u8]) -> Result<u64, &'static str> {
    let line = trim_eol(line);
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    let rest = &line[digits..];
    if digits == 0 || digits > 16 {
        return Err("a chunk size is missing or out of range");
    }
    // Whitespace may precede extensions (RFC 9112's BWS); anything else after the size is broken.
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err("a chunk size is not hexadecimal");
    }
    let hex = std::str::from_utf8(&line[..digits]).map_err(|_| "a chunk size is not hexadecimal")?;
    u64::from_str_radix(hex, 16).map_err(|_| "a chunk size is out of range")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed `step` bytes at a time; returns the body and whether it ended.
    fn decode_in_steps(wire: &[u8], step: usize) -> Result<(Vec<u8>, bool), &'static str> {
        let mut d = Decoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for piece in wire.chunks(step) {
            buf.extend_from_slice(piece);
            while let Some(chunk) = d.decode(&mut buf)? {
                match chunk {
                    Chunk::Data(b) => body.extend_from_slice(&b),
                    Chunk::End => return Ok((body, true)),
                }
            }
        }
        Ok((body, false))
    }

    #[test]
    fn decodes_chunks_however_the_bytes_arrive() {
        let wire = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for step in [1, 2, 3, 7, wire.len()] {
            assert_eq!(decode_in_steps(wire, step).unwrap(), (b"hello, world".to_vec(), true), "step {step}");
        }
    }

    #[test]
    fn accepts_bare_newlines_and_upper_case_hex() {
        let wire = b"A\nabcdefghij\n0\n\n";
        assert_eq!(decode_in_steps(wire, 1).unwrap(), (b"abcdefghij".to_vec(), true));
    }

    #[test]
    fn an_unfinished_body_has_not_ended() {
        assert_eq!(decode_in_steps(b"5\r\nhel", 2).unwrap(), (b"hel".to_vec(), false));
        assert_eq!(decode_in_steps(b"5\r\nhello\r\n0\r\n", 2).unwrap(), (b"hello".to_vec(), false));
    }

    #[test]
    fn refuses_broken_framing() {
        assert!(decode_in_steps(b"zz\r\n", 4).is_err(), "not hex");
        assert!(decode_in_steps(b"\r\n", 4).is_err(), "no size");
        assert!(decode_in_steps(b"3 x\r\nabc\r\n", 64).is_err(), "junk after the size");
        assert!(decode_in_steps(b"11111111111111111\r\n", 64).is_err(), "over 64 bits");
        assert!(decode_in_steps(b"3\r\nabcd\r\n", 64).is_err(), "longer than its size");
        assert!(decode_in_steps(&[b'1'; MAX_SIZE_LINE + 1], 512).is_err(), "endless size line");
        let mut trailers = b"0\r\n".to_vec();
        trailers.extend(std::iter::repeat_n(b"x-t: 1\r\n".as_slice(), 4096).flatten());
        assert!(decode_in_steps(&trailers, 100).is_err(), "endless trailers");
    }

    #[test]
    fn data_is_sliced_from_the_buffer_without_copies() {
        let mut buf = BytesMut::from(&b"4\r\nabcd\r\n"[..]);
        let start = buf.as_ptr() as usize;
        let Some(Chunk::Data(b)) = Decoder::default().decode(&mut buf).unwrap() else { panic!("no data") };
        assert_eq!(b.as_ptr() as usize, start + 3);
    }
}
