//! `--churn-rate`: other people's connections coming and going while a client pages through
//! `GET /connections`, so that offset paging shifts under it as it does on a busy workspace.
//!
//! With churn on, every workspace that has a source gets a destination named `churn` and
//! [`PRESEEDED`] unrelated connections to it (named `churn-` and a few hex digits), made after the seed's own. Then, on
//! each `GET /connections` page and with the configured probability, the sandbox either
//! soft-deletes the oldest unrelated connection among those the listing has already passed
//! (before its `offset`: every later item moves up one, so an offset pager skips one), or creates
//! a new one (it lands at the end). A delete with nothing to delete becomes a create. Unrelated
//! means "to a churn destination": such a connection never has a template's destination, so it is
//! never a copy of one, and a plan neither adopts nor prunes it.

use super::catalog::DestinationSyncMode;
use super::seed::derived_id;
use super::seeding::SEED_CREATED_AT;
use super::store::{Destination, Store};
use crate::wire::{ConnectionCreateRequest, DestinationResponse};
use serde_json::Map;
use uuid::Uuid;

/// The unrelated connections each workspace starts with when churn is on.
pub const PRESEEDED: usize = 10;

/// The name of the destination unrelated connections go to.
pub const DESTINATION_NAME: &str = "churn";

/// What the dice decided for one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Churn {
    Delete,
    Create,
}

/// Adds the churn destinations and the pre-seeded unrelated connections.
pub fn prepare(store: &mut Store) {
    let workspaces: Vec<Uuid> = store
        .list_workspaces(&[], 0, usize::MAX)
        .into_iter()
        .map(|w| w.workspace_id)
        .collect();
    for workspace in workspaces {
        if store.list_sources(&[workspace], 0, 1).is_empty() {
            continue;
        }
        let destination_id = destination_id(workspace);
        store.add_destination(Destination {
            response: DestinationResponse {
                destination_id,
                name: DESTINATION_NAME.to_string(),
                destination_type: DESTINATION_NAME.to_string(),
                definition_id: derived_id("destination-definition", DESTINATION_NAME),
                workspace_id: workspace,
                configuration: Map::new(),
                created_at: SEED_CREATED_AT,
                resource_allocation: None,
            },
            sync_modes: vec![DestinationSyncMode::Overwrite],
        });
        for _ in 0..PRESEEDED {
            create(store, workspace, SEED_CREATED_AT);
        }
    }
}

/// Applies one churn to the listing of `workspaces` (none: all) that is at `offset`; returns
/// what was done, if anything could be.
pub fn apply(
    store: &mut Store,
    churn: Churn,
    workspaces: &[Uuid],
    offset: usize,
    created_at: i64,
) -> Option<Churn> {
    if churn == Churn::Delete {
        let passed = store.list_connections(workspaces, &[], false, 0, offset);
        let victim = passed
            .iter()
            .find(|c| c.destination_id == destination_id(c.workspace_id))
            .map(|c| c.connection_id);
        if let Some(id) = victim {
            return store.delete(id).ok().map(|()| Churn::Delete);
        }
    }
    let workspace = match workspaces.first() {
        Some(w) => *w,
        None => store.list_workspaces(&[], 0, 1).first()?.workspace_id,
    };
    create(store, workspace, created_at).then_some(Churn::Create)
}

fn destination_id(workspace: Uuid) -> Uuid {
    derived_id("destination", &format!("{DESTINATION_NAME}/{workspace}"))
}

/// Creates one unrelated connection from the workspace's first source; `false` when the
/// workspace has no churn destination or source.
fn create(store: &mut Store, workspace: Uuid, created_at: i64) -> bool {
    let destination_id = destination_id(workspace);
    if store.destination(destination_id).is_none() {
        return false;
    }
    let Some(source) = store.list_sources(&[workspace], 0, 1).into_iter().next() else {
        return false;
    };
    let id = Uuid::new_v4();
    let request = ConnectionCreateRequest {
        name: Some(format!("churn-{}", &id.simple().to_string()[..8])),
        source_id: source.source_id,
        destination_id,
        configurations: None,
        schedule: None,
        data_residency: None,
        namespace_definition: None,
        namespace_format: None,
        prefix: None,
        non_breaking_schema_updates_behavior: None,
        status: None,
        tags: None,
    };
    match store.prepare_create(request, id, created_at, &mut Uuid::new_v4) {
        Ok(connection) => {
            store.insert_connection(connection);
            true
        }
        Err(_) => false,
    }
}
