//! Which copies already exist (SPEC §4): pure, over the workspace's connection list.
//!
//! A target's copy is the non-deleted connection with the target's `sourceId` and the template's
//! `destinationId`; if several, the one with the rendered name; if several and none has that
//! name, the target cannot be decided and the candidates are named.

use crate::wire::{ConnectionResponse, ConnectionStatus};
use std::collections::HashMap;
use uuid::Uuid;

/// The workspace's live connections, indexed by (source, destination).
pub struct ExistingCopies<'a> {
    by_pair: HashMap<(Uuid, Uuid), Vec<&'a ConnectionResponse>>,
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
            if c.status != ConnectionStatus::Deprecated {
                by_pair
                    .entry((c.source_id, c.destination_id))
                    .or_default()
                    .push(c);
            }
        }
        ExistingCopies { by_pair }
    }

    /// The copy of `source` into `destination`, preferring the one called `name`.
    pub fn find(&self, source: Uuid, destination: Uuid, name: &str) -> Existing<'a> {
        match self.by_pair.get(&(source, destination)).map(Vec::as_slice) {
            None | Some([]) => Existing::None,
            Some([one]) => Existing::One(one),
            Some(many) => {
                let named: Vec<_> = many.iter().filter(|c| c.name == name).collect();
                match named.as_slice() {
                    [one] => Existing::One(one),
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
}
