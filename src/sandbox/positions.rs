//! Where objects sit in the store's creation-ordered vectors, and how a page is cut from them.
//!
//! Each kind of object keeps the positions of its objects overall and per workspace, sorted, so a
//! one-workspace page is one slice and a several-workspace page a lazy merge of sorted lists that
//! costs `offset + limit` steps. The store owns the vectors; this module only knows positions.

use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// Positions of one kind of object, overall and per workspace, in creation order.
#[derive(Debug, Default)]
pub struct Positions {
    all: Vec<usize>,
    by_workspace: HashMap<Uuid, Vec<usize>>,
}

impl Positions {
    /// Appends a position; it must be larger than every position already held.
    pub fn push(&mut self, workspace: Uuid, position: usize) {
        self.all.push(position);
        self.by_workspace
            .entry(workspace)
            .or_default()
            .push(position);
    }

    /// Puts back a position that was removed, keeping both lists sorted.
    pub fn insert(&mut self, workspace: Uuid, position: usize) {
        insert_sorted(&mut self.all, position);
        insert_sorted(self.by_workspace.entry(workspace).or_default(), position);
    }

    pub fn remove(&mut self, workspace: Uuid, position: usize) {
        remove_sorted(&mut self.all, position);
        if let Some(list) = self.by_workspace.get_mut(&workspace) {
            remove_sorted(list, position);
        }
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// The lists to merge for a workspace filter (none: every workspace).
    pub fn lists(&self, workspaces: &[Uuid]) -> Vec<&[usize]> {
        if workspaces.is_empty() {
            return vec![&self.all];
        }
        let unique: HashSet<&Uuid> = workspaces.iter().collect();
        unique
            .into_iter()
            .filter_map(|w| self.by_workspace.get(w).map(Vec::as_slice))
            .collect()
    }
}

fn insert_sorted(list: &mut Vec<usize>, position: usize) {
    if let Err(at) = list.binary_search(&position) {
        list.insert(at, position);
    }
}

fn remove_sorted(list: &mut Vec<usize>, position: usize) {
    if let Ok(i) = list.binary_search(&position) {
        list.remove(i);
    }
}

/// One page of the union of sorted position lists, optionally filtered. A single unfiltered
/// list is sliced directly; several are merged lazily, so a page costs `offset + limit` steps.
pub fn page(
    lists: &[&[usize]],
    offset: usize,
    limit: usize,
    keep: impl Fn(usize) -> bool,
    filtered: bool,
) -> Vec<usize> {
    if let ([only], false) = (lists, filtered) {
        let start = offset.min(only.len());
        let end = offset.saturating_add(limit).min(only.len());
        return only[start..end].to_vec();
    }
    let mut heads = vec![0usize; lists.len()];
    let merged = std::iter::from_fn(|| {
        let (list, _) = lists
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.get(heads[i]).map(|p| (i, *p)))
            .min_by_key(|(_, p)| *p)?;
        let position = lists[list][heads[list]];
        heads[list] += 1;
        Some(position)
    });
    merged
        .filter(|p| keep(*p))
        .skip(offset)
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_merge_lists_in_creation_order() {
        let a = [0, 3, 4, 9];
        let b = [1, 2, 7];
        assert_eq!(page(&[&a, &b], 0, 4, |_| true, false), [0, 1, 2, 3]);
        assert_eq!(page(&[&a, &b], 4, 10, |_| true, false), [4, 7, 9]);
        assert_eq!(page(&[&a], 3, 10, |_| true, false), [9]);
        assert_eq!(page(&[&a], 30, 10, |_| true, false), Vec::<usize>::new());
        assert_eq!(page(&[&a, &b], 0, 10, |p| p % 2 == 1, true), [1, 3, 7, 9]);
    }

    #[test]
    fn removed_positions_go_back_in_order() {
        let w = Uuid::nil();
        let mut positions = Positions::default();
        for p in [0, 1, 2, 3] {
            positions.push(w, p);
        }
        positions.remove(w, 1);
        assert_eq!(positions.lists(&[w]), [&[0usize, 2, 3][..]]);
        positions.insert(w, 1);
        assert_eq!(positions.lists(&[]), [&[0usize, 1, 2, 3][..]]);
        assert_eq!(positions.len(), 4);
    }
}
