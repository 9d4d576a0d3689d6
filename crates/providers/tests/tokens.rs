//! The estimator counts exactly what tiktoken counts: bills and budgets depend on it, so every
//! count here is checked against tiktoken-rs (the oracle, a dev-dependency) with special tokens'
//! spellings as plain text, as LiteLLM's `encode(text, disallowed_special=())` counts them.

use proptest::prelude::*;
use sluice_providers::tokens::{self, Encoding};
use std::time::{Duration, Instant};
use tiktoken_rs::CoreBPE;

fn pairs() -> [(&'static str, &'static Encoding, &'static CoreBPE); 2] {
    [
        ("cl100k", tokens::cl100k(), tiktoken_rs::cl100k_base_singleton()),
        ("o200k", tokens::o200k(), tiktoken_rs::o200k_base_singleton()),
    ]
}

fn assert_counts_like_tiktoken(text: &str) {
    for (name, ours, oracle) in pairs() {
        let want = oracle.encode_ordinary(text).len() as u64;
        assert_eq!(tokens::count_text(ours, text), want, "{name} miscounts {text:?}");
    }
}

/// The seed's prompt: one UUID and its sentence, repeated (the f-string is evaluated once).
fn seed_text() -> String {
    "3f8a6a52-8a58-4c1e-9a62-1f2b7c7d9e11 This is a test there will be no cache hits and we'll fill up the context"
        .repeat(150)
}

/// A small deterministic generator, so the "random" cases are the same on every run.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn fixed_corpus_counts_like_tiktoken() {
    let mut corpus: Vec<String> = [
        "",
        "Hello world",
        "user",
        // Contractions, in every case, and the case folding that makes `ſ` an `s`.
        "we'll I'M they'RE she's it'S you've we'D 'll' ''s 'ſ don't O'Neil rock'n'roll",
        "'s'",
        "'",
        "''",
        "'''t",
        "x'",
        "'\n",
        // Whitespace runs: before words, at the end, around newlines, Unicode spaces.
        "a  b   c    d",
        "trailing   ",
        "   leading",
        " ",
        "\n",
        "\r\n\r\n",
        "a\n\n\nb",
        "a \n b \n\n  c",
        "tabs\t\tand\t \tspaces \t",
        "\u{a0}\u{a0}x\u{3000}y\u{2028}z\u{2029}\u{85}\u{b}\u{c}",
        "  \u{a0}  1  2",
        "x \r\n y\r \n",
        "a\n ",
        "a\n\n  ",
        "a \n\t",
        // Digits: groups of three, mixed with letters and punctuation.
        "1 12 123 1234 12345 1234567890123",
        "3.14159 -42 +7 1e10 0x1F 1,000,000 ٣٤٥ ①②③ ¼",
        "v1.2.3-rc4 2024-06-01T12:00:00Z",
        // Code.
        "fn main() {\n    println!(\"{}\", x + 1);\n}\n",
        "def f(x):\n\tif x:\n\t\treturn [i**2 for i in range(10)]  # comment\n",
        "<div class=\"a\">&nbsp;</div> // a/b/c /// \\\\ ||| ::: --> <!-- -->",
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}",
        "SELECT * FROM t WHERE a='x' AND b=\"y\";",
        // Scripts and marks.
        "Grüße, naïve café — déjà vu. ÀÉÎÕÜ àéîõü",
        "Ελληνικά кириллица עברית العربية हिन्दी বাংলা ไทย 한국어 日本語の文章 中文字符",
        "e\u{301}\u{301} a\u{308}B\u{327} \u{301}alone",
        "ǅungla ǈ ǋ ᾈ ʰʲ ˢ ㄱ ꙮ",
        "CamelCaseWords HTTPServer iPhone XMLHttpRequest ALLCAPS lowercase",
        // Emoji: plain, ZWJ, flags, skin tones, keycaps.
        "😀 👩‍💻 👨‍👩‍👧‍👦 🇺🇸🇫🇷 👍🏽 1️⃣ ❤️ ✨✨✨",
        // Special tokens' spellings: plain text here, as in LiteLLM.
        "<|endoftext|> <|fim_prefix|><|fim_middle|><|fim_suffix|> <|endofprompt|> <|im_start|>",
        // Punctuation runs and newlines after punctuation.
        "!!!??? ... ,,, ;;; ---\n\n*** ___ ~~~ ```\r\n",
        "a/b/ c// d\n/\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    corpus.push(seed_text());
    // The seed's sentence in other contexts, after the memo has it: spans that end the text, UUIDs
    // after other words, words glued to digits.
    corpus.push("x 3f8a6a52-8a58-4c1e-9a62-1f2b7c7d9e11 context3f8a6a52-8a58 we'll fill".to_string());
    corpus.push(" the context3f8a6a52-8a58-4c1e-9a62-1f2b7c7d9e11".to_string());
    corpus.push("the context3f8a6a52-8a58-4c1e-9a62-1f2b7c7d9e11\n This".to_string());
    // Every ASCII byte, in order and in classes' runs.
    corpus.push((0u8..128).map(char::from).collect::<String>().repeat(3));
    corpus.push((0u8..128).flat_map(|b| std::iter::repeat_n(char::from(b), 1 + usize::from(b % 5))).collect());
    corpus.push("a".repeat(5000));
    corpus.push("ab".repeat(3000));
    corpus.push(" ".repeat(4097));
    corpus.push("\n".repeat(1000) + "x");
    corpus.push("9".repeat(1001));
    corpus.push("pneumonoultramicroscopicsilicovolcanoconiosis".repeat(40));
    corpus.push("😀".repeat(500));
    corpus.push("中".repeat(700));
    let mut state = 0x9e37_79b9_7f4a_7c15;
    for len in [1, 2, 3, 7, 64, 500, 4096] {
        for _ in 0..8 {
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
            corpus.push(String::from_utf8_lossy(&bytes).into_owned());
            // Mostly ASCII, printable and control alike.
            let ascii: Vec<u8> = (0..len).map(|_| (xorshift(&mut state) % 128) as u8).collect();
            corpus.push(String::from_utf8(ascii).expect("ASCII"));
        }
    }
    for text in &corpus {
        assert_counts_like_tiktoken(text);
    }
}

/// A long text's chunks are remembered whole (`tokens::chunks`): a stretch counted once is found
/// again after other beginnings, before other endings, twice over and at the text's end, and
/// every count stays tiktoken's.
#[test]
fn remembered_chunks_count_alike_in_every_context() {
    let mut state = 0x2545_f491_4f6c_dd1d;
    let pieces = ["don't", "  ", "\n", "\n\n  ", "123456", "naïve", "x'S", " -- ", "\t", "😀", "HTTPServer", "é"];
    let mut passage = String::new();
    while passage.len() < 6_000 {
        let r = xorshift(&mut state);
        passage.push(' ');
        match r % 7 {
            0 => passage.push_str(pieces[(r >> 8) as usize % pieces.len()]),
            _ => passage.extend((0..1 + (r >> 8) % 9).map(|i| char::from(b'a' + ((r >> (12 + 4 * i)) % 26) as u8))),
        }
    }
    let seed = seed_text();
    let mut texts = vec![passage.clone(), seed.clone()];
    for prefix in ["", "x", " ", "Prefix words here", "\n\n", "123", "é", "a'"] {
        for suffix in ["", " tail", "\n", "  ", "!", "s"] {
            texts.push(format!("{prefix}{passage}{suffix}"));
            texts.push(format!("{prefix}{seed}{suffix}"));
        }
    }
    texts.push(passage.repeat(2));
    texts.push(format!("{passage} {passage}"));
    let third = passage.char_indices().nth(passage.chars().count() / 3).map_or(0, |(i, _)| i);
    texts.push(passage[third..].to_string());
    texts.push(seed[1000..].to_string());
    for text in &texts {
        assert_counts_like_tiktoken(text);
    }
}

#[test]
fn special_token_spellings_count_as_text() {
    // LiteLLM counts `<|endoftext|>` as the seven tokens of its spelling, not the one special
    // token tiktoken's `allowed_special` would make of it.
    let bpe = tokens::cl100k();
    assert_eq!(tokens::count_text(bpe, "<|endoftext|>"), 7);
    assert_eq!(
        tokens::count_text(bpe, "<|endoftext|>"),
        tiktoken_rs::cl100k_base_singleton().encode_ordinary("<|endoftext|>").len() as u64
    );
}

/// Pieces whose joins stress the pre-tokenizer's boundaries: letters against marks and
/// apostrophes, digits against digits, whitespace against newlines and the end of the text.
const FRAGMENTS: &[&str] = &[
    " ",
    "  ",
    "   ",
    "\t",
    "\n",
    "\r",
    "\r\n",
    "\u{a0}",
    "\u{3000}",
    "\u{2028}",
    "\u{b}",
    "'",
    "'s",
    "'S",
    "'ll",
    "'LL",
    "'re",
    "'ve",
    "'m",
    "'d",
    "'t",
    "ſ",
    "a",
    "Z",
    "word",
    "Word",
    "WORD",
    "wOrD",
    "é",
    "É",
    "\u{301}",
    "\u{308}",
    "ǅ",
    "ʰ",
    "1",
    "12",
    "123",
    "4567",
    "٣",
    "①",
    "½",
    ".",
    ",",
    "!",
    "?",
    "/",
    "//",
    "-",
    "_",
    "*",
    "(",
    ")",
    "{",
    "}",
    "\"",
    "<|endoftext|>",
    "<|",
    "|>",
    "😀",
    "👩‍💻",
    "🇺🇸",
    "👍🏽",
    "中",
    "文字",
    "の",
    "한",
    "ไทย",
    "हि",
    "\u{200d}",
    "\u{fe0f}",
    "\u{0}",
    "\u{7f}",
    "\u{ffff}",
    "𝔘",
];

fn fragment_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..48).prop_map(|parts| parts.concat())
}

/// One part of a long text: words in every case, contractions in both cases (and apostrophes
/// that start none), runs of 1 to 5 digits, runs of whitespace (before letters and newlines, as
/// what follows them makes it), punctuation and control characters, single spaces (so that most
/// words start a span), any ASCII byte, and now and then a character that is not ASCII.
fn long_part() -> impl Strategy<Value = String> {
    let bytes = |set: &'static [u8], len: std::ops::Range<usize>| {
        prop::collection::vec(prop::sample::select(set), len).prop_map(|b| String::from_utf8(b).expect("ASCII"))
    };
    prop_oneof![
        6 => bytes(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", 1..20),
        5 => Just(" ".to_string()),
        2 => bytes(b"0123456789", 1..6),
        2 => bytes(b" \t\x0b\x0c\r\n", 1..7),
        2 => bytes(b"!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\x00\x1b\x7f", 1..5),
        2 => prop::sample::select(&[
            "'s", "'S", "'t", "'T", "'re", "'RE", "'rE", "'Re", "'ve", "'VE", "'vE", "'m", "'M", "'ll", "'LL",
            "'lL", "'Ll", "'d", "'D", "'r", "'l", "'v", "'", "''",
        ][..]).prop_map(String::from),
        1 => (0u8..128).prop_map(|b| char::from(b).to_string()),
        1 => prop::sample::select(&["é", "É", "ſ", "\u{a0}", "\u{3000}", "\u{2028}", "\u{301}", "٣", "中", "😀", "—"][..])
            .prop_map(String::from),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Long texts, then the same parts in the other order and the text twice over: spans and
    /// pieces remembered from one text are found again in another context.
    #[test]
    fn long_texts_count_like_tiktoken(parts in prop::collection::vec(long_part(), 0..800)) {
        let text = parts.concat();
        assert_counts_like_tiktoken(&text);
        assert_counts_like_tiktoken(&parts.iter().rev().map(String::as_str).collect::<String>());
        assert_counts_like_tiktoken(&text.repeat(2));
    }

    #[test]
    fn long_ascii_counts_like_tiktoken(bytes in prop::collection::vec(0u8..128, 0..4000)) {
        assert_counts_like_tiktoken(&String::from_utf8(bytes).expect("ASCII"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    #[test]
    fn joined_fragments_count_like_tiktoken(text in fragment_text()) {
        assert_counts_like_tiktoken(&text);
    }

    #[test]
    fn any_string_counts_like_tiktoken(text in any::<String>()) {
        assert_counts_like_tiktoken(&text);
    }

    #[test]
    fn ascii_counts_like_tiktoken(bytes in prop::collection::vec(0u8..128, 0..300)) {
        assert_counts_like_tiktoken(&String::from_utf8(bytes).expect("ASCII"));
    }

    #[test]
    fn lossy_bytes_count_like_tiktoken(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        assert_counts_like_tiktoken(&String::from_utf8_lossy(&bytes));
    }
}

/// Resident memory in MiB: (anonymous, file-backed). The file-backed part is the binary's own
/// pages (a table's serialized copy, read once to load it), which the kernel may drop again.
fn resident_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |field: &str| {
        let line = status.lines().find(|l| l.starts_with(field));
        line.and_then(|l| l.split_whitespace().nth(1)).and_then(|n| n.parse::<f64>().ok()).unwrap_or(0.0)
    };
    (kib("RssAnon:") / 1024.0, kib("RssFile:") / 1024.0)
}

/// Time and resident memory of a table's first use.
fn first_use(name: &str, load: impl FnOnce() -> usize) {
    let (before, cpu) = (resident_mib(), thread_cpu_ns());
    let n = load();
    let took = Duration::from_nanos(thread_cpu_ns().saturating_sub(cpu));
    let after = resident_mib();
    println!(
        "{name}: first use {:.1} ms of CPU, resident +{:.1} MiB anonymous, +{:.1} MiB file-backed ({n})",
        ms(took),
        after.0 - before.0,
        after.1 - before.1
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nanoseconds this thread has run on a CPU: on a shared machine, closer to the work done than
/// the wall clock.
fn thread_cpu_ns() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    stat.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// CPU µs per call of `f`, over about two seconds of calls after one to warm up.
fn micros_per_call(mut f: impl FnMut() -> u64) -> (f64, u64) {
    let mut result = f();
    let mut iterations = 0u32;
    let (start, cpu) = (Instant::now(), thread_cpu_ns());
    while start.elapsed() < Duration::from_secs(2) {
        result = std::hint::black_box(f());
        iterations += 1;
    }
    (thread_cpu_ns().saturating_sub(cpu) as f64 / 1e3 / f64::from(iterations), result)
}

/// A prompt whose words seldom repeat: every count misses the memo for most pieces.
fn varied_text(seed: u64) -> String {
    let mut state = 0x2545_f491_4f6c_dd1d ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut text = String::new();
    while text.len() < 16_000 {
        let word: String =
            (0..1 + xorshift(&mut state) % 9).map(|_| char::from(b'a' + (xorshift(&mut state) % 26) as u8)).collect();
        text.push(' ');
        text.push_str(&word);
        if xorshift(&mut state).is_multiple_of(11) {
            text.push_str(".\n");
        }
    }
    text
}

/// Text the hand-written rules leave to the regex: most pieces are not ASCII.
fn wide_text() -> String {
    "Привет, мир! 日本語の文章です。 Ελληνικά κείμενα — naïve café, 123 € 😀\n".repeat(160)
}

/// `cargo test -p sluice-providers --release --test tokens -- --ignored --nocapture`: the seed
/// message counted by the estimator and by tiktoken-rs (the estimator before bpe-openai), and
/// each table's first use. Run alone: the resident figures assume nothing else loaded a table.
/// Each loop goes round texts it has not counted lately — the seed's message with a UUID of its
/// own each, as the gateway sees it, and 128 prompts of other words — so that what the memo
/// remembers of one count (`tokens::memo`, chunks included) is what a new prompt would find.
#[test]
#[ignore]
fn timing_seed_message() {
    first_use("bpe-openai cl100k", || tokens::cl100k().count("warm") as usize);
    first_use("bpe-openai o200k", || tokens::o200k().count("warm") as usize);
    first_use("tiktoken-rs cl100k", || tiktoken_rs::cl100k_base_singleton().encode_ordinary("warm").len());
    first_use("tiktoken-rs o200k", || tiktoken_rs::o200k_base_singleton().encode_ordinary("warm").len());
    let mut state = 0x853c_49e6_748f_ea9b;
    let seeds: Vec<String> = (0..128)
        .map(|_| {
            let id = format!("{:016x}{:016x}", xorshift(&mut state), xorshift(&mut state));
            let uuid = format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..]);
            format!("{uuid} This is a test there will be no cache hits and we'll fill up the context").repeat(150)
        })
        .collect();
    let messages: Vec<String> =
        seeds.iter().map(|seed| serde_json::json!([{ "role": "user", "content": seed }]).to_string()).collect();
    let varied: Vec<String> = (0..128).map(varied_text).collect();
    for (name, ours, oracle) in pairs() {
        let (new, n) = micros_per_call_round(&messages, |m| tokens::count_messages(ours, m));
        let (old, m) = micros_per_call_round(&seeds, |seed| oracle.encode_with_special_tokens(seed).len() as u64 + 7);
        assert_eq!(n, m);
        let each = n / seeds.len() as u64;
        println!(
            "{name}: seed message ({} bytes, {each} tokens): {new:.1} µs, tiktoken-rs {old:.1} µs",
            seeds[0].len()
        );
        let wide = [wide_text()];
        for (kind, texts) in [("varied words", &varied[..]), ("mostly non-ASCII", &wide[..])] {
            let (new, n) = micros_per_call_round(texts, |t| ours.count(t));
            let (old, m) = micros_per_call_round(texts, |t| oracle.encode_ordinary(t).len() as u64);
            assert_eq!(n, m);
            let each = n / texts.len() as u64;
            println!(
                "{name}: {kind} (~{} bytes, ~{each} tokens): {new:.1} µs, tiktoken-rs {old:.1} µs",
                texts[0].len()
            );
        }
    }
}

/// [`micros_per_call`] of `f` on `texts` in turn; with the sum of `f` over all of them.
fn micros_per_call_round(texts: &[String], mut f: impl FnMut(&str) -> u64) -> (f64, u64) {
    let mut next = 0;
    let sum: u64 = texts.iter().map(|t| f(t)).sum();
    let (micros, _) = micros_per_call(|| {
        next = (next + 1) % texts.len();
        f(&texts[next])
    });
    (micros, sum)
}
