//! "Did you mean" suggestions for unknown keys (optimal string alignment distance).

/// Suggestions further than this many edits away are more confusing than helpful.
const MAX_DISTANCE: usize = 2;

/// Edit distance counting insertions, deletions, substitutions and adjacent transpositions.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rolling rows: two rows back (for transpositions), previous and current.
    let mut prev2: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur: Vec<usize> = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        if let Some(first) = cur.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            let del = prev.get(j + 1).copied().unwrap_or(usize::MAX) + 1;
            let ins = cur.get(j).copied().unwrap_or(usize::MAX) + 1;
            let sub = prev.get(j).copied().unwrap_or(usize::MAX) + cost;
            let mut best = del.min(ins).min(sub);
            let transposed =
                i > 0 && j > 0 && a.get(i - 1) == Some(cb) && b.get(j - 1) == Some(ca) && ca != cb;
            if transposed {
                best = best.min(prev2.get(j - 1).copied().unwrap_or(usize::MAX) + 1);
            }
            if let Some(slot) = cur.get_mut(j + 1) {
                *slot = best;
            }
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// The known key closest to `unknown`, if it is within [`MAX_DISTANCE`] edits. Ties go to the
/// first in `known`, so the lists are ordered with the most common keys first.
pub fn nearest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = unknown.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (distance(&lower, k), *k))
        .filter(|(d, _)| *d <= MAX_DISTANCE)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_each_kind_of_edit_once() {
        assert_eq!(distance("timeout", "timeout"), 0);
        assert_eq!(distance("timout", "timeout"), 1);
        assert_eq!(distance("timeoutt", "timeout"), 1);
        assert_eq!(distance("tineout", "timeout"), 1);
        assert_eq!(distance("tiemout", "timeout"), 1);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("", "ab"), 2);
    }

    #[test]
    fn nearest_suggests_close_keys_only() {
        let known = ["timeout", "cache_ttl", "endpoint"];
        assert_eq!(nearest("timout", &known), Some("timeout"));
        assert_eq!(nearest("Timeout", &known), Some("timeout"));
        assert_eq!(nearest("cache-ttl", &known), Some("cache_ttl"));
        assert_eq!(nearest("something_else", &known), None);
    }
}
