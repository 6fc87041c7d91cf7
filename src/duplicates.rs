//! Owned duplicates: pure, over what resolve read (SPEC §4 and §9, issue 12).
//!
//! Races the lease cannot see (a run of an older replicate, a create that landed after its
//! client gave up on it) can leave a target with two or more live copies that carry the plan's
//! owner tag. The oldest of them, by `createdAt` and then by connection id, is the target's copy:
//! drift and updates are decided against it. The others are its *duplicates*. Airbyte's
//! `createdAt` counts seconds, so two copies made in the same second are told apart by their
//! ids alone, and which of them stays is arbitrary but the same on every run.
//!
//! [`find`] lists them; [`without`] takes them out of the connections a target's copy is chosen
//! from, so a target with duplicates is never ambiguous. A connection without the owner tag is
//! never a duplicate: with one owned copy among several candidates, the owned one is the copy
//! (`existing`), and the others stay, whatever the plan says. Only a target's copies can be
//! duplicates: the copies of a source that is no longer a target are all orphans.
//!
//! Whether they are deleted is the prune decision ([`crate::orphans::decide`]): with prune on
//! they become `delete` rows; otherwise they are listed and the run fails, since a fleet with two
//! copies of one source syncs it twice, and nothing is deleted unless the user said so.

use crate::orphans::{self, OwnedCopy, Prune};
use crate::wire::ConnectionResponse;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use uuid::Uuid;

/// An owned copy of a target that is not its oldest one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Duplicate {
    #[serde(flatten)]
    pub copy: OwnedCopy,
    /// The copy it duplicates, which stays: the target's oldest owned copy.
    pub duplicate_of: Uuid,
}

/// The owned duplicates among the workspace's `connections`, by source name, then from the
/// oldest to the newest. `owner` is the owner tag's id (none yet: nothing can carry it);
/// `targets` the source ids of every target of the plan (before `--target`); `source_names`
/// names the workspace's sources.
pub fn find(
    connections: &[ConnectionResponse],
    owner: Option<Uuid>,
    template: &ConnectionResponse,
    targets: &BTreeSet<Uuid>,
    source_names: &BTreeMap<Uuid, String>,
) -> Vec<Duplicate> {
    let mut by_source: BTreeMap<Uuid, Vec<&ConnectionResponse>> = BTreeMap::new();
    for copy in orphans::owned(connections, owner, template) {
        if targets.contains(&copy.source_id) {
            by_source.entry(copy.source_id).or_default().push(copy);
        }
    }
    let mut duplicates = Vec::new();
    for copies in by_source.values_mut() {
        copies.sort_by_key(|c| (c.created_at, c.connection_id));
        if let Some((kept, newer)) = copies.split_first() {
            duplicates.extend(newer.iter().map(|c| Duplicate {
                copy: OwnedCopy::new(c, source_names),
                duplicate_of: kept.connection_id,
            }));
        }
    }
    // Stable: each source's duplicates stay oldest first.
    duplicates.sort_by(|a, b| {
        (&a.copy.source_name, a.copy.source_id).cmp(&(&b.copy.source_name, b.copy.source_id))
    });
    duplicates
}

/// `connections` without the `duplicates`: the candidates for each target's copy.
pub fn without(
    mut connections: Vec<ConnectionResponse>,
    duplicates: &[Duplicate],
) -> Vec<ConnectionResponse> {
    let gone: HashSet<Uuid> = duplicates.iter().map(|d| d.copy.connection_id).collect();
    connections.retain(|c| !gone.contains(&c.connection_id));
    connections
}

/// The run's warning when it leaves `count` duplicates in place (prune off, or a `--target`
/// run), which fails it; `None` when it deletes them or there are none.
pub fn left_in_place(count: usize, prune: Prune) -> Option<String> {
    let why = match prune {
        Prune::On => return None,
        _ if count == 0 => return None,
        Prune::Off => "prune: true or --prune deletes them",
        Prune::Targeted => "not pruned: a --target run never prunes",
    };
    Some(format!(
        "{} owned by this plan left in place ({why}); the run fails until each source has one \
         copy",
        counted(count)
    ))
}

/// `1 duplicate copy`, `2 duplicate copies`.
pub fn counted(count: usize) -> String {
    if count == 1 {
        "1 duplicate copy".to_string()
    } else {
        format!("{count} duplicate copies")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::orphans::tests::{OWNER, connection};
    use crate::wire::ConnectionStatus;

    /// A copy: its id, source, when it was made, whether it carries the owner tag.
    fn made(id: u128, source: u128, created_at: i64, owned: bool) -> ConnectionResponse {
        let tags: &[u128] = if owned { &[OWNER] } else { &[5] };
        let mut c = connection(id, source, 99, tags);
        c.created_at = created_at;
        c
    }

    /// What, the connections besides the template, and the (duplicate, kept) pairs found.
    type Case = (
        &'static str,
        Vec<ConnectionResponse>,
        &'static [(u128, u128)],
    );

    #[test]
    fn the_oldest_owned_copy_stays_and_the_others_are_duplicates() {
        let template = made(1, 10, 0, true);
        let mut deleted = made(22, 11, 1, true);
        deleted.status = ConnectionStatus::Deprecated;
        let mut elsewhere = made(23, 11, 1, true);
        elsewhere.workspace_id = Uuid::from_u128(2);
        let mut other_destination = made(24, 11, 1, true);
        other_destination.destination_id = Uuid::from_u128(98);
        let cases: Vec<Case> = vec![
            ("one owned copy", vec![made(20, 11, 5, true)], &[]),
            (
                "the newer of two",
                vec![made(20, 11, 9, true), made(21, 11, 5, true)],
                &[(20, 21)],
            ),
            (
                "made in the same second: the id decides",
                vec![made(21, 11, 5, true), made(20, 11, 5, true)],
                &[(21, 20)],
            ),
            (
                "three: oldest first, then the id",
                vec![
                    made(20, 11, 7, true),
                    made(21, 11, 7, true),
                    made(22, 11, 3, true),
                ],
                &[(20, 22), (21, 22)],
            ),
            (
                "a copy without the owner tag is never one",
                vec![made(20, 11, 9, true), made(21, 11, 1, false)],
                &[],
            ),
            (
                "an untagged older copy does not make the owned one a duplicate",
                vec![
                    made(20, 11, 9, true),
                    made(21, 11, 8, true),
                    made(22, 11, 1, false),
                ],
                &[(20, 21)],
            ),
            (
                "copies of a source no longer a target are orphans",
                vec![made(20, 12, 9, true), made(21, 12, 5, true)],
                &[],
            ),
            (
                "deleted, elsewhere, other destination: not copies",
                vec![made(20, 11, 9, true), deleted, elsewhere, other_destination],
                &[],
            ),
            (
                "the template is never one, even owned",
                vec![made(20, 10, 9, true)],
                &[],
            ),
            (
                "by source name",
                vec![
                    made(30, 13, 2, true),
                    made(31, 13, 1, true),
                    made(20, 11, 2, true),
                    made(21, 11, 1, true),
                ],
                &[(20, 21), (30, 31)],
            ),
        ];
        // Source 10 is the template's; 12 is not a target.
        let targets: BTreeSet<Uuid> = [10, 11, 13].map(Uuid::from_u128).into();
        let names: BTreeMap<Uuid, String> = [(11, "shop-a"), (13, "shop-b")]
            .map(|(id, name)| (Uuid::from_u128(id), name.to_string()))
            .into();
        let owner = Some(Uuid::from_u128(OWNER));
        let mut failures = Vec::new();
        for (what, mut connections, want) in cases {
            connections.push(template.clone());
            let got: Vec<(u128, u128)> = find(&connections, owner, &template, &targets, &names)
                .iter()
                .map(|d| (d.copy.connection_id.as_u128(), d.duplicate_of.as_u128()))
                .collect();
            if got != want {
                failures.push(format!("{what}: got {got:?}, want {want:?}"));
            }
            assert!(
                find(&connections, None, &template, &targets, &names).is_empty(),
                "{what}: no owner tag, no duplicates"
            );
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn the_duplicates_are_no_candidates() {
        let template = made(1, 10, 0, true);
        let all = vec![
            template.clone(),
            made(20, 11, 9, true),
            made(21, 11, 5, true),
            made(22, 11, 1, false),
        ];
        let targets: BTreeSet<Uuid> = [Uuid::from_u128(11)].into();
        let duplicates = find(
            &all,
            Some(Uuid::from_u128(OWNER)),
            &template,
            &targets,
            &BTreeMap::new(),
        );
        let left: Vec<u128> = without(all, &duplicates)
            .iter()
            .map(|c| c.connection_id.as_u128())
            .collect();
        assert_eq!(left, [1, 21, 22]);
    }

    #[test]
    fn the_warning_when_left_in_place() {
        assert_eq!(
            left_in_place(2, Prune::Off).as_deref(),
            Some(
                "2 duplicate copies owned by this plan left in place (prune: true or --prune \
                 deletes them); the run fails until each source has one copy"
            )
        );
        assert_eq!(
            left_in_place(1, Prune::Targeted).as_deref(),
            Some(
                "1 duplicate copy owned by this plan left in place (not pruned: a --target run \
                 never prunes); the run fails until each source has one copy"
            )
        );
        assert_eq!(left_in_place(3, Prune::On), None);
        assert_eq!(left_in_place(0, Prune::Off), None);
    }
}
