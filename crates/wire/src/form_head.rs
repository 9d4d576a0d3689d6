//! The head of a `multipart/form-data` upload that is streamed, not read whole (`/v1/files`):
//! the text fields sent before the first file part, read from the bytes received so far. The
//! gateway decides where the upload goes from them (`purpose`, LiteLLM's `custom_llm_provider`
//! and `target_model_names`), rebuilds them without its own fields ([`rebuild`]), and forwards
//! the file part and everything after it as it arrives. The OpenAI SDKs (httpx, `fetch`'s
//! `FormData`) send the text fields first.

use crate::error::ApiError;

/// The most text fields read before the file part.
const MAX_FIELDS: usize = 32;
/// The longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;

/// What the bytes received so far say.
#[derive(Debug, PartialEq, Eq)]
pub enum Scan<'a> {
    /// The head is not complete yet: read more (within the caller's bound).
    NeedMore,
    /// The text fields before the first file part, and where that part's delimiter line starts.
    Head { fields: Vec<(&'a str, &'a str)>, file_at: usize },
}

fn refused(why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "The multipart/form-data body could not be read ({why}). Upload as the OpenAI SDK does: multipart/form-data with a `purpose` field and a `file` part."
    ))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let tail = hay.get(from..)?;
    memchr::memmem::find(tail, needle).map(|p| p + from)
}

/// Reads `buf`, the start of a form delimited by `boundary`.
pub fn scan<'a>(buf: &'a [u8], boundary: &str) -> Result<Scan<'a>, ApiError> {
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
        return Err(refused("its boundary is missing or longer than 70 characters"));
    }
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    // The first delimiter line opens the body (a preamble is not sent by any SDK).
    if buf.len() < delimiter.len() + 2 {
        return match delimiter.starts_with(buf) || buf.starts_with(delimiter) {
            true => Ok(Scan::NeedMore),
            false => Err(refused("it does not start with its boundary")),
        };
    }
    if !buf.starts_with(delimiter) {
        return Err(refused("it does not start with its boundary"));
    }
    let mut fields = Vec::new();
    let mut at = 0usize;
    for _ in 0..=MAX_FIELDS {
        let after = at + delimiter.len();
        match buf.get(after..after + 2) {
            None => return Ok(Scan::NeedMore),
            Some(b"--") => return Err(refused("it has no `file` part")),
            Some(b"\r\n") => {}
            Some(_) => return Err(refused("a boundary line is not followed by a line break")),
        }
        let head_start = after + 2;
        let Some(head_end) = find(buf, b"\r\n\r\n", head_start) else { return Ok(Scan::NeedMore) };
        let head = std::str::from_utf8(buf.get(head_start..head_end).unwrap_or_default())
            .map_err(|_| refused("a part's headers are not text"))?;
        let disposition = disposition(head).ok_or_else(|| refused("a part has no Content-Disposition name"))?;
        if disposition.file {
            return Ok(Scan::Head { fields, file_at: at });
        }
        let value_start = head_end + 4;
        // The value ends at the CRLF before the next delimiter line.
        let mut closing = Vec::with_capacity(delimiter.len() + 2);
        closing.extend_from_slice(b"\r\n");
        closing.extend_from_slice(delimiter);
        let Some(value_end) = find(buf, &closing, value_start) else { return Ok(Scan::NeedMore) };
        if fields.len() == MAX_FIELDS {
            return Err(refused(&format!("more than {MAX_FIELDS} fields before the file")));
        }
        let value = std::str::from_utf8(buf.get(value_start..value_end).unwrap_or_default())
            .map_err(|_| refused(&format!("the field `{}` is not UTF-8 text", disposition.name)))?;
        fields.push((disposition.name, value));
        at = value_end + 2;
    }
    Err(refused(&format!("more than {MAX_FIELDS} fields before the file")))
}

struct Disposition<'a> {
    name: &'a str,
    file: bool,
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"` header, and whether it
/// carries a `filename` (a file part).
fn disposition(head: &str) -> Option<Disposition<'_>> {
    head.split("\r\n").find_map(|line| {
        let (header, value) = line.split_once(':')?;
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        let mut name = None;
        let mut file = false;
        for p in value.split(';') {
            let Some((k, v)) = p.split_once('=') else { continue };
            match k.trim() {
                "name" => name = Some(v.trim().trim_matches('"')),
                "filename" | "filename*" => file = true,
                _ => {}
            }
        }
        Some(Disposition { name: name?, file })
    })
}

/// The text fields as form parts on `boundary`, each ending with the line break that precedes
/// the next delimiter line: followed by the file part's delimiter line, they make the form again.
pub fn rebuild(fields: &[(&str, &str)], boundary: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|(n, v)| n.len() + v.len() + boundary.len() + 56).sum());
    for (name, value) in fields {
        out.extend_from_slice(b"--");
        out.extend_from_slice(boundary.as_bytes());
        out.extend_from_slice(b"\r\nContent-Disposition: form-data; name=\"");
        // A name is echoed from the client's own header line, where it held no quote.
        out.extend_from_slice(name.replace(['"', '\r', '\n'], "").as_bytes());
        out.extend_from_slice(b"\"\r\n\r\n");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)], file: &[u8], boundary: &str) -> Vec<u8> {
        let mut out = rebuild(fields, boundary);
        out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        out.extend_from_slice(
            b"Content-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n",
        );
        out.extend_from_slice(file);
        out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn reads_the_fields_before_the_file() {
        let body = form(&[("purpose", "batch"), ("custom_llm_provider", "azure")], b"{\"a\":1}\n", "xyz");
        let Scan::Head { fields, file_at } = scan(&body, "xyz").unwrap() else { panic!("need more") };
        assert_eq!(fields, [("purpose", "batch"), ("custom_llm_provider", "azure")]);
        assert!(body[file_at..].starts_with(b"--xyz\r\nContent-Disposition: form-data; name=\"file\""));
        // Rebuilt without the gateway's field, the form is the client's but for it.
        let mut again = rebuild(&[("purpose", "batch")], "xyz");
        again.extend_from_slice(&body[file_at..]);
        assert_eq!(again, form(&[("purpose", "batch")], b"{\"a\":1}\n", "xyz"));
    }

    #[test]
    fn asks_for_more_until_the_file_part_begins() {
        let body = form(&[("purpose", "batch")], b"data", "b");
        let file_at = match scan(&body, "b").unwrap() {
            Scan::Head { file_at, .. } => file_at,
            Scan::NeedMore => panic!("complete head"),
        };
        let head_end = file_at + body[file_at..].windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        for cut in 0..head_end {
            assert_eq!(scan(&body[..cut], "b").unwrap(), Scan::NeedMore, "cut at {cut}");
        }
    }

    #[test]
    fn refuses_forms_it_cannot_stream() {
        for bad in [&b"nothing here at all"[..], b"--b\r\nX: y\r\n\r\nv\r\n--b--", b"--bxy"] {
            assert_eq!(scan(bad, "b").unwrap_err().status, 400, "{}", String::from_utf8_lossy(bad));
        }
        // A form without a file part.
        let e = scan(b"--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b--\r\n", "b");
        assert!(e.unwrap_err().message.contains("no `file` part"));
        let many: Vec<(&str, &str)> = vec![("x", "1"); MAX_FIELDS + 1];
        assert!(scan(&form(&many, b"", "b"), "b").is_err());
    }

    proptest::proptest! {
        /// Any bytes scan without a panic, and a head found lies within them.
        #[test]
        fn any_bytes_scan_safely(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Ok(Scan::Head { file_at, .. }) = scan(&body, "b") {
                proptest::prop_assert!(file_at < body.len());
            }
        }

        /// A well-formed form with any field values and any file, cut anywhere, gives either
        /// "need more" or exactly its fields; a mutated byte never panics.
        #[test]
        fn a_form_cut_or_mutated_reads_its_fields_or_asks_for_more(
            purpose in "[ -~]{0,40}",
            provider in "[a-z_]{1,12}",
            file in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            cut in 0usize..600,
            flip in 0usize..600,
            byte in proptest::num::u8::ANY,
        ) {
            let body = form(&[("purpose", &purpose), ("custom_llm_provider", &provider)], &file, "sluice-b0undary");
            match scan(&body, "sluice-b0undary") {
                Ok(Scan::Head { fields, file_at }) => {
                    // A value that happens to hold the delimiter ends early: only such values differ.
                    if !purpose.contains("--sluice-b0undary") {
                        proptest::prop_assert_eq!(fields, vec![("purpose", purpose.as_str()), ("custom_llm_provider", provider.as_str())]);
                    }
                    proptest::prop_assert!(body[file_at..].starts_with(b"--sluice-b0undary\r\n"));
                }
                other => proptest::prop_assert!(false, "{:?}", other),
            }
            let cut = cut.min(body.len());
            if let Ok(Scan::Head { fields, .. }) = scan(&body[..cut], "sluice-b0undary") {
                proptest::prop_assert_eq!(fields.len(), 2);
            }
            let mut mutated = body.clone();
            if let Some(b) = mutated.get_mut(flip) {
                *b = byte;
            }
            let _ = scan(&mutated, "sluice-b0undary");
        }
    }
}
