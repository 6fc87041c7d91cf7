//! Where every key of a document sits, and every unknown key at once: what [`super::parse_all`]
//! adds to a parse.
//!
//! serde's derived structs stop at the first unknown key, and `serde_yaml` exposes no positions
//! but those of its errors. So, when keys are logged, the deserializer wrapper of
//! [`super::budget`] reads each key of a struct here ([`next_known_key`]): the key is caught by a
//! visitor that fails on purpose, which makes `serde_yaml` stamp the failure with the key's line,
//! column and YAML path (the only way it tells them); a known key is then handed to the struct as
//! if read directly, and an unknown one is logged and its value skipped, so the parse goes on to
//! the next. `serde_yaml` (0.9, no longer developed) has consumed the key's event when the
//! visitor fails, so the map is left where a normal read would leave it.

use super::budget::Budget;
use super::{YamlError, YamlErrorKind};
use serde::de::value::StrDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where the keys of a document sit: each key's YAML path (`targets[2].match`) → its 1-based
/// line and column. A mapping's own path (`targets[2]`) gets its first key's place, unless it is
/// a key itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Keys(HashMap<String, (usize, usize)>);

impl Keys {
    /// The line and column of `path`, or of its nearest ancestor that has one: the key of
    /// `targets[0].exclude[2]` is `targets[0].exclude`. `None` for a key that is not there.
    pub fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(&place) = self.0.get(path) {
                return Some(place);
            }
            path = &path[..path.rfind(['.', '['])?];
        }
    }
}

/// What a parse that logs keys collects as it goes.
pub(super) struct KeyLog {
    file: PathBuf,
    keys: RefCell<Keys>,
    unknown: RefCell<Vec<YamlError>>,
    /// The key the catching visitor saw last, until [`next_known_key`] takes it.
    caught: RefCell<Option<String>>,
}

impl KeyLog {
    pub(super) fn new(file: &Path) -> Self {
        Self {
            file: file.to_path_buf(),
            keys: RefCell::default(),
            unknown: RefCell::default(),
            caught: RefCell::default(),
        }
    }

    /// The places logged, and the unknown keys, in document order.
    pub(super) fn finish(self) -> (Keys, Vec<YamlError>) {
        (self.keys.into_inner(), self.unknown.into_inner())
    }

    fn record(&self, key: &Caught) {
        let mut keys = self.keys.borrow_mut();
        let full = match &key.map {
            None => key.name.clone(),
            Some(map) => {
                if let Some(place) = key.place {
                    keys.0.entry(map.clone()).or_insert(place);
                }
                format!("{map}.{}", key.name)
            }
        };
        if let Some(place) = key.place {
            keys.0.insert(full, place);
        }
    }
}

/// A key as caught: its text, its mapping's YAML path (`None` at the top) and its place.
struct Caught {
    name: String,
    map: Option<String>,
    place: Option<(usize, usize)>,
}

/// What the catching visitor fails with; `serde_yaml` puts the path in front of it and the
/// place after it.
const MARK: &str = "\u{0}replicate: a key, caught\u{0}";

/// The next key of a struct's `map` that the struct knows (one of `fields`), handed to `seed`;
/// unknown keys before it are logged, with their places, and their values skipped.
pub(super) fn next_known_key<'de, A, K>(
    map: &mut A,
    fields: &'static [&'static str],
    seed: K,
    log: &KeyLog,
    budget: &Budget,
) -> Result<Option<K::Value>, A::Error>
where
    A: MapAccess<'de>,
    K: DeserializeSeed<'de>,
{
    loop {
        let caught = match map.next_key_seed(Catch { log, budget }) {
            Ok(None) => return Ok(None),
            Ok(Some(never)) => match never {},
            Err(error) => match log.caught.borrow_mut().take() {
                Some(name) => caught(name, &error.to_string()),
                None => return Err(error),
            },
        };
        log.record(&caught);
        if fields.contains(&caught.name.as_str()) {
            return seed
                .deserialize(StrDeserializer::<A::Error>::new(&caught.name))
                .map(Some);
        }
        log.unknown.borrow_mut().push(YamlError {
            file: log.file.clone(),
            location: caught.place,
            path: caught.map,
            kind: YamlErrorKind::UnknownField {
                field: caught.name,
                expected: fields.iter().map(|f| (*f).to_string()).collect(),
            },
        });
        map.next_value::<IgnoredAny>()?;
    }
}

/// The key's path and place, read back from the error `serde_yaml` made of [`MARK`]:
/// `targets[0]: MARK at line 5 column 5`. `serde_yaml` leaves out a root path, and the place of
/// line 1, column 1.
fn caught(name: String, error: &str) -> Caught {
    let (before, after) = error.split_once(MARK).unwrap_or((error, ""));
    let map = before.strip_suffix(": ").map(str::to_string);
    let place = match after.strip_prefix(" at line ") {
        None => Some((1, 1)),
        Some(rest) => rest
            .split_once(" column ")
            .and_then(|(line, column)| Some((line.parse().ok()?, column.parse().ok()?))),
    };
    Caught { name, map, place }
}

/// Never made: the catching seed always fails.
enum Never {}

/// Reads a key as a string, leaves it in the log, and fails with [`MARK`].
struct Catch<'b> {
    log: &'b KeyLog,
    budget: &'b Budget,
}

impl<'de> DeserializeSeed<'de> for Catch<'_> {
    type Value = Never;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Never, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for Catch<'_> {
    type Value = Never;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Never, E> {
        self.budget.spend::<E>(key.len())?;
        *self.log.caught.borrow_mut() = Some(key.to_string());
        Err(E::custom(MARK))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_located_by_its_nearest_key() {
        let mut keys = Keys::default();
        keys.0.insert("targets".into(), (3, 1));
        keys.0.insert("targets[0]".into(), (4, 5));
        keys.0.insert("targets[0].exclude".into(), (5, 5));
        assert_eq!(keys.locate("targets[0].exclude[2]"), Some((5, 5)));
        assert_eq!(keys.locate("targets[0].match"), Some((4, 5)));
        assert_eq!(keys.locate("targets[1]"), Some((3, 1)));
        assert_eq!(keys.locate("version"), None);
    }

    #[test]
    fn the_place_is_read_back_from_the_error() {
        let at = |error: &str| {
            let c = caught("k".into(), error);
            (c.map, c.place)
        };
        assert_eq!(
            at(&format!("targets[0]: {MARK} at line 5 column 7")),
            (Some("targets[0]".into()), Some((5, 7)))
        );
        assert_eq!(
            at(&format!("{MARK} at line 2 column 1")),
            (None, Some((2, 1)))
        );
        assert_eq!(at(MARK), (None, Some((1, 1))));
    }
}
