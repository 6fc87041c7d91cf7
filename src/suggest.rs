//! "Did you mean …?": the closest valid words to a mistyped one. Only close matches are offered:
//! a suggestion that is far off misleads more than none.

/// The candidate nearest to `word`, if it is near enough to be a plausible typo: at most one
/// edit (a transposition counts as one) per four characters, and at least one.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|&(d, c)| d <= near_enough(&word, c))
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

/// The largest edit distance still taken for a typo between `a` and `b`.
fn near_enough(a: &str, b: &str) -> usize {
    (a.chars().count().max(b.chars().count()) / 4).max(1)
}

/// The most names a suggestion lists.
const MAX_NAMES: usize = 3;

/// Names close to `name` (a connection's or a source's), best first, at most three: the same
/// name but for case, spacing or `->` written for `→`; then names that begin with it (a
/// source's name given for its connection's, `shop-eu` for `shop-eu → Warehouse`); then the nearest
/// plausible typos.
pub fn names<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let wanted = normalized(name);
    let mut same = Vec::new();
    let mut longer = Vec::new();
    let mut typos = Vec::new();
    for candidate in candidates {
        let normal = normalized(candidate);
        if normal == wanted {
            same.push(candidate);
        } else if !wanted.is_empty()
            && normal
                .strip_prefix(&wanted)
                .is_some_and(|rest| rest.starts_with([' ', '→', '-', '_']))
        {
            longer.push(candidate);
        } else if normal.len() <= 4 * wanted.len().max(8) {
            let d = edit_distance(&wanted, &normal);
            if d <= near_enough(&wanted, &normal) {
                typos.push((d, candidate));
            }
        }
    }
    // Only the nearest typos: one letter off beats seven.
    let best = typos.iter().map(|&(d, _)| d).min();
    let mut all: Vec<&str> = same.into_iter().chain(longer).collect();
    all.extend(
        typos
            .into_iter()
            .filter(|&(d, _)| Some(d) == best)
            .map(|(_, c)| c),
    );
    all.dedup();
    all.truncate(MAX_NAMES);
    all
}

/// A name as a person means it: lower case, one space between words, arrows as `→`.
fn normalized(name: &str) -> String {
    name.to_lowercase()
        .replace("->", "→")
        .replace('→', " → ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// "" or ` (did you mean "a" or "b"?)`: the close names, quoted, for an error message.
pub fn did_you_mean(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        [init @ .., last] => format!(" (did you mean {} or {last}?)", init.join(", ")),
    }
}

/// Optimal string alignment distance over chars: insertions, deletions, substitutions and
/// swaps of two neighbours each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::{closest, did_you_mean, edit_distance, names, nearest_to_glob};

    #[test]
    fn finds_plausible_typos_only() {
        let keys = ["name", "prefix", "status", "schedule", "namespaceFormat"];
        assert_eq!(closest("nmae", keys), Some("name"));
        assert_eq!(closest("shedule", keys), Some("schedule"));
        assert_eq!(closest("namespaceformat", keys), Some("namespaceFormat"));
        assert_eq!(closest("zzzzzzzz", keys), None);
        // Two edits in six letters is another word, not a typo.
        assert_eq!(closest("orders", ["owners", "customers"]), None);
        assert_eq!(closest("order", ["orders", "owners"]), Some("orders"));
        assert_eq!(closest("slg", ["slug"]), Some("slug"));
    }

    #[test]
    fn distance_counts_a_swap_once() {
        assert_eq!(edit_distance("nmae", "name"), 1);
        assert_eq!(edit_distance("orders", "owners"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn names_close_to_a_connection_or_source_name() {
        let connections = [
            "shop-template → Warehouse",
            "shop-eu → Warehouse",
            "crm → Warehouse",
        ];
        for (given, expected) in [
            (
                "shop-template -> Warehouse",
                vec!["shop-template → Warehouse"],
            ),
            (
                "Shop-Template → warehouse",
                vec!["shop-template → Warehouse"],
            ),
            ("shop-template", vec!["shop-template → Warehouse"]),
            (
                "shop-templat → Warehouse",
                vec!["shop-template → Warehouse"],
            ),
            ("orders", vec![]),
        ] {
            assert_eq!(names(given, connections), expected, "{given}");
        }
        assert_eq!(names("SHOP-EU", ["shop-eu", "shop-us"]), ["shop-eu"]);
        assert_eq!(did_you_mean(&[]), "");
        assert_eq!(did_you_mean(&["a"]), " (did you mean \"a\"?)");
        assert_eq!(
            did_you_mean(&["a", "b", "c"]),
            " (did you mean \"a\", \"b\" or \"c\"?)"
        );
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
