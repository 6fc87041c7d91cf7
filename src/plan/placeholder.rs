//! Placeholders in plan strings: `{source.name}`, `{destination.id}`, `{source.name|slug}`, …
//!
//! A [`Template`] is parsed once, when the plan is loaded, into literal text and placeholders,
//! so that rendering it for each of many thousands of targets is one pass and one allocation.
//!
//! Syntax:
//! - `{field}` or `{field|slug}`, where `field` is one of [`PLACEHOLDERS`]; spaces around the
//!   field and the filter are allowed (`{ source.name | slug }`).
//! - `{{` and `}}` are a literal `{` and `}`.
//! - `${UPPER_CASE}` passes through unchanged: it is Airbyte's own variable syntax in
//!   `namespaceFormat` (`${SOURCE_NAMESPACE}`), not a placeholder.
//! - Anything else between braces, or a brace without its partner, is an error.
//!
//! The `slug` filter lowercases ASCII letters and turns every run of other characters into one
//! `_`, trimming `_` at both ends. Non-ASCII characters (`ü`, `é`, `日`) are "other than
//! a-z0-9" and so become separators: `Zürich` renders `z_rich`. A slug may be empty.

use crate::yaml::{excerpt, suggestion};
use std::borrow::Cow;
use std::fmt;
use uuid::Uuid;

/// The placeholders a plan string may use, as written between the braces.
pub const PLACEHOLDERS: [&str; 6] = [
    "source.name",
    "source.id",
    "source.type",
    "destination.name",
    "destination.id",
    "template.name",
];

/// The filters a placeholder may take, as written after `|`.
const FILTERS: [&str; 1] = ["slug"];

/// A plan string with its placeholders parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    pieces: Vec<Piece>,
    /// Total bytes of the literal pieces, to size the rendered string up front.
    literal_len: usize,
}

/// What placeholders render to, for one target.
#[derive(Debug, Clone, Copy)]
pub struct Names<'a> {
    pub source_name: &'a str,
    pub source_id: Uuid,
    pub source_type: &'a str,
    pub destination_name: &'a str,
    pub destination_id: Uuid,
    pub template_name: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<str>),
    Field { field: Field, slug: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    SourceName,
    SourceId,
    SourceType,
    DestinationName,
    DestinationId,
    TemplateName,
}

impl Field {
    fn from_name(name: &str) -> Option<Field> {
        Some(match name {
            "source.name" => Field::SourceName,
            "source.id" => Field::SourceId,
            "source.type" => Field::SourceType,
            "destination.name" => Field::DestinationName,
            "destination.id" => Field::DestinationId,
            "template.name" => Field::TemplateName,
            _ => return None,
        })
    }
}

/// A UUID's hyphenated text, lower case, without allocating.
const UUID_LEN: usize = uuid::fmt::Hyphenated::LENGTH;

impl Template {
    /// Parses `text`. The error says what is wrong, where (a 1-based character position), and
    /// what is valid.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().is_some_and(|&(_, next)| next == '{') => {
                    chars.next();
                    literal.push('{');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest
                        .find(['{', '}'])
                        .filter(|&i| rest[i..].starts_with('}'))
                    else {
                        return Err(format!(
                            "unclosed `{{` at character {} of \"{}\" (write `{{{{` for a literal `{{`)",
                            position(text, at),
                            around(text, at)
                        ));
                    };
                    let inner = &rest[..end];
                    if literal.ends_with('$') && is_airbyte_variable(inner) {
                        literal.push('{');
                        literal.push_str(inner);
                        literal.push('}');
                    } else {
                        if !literal.is_empty() {
                            pieces.push(Piece::Literal(std::mem::take(&mut literal).into()));
                        }
                        pieces.push(parse_placeholder(inner)?);
                    }
                    // Skip the placeholder's text and its closing brace.
                    while chars.next_if(|&(i, _)| i <= at + 1 + end).is_some() {}
                }
                '}' if chars.peek().is_some_and(|&(_, next)| next == '}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err(format!(
                        "unmatched `}}` at character {} of \"{}\" (write `}}}}` for a literal `}}`)",
                        position(text, at),
                        around(text, at)
                    ));
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal.into()));
        }
        let literal_len = pieces
            .iter()
            .map(|p| match p {
                Piece::Literal(s) => s.len(),
                Piece::Field { .. } => 0,
            })
            .sum();
        Ok(Template {
            text: text.to_string(),
            pieces,
            literal_len,
        })
    }

    /// The text as written in the plan.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text with every placeholder replaced by its value for one target.
    pub fn render(&self, names: &Names<'_>) -> String {
        // An upper bound: a slug is never longer than its input.
        let capacity = self.literal_len
            + self
                .pieces
                .iter()
                .map(|p| match p {
                    Piece::Literal(_) => 0,
                    Piece::Field { field, .. } => raw_len(*field, names),
                })
                .sum::<usize>();
        let mut out = String::with_capacity(capacity);
        let mut id = [0u8; UUID_LEN];
        for piece in &self.pieces {
            let (field, slug) = match piece {
                Piece::Literal(text) => {
                    out.push_str(text);
                    continue;
                }
                Piece::Field { field, slug } => (*field, *slug),
            };
            let value: &str = match field {
                Field::SourceName => names.source_name,
                Field::SourceType => names.source_type,
                Field::DestinationName => names.destination_name,
                Field::TemplateName => names.template_name,
                Field::SourceId => names.source_id.hyphenated().encode_lower(&mut id),
                Field::DestinationId => names.destination_id.hyphenated().encode_lower(&mut id),
            };
            if slug {
                push_slug(&mut out, value);
            } else {
                out.push_str(value);
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn raw_len(field: Field, names: &Names<'_>) -> usize {
    match field {
        Field::SourceName => names.source_name.len(),
        Field::SourceType => names.source_type.len(),
        Field::DestinationName => names.destination_name.len(),
        Field::TemplateName => names.template_name.len(),
        Field::SourceId | Field::DestinationId => UUID_LEN,
    }
}

/// `{inner}` → a placeholder piece, or an error naming what is valid.
fn parse_placeholder(inner: &str) -> Result<Piece, String> {
    let (name, filter) = match inner.split_once('|') {
        Some((name, filter)) => (name.trim(), Some(filter.trim())),
        None => (inner.trim(), None),
    };
    let Some(field) = Field::from_name(name) else {
        let valid = PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ");
        let inner = excerpt(inner);
        return Err(match suggestion(name, PLACEHOLDERS) {
            Some(best) => {
                // A correction keeps the filter, itself corrected: `{source.nmae|slg}` →
                // `{source.name|slug}`.
                let (filter, note) = match filter.map(|f| (f, suggestion(f, FILTERS))) {
                    None => (String::new(), String::new()),
                    Some((_, Some(near))) => (format!("|{near}"), String::new()),
                    Some((other, None)) => (
                        String::new(),
                        format!(
                            "; `|{}` is not a filter, the only one is `|slug`",
                            excerpt(other)
                        ),
                    ),
                };
                format!(
                    "unknown placeholder `{{{inner}}}` (did you mean `{{{best}{filter}}}`?){note}; valid placeholders: {valid} (write `{{{{` and `}}}}` for literal braces)"
                )
            }
            None => format!(
                "unknown placeholder `{{{inner}}}`; valid placeholders: {valid} (write `{{{{` and `}}}}` for literal braces)"
            ),
        });
    };
    let slug = match filter {
        None => false,
        Some("slug") => true,
        Some(other) => {
            let hint = suggestion(other, FILTERS)
                .map(|best| format!(" (did you mean `|{best}`?)"))
                .unwrap_or_default();
            return Err(format!(
                "unknown filter `|{}` in `{{{}}}`{hint}; the only filter is `|slug`",
                excerpt(other),
                excerpt(inner)
            ));
        }
    };
    Ok(Piece::Field { field, slug })
}

/// `SOURCE_NAMESPACE`: the shape of Airbyte's own `${…}` variables.
fn is_airbyte_variable(inner: &str) -> bool {
    !inner.is_empty()
        && inner
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// The text around byte offset `at`, as an error quotes it: whole when short, else a window of
/// characters either side, cut with `…`.
fn around(text: &str, at: usize) -> Cow<'_, str> {
    const SIDE: usize = 40;
    if text.chars().nth(2 * SIDE).is_none() {
        return Cow::Borrowed(text);
    }
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(SIDE - 1)
        .map_or(0, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .nth(SIDE)
        .map_or(text.len(), |(i, _)| at + i);
    let before = if start > 0 { "…" } else { "" };
    let after = if end < text.len() { "…" } else { "" };
    Cow::Owned(format!("{before}{}{after}", &text[start..end]))
}

/// The 1-based character position of byte offset `at`.
fn position(text: &str, at: usize) -> usize {
    text[..at].chars().count() + 1
}

/// Appends the slug of `value`: ASCII letters and digits lowercased, every run of anything else
/// one `_`, no `_` at either end.
fn push_slug(out: &mut String, value: &str) {
    let mut wrote = false;
    let mut separator = false;
    for c in value.chars() {
        if c.is_ascii_alphanumeric() {
            if separator && wrote {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            wrote = true;
            separator = false;
        } else {
            separator = true;
        }
    }
}

/// The slug of `value`, as the `|slug` filter renders it.
pub fn slug(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    push_slug(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names<'static> {
        Names {
            source_name: "Shop EU (Main)",
            source_id: Uuid::parse_str("3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11").unwrap(),
            source_type: "postgres",
            destination_name: "Warehouse",
            destination_id: Uuid::parse_str("00000000-0000-4000-8000-0000000000AB").unwrap(),
            template_name: "shop-template → Warehouse",
        }
    }

    fn render(text: &str) -> String {
        Template::parse(text).unwrap().render(&names())
    }

    #[test]
    fn renders_every_placeholder() {
        let cases = [
            (
                "{source.name} → {destination.name}",
                "Shop EU (Main) → Warehouse",
            ),
            ("{source.name|slug}_", "shop_eu_main_"),
            ("{ source.name | slug }", "shop_eu_main"),
            ("{source.id}", "3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11"),
            ("{source.id|slug}", "3c0d1c8e_5b7e_4a7a_9d3e_2f1b4b9a7c11"),
            ("{destination.id}", "00000000-0000-4000-8000-0000000000ab"),
            (
                "{source.type}:{destination.name|slug}",
                "postgres:warehouse",
            ),
            (
                "copy of {template.name}",
                "copy of shop-template → Warehouse",
            ),
            ("{template.name|slug}", "shop_template_warehouse"),
            ("no placeholders", "no placeholders"),
            ("", ""),
            ("{{literal}} {{{source.type}}}", "{literal} {postgres}"),
            ("}}{{", "}{"),
            ("{{{source.type}", "{postgres"),
            (
                "${SOURCE_NAMESPACE}_{source.name|slug}",
                "${SOURCE_NAMESPACE}_shop_eu_main",
            ),
            ("${{source.name}}", "${source.name}"),
            ("${source.type}", "$postgres"),
            ("é{source.type}ü", "épostgresü"),
        ];
        for (text, expected) in cases {
            assert_eq!(render(text), expected, "{text}");
            assert_eq!(Template::parse(text).unwrap().as_str(), text);
        }
    }

    #[test]
    fn slug_edge_cases() {
        let cases = [
            ("shop-eu", "shop_eu"),
            ("Shop EU", "shop_eu"),
            ("__a__b__", "a_b"),
            ("--x--", "x"),
            ("a  -  b", "a_b"),
            ("ABC123", "abc123"),
            ("Zürich", "z_rich"),
            ("Café", "caf"),
            ("東京 shop", "shop"),
            ("日本", ""),
            ("", ""),
            ("___", ""),
            ("a.b/c:d", "a_b_c_d"),
            ("x\u{301}y", "x_y"),
        ];
        for (input, expected) in cases {
            assert_eq!(slug(input), expected, "{input:?}");
            let rendered = Template::parse("{source.name|slug}")
                .unwrap()
                .render(&Names {
                    source_name: input,
                    ..names()
                });
            assert_eq!(rendered, expected, "{input:?}");
        }
    }

    #[test]
    fn render_allocates_once() {
        let template =
            Template::parse("{{{source.name|slug}}} {source.id} → {destination.name}").unwrap();
        for source_name in ["Zürich Ost", "a", "ÉÉÉÉÉÉÉÉ", "x-y-z"] {
            let names = Names {
                source_name,
                ..names()
            };
            let out = template.render(&names);
            // The capacity was enough up front: no reallocation happened.
            let bound = template.literal_len + source_name.len() + UUID_LEN + "Warehouse".len();
            assert_eq!(out.capacity(), bound, "{source_name}");
            assert!(out.len() <= bound);
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let cases = [
            (
                "{source.nme}",
                "unknown placeholder `{source.nme}` (did you mean `{source.name}`?); valid placeholders: \
                 {source.name}, {source.id}, {source.type}, {destination.name}, {destination.id}, \
                 {template.name} (write `{{` and `}}` for literal braces)",
            ),
            (
                "{source.nmae|slg}",
                "unknown placeholder `{source.nmae|slg}` (did you mean `{source.name|slug}`?); \
                 valid placeholders: {source.name}",
            ),
            (
                "{ source.nmae | slug }",
                "unknown placeholder `{ source.nmae | slug }` (did you mean `{source.name|slug}`?)",
            ),
            (
                "{source.nmae|upper}",
                "unknown placeholder `{source.nmae|upper}` (did you mean `{source.name}`?); \
                 `|upper` is not a filter, the only one is `|slug`; valid placeholders:",
            ),
            (
                "{workspace}",
                "unknown placeholder `{workspace}`; valid placeholders: {source.name}",
            ),
            ("{}", "unknown placeholder `{}`; valid placeholders"),
            (
                "{SOURCE_NAMESPACE}",
                "unknown placeholder `{SOURCE_NAMESPACE}`",
            ),
            (
                "{source.name|slg}",
                "unknown filter `|slg` in `{source.name|slg}` (did you mean `|slug`?); the only filter is `|slug`",
            ),
            (
                "{source.name|upper}",
                "unknown filter `|upper` in `{source.name|upper}`; the only",
            ),
            ("{source.name|}", "unknown filter `|` in"),
            ("{source.name|slug|slug}", "unknown filter `|slug|slug`"),
            (
                "ab{source.name",
                "unclosed `{` at character 3 of \"ab{source.name\" (write `{{` for a literal `{`)",
            ),
            ("é{", "unclosed `{` at character 2"),
            ("{a{source.name}", "unclosed `{` at character 1"),
            ("${SOURCE_NAMESPACE", "unclosed `{` at character 2"),
            (
                "name}",
                "unmatched `}` at character 5 of \"name}\" (write `}}` for a literal `}`)",
            ),
            ("{source.name}}", "unmatched `}` at character 14"),
            ("{{{source.name", "unclosed `{` at character 3"),
        ];
        for (text, expected) in cases {
            let err = Template::parse(text).unwrap_err();
            assert!(
                err.starts_with(expected),
                "{text}:\n  got  {err}\n  want {expected}"
            );
        }
    }
}
