//! Which copies already exist (SPEC §4): pure, over the workspace's connection list.
//!
//! A target's copy is the non-deleted connection with the target's `sourceId` and the template's
//! `destinationId`; if several, the one that carries the plan's owner tag (resolve has taken its
//! owned duplicates out, so at most one does), else the one with the rendered name; if several
//! and none has that name, the target cannot be decided and the candidates are named.

use crate::wire::{ConnectionResponse, ConnectionStatus};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// The sources that have a candidate copy into `destination` among `connections`: a live (not
/// deleted) connection from them into it.
pub fn sources_into(connections: &[ConnectionResponse], destination: Uuid) -> HashSet<Uuid> {
    connections
        .iter()
        .filter(|c| is_candidate(c) && c.destination_id == destination)
        .map(|c| c.source_id)
        .collect()
}

/// Whether a connection can be a copy at all: a deleted one never is.
fn is_candidate(connection: &ConnectionResponse) -> bool {
    connection.status != ConnectionStatus::Deprecated
}

/// The workspace's live connections, indexed by (source, destination).
pub struct ExistingCopies<'a> {
    by_pair: HashMap<(Uuid, Uuid), Vec<&'a ConnectionResponse>>,
    /// The owner tag's id: a candidate that carries it is the copy.
    owner: Option<Uuid>,
}

/// What [`ExistingCopies::find`] found for one target.
#[derive(Debug, PartialEq)]
pub enum Existing<'a> {
    None,
    One(&'a ConnectionResponse),
    /// Several candidates, none with the expected name.
    Ambiguous(Vec<&'a ConnectionResponse>),
}

impl<'a> ExistingCopies<'a> {
    pub fn new(connections: &'a [ConnectionResponse]) -> Self {
        let mut by_pair: HashMap<(Uuid, Uuid), Vec<&ConnectionResponse>> = HashMap::new();
        for c in connections {
            if is_candidate(c) {
                by_pair
                    .entry((c.source_id, c.destination_id))
                    .or_default()
                    .push(c);
            }
        }
        ExistingCopies {
            by_pair,
            owner: None,
        }
    }

    /// The same, where the one candidate that carries the owner tag `owner` (its id) is the copy.
    #[must_use]
    pub fn owned_by(mut self, owner: Option<Uuid>) -> Self {
        self.owner = owner;
        self
    }

    /// The copy of `source` into `destination`, preferring the one that carries the owner tag,
    /// then the one called `name`.
    pub fn find(&self, source: Uuid, destination: Uuid, name: &str) -> Existing<'a> {
        match self.by_pair.get(&(source, destination)).map(Vec::as_slice) {
            None | Some([]) => Existing::None,
            Some([one]) => Existing::One(one),
            Some(many) => {
                let owned: Vec<_> = many
                    .iter()
                    .filter(|c| {
                        self.owner
                            .is_some_and(|o| c.tags.iter().any(|t| t.tag_id == o))
                    })
                    .collect();
                let named: Vec<_> = many.iter().filter(|c| c.name == name).collect();
                match (owned.as_slice(), named.as_slice()) {
                    ([one], _) | ([], [one]) => Existing::One(one),
                    _ => Existing::Ambiguous(many.to_vec()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn connection(n: u128, source: u128, name: &str, status: &str) -> ConnectionResponse {
        serde_json::from_value(json!({
            "connectionId": Uuid::from_u128(n), "name": name,
            "sourceId": Uuid::from_u128(source), "destinationId": Uuid::from_u128(99),
            "workspaceId": Uuid::from_u128(1), "status": status,
            "schedule": {"scheduleType": "manual"}, "configurations": {"streams": []},
            "createdAt": 0, "tags": []
        }))
        .unwrap()
    }

    #[test]
    fn finds_by_pair_then_by_name() {
        let dest = Uuid::from_u128(99);
        let all = vec![
            connection(1, 10, "a → W", "active"),
            connection(2, 11, "b → W", "inactive"),
            connection(3, 11, "b (old) → W", "active"),
            connection(4, 12, "c → W", "deprecated"),
            connection(5, 13, "x", "active"),
            connection(6, 13, "y", "active"),
        ];
        let copies = ExistingCopies::new(&all);
        let id = |e: Existing| match e {
            Existing::One(c) => c.connection_id.as_u128(),
            Existing::None => 0,
            Existing::Ambiguous(v) => 1000 + v.len() as u128,
        };
        assert_eq!(id(copies.find(Uuid::from_u128(10), dest, "other")), 1);
        assert_eq!(id(copies.find(Uuid::from_u128(11), dest, "b → W")), 2);
        assert_eq!(
            id(copies.find(Uuid::from_u128(12), dest, "c → W")),
            0,
            "deleted copies do not count"
        );
        assert_eq!(id(copies.find(Uuid::from_u128(13), dest, "z")), 1002);
        assert_eq!(
            id(copies.find(Uuid::from_u128(10), Uuid::from_u128(98), "a → W")),
            0
        );
    }

    #[test]
    fn the_owned_candidate_is_the_copy_whatever_its_name() {
        let dest = Uuid::from_u128(99);
        let owner = Uuid::from_u128(0x7a9);
        let tagged = |n: u128, source: u128, name: &str| {
            let mut c = connection(n, source, name, "active");
            c.tags = serde_json::from_value(json!([{"tagId": owner, "workspaceId":
                Uuid::from_u128(1), "name": "replicate:x", "color": "4F46E5"}]))
            .unwrap();
            c
        };
        let all = vec![
            tagged(1, 10, "a (old name)"),
            connection(2, 10, "a → W", "active"),
            connection(3, 11, "x", "active"),
            connection(4, 11, "y", "active"),
            tagged(5, 12, "c → W"),
            tagged(6, 12, "c → W"),
        ];
        let id = |e: Existing| match e {
            Existing::One(c) => c.connection_id.as_u128(),
            Existing::None => 0,
            Existing::Ambiguous(v) => 1000 + v.len() as u128,
        };
        let copies = ExistingCopies::new(&all).owned_by(Some(owner));
        let cases = [
            (10, "a → W", 1, "owned beats named"),
            (11, "z", 1002, "none owned, none named: ambiguous as before"),
            (11, "y", 4, "none owned: the name decides"),
            (
                12,
                "c → W",
                1002,
                "two owned (duplicates left in): never a guess",
            ),
        ];
        for (source, name, want, what) in cases {
            assert_eq!(
                id(copies.find(Uuid::from_u128(source), dest, name)),
                want,
                "{what}"
            );
        }
        let unowned = ExistingCopies::new(&all);
        assert_eq!(
            id(unowned.find(Uuid::from_u128(10), dest, "a → W")),
            2,
            "without an owner tag, the name decides"
        );
    }
}
