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

// What a byte is to the patterns: one bit each, so that a run of any set of classes is one mask
// test a byte.
const UPPER: u8 = 1;
const LOWER: u8 = 2;
const DIGIT: u8 = 4;
/// `' '`: whitespace that may also lead a run of punctuation.
const SPACE: u8 = 8;
/// `\t`, `\x0b`, `\x0c`: whitespace, neither a space nor a newline.
const BLANK: u8 = 16;
/// `\r`, `\n`.
const NEWLINE: u8 = 32;
/// Neither whitespace, letter nor digit: punctuation, symbols, control characters.
const OTHER: u8 = 64;
/// A byte of a non-ASCII character, whose class is the regex's to say. Past the end of the text
/// is no class at all (0).
const WIDE: u8 = 128;
const LETTER: u8 = UPPER | LOWER;

static CLASSES: [u8; 256] = {
    let mut t = [WIDE; 256];
    let mut b = 0;
    while b < 128 {
        t[b] = match b as u8 {
            b'A'..=b'Z' => UPPER,
            b'a'..=b'z' => LOWER,
            b'0'..=b'9' => DIGIT,
            b' ' => SPACE,
            b'\t' | 0x0b | 0x0c => BLANK,
            b'\r' | b'\n' => NEWLINE,
            _ => OTHER,
        };
        b += 1;
    }
    t
};

#[inline(always)]
fn class(text: &[u8], at: usize) -> u8 {
    text.get(at).map_or(0, |&b| CLASSES[usize::from(b)])
}

/// Where the piece starting at `start` ends, or `None` when a non-ASCII character could change it
/// (or `start` is at the end).
#[inline(always)]
pub(crate) fn piece_end(rules: Rules, text: &[u8], start: usize) -> Option<usize> {
    let c0 = class(text, start);
    if c0 & LETTER != 0 {
        return letters(rules, text, start);
    }
    if c0 & (SPACE | BLANK | OTHER) != 0 {
        if rules == Rules::Cl100k && text[start] == b'\'' {
            if let Some(end) = contraction(text, start)? {
                return Some(end);
            }
        }
        // One character that is no letter, digit or newline may lead a word.
        let c1 = class(text, start + 1);
        return if c1 & LETTER != 0 {
            letters(rules, text, start + 1)
        } else if c1 == WIDE {
            None
        } else if c1 == OTHER && c0 == SPACE {
            punctuation(rules, text, start + 1)
        } else if c0 == OTHER {
            punctuation(rules, text, start)
        } else {
            whitespace(text, start)
        };
    }
    if c0 == DIGIT {
        return digits(text, start);
    }
    if c0 == NEWLINE {
        return whitespace(text, start);
    }
    None
}

/// `'s`, `'t`, `'re`, `'ve`, `'m`, `'ll` or `'d` in any case at `at` (an apostrophe): its end,
/// `Some(None)` for none, `None` where a non-ASCII character stands in the way (`ſ` folds to `s`).
fn contraction(text: &[u8], at: usize) -> Option<Option<usize>> {
    let next = |i: usize| match text.get(i) {
        Some(b) if !b.is_ascii() => None,
        b => Some(b.map(u8::to_ascii_lowercase)),
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

/// A word whose first letter is at `first` (a leading character is already behind it). o200k cuts
/// a word where lower case turns to upper and keeps a contraction that follows.
#[inline(always)]
fn letters(rules: Rules, text: &[u8], first: usize) -> Option<usize> {
    match rules {
        Rules::Cl100k => run(text, first + 1, LETTER),
        Rules::O200k => {
            let lowers = match class(text, first) {
                UPPER => run(text, first + 1, UPPER)?,
                _ => first,
            };
            let end = run(text, lowers, LOWER)?;
            if text.get(end) == Some(&b'\'') {
                return Some(contraction(text, end)?.unwrap_or(end));
            }
            Some(end)
        }
    }
}

/// Up to three digits, the first at `start`.
#[inline(always)]
fn digits(text: &[u8], start: usize) -> Option<usize> {
    for end in start + 1..start + 3 {
        match class(text, end) {
            DIGIT => {}
            WIDE => return None,
            _ => return Some(end),
        }
    }
    Some(start + 3)
}

/// Punctuation from `from` on, then the newlines (and for o200k slashes) that follow it.
fn punctuation(rules: Rules, text: &[u8], from: usize) -> Option<usize> {
    let mut end = run(text, from, OTHER)?;
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
            SPACE | BLANK => end += 1,
            NEWLINE => {
                end += 1;
                after_newline = Some(end);
            }
            WIDE => return None,
            _ => break,
        }
    }
    Some(match after_newline {
        Some(cut) => cut,
        None if end == text.len() || end - start == 1 => end,
        None => end - 1,
    })
}

/// The end of the run of bytes of the classes in `keep`, from `from` on; `None` if a non-ASCII
/// character ends it (it might belong to the run).
#[inline(always)]
fn run(text: &[u8], from: usize, keep: u8) -> Option<usize> {
    let rest = text.get(from..).unwrap_or_default();
    match rest.iter().position(|&b| CLASSES[usize::from(b)] & keep == 0) {
        Some(n) if !rest[n].is_ascii() => None,
        Some(n) => Some(from + n),
        None => Some(text.len()),
    }
}

/// Where the span that starts at `start` (a piece's start) ends: at the next space after it
/// that an ASCII letter follows, or at the text's end. Such a space always starts a piece, in
/// both patterns and whatever comes before it: no alternative takes a space but as its first
/// character except the whitespace ones, and a run of whitespace before a letter is cut before
/// its last character (`\s+(?!\S)`), which is that space; `\s*[\r\n]+` must end on a newline.
/// So a span is whole pieces, cut alike wherever its bytes stand before such a space, and its
/// count is a function of its bytes (the text's last span, which no such space follows, is not
/// remembered).
///
/// The scan looks for spaces eight bytes at a time: spans are a word long in prose, and tens of
/// bytes in a UUID or a number.
#[inline(always)]
pub(crate) fn span_end(text: &[u8], start: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let starts_piece = |at: usize| text.get(at + 1).is_some_and(|&b| CLASSES[usize::from(b)] & LETTER != 0);
    let mut at = start + 1;
    while let Some(window) = text.get(at..at + 8) {
        let spaces = u64::from_le_bytes(window.try_into().unwrap_or_default()) ^ (ONES * u64::from(b' '));
        // A byte's high bit for each zero byte (a space), and possibly for bytes above one.
        let mut found = spaces.wrapping_sub(ONES) & !spaces & (ONES << 7);
        while found != 0 {
            let space = at + (found.trailing_zeros() / 8) as usize;
            if text[space] == b' ' && starts_piece(space) {
                return space;
            }
            found &= found - 1;
        }
        at += 8;
    }
    while at < text.len() {
        if text[at] == b' ' && starts_piece(at) {
            return at;
        }
        at += 1;
    }
    text.len()
}
