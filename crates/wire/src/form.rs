//! `multipart/form-data` bodies (`/audio/transcriptions` and `/images/edits` uploads), read as far
//! as the gateway acts on them: the `model`, `response_format`, `language`, `n` and `size` fields,
//! whether an image came, where `model`'s value lies so that the deployment's name can be spliced
//! in its place, and where the `file` part's bytes lie (a provider that takes the audio alone,
//! Deepgram, is sent that slice). The body is already read (within
//! `max_request_size_mb`); nothing is copied but the small fields' text.

use crate::error::ApiError;
use std::ops::Range;

/// The most parts a form is read for: an upload has a handful.
const MAX_PARTS: usize = 64;
/// The longest boundary RFC 2046 allows.
const MAX_BOUNDARY: usize = 70;

/// The fields of a form the gateway reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Form<'a> {
    /// `model`'s value and its byte range in the body.
    pub model: Option<(&'a str, Range<usize>)>,
    pub response_format: Option<&'a str>,
    pub user: Option<&'a str>,
    /// An image upload's `n` and `size`, as sent (text).
    pub n: Option<&'a str>,
    pub size: Option<&'a str>,
    /// A part named `image` (or `image[]`, as the SDK names several) came.
    pub image: bool,
    pub language: Option<&'a str>,
    /// The uploaded file: its bytes' range in the body and the part's own `Content-Type`.
    pub file: Option<FilePart<'a>>,
    /// Every other text field, in order (a provider's own options: Deepgram's `punctuate`, …);
    /// at most [`MAX_PARTS`].
    pub other: Vec<(&'a str, &'a str)>,
}

/// Where the `file` part's bytes lie in the body, and what its header says they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilePart<'a> {
    pub range: Range<usize>,
    pub content_type: Option<&'a str>,
}

/// The boundary a `multipart/form-data` content type names.
pub fn boundary(content_type: &str) -> Option<&str> {
    let mut params = content_type.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("boundary") {
            return None;
        }
        let value = value.trim();
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        (!value.is_empty() && value.len() <= MAX_BOUNDARY).then_some(value)
    })
}

/// The content type to send a form on with: its own boundary, read from its first line.
pub fn content_type_of(body: &[u8]) -> Option<String> {
    let line_end = find(body, b"\r\n", 0)?;
    let first = std::str::from_utf8(body.get(..line_end)?).ok()?;
    let b = first.strip_prefix("--")?;
    (!b.is_empty() && b.len() <= MAX_BOUNDARY && b.bytes().all(|c| c.is_ascii_graphic() || c == b' '))
        .then(|| format!("multipart/form-data; boundary={b}"))
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

fn refused(why: &str) -> ApiError {
    ApiError::bad_request(format!(
        "The multipart/form-data body could not be read ({why}). Send the upload as the OpenAI SDK does: multipart/form-data with `file` and `model` fields."
    ))
}

/// The fields of `body`, a form delimited by `boundary`.
pub fn read<'a>(body: &'a [u8], boundary: &str) -> Result<Form<'a>, ApiError> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut form = Form::default();
    let mut at = find(body, delimiter, 0).ok_or_else(|| refused("no boundary line"))? + delimiter.len();
    for _ in 0..MAX_PARTS {
        // After a delimiter: `--` ends the form, CRLF starts a part.
        if body.get(at..at + 2) == Some(b"--") {
            return Ok(form);
        }
        if body.get(at..at + 2) != Some(b"\r\n") {
            return Err(refused("a boundary line is not followed by a line break"));
        }
        let head_start = at + 2;
        let head_end = find(body, b"\r\n\r\n", head_start).ok_or_else(|| refused("a part has no end of headers"))?;
        let value_start = head_end + 4;
        let next = find(body, delimiter, value_start).ok_or_else(|| refused("the last part is not closed"))?;
        // The value ends at the CRLF before the next delimiter.
        let value_end = next.checked_sub(2).filter(|&e| e >= value_start && body.get(e..next) == Some(b"\r\n"));
        let value_end = value_end.ok_or_else(|| refused("a part does not end with a line break"))?;
        let head = body.get(head_start..head_end).unwrap_or_default();
        if let Some(name) = field_name(head) {
            let text = || std::str::from_utf8(body.get(value_start..value_end).unwrap_or_default()).ok();
            match name {
                "model" => {
                    let v = text().ok_or_else(|| refused("`model` is not UTF-8 text"))?;
                    form.model = Some((v, value_start..value_end));
                }
                "response_format" => form.response_format = text(),
                "user" => form.user = text(),
                "n" => form.n = text(),
                "size" => form.size = text(),
                "image" | "image[]" => form.image = true,
                "language" => form.language = text(),
                "file" => {
                    let content_type = part_content_type(head);
                    form.file = Some(FilePart { range: value_start..value_end, content_type });
                }
                other => {
                    if let Some(v) = text() {
                        form.other.push((other, v));
                    }
                }
            }
        }
        at = next + delimiter.len();
    }
    Err(refused(&format!("more than {MAX_PARTS} parts")))
}

/// A part's own `Content-Type` header value.
fn part_content_type(head: &[u8]) -> Option<&str> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").find_map(|line| {
        let (header, value) = line.split_once(':')?;
        header.trim().eq_ignore_ascii_case("content-type").then(|| value.trim()).filter(|v| !v.is_empty())
    })
}

/// The `name` of a part's `Content-Disposition: form-data; name="…"` header.
fn field_name(head: &[u8]) -> Option<&str> {
    let head = std::str::from_utf8(head).ok()?;
    head.split("\r\n").find_map(|line| {
        let (header, value) = line.split_once(':')?;
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').find_map(|p| {
            let (k, v) = p.split_once('=')?;
            (k.trim() == "name").then(|| v.trim().trim_matches('"'))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(parts: &[(&str, &[u8])], boundary: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            let file = if *name == "file" { "; filename=\"a.wav\"\r\nContent-Type: audio/wav" } else { "" };
            out.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n").as_bytes());
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn reads_the_boundary_of_a_content_type() {
        assert_eq!(boundary("multipart/form-data; boundary=abc"), Some("abc"));
        assert_eq!(boundary("Multipart/Form-Data; charset=utf-8; boundary=\"x y\""), Some("x y"));
        assert_eq!(boundary("application/json"), None);
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
    }

    #[test]
    fn finds_model_and_response_format_and_where_model_lies() {
        let body = form(
            &[("file", b"RIFF\x00\r\n--fake\r\n\x01"), ("model", b"whisper"), ("response_format", b"verbose_json")],
            "b0und",
        );
        let f = read(&body, "b0und").unwrap();
        let (model, span) = f.model.clone().unwrap();
        assert_eq!(model, "whisper");
        assert_eq!(&body[span], b"whisper");
        assert_eq!(f.response_format, Some("verbose_json"));
        assert!(!f.image);
        assert_eq!(content_type_of(&body).as_deref(), Some("multipart/form-data; boundary=b0und"));
    }

    #[test]
    fn finds_an_images_fields() {
        let body = form(&[("image[]", b"\x89PNG"), ("n", b"3"), ("size", b"512x512"), ("model", b"dall-e-2")], "b");
        let f = read(&body, "b").unwrap();
        assert!(f.image);
        assert_eq!((f.n, f.size), (Some("3"), Some("512x512")));
        let body = form(&[("image", b"\x89PNG"), ("model", b"dall-e-2")], "b");
        assert!(read(&body, "b").unwrap().image);
    }

    #[test]
    fn finds_the_file_part_and_its_content_type() {
        let audio = b"RIFF\x00\r\n--fake\r\n\x01";
        let body = form(&[("model", b"nova-2"), ("language", b"de"), ("file", audio)], "b0und");
        let f = read(&body, "b0und").unwrap();
        let file = f.file.unwrap();
        assert_eq!(&body[file.range], audio);
        assert_eq!(file.content_type, Some("audio/wav"));
        assert_eq!(f.language, Some("de"));
        assert_eq!(read(&form(&[("model", b"m")], "b"), "b").unwrap().file, None);
        let body = form(&[("model", b"m"), ("punctuate", b"true"), ("temperature", b"0")], "b");
        assert_eq!(read(&body, "b").unwrap().other, vec![("punctuate", "true"), ("temperature", "0")]);
    }

    #[test]
    fn refuses_broken_forms_with_what_to_do() {
        for bad in [&b""[..], b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nx", b"--bx", b"nothing"] {
            let e = read(bad, "b").unwrap_err();
            assert_eq!(e.status, 400);
            assert!(e.message.contains("multipart/form-data"), "{}", e.message);
        }
        let many = form(&vec![("x", &b"1"[..]); MAX_PARTS + 1], "b");
        assert!(read(&many, "b").is_err());
    }

    proptest::proptest! {
        /// Any bytes read without a panic; a span found lies in the body and holds the model.
        #[test]
        fn any_body_reads_safely(body in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            if let Ok(f) = read(&body, "b") {
                if let Some((model, span)) = f.model {
                    proptest::prop_assert_eq!(body.get(span).unwrap(), model.as_bytes());
                }
                if let Some(file) = f.file {
                    proptest::prop_assert!(body.get(file.range).is_some());
                }
            }
            let _ = content_type_of(&body);
        }

        /// A well-formed form, however its file's bytes look and wherever it is cut, yields its
        /// model or an error, never another field's bytes.
        #[test]
        fn a_form_with_any_file_finds_its_model(file in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
                                               model in "[a-z0-9/._-]{1,30}", cut in 0usize..800) {
            let body = form(&[("file", &file), ("model", model.as_bytes())], "sluice-b0undary");
            let f = read(&body, "sluice-b0undary").unwrap();
            proptest::prop_assert_eq!(&body[f.file.clone().unwrap().range], &file[..]);
            proptest::prop_assert_eq!(f.model.map(|m| m.0), Some(model.as_str()));
            let cut = cut.min(body.len());
            if let Ok(f) = read(&body[..cut], "sluice-b0undary") {
                if let Some((m, span)) = f.model {
                    proptest::prop_assert_eq!(&body[span], m.as_bytes());
                }
            }
        }
    }
}
