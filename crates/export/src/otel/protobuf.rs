//! OTLP's `ExportTraceServiceRequest` in protobuf's binary encoding, written by hand: the few
//! messages a span batch needs (`opentelemetry/proto/{collector/trace,trace,common,resource}/v1`)
//! do not justify a code generator and its build step. Field numbers are the `.proto` files';
//! `tests/python/test_otel.py` decodes the output with the official `opentelemetry-proto`
//! classes. Each nested message is measured before it is written ([`Count`]), so its length goes
//! in front of it and no byte is moved after being written: a long attribute (a prompt) is
//! copied once, into the request.

use super::spans::{Event, Span, Value};
use super::Resource;

/// Where encoded bytes go: the output, or a counter that measures a nested message before it is
/// written, so its length can go in front of it without moving its bytes afterwards.
pub trait Out {
    fn put(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts what would be written.
#[derive(Default)]
pub struct Count(pub usize);

impl Out for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

/// A message that can be written (or measured) in protobuf's encoding.
trait Message {
    fn encode<O: Out>(&self, w: &mut Writer<O>);
}

/// A protobuf writer over an [`Out`].
pub struct Writer<O: Out> {
    pub out: O,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

impl<O: Out> Writer<O> {
    fn varint(&mut self, mut v: u64) {
        let mut buf = [0u8; 10];
        let mut n = 0;
        while v >= 0x80 {
            buf[n] = (v as u8) | 0x80;
            v >>= 7;
            n += 1;
        }
        buf[n] = v as u8;
        self.out.put(&buf[..=n]);
    }

    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn uint(&mut self, field: u32, v: u64) {
        self.tag(field, VARINT);
        self.varint(v);
    }

    fn fixed64(&mut self, field: u32, v: u64) {
        self.tag(field, FIXED64);
        self.out.put(&v.to_le_bytes());
    }

    fn fixed32(&mut self, field: u32, v: u32) {
        self.tag(field, FIXED32);
        self.out.put(&v.to_le_bytes());
    }

    fn double(&mut self, field: u32, v: f64) {
        self.tag(field, FIXED64);
        self.out.put(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, LEN);
        self.varint(v.len() as u64);
        self.out.put(v);
    }

    /// A nested message: measured first (fields only, not bytes: a long string counts as its
    /// length), then written after its length.
    fn message(&mut self, field: u32, m: &impl Message) {
        let mut count = Writer { out: Count(0) };
        m.encode(&mut count);
        self.tag(field, LEN);
        self.varint(count.out.0 as u64);
        m.encode(self);
    }
}

/// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource, scope_spans:
/// [ScopeSpans { scope, spans }] }] }`.
pub fn export_request(resource: &Resource, spans: &[Span<'_>]) -> Vec<u8> {
    let mut w = Writer { out: Vec::new() };
    let request = ResourceSpans { resource, spans };
    let mut count = Writer { out: Count(0) };
    count.message(1, &request);
    w.out.reserve_exact(count.out.0);
    w.message(1, &request);
    w.out
}

struct ResourceSpans<'r, 's> {
    resource: &'r Resource,
    spans: &'r [Span<'s>],
}

impl Message for ResourceSpans<'_, '_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        w.message(1, &ResourceMessage(self.resource));
        w.message(2, &ScopeSpans { resource: self.resource, spans: self.spans });
    }
}

/// `Resource { attributes }`.
struct ResourceMessage<'r>(&'r Resource);

impl Message for ResourceMessage<'_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
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
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        w.message(1, &Scope(&self.resource.scope_name));
        for span in self.spans {
            w.message(2, span);
        }
    }
}

struct Scope<'a>(&'a str);

impl Message for Scope<'_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        w.bytes(1, self.0.as_bytes());
        w.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
    }
}

/// `Span`.
impl Message for Span<'_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        let s = self;
        w.bytes(1, &s.trace_id);
        w.bytes(2, &s.span_id);
        if let Some(state) = s.trace_state {
            w.bytes(3, state.as_bytes());
        }
        if let Some(parent) = &s.parent {
            w.bytes(4, parent);
        }
        w.bytes(5, s.name.as_bytes());
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
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        if let Some(message) = self.0.status_message {
            w.bytes(2, message.as_bytes());
        }
        w.uint(3, self.0.status as u64);
    }
}

/// `Span.Event`.
impl Message for Event<'_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
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
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        w.bytes(1, self.0.as_bytes());
        w.message(2, &AnyValue(self.1));
    }
}

/// `AnyValue`'s `oneof`.
struct AnyValue<'v, 'a>(&'v Value<'a>);

impl Message for AnyValue<'_, '_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
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
struct ArrayValue<'i, 'a>(&'i [&'a str]);

impl Message for ArrayValue<'_, '_> {
    fn encode<O: Out>(&self, w: &mut Writer<O>) {
        for item in self.0 {
            w.message(1, &AnyValue(&Value::Str((*item).into())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> Writer<Vec<u8>> {
        Writer { out: Vec::new() }
    }

    #[test]
    fn varints_and_nested_lengths_are_protobufs() {
        let mut w = writer();
        w.uint(1, 300);
        assert_eq!(w.out, [0x08, 0xac, 0x02]);
        // A nested message longer than 127 bytes needs a two-byte length.
        let long = "x".repeat(200);
        let mut w = writer();
        w.message(2, &AnyValue(&Value::Str(long.as_str().into())));
        assert_eq!(&w.out[..5], &[0x12, 0xcb, 0x01, 0x0a, 0xc8]);
        assert_eq!(w.out.len(), 3 + 3 + 200);
    }

    #[test]
    fn a_negative_int_is_ten_bytes() {
        let mut w = writer();
        AnyValue(&Value::Int(-1)).encode(&mut w);
        assert_eq!(w.out.len(), 1 + 10);
    }

    /// What was measured is what is written, at every level.
    #[test]
    fn a_measured_request_is_as_long_as_the_written_one() {
        let record = crate::otel::spans::tests::traced();
        let mut spans = Vec::new();
        crate::otel::spans::of_record(&record, true, &mut spans);
        let resource = Resource { attributes: vec![("service.name".into(), "x".into())], scope_name: "s".into() };
        let request = ResourceSpans { resource: &resource, spans: &spans };
        let mut count = Writer { out: Count(0) };
        request.encode(&mut count);
        let mut w = writer();
        request.encode(&mut w);
        assert_eq!(count.out.0, w.out.len());
        assert_eq!(export_request(&resource, &spans).len(), 1 + varint_len(w.out.len()) + w.out.len());
    }

    fn varint_len(n: usize) -> usize {
        let mut w = writer();
        w.varint(n as u64);
        w.out.len()
    }
}
