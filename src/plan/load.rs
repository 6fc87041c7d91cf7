//! Reading a plan file into a validated [`Plan`] (SPEC §2).
//!
//! Two steps. First, `yaml::parse` reads the bytes into the raw structs of [`super::raw`], which
//! mirror the file; then [`super::check`] checks the raw plan key by key. A valid plan is read
//! that way, once.
//!
//! A plan with a problem is read a second time, with `yaml::parse_all`, to report every problem
//! at once, each with `file:line:column`: every unknown key (keys named like secrets said to be
//! credentials, [`super::secrets`]), the syntax or type error that stops the parse, if any, and,
//! when the file parsed, every semantic problem, at the line of its key. The slower read is only
//! for files known to be wrong.

use super::check::Checker;
use super::raw::RawPlan;
use super::secrets::screen_secrets;
use super::{Plan, PlanError, PlanErrors};
use crate::yaml;
use std::path::Path;

/// Reads and validates the plan file at `path`, a regular file within the input-size limit
/// ([`crate::input`]). An I/O error names the file.
pub fn load(path: &Path) -> Result<Plan, PlanErrors> {
    let bytes = crate::input::read(path).map_err(|e| {
        PlanErrors(vec![PlanError::Read {
            file: path.to_path_buf(),
            message: format!("cannot read the plan file: {e}"),
        }])
    })?;
    parse(path, &bytes)
}

/// Validates a plan given as bytes; `path` only names it in errors and in [`Plan::file`].
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Plan, PlanErrors> {
    let first = match yaml::parse::<RawPlan>(path, bytes) {
        Ok(raw) => {
            let mut check = Checker {
                file: path,
                keys: None,
                errors: Vec::new(),
            };
            match check.plan(raw) {
                Some(plan) if check.errors.is_empty() => return Ok(plan),
                _ => check.errors,
            }
        }
        Err(error) => vec![PlanError::Yaml(error)],
    };
    let all = every_problem(path, bytes);
    // Both reads see the same file; the first one's errors only stand in if the second found none.
    Err(PlanErrors(if all.is_empty() { first } else { all }))
}

/// Every problem of a plan known to have one, in the order of the file (those without a line,
/// such as a missing key, first).
fn every_problem(path: &Path, bytes: &[u8]) -> Vec<PlanError> {
    let parsed = yaml::parse_all::<RawPlan>(path, bytes);
    let mut errors = screen_secrets(path, bytes, parsed.errors, &parsed.keys);
    if let Some(raw) = parsed.value {
        let mut check = Checker {
            file: path,
            keys: Some(&parsed.keys),
            errors: Vec::new(),
        };
        check.plan(raw);
        errors.append(&mut check.errors);
    }
    errors.sort_by_key(PlanError::location);
    errors
}
