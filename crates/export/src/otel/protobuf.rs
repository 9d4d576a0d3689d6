//! OTLP's `ExportTraceServiceRequest` in protobuf's binary encoding, written by hand: the few
//! messages a span batch needs (`opentelemetry/proto/{collector/trace,trace,common,resource}/v1`)
//! do not justify a code generator and its build step. Field numbers are the `.proto` files';
//! `tests/python/test_otel.py` decodes the output with the official `opentelemetry-proto`
//! classes. The request is measured, then written ([`Encoder`]), so each length goes in front of
//! its message and no byte is moved once written: a long attribute (a prompt) is copied once.

use super::spans::{Event, Span, Value};
use super::Resource;

/// A message that can be written in protobuf's encoding, by either pass ([`Encoder`]).
trait Message {
    fn encode<E: Encoder>(&self, e: &mut E);
}

/// One pass over a request: [`Measure`] counts the bytes and records each nested message's
/// length in the order the messages start; [`Write`] then writes, taking those lengths in the same
/// order — so every length goes in front of its message, no byte is moved once written, and
/// each field is visited twice however deep it is nested. Two types, not a flag: each pass is
/// compiled on its own, the measuring one without a scratch buffer or a branch per field.
trait Encoder: Sized {
    fn put(&mut self, bytes: &[u8]);
    fn varint(&mut self, v: u64);
    /// A nested message's length (measured, or taken from the measure) and its fields.
    fn nested(&mut self, m: &impl Message);

    #[inline]
    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    #[inline]
    fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, VARINT);
        self.varint(v);
    }

    #[inline]
    fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, FIXED64);
        self.put(&v.to_le_bytes());
    }

    #[inline]
    fn fixed32(&mut self, field: u32, v: u32) {
        self.tag(field, FIXED32);
        self.put(&v.to_le_bytes());
    }

    #[inline]
    fn double(&mut self, field: u32, v: f64) {
        self.tag(field, FIXED64);
        self.put(&v.to_le_bytes());
    }

    #[inline]
    fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, LEN);
        self.varint(v.len() as u64);
        self.put(v);
    }

    /// A nested message, after its tag and length.
    #[inline]
    fn message(&mut self, field: u32, m: &impl Message) {
        self.tag(field, LEN);
        self.nested(m);
    }
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// The first pass: bytes counted, nested lengths recorded.
#[derive(Default)]
struct Measure {
    count: usize,
    /// Nested messages' lengths, in the order they start.
    lengths: Vec<usize>,
}

impl Encoder for Measure {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.count += bytes.len();
    }

    #[inline]
    fn varint(&mut self, v: u64) {
        self.count += varint_len(v);
    }

    #[inline]
    fn nested(&mut self, m: &impl Message) {
        let slot = self.lengths.len();
        self.lengths.push(0);
        let before = self.count;
        m.encode(self);
        let len = self.count - before;
        self.lengths[slot] = len;
        // The length's own bytes, counted now that it is known.
        self.count += varint_len(len as u64);
    }
}

/// The second pass: the bytes, into capacity reserved from the measure.
#[derive(Default)]
struct Write {
    out: Vec<u8>,
    lengths: Vec<usize>,
    /// The next length to take.
    next: usize,
}

impl Encoder for Write {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    #[inline]
    fn nested(&mut self, m: &impl Message) {
        let len = self.lengths.get(self.next).copied().unwrap_or(0);
        self.next += 1;
        self.varint(len as u64);
        m.encode(self);
    }
}

/// `m`'s fields (a top-level message, without tag or length): measured, then written.
fn top(m: &impl Message) -> Vec<u8> {
    let mut measure = Measure::default();
    m.encode(&mut measure);
    let mut write = Write { out: Vec::with_capacity(measure.count), lengths: measure.lengths, next: 0 };
    m.encode(&mut write);
    write.out
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource, scope_spans:
/// [ScopeSpans { scope, spans }] }] }`.
pub fn export_request(resource: &Resource, spans: &[Span<'_>]) -> Vec<u8> {
    top(&ExportRequest(ResourceSpans { resource, spans }))
}

/// `ExportTraceServiceRequest { resource_spans }`.
struct ExportRequest<'r, 's>(ResourceSpans<'r, 's>);

impl Message for ExportRequest<'_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        w.message(1, &self.0);
    }
}

struct ResourceSpans<'r, 's> {
    resource: &'r Resource,
    spans: &'r [Span<'s>],
}

impl Message for ResourceSpans<'_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        w.message(1, &ResourceMessage(self.resource));
        w.message(2, &ScopeSpans { resource: self.resource, spans: self.spans });
    }
}

/// `Resource { attributes }`.
struct ResourceMessage<'r>(&'r Resource);

impl Message for ResourceMessage<'_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        for (key, value) in &self.0.attributes {
            w.message(1, &KeyValue(key, &Value::Str(value.as_str().into())));
        }
    }
}

/// `ScopeSpans { scope: InstrumentationScope { name, version }, spans }`.
struct ScopeSpans<'r, 's> {
    resource: &'r Resource,
    spans: &'r [Span<'s>],
}

impl Message for ScopeSpans<'_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        w.message(1, &Scope(&self.resource.scope_name));
        for span in self.spans {
            w.message(2, span);
        }
    }
}

struct Scope<'a>(&'a str);

impl Message for Scope<'_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        w.bytes(1, self.0.as_bytes());
        w.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
    }
}

/// `Span`.
impl Message for Span<'_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        let s = self;
        w.bytes(1, &s.trace_id);
        w.bytes(2, &s.span_id);
        if let Some(state) = s.trace_state {
            w.bytes(3, state.as_bytes());
        }
        if let Some(parent) = &s.parent {
            w.bytes(4, parent);
        }
        match s.name {
            (first, "") => w.bytes(5, first.as_bytes()),
            (first, second) => {
                w.tag(5, LEN);
                w.varint((first.len() + 1 + second.len()) as u64);
                w.put(first.as_bytes());
                w.put(b" ");
                w.put(second.as_bytes());
            }
        }
        w.uint(6, s.kind as u64);
        w.fixed64(7, s.start_unix_nanos);
        w.fixed64(8, s.end_unix_nanos);
        for (key, value) in &s.attributes {
            w.message(9, &KeyValue(key, value));
        }
        for event in &s.events {
            w.message(11, event);
        }
        w.message(15, &SpanStatus(s));
        // `flags`: the W3C trace flags, and (bit 8) that the parent's remoteness is known, bit 9
        // set when the parent came from another process.
        let remote = match s.kind {
            super::spans::Kind::Server if s.parent.is_some() => 0x300,
            _ => 0x100,
        };
        w.fixed32(16, s.flags as u32 | remote);
    }
}

/// `Status { message, code }`.
struct SpanStatus<'s, 'a>(&'s Span<'a>);

impl Message for SpanStatus<'_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        if let Some(message) = self.0.status_message {
            w.bytes(2, message.as_bytes());
        }
        w.uint(3, self.0.status as u64);
    }
}

/// `Span.Event`.
impl Message for Event<'_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        w.fixed64(1, self.time_unix_nanos);
        w.bytes(2, self.name.as_bytes());
        for (key, value) in &self.attributes {
            w.message(3, &KeyValue(key, value));
        }
    }
}

/// `KeyValue { key, value: AnyValue }`.
struct KeyValue<'k, 'v, 'a>(&'k str, &'v Value<'a>);

impl Message for KeyValue<'_, '_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        w.bytes(1, self.0.as_bytes());
        w.message(2, &AnyValue(self.1));
    }
}

/// `AnyValue`'s `oneof`.
struct AnyValue<'v, 'a>(&'v Value<'a>);

impl Message for AnyValue<'_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        match self.0 {
            Value::Str(s) => w.bytes(1, s.as_bytes()),
            Value::Bool(b) => w.uint(2, *b as u64),
            // int64 as a varint: two's complement, as protobuf writes negative int64s.
            Value::Int(i) => w.uint(3, *i as u64),
            Value::Double(d) => w.double(4, *d),
            Value::Strs(items) => w.message(5, &ArrayValue(items)),
        }
    }
}

/// `ArrayValue { values: [AnyValue { string_value }] }`.
struct ArrayValue<'i, 'a>(&'i [std::borrow::Cow<'a, str>]);

impl Message for ArrayValue<'_, '_> {
    fn encode<E: Encoder>(&self, w: &mut E) {
        for item in self.0 {
            w.message(1, &AnyValue(&Value::Str(std::borrow::Cow::Borrowed(item))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `m` written as a field `field` of a message of its own.
    fn field(field: u32, m: &impl Message) -> Vec<u8> {
        struct Holder<'m, M: Message>(u32, &'m M);
        impl<M: Message> Message for Holder<'_, M> {
            fn encode<E: Encoder>(&self, w: &mut E) {
                w.message(self.0, self.1);
            }
        }
        top(&Holder(field, m))
    }

    #[test]
    fn varints_and_nested_lengths_are_protobufs() {
        let mut w = Write::default();
        w.uint(1, 300);
        assert_eq!(w.out, [0x08, 0xac, 0x02]);
        // A nested message longer than 127 bytes needs a two-byte length.
        let long = "x".repeat(200);
        let out = field(2, &AnyValue(&Value::Str(long.as_str().into())));
        assert_eq!(&out[..5], &[0x12, 0xcb, 0x01, 0x0a, 0xc8]);
        assert_eq!(out.len(), 3 + 3 + 200);
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut w = Write::default();
            w.varint(v);
            let mut m = Measure::default();
            m.varint(v);
            assert_eq!(m.count, varint_len(v), "{v}");
            assert_eq!(w.out.len(), varint_len(v), "{v}");
        }
    }

    #[test]
    fn a_negative_int_is_ten_bytes() {
        assert_eq!(top(&AnyValue(&Value::Int(-1))).len(), 1 + 10);
    }

    /// Measured and written agree at every level: a nested message's recorded length is its
    /// written length (checked by walking the output as protobuf).
    #[test]
    fn every_length_is_the_length_written() {
        let record = crate::otel::spans::tests::traced();
        let mut spans = Vec::new();
        crate::otel::spans::of_record(
            &record,
            None,
            crate::otel::spans::Options { content: true, ..Default::default() },
            &mut spans,
        );
        let resource = Resource { attributes: vec![("service.name".into(), "x".into())], scope_name: "s".into() };
        let out = export_request(&resource, &spans);
        // Walks length-delimited fields that hold messages, to the depth of attributes' values.
        fn walk(buf: &[u8], depth: usize) -> usize {
            let (mut at, mut fields) = (0, 0);
            let varint = |buf: &[u8], at: &mut usize| {
                let (mut v, mut shift) = (0u64, 0);
                loop {
                    let b = buf[*at];
                    *at += 1;
                    v |= u64::from(b & 0x7f) << shift;
                    shift += 7;
                    if b < 0x80 {
                        return v;
                    }
                }
            };
            while at < buf.len() {
                let tag = varint(buf, &mut at);
                fields += 1;
                match tag & 7 {
                    0 => drop(varint(buf, &mut at)),
                    1 => at += 8,
                    5 => at += 4,
                    _ => {
                        let len = varint(buf, &mut at) as usize;
                        let inner = &buf[at..at + len];
                        // Strings and ids are bytes, not messages: only descend into the
                        // containers (resource spans, scope spans, spans, key-values).
                        if depth < 3 && tag >> 3 <= 2 {
                            fields += walk(inner, depth + 1);
                        }
                        at += len;
                    }
                }
            }
            assert_eq!(at, buf.len(), "a length that is not the length written");
            fields
        }
        assert!(walk(&out, 0) > 20);
    }
}
