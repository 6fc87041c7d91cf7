//! A string that must never be shown: tokens and client secrets.
//!
//! `Secret` serializes as the plain string (it has to reach the server), but its `Debug` and
//! `Display` print a fixed mask, so a secret that ends up in a log line, an error chain or a
//! `{:?}` dump shows nothing. [`redact`] takes secrets out of text that came from elsewhere (a
//! server may echo what it was sent).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A secret value (bearer token, client secret). Only [`Secret::expose`] reveals it.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// What stands in for a secret taken out of a text.
pub const REDACTED: &str = "[redacted]";

/// `text` without any of `secrets` and without anything shaped like a bearer token (`Bearer`,
/// in any case, then spaces, then everything up to the next space).
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_string();
    let mut secrets: Vec<&str> = secrets
        .iter()
        .map(|s| s.expose())
        .filter(|s| !s.is_empty())
        .collect();
    // Longest first: a secret that contains another goes whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for secret in secrets {
        if text.contains(secret) {
            text = text.replace(secret, REDACTED);
        }
    }
    redact_bearer(&text)
}

fn redact_bearer(text: &str) -> String {
    const WORD: &str = "bearer";
    // ASCII lower-casing keeps every byte where it was.
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(WORD) {
        let word_end = from + found + WORD.len();
        let rest = &text[word_end..];
        let token_start = word_end + (rest.len() - rest.trim_start().len());
        let token_len = text[token_start..]
            .find(char::is_whitespace)
            .unwrap_or(text.len() - token_start);
        // The word, then at least one space, then the token.
        if token_start > word_end && token_len > 0 {
            out.push_str(&text[copied..token_start]);
            out.push_str(REDACTED);
            copied = token_start + token_len;
        }
        from = (token_start + token_len).max(word_end);
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::{REDACTED, Secret, redact};

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"hunter2\"");
    }

    #[test]
    fn secrets_and_bearer_tokens_are_taken_out() {
        let token = Secret::new("tok-123");
        let secret = Secret::new("s3cret");
        let empty = Secret::new("");
        let cases = [
            (
                "you sent tok-123 and s3cret",
                "you sent [redacted] and [redacted]",
            ),
            (
                "Authorization: Bearer abc.def-ghi",
                "Authorization: Bearer [redacted]",
            ),
            ("bearer  xyz, then more", "bearer  [redacted] then more"),
            ("BEARER\tq", "BEARER\t[redacted]"),
            (
                "a Bearer at the end: Bearer",
                "a Bearer [redacted] the end: Bearer",
            ),
            ("Bearer ünïcødé ok", "Bearer [redacted] ok"),
            ("nothing to hide", "nothing to hide"),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text, &[&token, &secret, &empty]), want, "{text}");
        }
        assert!(!redact("xtok-123x", &[&token]).contains("tok-123"));
        assert_eq!(REDACTED, "[redacted]");
    }
}
