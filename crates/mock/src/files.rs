//! OpenAI's Files and Batches APIs as OpenAI (and Azure, under `/openai/`) answer them:
//! `POST /v1/files` (a `multipart/form-data` upload with `purpose` and `file`), `GET /v1/files`,
//! `GET`/`DELETE /v1/files/{id}`, `GET /v1/files/{id}/content`; `POST /v1/batches`, `GET
//! /v1/batches`, `GET /v1/batches/{id}`, `POST /v1/batches/{id}/cancel`. Files are kept in memory,
//! bounded in count and bytes (the oldest go first). A batch is `validating` when made and
//! `completed` when next read, with an output file holding one chat answer (with usage) per
//! input line.

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Mutex;

use crate::respond::{self, Resp};

/// The most files kept, and their most bytes together: the oldest are dropped past either.
const MAX_FILES: usize = 1000;
const MAX_BYTES: usize = 256 * 1024 * 1024;
/// The most batches kept.
const MAX_BATCHES: usize = 1000;
/// Each answer's usage in a batch's output file.
pub const BATCH_PROMPT_TOKENS: u64 = 10;
pub const BATCH_COMPLETION_TOKENS: u64 = 20;

/// What a files or batches path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call<'a> {
    Files,
    File(&'a str),
    Content(&'a str),
    Batches,
    Batch(&'a str),
    Cancel(&'a str),
}

/// The call a path names, under `/v1`, at the root, or Azure's `/openai` and `/openai/v1`.
pub fn classify(path: &str) -> Option<Call<'_>> {
    let rest = ["/openai/v1", "/openai", "/v1", ""].iter().find_map(|p| {
        let r = path.strip_prefix(p)?;
        (r.starts_with("/files") || r.starts_with("/batches")).then_some(r)
    })?;
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    fn id(s: &str) -> Option<&str> {
        (!s.is_empty()).then_some(s)
    }
    match parts.as_slice() {
        ["files"] => Some(Call::Files),
        ["files", f] => id(f).map(Call::File),
        ["files", f, "content"] => id(f).map(Call::Content),
        ["batches"] => Some(Call::Batches),
        ["batches", b] => id(b).map(Call::Batch),
        ["batches", b, "cancel"] => id(b).map(Call::Cancel),
        _ => None,
    }
}

struct File {
    id: String,
    purpose: String,
    filename: String,
    created_at: u64,
    bytes: Bytes,
}

impl File {
    fn object(&self) -> Value {
        json!({
            "id": self.id, "object": "file", "bytes": self.bytes.len(), "created_at": self.created_at,
            "filename": self.filename, "purpose": self.purpose, "status": "processed", "status_details": null,
        })
    }
}

#[derive(Default)]
struct Store {
    files: VecDeque<File>,
    bytes: usize,
    batches: VecDeque<Value>,
}

impl Store {
    fn add_file(&mut self, file: File) -> Value {
        self.bytes += file.bytes.len();
        let object = file.object();
        self.files.push_back(file);
        while self.files.len() > MAX_FILES || self.bytes > MAX_BYTES {
            match self.files.pop_front() {
                Some(old) => self.bytes -= old.bytes.len(),
                None => break,
            }
        }
        object
    }

    fn file(&self, id: &str) -> Option<&File> {
        self.files.iter().find(|f| f.id == id)
    }
}

/// The files and batches one mock keeps.
#[derive(Default)]
pub struct Files {
    store: Mutex<Store>,
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

fn error(status: StatusCode, message: &str) -> Resp {
    respond::openai_error(status, message, "invalid_request_error", "")
}

fn ok(v: Value) -> Resp {
    respond::openai_headers(respond::json(StatusCode::OK, v.to_string()))
}

fn list(data: Vec<Value>) -> Resp {
    let first = data.first().and_then(|v| v["id"].as_str()).map(str::to_string);
    let last = data.last().and_then(|v| v["id"].as_str()).map(str::to_string);
    ok(json!({"object": "list", "data": data, "first_id": first, "last_id": last, "has_more": false}))
}

impl Files {
    /// Answers `call`; `body` is the whole request body (`None` when it could not be read whole:
    /// an upload cut off on the way is not kept).
    pub fn handle(&self, call: Call<'_>, method: &Method, content_type: &str, body: Option<&Bytes>) -> Resp {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        match (call, method) {
            (Call::Files, &Method::POST) => {
                let Some(body) = body else { return error(StatusCode::BAD_REQUEST, "the upload was cut off") };
                match upload(body, content_type) {
                    Ok((purpose, filename, bytes)) => {
                        let file = File { id: new_id("file-"), purpose, filename, created_at: now(), bytes };
                        ok(store.add_file(file))
                    }
                    Err(e) => error(StatusCode::BAD_REQUEST, &e),
                }
            }
            (Call::Files, &Method::GET) => list(store.files.iter().rev().map(File::object).collect()),
            (Call::File(id), &Method::GET) => match store.file(id) {
                Some(f) => ok(f.object()),
                None => error(StatusCode::NOT_FOUND, &format!("No such File object: {id}")),
            },
            (Call::File(id), &Method::DELETE) => match store.files.iter().position(|f| f.id == id) {
                Some(at) => {
                    if let Some(f) = store.files.remove(at) {
                        store.bytes -= f.bytes.len();
                    }
                    ok(json!({"id": id, "object": "file", "deleted": true}))
                }
                None => error(StatusCode::NOT_FOUND, &format!("No such File object: {id}")),
            },
            (Call::Content(id), &Method::GET) => match store.file(id) {
                Some(f) => {
                    let mut r = respond::json(StatusCode::OK, f.bytes.clone());
                    r.headers_mut()
                        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/octet-stream"));
                    r
                }
                None => error(StatusCode::NOT_FOUND, &format!("No such File object: {id}")),
            },
            (Call::Batches, &Method::POST) => {
                let Some(body) = body else { return error(StatusCode::BAD_REQUEST, "the body was cut off") };
                let Ok(req) = serde_json::from_slice::<Value>(body) else {
                    return error(StatusCode::BAD_REQUEST, "Invalid JSON body");
                };
                let input = req["input_file_id"].as_str().unwrap_or_default();
                if store.file(input).is_none() {
                    return error(StatusCode::BAD_REQUEST, &format!("No such File object: {input}"));
                }
                for field in ["endpoint", "completion_window"] {
                    if !req[field].is_string() {
                        return error(StatusCode::BAD_REQUEST, &format!("Missing required parameter: '{field}'."));
                    }
                }
                let batch = json!({
                    "id": new_id("batch_"), "object": "batch", "endpoint": req["endpoint"],
                    "errors": null, "input_file_id": input, "completion_window": req["completion_window"],
                    "status": "validating", "output_file_id": null, "error_file_id": null,
                    "created_at": now(), "in_progress_at": null, "expires_at": now() + 86_400,
                    "completed_at": null, "cancelling_at": null, "cancelled_at": null,
                    "request_counts": {"total": 0, "completed": 0, "failed": 0},
                    "metadata": req.get("metadata").cloned().unwrap_or(Value::Null),
                });
                store.batches.push_back(batch.clone());
                while store.batches.len() > MAX_BATCHES {
                    store.batches.pop_front();
                }
                ok(batch)
            }
            (Call::Batches, &Method::GET) => list(store.batches.iter().rev().cloned().collect()),
            (Call::Batch(id), &Method::GET) => {
                let Some(at) = store.batches.iter().position(|b| b["id"] == id) else {
                    return error(StatusCode::NOT_FOUND, &format!("No such Batch object: {id}"));
                };
                if store.batches[at]["status"] == "validating" {
                    complete(&mut store, at);
                }
                ok(store.batches[at].clone())
            }
            (Call::Cancel(id), &Method::POST) => {
                let Some(batch) = store.batches.iter_mut().find(|b| b["id"] == id) else {
                    return error(StatusCode::NOT_FOUND, &format!("No such Batch object: {id}"));
                };
                if batch["status"] == "completed" {
                    return error(StatusCode::CONFLICT, "Cannot cancel a batch with status 'completed'.");
                }
                batch["status"] = json!("cancelled");
                batch["cancelling_at"] = json!(now());
                batch["cancelled_at"] = json!(now());
                ok(batch.clone())
            }
            _ => respond::method_not_allowed(),
        }
    }
}

/// Runs the batch at `at`: one chat answer per line of its input file, in an output file.
fn complete(store: &mut Store, at: usize) {
    let input = store.batches[at]["input_file_id"].as_str().unwrap_or_default().to_string();
    let lines: Vec<Value> = store
        .file(&input)
        .map(|f| f.bytes.split(|b| *b == b'\n').filter_map(|l| serde_json::from_slice::<Value>(l).ok()).collect())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (n, line) in lines.iter().enumerate() {
        let model = line["body"]["model"].as_str().unwrap_or(crate::openai::DEFAULT_CHAT_MODEL);
        let answer = json!({
            "id": format!("batch_req_{n}"), "custom_id": line["custom_id"], "error": null,
            "response": {"status_code": 200, "request_id": format!("req_{n}"), "body": {
                "id": format!("chatcmpl-batch{n}"), "object": "chat.completion", "created": now(), "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": crate::openai::STREAM_SENTENCE},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": BATCH_PROMPT_TOKENS, "completion_tokens": BATCH_COMPLETION_TOKENS,
                          "total_tokens": BATCH_PROMPT_TOKENS + BATCH_COMPLETION_TOKENS},
            }},
        });
        out.extend_from_slice(answer.to_string().as_bytes());
        out.push(b'\n');
    }
    let output = File {
        id: new_id("file-"),
        purpose: "batch_output".into(),
        filename: "batch_output.jsonl".into(),
        created_at: now(),
        bytes: Bytes::from(out),
    };
    let output_id = output.id.clone();
    store.add_file(output);
    let batch = &mut store.batches[at];
    batch["status"] = json!("completed");
    batch["output_file_id"] = json!(output_id);
    batch["in_progress_at"] = json!(now());
    batch["completed_at"] = json!(now());
    batch["request_counts"] = json!({"total": lines.len(), "completed": lines.len(), "failed": 0});
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(hay.get(from..)?, needle).map(|p| p + from)
}

/// The `purpose`, the file's name and its bytes from an upload.
fn upload(body: &Bytes, content_type: &str) -> Result<(String, String, Bytes), String> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"'))
        .filter(|b| !b.is_empty())
        .ok_or("the upload is not multipart/form-data with a boundary")?;
    let delimiter = format!("--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0).ok_or("no boundary line")? + delimiter.len();
    let (mut purpose, mut file) = (None, None);
    while body.get(at..at + 2) == Some(b"\r\n") {
        let head_end = find(body, b"\r\n\r\n", at + 2).ok_or("a part has no end of headers")?;
        let head = String::from_utf8_lossy(&body[at + 2..head_end]).to_string();
        // The parameters of the Content-Disposition line (other header lines follow it).
        let head = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or("")
            .to_string();
        let next = find(body, format!("\r\n{delimiter}").as_bytes(), head_end + 4).ok_or("a part is not closed")?;
        let value = body.slice(head_end + 4..next);
        let param = |key: &str| {
            head.split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=")).map(|v| v.trim_matches('"').to_string()))
        };
        match param("name").as_deref() {
            Some("purpose") => purpose = Some(String::from_utf8_lossy(&value).to_string()),
            Some("file") => file = Some((param("filename").unwrap_or_else(|| "upload".into()), value)),
            Some(other) => return Err(format!("Unrecognized request argument supplied: {other}")),
            None => {}
        }
        at = next + 2 + delimiter.len();
    }
    let purpose = purpose.ok_or("Missing required parameter: 'purpose'.")?;
    let (filename, bytes) = file.ok_or("Missing required parameter: 'file'.")?;
    Ok((purpose, filename, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_openai_and_azure_paths() {
        assert_eq!(classify("/v1/files"), Some(Call::Files));
        assert_eq!(classify("/openai/files/file-1/content"), Some(Call::Content("file-1")));
        assert_eq!(classify("/openai/v1/batches/b/cancel"), Some(Call::Cancel("b")));
        assert_eq!(classify("/batches/b"), Some(Call::Batch("b")));
        assert_eq!(classify("/v1/files/"), None);
        assert_eq!(classify("/v1/chat/completions"), None);
    }

    #[test]
    fn an_upload_is_kept_and_a_batch_completes_with_answers() {
        let files = Files::default();
        let line = json!({"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
                          "body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}});
        let form = format!(
            "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n{line}\n\r\n--b--\r\n"
        );
        let r = files.handle(Call::Files, &Method::POST, "multipart/form-data; boundary=b", Some(&Bytes::from(form)));
        assert_eq!(r.status(), StatusCode::OK);
        let file_id = files.store.lock().unwrap().files[0].id.clone();
        let body = Bytes::from(
            json!({"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h"})
                .to_string(),
        );
        assert_eq!(files.handle(Call::Batches, &Method::POST, "", Some(&body)).status(), StatusCode::OK);
        let id = files.store.lock().unwrap().batches[0]["id"].as_str().unwrap().to_string();
        assert_eq!(files.handle(Call::Batch(&id), &Method::GET, "", None).status(), StatusCode::OK);
        let store = files.store.lock().unwrap();
        assert_eq!(store.batches[0]["status"], "completed");
        let out = store.file(store.batches[0]["output_file_id"].as_str().unwrap()).unwrap();
        let answer: Value = serde_json::from_slice(out.bytes.strip_suffix(b"\n").unwrap()).unwrap();
        assert_eq!(answer["custom_id"], "r1");
        assert_eq!(answer["response"]["body"]["usage"]["completion_tokens"], BATCH_COMPLETION_TOKENS);
    }

    #[test]
    fn a_cut_off_upload_is_not_kept() {
        let files = Files::default();
        let r = files.handle(Call::Files, &Method::POST, "multipart/form-data; boundary=b", None);
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(files.store.lock().unwrap().files.is_empty());
    }
}
