//! The semantic checks that turn a [`RawPlan`] into a validated [`Plan`] (SPEC §2).
//!
//! The checker walks the raw plan key by key and collects every problem with its YAML path
//! (`targets[2].match`), so one run reports them all: versions, references, selectors and globs,
//! per-target and default settings, enum spellings, schedules (cron shape) and the API URL.

use super::raw::{RawOverrides, RawPlan, RawSchedule, RawSelector, RawTarget};
use super::{
    DEFAULT_NAME, ExistingPolicy, Glob, MAX_TAG_NAME, MissingStreamsPolicy, Overrides, Plan,
    PlanError, Reference, Selector, Target, Template,
};
use crate::cron;
use crate::wire::{
    ConnectionSchedule, ConnectionStatus, NamespaceDefinition, NonBreakingSchemaUpdatesBehavior,
    ScheduleType,
};
use crate::yaml;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::Path;
use uuid::Uuid;

/// The plan versions this build reads.
const SUPPORTED_VERSION: i64 = 1;

/// The longest glob accepted: far beyond any real pattern over source names, and short enough
/// that its matcher stays small.
const MAX_GLOB_CHARS: usize = 1024;

/// The values of `existing`, `missing_streams`, `schedule.scheduleType` and `status`, as a plan
/// spells them (also the schema's enums).
pub(super) const EXISTING: [&str; 3] = ["update", "skip", "fail"];
pub(super) const MISSING_STREAMS: [&str; 2] = ["fail", "skip"];
pub(super) const SCHEDULE_TYPES: [&str; 2] = ["manual", "cron"];
pub(super) const STATUSES: [&str; 2] = ["active", "inactive"];

/// `concurrency` bounds, as for `--concurrency`.
const CONCURRENCY: std::ops::RangeInclusive<i64> = 1..=256;

pub(super) struct Checker<'a> {
    pub(super) file: &'a Path,
    /// Where the file's keys sit, to give each error a line; `None` on the first, quick read.
    pub(super) keys: Option<&'a yaml::Keys>,
    pub(super) errors: Vec<PlanError>,
}

impl Checker<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        self.errors.push(PlanError::Invalid {
            file: self.file.to_path_buf(),
            location: self.keys.and_then(|keys| keys.locate(&path)),
            path,
            message: message.into(),
        });
    }

    /// The validated plan, or `None` when a required part could not be built; either way,
    /// every problem found is in `self.errors`.
    pub(super) fn plan(&mut self, raw: RawPlan) -> Option<Plan> {
        match raw.version {
            Some(SUPPORTED_VERSION) => {}
            Some(other) => self.error(
                "version",
                format!(
                    "plan version {other} is not supported; this replicate reads version \
                     {SUPPORTED_VERSION}"
                ),
            ),
            None => self.error(
                "version",
                format!("missing; add `version: {SUPPORTED_VERSION}` at the top of the plan"),
            ),
        }
        let template = if let Some(text) = raw.template {
            self.reference("template", text, "the template connection")
        } else {
            self.error(
                "template",
                "missing; name the template connection by its id or its exact name",
            );
            None
        };
        let url = raw.airbyte.and_then(|airbyte| airbyte.url);
        if let Some(url) = &url {
            if let Err(why) = check_url(url) {
                self.error("airbyte.url", why);
            }
        }
        let targets = self.targets(raw.targets);
        let mut defaults = self.overrides("defaults", raw.defaults.unwrap_or_default());
        if defaults.name.is_none() {
            defaults.name = Template::parse(DEFAULT_NAME).ok();
        }
        let existing = match raw.existing.as_deref() {
            None | Some("update") => ExistingPolicy::Update,
            Some("skip") => ExistingPolicy::Skip,
            Some("fail") => ExistingPolicy::Fail,
            Some(other) => {
                self.error("existing", unknown_value(other, &EXISTING));
                ExistingPolicy::Update
            }
        };
        let missing_streams = match raw.missing_streams.as_deref() {
            None | Some("fail") => MissingStreamsPolicy::Fail,
            Some("skip") => MissingStreamsPolicy::Skip,
            Some(other) => {
                self.error("missing_streams", unknown_value(other, &MISSING_STREAMS));
                MissingStreamsPolicy::Fail
            }
        };
        let owner = self.owner(raw.owner);
        let concurrency = raw.concurrency.and_then(|n| {
            let ok = usize::try_from(n).ok().filter(|_| CONCURRENCY.contains(&n));
            if ok.is_none() {
                self.error(
                    "concurrency",
                    format!(
                        "{n} is out of range: the API requests in flight at once, {} to {}",
                        CONCURRENCY.start(),
                        CONCURRENCY.end()
                    ),
                );
            }
            ok
        });
        Some(Plan {
            file: self.file.to_path_buf(),
            template: template?,
            url,
            targets,
            defaults,
            existing,
            missing_streams,
            owner,
            prune: raw.prune.unwrap_or(false),
            concurrency,
        })
    }

    /// `owner`, or `replicate:<file stem>`: a tag name Airbyte accepts (SPEC §9).
    fn owner(&mut self, raw: Option<String>) -> String {
        let explicit = raw.is_some();
        let owner = raw.unwrap_or_else(|| {
            let stem = self
                .file
                .file_stem()
                .map_or_else(|| "plan".into(), |s| s.to_string_lossy());
            format!("replicate:{stem}")
        });
        let length = owner.encode_utf16().count();
        if owner.trim().is_empty() {
            self.error(
                "owner",
                "is empty; name the tag that marks this plan's copies, e.g. \"replicate:shops\"",
            );
        } else if length > MAX_TAG_NAME {
            let excerpt = yaml::excerpt(&owner);
            self.error(
                "owner",
                if explicit {
                    format!(
                        "\"{excerpt}\" has {length} characters, but Airbyte's tag names have at \
                         most {MAX_TAG_NAME}; choose a shorter owner tag"
                    )
                } else {
                    format!(
                        "the default owner tag \"{excerpt}\" (from the file name) has {length} \
                         characters, but Airbyte's tag names have at most {MAX_TAG_NAME}; set \
                         `owner` to a shorter tag name, e.g. \"replicate:shops\""
                    )
                },
            );
        }
        owner
    }

    /// An id (a hyphenated UUID) or an exact name.
    fn reference(&mut self, path: &str, text: String, what: &str) -> Option<Reference> {
        if text.is_empty() {
            self.error(path, format!("is empty; give {what}'s id or exact name"));
            return None;
        }
        // Only the hyphenated form, as Airbyte writes ids: a 32-digit hex name stays a name.
        if text.len() == uuid::fmt::Hyphenated::LENGTH {
            if let Ok(id) = Uuid::try_parse(&text) {
                return Some(Reference::Id(id));
            }
        }
        Some(Reference::Name(text))
    }

    fn targets(&mut self, raw: Option<Vec<RawTarget>>) -> Vec<Target> {
        let Some(raw) = raw else {
            self.error(
                "targets",
                "missing; list the sources to copy the template onto \
                 (`- source: ID-OR-NAME` or `- match: GLOB`)",
            );
            return Vec::new();
        };
        if raw.is_empty() {
            self.error(
                "targets",
                "is empty; list at least one target (`- source: ID-OR-NAME` or `- match: GLOB`)",
            );
        }
        // Where each explicitly named source was first named, to report both entries.
        let mut named: HashMap<Reference, usize> = HashMap::with_capacity(raw.len());
        // Many `match` entries often share globs; compile each text once.
        let mut globs: HashMap<String, Glob> = HashMap::new();
        let mut targets = Vec::with_capacity(raw.len());
        for (index, entry) in raw.into_iter().enumerate() {
            let path = format!("targets[{index}]");
            let (selector, overrides) = entry.split();
            let selector = self.selector(&path, selector, &mut globs);
            if let Some(Selector::Source(reference)) = &selector {
                match named.entry(reference.clone()) {
                    Entry::Occupied(first) => self.error(
                        format!("{path}.source"),
                        format!(
                            "{} is already named by targets[{}].source; name each source once",
                            yaml::excerpt(&reference.to_string()),
                            first.get()
                        ),
                    ),
                    Entry::Vacant(slot) => {
                        slot.insert(index);
                    }
                }
            }
            let overrides = self.overrides(&path, overrides);
            if let Some(selector) = selector {
                targets.push(Target {
                    path,
                    selector,
                    overrides,
                });
            }
        }
        targets
    }

    fn selector(
        &mut self,
        path: &str,
        raw: RawSelector,
        globs: &mut HashMap<String, Glob>,
    ) -> Option<Selector> {
        let RawSelector {
            source,
            pattern,
            source_type,
            exclude,
            allow_empty,
        } = raw;
        match (source, pattern) {
            (Some(_), Some(_)) => {
                self.error(
                    path,
                    "has both `source` and `match`; give exactly one (split it into two entries)",
                );
                None
            }
            (None, None) => {
                self.error(
                    path,
                    "needs `source` (one source, by id or exact name) or `match` (a glob over \
                     source names)",
                );
                None
            }
            (Some(source), None) => {
                for (key, set) in [
                    ("type", source_type.is_some()),
                    ("exclude", exclude.is_some()),
                    ("allow_empty", allow_empty.is_some()),
                ] {
                    if set {
                        self.error(
                            format!("{path}.{key}"),
                            format!(
                                "`{key}` only goes with `match`; a `source` entry already names \
                                 one source"
                            ),
                        );
                    }
                }
                let reference = self.reference(&format!("{path}.source"), source, "the source")?;
                Some(Selector::Source(reference))
            }
            (None, Some(pattern)) => {
                let pattern = self.glob(&format!("{path}.match"), pattern, globs);
                if source_type.as_deref() == Some("") {
                    self.error(
                        format!("{path}.type"),
                        "is empty; give a sourceType such as `postgres`, or leave `type` out",
                    );
                }
                let exclude: Vec<Glob> = exclude
                    .unwrap_or_default()
                    .into_iter()
                    .enumerate()
                    .filter_map(|(i, text)| self.glob(&format!("{path}.exclude[{i}]"), text, globs))
                    .collect();
                Some(Selector::Match {
                    pattern: pattern?,
                    source_type,
                    exclude,
                    allow_empty: allow_empty.unwrap_or(false),
                })
            }
        }
    }

    fn glob(
        &mut self,
        path: &str,
        text: String,
        cache: &mut HashMap<String, Glob>,
    ) -> Option<Glob> {
        if let Some(glob) = cache.get(&text) {
            return Some(glob.clone());
        }
        match compile_glob(&text) {
            Ok(glob) => {
                cache.insert(text, glob.clone());
                Some(glob)
            }
            Err(why) => {
                self.error(path, why);
                None
            }
        }
    }

    fn overrides(&mut self, path: &str, raw: RawOverrides) -> Overrides {
        let key = |key: &str| format!("{path}.{key}");
        let name = raw.name.and_then(|text| {
            if text.is_empty() {
                self.error(
                    key("name"),
                    format!("is empty; leave `name` out to get \"{DEFAULT_NAME}\""),
                );
                return None;
            }
            self.template(&key("name"), &text)
        });
        let prefix = raw
            .prefix
            .and_then(|text| self.template(&key("prefix"), &text));
        let namespace_format = raw
            .namespace_format
            .and_then(|text| self.template(&key("namespaceFormat"), &text));
        let status = raw.status.and_then(|text| match status(&text) {
            Ok(status) => Some(status),
            Err(why) => {
                self.error(key("status"), why);
                None
            }
        });
        let schedule = raw
            .schedule
            .and_then(|raw| self.schedule(&key("schedule"), raw));
        let namespace_definition = raw.namespace_definition.and_then(|text| {
            self.choice(&key("namespaceDefinition"), &text, &NAMESPACE_DEFINITIONS)
        });
        let non_breaking_schema_updates_behavior =
            raw.non_breaking_schema_updates_behavior.and_then(|text| {
                self.choice(
                    &key("nonBreakingSchemaUpdatesBehavior"),
                    &text,
                    &NON_BREAKING_BEHAVIORS,
                )
            });
        Overrides {
            name,
            prefix,
            status,
            schedule,
            namespace_definition,
            namespace_format,
            non_breaking_schema_updates_behavior,
        }
    }

    fn template(&mut self, path: &str, text: &str) -> Option<Template> {
        Template::parse(text)
            .map_err(|why| self.error(path, why))
            .ok()
    }

    fn choice<T: Copy>(&mut self, path: &str, text: &str, table: &[(&str, T)]) -> Option<T> {
        if let Some((_, value)) = table.iter().find(|(name, _)| *name == text) {
            return Some(*value);
        }
        let names: Vec<&str> = table.iter().map(|(name, _)| *name).collect();
        self.error(path, unknown_value(text, &names));
        None
    }

    fn schedule(&mut self, path: &str, raw: RawSchedule) -> Option<ConnectionSchedule> {
        let cron_path = format!("{path}.cronExpression");
        match raw.schedule_type.as_deref() {
            Some("manual") => {
                if raw.cron_expression.is_some() {
                    self.error(
                        cron_path,
                        "a manual schedule takes no cronExpression; remove it, or set \
                         `scheduleType: cron`",
                    );
                    return None;
                }
                Some(ConnectionSchedule {
                    schedule_type: ScheduleType::Manual,
                    cron_expression: None,
                })
            }
            Some("cron") => {
                let Some(expression) = raw.cron_expression else {
                    self.error(
                        cron_path,
                        "missing; a cron schedule needs a Quartz expression, seconds first, \
                         e.g. \"0 0 3 * * ?\" (03:00 UTC daily)",
                    );
                    return None;
                };
                if let Err(why) = cron::check_plan(&expression) {
                    self.error(cron_path, why);
                    return None;
                }
                Some(ConnectionSchedule {
                    schedule_type: ScheduleType::Cron,
                    cron_expression: Some(cron::strip_utc(&expression).to_string()),
                })
            }
            Some("basic") => {
                self.error(
                    format!("{path}.scheduleType"),
                    "`basic` schedules cannot be created through the Airbyte API; use `cron` \
                     (e.g. cronExpression \"0 0 */6 * * ?\" for every 6 hours) or `manual`",
                );
                None
            }
            Some(other) => {
                self.error(
                    format!("{path}.scheduleType"),
                    unknown_value(other, &SCHEDULE_TYPES),
                );
                None
            }
            None => {
                self.error(
                    format!("{path}.scheduleType"),
                    "missing; set `manual`, or `cron` with a cronExpression",
                );
                None
            }
        }
    }
}

/// `active` or `inactive`; the other statuses are Airbyte's to set.
fn status(text: &str) -> Result<ConnectionStatus, String> {
    match text {
        "active" => Ok(ConnectionStatus::Active),
        "inactive" => Ok(ConnectionStatus::Inactive),
        "deprecated" => Err(
            "`deprecated` means deleted, and a copy cannot be created deleted; use `active` or \
             `inactive`"
                .into(),
        ),
        "locked" => Err(
            "`locked` is set by Airbyte (e.g. for billing) and cannot be requested; use `active` \
             or `inactive`"
                .into(),
        ),
        other => Err(unknown_value(other, &STATUSES)),
    }
}

/// Spelled as the Airbyte API spells them (`NamespaceDefinitionEnum`).
pub(super) const NAMESPACE_DEFINITIONS: [(&str, NamespaceDefinition); 3] = [
    ("source", NamespaceDefinition::Source),
    ("destination", NamespaceDefinition::Destination),
    ("custom_format", NamespaceDefinition::CustomFormat),
];

/// Spelled as the Airbyte API spells them (`NonBreakingSchemaUpdatesBehaviorEnum`).
pub(super) const NON_BREAKING_BEHAVIORS: [(&str, NonBreakingSchemaUpdatesBehavior); 4] = [
    ("ignore", NonBreakingSchemaUpdatesBehavior::Ignore),
    (
        "disable_connection",
        NonBreakingSchemaUpdatesBehavior::DisableConnection,
    ),
    (
        "propagate_columns",
        NonBreakingSchemaUpdatesBehavior::PropagateColumns,
    ),
    (
        "propagate_fully",
        NonBreakingSchemaUpdatesBehavior::PropagateFully,
    ),
];

/// "unknown value `x` (did you mean `y`?); expected one of: a, b".
fn unknown_value(text: &str, valid: &[&str]) -> String {
    let hint = yaml::suggestion(text, valid.iter().copied())
        .map(|best| format!(" (did you mean `{best}`?)"))
        .unwrap_or_default();
    format!(
        "unknown value `{}`{hint}; expected one of: {}",
        yaml::excerpt(text),
        valid.join(", ")
    )
}

/// Case-sensitive; `*` and `?` match `/` like any other character (source names are not paths);
/// `\` escapes.
pub fn compile_glob(text: &str) -> Result<Glob, String> {
    if text.is_empty() {
        return Err("is empty; give a glob over source names, such as \"shop-*\"".into());
    }
    let chars = text.chars().count();
    if chars > MAX_GLOB_CHARS {
        return Err(format!(
            "is {chars} characters long; a glob over source names may have at most \
             {MAX_GLOB_CHARS}"
        ));
    }
    let glob = globset::GlobBuilder::new(text)
        .case_insensitive(false)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("invalid glob \"{}\": {}", yaml::excerpt(text), e.kind()))?;
    // `compile_matcher` panics when the regex it builds does not compile (alternations nested
    // past the regex parser's limit); a set reports the same failure as an error.
    globset::GlobSetBuilder::new()
        .add(glob.clone())
        .build()
        .map_err(|_| {
            format!(
                "invalid glob \"{}\": too complex (alternations `{{…}}` nested too deeply)",
                yaml::excerpt(text)
            )
        })?;
    Ok(Glob {
        text: text.to_string(),
        matcher: glob.compile_matcher(),
    })
}

/// A basic shape check: `http(s)://host[:port][/path]`. Credentials in the URL are refused
/// without echoing it.
fn check_url(url: &str) -> Result<(), String> {
    let shown = yaml::excerpt(url);
    let lower = url.to_ascii_lowercase();
    let Some(rest) = ["https://", "http://"]
        .iter()
        .find_map(|scheme| lower.starts_with(scheme).then(|| &url[scheme.len()..]))
    else {
        return Err(format!(
            "\"{shown}\" is not an http(s) URL: it must start with `https://` (or `http://` for a \
             local Airbyte), e.g. https://api.airbyte.com/v1"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(
            "the URL holds credentials (`user:password@`; not shown); plan files must not hold \
             credentials: set AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET, in \
             the environment"
                .into(),
        );
    }
    if url.chars().any(char::is_whitespace) {
        return Err(format!("\"{shown}\" is not a URL: it contains whitespace"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        // `[::1]` without a port: the colon belongs to the address.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() {
        return Err(format!(
            "\"{shown}\" has no host, e.g. https://api.airbyte.com/v1"
        ));
    }
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!(
                "\"{shown}\" has an invalid port `{}` (expected 1-65535)",
                yaml::excerpt(port)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_tables_spell_values_as_the_api_does() {
        for (name, value) in NAMESPACE_DEFINITIONS {
            assert_eq!(serde_json::to_value(value).unwrap(), name);
        }
        for (name, value) in NON_BREAKING_BEHAVIORS {
            assert_eq!(serde_json::to_value(value).unwrap(), name);
        }
        for name in ["active", "inactive"] {
            let parsed = status(name).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap(), name);
        }
    }

    #[test]
    fn globs_are_case_sensitive_and_slash_is_ordinary() {
        let glob = |text: &str| compile_glob(text).unwrap();
        let cases = [
            ("shop-*", "shop-eu", true),
            ("shop-*", "Shop-EU", false),
            ("shop-*", "shop-eu/replica", true),
            ("shop-*", "my-shop-eu", false),
            ("shop-??", "shop-eu", true),
            ("shop-??", "shop-apac", false),
            ("shop-{eu,us}", "shop-us", true),
            ("shop-[a-f]*", "shop-apac", true),
            ("shop-[a-f]*", "shop-latam", false),
            ("shop-\\*", "shop-*", true),
            ("shop-\\*", "shop-eu", false),
            ("*", "", true),
            ("a/**/b", "a/x/y/b", true),
        ];
        for (pattern, name, expected) in cases {
            assert_eq!(
                glob(pattern).is_match(name),
                expected,
                "{pattern} vs {name}"
            );
        }
    }
}
