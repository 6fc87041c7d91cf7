//! What a source discovers and what a destination accepts: stream catalogs and sync modes.
//!
//! A connection sync mode (`incremental_deduped_history`) is the product of a source sync mode
//! (`incremental`) and a destination sync mode (`append_dedup`), as in Airbyte's
//! `ConnectionReadMapper.syncModesToConnectionSyncModeEnum`. A stream lists the source modes it
//! supports; a destination lists the destination modes it supports; the pair's valid modes are
//! every product that exists.

use crate::wire::{StreamProperties, SyncMode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};

/// A sync mode as the source side knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceSyncMode {
    FullRefresh,
    Incremental,
}

/// A sync mode as the destination side knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    Overwrite,
    Append,
    AppendDedup,
    OverwriteDedup,
    Update,
    SoftDelete,
}

/// The connection sync mode a source mode and a destination mode make, if they make one.
pub fn combine(source: SourceSyncMode, destination: DestinationSyncMode) -> Option<SyncMode> {
    use DestinationSyncMode as D;
    use SourceSyncMode as S;
    Some(match (source, destination) {
        (S::FullRefresh, D::Overwrite) => SyncMode::FullRefreshOverwrite,
        (S::FullRefresh, D::Append) => SyncMode::FullRefreshAppend,
        (S::FullRefresh, D::OverwriteDedup) => SyncMode::FullRefreshOverwriteDeduped,
        (S::FullRefresh, D::Update) => SyncMode::FullRefreshUpdate,
        (S::FullRefresh, D::SoftDelete) => SyncMode::FullRefreshSoftDelete,
        (S::Incremental, D::Append) => SyncMode::IncrementalAppend,
        (S::Incremental, D::AppendDedup) => SyncMode::IncrementalDedupedHistory,
        (S::Incremental, D::Update) => SyncMode::IncrementalUpdate,
        (S::Incremental, D::SoftDelete) => SyncMode::IncrementalSoftDelete,
        (S::FullRefresh, D::AppendDedup) | (S::Incremental, D::Overwrite | D::OverwriteDedup) => {
            return None;
        }
    })
}

/// One stream a source discovers.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogStream {
    pub name: String,
    pub namespace: Option<String>,
    /// Every field path, nested ones included, in schema order.
    pub fields: Vec<Vec<String>>,
    pub sync_modes: Vec<SourceSyncMode>,
    pub default_cursor_field: Vec<String>,
    pub source_defined_cursor: bool,
    pub source_defined_primary_key: Vec<Vec<String>>,
}

impl CatalogStream {
    /// The top-level field names, in schema order (what field selection may name).
    pub fn top_level_fields(&self) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|path| path.len() == 1)
            .map(|path| path[0].as_str())
            .collect()
    }

    pub fn has_field(&self, path: &[String]) -> bool {
        self.fields.iter().any(|p| p == path)
    }

    /// The connection sync modes this stream supports with a destination. Sorted in the enum's
    /// order so messages are stable.
    pub fn valid_sync_modes(&self, destination: &[DestinationSyncMode]) -> BTreeSet<SyncMode> {
        self.sync_modes
            .iter()
            .flat_map(|s| destination.iter().filter_map(|d| combine(*s, *d)))
            .collect()
    }

    /// The stream as `GET /streams` shows it. `syncModes` only with a destination, and never
    /// `full_refresh_overwrite_deduped` (DIGEST §5: the streams endpoint leaves it out even
    /// where create accepts it).
    pub fn properties(&self, destination: Option<&[DestinationSyncMode]>) -> StreamProperties {
        StreamProperties {
            stream_name: self.name.clone(),
            sync_modes: destination.map(|d| {
                self.valid_sync_modes(d)
                    .into_iter()
                    .filter(|m| *m != SyncMode::FullRefreshOverwriteDeduped)
                    .collect()
            }),
            stream_namespace: self.namespace.clone(),
            default_cursor_field: self.default_cursor_field.clone(),
            source_defined_cursor_field: self.source_defined_cursor,
            source_defined_primary_key: self.source_defined_primary_key.clone(),
            property_fields: self.fields.clone(),
        }
    }
}

/// The streams a source discovers, with an index by name (names repeat across namespaces).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    streams: Vec<CatalogStream>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Catalog {
    pub fn new(streams: Vec<CatalogStream>) -> Self {
        let mut by_name: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in streams.iter().enumerate() {
            by_name.entry(s.name.clone()).or_default().push(i);
        }
        Self { streams, by_name }
    }

    pub fn streams(&self) -> &[CatalogStream] {
        &self.streams
    }

    /// The streams named `name`, in catalog order.
    pub fn named(&self, name: &str) -> impl Iterator<Item = &CatalogStream> {
        self.by_name
            .get(name)
            .into_iter()
            .flatten()
            .map(|&i| &self.streams[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_modes_are_the_products_that_exist() {
        let stream = CatalogStream {
            name: "orders".into(),
            namespace: None,
            fields: vec![vec!["id".into()]],
            sync_modes: vec![SourceSyncMode::FullRefresh, SourceSyncMode::Incremental],
            default_cursor_field: vec![],
            source_defined_cursor: false,
            source_defined_primary_key: vec![],
        };
        let dest = [
            DestinationSyncMode::Overwrite,
            DestinationSyncMode::Append,
            DestinationSyncMode::AppendDedup,
            DestinationSyncMode::OverwriteDedup,
        ];
        let modes: Vec<_> = stream.valid_sync_modes(&dest).into_iter().collect();
        assert_eq!(
            modes,
            [
                SyncMode::FullRefreshOverwrite,
                SyncMode::FullRefreshOverwriteDeduped,
                SyncMode::FullRefreshAppend,
                SyncMode::IncrementalAppend,
                SyncMode::IncrementalDedupedHistory,
            ]
        );
        let shown = stream.properties(Some(&dest)).sync_modes.unwrap();
        assert!(!shown.contains(&SyncMode::FullRefreshOverwriteDeduped));
        assert_eq!(stream.properties(None).sync_modes, None);
    }
}
