//! `replicate ls connections|sources`: what the credentials can see, by name and id, so that a
//! plan's `template:` and `source:` can be written (or fixed) without the Airbyte UI.

use crate::client::{ApiError, Client};
use crate::report::escape::controls;
use serde::Serialize;
use std::fmt::Write;
use uuid::Uuid;

/// What `ls` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Connections,
    Sources,
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Row {
    pub name: String,
    pub id: Uuid,
    /// A source's type (`postgres`); a connection's status (`active`, `inactive`).
    pub kind: String,
    pub workspace_id: Uuid,
}

/// Reads every connection (deleted ones left out) or every source, sorted by name.
pub async fn rows(client: &Client, what: Listing) -> Result<Vec<Row>, ApiError> {
    let mut rows: Vec<Row> = match what {
        Listing::Connections => client
            .connections(None, |_| {})
            .await?
            .into_iter()
            .filter(|c| c.status != crate::wire::ConnectionStatus::Deprecated)
            .map(|c| Row {
                kind: serde_json::to_value(c.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                name: c.name,
                id: c.connection_id,
                workspace_id: c.workspace_id,
            })
            .collect(),
        Listing::Sources => client
            .sources(None, |_| {})
            .await?
            .into_iter()
            .map(|s| Row {
                name: s.name,
                id: s.source_id,
                kind: s.source_type,
                workspace_id: s.workspace_id,
            })
            .collect(),
    };
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(rows)
}

/// One line per row: id, kind, name (names last: they vary in width and may hold spaces);
/// control characters made visible.
pub fn human(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.kind.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for row in rows {
        let _ = writeln!(
            out,
            "{}  {:<width$}  {}",
            row.id,
            controls(&row.kind),
            controls(&row.name)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_rows_align_and_escape() {
        let id = Uuid::nil();
        let rows = [
            Row {
                name: "shop-eu".into(),
                id,
                kind: "postgres".into(),
                workspace_id: id,
            },
            Row {
                name: "evil\u{1b}[2J".into(),
                id,
                kind: "hubspot".into(),
                workspace_id: id,
            },
        ];
        assert_eq!(
            human(&rows),
            format!("{id}  postgres  shop-eu\n{id}  hubspot   evil\\u{{1b}}[2J\n")
        );
    }
}
