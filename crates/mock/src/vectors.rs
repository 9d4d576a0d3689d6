//! The fake vectors the embedding routes answer with, and the token count they report.

/// `count` vectors of `length` values in [-0.5, 0.5), each input's shifted so that they differ.
pub fn fake(count: usize, length: usize) -> Vec<Vec<f64>> {
    (0..count).map(|i| (0..length).map(|j| ((i + j) % 8) as f64 / 8.0 - 0.5).collect()).collect()
}

/// The tokens a fake provider counts: the words of each text, at least one each.
pub fn words<S: AsRef<str>>(texts: &[S]) -> usize {
    texts.iter().map(|t| t.as_ref().split_whitespace().count().max(1)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_differ_per_input_and_words_count_at_least_one() {
        let v = fake(2, 3);
        assert_eq!(v, vec![vec![-0.5, -0.375, -0.25], vec![-0.375, -0.25, -0.125]]);
        assert_eq!(words(&["hello world", ""]), 3);
    }
}
