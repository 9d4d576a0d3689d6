//! Counting tokens when an upstream reports no usage, the way LiteLLM does: tiktoken, o200k for
//! OpenAI's newer models and cl100k for everything else, plus the cookbook's per-message overhead.
//! The one estimator: the server's stream relays and `/v1/messages/count_tokens`, translated chat
//! answers and the embeddings of providers that count nothing (`embedding::estimated_tokens`)
//! all count here.
//!
//! A chat answer whose provider reported no usage (Triton; Workers AI, Replicate and Azure's text
//! completions at times) or only one side of it (TGI's generated tokens without the prompt's) is
//! given LiteLLM's stand-in ([`fill_chat_usage`]): the missing side counted here, so the answer's
//! `usage`, the bill and the budgets see the call. Providers that report both are never
//! tokenized.
//!
//! The BPE is `bpe-openai`'s (GitHub's linear-time BPE): it counts what tiktoken counts. The
//! text is cut into pieces by `pieces` where it is ASCII and by `bpe-openai`'s regex elsewhere,
//! and the counts of short pieces, of spans (runs of whole pieces, `pieces::span_end`) and of a
//! long text's chunks (runs of spans, cut where its bytes say: `chunks`) are remembered per
//! thread (`memo`), because a TGI-style answer's prompt estimate sits on the
//! request path, where tiktoken-rs's backtracking regex and BPE made those providers many times
//! dearer than a pass-through (bench/README.md, "Token estimation").
//! `tests/tokens.rs` checks the counts against tiktoken-rs (a dev-dependency only), and the
//! tests below check the pieces against the regex.
//!
//! Text that spells a special token (`<|endoftext|>`) is counted as the text it is, as LiteLLM
//! counts it (`encode(text, disallowed_special=())`), not as the one special token.
//!
//! The BPE tables are loaded on first use, not at start-up: each costs tens of megabytes of
//! resident memory, and most deployments report usage themselves so the tables are never needed.

mod chunks;
mod memo;
mod pieces;

use pieces::Rules;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

/// One of tiktoken's encodings, cl100k or o200k; its tables are loaded on the first count.
pub struct Encoding {
    tables: fn() -> &'static bpe_openai::Tokenizer,
    rules: Rules,
}

static CL100K: Encoding = Encoding { tables: bpe_openai::cl100k_base, rules: Rules::Cl100k };
static O200K: Encoding = Encoding { tables: bpe_openai::o200k_base, rules: Rules::O200k };

impl Encoding {
    /// Tokens of `text`, special tokens' spellings counted as plain text.
    pub fn count(&self, text: &str) -> u64 {
        let tables = (self.tables)();
        // One loop for each encoding, so that each has its rules as a constant.
        let count = |memo: &mut memo::Table<'_>| match self.rules {
            Rules::Cl100k => count_pieces(Rules::Cl100k, tables, memo, text),
            Rules::O200k => count_pieces(Rules::O200k, tables, memo, text),
        };
        memo::with_table(self.rules as usize, count).unwrap_or_else(|| count(&mut memo::Table::none()))
    }

    /// The pieces tiktoken's pre-tokenizer cuts `text` into, as `count` cuts them.
    #[cfg(test)]
    fn pieces<'a>(&'a self, text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        let mut start = 0;
        std::iter::from_fn(move || {
            if start >= text.len() {
                return None;
            }
            let end = piece_end(self.rules, (self.tables)(), text, start);
            let piece = &text[start..end];
            start = end;
            Some(piece)
        })
    }
}

/// Texts shorter than this are counted span by span: a chunk's hash would cost more than the
/// few span lookups it saves.
const CHUNKED: usize = 4 * chunks::SHORTEST;

/// The tokens of `text`, chunk by chunk (`chunks`): a chunk remembered whole is not cut into
/// spans at all, and one that is not is counted by [`count_spans`] and then remembered. The
/// text's last chunk, which no cut follows, is not remembered (as its last span is not).
#[inline(always)]
fn count_pieces(rules: Rules, tables: &bpe_openai::Tokenizer, memo: &mut memo::Table<'_>, text: &str) -> u64 {
    let bytes = text.as_bytes();
    if bytes.len() < CHUNKED {
        return count_spans(rules, tables, memo, text, 0, bytes.len()).0;
    }
    let mut cuts = chunks::Cuts::new(bytes);
    let (mut total, mut start) = (0, 0);
    while let Some(cut) = cuts.next_cut() {
        let key = memo.chunk_key(&bytes[start..cut]);
        if let Some(n) = key.and_then(|key| memo.chunk(key)) {
            total += n;
            start = cut;
            continue;
        }
        let (n, end) = count_spans(rules, tables, memo, text, start, cut);
        total += n;
        if end != cut {
            // A piece ran past the cut, which `pieces::span_end` rules out; were one to, the
            // count goes on from the piece's end without chunks, and stays right.
            return total + count_spans(rules, tables, memo, text, end, bytes.len()).0;
        }
        if let Some(key) = key {
            memo.remember_chunk(key, n);
        }
        start = cut;
    }
    total + count_spans(rules, tables, memo, text, start, bytes.len()).0
}

/// The tokens of `text[from..to]` (`to` a span's start or the text's end), each piece counted
/// by `tables`' BPE or found in `memo`, span by span (`pieces::span_end`): a span remembered
/// whole is not cut into pieces at all. With the count, where the last piece ended: `to`, unless
/// a piece ran past it.
#[inline(always)]
fn count_spans(
    rules: Rules,
    tables: &bpe_openai::Tokenizer,
    memo: &mut memo::Table<'_>,
    text: &str,
    from: usize,
    to: usize,
) -> (u64, usize) {
    let bytes = text.as_bytes();
    let (mut total, mut start) = (0, from);
    while start < to {
        let end = pieces::span_end(bytes, start);
        let last = end == bytes.len();
        if !last {
            if let Some(n) = memo.span(bytes, start, end) {
                total += n;
                start = end;
                continue;
            }
        }
        let mut at = piece_end(rules, tables, text, start);
        let n = if at == end && !last {
            // A span of one piece (most words) is remembered as the span alone: remembering it
            // twice would cost another lookup on each miss and crowd the table.
            tables.bpe.count(&bytes[start..end]) as u64
        } else {
            // Every byte is a token of its own in both encodings, so a one-byte piece (most of
            // a UUID's or a number's) is one token without a lookup.
            let mut piece = |from: usize, to: usize| match to - from {
                1 => 1,
                _ => memo.count(bytes, from, to, |p| tables.bpe.count(p)) as u64,
            };
            let mut n = piece(start, at);
            while at < end {
                let piece_end = piece_end(rules, tables, text, at);
                n += piece(at, piece_end);
                at = piece_end;
            }
            n
        };
        // A piece never runs past a span's end (`pieces::span_end`); were one to, its count
        // stays right and only the span is not remembered.
        if at == end && !last {
            memo.remember_span(bytes, start, end, n);
        }
        total += n;
        start = at;
    }
    (total, start)
}

/// Where the piece of `text` that starts at `start` (before its end) ends: by hand where ASCII
/// settles the piece, by `bpe-openai`'s regex where it does not.
#[inline(always)]
fn piece_end(rules: Rules, tables: &bpe_openai::Tokenizer, text: &str, start: usize) -> usize {
    let end = pieces::piece_end(rules, text.as_bytes(), start)
        .unwrap_or_else(|| start + tables.split(&text[start..]).next().map_or(0, str::len));
    // Every pattern takes at least a character; should one not, the rest is one piece rather
    // than a loop that never ends.
    if end > start {
        end
    } else {
        text.len()
    }
}

/// `cl100k_base`: LiteLLM's default encoding.
pub fn cl100k() -> &'static Encoding {
    &CL100K
}

/// `o200k_base`: OpenAI's newer models' encoding.
pub fn o200k() -> &'static Encoding {
    &O200K
}

/// The encoding LiteLLM would use for `model`.
pub fn encoding_for(model: &str) -> &'static Encoding {
    let m = model.rsplit('/').next().unwrap_or(model);
    let o200k =
        ["gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o"].iter().any(|p| m.starts_with(p));
    if o200k {
        &O200K
    } else {
        &CL100K
    }
}

/// Tokens of `text`, special tokens' spellings counted as plain text.
pub fn count_text(bpe: &Encoding, text: &str) -> u64 {
    bpe.count(text)
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

/// Prompt tokens of a chat `messages` array: 3 per message, +1 with a name, 3 to prime the reply.
pub fn count_messages(bpe: &Encoding, messages: &str) -> u64 {
    count_scanned(bpe, messages).unwrap_or_else(|| count_parsed(bpe, messages))
}

/// [`count_messages`] by serde_json's parse; text that is no array of messages counts as text.
fn count_parsed(bpe: &Encoding, messages: &str) -> u64 {
    let Ok(list) = serde_json::from_str::<Vec<Message<'_>>>(messages) else {
        return count_text(bpe, messages);
    };
    let mut total = 3;
    for m in list {
        total += 3;
        if let Some(r) = m.role {
            total += count_text(bpe, &r);
        }
        if let Some(n) = m.name {
            total += 1 + count_text(bpe, &n);
        }
        if let Some(c) = m.content {
            total += count_content(bpe, c);
        }
    }
    total
}

/// [`count_messages`] over the wire scanner's slices of the array, read in one pass that finds a
/// long content's closing quote with SIMD where serde_json's parse walked it byte by byte (about
/// a tenth of a TGI-style request's estimate on the seed's 16 KB prompt). `None` where the
/// scanner refuses the text or serde_json's reading of a message would fail (a field given twice;
/// a role or name that is neither a string nor null): the parse then answers, as before.
fn count_scanned(bpe: &Encoding, messages: &str) -> Option<u64> {
    // Each message's role, name and content, as raw JSON text.
    let mut fields: Vec<[Option<&str>; 3]> = Vec::new();
    let mut twice = false;
    let items = sluice_wire::members::array_objects(messages, |item, name, raw| {
        let field = match &*name {
            "role" => 0,
            "name" => 1,
            "content" => 2,
            _ => return,
        };
        if fields.len() <= item {
            fields.resize(item + 1, [None; 3]);
        }
        twice |= fields[item][field].replace(raw).is_some();
    })?;
    if twice {
        return None;
    }
    // Messages with none of the three fields are counted too.
    fields.resize(items, [None; 3]);
    // A role or name as serde_json reads it: absent or null is none; anything but a string fails.
    let text = |raw: Option<&str>| match raw {
        None => Some(None),
        Some(raw) => serde_json::from_str::<Option<Cow<'_, str>>>(raw).ok(),
    };
    let mut total = 3;
    for [role, name, content] in fields {
        total += 3;
        if let Some(r) = text(role)? {
            total += count_text(bpe, &r);
        }
        if let Some(n) = text(name)? {
            total += 1 + count_text(bpe, &n);
        }
        if let Some(c) = content.filter(|c| *c != "null") {
            total += count_raw_content(bpe, c);
        }
    }
    Some(total)
}

fn count_content(bpe: &Encoding, content: &RawValue) -> u64 {
    count_raw_content(bpe, content.get())
}

/// The tokens of a message's `content`, given as its JSON text: a string, or a list of parts
/// whose `text`s count.
fn count_raw_content(bpe: &Encoding, raw: &str) -> u64 {
    // A string with no escape is its own text between its quotes (the messages' parse or scan
    // has checked it), so a long prompt is not read a second time to decode it.
    if let Some(text) = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|t| memchr::memchr(b'\\', t.as_bytes()).is_none())
    {
        return count_text(bpe, text);
    }
    if let Ok(s) = serde_json::from_str::<Cow<'_, str>>(raw) {
        return count_text(bpe, &s);
    }
    if let Ok(parts) = serde_json::from_str::<Vec<Part<'_>>>(raw) {
        return parts.iter().filter_map(|p| p.text.as_deref()).map(|t| count_text(bpe, t)).sum();
    }
    0
}

/// Prompt tokens of a completions `prompt` (a string or a list of strings).
pub fn count_prompt(bpe: &Encoding, prompt: &str) -> u64 {
    if let Ok(s) = serde_json::from_str::<Cow<'_, str>>(prompt) {
        return count_text(bpe, &s);
    }
    if let Ok(list) = serde_json::from_str::<Vec<Cow<'_, str>>>(prompt) {
        return list.iter().map(|s| count_text(bpe, s)).sum();
    }
    0
}

/// The usage LiteLLM gives a chat answer whose provider left a side of it out (0 or absent):
/// the prompt as the request's `messages` with the cookbook's overhead (`token_counter`), the
/// completion as the answer's `generated` text, each on `model`'s encoding. `None` when the
/// provider reported both sides, so nothing is tokenized.
pub fn fill_chat_usage(
    reported: Option<(u64, u64)>,
    request: &[u8],
    model: &str,
    generated: &str,
) -> Option<(u64, u64)> {
    let (prompt, completion) = reported.unwrap_or((0, 0));
    if prompt > 0 && completion > 0 {
        return None;
    }
    let bpe = encoding_for(model);
    let prompt = match prompt {
        0 => sluice_wire::sniff::request(request, sluice_wire::sniff::Endpoint::Chat)
            .ok()
            .and_then(|view| view.messages)
            .map_or(0, |m| count_messages(bpe, m)),
        p => p,
    };
    let completion = match completion {
        0 => count_text(bpe, generated),
        c => c,
    };
    Some((prompt, completion))
}

/// The text a chat answer generated, as counted for its estimate: each choice's content and its
/// tool calls' names and arguments.
pub fn answer_text(answer: &serde_json::Value) -> String {
    let mut text = String::new();
    for choice in answer.get("choices").and_then(serde_json::Value::as_array).into_iter().flatten() {
        if let Some(message) = choice.get("message") {
            push_generated(&mut text, message);
        }
    }
    text
}

/// Appends what a chat message or a stream chunk's `delta` generated to `text`.
pub fn push_generated(text: &mut String, message: &serde_json::Value) {
    if let Some(content) = message.get("content").and_then(serde_json::Value::as_str) {
        text.push_str(content);
    }
    for call in message.get("tool_calls").and_then(serde_json::Value::as_array).into_iter().flatten() {
        let f = &call["function"];
        for part in [&f["name"], &f["arguments"]] {
            if let Some(s) = part.as_str() {
                text.push_str(s);
            }
        }
    }
}

/// Sets `usage`'s three counts to `(prompt, completion)`, keeping any other member it has.
pub fn set_usage(usage: &mut serde_json::Value, (prompt, completion): (u64, u64)) {
    if !usage.is_object() {
        *usage = serde_json::json!({});
    }
    usage["prompt_tokens"] = prompt.into();
    usage["completion_tokens"] = completion.into();
    usage["total_tokens"] = (prompt + completion).into();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan answers as the parse does wherever it answers, and declines where the parse
    /// would read the text differently.
    #[test]
    fn scanned_messages_count_as_parsed() {
        let long = "We'll fill up the context. ".repeat(40);
        let answered = [
            r#"[{"role":"user","content":"Hello world"}]"#.to_string(),
            r#" [ { "role" : "system" , "content" : "Be brief." } , {"role":"user","name":"ann","content":"hi"} ] "#
                .to_string(),
            r#"[{"role":null,"name":null,"content":null}]"#.to_string(),
            r#"[{"content":"no role"},{}]"#.to_string(),
            r#"[{"r\u006fle":"assistant","content":"escaped name"}]"#.to_string(),
            r#"[{"role":"user","content":"tab\tand \"quotes\" \u00e9"}]"#.to_string(),
            r#"[{"role":"user","content":[{"type":"text","text":"one"},{"type":"image_url"},{"text":"two"}]}]"#
                .to_string(),
            r#"[{"role":"tool","content":{"odd":"object"},"tool_call_id":"x","extra":[1,{"content":"no"}]}]"#
                .to_string(),
            r#"[]"#.to_string(),
            format!(r#"[{{"role":"user","content":"{long}"}},{{"role":"assistant","content":"{long}x"}}]"#),
        ];
        let declined = [
            r#"[{"role":"user","role":"system","content":"twice"}]"#,
            r#"[{"role":"user","content":"a","content":"b"}]"#,
            r#"[{"role":7,"content":"a number"}]"#,
            r#"[{"role":"user","name":["x"],"content":"a list"}]"#,
            r#"["not an object"]"#,
            r#"[{"role":"user","content":"cut"#,
            r#"{"role":"user"}"#,
            "plain words",
        ];
        for bpe in [cl100k(), o200k()] {
            for messages in &answered {
                assert_eq!(count_scanned(bpe, messages), Some(count_parsed(bpe, messages)), "{messages}");
            }
            for messages in declined {
                assert_eq!(count_scanned(bpe, messages), None, "{messages}");
                assert_eq!(count_messages(bpe, messages), count_parsed(bpe, messages), "{messages}");
            }
        }
    }

    #[test]
    fn counts_like_the_cookbook() {
        let bpe = cl100k();
        // 3 priming + 3 per message + "user" (1) + "Hello world" (2)
        assert_eq!(count_messages(bpe, r#"[{"role":"user","content":"Hello world"}]"#), 9);
        assert_eq!(count_messages(bpe, r#"[{"role":"user","content":[{"type":"text","text":"Hello world"}]}]"#), 9);
        assert_eq!(count_prompt(bpe, r#"["Hello world","Hello"]"#), 3);
        // Contents with and without escapes, empty, and not text at all.
        for (content, text) in [
            (r#""Hello world""#, "Hello world"),
            (r#""say \"hi\"\n\u00e9\t""#, "say \"hi\"\n\u{e9}\t"),
            (r#""""#, ""),
            (r#""\\""#, "\\"),
            ("7", ""),
            (r#"{"text":"Hello"}"#, ""),
        ] {
            let messages = format!(r#"[{{"role":"user","content":{content}}}]"#);
            assert_eq!(count_messages(bpe, &messages), 7 + count_text(bpe, text), "{content}");
        }
    }

    #[test]
    fn fills_only_the_side_the_provider_left_out() {
        let req = br#"{"model":"m","messages":[{"role":"user","content":"Hello world"}]}"#;
        // Nothing reported (Triton): both counted, the prompt as `token_counter` counts it.
        assert_eq!(fill_chat_usage(None, req, "triton/m", "Hello world"), Some((9, 2)));
        // TGI without `prefill`: its generated count kept, the prompt counted.
        assert_eq!(fill_chat_usage(Some((0, 7)), req, "predibase/m", "Hello world"), Some((9, 7)));
        // Both reported: nothing is tokenized.
        assert_eq!(fill_chat_usage(Some((3, 4)), req, "m", "Hello world"), None);
        // A body that is not a chat request counts no prompt rather than failing the answer.
        assert_eq!(fill_chat_usage(None, b"not json", "m", ""), Some((0, 0)));
    }

    #[test]
    fn the_generated_text_includes_tool_calls() {
        let answer = serde_json::json!({"choices": [{"message": {"content": "Hi", "tool_calls": [
            {"function": {"name": "f", "arguments": "{}"}}]}}]});
        assert_eq!(answer_text(&answer), "Hif{}");
        let mut usage = serde_json::json!({"prompt_tokens": 0, "completion_tokens_details": {"reasoning_tokens": 0}});
        set_usage(&mut usage, (2, 3));
        assert_eq!(usage["total_tokens"], 5);
        assert!(usage.get("completion_tokens_details").is_some());
    }

    /// The hand-written rules with the regex behind them cut every text as the regex alone does.
    fn assert_pieces_like_the_regex(text: &str) {
        for encoding in [cl100k(), o200k()] {
            let ours: Vec<&str> = encoding.pieces(text).collect();
            let regex: Vec<&str> = (encoding.tables)().split(text).collect();
            assert_eq!(ours, regex, "{:?} cuts {text:?} otherwise", encoding.rules);
        }
    }

    #[test]
    fn pieces_like_the_regex() {
        for text in [
            "",
            "a",
            "'",
            "'s",
            "'S",
            "'salt",
            "''s",
            "'re'RE'Ll'lL'x",
            "don't I'M they'RE O'Neil",
            "'\u{17f}",
            "x'\u{17f}",
            "HTTPServer iPhone ABC's aBc'LL",
            "a  b",
            "a   ",
            "  \n  x",
            "\n\n",
            " \t!",
            "\t!",
            "  !",
            " !!\n\n/x",
            "!\n/ /",
            "1234567",
            "12\u{663}4",
            "\u{a0}x",
            "x\u{a0}",
            " \u{a0} ",
            "caf\u{e9}",
            "e\u{301}x",
            "\u{0}\u{7f}",
            "x\r\n",
            "a\n ",
            "a \n\t",
            "end  ",
        ] {
            assert_pieces_like_the_regex(text);
        }
    }

    const FRAGMENTS: &[&str] = &[
        " ",
        "  ",
        "\t",
        "\u{b}",
        "\u{c}",
        "\r",
        "\n",
        "'",
        "s",
        "S",
        "t",
        "re",
        "VE",
        "m",
        "Ll",
        "d",
        "x",
        "Q",
        "ab",
        "CD",
        "eF",
        "Gh",
        "1",
        "23",
        "/",
        "!",
        ".",
        "\"",
        "\u{0}",
        "\u{1f}",
        "\u{7f}",
        "\u{17f}",
        "\u{e9}",
        "\u{c9}",
        "\u{301}",
        "\u{a0}",
        "\u{85}",
        "\u{2028}",
        "\u{3000}",
        "\u{663}",
        "\u{2460}",
        "\u{4e2d}",
        "\u{1f600}",
        "\u{2014}",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 2048, ..Default::default() })]

        #[test]
        fn joined_fragments_cut_like_the_regex(
            parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..40)
        ) {
            assert_pieces_like_the_regex(&parts.concat());
        }

        #[test]
        fn ascii_cuts_like_the_regex(bytes in proptest::collection::vec(0u8..128, 0..200)) {
            assert_pieces_like_the_regex(&String::from_utf8(bytes).expect("ASCII"));
        }
    }

    #[test]
    fn picks_encoding_by_model() {
        assert!(std::ptr::eq(encoding_for("gpt-4o-mini"), o200k()));
        assert!(std::ptr::eq(encoding_for("openai/fake"), cl100k()));
    }
}
