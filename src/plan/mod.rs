//! The plan file (SPEC §2): the first stage of the pipeline.
//!
//! `load` reads a YAML plan and checks everything that can be known offline (syntax, keys,
//! enums, placeholders, globs, cron shape), returning a validated [`Plan`]; every problem found
//! is reported, each with its file and line or its YAML path. Nothing here touches the network.
//!
//! The stages, one file each: [`load`] (file → bytes → raw → `Plan`), `raw` (the serde mirror of
//! the file), `secrets` (keys named like credentials), `check` (raw → `Plan`, every semantic
//! problem collected), [`placeholder`] (the `{source.name|slug}` templates) and `schema` (the
//! JSON Schema of plan files, generated from `raw`).

mod check;
mod load;
mod placeholder;
mod raw;
mod schema;
mod secrets;
#[cfg(test)]
mod tests;

pub use check::compile_glob;
pub use load::{load, parse};
pub use placeholder::{Names, PLACEHOLDERS, Template, slug};
pub use schema::schema;

/// The longest tag name Airbyte accepts, in UTF-16 code units (as the JVM counts).
pub const MAX_TAG_NAME: usize = 30;

/// The copy's name when neither `defaults` nor the target sets one: the Airbyte UI's own pattern.
pub const DEFAULT_NAME: &str = "{source.name} → {destination.name}";

use crate::wire::{
    ConnectionSchedule, ConnectionStatus, NamespaceDefinition, NonBreakingSchemaUpdatesBehavior,
};
use globset::GlobMatcher;
use std::fmt;
use std::path::PathBuf;
use uuid::Uuid;

/// A validated plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The file it came from, as given on the command line.
    pub file: PathBuf,
    /// The template connection.
    pub template: Reference,
    /// `airbyte.url`; `--url` and `AIRBYTE_URL` win over it.
    pub url: Option<String>,
    /// `targets`, in file order; never empty.
    ///
    /// Offline, only two `source:` entries with the same id or the same exact name are caught.
    /// A source that a `match` also catches, or that one entry names by id and another by name,
    /// is only known once the sources are listed, in the resolve stage.
    pub targets: Vec<Target>,
    /// `defaults`, with the default name filled in when none is given.
    pub defaults: Overrides,
    pub existing: ExistingPolicy,
    pub missing_streams: MissingStreamsPolicy,
    /// `owner`: the name of the tag that marks this plan's copies (SPEC §9); at most
    /// [`MAX_TAG_NAME`] UTF-16 units, as Airbyte requires.
    pub owner: String,
    /// `prune`: delete owned copies whose source is no longer a target.
    pub prune: bool,
    /// `concurrency`; `--concurrency` wins over it.
    pub concurrency: Option<usize>,
}

/// A connection or source named by id or by exact name. A string that parses as a UUID is an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Id(Uuid),
    Name(String),
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Id(id) => write!(f, "{id}"),
            Reference::Name(name) => write!(f, "\"{name}\""),
        }
    }
}

/// One entry of `targets`.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its YAML path, `targets[2]`, for error messages.
    pub path: String,
    pub selector: Selector,
    /// Per-target keys; they win over `defaults`.
    pub overrides: Overrides,
}

/// How a target entry picks sources.
#[derive(Debug, Clone)]
pub enum Selector {
    /// `source:` one source by id or exact name.
    Source(Reference),
    /// `match:` every source of the template's workspace whose name matches the glob.
    Match {
        pattern: Glob,
        /// `type:` only sources of this `sourceType`.
        source_type: Option<String>,
        /// `exclude:` names to leave out.
        exclude: Vec<Glob>,
        /// `allow_empty:` selecting no source is fine (otherwise it is an error for the entry).
        allow_empty: bool,
    },
}

/// A compiled glob that remembers how it was written.
///
/// Matching is case-sensitive (Airbyte names are), over the whole name; `*`, `?`, `[a-z]`,
/// `{a,b}` as usual, `\` escapes, and `/` is an ordinary character (`*` matches it).
#[derive(Debug, Clone)]
pub struct Glob {
    pub text: String,
    pub matcher: GlobMatcher,
}

impl Glob {
    /// Whether the whole of `name` matches.
    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }
}

/// The keys `defaults` and each target may set. `None` means "not set here".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub name: Option<Template>,
    pub prefix: Option<Template>,
    /// Only `active` or `inactive`.
    pub status: Option<ConnectionStatus>,
    /// Already checked against Airbyte's cron rules; a cron expression is stored without its
    /// trailing ` UTC`, as create and patch store it.
    pub schedule: Option<ConnectionSchedule>,
    pub namespace_definition: Option<NamespaceDefinition>,
    pub namespace_format: Option<Template>,
    pub non_breaking_schema_updates_behavior: Option<NonBreakingSchemaUpdatesBehavior>,
}

impl Overrides {
    /// The copy's name for one target: `name` rendered, else the default name
    /// ([`DEFAULT_NAME`]), which the loader normally fills in already.
    pub fn name_for(&self, names: &Names<'_>) -> String {
        match &self.name {
            Some(name) => name.render(names),
            None => format!("{} → {}", names.source_name, names.destination_name),
        }
    }

    /// These keys, with `over`'s set keys winning.
    #[must_use]
    pub fn overlaid_with(&self, over: &Overrides) -> Overrides {
        Overrides {
            name: over.name.clone().or_else(|| self.name.clone()),
            prefix: over.prefix.clone().or_else(|| self.prefix.clone()),
            status: over.status.or(self.status),
            schedule: over.schedule.clone().or_else(|| self.schedule.clone()),
            namespace_definition: over.namespace_definition.or(self.namespace_definition),
            namespace_format: over
                .namespace_format
                .clone()
                .or_else(|| self.namespace_format.clone()),
            non_breaking_schema_updates_behavior: over
                .non_breaking_schema_updates_behavior
                .or(self.non_breaking_schema_updates_behavior),
        }
    }
}

/// `existing:` what to do when a target's copy already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExistingPolicy {
    /// Bring it in line with the plan (SPEC §8).
    #[default]
    Update,
    /// Leave it; the target is `unchanged` (its drift is still shown).
    Skip,
    /// An error for that target.
    Fail,
}

/// `missing_streams:` what to do when a template stream is absent from a target source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingStreamsPolicy {
    /// An error for that target.
    #[default]
    Fail,
    /// Drop the stream from that copy, with a warning.
    Skip,
}

/// One problem in a plan file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{}: {}", .file.display(), .message)]
    Read { file: PathBuf, message: String },
    /// Syntax and type errors, with line and column.
    #[error(transparent)]
    Yaml(#[from] crate::yaml::YamlError),
    /// A semantic error at a YAML path (`targets[2].match`), with the line and column of its key
    /// (or of the nearest key above it) when known.
    #[error("{}: {path}: {message}", crate::yaml::Place(file, *location))]
    Invalid {
        file: PathBuf,
        location: Option<(usize, usize)>,
        path: String,
        message: String,
    },
}

impl PlanError {
    /// Its line and column, when it has them.
    pub fn location(&self) -> Option<(usize, usize)> {
        match self {
            PlanError::Read { .. } => None,
            PlanError::Yaml(error) => error.location,
            PlanError::Invalid { location, .. } => *location,
        }
    }
}

/// Every problem found in one plan file; never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanErrors(pub Vec<PlanError>);

impl fmt::Display for PlanErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlanErrors {}
