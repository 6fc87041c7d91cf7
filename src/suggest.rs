//! "Did you mean …?": the closest valid word to a mistyped one.

/// The candidate nearest to `word` by edit distance, if it is near enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_ascii_lowercase()), c))
        .filter(|&(d, c)| d <= (c.chars().count().max(word.chars().count()) / 3).max(2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn finds_plausible_typos_only() {
        let keys = ["name", "prefix", "status", "schedule", "namespaceFormat"];
        assert_eq!(closest("nmae", keys), Some("name"));
        assert_eq!(closest("shedule", keys), Some("schedule"));
        assert_eq!(closest("namespaceformat", keys), Some("namespaceFormat"));
        assert_eq!(closest("zzzzzzzz", keys), None);
    }
}
