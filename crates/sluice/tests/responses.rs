//! `/v1/responses` end to end against `sluice mock`: passed through natively to an OpenAI
//! deployment (ids wrapped to name it, GET/DELETE/previous_response_id reaching it upstream),
//! and translated through chat for Anthropic and a chat-only OpenAI-compatible server (kept in
//! the database, owned by the key that made them), billed as `aresponses`.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o
      api_base: {MOCK}
      api_key: sk-up
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002
  - model_name: claude
    litellm_params:
      model: anthropic/claude-3-5-sonnet-20241022
      api_base: {MOCK}
      api_key: sk-ant-test
      input_cost_per_token: 0.001
      output_cost_per_token: 0.002
  - model_name: vllm
    litellm_params:
      model: hosted_vllm/llama
      api_base: {MOCK}
general_settings:
  master_key: sk-1234
router_settings:
  num_retries: 0
"#;

fn new_key(addr: SocketAddr) -> (String, String) {
    let r = post(addr, "/key/generate", "{}");
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    (v["key"].as_str().unwrap().to_string(), v["token"].as_str().unwrap().to_string())
}

fn call(addr: SocketAddr, key: &str, body: Value) -> Response {
    request(addr, "POST", "/v1/responses", Some(key), body.to_string().as_bytes())
}

/// The events of a Responses stream: (event line, data).
fn events(body: &[u8]) -> Vec<(String, Value)> {
    let text = String::from_utf8_lossy(body);
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut event = String::new();
            let mut data = String::new();
            for line in f.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            (event, serde_json::from_str(&data).unwrap_or(Value::String(data)))
        })
        .collect()
}

fn text_of(response: &Value) -> String {
    response["output"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["type"] == "message")
        .flat_map(|i| i["content"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn native_openai_pass_through_whole_streamed_and_by_id() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    let r = call(g.addr, "sk-1234", json!({"model": "gpt", "input": "hi", "max_output_tokens": 50}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["model"], "gpt", "the model is re-stamped");
    assert_eq!(v["usage"]["input_tokens"], 9);
    assert!(r.header("x-litellm-response-cost").unwrap().parse::<f64>().unwrap() > 0.0);
    // The id names the deployment, LiteLLM's way; GET and DELETE reach the upstream with its own id.
    let id = v["id"].as_str().unwrap().to_string();
    let d = sluice_wire::responses::id::decode(&id).expect("a wrapped id");
    assert_eq!(d.provider, "openai");
    assert!(d.response_id.starts_with("resp_") && !d.response_id.contains("litellm"));
    let got = request(g.addr, "GET", &format!("/v1/responses/{id}"), Some("sk-1234"), b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], id.as_str(), "the upstream's answer carries the wrapped id again");
    // A key that may not use the deployment's model is told the response does not exist.
    let r = post(g.addr, "/key/generate", r#"{"models": ["claude"]}"#);
    let claude_only = r.json()["key"].as_str().unwrap().to_string();
    let r = request(g.addr, "GET", &format!("/v1/responses/{id}"), Some(&claude_only), b"");
    assert_eq!(r.status, 404, "{}", r.text());
    let deleted = request(g.addr, "DELETE", &format!("/responses/{id}"), Some("sk-1234"), b"");
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(deleted.json(), json!({"id": id, "object": "response", "deleted": true}));
    // previous_response_id goes upstream unwrapped.
    let next = call(g.addr, "sk-1234", json!({"model": "gpt", "input": "more", "previous_response_id": id}));
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.json()["previous_response_id"], d.response_id.as_str());

    // Streamed: the upstream's events, the Response in them re-stamped and its id wrapped.
    let s = call(g.addr, "sk-1234", json!({"model": "gpt", "input": "hi", "stream": true}));
    assert_eq!(s.status, 200, "{}", s.text());
    let ev = events(&s.body);
    assert_eq!(ev[0].0, "response.created");
    assert_eq!(ev[0].1["response"]["model"], "gpt");
    let created_id = ev[0].1["response"]["id"].as_str().unwrap();
    assert!(sluice_wire::responses::id::decode(created_id).is_some(), "{created_id}");
    let (last_kind, last) = ev.last().unwrap();
    assert_eq!(last_kind, "response.completed");
    assert_eq!(last["response"]["id"], created_id);
    assert_eq!(last["response"]["usage"]["output_tokens"], 12);
    let text: String = ev
        .iter()
        .filter(|(k, _)| k == "response.output_text.delta")
        .map(|(_, e)| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello this is a test response from a fixed OpenAI endpoint.");
    assert!(!String::from_utf8_lossy(&s.body).contains("[DONE]"), "no chat terminator is added");
    assert_eq!(mock_stats(&m)["by_route"]["responses"], 5, "{}", mock_stats(&m));
}

#[test]
fn translated_providers_keep_the_conversation_for_its_owner() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    let (alice, alice_hash) = new_key(g.addr);
    let (bob, _) = new_key(g.addr);
    let r = call(
        g.addr,
        &alice,
        json!({"model": "claude", "instructions": "be brief", "input": "hi", "reasoning": {"effort": "low"}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["status"], "completed");
    assert_eq!(v["model"], "claude");
    assert_eq!(v["instructions"], "be brief");
    assert!(!text_of(&v).is_empty(), "{v}");
    assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert!(sluice_wire::responses::id::decode(&id).is_none(), "kept here, not upstream");

    // The owner reads it back; another key is told it does not exist.
    let get = |key: &str| {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = request(g.addr, "GET", &format!("/v1/responses/{id}"), Some(key), b"");
            if r.status == 200 || Instant::now() > deadline || key != alice {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let mine = get(&alice);
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert_eq!(mine.json(), v);
    let theirs = get(&bob);
    assert_eq!(theirs.status, 404, "{}", theirs.text());
    assert!(theirs.error_message().contains("not found"), "{}", theirs.text());

    // The conversation continues for its owner only.
    let next = call(g.addr, &alice, json!({"model": "claude", "input": "and then?", "previous_response_id": id}));
    assert_eq!(next.status, 200, "{}", next.text());
    assert_eq!(next.json()["previous_response_id"], id.as_str());
    let stolen = call(g.addr, &bob, json!({"model": "claude", "input": "x", "previous_response_id": id}));
    assert_eq!(stolen.status, 404, "{}", stolen.text());
    assert_eq!(stolen.json()["error"]["param"], "previous_response_id");

    // Deleting is the owner's too.
    let r = request(g.addr, "DELETE", &format!("/v1/responses/{id}"), Some(&bob), b"");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = request(g.addr, "DELETE", &format!("/v1/responses/{id}"), Some(&alice), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["deleted"], true);
    let r = request(g.addr, "GET", &format!("/v1/responses/{id}"), Some(&alice), b"");
    assert_eq!(r.status, 404, "{}", r.text());

    // `store: false`: answered, not kept.
    let unkept = call(g.addr, &alice, json!({"model": "claude", "input": "hi", "store": false}));
    assert_eq!(unkept.status, 200, "{}", unkept.text());
    let unkept_id = unkept.json()["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(300));
    let r = request(g.addr, "GET", &format!("/v1/responses/{unkept_id}"), Some(&alice), b"");
    assert_eq!(r.status, 404, "{}", r.text());

    // Billed and logged like chat, as LiteLLM's `aresponses`.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let rows = get_rows(g.addr, &alice_hash);
        if rows.len() >= 3 || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        assert_eq!(row["call_type"], "aresponses", "{row}");
        assert!(row["spend"].as_f64().unwrap() > 0.0, "{row}");
    }
}

fn get_rows(addr: SocketAddr, token: &str) -> Vec<Value> {
    let r = get(addr, &format!("/spend/logs?summarize=false&api_key={token}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json().as_array().unwrap().clone()
}

#[test]
fn translated_streams_follow_openai_event_sequence() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    for model in ["claude", "vllm"] {
        let s = call(
            g.addr,
            "sk-1234",
            json!({"model": model, "input": [{"role": "user", "content": "hi"}], "stream": true}),
        );
        assert_eq!(s.status, 200, "{model}: {}", s.text());
        let ev = events(&s.body);
        let kinds: Vec<&str> = ev.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds[..4],
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"],
            "{model}: {kinds:?}"
        );
        assert!(kinds.contains(&"response.output_text.delta"), "{model}: {kinds:?}");
        assert_eq!(
            kinds[kinds.len() - 4..],
            [
                "response.output_text.done",
                "response.content_part.done",
                "response.output_item.done",
                "response.completed"
            ],
            "{model}: {kinds:?}"
        );
        for (i, (kind, e)) in ev.iter().enumerate() {
            assert_eq!(e["sequence_number"], i as u64, "{model}: {kind}");
            assert_eq!(e["type"], kind.as_str());
        }
        let done = &ev.last().unwrap().1["response"];
        assert_eq!(done["model"], model);
        assert!(done["usage"]["output_tokens"].as_u64().unwrap() > 0, "{model}: {done}");
        let deltas: String = ev
            .iter()
            .filter(|(k, _)| k == "response.output_text.delta")
            .map(|(_, e)| e["delta"].as_str().unwrap())
            .collect();
        assert_eq!(deltas, text_of(done), "{model}");
        // Kept: the streamed Response can be read back.
        let id = done["id"].as_str().unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = request(g.addr, "GET", &format!("/v1/responses/{id}"), Some("sk-1234"), b"");
            if r.status == 200 {
                assert_eq!(&r.json(), done);
                break;
            }
            assert!(Instant::now() < deadline, "{model}: {}", r.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn tools_and_their_calls_cross_the_translation() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    let tools = json!([{"type": "function", "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]);
    let r = call(g.addr, "sk-1234", json!({"model": "claude", "input": "please use the tool", "tools": tools}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let fc = v["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .cloned()
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(fc["name"], "get_weather");
    let call_id = fc["call_id"].as_str().unwrap();
    // The tool's output continues the conversation.
    let next = call(
        g.addr,
        "sk-1234",
        json!({"model": "claude", "previous_response_id": v["id"], "tools": tools,
            "input": [{"type": "function_call_output", "call_id": call_id, "output": "sunny"}]}),
    );
    assert_eq!(next.status, 200, "{}", next.text());
    // Streamed, the call comes as its argument deltas.
    let s =
        call(g.addr, "sk-1234", json!({"model": "claude", "input": "use the tool", "tools": tools, "stream": true}));
    let ev = events(&s.body);
    assert!(ev.iter().any(|(k, _)| k == "response.function_call_arguments.delta"), "{ev:?}");
    let done =
        ev.iter().find(|(k, _)| k == "response.function_call_arguments.done").unwrap_or_else(|| panic!("{ev:?}"));
    assert!(serde_json::from_str::<Value>(done.1["arguments"].as_str().unwrap()).is_ok(), "{done:?}");
}

#[test]
fn bad_input_gets_litellm_error_envelope_not_a_5xx() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    for (body, status, param) in [
        (json!({"model": "claude", "input": 5}), 400, Some("input")),
        (json!({"model": "claude", "input": "x", "tools": [{"type": "web_search_preview"}]}), 400, Some("tools")),
        (json!({"model": "claude", "input": [{"type": "item_reference", "id": "x"}]}), 400, Some("input[0]")),
        (
            json!({"model": "claude", "input": "x", "previous_response_id": "resp_nope"}),
            404,
            Some("previous_response_id"),
        ),
        (json!({"model": "gpt", "input": "x", "previous_response_id": 7}), 400, Some("previous_response_id")),
        (json!({"model": "nope", "input": "x"}), 400, None),
        (json!({"input": "x"}), 400, Some("model")),
    ] {
        let r = call(g.addr, "sk-1234", body.clone());
        assert_eq!(r.status, status, "{body}: {}", r.text());
        let v = r.json();
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}: {v}");
        if let Some(p) = param {
            assert_eq!(v["error"]["param"], p, "{body}: {v}");
        }
    }
    let r = request(g.addr, "POST", "/v1/responses", Some("sk-1234"), b"{not json");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = request(g.addr, "GET", "/v1/responses/resp_unknown", Some("sk-1234"), b"");
    assert_eq!(r.status, 404, "{}", r.text());
    let r = request(g.addr, "GET", "/v1/responses/resp_unknown", Some("sk-wrong"), b"");
    assert_eq!(r.status, 401, "{}", r.text());
}

#[test]
fn a_continuation_goes_to_the_deployment_that_holds_the_conversation() {
    let (m1, m2) = (mock(&[]), mock(&[]));
    let config = r#"
model_list:
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o
      api_base: {MOCK}
  - model_name: gpt
    litellm_params:
      model: openai/gpt-4o
      api_base: {MOCK2}
general_settings:
  master_key: sk-1234
"#
    .replace("{MOCK2}", &format!("http://{}/", m2.addr));
    let g = gateway(&config, Some(&m1));
    let first = call(g.addr, "sk-1234", json!({"model": "gpt", "input": "hi"}));
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_string();
    for _ in 0..10 {
        let r = call(
            g.addr,
            "sk-1234",
            json!({"model": "gpt", "input": "more", "previous_response_id": id, "stream": true}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let counts = [&m1, &m2].map(|m| mock_stats(m)["by_route"]["responses"].as_u64().unwrap());
    assert!(counts == [11, 0] || counts == [0, 11], "every turn on the deployment of the first: {counts:?}");
}

#[test]
fn azure_deployments_answer_natively_at_their_responses_path() {
    let m = mock(&[]);
    let config = r#"
model_list:
  - model_name: az
    litellm_params:
      model: azure/my-gpt4o
      api_base: {MOCK}
      api_key: az-key
      api_version: 2025-03-01-preview
general_settings:
  master_key: sk-1234
"#;
    let g = gateway(config, Some(&m));
    let r = call(g.addr, "sk-1234", json!({"model": "az", "input": "hi"}));
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["model"], "az");
    let id = v["id"].as_str().unwrap();
    assert_eq!(sluice_wire::responses::id::decode(id).unwrap().provider, "azure");
    let got = request(g.addr, "GET", &format!("/v1/responses/{id}"), Some("sk-1234"), b"");
    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.json()["id"], id);
    assert_eq!(mock_stats(&m)["by_route"]["responses"], 2, "both reached the mock's Responses API");
}

#[test]
fn a_conversation_kept_here_continues_on_an_openai_deployment_as_chat() {
    let m = mock(&[]);
    let g = gateway(CONFIG, Some(&m));
    let first = call(g.addr, "sk-1234", json!({"model": "claude", "input": "hi"}));
    assert_eq!(first.status, 200, "{}", first.text());
    let id = first.json()["id"].as_str().unwrap().to_string();
    // Read-your-writes: the next turn may come before the row is in the database.
    let next = call(g.addr, "sk-1234", json!({"model": "gpt", "input": "more", "previous_response_id": id}));
    assert_eq!(next.status, 200, "{}", next.text());
    let v = next.json();
    assert_eq!(v["model"], "gpt");
    assert_eq!(v["previous_response_id"], id.as_str());
    assert_eq!(text_of(&v), "\n\nHello there, how may I assist you today?", "OpenAI's chat answered: {v}");
    let stats = mock_stats(&m);
    assert_eq!(stats["by_route"]["responses"], 0, "{stats}");
    assert_eq!(stats["by_route"]["chat"], 1, "{stats}");
}
