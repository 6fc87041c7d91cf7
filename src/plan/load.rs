//! Reading a plan file into a validated [`Plan`]. (Stub: replaced by the plan work.)

use super::{Plan, PlanError, PlanErrors};
use std::path::Path;

pub fn load(path: &Path) -> Result<Plan, PlanErrors> {
    let bytes = std::fs::read(path).map_err(|e| {
        PlanErrors(vec![PlanError::Read {
            file: path.to_path_buf(),
            message: e.to_string(),
        }])
    })?;
    parse(path, &bytes)
}

pub fn parse(path: &Path, _bytes: &[u8]) -> Result<Plan, PlanErrors> {
    Err(PlanErrors(vec![PlanError::Read {
        file: path.to_path_buf(),
        message: "not implemented".into(),
    }]))
}
