//! OTLP's `ExportTraceServiceRequest` in its JSON encoding (OTLP/HTTP `http/json`, and the
//! `console` exporter's lines): protobuf's JSON mapping with OTLP's exceptions — ids as hex, not
//! base64; enums as numbers; field names in lowerCamelCase; 64-bit integers as strings.

use super::spans::{Attribute, Event, Span, Value};
use super::Resource;
use crate::trace::hex;
use serde_json::{json, Map, Value as Json};

pub fn export_request(resource: &Resource, spans: &[Span<'_>]) -> Json {
    let resource_attributes: Vec<Json> =
        resource.attributes.iter().map(|(k, v)| json!({"key": k, "value": {"stringValue": v}})).collect();
    json!({
        "resourceSpans": [{
            "resource": {"attributes": resource_attributes},
            "scopeSpans": [{
                "scope": {"name": resource.scope_name, "version": env!("CARGO_PKG_VERSION")},
                "spans": spans.iter().map(span).collect::<Vec<_>>(),
            }],
        }],
    })
}

/// One span as JSON.
pub fn span(s: &Span<'_>) -> Json {
    let mut o = Map::new();
    o.insert("traceId".into(), hex(&s.trace_id).into());
    o.insert("spanId".into(), hex(&s.span_id).into());
    if let Some(state) = s.trace_state {
        o.insert("traceState".into(), state.into());
    }
    if let Some(parent) = &s.parent {
        o.insert("parentSpanId".into(), hex(parent).into());
    }
    o.insert("flags".into(), (s.flags as u32).into());
    o.insert("name".into(), s.full_name().into());
    o.insert("kind".into(), (s.kind as u32).into());
    o.insert("startTimeUnixNano".into(), s.start_unix_nanos.to_string().into());
    o.insert("endTimeUnixNano".into(), s.end_unix_nanos.to_string().into());
    o.insert("attributes".into(), attributes(&s.attributes));
    if !s.events.is_empty() {
        o.insert("events".into(), s.events.iter().map(event).collect::<Vec<_>>().into());
    }
    let mut status = Map::new();
    status.insert("code".into(), (s.status as u32).into());
    if let Some(message) = s.status_message {
        status.insert("message".into(), message.into());
    }
    o.insert("status".into(), status.into());
    Json::Object(o)
}

fn event(e: &Event<'_>) -> Json {
    json!({
        "timeUnixNano": e.time_unix_nanos.to_string(),
        "name": e.name,
        "attributes": attributes(&e.attributes),
    })
}

fn attributes(attributes: &[Attribute<'_>]) -> Json {
    attributes.iter().map(|(k, v)| json!({"key": k, "value": any_value(v)})).collect::<Vec<_>>().into()
}

fn any_value(v: &Value<'_>) -> Json {
    match v {
        Value::Str(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Int(i) => json!({"intValue": i.to_string()}),
        // JSON has no NaN or infinity: a cost is finite, and anything else is written as text.
        Value::Double(d) if d.is_finite() => json!({"doubleValue": d}),
        Value::Double(d) => json!({"stringValue": d.to_string()}),
        Value::Strs(items) => {
            json!({"arrayValue": {"values": items.iter().map(|s| json!({"stringValue": s})).collect::<Vec<_>>()}})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_big_numbers_are_strings() {
        let record = crate::otel::spans::tests::traced();
        let mut spans = Vec::new();
        crate::otel::spans::of_record(
            &record,
            None,
            crate::otel::spans::Options { content: true, ..Default::default() },
            &mut spans,
        );
        let resource =
            Resource { attributes: vec![("service.name".into(), "litellm".into())], scope_name: "litellm".into() };
        let v = export_request(&resource, &spans);
        let s = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(s["traceId"], "07070707070707070707070707070707");
        assert_eq!(s["parentSpanId"], "0909090909090909");
        assert_eq!(s["startTimeUnixNano"], "1000");
        assert_eq!(s["kind"], 2);
        let tokens =
            s["attributes"].as_array().unwrap().iter().find(|a| a["key"] == "gen_ai.usage.input_tokens").unwrap();
        assert_eq!(tokens["value"]["intValue"], "1");
        assert_eq!(v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"], "litellm");
    }
}
