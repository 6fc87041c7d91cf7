//! Copies that would write the same destination tables: each other's, or the template's
//! (issue 13.16). Pure; the build stage holds the targets that might collide until the check
//! can be made, and runs it before any of them is handed on to be written.
//!
//! A stream lands in the destination at a [`Table`]: the namespace as the connection resolves it
//! (`source`: the stream's own namespace; `destination`: the destination's default;
//! `custom_format`: the format with `${SOURCE_NAMESPACE}` filled in, after the plan's
//! placeholders rendered it per source), the prefix, and the stream's name. Two connections to
//! one destination that share a table overwrite, or mix, each other's rows; Airbyte itself
//! refuses such a connection when its `ValidateConflictingDestinationStreams` flag is on. Its
//! check compares the raw settings (definition, format, stream namespace, prefix, name), which
//! resolve to one table: what it refuses, this finds too, before the first write.
//!
//! Only targets that share a prefix (with another target, or with the template) can collide, so
//! only those wait for the check: with a prefix per source (`{source.name|slug}_`) nothing waits.

use crate::wire::{
    ConnectionCreateRequest, ConnectionResponse, NamespaceDefinition, StreamConfiguration,
};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// Where one stream of a connection lands in its destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table {
    namespace: Namespace,
    prefix: String,
    stream: String,
}

/// A table's namespace: the destination's default one, or a named one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Namespace {
    DestinationDefault,
    Named(String),
}

/// The settings that place a connection's tables.
#[derive(Debug, Clone, Copy)]
pub struct Placement<'a> {
    pub namespace_definition: Option<NamespaceDefinition>,
    pub namespace_format: Option<&'a str>,
    pub prefix: Option<&'a str>,
}

impl<'a> Placement<'a> {
    pub fn of_body(body: &'a ConnectionCreateRequest) -> Self {
        Self {
            namespace_definition: body.namespace_definition,
            namespace_format: body.namespace_format.as_deref(),
            prefix: body.prefix.as_deref(),
        }
    }

    pub fn of_connection(connection: &'a ConnectionResponse) -> Self {
        Self {
            namespace_definition: connection.namespace_definition,
            namespace_format: connection.namespace_format.as_deref(),
            prefix: connection.prefix.as_deref(),
        }
    }

    /// The tables a connection placed so writes with these streams (Airbyte's defaults for what
    /// is unset: the destination's namespace, no prefix).
    pub fn tables(&self, streams: &[StreamConfiguration]) -> Vec<Table> {
        let prefix = self.prefix.unwrap_or_default();
        streams
            .iter()
            .map(|stream| Table {
                namespace: self.namespace(stream.namespace.as_deref()),
                prefix: prefix.to_string(),
                stream: stream.name.clone(),
            })
            .collect()
    }

    fn namespace(&self, source: Option<&str>) -> Namespace {
        let named = |name: String| {
            if name.is_empty() {
                Namespace::DestinationDefault
            } else {
                Namespace::Named(name)
            }
        };
        match self.namespace_definition {
            None | Some(NamespaceDefinition::Destination) => Namespace::DestinationDefault,
            Some(NamespaceDefinition::Source) => named(source.unwrap_or_default().to_string()),
            Some(NamespaceDefinition::CustomFormat) => named(
                self.namespace_format
                    .unwrap_or_default()
                    .replace("${SOURCE_NAMESPACE}", source.unwrap_or_default()),
            ),
        }
    }
}

/// The targets held for the check, and what they are checked against.
pub struct Collisions<T> {
    template_name: String,
    template: Vec<Table>,
    /// Prefixes that more than one of the targets and the template use.
    crowded: HashSet<String>,
    held: Vec<Held<T>>,
}

struct Held<T> {
    index: usize,
    source_name: String,
    tables: Vec<Table>,
    item: T,
}

/// Who writes a table.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    Template,
    Held(usize),
}

/// The most names and tables one error lists.
const LISTED: usize = 3;

impl<T> Collisions<T> {
    /// `prefixes`: the prefix of every target's copy, as the plan renders it.
    pub fn new<'p>(
        template: &'p ConnectionResponse,
        prefixes: impl Iterator<Item = &'p str>,
    ) -> Self {
        let placement = Placement::of_connection(template);
        let mut seen: HashSet<&str> = HashSet::new();
        let mut crowded = HashSet::new();
        let template_prefix = placement.prefix.unwrap_or_default();
        for prefix in std::iter::once(template_prefix).chain(prefixes) {
            if !seen.insert(prefix) {
                crowded.insert(prefix.to_string());
            }
        }
        Self {
            template_name: template.name.clone(),
            template: placement.tables(&template.configurations.streams),
            crowded,
            held: Vec::new(),
        }
    }

    /// Whether a copy with this prefix might collide, and so must wait for [`Self::release`].
    pub fn must_wait(&self, prefix: &str) -> bool {
        self.crowded.contains(prefix)
    }

    /// Whether no copy has to wait: no two of the prefixes (the template's among them) are the
    /// same.
    pub fn none_wait(&self) -> bool {
        self.crowded.is_empty()
    }

    /// Keeps a target until the check: its index, its source's name, the tables its copy
    /// writes once the plan is applied, and whatever the caller hands on after the check.
    pub fn hold(&mut self, index: usize, source_name: &str, tables: Vec<Table>, item: T) {
        self.held.push(Held {
            index,
            source_name: source_name.to_string(),
            tables,
            item,
        });
    }

    /// The held targets, each with why it cannot be written when its tables collide.
    pub fn release(self) -> Vec<(usize, T, Option<String>)> {
        let mut owners: HashMap<&Table, Vec<Owner>> = HashMap::new();
        let all = self.template.iter().map(|t| (t, Owner::Template)).chain(
            self.held
                .iter()
                .enumerate()
                .flat_map(|(i, held)| held.tables.iter().map(move |t| (t, Owner::Held(i)))),
        );
        for (table, owner) in all {
            let list = owners.entry(table).or_default();
            if list.last() != Some(&owner) {
                list.push(owner);
            }
        }
        let messages: Vec<Option<String>> = (0..self.held.len())
            .map(|i| self.message(i, &owners))
            .collect();
        self.held
            .into_iter()
            .zip(messages)
            .map(|(held, message)| (held.index, held.item, message))
            .collect()
    }

    /// What held target `i` collides with, if anything, as its error.
    fn message(&self, i: usize, owners: &HashMap<&Table, Vec<Owner>>) -> Option<String> {
        let me = Owner::Held(i);
        let mut shared: Vec<&Table> = Vec::new();
        let mut template = false;
        let mut copies: Vec<&str> = Vec::new();
        let mut most_copies = 0;
        for table in &self.held[i].tables {
            // Each owner is in a table's list once, the template first, and this target is in
            // its own tables' lists: the counts need no pass over a long list.
            let list = &owners[table];
            if list.len() < 2 || shared.contains(&table) {
                continue;
            }
            shared.push(table);
            let with_template = list[0] == Owner::Template;
            template |= with_template;
            most_copies = most_copies.max(list.len() - 1 - usize::from(with_template));
            for other in list.iter().filter(|o| **o != me).take(LISTED + 1) {
                if let Owner::Held(j) = other {
                    let name = self.held[*j].source_name.as_str();
                    if copies.len() < LISTED && !copies.contains(&name) {
                        copies.push(name);
                    }
                }
            }
        }
        if shared.is_empty() {
            return None;
        }
        let mut partners = Vec::new();
        if template {
            partners.push(format!("the template \"{}\"", self.template_name));
        }
        let mut quoted: Vec<String> = copies.iter().map(|c| format!("\"{c}\"")).collect();
        let more = most_copies.saturating_sub(copies.len());
        if more > 0 {
            quoted.push(format!("{more} more"));
        }
        match quoted.len() {
            0 => {}
            1 => partners.push(format!("the copy for source {}", quoted[0])),
            _ => partners.push(format!("the copies for sources {}", join(&quoted))),
        }
        Some(format!(
            "writes the same destination tables as {}: {}; two connections writing one table \
             overwrite each other's data (and Airbyte may refuse the second): give each copy its \
             own `prefix` (e.g. \"{{source.name|slug}}_\") or namespace",
            join(&partners),
            describe(&shared)
        ))
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `shop_orders, shop_customers (namespace "public")`, the first few tables, by namespace.
fn describe(tables: &[&Table]) -> String {
    let mut by_namespace: BTreeMap<&Namespace, Vec<String>> = BTreeMap::new();
    for table in tables.iter().take(LISTED) {
        by_namespace
            .entry(&table.namespace)
            .or_default()
            .push(format!("{}{}", table.prefix, table.stream));
    }
    let mut out = String::new();
    for (namespace, names) in by_namespace {
        if !out.is_empty() {
            out.push_str("; ");
        }
        out.push_str(&names.join(", "));
        match namespace {
            Namespace::DestinationDefault => out.push_str(" (the destination's default namespace)"),
            Namespace::Named(name) => {
                let _ = write!(out, " (namespace \"{name}\")");
            }
        }
    }
    if tables.len() > LISTED {
        let _ = write!(out, " and {} more", tables.len() - LISTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn streams(list: &[(&str, Option<&str>)]) -> Vec<StreamConfiguration> {
        list.iter()
            .map(|(name, namespace)| {
                serde_json::from_value(json!({"name": name, "namespace": namespace}))
                    .unwrap_or_else(|e| panic!("{e}"))
            })
            .collect()
    }

    fn placement(
        definition: Option<NamespaceDefinition>,
        format: Option<&'static str>,
        prefix: &'static str,
    ) -> Placement<'static> {
        Placement {
            namespace_definition: definition,
            namespace_format: format,
            prefix: Some(prefix),
        }
    }

    /// `namespace.table` for each stream, `-` for the destination's default namespace.
    fn landed(placement: &Placement<'_>, list: &[(&str, Option<&str>)]) -> Vec<String> {
        placement
            .tables(&streams(list))
            .into_iter()
            .map(|t| match t.namespace {
                Namespace::DestinationDefault => format!("-.{}{}", t.prefix, t.stream),
                Namespace::Named(n) => format!("{n}.{}{}", t.prefix, t.stream),
            })
            .collect()
    }

    #[test]
    fn a_stream_lands_where_the_connection_resolves_its_namespace() {
        use NamespaceDefinition::{CustomFormat, Destination, Source};
        let list = [("orders", Some("public")), ("events", None)];
        let cases = [
            (placement(None, None, "p_"), ["-.p_orders", "-.p_events"]),
            (
                placement(Some(Destination), None, ""),
                ["-.orders", "-.events"],
            ),
            (
                placement(Some(Source), None, "p_"),
                ["public.p_orders", "-.p_events"],
            ),
            (
                placement(Some(CustomFormat), Some("${SOURCE_NAMESPACE}_eu"), ""),
                ["public_eu.orders", "_eu.events"],
            ),
            (
                placement(Some(CustomFormat), Some("${SOURCE_NAMESPACE}"), ""),
                ["public.orders", "-.events"],
            ),
        ];
        for (placement, expected) in cases {
            assert_eq!(landed(&placement, &list), expected, "{placement:?}");
        }
    }

    fn template(prefix: &str) -> ConnectionResponse {
        serde_json::from_value(json!({
            "connectionId": "c0000000-0000-4000-8000-000000000001",
            "name": "T",
            "sourceId": "50c00000-0000-4000-8000-000000000001",
            "destinationId": "de570000-0000-4000-8000-000000000001",
            "workspaceId": "5a4d0000-0000-4000-8000-000000000001",
            "status": "active",
            "schedule": {"scheduleType": "manual"},
            "prefix": prefix,
            "configurations": {"streams": [{"name": "orders", "namespace": "public"}]},
            "createdAt": 0,
            "tags": []
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn only_copies_sharing_a_prefix_wait_and_each_collision_is_named() {
        use NamespaceDefinition::{CustomFormat, Source};
        let template = template("t_");
        let prefixes = ["a_", "x_", "x_", "x_", "t_", "t_"];
        let mut collisions: Collisions<&str> = Collisions::new(&template, prefixes.into_iter());
        assert!(!collisions.none_wait() && !collisions.must_wait("a_"));
        assert!(collisions.must_wait("x_") && collisions.must_wait("t_"));
        let orders = [("orders", Some("public"))];
        let held = [
            ("b", placement(Some(Source), None, "x_")),
            ("c", placement(Some(Source), None, "x_")),
            ("d", placement(Some(CustomFormat), Some("tenant_d"), "x_")),
            ("e", placement(None, None, "t_")),
            // The template's prefix, but the source's namespace: not the template's tables.
            ("f", placement(Some(Source), None, "t_")),
        ];
        for (index, (name, placement)) in held.iter().enumerate() {
            collisions.hold(index, name, placement.tables(&streams(&orders)), *name);
        }
        let released: Vec<(usize, &str, Option<String>)> = collisions.release();
        let why = |name: &str| {
            released
                .iter()
                .find(|(_, n, _)| *n == name)
                .and_then(|(_, _, why)| why.clone())
        };
        assert_eq!(released.len(), 5);
        assert_eq!(why("f"), None, "its source's namespace");
        assert!(
            why("b").is_some_and(|w| w.starts_with(
                "writes the same destination tables as the copy for source \"c\": x_orders \
                 (namespace \"public\");"
            )),
            "{:?}",
            why("b")
        );
        assert!(why("c").is_some_and(|w| w.contains("the copy for source \"b\"")));
        assert_eq!(why("d"), None, "its own namespace");
        assert!(
            why("e").is_some_and(|w| w
                .starts_with("writes the same destination tables as the template \"T\": t_orders")),
            "{:?}",
            why("e")
        );
    }

    #[test]
    fn a_crowd_is_summed_up_not_listed() {
        let template = template("t_");
        let prefixes = vec!["x_"; 50];
        let mut collisions: Collisions<usize> =
            Collisions::new(&template, prefixes.iter().copied());
        let many: Vec<(String, Option<&str>)> = (0..5).map(|i| (format!("s{i}"), None)).collect();
        let many: Vec<(&str, Option<&str>)> =
            many.iter().map(|(n, ns)| (n.as_str(), *ns)).collect();
        for i in 0..50 {
            let tables = placement(None, None, "x_").tables(&streams(&many));
            collisions.hold(i, &format!("shop-{i}"), tables, i);
        }
        let released = collisions.release();
        assert_eq!(
            released[0]
                .2
                .as_deref()
                .map(|w| w.split(';').next().unwrap_or_default()),
            Some(
                "writes the same destination tables as the copies for sources \"shop-1\", \
                 \"shop-2\", \"shop-3\" and 46 more: x_s0, x_s1, x_s2 (the destination's default \
                 namespace) and 2 more"
            )
        );
    }
}
