//! Bytes read as text, fast: a request body is tens of kilobytes and std's UTF-8 validation goes
//! a byte at a time where it is not ASCII-only. An all-ASCII body (nearly every one) needs only a
//! SIMD check of the high bits; any other gets SIMD validation.

use crate::scan;

/// `bytes` as text, or `None` if they are not UTF-8 (as `std::str::from_utf8(bytes).ok()`).
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    if scan::is_ascii(bytes) {
        // SAFETY: every byte is ASCII, and ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    simdutf8::basic::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn agrees_with_std(bytes in proptest::collection::vec(any::<u8>(), 0..300), text in ".{0,80}") {
            prop_assert_eq!(super::utf8(&bytes), std::str::from_utf8(&bytes).ok());
            // Valid text, long enough for the SIMD paths, with one byte broken at a chosen place.
            let mut long = text.repeat(5).into_bytes();
            prop_assert_eq!(super::utf8(&long), std::str::from_utf8(&long).ok());
            if !long.is_empty() {
                let at = bytes.len() % long.len();
                long[at] = 0xff;
                prop_assert_eq!(super::utf8(&long), None);
            }
        }
    }
}
