//! What one target needs: the pure decision between the desired body and what exists.
//!
//! [`decide_existing`] takes a target's desired body and its existing copy and says `Unchanged`,
//! `Update` (with the patch), or `Invalid`; or that the streams differ and cannot be decided
//! without the target's catalog, in which case the caller reads it, builds the body again with
//! it and asks once more. A target without a copy is a `Create` once its catalog-checked body is
//! built; a copy the plan no longer names, or an owned duplicate of a target's copy, is a
//! `Delete`.

use super::{Change, Drift, diff};
use crate::plan::ExistingPolicy;
use crate::select::SelectError;
use crate::wire::{
    ConnectionCreateRequest, ConnectionPatchRequest, ConnectionResponse, ConnectionStatus,
};
use uuid::Uuid;

/// What the plan would do for one target (SPEC §5 `action`), with what the write needs.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetPlan {
    /// Its copy is in line; or differs and `existing: skip` leaves it (`drift` says how).
    Unchanged { connection_id: Uuid, drift: Drift },
    /// No copy yet: the body to post, checked against the target's catalog.
    Create { body: ConnectionCreateRequest },
    /// The copy differs: the fields to patch and every change, for the preview.
    Update {
        connection_id: Uuid,
        patch: ConnectionPatchRequest,
        drift: Drift,
    },
    /// An owned copy the plan no longer names (SPEC §9), or, with `duplicate_of`, an owned
    /// duplicate of a target's copy (that one's id; `crate::duplicates`).
    Delete {
        connection_id: Uuid,
        duplicate_of: Option<Uuid>,
    },
    /// Nothing can be done for it; the reason.
    Invalid(TargetError),
}

impl TargetPlan {
    /// Whether apply writes anything for it.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            TargetPlan::Create { .. } | TargetPlan::Update { .. } | TargetPlan::Delete { .. }
        )
    }

    /// What the diff could not compare (a masked mapper secret), for its row's warnings.
    pub fn drift_warnings(&self) -> &[String] {
        match self {
            TargetPlan::Unchanged { drift, .. } | TargetPlan::Update { drift, .. } => {
                &drift.warnings
            }
            _ => &[],
        }
    }

    /// The changes shown under its row.
    pub fn changes(&self) -> &[Change] {
        match self {
            TargetPlan::Unchanged { drift, .. } | TargetPlan::Update { drift, .. } => {
                &drift.changes
            }
            _ => &[],
        }
    }
}

/// Why a target cannot be planned or written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TargetError {
    /// The plan entry selected no source.
    #[error("{entry}: {error}")]
    Select { entry: String, error: SelectError },
    #[error(
        "a copy already exists: \"{name}\" ({connection_id}), and the plan says existing: fail"
    )]
    Exists { name: String, connection_id: Uuid },
    #[error("{}", ambiguous(destination, name, candidates))]
    AmbiguousCopies {
        destination: String,
        /// The copy's name as the plan renders it.
        name: String,
        candidates: Vec<(String, Uuid)>,
    },
    #[error("reading the source's catalog: {0}")]
    Catalog(String),
    /// The copy cannot be built: every reason (a stream the source lacks, a schedule the API
    /// cannot create, …).
    #[error("{}", .0.join("; "))]
    Build(Vec<String>),
    #[error(
        "the copy \"{name}\" ({connection_id}) is locked (Airbyte disabled it, e.g. for billing) \
         and cannot be updated; it differs in: {fields}"
    )]
    Locked {
        name: String,
        connection_id: Uuid,
        fields: String,
    },
}

/// Why a target with several copies cannot be decided: how many there are, how many carry the
/// plan's name, and their ids.
fn ambiguous(destination: &str, name: &str, candidates: &[(String, Uuid)]) -> String {
    let named = candidates.iter().filter(|(n, _)| n == name).count();
    let which = match (named, candidates.len()) {
        (0, _) => format!("none named \"{name}\""),
        (2, 2) => format!("both named \"{name}\""),
        (n, all) if n == all => format!("all named \"{name}\""),
        (n, _) => format!("{n} of them named \"{name}\""),
    };
    let listed: Vec<String> = candidates
        .iter()
        .map(|(name, id)| format!("\"{name}\" ({id})"))
        .collect();
    format!(
        "{} connections already copy this source to {destination}, {which}: {}; delete or rename \
         all but one",
        candidates.len(),
        listed.join(", ")
    )
}

/// What the existing copy of a target needs, or that its catalog must be read first.
// Short-lived, one per target at a time: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Decided(TargetPlan),
    /// The streams differ from a body built without the catalog: read it, build the body with
    /// it, and decide again with `catalog_read` set.
    NeedsCatalog,
}

/// Decides a target whose copy exists. `desired` is built with the target's catalog when
/// `catalog_read`, without it otherwise.
pub fn decide_existing(
    desired: &ConnectionCreateRequest,
    copy: &ConnectionResponse,
    policy: ExistingPolicy,
    catalog_read: bool,
) -> Decision {
    let connection_id = copy.connection_id;
    if policy == ExistingPolicy::Fail {
        return Decision::Decided(TargetPlan::Invalid(TargetError::Exists {
            name: copy.name.clone(),
            connection_id,
        }));
    }
    let drift = diff(desired, copy);
    if drift.is_empty() {
        return Decision::Decided(TargetPlan::Unchanged {
            connection_id,
            drift,
        });
    }
    if drift.streams_differ() && !catalog_read {
        return Decision::NeedsCatalog;
    }
    Decision::Decided(match policy {
        ExistingPolicy::Skip => TargetPlan::Unchanged {
            connection_id,
            drift,
        },
        _ if copy.status == ConnectionStatus::Locked => TargetPlan::Invalid(TargetError::Locked {
            name: copy.name.clone(),
            connection_id,
            fields: drift.fields().join(", "),
        }),
        _ => TargetPlan::Update {
            connection_id,
            patch: drift.patch(desired, copy),
            drift,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn copy(status: &str, cron: &str, sync_mode: &str) -> ConnectionResponse {
        serde_json::from_value(json!({
            "connectionId": "c0000000-0000-4000-8000-0000000000e1", "name": "shop-eu → W",
            "sourceId": "5e0a1c8e-0000-4000-8000-0000000000e1",
            "destinationId": "de571000-0000-4000-8000-000000000001",
            "workspaceId": "a0000000-0000-4000-8000-000000000001", "status": status,
            "schedule": {"scheduleType": "cron", "cronExpression": format!("{cron} UTC")},
            "configurations": {"streams": [{"name": "orders", "syncMode": sync_mode}]},
            "createdAt": 0, "tags": []
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn desired(cron: &str, sync_mode: &str) -> ConnectionCreateRequest {
        serde_json::from_value(json!({
            "name": "shop-eu → W",
            "sourceId": "5e0a1c8e-0000-4000-8000-0000000000e1",
            "destinationId": "de571000-0000-4000-8000-000000000001",
            "schedule": {"scheduleType": "cron", "cronExpression": cron},
            "status": "active",
            "configurations": {"streams": [{"name": "orders", "syncMode": sync_mode}]}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The decision, in a word, with the patched fields for an update.
    fn outcome(decision: &Decision) -> String {
        match decision {
            Decision::NeedsCatalog => "needs catalog".into(),
            Decision::Decided(TargetPlan::Unchanged { drift, .. }) if drift.is_empty() => {
                "unchanged".into()
            }
            Decision::Decided(TargetPlan::Unchanged { drift, .. }) => {
                format!("unchanged, drifted in {}", drift.fields().join(", "))
            }
            Decision::Decided(TargetPlan::Update { patch, .. }) => {
                let patch = serde_json::to_value(patch).unwrap_or(Value::Null);
                let keys: Vec<&str> = patch
                    .as_object()
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                format!("update {}", keys.join(", "))
            }
            Decision::Decided(TargetPlan::Invalid(e)) => format!("invalid: {e}"),
            Decision::Decided(other) => format!("{other:?}"),
        }
    }

    #[test]
    fn decision_table() {
        let (a, b) = ("0 0 2 * * ?", "0 0 6 * * ?");
        let (full, incr) = ("full_refresh_overwrite", "incremental_append");
        let cases = [
            (
                "in line",
                copy("active", a, full),
                desired(a, full),
                ExistingPolicy::Update,
                false,
                "unchanged",
            ),
            (
                "schedule drifted",
                copy("active", a, full),
                desired(b, full),
                ExistingPolicy::Update,
                false,
                "update schedule",
            ),
            (
                "streams drifted, no catalog yet",
                copy("active", a, full),
                desired(a, incr),
                ExistingPolicy::Update,
                false,
                "needs catalog",
            ),
            (
                "streams drifted, catalog read",
                copy("active", a, full),
                desired(a, incr),
                ExistingPolicy::Update,
                true,
                "update configurations",
            ),
            (
                "skip shows drift, writes nothing",
                copy("active", a, full),
                desired(b, full),
                ExistingPolicy::Skip,
                false,
                "unchanged, drifted in schedule",
            ),
            (
                "skip still needs the catalog to tell stream drift",
                copy("active", a, full),
                desired(a, incr),
                ExistingPolicy::Skip,
                false,
                "needs catalog",
            ),
            (
                "fail",
                copy("active", a, full),
                desired(a, full),
                ExistingPolicy::Fail,
                false,
                "invalid: a copy already exists: \"shop-eu → W\" (c0000000-0000-4000-8000-0000000000e1), and the plan says existing: fail",
            ),
            (
                "locked and in line",
                copy("locked", a, full),
                desired(a, full),
                ExistingPolicy::Update,
                false,
                "unchanged",
            ),
            (
                "locked and drifted",
                copy("locked", a, full),
                desired(b, full),
                ExistingPolicy::Update,
                false,
                "invalid: the copy \"shop-eu → W\" (c0000000-0000-4000-8000-0000000000e1) is locked (Airbyte disabled it, e.g. for billing) and cannot be updated; it differs in: schedule",
            ),
        ];
        let mut failures = Vec::new();
        for (what, copy, desired, policy, catalog_read, want) in cases {
            let got = outcome(&decide_existing(&desired, &copy, policy, catalog_read));
            if got != want {
                failures.push(format!("{what}:\n  got  {got}\n  want {want}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
