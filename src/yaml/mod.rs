//! The one door to YAML: plan files and sandbox seeds are parsed here and nowhere else.
//!
//! Errors carry the file, the line and column, the YAML path serde reached (`targets[2]`), and,
//! for a misspelt key, the closest valid key. Input is bytes, so a non-UTF-8 file, a byte-order
//! mark or an empty file get a clear error instead of a panic. Two bounds hold before and while
//! `serde_yaml` works: nesting depth is checked by a linear pre-scan ([`depth`]), so libyaml's
//! scan, quadratic in flow depth, never starts on a deep document; and what the document holds
//! with its aliases expanded is counted as it is deserialized ([`budget`]), so a "billion laughs"
//! stops early. A value quoted in an error is cut to an [`excerpt`], so a 10 MB scalar gives a
//! one-line message, not a 10 MB one.
//!
//! [`parse`] stops at the first problem, as serde does. [`parse_all`] reads past unknown keys,
//! reporting each, and says where every key sits ([`Keys`]), so a checker can report every
//! problem of a file at once, each with its line; it costs more, so it is for files known to be
//! wrong.

mod budget;
mod depth;
mod keys;

pub use keys::Keys;

use crate::suggest;
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a YAML document went wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct YamlError {
    pub file: PathBuf,
    /// 1-based line and column, when the parser knows them.
    pub location: Option<(usize, usize)>,
    /// The YAML path of the offending value (`targets[2].match`), when known.
    pub path: Option<String>,
    pub kind: YamlErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlErrorKind {
    /// A key the schema does not know, with the keys it does know at that place.
    UnknownField {
        field: String,
        expected: Vec<String>,
    },
    /// Anything else: syntax, wrong type, missing field, bad enum value, …
    Invalid(String),
}

impl YamlError {
    fn new(file: &Path, kind: YamlErrorKind) -> Self {
        Self {
            file: file.to_path_buf(),
            location: None,
            path: None,
            kind,
        }
    }

    /// The unknown key, when that is what went wrong.
    pub fn unknown_field(&self) -> Option<&str> {
        match &self.kind {
            YamlErrorKind::UnknownField { field, .. } => Some(field),
            YamlErrorKind::Invalid(_) => None,
        }
    }
}

/// `file` or `file:line:column`, as errors begin.
pub struct Place<'a>(pub &'a Path, pub Option<(usize, usize)>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.display())?;
        match self.1 {
            Some((line, column)) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", Place(&self.file, self.location))?;
        if let Some(path) = &self.path {
            write!(f, "{}: ", excerpt(path))?;
        }
        match &self.kind {
            YamlErrorKind::Invalid(message) => f.write_str(message),
            YamlErrorKind::UnknownField { field, expected } => {
                write!(f, "unknown key `{}`", excerpt(field))?;
                match suggestion(field, expected.iter().map(String::as_str)) {
                    Some(best) => write!(f, " (did you mean `{best}`?)"),
                    None if expected.is_empty() => Ok(()),
                    None => write!(f, "; expected one of: {}", expected.join(", ")),
                }
            }
        }
    }
}

/// Parses one YAML document from `bytes` into `T`. `file` only names the source in errors.
pub fn parse<T: DeserializeOwned>(file: &Path, bytes: &[u8]) -> Result<T, YamlError> {
    let text = text(file, bytes)?;
    deserialize(file, text, None)
}

/// What [`parse_all`] found.
#[derive(Debug)]
pub struct Parsed<T> {
    /// `None` when a problem other than an unknown key stopped the parse.
    pub value: Option<T>,
    /// Every unknown key (each skipped, with its value), then the problem that stopped the
    /// parse, if one did.
    pub errors: Vec<YamlError>,
    /// Where each key of the document's structs sits, as far as the parse went.
    pub keys: Keys,
}

/// Parses like [`parse`], but reads past unknown keys of structs, reporting every one, and logs
/// where every key sits.
pub fn parse_all<T: DeserializeOwned>(file: &Path, bytes: &[u8]) -> Parsed<T> {
    let text = match text(file, bytes) {
        Ok(text) => text,
        Err(error) => {
            return Parsed {
                value: None,
                errors: vec![error],
                keys: Keys::default(),
            };
        }
    };
    let log = keys::KeyLog::new(file);
    let result = deserialize(file, text, Some(&log));
    let (keys, mut errors) = log.finish();
    let value = result.map_err(|e| errors.push(e)).ok();
    Parsed {
        value,
        errors,
        keys,
    }
}

/// The document's text: UTF-8, without a byte-order mark, not empty, not nested too deep.
fn text<'a>(file: &Path, bytes: &'a [u8]) -> Result<&'a str, YamlError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        #[allow(clippy::naive_bytecount)] // a one-off count on an error path
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let mut err = YamlError::new(
            file,
            YamlErrorKind::Invalid("the file is not valid UTF-8".into()),
        );
        err.location = Some((line, 1));
        err
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(YamlError::new(
            file,
            YamlErrorKind::Invalid("the file is empty".into()),
        ));
    }
    if let Err(deep) = depth::check(text) {
        let mut err = YamlError::new(
            file,
            YamlErrorKind::Invalid(format!(
                "nested more than {} levels deep, the most the YAML reader takes (a fixed limit; \
                 plans and seeds need a handful): look for unclosed `[` or `{{`",
                depth::MAX_DEPTH
            )),
        );
        err.location = Some((deep.line, deep.column));
        return Err(err);
    }
    Ok(text)
}

fn deserialize<T: DeserializeOwned>(
    file: &Path,
    text: &str,
    keys: Option<&keys::KeyLog>,
) -> Result<T, YamlError> {
    // A bad REPLICATE_MAX_FILE_BYTES is reported when a file is read; bytes given directly get
    // the default.
    let max_file_bytes = crate::input::max_bytes().unwrap_or(crate::input::DEFAULT_MAX_BYTES);
    let budget = budget::Budget::new(text.len(), max_file_bytes);
    let deserializer = serde_yaml::Deserializer::from_str(text);
    T::deserialize(budget::Budgeted::new(deserializer, &budget, keys))
        .map_err(|e| convert(file, &e))
}

/// The most characters of a value an error quotes.
const EXCERPT_CHARS: usize = 80;

/// A value as an error quotes it: whole when short, else its first characters and `…`.
pub(crate) fn excerpt(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(EXCERPT_CHARS) {
        None => Cow::Borrowed(text),
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
    }
}

/// [`suggest::closest`], for words short enough to be typos: the edit distance is quadratic,
/// and nobody mistypes a key as a megabyte.
pub(crate) fn suggestion<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    if word.len() > EXCERPT_CHARS {
        return None;
    }
    suggest::closest(word, candidates)
}

/// Cuts every `"…"` or `` `…` `` quotation in a parser message to an [`excerpt`].
fn shorten_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        // serde quotes strings with `{:?}`, so an escaped `\"` does not close the quotation.
        let close = rest
            .match_indices(quote)
            .map(|(i, _)| i)
            .find(|&i| rest[..i].bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 0);
        let Some(close) = close else {
            out.push_str(&excerpt(rest));
            return out;
        };
        out.push_str(&excerpt(&rest[..close]));
        out.push_str(quote);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

fn convert(file: &Path, err: &serde_yaml::Error) -> YamlError {
    let location = err.location().map(|l| (l.line(), l.column()));
    let mut message = err.to_string();
    if let Some((line, column)) = location {
        // The location is shown in front; drop serde_yaml's own copy of it.
        message = message.replacen(&format!(" at line {line} column {column}"), "", 1);
    }
    // serde_yaml prefixes the path it reached ("targets[0].defaults: …"); `.` is the root.
    let (path, message) = match message.split_once(": ") {
        Some((path, rest)) if looks_like_path(path) => (Some(path.to_string()), rest.to_string()),
        _ => (None, message),
    };
    let kind = parse_unknown_field(&message)
        .unwrap_or_else(|| YamlErrorKind::Invalid(shorten_quotes(&message)));
    YamlError {
        file: file.to_path_buf(),
        location,
        path,
        kind,
    }
}

fn looks_like_path(s: &str) -> bool {
    !s.is_empty()
        && !s.contains(' ')
        && s.chars()
            .all(|c| c.is_alphanumeric() || "._-[]".contains(c))
}

/// Reads serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a`", or "there are
/// no fields") back into its parts.
fn parse_unknown_field(message: &str) -> Option<YamlErrorKind> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    Some(YamlErrorKind::UnknownField {
        field: field.to_string(),
        expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        version: u32,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        name: String,
    }

    fn error(text: &str) -> String {
        parse::<Doc>(Path::new("p.yaml"), text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_file_line_column_path_and_suggestion() {
        assert_eq!(
            error("version: 1\nitems:\n  - nmae: x\n"),
            "p.yaml:3:5: items[0]: unknown key `nmae` (did you mean `name`?)"
        );
        assert_eq!(
            error("version: one\n"),
            "p.yaml:1:10: version: invalid type: string \"one\", expected u32"
        );
        assert_eq!(
            error("version: 1\nitems: \"x\n"),
            "p.yaml:3:1: found unexpected end of stream, while scanning a quoted scalar at line 2 column 8"
        );
    }

    #[test]
    fn parse_all_reads_past_unknown_keys_and_places_every_key() {
        let text = "version: 1\nvesion: 2\nitems:\n  - nmae: x\n    name: y\n  - name: z\n    \
                    extra: [1, {a: b}]\n";
        let parsed = parse_all::<Doc>(Path::new("p.yaml"), text.as_bytes());
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "p.yaml:2:1: unknown key `vesion` (did you mean `version`?)",
                "p.yaml:4:5: items[0]: unknown key `nmae` (did you mean `name`?)",
                "p.yaml:7:5: items[1]: unknown key `extra`; expected one of: name",
            ]
        );
        assert_eq!(parsed.value.map(|doc| doc.items.len()), Some(2));
        assert_eq!(parsed.keys.locate("version"), Some((1, 1)));
        assert_eq!(parsed.keys.locate("items"), Some((3, 1)));
        assert_eq!(parsed.keys.locate("items[0]"), Some((4, 5)));
        assert_eq!(parsed.keys.locate("items[1].name"), Some((6, 5)));
        // A type error still stops the parse, after the unknown keys before it.
        let parsed = parse_all::<Doc>(Path::new("p.yaml"), b"vesion: 2\nversion: one\n");
        let errors: Vec<String> = parsed.errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errors,
            [
                "p.yaml:1:1: unknown key `vesion` (did you mean `version`?)",
                "p.yaml:2:10: version: invalid type: string \"one\", expected u32",
            ]
        );
        assert!(parsed.value.is_none());
        // The quick parse still stops at the first unknown key.
        assert_eq!(
            error(text),
            "p.yaml:2:1: unknown key `vesion` (did you mean `version`?)"
        );
    }

    #[test]
    fn hostile_bytes_are_errors_not_panics() {
        assert_eq!(error(""), "p.yaml: the file is empty");
        let long = format!("version: \"{}\"\n", "9".repeat(10_000));
        assert_eq!(
            error(&long),
            format!(
                "p.yaml:1:10: version: invalid type: string \"{}…\", expected u32",
                "9".repeat(EXCERPT_CHARS)
            )
        );
        assert_eq!(
            parse::<Doc>(Path::new("p.yaml"), b"version: 1\n\xff\xfe")
                .unwrap_err()
                .to_string(),
            "p.yaml:2:1: the file is not valid UTF-8"
        );
        assert!(parse::<Doc>(Path::new("p.yaml"), "\u{feff}version: 1\n".as_bytes()).is_ok());
        assert!(error("version: 1\nversion: 2\n").contains("duplicate"));
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
                    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
                    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
                    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n";
        assert!(parse::<serde_json::Value>(Path::new("p.yaml"), bomb.as_bytes()).is_err());
        let deep = "[".repeat(10_000);
        assert!(parse::<serde_json::Value>(Path::new("p.yaml"), deep.as_bytes()).is_err());
    }

    #[test]
    fn aliases_may_share_values_but_not_multiply_them() {
        // Sharing a list among targets is fine.
        let shared = "a: &x [shop-legacy, shop-old]\nb: *x\nc: *x\n";
        let value: serde_json::Value = parse(Path::new("p.yaml"), shared.as_bytes()).unwrap();
        assert_eq!(value["c"][1], "shop-old");
        // A long string, aliased 200 times in a list that is itself aliased 200 times: 24 KB
        // of YAML, 850 MB of strings.
        let mut bomb = format!("s: &s \"{}\"\nl: &l [", "x".repeat(21_000));
        bomb.push_str(&vec!["*s"; 200].join(", "));
        bomb.push_str("]\nm: [");
        bomb.push_str(&vec!["*l"; 200].join(", "));
        bomb.push_str("]\n");
        let err = parse::<serde_json::Value>(Path::new("p.yaml"), bomb.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.yaml:1:4: m[")
                && err.contains("aliases (`*name`) expand this document past")
                && err.contains("REPLICATE_MAX_FILE_BYTES"),
            "{err}"
        );
        // Many short values: the count of values stops it.
        let mut many = String::from("s: &s [");
        many.push_str(&vec!["x"; 5_000].join(", "));
        many.push_str("]\nl: &l [");
        many.push_str(&vec!["*s"; 300].join(", "));
        many.push_str("]\n");
        let err = parse::<serde_json::Value>(Path::new("p.yaml"), many.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("values (one per byte of the file plus 1000000"),
            "{err}"
        );
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            error(&deep),
            "p.yaml:1:131: nested more than 128 levels deep, the most the YAML reader takes (a \
             fixed limit; plans and seeds need a handful): look for unclosed `[` or `{`"
        );
    }
}
