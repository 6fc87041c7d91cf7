//! Keys named like a secret (`token`, `clientSecret`, `password`, …), refused wherever they
//! appear in a plan, without echoing their values (SPEC §1).
//!
//! Because every raw struct denies unknown keys and none holds a free-form map, a plan that parses
//! cannot contain such a key: it is an unknown key, reported as a credential instead. The
//! (costlier) generic scan for such keys nested in values that did not parse runs only when the
//! parser found a problem.

use super::PlanError;
use crate::yaml::{self, Keys, YamlError};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

/// The parser's `errors` as a plan reports them: an unknown key named like a secret becomes a
/// credential error (its value never shown), as does a key named like a secret anywhere inside
/// what did not parse; the rest stay as they are.
pub(super) fn screen_secrets(
    file: &Path,
    bytes: &[u8],
    errors: Vec<YamlError>,
    keys: &Keys,
) -> Vec<PlanError> {
    if errors.is_empty() {
        return Vec::new();
    }
    let credential = |path: String, key: &str, location| PlanError::Invalid {
        file: file.to_path_buf(),
        location,
        message: format!(
            "`{}` looks like a credential, and plan files must not hold credentials (the value \
             is not shown); remove it and set AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and \
             AIRBYTE_CLIENT_SECRET, in the environment",
            yaml::excerpt(key)
        ),
        path: yaml::excerpt(&path).into_owned(),
    };
    let mut reported = HashSet::new();
    let mut screened = Vec::with_capacity(errors.len());
    for error in errors {
        match error.unknown_field().filter(|key| is_secret_key(key)) {
            Some(key) => {
                let path = match &error.path {
                    Some(map) => format!("{map}.{key}"),
                    None => key.to_string(),
                };
                screened.push(credential(path.clone(), key, error.location));
                reported.insert(path);
            }
            None => screened.push(PlanError::Yaml(error)),
        }
    }
    // Keys inside the values of unknown keys, or past the point where the parse stopped.
    let parsed = might_name_a_secret(bytes)
        .then(|| yaml::parse::<serde_yaml::Value>(file, bytes).ok())
        .flatten();
    if let Some(value) = parsed {
        let mut secrets = Vec::new();
        find_secret_keys(&value, &mut String::new(), &mut secrets);
        for (path, key) in secrets {
            if !reported.contains(&path) {
                let location = keys.locate(&path);
                screened.push(credential(path, &key, location));
            }
        }
    }
    screened
}

/// Whether the document could hold a key [`is_secret_key`] accepts: the whole text, squashed the
/// same way (and with all whitespace gone, for keys folded over lines), holds one of its words,
/// or an escape could spell one. Parsing a 10 MB document a second time, to look for keys that
/// cannot be there, would double the time to reject it.
fn might_name_a_secret(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    if text.contains('\\') {
        return true;
    }
    // A plain loop with an ASCII fast path: this runs over every byte of a rejected file.
    let mut squashed = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            if !matches!(c, '_' | '-' | '.') && !c.is_ascii_whitespace() {
                squashed.push(c.to_ascii_lowercase());
            }
        } else if !c.is_whitespace() {
            squashed.extend(c.to_lowercase());
        }
    }
    SECRET_WORDS.iter().any(|word| squashed.contains(word))
}

/// Collects the YAML paths (and the keys) of mapping keys that name a secret, at any depth.
fn find_secret_keys(value: &serde_yaml::Value, path: &mut String, out: &mut Vec<(String, String)>) {
    use serde_yaml::Value;
    match value {
        Value::Mapping(mapping) => {
            for (key, child) in mapping {
                let Some(key) = key.as_str() else { continue };
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                if is_secret_key(key) {
                    out.push((path.clone(), key.to_string()));
                } else {
                    find_secret_keys(child, path, out);
                }
                path.truncate(len);
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                let len = path.len();
                // Writing to a String cannot fail.
                let _ = write!(path, "[{i}]");
                find_secret_keys(child, path, out);
                path.truncate(len);
            }
        }
        Value::Tagged(tagged) => find_secret_keys(&tagged.value, path, out),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

/// `token`, `client_secret`, `clientSecret`, `API-Key`, `password`, …: compared without case
/// and without `_`, `-`, `.` and spaces.
fn is_secret_key(key: &str) -> bool {
    let squashed: String = key
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .flat_map(char::to_lowercase)
        .collect();
    SECRET_WORDS.iter().any(|word| squashed.contains(word))
}

/// What [`is_secret_key`] looks for, squashed.
const SECRET_WORDS: [&str; 9] = [
    "token",
    "secret",
    "password",
    "passwd",
    "apikey",
    "authorization",
    "bearer",
    "credential",
    "privatekey",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_detection() {
        for key in [
            "token",
            "TOKEN",
            "access_token",
            "client_secret",
            "clientSecret",
            "client-secret",
            "password",
            "db_passwd",
            "apiKey",
            "api_key",
            "API-Key",
            "secret",
            "Authorization",
            "bearer",
            "credentials",
            "private_key",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "version",
            "template",
            "airbyte",
            "url",
            "targets",
            "source",
            "match",
            "type",
            "exclude",
            "defaults",
            "name",
            "prefix",
            "status",
            "schedule",
            "scheduleType",
            "cronExpression",
            "namespaceDefinition",
            "namespaceFormat",
            "nonBreakingSchemaUpdatesBehavior",
            "existing",
            "missing_streams",
            "concurrency",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }
}
