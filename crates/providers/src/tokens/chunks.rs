//! Where a long text is cut into chunks whose counts are remembered whole (`memo`): runs of whole
//! spans (`pieces::span_end`), cut where the text's own bytes say rather than every so many
//! bytes, so that the same stretch of text is cut the same way wherever it stands. A prompt that
//! repeats a stretch — a system prompt sent with every request, a document quoted again, a
//! template filled the same way — then finds its chunks remembered, and a chunk found costs one
//! hash of its bytes instead of a lookup for each of its spans (bench/README.md, "Token
//! estimation").
//!
//! The candidates are about a quarter of the spans' starts: a space before an ASCII letter, which
//! always starts a piece (so a chunk's count is the sum of its pieces' and a function of its
//! bytes), where the two bytes after the space agree in their lowest two bits — a choice made by
//! the text, found sixteen bytes at a time, that spares the rest of the work for three spans in
//! four. Each candidate gets a value from the eight bytes before it; a candidate is a cut when
//! its value is no larger than any of the [`WINDOW`] candidates' before it, and the chunk so far
//! holds at least [`SHORTEST`] bytes. Both depend only on the text just before the candidate (and
//! on where the last cut fell), so two copies of a stretch are cut alike once each copy has had
//! a cut: in a text that repeats itself, every repetition's chunks are the same bytes (as long as
//! a repetition holds a candidate: nearly always, for a repetition of a dozen words). In text
//! that does not, a cut falls about every `WINDOW` candidates, a few hundred bytes of prose.

/// How many candidates before a candidate its value is compared with.
const WINDOW: usize = 31;
/// The last candidates' values are kept by their number modulo this.
const RING: usize = WINDOW + 1;
/// The fewest bytes a chunk holds (but the text's last), so that a run of falling values does
/// not make a chunk of each span.
pub(crate) const SHORTEST: usize = 64;
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The cuts of one text, in order: one pass over its bytes, a block at a time.
pub(crate) struct Cuts<'a> {
    text: &'a [u8],
    /// Where the next block to look at starts.
    next_block: usize,
    /// Where the block last looked at starts, and its candidates not taken yet (`STRIDE` bits a
    /// byte, the lowest of them set for a candidate).
    block: usize,
    found: u64,
    /// How many candidates have been taken.
    seen: usize,
    /// The last cut, or 0.
    last_cut: usize,
    /// The last `RING` candidates' values, by number modulo `RING`.
    values: [u64; RING],
    /// The lowest value of the `WINDOW` candidates before the next, and the number of the latest
    /// candidate that has it; stale once that candidate has left the window.
    low: u64,
    low_at: usize,
}

impl<'a> Cuts<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Self {
        // No cut at the first byte: it would leave an empty chunk.
        let found = candidates(text, 0) & !FIRST_BYTE;
        let (low, low_at) = (0, 0);
        Cuts { text, next_block: BLOCK, block: 0, found, seen: 0, last_cut: 0, values: [0; RING], low, low_at }
    }

    /// The next cut, before the text's end; `None` when there is none. One loop with its state
    /// in locals: it runs once for each word of a prompt.
    pub(crate) fn next_cut(&mut self) -> Option<usize> {
        let text = self.text;
        let (mut block, mut found, mut seen, mut low, mut low_at) =
            (self.block, self.found, self.seen, self.low, self.low_at);
        let mut next_block = self.next_block;
        let cut = 'cut: loop {
            while found == 0 {
                if next_block >= text.len() {
                    break 'cut None;
                }
                block = next_block;
                next_block += BLOCK;
                found = candidates(text, block);
            }
            let at = block + (found.trailing_zeros() / STRIDE) as usize;
            found &= found - 1;
            let value = value_before(text, at);
            let number = seen;
            seen += 1;
            if number > 0 && low_at + WINDOW < number {
                (low, low_at) = lowest(&self.values, number);
            }
            let lowest = number == 0 || value <= low;
            if lowest {
                (low, low_at) = (value, number);
            }
            self.values[number % RING] = value;
            if lowest && at - self.last_cut >= SHORTEST {
                self.last_cut = at;
                break Some(at);
            }
        };
        (self.block, self.found, self.seen, self.low, self.low_at, self.next_block) =
            (block, found, seen, low, low_at, next_block);
        cut
    }

    /// Every candidate of `text`, cut or not, block by block as `next_cut` finds them.
    #[cfg(test)]
    fn candidates_from(text: &[u8]) -> Vec<usize> {
        let mut found = Vec::new();
        let mut block = 0;
        while block < text.len() {
            let mut mask = candidates(text, block);
            while mask != 0 {
                found.push(block + (mask.trailing_zeros() / STRIDE) as usize);
                mask &= mask - 1;
            }
            block += BLOCK;
        }
        found.retain(|&at| at > 0);
        found
    }
}

/// The window's lowest value and the latest candidate with it, found again once the one it had
/// has left the window: about once a window's worth of candidates in text that does not repeat.
#[cold]
fn lowest(values: &[u64; RING], number: usize) -> (u64, usize) {
    let (mut low, mut low_at) = (u64::MAX, number);
    for n in number.saturating_sub(WINDOW)..number {
        if values[n % RING] <= low {
            (low, low_at) = (values[n % RING], n);
        }
    }
    (low, low_at)
}

/// Bytes a block holds, and mask bits a byte.
#[cfg(target_arch = "x86_64")]
const BLOCK: usize = 16;
#[cfg(target_arch = "x86_64")]
const STRIDE: u32 = 1;
#[cfg(not(target_arch = "x86_64"))]
const BLOCK: usize = 8;
#[cfg(not(target_arch = "x86_64"))]
const STRIDE: u32 = 8;
/// The bit a block's mask sets for its first byte.
const FIRST_BYTE: u64 = 1 << (STRIDE - 1);

/// The candidates among the `BLOCK` bytes at `text[at..]` (see the module's comment): a mask
/// with a bit a byte, SSE2's sixteen bytes at once (every x86-64 CPU has it).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn candidates(text: &[u8], at: usize) -> u64 {
    use std::arch::x86_64::*;
    let Some(window) = text.get(at..at + BLOCK + 2) else {
        return candidates_at_end(text, at, BLOCK, STRIDE);
    };
    // SAFETY: `window` holds 18 bytes, so the three unaligned 16-byte loads read inside it; SSE2
    // is part of x86-64.
    let mask = unsafe {
        let here = _mm_loadu_si128(window.as_ptr().cast());
        let next = _mm_loadu_si128(window.as_ptr().add(1).cast());
        let after = _mm_loadu_si128(window.as_ptr().add(2).cast());
        let spaces = _mm_cmpeq_epi8(here, _mm_set1_epi8(b' ' as i8));
        // Lower-cased, `a` to `z` (bytes from 0x80 on are negative here, so never in range).
        let folded = _mm_or_si128(next, _mm_set1_epi8(0x20));
        let from_a = _mm_cmpgt_epi8(folded, _mm_set1_epi8(b'a' as i8 - 1));
        let to_z = _mm_cmplt_epi8(folded, _mm_set1_epi8(b'z' as i8 + 1));
        let low_bits = _mm_and_si128(_mm_xor_si128(next, after), _mm_set1_epi8(3));
        let chosen = _mm_cmpeq_epi8(low_bits, _mm_setzero_si128());
        _mm_movemask_epi8(_mm_and_si128(_mm_and_si128(spaces, chosen), _mm_and_si128(from_a, to_z)))
    };
    u64::from(mask as u16)
}

/// [`candidates`] by eight bytes in a word, for other CPUs: the high bit of each byte that is a
/// candidate.
#[cfg(any(test, not(target_arch = "x86_64")))]
#[cfg_attr(not(target_arch = "x86_64"), inline(always))]
fn candidates_in_word(text: &[u8], at: usize) -> u64 {
    let (Some(here), Some(next), Some(after)) =
        (text.get(at..at + 8), text.get(at + 1..at + 9), text.get(at + 2..at + 10))
    else {
        return candidates_at_end(text, at, 8, 8);
    };
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES << 7;
    let (here, next, after) = (word(here), word(next), word(after));
    // Zero bytes of `here ^ spaces`, exactly (no borrow runs from byte to byte).
    let x = here ^ (ONES * u64::from(b' '));
    let spaces = !((x & !HIGHS).wrapping_add(!HIGHS) | x) & HIGHS;
    // Bytes below 0x80 whose lower case is `a` to `z`: the two sums of a byte's low seven bits
    // stay within it, and carry into its high bit from `a` on and from past `z` on.
    let folded = (next | (ONES * 0x20)) & !HIGHS;
    let from_a = folded + ONES * (0x80 - u64::from(b'a'));
    let past_z = folded + ONES * (0x80 - u64::from(b'z') - 1);
    let letters = from_a & !past_z & !next & HIGHS;
    // Bytes where `next ^ after` has its lowest two bits clear (the sum stays within the byte).
    let chosen = !(((next ^ after) & (ONES * 3)) + (ONES * 0x7f)) & HIGHS;
    spaces & letters & chosen
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn candidates(text: &[u8], at: usize) -> u64 {
    candidates_in_word(text, at)
}

/// [`candidates`] for the text's last bytes (at most `width` from `at`), one at a time, in a mask
/// of `stride` bits a byte.
#[cold]
fn candidates_at_end(text: &[u8], at: usize, width: usize, stride: u32) -> u64 {
    let mut found = 0;
    for i in at..text.len().min(at + width) {
        if is_candidate(text, i) {
            found |= 1 << (stride as usize * (i - at + 1) - 1);
        }
    }
    found
}

/// Whether the byte at `i` is a candidate, by the module comment's words.
fn is_candidate(text: &[u8], i: usize) -> bool {
    let after = text.get(i + 2).copied().unwrap_or(0);
    text[i] == b' ' && text.get(i + 1).is_some_and(|&next| next.is_ascii_alphabetic() && (next ^ after) & 3 == 0)
}

#[inline(always)]
fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or_default())
}

/// The candidate's value: the eight bytes before it (fewer at the text's start), mixed.
#[inline(always)]
fn value_before(text: &[u8], at: usize) -> u64 {
    let bytes = match at.checked_sub(8).and_then(|from| text.get(from..at)) {
        Some(bytes) => word(bytes),
        None => first_bytes(&text[..at.min(text.len())]),
    };
    let mixed = bytes.wrapping_mul(MULTIPLIER);
    mixed ^ mixed >> 31
}

#[cold]
fn first_bytes(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |w, &b| w << 8 | u64::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(text: &str) -> Vec<usize> {
        let mut cuts = Cuts::new(text.as_bytes());
        std::iter::from_fn(|| cuts.next_cut()).collect()
    }

    /// Words from a fixed generator, so the tests see prose-like text that does not repeat.
    fn words(seed: u64, n: usize) -> String {
        let mut state = seed | 1;
        let mut text = String::new();
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 1 + state % 8;
            text.push(' ');
            text.extend((0..len).map(|i| char::from(b'a' + ((state >> (8 * i)) % 26) as u8)));
        }
        text
    }

    #[test]
    fn cuts_fall_on_span_starts_and_leave_chunks_of_the_shortest_length() {
        let text = words(7, 3000);
        let found = cuts(&text);
        assert!(found.len() > 10, "{} cuts in {} bytes", found.len(), text.len());
        let mut last = 0;
        for &cut in &found {
            assert_eq!(text.as_bytes()[cut], b' ');
            assert!(text.as_bytes()[cut + 1].is_ascii_alphabetic());
            assert!(cut - last >= SHORTEST, "a chunk of {} bytes at {cut}", cut - last);
            last = cut;
        }
        // About one cut a window of spans: not every span, not never.
        let mean = text.len() / found.len();
        assert!((SHORTEST..=40 * WINDOW).contains(&mean), "chunks of {mean} bytes on average");
    }

    #[test]
    fn a_repeated_text_is_cut_into_the_same_chunks_every_time() {
        // The seed's prompt: one UUID and its sentence, repeated (no space between repetitions).
        let unit = "c0ffee00-1234-4abc-8def-0123456789ab This is a test there will be no cache hits and we'll fill up the context";
        let text = unit.repeat(150);
        let found = cuts(&text);
        let lengths: Vec<usize> = found.windows(2).map(|w| w[1] - w[0]).collect();
        // After the first, every chunk is whole repetitions, the same bytes each time.
        assert!(lengths.len() > 100, "{lengths:?}");
        let chunk = &text[found[1]..found[2]];
        assert_eq!(chunk.len() % unit.len(), 0, "{chunk:?}");
        for w in found[1..].windows(2) {
            assert_eq!(&text[w[0]..w[1]], chunk);
        }
    }

    #[test]
    fn a_stretch_is_cut_alike_wherever_it_stands() {
        // One passage after two different beginnings: once each copy has had a cut, their cuts
        // keep the same distance from the passage's start, so their chunks are the same bytes.
        let passage = words(11, 4000);
        let (a, b) = (words(3, 40) + &passage, words(5, 97) + &passage);
        let chunks = |text: &str, offset: usize| {
            let found = cuts(text);
            let inside: Vec<usize> = found.into_iter().filter(|&c| c >= offset + 800).map(|c| c - offset).collect();
            inside.windows(2).map(|w| passage[w[0]..w[1]].to_string()).collect::<Vec<_>>()
        };
        let (in_a, in_b) = (chunks(&a, a.len() - passage.len()), chunks(&b, b.len() - passage.len()));
        assert!(in_a.len() > 10);
        assert_eq!(in_a, in_b);
    }

    /// The candidates are the span starts `pieces::span_end` finds that the module comment
    /// chooses, and nothing else: over texts with every ASCII byte and some that are not, at
    /// every offset from a block's start, in both ways of finding them.
    #[test]
    fn candidates_are_the_chosen_span_starts() {
        let mut texts = vec![(0u8..128).chain(0u8..128).collect::<Vec<u8>>()];
        texts.push(" a A z Z @ [ ` { \u{80} ~\x7f  x\ty\n  é ä 0 9 -a ".bytes().collect());
        texts.push("a b".repeat(30).into_bytes());
        texts.push(words(9, 400).into_bytes());
        for base in texts {
            for shift in 0..9 {
                let text: Vec<u8> = std::iter::repeat_n(b'x', shift).chain(base.iter().copied()).collect();
                let found = Cuts::candidates_from(&text);
                let mut in_words = Vec::new();
                for block in (0..text.len()).step_by(8) {
                    let mut mask = candidates_in_word(&text, block);
                    while mask != 0 {
                        in_words.push(block + (mask.trailing_zeros() / 8) as usize);
                        mask &= mask - 1;
                    }
                }
                in_words.retain(|&at| at > 0);
                let mut want = Vec::new();
                let mut at = 0;
                loop {
                    at = crate::tokens::pieces::span_end(&text, at);
                    if at >= text.len() {
                        break;
                    }
                    if (text[at + 1] ^ text.get(at + 2).copied().unwrap_or(0)) & 3 == 0 {
                        want.push(at);
                    }
                }
                assert_eq!(found, want, "{:?}", String::from_utf8_lossy(&text));
                assert_eq!(in_words, want, "{:?}", String::from_utf8_lossy(&text));
            }
        }
    }

    #[test]
    fn the_first_byte_is_never_a_candidate() {
        // A space, then two letters whose low bits agree: a candidate anywhere but at the start.
        let text = b" tt tt".repeat(40);
        assert_ne!(candidates(&text, 0) & FIRST_BYTE, 0);
        assert_eq!(Cuts::new(&text).found & FIRST_BYTE, 0);
        assert_ne!(candidates_in_word(&text, 0) & (1 << 7), 0);
    }

    #[test]
    fn texts_without_candidates_have_no_cuts() {
        for text in ["", " ", "a", "0123456789".repeat(100).as_str(), "日本語の文章です。".repeat(50).as_str()]
        {
            assert!(cuts(text).is_empty(), "{text:?}");
        }
    }
}
