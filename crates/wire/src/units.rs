//! The units LiteLLM bills the endpoints priced by something other than tokens, read from their
//! request bodies: how many images of what size (`/images/generations`, and the `n` and `size`
//! of an edit's or variation's form), how many characters
//! spoken (`/audio/speech`); and from a transcription's answer, the seconds of audio heard. Every
//! count is bounded before it is billed.

use serde::Deserialize;
use serde_json::value::RawValue;

/// What an image generation request asks for, as it is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageAsk {
    /// `n`, 1 when absent, at most [`MAX_IMAGES`].
    pub n: u64,
    /// Width × height of `size` (`"1024x1024"`); LiteLLM's default 1024×1024 when absent,
    /// `"auto"` or unreadable.
    pub pixels: u64,
}

/// The most images one request is billed for (OpenAI takes `n` up to 10).
pub const MAX_IMAGES: u64 = 10;
/// The longest side of an image read from `size`.
pub const MAX_SIDE: u64 = 16_384;
const DEFAULT_PIXELS: u64 = 1024 * 1024;

#[derive(Deserialize)]
struct RawImages<'a> {
    #[serde(borrow, default)]
    n: Option<&'a RawValue>,
    #[serde(borrow, default)]
    size: Option<&'a RawValue>,
}

/// The images `body` asks for; a body that is not a JSON object asks for one default image.
pub fn images(body: &[u8]) -> ImageAsk {
    let raw: Option<RawImages<'_>> = serde_json::from_slice(body).ok();
    let n = raw
        .as_ref()
        .and_then(|r| r.n)
        .and_then(|v| serde_json::from_str::<u64>(v.get()).ok())
        .unwrap_or(1)
        .clamp(1, MAX_IMAGES);
    let pixels = raw
        .as_ref()
        .and_then(|r| r.size)
        .and_then(|v| serde_json::from_str::<&str>(v.get()).ok())
        .and_then(size_pixels)
        .unwrap_or(DEFAULT_PIXELS);
    ImageAsk { n, pixels }
}

/// What an image upload's form asks for: its `n` and `size` fields' text, with the defaults and
/// bounds of [`images`].
pub fn image_ask(n: Option<&str>, size: Option<&str>) -> ImageAsk {
    let n = n.and_then(|n| n.trim().parse::<u64>().ok()).unwrap_or(1).clamp(1, MAX_IMAGES);
    ImageAsk { n, pixels: size.and_then(size_pixels).unwrap_or(DEFAULT_PIXELS) }
}

/// `"WIDTHxHEIGHT"` as pixels, each side at most [`MAX_SIDE`].
fn size_pixels(size: &str) -> Option<u64> {
    let (w, h) = size.split_once(['x', 'X'])?;
    let side = |s: &str| s.trim().parse::<u64>().ok().filter(|&v| v > 0 && v <= MAX_SIDE);
    Some(side(w)? * side(h)?)
}

/// The characters of a JSON string value (`input` as the sniffer found it: raw JSON text), as
/// text to speech is billed; 0 for anything that is not a string.
pub fn characters(raw_json_string: &str) -> u64 {
    match serde_json::from_str::<std::borrow::Cow<'_, str>>(raw_json_string) {
        Ok(text) => text.chars().count() as u64,
        Err(_) => 0,
    }
}

/// The longest audio one transcription is billed for: a day.
pub const MAX_AUDIO_SECONDS: f64 = 86_400.0;

#[derive(Deserialize)]
struct RawTranscription {
    #[serde(default)]
    duration: Option<f64>,
}

/// The seconds of audio a transcription's answer reports (`duration`, in `verbose_json`), at most
/// [`MAX_AUDIO_SECONDS`]; `None` when the answer has none (the other response formats).
pub fn audio_seconds(answer: &[u8]) -> Option<f64> {
    let raw: RawTranscription = serde_json::from_slice(answer).ok()?;
    raw.duration.filter(|d| d.is_finite() && *d >= 0.0).map(|d| d.min(MAX_AUDIO_SECONDS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_read_n_and_size_with_litellms_defaults() {
        let ask = |b: &str| images(b.as_bytes());
        assert_eq!(ask(r#"{"prompt":"a cat"}"#), ImageAsk { n: 1, pixels: 1024 * 1024 });
        assert_eq!(ask(r#"{"n":3,"size":"1792x1024"}"#), ImageAsk { n: 3, pixels: 1792 * 1024 });
        assert_eq!(ask(r#"{"n":2,"size":"auto"}"#), ImageAsk { n: 2, pixels: 1024 * 1024 });
        assert_eq!(ask(r#"{"n":null,"size":null}"#), ImageAsk { n: 1, pixels: 1024 * 1024 });
    }

    #[test]
    fn image_counts_from_outside_are_bounded() {
        let ask = |b: &str| images(b.as_bytes());
        assert_eq!(ask(r#"{"n":1000000}"#).n, MAX_IMAGES);
        assert_eq!(ask(r#"{"n":0}"#).n, 1);
        assert_eq!(ask(r#"{"n":-4}"#).n, 1);
        assert_eq!(ask(r#"{"n":"7"}"#).n, 1);
        assert_eq!(ask(r#"{"size":"99999999999x99999999999"}"#).pixels, 1024 * 1024);
        assert_eq!(ask(r#"{"size":"0x10"}"#).pixels, 1024 * 1024);
        assert_eq!(ask(r#"not json"#), ImageAsk { n: 1, pixels: 1024 * 1024 });
    }

    #[test]
    fn image_forms_read_like_json_bodies() {
        assert_eq!(image_ask(None, None), ImageAsk { n: 1, pixels: 1024 * 1024 });
        assert_eq!(image_ask(Some("2"), Some("256x256")), ImageAsk { n: 2, pixels: 256 * 256 });
        assert_eq!(image_ask(Some("99999999999999999999999"), Some("1x0")), ImageAsk { n: 1, pixels: 1024 * 1024 });
        assert_eq!(image_ask(Some("400"), Some("auto")), ImageAsk { n: MAX_IMAGES, pixels: 1024 * 1024 });
        assert_eq!(image_ask(Some("-1"), None).n, 1);
    }

    #[test]
    fn characters_count_the_decoded_text() {
        assert_eq!(characters(r#""hello""#), 5);
        assert_eq!(characters(r#""caf\u00e9 \ud83d\ude00""#), 6);
        assert_eq!(characters(r#"["not", "a string"]"#), 0);
        assert_eq!(characters("12"), 0);
    }

    #[test]
    fn audio_seconds_come_from_verbose_json_and_are_bounded() {
        assert_eq!(audio_seconds(br#"{"text":"hi","duration":12.5,"language":"english"}"#), Some(12.5));
        assert_eq!(audio_seconds(br#"{"text":"hi"}"#), None);
        assert_eq!(audio_seconds(b"plain text answer"), None);
        assert_eq!(audio_seconds(br#"{"duration":-3}"#), None);
        assert_eq!(audio_seconds(br#"{"duration":"12"}"#), None);
        assert_eq!(audio_seconds(br#"{"duration":1e300}"#), Some(MAX_AUDIO_SECONDS));
    }

    proptest::proptest! {
        /// Whatever a client sends, reading it never panics and the counts stay bounded.
        #[test]
        fn any_body_reads_to_bounded_units(body in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
                                           n in proptest::num::i64::ANY, w in proptest::num::u64::ANY,
                                           h in proptest::num::u64::ANY) {
            let ask = images(&body);
            proptest::prop_assert!(ask.n >= 1 && ask.n <= MAX_IMAGES);
            proptest::prop_assert!(ask.pixels <= MAX_SIDE * MAX_SIDE);
            let json = format!(r#"{{"n":{n},"size":"{w}x{h}"}}"#);
            let ask = images(json.as_bytes());
            proptest::prop_assert!(ask.n >= 1 && ask.n <= MAX_IMAGES);
            proptest::prop_assert!(ask.pixels <= MAX_SIDE * MAX_SIDE);
            let _ = characters(&String::from_utf8_lossy(&body));
        }
    }
}
