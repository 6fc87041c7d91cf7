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

/// Up to `n` names nearest to a glob over names (`shpo-*`), nearest first: each name is compared
/// with the glob's literal characters whole, and, where the glob has a `*`, by its start or end
/// as long as that literal text (a `shop-*` is about the names' start). Only plausible typos.
pub fn nearest_to_glob<'a>(
    glob: &str,
    names: impl IntoIterator<Item = &'a str>,
    n: usize,
) -> Vec<&'a str> {
    let literal: String = glob
        .chars()
        .filter(|c| !matches!(c, '*' | '?' | '[' | ']' | '{' | '}' | '\\'))
        .collect::<String>()
        .to_ascii_lowercase();
    let length = literal.chars().count();
    if length == 0 {
        return Vec::new();
    }
    let limit = (length / 3).max(2);
    let (starts, ends) = (glob.ends_with('*'), glob.starts_with('*'));
    let mut ranked: Vec<(usize, &str)> = names
        .into_iter()
        .map(|name| {
            let lower = name.to_ascii_lowercase();
            let chars: Vec<char> = lower.chars().collect();
            let mut best = edit_distance(&literal, &lower);
            if starts {
                let start: String = chars.iter().take(length).collect();
                best = best.min(edit_distance(&literal, &start));
            }
            if ends {
                let end: String = chars[chars.len().saturating_sub(length)..].iter().collect();
                best = best.min(edit_distance(&literal, &end));
            }
            (best, name)
        })
        .filter(|&(d, _)| d <= limit)
        .collect();
    ranked.sort_unstable();
    ranked.dedup_by(|a, b| a.1 == b.1);
    ranked.into_iter().take(n).map(|(_, name)| name).collect()
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
    use super::{closest, nearest_to_glob};

    #[test]
    fn finds_plausible_typos_only() {
        let keys = ["name", "prefix", "status", "schedule", "namespaceFormat"];
        assert_eq!(closest("nmae", keys), Some("name"));
        assert_eq!(closest("shedule", keys), Some("schedule"));
        assert_eq!(closest("namespaceformat", keys), Some("namespaceFormat"));
        assert_eq!(closest("zzzzzzzz", keys), None);
    }

    #[test]
    fn names_near_a_glob() {
        let names = ["shop-eu", "shop-us", "shop-apac", "crm", "eu-shop"];
        let cases: &[(&str, &[&str])] = &[
            ("shpo-*", &["shop-apac", "shop-eu", "shop-us"]),
            ("shop-e", &["shop-eu", "shop-us"]),
            ("*-sohp", &["eu-shop"]),
            ("CRN", &["crm"]),
            ("warehouse-*", &[]),
            ("*", &[]),
        ];
        for (glob, want) in cases {
            assert_eq!(nearest_to_glob(glob, names, 3), *want, "{glob}");
        }
    }
}
