//! OTLP's `ExportTraceServiceRequest` in protobuf's binary encoding, written by hand: the few
//! messages a span batch needs (`opentelemetry/proto/{collector/trace,trace,common,resource}/v1`)
//! do not justify a code generator and its build step. Field numbers are the `.proto` files';
//! `tests/python/test_otel.py` decodes the output with the official `opentelemetry-proto`
//! classes.

use super::spans::{Attribute, Event, Span, Value};
use super::Resource;

/// A protobuf writer: a length-delimited message is written in place and its length put in
/// front of it once known (one move of its bytes per level of nesting).
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
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
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn fixed32(&mut self, field: u32, v: u32) {
        self.tag(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn double(&mut self, field: u32, v: f64) {
        self.tag(field, FIXED64);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn bytes(&mut self, field: u32, v: &[u8]) {
        self.tag(field, LEN);
        self.varint(v.len() as u64);
        self.buf.extend_from_slice(v);
    }

    fn message(&mut self, field: u32, body: impl FnOnce(&mut Writer)) {
        self.tag(field, LEN);
        let start = self.buf.len();
        body(self);
        let len = self.buf.len() - start;
        let mut prefix = Writer { buf: Vec::with_capacity(5) };
        prefix.varint(len as u64);
        self.buf.splice(start..start, prefix.buf);
    }
}

/// `ExportTraceServiceRequest { resource_spans: [ResourceSpans { resource, scope_spans:
/// [ScopeSpans { scope, spans }] }] }`.
pub fn export_request(resource: &Resource, spans: &[Span<'_>]) -> Vec<u8> {
    let mut w = Writer { buf: Vec::with_capacity(512 * spans.len() + 256) };
    w.message(1, |w| {
        w.message(1, |w| {
            for (key, value) in &resource.attributes {
                w.message(1, |w| {
                    w.bytes(1, key.as_bytes());
                    w.message(2, |w| w.bytes(1, value.as_bytes()));
                });
            }
        });
        w.message(2, |w| {
            w.message(1, |w| {
                w.bytes(1, resource.scope_name.as_bytes());
                w.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for span in spans {
                w.message(2, |w| span_message(w, span));
            }
        });
    });
    w.buf
}

/// `Span`.
fn span_message(w: &mut Writer, s: &Span<'_>) {
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
    attributes(w, 9, &s.attributes);
    for event in &s.events {
        w.message(11, |w| event_message(w, event));
    }
    w.message(15, |w| {
        if let Some(message) = s.status_message {
            w.bytes(2, message.as_bytes());
        }
        w.uint(3, s.status as u64);
    });
    // `flags`: the W3C trace flags, and (bit 8) that the parent's remoteness is known, bit 9
    // set when the parent came from another process.
    let remote = match s.kind {
        super::spans::Kind::Server if s.parent.is_some() => 0x300,
        _ => 0x100,
    };
    w.fixed32(16, s.flags as u32 | remote);
}

fn event_message(w: &mut Writer, e: &Event<'_>) {
    w.fixed64(1, e.time_unix_nanos);
    w.bytes(2, e.name.as_bytes());
    attributes(w, 3, &e.attributes);
}

/// Repeated `KeyValue { key, value: AnyValue }`.
fn attributes(w: &mut Writer, field: u32, attributes: &[Attribute<'_>]) {
    for (key, value) in attributes {
        w.message(field, |w| {
            w.bytes(1, key.as_bytes());
            w.message(2, |w| any_value(w, value));
        });
    }
}

/// `AnyValue`'s `oneof`.
fn any_value(w: &mut Writer, v: &Value<'_>) {
    match v {
        Value::Str(s) => w.bytes(1, s.as_bytes()),
        Value::Bool(b) => w.uint(2, *b as u64),
        // int64 as a varint: two's complement, as protobuf writes negative int64s.
        Value::Int(i) => w.uint(3, *i as u64),
        Value::Double(d) => w.double(4, *d),
        Value::Strs(items) => w.message(5, |w| {
            for item in items {
                w.message(1, |w| w.bytes(1, item.as_bytes()));
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_nested_lengths_are_protobufs() {
        let mut w = Writer::default();
        w.uint(1, 300);
        assert_eq!(w.buf, [0x08, 0xac, 0x02]);
        let mut w = Writer::default();
        // A nested message longer than 127 bytes needs a two-byte length.
        w.message(2, |w| w.bytes(1, &[7u8; 200]));
        assert_eq!(&w.buf[..5], &[0x12, 0xcb, 0x01, 0x0a, 0xc8]);
        assert_eq!(w.buf.len(), 3 + 3 + 200);
    }

    #[test]
    fn a_negative_int_is_ten_bytes() {
        let mut w = Writer::default();
        any_value(&mut w, &Value::Int(-1));
        assert_eq!(w.buf.len(), 1 + 10);
    }
}
