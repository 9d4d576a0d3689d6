//! Whole numbers written in decimal without a formatter: on the request path `format!` and
//! `to_string` cost more than the digits.

/// `n`'s decimal digits, written into the end of `buf`.
pub fn digits(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    let mut rest = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            return &buf[at..];
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn as_to_string_writes_them() {
        for n in [0, 7, 10, 99, 200, 65_535, 1 << 40, u64::MAX] {
            assert_eq!(super::digits(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
