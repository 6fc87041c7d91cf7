//! Reading a plan file into a validated [`Plan`] (SPEC §2).
//!
//! Two steps. First, `yaml::parse` reads the bytes into raw structs that mirror the file
//! (`deny_unknown_fields` everywhere, every key optional); syntax and type errors stop here with
//! `file:line:column`. Then the raw plan is checked key by key, and every semantic problem is
//! collected with its YAML path (`targets[2].match`), so one run reports them all.
//!
//! Keys named like a secret are refused wherever they appear, without echoing their values.
//! Because every raw struct denies unknown keys and none holds a free-form map, a plan that parses
//! cannot contain such a key; so the (costlier) generic scan for them runs only when parsing failed.

use super::{
    DEFAULT_NAME, ExistingPolicy, Glob, MissingStreamsPolicy, Overrides, Plan, PlanError,
    PlanErrors, Reference, Selector, Target, Template,
};
use crate::cron;
use crate::wire::{
    ConnectionSchedule, ConnectionStatus, NamespaceDefinition, NonBreakingSchemaUpdatesBehavior,
    ScheduleType,
};
use crate::yaml::{self, YamlError};
use serde::Deserialize;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::path::Path;
use uuid::Uuid;

/// The plan versions this build reads.
const SUPPORTED_VERSION: i64 = 1;

/// The longest glob accepted: far beyond any real pattern over source names, and short enough
/// that its matcher stays small.
const MAX_GLOB_CHARS: usize = 1024;

/// `concurrency` bounds, as for `--concurrency`.
const CONCURRENCY: std::ops::RangeInclusive<i64> = 1..=256;

/// Reads and validates the plan file at `path`. An I/O error names the file.
pub fn load(path: &Path) -> Result<Plan, PlanErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        PlanErrors(vec![PlanError::Read {
            file: path.to_path_buf(),
            message: format!("cannot read the plan file: {e}"),
        }])
    })?;
    parse(path, &bytes)
}

/// Validates a plan given as bytes; `path` only names it in errors and in [`Plan::file`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Plan, PlanErrors> {
    let raw = match yaml::parse::<RawPlan>(path, bytes) {
        Ok(raw) => raw,
        Err(error) => return Err(PlanErrors(parse_failure(path, bytes, error))),
    };
    let mut check = Checker {
        file: path,
        errors: Vec::new(),
    };
    let plan = check.plan(raw);
    match plan {
        Some(plan) if check.errors.is_empty() => Ok(plan),
        _ => Err(PlanErrors(check.errors)),
    }
}

// ---------------------------------------------------------------------------------------------
// The file as written. Every key is optional here so that a missing key is reported with the
// others instead of stopping the parse. `expecting` is what a type error says was expected.

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping of plan keys (version, template, targets, …)"
)]
struct RawPlan {
    version: Option<i64>,
    template: Option<String>,
    airbyte: Option<RawAirbyte>,
    targets: Option<Vec<RawTarget>>,
    defaults: Option<RawOverrides>,
    existing: Option<String>,
    missing_streams: Option<String>,
    concurrency: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping with `url:`")]
struct RawAirbyte {
    url: Option<String>,
}

/// A target entry: a selector plus the same keys as [`RawOverrides`] (serde cannot flatten and
/// deny unknown keys at once).
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping with `source: ID-OR-NAME` or `match: GLOB`"
)]
struct RawTarget {
    source: Option<String>,
    #[serde(rename = "match")]
    pattern: Option<String>,
    #[serde(rename = "type")]
    source_type: Option<String>,
    exclude: Option<Vec<String>>,
    name: Option<String>,
    prefix: Option<String>,
    status: Option<String>,
    schedule: Option<RawSchedule>,
    namespace_definition: Option<String>,
    namespace_format: Option<String>,
    non_breaking_schema_updates_behavior: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping of connection settings (name, prefix, status, schedule, …)"
)]
struct RawOverrides {
    name: Option<String>,
    prefix: Option<String>,
    status: Option<String>,
    schedule: Option<RawSchedule>,
    namespace_definition: Option<String>,
    namespace_format: Option<String>,
    non_breaking_schema_updates_behavior: Option<String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "camelCase",
    expecting = "a mapping like { scheduleType: cron, cronExpression: \"0 0 3 * * ?\" }"
)]
struct RawSchedule {
    schedule_type: Option<String>,
    cron_expression: Option<String>,
}

impl RawTarget {
    fn split(self) -> (RawSelector, RawOverrides) {
        let selector = RawSelector {
            source: self.source,
            pattern: self.pattern,
            source_type: self.source_type,
            exclude: self.exclude,
        };
        let overrides = RawOverrides {
            name: self.name,
            prefix: self.prefix,
            status: self.status,
            schedule: self.schedule,
            namespace_definition: self.namespace_definition,
            namespace_format: self.namespace_format,
            non_breaking_schema_updates_behavior: self.non_breaking_schema_updates_behavior,
        };
        (selector, overrides)
    }
}

struct RawSelector {
    source: Option<String>,
    pattern: Option<String>,
    source_type: Option<String>,
    exclude: Option<Vec<String>>,
}

// ---------------------------------------------------------------------------------------------
// Parse failures.

/// The errors to report when the raw parse failed: keys named like secrets first (their values
/// never shown), then the parser's own error unless it is only about one of those keys.
fn parse_failure(file: &Path, bytes: &[u8], error: YamlError) -> Vec<PlanError> {
    let mut errors = Vec::new();
    let parsed = might_name_a_secret(bytes)
        .then(|| yaml::parse::<serde_yaml::Value>(file, bytes).ok())
        .flatten();
    if let Some(value) = parsed {
        let mut secrets = Vec::new();
        find_secret_keys(&value, &mut String::new(), &mut secrets);
        errors.extend(secrets.into_iter().map(|(path, key)| PlanError::Invalid {
            file: file.to_path_buf(),
            message: format!(
                "`{}` looks like a credential, and plan files must not hold credentials (the value \
                 is not shown); remove it and set AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and \
                 AIRBYTE_CLIENT_SECRET, in the environment",
                yaml::excerpt(&key)
            ),
            path: yaml::excerpt(&path).into_owned(),
        }));
    }
    // The parser stops at the first unknown key; when the whole document does not parse, that
    // key was not reported above, and the parser's error is all there is to say.
    let about_secret = !errors.is_empty() && error.unknown_field().is_some_and(is_secret_key);
    if !about_secret {
        errors.push(PlanError::Yaml(error));
    }
    errors
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

// ---------------------------------------------------------------------------------------------
// Semantic checks.

struct Checker<'a> {
    file: &'a Path,
    errors: Vec<PlanError>,
}

impl Checker<'_> {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errors.push(PlanError::Invalid {
            file: self.file.to_path_buf(),
            path: path.into(),
            message: message.into(),
        });
    }

    /// The validated plan, or `None` when a required part could not be built; either way,
    /// every problem found is in `self.errors`.
    fn plan(&mut self, raw: RawPlan) -> Option<Plan> {
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
            None | Some("skip") => ExistingPolicy::Skip,
            Some("fail") => ExistingPolicy::Fail,
            Some("update") => {
                self.error(
                    "existing",
                    "`update` is not supported yet; use `skip` (leave existing copies as they \
                     are) or `fail` (an error for each target whose copy exists)",
                );
                ExistingPolicy::Skip
            }
            Some(other) => {
                self.error("existing", unknown_value(other, &["skip", "fail"]));
                ExistingPolicy::Skip
            }
        };
        let missing_streams = match raw.missing_streams.as_deref() {
            None | Some("fail") => MissingStreamsPolicy::Fail,
            Some("skip") => MissingStreamsPolicy::Skip,
            Some(other) => {
                self.error("missing_streams", unknown_value(other, &["fail", "skip"]));
                MissingStreamsPolicy::Fail
            }
        };
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
            concurrency,
        })
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
                if let Err(why) = cron::check(&expression) {
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
                    unknown_value(other, &["manual", "cron"]),
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
        other => Err(unknown_value(other, &["active", "inactive"])),
    }
}

/// Spelled as the Airbyte API spells them (`NamespaceDefinitionEnum`).
const NAMESPACE_DEFINITIONS: [(&str, NamespaceDefinition); 3] = [
    ("source", NamespaceDefinition::Source),
    ("destination", NamespaceDefinition::Destination),
    ("custom_format", NamespaceDefinition::CustomFormat),
];

/// Spelled as the Airbyte API spells them (`NonBreakingSchemaUpdatesBehaviorEnum`).
const NON_BREAKING_BEHAVIORS: [(&str, NonBreakingSchemaUpdatesBehavior); 4] = [
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
fn compile_glob(text: &str) -> Result<Glob, String> {
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

    fn load_str(text: &str) -> Result<Plan, PlanErrors> {
        parse(Path::new("p.yaml"), text.as_bytes())
    }

    fn errors(text: &str) -> Vec<String> {
        match load_str(text) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
        }
    }

    /// A minimal valid plan followed by `extra` top-level lines (from line 5 on).
    fn with(extra: &str) -> String {
        format!("version: 1\ntemplate: shop-template\ntargets:\n  - source: shop-eu\n{extra}")
    }

    /// A minimal valid plan whose only target is `- ` followed by `entry` (from line 4 on).
    fn target(entry: &str) -> String {
        format!("version: 1\ntemplate: shop-template\ntargets:\n  - {entry}\n")
    }

    /// Each case: a plan, and the start of every error it must produce, in order.
    fn check_cases(cases: &[(String, &[&str])]) {
        for (text, expected) in cases {
            let got = errors(text);
            let matches = got.len() == expected.len()
                && got
                    .iter()
                    .zip(expected.iter())
                    .all(|(g, e)| g.starts_with(e));
            assert!(
                matches,
                "plan:\n{text}\ngot:  {got:#?}\nwant: {expected:#?}"
            );
        }
    }

    #[test]
    fn a_secret_key_in_a_document_that_does_not_parse_is_still_an_error() {
        // The parser stops at the unknown key `token|`; the rest is not YAML.
        let got = errors("? token|\nversion");
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("p.yaml:"), "{got:#?}");
    }

    #[test]
    fn syntax_and_type_errors_give_line_and_column() {
        check_cases(&[
            (
                "version: 1\ntemplate: \"t\ntargets: []\n".into(),
                &["p.yaml:4:1: found unexpected end of stream, while scanning a quoted scalar"],
            ),
            (
                target("source: [a]"),
                &["p.yaml:4:13: targets[0].source: invalid type: sequence, expected a string"],
            ),
            (
                "version: one\n".into(),
                &["p.yaml:1:10: version: invalid type: string \"one\", expected i64"],
            ),
            (
                "- a\n- b\n".into(),
                &["p.yaml:1:1: invalid type: sequence, expected a mapping of plan keys"],
            ),
            (
                target("shop-eu"),
                &[
                    "p.yaml:4:5: targets[0]: invalid type: string \"shop-eu\", expected a mapping \
                   with `source: ID-OR-NAME` or `match: GLOB`",
                ],
            ),
            (
                with("defaults:\n  schedule: manual\n"),
                &[
                    "p.yaml:6:13: defaults.schedule: invalid type: string \"manual\", expected a \
                   mapping like { scheduleType: cron",
                ],
            ),
            // serde_yaml places a duplicate key at the start of its mapping.
            (
                with("targets: []\n"),
                &["p.yaml:1:1: duplicate field `targets`"],
            ),
            (
                target("source: a\n    name: x\n    name: y"),
                &["p.yaml:4:5: targets[0]: duplicate field `name`"],
            ),
            (String::new(), &["p.yaml: the file is empty"]),
            (
                "# only a comment\n".into(),
                &[
                    "p.yaml: version: missing",
                    "p.yaml: template: missing",
                    "p.yaml: targets: missing",
                ],
            ),
        ]);
    }

    #[test]
    fn unknown_keys_suggest_the_closest() {
        check_cases(&[
            (
                with("concurency: 4\n"),
                &["p.yaml:5:1: unknown key `concurency` (did you mean `concurrency`?)"],
            ),
            (
                with("missing-streams: skip\n"),
                &["p.yaml:5:1: unknown key `missing-streams` (did you mean `missing_streams`?)"],
            ),
            (
                target("source: a\n    prefx: x_"),
                &["p.yaml:5:5: targets[0]: unknown key `prefx` (did you mean `prefix`?)"],
            ),
            (
                target("match: a\n    exclude: [b]\n    typ: postgres"),
                &["p.yaml:6:5: targets[0]: unknown key `typ` (did you mean `type`?)"],
            ),
            (
                with("defaults:\n  namespace_format: x\n"),
                &[
                    "p.yaml:6:3: defaults: unknown key `namespace_format` (did you mean \
                   `namespaceFormat`?)",
                ],
            ),
            (
                with("defaults:\n  schedule: { scheduleType: cron, cron: x }\n"),
                &[
                    "p.yaml:6:35: defaults.schedule: unknown key `cron`; expected one of: \
                   scheduleType, cronExpression",
                ],
            ),
            (
                with("airbyte:\n  ulr: https://x\n"),
                &["p.yaml:6:3: airbyte: unknown key `ulr` (did you mean `url`?)"],
            ),
        ]);
    }

    #[test]
    fn secret_keys_are_refused_anywhere_without_their_values() {
        let hint = "looks like a credential, and plan files must not hold credentials (the value \
                    is not shown); remove it and set AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and \
                    AIRBYTE_CLIENT_SECRET, in the environment";
        // Each case: a plan, and the (path, key) of every secret key in it.
        let cases = [
            (with("token: hunter2-value\n"), vec![("token", "token")]),
            (
                with("airbyte:\n  url: https://x\n  client_secret: hunter2-value\n"),
                vec![("airbyte.client_secret", "client_secret")],
            ),
            (
                with("airbyte:\n  clientSecret: hunter2-value\n  AIRBYTE_TOKEN: hunter2-value\n"),
                vec![
                    ("airbyte.clientSecret", "clientSecret"),
                    ("airbyte.AIRBYTE_TOKEN", "AIRBYTE_TOKEN"),
                ],
            ),
            (
                target("source: a\n    apiKey: hunter2-value"),
                vec![("targets[0].apiKey", "apiKey")],
            ),
            (
                with("defaults:\n  schedule:\n    Password: { nested: hunter2-value }\n"),
                vec![("defaults.schedule.Password", "Password")],
            ),
            (
                with("extra:\n  - [1, 2]\n  - { API-KEY: hunter2-value, secret: hunter2-value }\n"),
                vec![
                    ("extra[1].API-KEY", "API-KEY"),
                    ("extra[1].secret", "secret"),
                ],
            ),
            (
                target("api_key: \"hunter2-value\""),
                vec![("targets[0].api_key", "api_key")],
            ),
            (
                with("\"api.key\": hunter2-value\n"),
                vec![("api.key", "api.key")],
            ),
        ];
        for (text, secrets) in cases {
            let got = errors(&text);
            let want: Vec<String> = secrets
                .iter()
                .map(|(path, key)| format!("p.yaml: {path}: `{key}` {hint}"))
                .collect();
            // An unrelated key is still reported with the secrets; a secret key is not reported
            // twice as unknown.
            let (secrets, rest) = got.split_at(want.len().min(got.len()));
            assert_eq!(secrets, want.as_slice(), "{text}");
            assert!(
                rest.iter().all(|e| e.contains("unknown key `extra`")),
                "{text}: {rest:?}"
            );
            assert!(!got.iter().any(|e| e.contains("hunter2")), "{got:?}");
        }
    }

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

    #[test]
    fn top_level_checks() {
        check_cases(&[
            (
                "version: 2\ntemplate: t\ntargets: [{source: a}]\n".into(),
                &[
                    "p.yaml: version: plan version 2 is not supported; this replicate reads version 1",
                ],
            ),
            (
                "template: t\ntargets: [{source: a}]\n".into(),
                &["p.yaml: version: missing; add `version: 1` at the top of the plan"],
            ),
            (
                "version: 1\ntargets: [{source: a}]\n".into(),
                &[
                    "p.yaml: template: missing; name the template connection by its id or its exact name",
                ],
            ),
            (
                "version: 1\ntemplate: ''\ntargets: [{source: a}]\n".into(),
                &["p.yaml: template: is empty; give the template connection's id or exact name"],
            ),
            (
                "version: 1\ntemplate: t\n".into(),
                &["p.yaml: targets: missing; list the sources to copy the template onto"],
            ),
            (
                "version: 1\ntemplate: t\ntargets: []\n".into(),
                &["p.yaml: targets: is empty; list at least one target"],
            ),
            (
                with("existing: update\n"),
                &["p.yaml: existing: `update` is not supported yet; use `skip`"],
            ),
            (
                with("existing: skp\n"),
                &[
                    "p.yaml: existing: unknown value `skp` (did you mean `skip`?); expected one of: skip, fail",
                ],
            ),
            (
                with("missing_streams: drop\n"),
                &["p.yaml: missing_streams: unknown value `drop`; expected one of: fail, skip"],
            ),
            (
                with("concurrency: 0\n"),
                &[
                    "p.yaml: concurrency: 0 is out of range: the API requests in flight at once, 1 to 256",
                ],
            ),
            (
                with("concurrency: 257\n"),
                &["p.yaml: concurrency: 257 is out of range"],
            ),
            (
                with("concurrency: -3\n"),
                &["p.yaml: concurrency: -3 is out of range"],
            ),
            (
                with("concurrency: 99999999999999999999999\n"),
                &[
                    "p.yaml:5:14: concurrency: invalid type: integer `99999999999999999999999` as \
                   u128, expected i64",
                ],
            ),
            (
                with("concurrency: 1.5\n"),
                &["p.yaml:5:14: concurrency: invalid type: floating point `1.5`, expected i64"],
            ),
        ]);
    }

    #[test]
    fn urls_must_be_http() {
        let url = |u: &str| with(&format!("airbyte:\n  url: \"{u}\"\n"));
        check_cases(&[
            (
                url("ftp://api.airbyte.com/v1"),
                &[
                    "p.yaml: airbyte.url: \"ftp://api.airbyte.com/v1\" is not an http(s) URL: it \
                   must start with `https://` (or `http://` for a local Airbyte)",
                ],
            ),
            (
                url("api.airbyte.com/v1"),
                &["p.yaml: airbyte.url: \"api.airbyte.com/v1\" is not an http(s) URL"],
            ),
            (
                url(""),
                &["p.yaml: airbyte.url: \"\" is not an http(s) URL"],
            ),
            (
                url("https:///v1"),
                &["p.yaml: airbyte.url: \"https:///v1\" has no host"],
            ),
            (
                url("https://:8000/v1"),
                &["p.yaml: airbyte.url: \"https://:8000/v1\" has no host"],
            ),
            (
                url("http://localhost:99999/v1"),
                &["p.yaml: airbyte.url: \"http://localhost:99999/v1\" has an invalid port `99999`"],
            ),
            (
                url("https://api airbyte.com"),
                &[
                    "p.yaml: airbyte.url: \"https://api airbyte.com\" is not a URL: it contains whitespace",
                ],
            ),
            (
                url("https://me:hunter2@api.airbyte.com/v1"),
                &["p.yaml: airbyte.url: the URL holds credentials (`user:password@`; not shown)"],
            ),
        ]);
        assert!(!errors(&url("https://me:hunter2@x/v1"))[0].contains("hunter2"));
        for ok in [
            "https://api.airbyte.com/v1",
            "HTTPS://API.AIRBYTE.COM/v1",
            "http://localhost:8000/api/public/v1",
            "http://127.0.0.1:8006/v1",
            "http://[::1]:8006/v1",
            "http://[::1]/v1",
            "https://airbyte.internal",
        ] {
            let plan = load_str(&url(ok)).unwrap();
            assert_eq!(plan.url.as_deref(), Some(ok));
        }
    }

    #[test]
    fn target_selectors() {
        check_cases(&[
            (
                target("source: a\n    match: \"b*\""),
                &["p.yaml: targets[0]: has both `source` and `match`; give exactly one"],
            ),
            (
                target("name: x"),
                &[
                    "p.yaml: targets[0]: needs `source` (one source, by id or exact name) or `match`",
                ],
            ),
            (
                target("source: a\n    type: postgres\n    exclude: [b]"),
                &[
                    "p.yaml: targets[0].type: `type` only goes with `match`",
                    "p.yaml: targets[0].exclude: `exclude` only goes with `match`",
                ],
            ),
            (
                target("source: ''"),
                &["p.yaml: targets[0].source: is empty; give the source's id or exact name"],
            ),
            (
                target("match: \"shop-[\""),
                &[
                    "p.yaml: targets[0].match: invalid glob \"shop-[\": unclosed character class; missing ']'",
                ],
            ),
            (
                target("match: \"{a,b\""),
                &["p.yaml: targets[0].match: invalid glob \"{a,b\": unclosed alternate group"],
            ),
            (
                target("match: ''"),
                &["p.yaml: targets[0].match: is empty; give a glob"],
            ),
            (
                target("match: \"shop-*\"\n    exclude: [ok, \"[z-a]\", \"x\\\\\"]"),
                &[
                    "p.yaml: targets[0].exclude[1]: invalid glob \"[z-a]\": invalid range; 'z' > 'a'",
                    "p.yaml: targets[0].exclude[2]: invalid glob \"x\\\": dangling '\\'",
                ],
            ),
            (
                target("match: \"*\"\n    type: ''"),
                &["p.yaml: targets[0].type: is empty"],
            ),
        ]);
    }

    #[test]
    fn a_source_named_twice_names_both_entries() {
        let id = "3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11";
        let text = format!(
            "version: 1\ntemplate: t\ntargets:\n  - source: shop-eu\n  - match: \"shop-*\"\n  \
             - source: {id}\n  - source: shop-eu\n  - source: Shop-EU\n  - source: {}\n  \
             - source: shop-eu\n",
            id.to_uppercase()
        );
        assert_eq!(
            errors(&text),
            [
                "p.yaml: targets[3].source: \"shop-eu\" is already named by targets[0].source; \
                 name each source once"
                    .to_string(),
                format!(
                    "p.yaml: targets[5].source: {id} is already named by targets[2].source; \
                     name each source once"
                ),
                "p.yaml: targets[6].source: \"shop-eu\" is already named by targets[0].source; \
                 name each source once"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn overrides_are_checked_in_defaults_and_targets() {
        check_cases(&[
            (
                with("defaults:\n  status: actve\n"),
                &[
                    "p.yaml: defaults.status: unknown value `actve` (did you mean `active`?); \
                   expected one of: active, inactive",
                ],
            ),
            (
                target("source: a\n    status: deprecated"),
                &[
                    "p.yaml: targets[0].status: `deprecated` means deleted, and a copy cannot be \
                   created deleted; use `active` or `inactive`",
                ],
            ),
            (
                target("source: a\n    status: locked"),
                &["p.yaml: targets[0].status: `locked` is set by Airbyte"],
            ),
            (
                with("defaults:\n  namespaceDefinition: customformat\n"),
                &[
                    "p.yaml: defaults.namespaceDefinition: unknown value `customformat` (did you \
                   mean `custom_format`?); expected one of: source, destination, custom_format",
                ],
            ),
            (
                with("defaults:\n  nonBreakingSchemaUpdatesBehavior: propagateColumns\n"),
                &[
                    "p.yaml: defaults.nonBreakingSchemaUpdatesBehavior: unknown value \
                   `propagateColumns` (did you mean `propagate_columns`?); expected one of: \
                   ignore, disable_connection, propagate_columns, propagate_fully",
                ],
            ),
            (
                with("defaults:\n  name: \"{source.nme} copy\"\n"),
                &[
                    "p.yaml: defaults.name: unknown placeholder `{source.nme}` (did you mean \
                   `{source.name}`?)",
                ],
            ),
            (
                with("defaults:\n  name: ''\n"),
                &[
                    "p.yaml: defaults.name: is empty; leave `name` out to get \"{source.name} → \
                   {destination.name}\"",
                ],
            ),
            (
                target("source: a\n    prefix: \"{source.name|slug\""),
                &["p.yaml: targets[0].prefix: unclosed `{` at character 1"],
            ),
            (
                target("source: a\n    namespaceFormat: \"{source.name|lower}\""),
                &["p.yaml: targets[0].namespaceFormat: unknown filter `|lower`"],
            ),
            (
                target("source: a\n    name: \"a}b\""),
                &["p.yaml: targets[0].name: unmatched `}` at character 2"],
            ),
        ]);
    }

    #[test]
    fn schedules() {
        let schedule = |s: &str| with(&format!("defaults:\n  schedule: {s}\n"));
        check_cases(&[
            (
                schedule("{ scheduleType: manual, cronExpression: \"0 0 3 * * ?\" }"),
                &[
                    "p.yaml: defaults.schedule.cronExpression: a manual schedule takes no \
                   cronExpression; remove it, or set `scheduleType: cron`",
                ],
            ),
            (
                schedule("{ scheduleType: cron }"),
                &[
                    "p.yaml: defaults.schedule.cronExpression: missing; a cron schedule needs a \
                   Quartz expression",
                ],
            ),
            (
                schedule("{ scheduleType: cron, cronExpression: \"0 0 3 * *\" }"),
                &["p.yaml: defaults.schedule.cronExpression: Cron expression contains 5 parts"],
            ),
            (
                schedule("{ scheduleType: cron, cronExpression: \"0 */5 * * * ?\" }"),
                &[
                    "p.yaml: defaults.schedule.cronExpression: The cron expression 0 */5 * * * ? \
                   is not valid: cron executions must be more than 1 hour apart",
                ],
            ),
            (
                schedule("{ scheduleType: cron, cronExpression: \"0 0 3 * * ? Europe/Paris\" }"),
                &[
                    "p.yaml: defaults.schedule.cronExpression: The cron expression 0 0 3 * * ? \
                   Europe/Paris is not valid: 'Europe/Paris' is not a valid year (a time zone \
                   other than UTC cannot be set through the API)",
                ],
            ),
            (
                schedule("{ scheduleType: basic }"),
                &[
                    "p.yaml: defaults.schedule.scheduleType: `basic` schedules cannot be created \
                   through the Airbyte API",
                ],
            ),
            (
                schedule("{ scheduleType: Cron, cronExpression: \"0 0 3 * * ?\" }"),
                &[
                    "p.yaml: defaults.schedule.scheduleType: unknown value `Cron` (did you mean \
                   `cron`?); expected one of: manual, cron",
                ],
            ),
            (
                schedule("{ cronExpression: \"0 0 3 * * ?\" }"),
                &["p.yaml: defaults.schedule.scheduleType: missing; set `manual`, or `cron`"],
            ),
            (
                target(
                    "source: a\n    schedule: { scheduleType: cron, cronExpression: \"0 0 3 * * *\" }",
                ),
                &[
                    "p.yaml: targets[0].schedule.cronExpression: The cron expression 0 0 3 * * * is \
                   not valid: support for specifying both a day-of-week AND a day-of-month",
                ],
            ),
        ]);
        let cron = |e: &str| {
            load_str(&schedule(&format!(
                "{{ scheduleType: cron, cronExpression: \"{e}\" }}"
            )))
            .unwrap()
            .defaults
            .schedule
            .unwrap()
        };
        assert_eq!(
            cron("0 0 3 * * ? UTC"),
            ConnectionSchedule {
                schedule_type: ScheduleType::Cron,
                cron_expression: Some("0 0 3 * * ?".into())
            }
        );
        assert_eq!(
            cron("0 30 */4 * * ? 2030").cron_expression.as_deref(),
            Some("0 30 */4 * * ? 2030")
        );
        let manual = load_str(&schedule("{ scheduleType: manual }")).unwrap();
        assert_eq!(
            manual.defaults.schedule,
            Some(ConnectionSchedule {
                schedule_type: ScheduleType::Manual,
                cron_expression: None
            })
        );
    }

    #[test]
    fn every_problem_is_reported_together() {
        let text = "\
version: 3
template: shop-template
airbyte:
  url: ftp://x
targets:
  - source: shop-eu
    status: locked
  - match: \"shop-[\"
  - source: shop-eu
    type: postgres
defaults:
  name: \"{source}\"
  schedule: { scheduleType: cron }
existing: update
concurrency: 0
";
        let got = errors(text);
        let paths: Vec<&str> = got
            .iter()
            .map(|e| {
                e.strip_prefix("p.yaml: ")
                    .unwrap()
                    .split(": ")
                    .next()
                    .unwrap()
            })
            .collect();
        assert_eq!(
            paths,
            [
                "version",
                "airbyte.url",
                "targets[0].status",
                "targets[1].match",
                "targets[2].type",
                "targets[2].source",
                "defaults.name",
                "defaults.schedule.cronExpression",
                "existing",
                "concurrency",
            ]
        );
    }

    /// The full report for a plan with one mistake of most kinds, as a user reads it.
    #[test]
    fn snapshot_of_a_plan_with_many_problems() {
        let text = "\
version: 2
template: \"shop-template → Warehouse\"
airbyte:
  url: api.airbyte.com
targets:
  - source: shop-eu
    status: deprecated
  - match: \"shop-{eu,us\"
    exclude: [shop-legacy]
  - source: shop-us
    match: \"shop-*\"
  - source: shop-eu
    prefix: \"{source.name|slugify}_\"
defaults:
  name: \"{source.nam} → {destination.name}\"
  schedule: { scheduleType: cron, cronExpression: \"0 0 3 * * ? America/New_York\" }
  namespaceDefinition: customformat
existing: update
missing_streams: skipp
concurrency: 1000
";
        insta::assert_snapshot!(load_str(text).unwrap_err().to_string());
    }

    #[test]
    fn snapshot_of_secret_keys() {
        let text = "\
version: 1
template: t
airbyte:
  url: https://api.airbyte.com/v1
  clientSecret: do-not-print-me
targets:
  - source: a
    token: do-not-print-me
defaults:
  prefx: x_
";
        let report = load_str(text).unwrap_err().to_string();
        assert!(!report.contains("do-not-print-me"));
        insta::assert_snapshot!(report);
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        let inputs: Vec<Vec<u8>> = vec![
            b"\xff\xfe\x00garbage".to_vec(),
            "\u{feff}".as_bytes().to_vec(),
            b"\x00\x01\x02".to_vec(),
            "[".repeat(100_000).into_bytes(),
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
             c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
             e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
             g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n\
             token: *h\n"
                .as_bytes()
                .to_vec(),
            "version: 1\ntemplate: t\ntargets:\n  - source: a\n".repeat(3).into_bytes(),
            "version: 18446744073709551616\n".as_bytes().to_vec(),
            "{a: ".repeat(200).into_bytes(),
            format!("{{{}}}", "a: [".repeat(60)).into_bytes(),
        ];
        for bytes in inputs {
            let result = parse(Path::new("p.yaml"), &bytes);
            let errors = result.expect_err("hostile input was accepted");
            assert!(!errors.0.is_empty());
            assert!(errors.to_string().starts_with("p.yaml"), "{errors}");
        }
        // A BOM before a valid plan is fine.
        let bom = format!("\u{feff}{}", with(""));
        assert!(parse(Path::new("p.yaml"), bom.as_bytes()).is_ok());
    }

    #[test]
    fn a_valid_plan_becomes_the_model() {
        let text = "\
version: 1
template: \"shop-template → Warehouse\"
airbyte:
  url: https://api.airbyte.com/v1
targets:
  - source: shop-eu
  - source: 3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11
    name: \"EU special\"
    status: inactive
  - match: \"shop-*\"
    type: postgres
    exclude: [\"shop-legacy\"]
  - source: 3c0d1c8e5b7e4a7a9d3e2f1b4b9a7c11
defaults:
  prefix: \"{source.name|slug}_\"
  status: active
  schedule: { scheduleType: cron, cronExpression: \"0 0 3 * * ?\" }
  namespaceDefinition: custom_format
  namespaceFormat: \"${SOURCE_NAMESPACE}\"
  nonBreakingSchemaUpdatesBehavior: propagate_columns
existing: fail
missing_streams: skip
concurrency: 16
";
        let plan = load_str(text).unwrap();
        assert_eq!(plan.file, Path::new("p.yaml"));
        assert_eq!(
            plan.template,
            Reference::Name("shop-template → Warehouse".into())
        );
        assert_eq!(plan.url.as_deref(), Some("https://api.airbyte.com/v1"));
        assert_eq!(plan.existing, ExistingPolicy::Fail);
        assert_eq!(plan.missing_streams, MissingStreamsPolicy::Skip);
        assert_eq!(plan.concurrency, Some(16));

        let paths: Vec<&str> = plan.targets.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(
            paths,
            ["targets[0]", "targets[1]", "targets[2]", "targets[3]"]
        );
        assert!(
            matches!(&plan.targets[0].selector, Selector::Source(Reference::Name(n)) if n == "shop-eu")
        );
        let id = Uuid::parse_str("3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11").unwrap();
        assert!(
            matches!(&plan.targets[1].selector, Selector::Source(Reference::Id(i)) if *i == id)
        );
        // Only the hyphenated form is an id; Airbyte never writes ids any other way.
        assert!(matches!(
            &plan.targets[3].selector,
            Selector::Source(Reference::Name(_))
        ));
        let Selector::Match {
            pattern,
            source_type,
            exclude,
        } = &plan.targets[2].selector
        else {
            panic!("targets[2] is a match");
        };
        assert_eq!(pattern.text, "shop-*");
        assert_eq!(source_type.as_deref(), Some("postgres"));
        assert_eq!(
            exclude.iter().map(|g| g.text.as_str()).collect::<Vec<_>>(),
            ["shop-legacy"]
        );

        let special = &plan.targets[1].overrides;
        assert_eq!(
            special.name.as_ref().map(Template::as_str),
            Some("EU special")
        );
        assert_eq!(special.status, Some(ConnectionStatus::Inactive));
        assert_eq!(plan.targets[0].overrides, Overrides::default());

        let d = &plan.defaults;
        assert_eq!(d.name.as_ref().map(Template::as_str), Some(DEFAULT_NAME));
        assert_eq!(
            d.prefix.as_ref().map(Template::as_str),
            Some("{source.name|slug}_")
        );
        assert_eq!(d.status, Some(ConnectionStatus::Active));
        assert_eq!(
            d.namespace_definition,
            Some(NamespaceDefinition::CustomFormat)
        );
        assert_eq!(
            d.namespace_format.as_ref().map(Template::as_str),
            Some("${SOURCE_NAMESPACE}")
        );
        assert_eq!(
            d.non_breaking_schema_updates_behavior,
            Some(NonBreakingSchemaUpdatesBehavior::PropagateColumns)
        );
        let merged = d.overlaid_with(special);
        assert_eq!(
            merged.name.as_ref().map(Template::as_str),
            Some("EU special")
        );
        assert_eq!(merged.status, Some(ConnectionStatus::Inactive));
        assert_eq!(merged.prefix, d.prefix);
    }

    #[test]
    fn read_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.yaml");
        let errors = load(&missing).unwrap_err();
        let message = errors.to_string();
        assert!(
            message.starts_with(&format!(
                "{}: cannot read the plan file: ",
                missing.display()
            )),
            "{message}"
        );
        let good = dir.path().join("good.yaml");
        std::fs::write(&good, with("")).unwrap();
        assert_eq!(load(&good).unwrap().file, good);
    }

    #[test]
    fn minimal_plan_gets_the_defaults() {
        let plan = load_str(&with("")).unwrap();
        assert_eq!(plan.template, Reference::Name("shop-template".into()));
        assert_eq!(plan.url, None);
        assert_eq!(plan.existing, ExistingPolicy::Skip);
        assert_eq!(plan.missing_streams, MissingStreamsPolicy::Fail);
        assert_eq!(plan.concurrency, None);
        assert_eq!(
            plan.defaults,
            Overrides {
                name: Some(Template::parse(DEFAULT_NAME).unwrap()),
                ..Overrides::default()
            }
        );
        // A name set in `defaults` replaces the default one.
        let named = load_str(&with("defaults:\n  name: \"{source.name}\"\n")).unwrap();
        assert_eq!(named.defaults.name.unwrap().as_str(), "{source.name}");
    }

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

    #[test]
    fn twenty_thousand_targets_load() {
        use std::fmt::Write as _;
        let mut text = String::from("version: 1\ntemplate: t\ntargets:\n");
        for i in 0..20_000 {
            writeln!(text, "  - source: bulk-{i:06}").unwrap();
            if i % 100 == 0 {
                writeln!(
                    text,
                    "  - match: \"bulk-{i:04}*\"\n    name: \"{{source.name}} #{i}\""
                )
                .unwrap();
            }
        }
        let plan = load_str(&text).unwrap();
        assert_eq!(plan.targets.len(), 20_200);
        text.push_str("  - source: bulk-019999\n");
        assert_eq!(
            errors(&text),
            [
                "p.yaml: targets[20200].source: \"bulk-019999\" is already named by \
              targets[20199].source; name each source once"
            ]
        );
    }
}
