//! An upstream answer's status and headers as the pool got them.
//!
//! Over HTTP/1.1 the header fields stay where they lie in the answer head's bytes: the gateway
//! reads two or three of them and forwards the rest as lines (`exchange::Lines`), so building a
//! header map for each answer (hashing every name, validating and reference-counting every value)
//! bought nothing on that path. HTTP/2 answers come from hyper as a map.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// An answer's head: its status and headers.
pub struct UpstreamHead {
    pub status: StatusCode,
    pub headers: UpstreamHeaders,
}

/// Header fields as an HTTP/1.1 head carried them, or hyper's map for HTTP/2.
pub enum UpstreamHeaders {
    Raw(RawFields),
    Map(HeaderMap),
}

/// The head's bytes and where each field's name and value lie in them. httparse has checked the
/// names (tokens) and values (no control characters but tab), as `http`'s types would.
pub struct RawFields {
    bytes: Bytes,
    fields: Vec<[u32; 4]>,
}

impl RawFields {
    /// `fields` are `[name start, name end, value start, value end]` in `bytes`.
    pub(crate) fn new(bytes: Bytes, fields: Vec<[u32; 4]>) -> RawFields {
        RawFields { bytes, fields }
    }

    fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields
            .iter()
            .map(|&[ns, ne, vs, ve]| (&self.bytes[ns as usize..ne as usize], &self.bytes[vs as usize..ve as usize]))
    }

    /// Every value of the field `name` (lower case; matched in any case), in order.
    pub(crate) fn values<'a, 'n>(&'a self, name: &'n [u8]) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// Every field with its value sharing the head's bytes; values `http` refuses are left out.
    fn for_each_value(&self, mut f: impl FnMut(&[u8], HeaderValue)) {
        for &[ns, ne, vs, ve] in &self.fields {
            if let Ok(value) = HeaderValue::from_maybe_shared(self.bytes.slice(vs as usize..ve as usize)) {
                f(&self.bytes[ns as usize..ne as usize], value);
            }
        }
    }
}

impl UpstreamHeaders {
    /// The first value of the field `name` (lower case), as `HeaderMap::get` gives it.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        match self {
            UpstreamHeaders::Raw(raw) => raw.values(name.as_bytes()).next(),
            UpstreamHeaders::Map(map) => map.get(name).map(HeaderValue::as_bytes),
        }
    }

    /// [`get`](Self::get), when the value is visible ASCII.
    pub fn get_str(&self, name: &str) -> Option<&str> {
        let value = self.get(name)?;
        value.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\t').then(|| std::str::from_utf8(value).ok())?
    }

    /// Every field, names as the upstream spelled them (HTTP/1.1 names may have capitals; the
    /// map's are lower case), in the order they came.
    pub fn for_each(&self, mut f: impl FnMut(&[u8], &[u8])) {
        match self {
            UpstreamHeaders::Raw(raw) => raw.iter().for_each(|(n, v)| f(n, v)),
            UpstreamHeaders::Map(map) => map.iter().for_each(|(n, v)| f(n.as_str().as_bytes(), v.as_bytes())),
        }
    }

    /// [`for_each`](Self::for_each) with the values as `HeaderValue`s: sharing an HTTP/1.1 head's
    /// bytes (no copy), cloned from the map's. Values `http` refuses are left out.
    pub fn for_each_value(&self, mut f: impl FnMut(&[u8], HeaderValue)) {
        match self {
            UpstreamHeaders::Raw(raw) => raw.for_each_value(f),
            UpstreamHeaders::Map(map) => map.iter().for_each(|(n, v)| f(n.as_str().as_bytes(), v.clone())),
        }
    }

    /// As a header map, for what needs `http`'s types (a `Response`, an error's headers). Fields
    /// the map would refuse are left out.
    pub fn into_map(self) -> HeaderMap {
        match self {
            UpstreamHeaders::Map(map) => map,
            UpstreamHeaders::Raw(raw) => {
                let mut map = HeaderMap::with_capacity(raw.fields.len());
                raw.for_each_value(|name, value| {
                    if let Ok(name) = HeaderName::from_bytes(name) {
                        map.append(name, value);
                    }
                });
                map
            }
        }
    }
}

/// Raw fields from `name: value\r\n` lines, for tests (here and in the gateway's).
#[doc(hidden)]
pub fn raw(head: &'static str) -> UpstreamHeaders {
    let bytes = Bytes::from_static(head.as_bytes());
    let mut fields = Vec::new();
    let mut at = 0;
    for line in head.split_inclusive("\r\n") {
        if let Some((name, value)) = line.trim_end().split_once(": ") {
            let (ns, vs) = (at, at + name.len() + 2);
            fields.push([ns as u32, (ns + name.len()) as u32, vs as u32, (vs + value.len()) as u32]);
        }
        at += line.len();
    }
    UpstreamHeaders::Raw(RawFields::new(bytes, fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_fields_read_like_the_map_they_become() {
        let head = "Content-Type: application/json\r\nX-Ratelimit-Remaining-Requests: 9999\r\nx-a: 1\r\nX-A: 2\r\n";
        let r = raw(head);
        assert_eq!(r.get("content-type"), Some(&b"application/json"[..]));
        assert_eq!(r.get_str("x-ratelimit-remaining-requests"), Some("9999"));
        assert_eq!(r.get("x-a"), Some(&b"1"[..]), "the first of repeated fields, as HeaderMap::get");
        assert_eq!(r.get("missing"), None);
        let mut seen = Vec::new();
        r.for_each(|n, v| seen.push(format!("{}={}", String::from_utf8_lossy(n), String::from_utf8_lossy(v))));
        assert_eq!(seen, ["Content-Type=application/json", "X-Ratelimit-Remaining-Requests=9999", "x-a=1", "X-A=2"]);
        let map = raw(head).into_map();
        assert_eq!(map.get_all("x-a").iter().collect::<Vec<_>>(), ["1", "2"]);
        let m = UpstreamHeaders::Map(map);
        for name in ["content-type", "x-ratelimit-remaining-requests", "x-a", "missing"] {
            assert_eq!(r.get(name), m.get(name), "{name}");
        }
    }

    #[test]
    fn get_str_refuses_what_is_not_visible_ascii() {
        let r = raw("A: caf\u{e9}\r\nB: tab\there\r\n");
        assert_eq!(r.get_str("a"), None);
        assert_eq!(r.get("a"), Some("caf\u{e9}".as_bytes()));
        assert_eq!(r.get_str("b"), Some("tab\there"));
    }
}
