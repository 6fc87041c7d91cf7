//! Owned orphans and whether to prune them (SPEC §9): pure, over what resolve read.
//!
//! An owned orphan is a live connection of the template's workspace that carries the plan's
//! owner tag, has the template's destination, is not the template, and whose source is no longer
//! a target of the plan. [`find`] lists them; [`decide`] says what the run does with them:
//! nothing (they are listed), delete them (`prune: true`, `--prune`), or nothing because the run
//! is targeted (`--target` never prunes). Pruning is refused, and the run stops before any
//! write, when the plan's selection cannot be trusted: its targets resolve to no source at all,
//! or an entry failed to select (a typo in a glob must not delete a fleet).

use crate::select::{ResolvedTarget, SelectError};
use crate::wire::{ConnectionResponse, ConnectionStatus};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// A connection the plan owns, as the report names it: an orphan, or a duplicate
/// ([`crate::duplicates`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnedCopy {
    pub connection_id: Uuid,
    pub name: String,
    pub source_id: Uuid,
    /// `None` when the source is not in the workspace's source list (deleted meanwhile).
    pub source_name: Option<String>,
}

impl OwnedCopy {
    pub fn new(connection: &ConnectionResponse, source_names: &BTreeMap<Uuid, String>) -> Self {
        OwnedCopy {
            connection_id: connection.connection_id,
            name: connection.name.clone(),
            source_id: connection.source_id,
            source_name: source_names.get(&connection.source_id).cloned(),
        }
    }
}

/// A copy the plan owns but no longer names.
pub type Orphan = OwnedCopy;

/// The live connections of the template's workspace that carry the owner tag (`owner`, its id;
/// none yet: nothing can carry it), have the template's destination and are not the template:
/// the only connections a prune may ever delete.
pub fn owned<'a>(
    connections: &'a [ConnectionResponse],
    owner: Option<Uuid>,
    template: &'a ConnectionResponse,
) -> impl Iterator<Item = &'a ConnectionResponse> {
    connections.iter().filter(move |c| {
        owner.is_some_and(|owner| c.tags.iter().any(|t| t.tag_id == owner))
            && c.status != ConnectionStatus::Deprecated
            && c.workspace_id == template.workspace_id
            && c.destination_id == template.destination_id
            && c.connection_id != template.connection_id
    })
}

/// The owned orphans among the workspace's `connections`, by source name then copy name.
/// `owner` is the owner tag's id (none yet: nothing can carry it); `targets` the source ids of
/// every target of the plan (before `--target`); `source_names` names the workspace's sources.
pub fn find(
    connections: &[ConnectionResponse],
    owner: Option<Uuid>,
    template: &ConnectionResponse,
    targets: &BTreeSet<Uuid>,
    source_names: &BTreeMap<Uuid, String>,
) -> Vec<Orphan> {
    let mut orphans: Vec<Orphan> = owned(connections, owner, template)
        .filter(|c| !targets.contains(&c.source_id))
        .map(|c| OwnedCopy::new(c, source_names))
        .collect();
    orphans.sort_by(|a, b| {
        (&a.source_name, &a.name, a.connection_id).cmp(&(&b.source_name, &b.name, b.connection_id))
    });
    orphans
}

/// What a run does with its owned orphans (JSON `prune`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Prune {
    /// Listed, left alone: prune was not asked for.
    #[default]
    Off,
    /// Deleted: `-` rows.
    On,
    /// Listed, left alone: prune was asked for, but a `--target` run never prunes.
    Targeted,
}

/// Why a run that was asked to prune refuses to, before writing anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneRefused {
    #[error(
        "prune refused: the plan's targets resolve to no source, so pruning would delete every \
         copy it owns ({orphans}); a typo in a glob must not delete a fleet. Fix `targets` \
         (nothing was written)"
    )]
    NoTargets { orphans: usize },
    #[error(
        "prune refused: {entry} selects no source it can be sure of ({error}), so the copies it \
         meant would count as orphans. Fix it first (nothing was written)"
    )]
    EntryFailed { entry: String, error: SelectError },
}

/// What to do with `orphans` (how many there are), given whether prune was asked for
/// (`prune: true` or `--prune`), whether the run is `--target`ed, and the plan's targets before
/// targeting. The owned duplicates (`crate::duplicates`) follow the same decision, but never make
/// it refuse: their sources are targets for sure, whatever an entry failed to select.
pub fn decide(
    asked: bool,
    targeted: bool,
    targets: &[ResolvedTarget],
    orphans: usize,
) -> Result<Prune, PruneRefused> {
    if !asked {
        return Ok(Prune::Off);
    }
    if targeted {
        return Ok(Prune::Targeted);
    }
    // Nothing to delete: nothing to refuse.
    if orphans == 0 {
        return Ok(Prune::On);
    }
    if let Some((entry, error)) = targets.iter().find_map(|t| match &t.source {
        Err(error) => Some((t.entry.clone(), error.clone())),
        Ok(_) => None,
    }) {
        return Err(PruneRefused::EntryFailed { entry, error });
    }
    if targets.is_empty() {
        return Err(PruneRefused::NoTargets { orphans });
    }
    Ok(Prune::On)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::select::{EmptyReason, SourceSummary};
    use serde_json::json;

    pub(crate) const OWNER: u128 = 0x7a9;

    /// A connection `id` of `source` to `destination` carrying `tags`, in workspace 1, made at 0.
    pub(crate) fn connection(
        id: u128,
        source: u128,
        destination: u128,
        tags: &[u128],
    ) -> ConnectionResponse {
        let tags: Vec<_> = tags
            .iter()
            .map(|t| {
                json!({"tagId": Uuid::from_u128(*t), "workspaceId": Uuid::from_u128(1),
                       "name": format!("t{t}"), "color": "000000"})
            })
            .collect();
        serde_json::from_value(json!({
            "connectionId": Uuid::from_u128(id), "name": format!("copy {id}"),
            "sourceId": Uuid::from_u128(source), "destinationId": Uuid::from_u128(destination),
            "workspaceId": Uuid::from_u128(1), "status": "active",
            "schedule": {"scheduleType": "manual"}, "configurations": {"streams": []},
            "createdAt": 0, "tags": tags
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn only_owned_copies_of_sources_no_longer_targeted() {
        let template = connection(1, 10, 99, &[OWNER]);
        let mut deleted = connection(8, 16, 99, &[OWNER]);
        deleted.status = ConnectionStatus::Deprecated;
        let mut elsewhere = connection(9, 17, 99, &[OWNER]);
        elsewhere.workspace_id = Uuid::from_u128(2);
        let all = vec![
            template.clone(),
            connection(2, 11, 99, &[OWNER]), // a target's copy: kept
            connection(3, 12, 99, &[OWNER, 5]), // orphan
            connection(4, 13, 99, &[5]),     // not owned: never
            connection(5, 14, 98, &[OWNER]), // another destination
            connection(6, 15, 99, &[OWNER]), // orphan, source unknown
            connection(7, 12, 99, &[]),      // same source, not owned
            deleted,
            elsewhere,
        ];
        let targets: BTreeSet<Uuid> = [Uuid::from_u128(11)].into();
        let names: BTreeMap<Uuid, String> = [(Uuid::from_u128(12), "shop-a".to_string())].into();
        let found = find(
            &all,
            Some(Uuid::from_u128(OWNER)),
            &template,
            &targets,
            &names,
        );
        let ids: Vec<(u128, Option<&str>)> = found
            .iter()
            .map(|o| (o.connection_id.as_u128(), o.source_name.as_deref()))
            .collect();
        assert_eq!(ids, [(6, None), (3, Some("shop-a"))]);
        assert!(find(&all, None, &template, &targets, &names).is_empty());
    }

    /// What, asked, targeted, the targets, how many orphans, and the decision.
    type Case<'a> = (&'a str, bool, bool, &'a [ResolvedTarget], usize, &'a str);

    #[test]
    fn decision_table() {
        let ok = ResolvedTarget {
            entry: "targets[0]".into(),
            source: Ok(SourceSummary {
                id: Uuid::from_u128(11),
                name: "shop-a".into(),
                source_type: "postgres".into(),
            }),
            overrides: std::sync::Arc::default(),
        };
        let empty = ResolvedTarget {
            entry: "targets[1]".into(),
            source: Err(SelectError::EmptyMatch {
                pattern: "shpo-*".into(),
                reason: EmptyReason::NoName {
                    nearest: Vec::new(),
                },
            }),
            overrides: std::sync::Arc::default(),
        };
        let both = [ok.clone(), empty.clone()];
        let cases: &[Case] = &[
            ("not asked", false, false, &both, 3, "Off"),
            ("asked", true, false, std::slice::from_ref(&ok), 3, "On"),
            (
                "asked, targeted",
                true,
                true,
                std::slice::from_ref(&ok),
                3,
                "Targeted",
            ),
            ("asked, targeted, broken", true, true, &both, 3, "Targeted"),
            (
                "asked, an entry failed",
                true,
                false,
                &both,
                3,
                "prune refused: targets[1] selects no source it can be sure of (match \"shpo-*\" \
                 selects no source: no source name matches it; fix the glob, or set \
                 `allow_empty: true` on the entry), so the copies it meant would count as \
                 orphans. Fix it first (nothing was written)",
            ),
            (
                "asked, no targets",
                true,
                false,
                &[],
                3,
                "prune refused: the plan's targets resolve to no source, so pruning would delete \
                 every copy it owns (3); a typo in a glob must not delete a fleet. Fix `targets` \
                 (nothing was written)",
            ),
            (
                "asked, no targets, nothing owned",
                true,
                false,
                &[],
                0,
                "On",
            ),
        ];
        for (what, asked, targeted, targets, orphans, want) in cases {
            let got = match decide(*asked, *targeted, targets, *orphans) {
                Ok(prune) => format!("{prune:?}"),
                Err(refused) => refused.to_string(),
            };
            assert_eq!(got, *want, "{what}");
        }
    }
}
