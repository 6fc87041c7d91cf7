//! Reading a plan file into a validated [`Plan`] (SPEC §2).
//!
//! Two steps. First, `yaml::parse` reads the bytes into the raw structs of [`super::raw`], which
//! mirror the file; syntax and type errors stop here with `file:line:column` (and keys named like
//! secrets are looked for, [`super::secrets`]). Then [`super::check`] checks the raw plan key by
//! key and collects every semantic problem with its YAML path, so one run reports them all.

use super::check::Checker;
use super::raw::RawPlan;
use super::secrets::parse_failure;
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
