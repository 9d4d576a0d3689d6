//! tiktoken's pre-tokenizer — the regex that cuts text into the pieces BPE then encodes one by
//! one — written out by hand for ASCII. On English prompts the regex (regex-automata, in
//! `bpe-openai`) cost about as much as the BPE itself; these rules settle an ASCII piece with a
//! table lookup a byte, and answer `None` wherever a non-ASCII character could change the piece
//! (a letter, a digit, a space or a case-folded `s` in Unicode's sense), so the regex decides
//! those. The tests in `tokens` check every piece against the regex; `tests/tokens.rs` every
//! count against tiktoken-rs.
//!
//! The patterns, cl100k's then o200k's, each alternative tried in order at the piece's start:
//!
//! ```text
//! (?i:'s|'t|'re|'ve|'m|'ll|'d) | [^\r\n\p{L}\p{N}]?\p{L}+ | \p{N}{1,3} | ' '?[^\s\p{L}\p{N}]+[\r\n]*
//!   | \s*[\r\n]+ | \s+(?!\S) | \s+
//! [^\r\n\p{L}\p{N}]?[Lu Lt Lm Lo M]*[Ll Lm Lo M]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//!   | [^\r\n\p{L}\p{N}]?[Lu Lt Lm Lo M]+[Ll Lm Lo M]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
//!   | \p{N}{1,3} | ' '?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
//! ```

/// Which encoding's pattern cuts the text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Rules {
    Cl100k,
    O200k,
}

/// What a byte is to the patterns.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Class {
    Upper,
    Lower,
    Digit,
    /// `' '`: whitespace that may also lead a run of punctuation.
    Space,
    /// `\t`, `\x0b`, `\x0c`: whitespace, neither a space nor a newline.
    Blank,
    /// `\r`, `\n`.
    Newline,
    /// Neither whitespace, letter nor digit: punctuation, symbols, control characters.
    Other,
    /// A byte of a non-ASCII character, whose class is the regex's to say.
    Wide,
    /// Past the end of the text.
    End,
}

const CLASSES: [Class; 256] = {
    let mut t = [Class::Wide; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = match b as u8 {
            b'A'..=b'Z' => Class::Upper,
            b'a'..=b'z' => Class::Lower,
            b'0'..=b'9' => Class::Digit,
            b' ' => Class::Space,
            b'\t' | 0x0b | 0x0c => Class::Blank,
            b'\r' | b'\n' => Class::Newline,
            _ => Class::Other,
        };
        b += 1;
    }
    t
};

fn class(text: &[u8], at: usize) -> Class {
    text.get(at).map_or(Class::End, |&b| CLASSES[usize::from(b)])
}

fn is_letter(c: Class) -> bool {
    matches!(c, Class::Upper | Class::Lower)
}

/// Where the piece starting at `start` ends, or `None` when a non-ASCII character could change it.
pub(crate) fn piece_end(rules: Rules, text: &[u8], start: usize) -> Option<usize> {
    let c0 = class(text, start);
    match c0 {
        Class::Wide | Class::End => None,
        Class::Upper | Class::Lower => letters(rules, text, start),
        Class::Digit => digits(text, start),
        Class::Newline => whitespace(text, start),
        Class::Space | Class::Blank | Class::Other => {
            if rules == Rules::Cl100k && text.get(start) == Some(&b'\'') {
                if let Some(end) = contraction(text, start)? {
                    return Some(end);
                }
            }
            // One character that is no letter, digit or newline may lead a word.
            match class(text, start + 1) {
                Class::Wide => None,
                Class::Upper | Class::Lower => letters(rules, text, start + 1),
                Class::Other if c0 == Class::Space => punctuation(rules, text, start + 1),
                _ if c0 == Class::Other => punctuation(rules, text, start),
                _ => whitespace(text, start),
            }
        }
    }
}

/// `'s`, `'t`, `'re`, `'ve`, `'m`, `'ll` or `'d` in any case at `at` (an apostrophe): its end,
/// `Some(None)` for none, `None` where a non-ASCII character stands in the way (`ſ` folds to `s`).
fn contraction(text: &[u8], at: usize) -> Option<Option<usize>> {
    let next = |i: usize| match class(text, i) {
        Class::Wide => None,
        _ => Some(text.get(i).map(u8::to_ascii_lowercase)),
    };
    Some(match next(at + 1)? {
        Some(b's' | b't' | b'm' | b'd') => Some(at + 2),
        Some(first @ (b'r' | b'v' | b'l')) => {
            let second = if first == b'l' { b'l' } else { b'e' };
            (next(at + 2)? == Some(second)).then_some(at + 3)
        }
        _ => None,
    })
}

/// A word: the letters from `from` on (a leading character is already behind `from`). o200k cuts
/// a word where lower case turns to upper and keeps a contraction that follows.
fn letters(rules: Rules, text: &[u8], from: usize) -> Option<usize> {
    let end = match rules {
        Rules::Cl100k => run(text, from, is_letter)?,
        Rules::O200k => {
            let uppers = run(text, from, |c| c == Class::Upper)?;
            run(text, uppers, |c| c == Class::Lower)?
        }
    };
    if rules == Rules::O200k && text.get(end) == Some(&b'\'') {
        return Some(contraction(text, end)?.unwrap_or(end));
    }
    Some(end)
}

/// Up to three digits.
fn digits(text: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    while end - start < 3 {
        match class(text, end) {
            Class::Digit => end += 1,
            Class::Wide => return None,
            _ => break,
        }
    }
    Some(end)
}

/// Punctuation from `from` on, then the newlines (and for o200k slashes) that follow it.
fn punctuation(rules: Rules, text: &[u8], from: usize) -> Option<usize> {
    let mut end = run(text, from, |c| c == Class::Other)?;
    while let Some(&b) = text.get(end) {
        if b == b'\r' || b == b'\n' || (rules == Rules::O200k && b == b'/') {
            end += 1;
        } else {
            break;
        }
    }
    Some(end)
}

/// A run of whitespace: up to its last newline if it has one; whole at the end of the text;
/// else all but its last character, which leads the next piece.
fn whitespace(text: &[u8], start: usize) -> Option<usize> {
    let mut end = start;
    let mut after_newline = None;
    loop {
        match class(text, end) {
            Class::Space | Class::Blank => end += 1,
            Class::Newline => {
                end += 1;
                after_newline = Some(end);
            }
            Class::Wide => return None,
            _ => break,
        }
    }
    Some(match after_newline {
        Some(cut) => cut,
        None if end == text.len() || end - start == 1 => end,
        None => end - 1,
    })
}

/// The end of the run of bytes whose class `keep` accepts, from `from` on; `None` if a non-ASCII
/// character ends it (it might belong to the run).
fn run(text: &[u8], from: usize, keep: impl Fn(Class) -> bool) -> Option<usize> {
    let mut end = from;
    loop {
        match class(text, end) {
            Class::Wide => return None,
            c if keep(c) => end += 1,
            _ => return Some(end),
        }
    }
}
