//! Build: what each resolved target needs, as a [`Planned`] value per target.
//!
//! resolve → **build** (this: the reads around the pure stages) → execute → report. For each
//! target it finds the existing copy (`existing`), builds the desired body (`copy`) and asks the
//! diff (`diff`) what to do. The only reads here are catalogs (`GET /streams`, a schema discover
//! on Airbyte), and only where a decision needs one (SPEC §8): a copy to create, or an existing
//! copy whose streams differ from the template's. A fleet in line costs no catalog at all.
//!
//! Each target's [`Planned`] is handed on the moment it is decided, so an `apply` that does not
//! ask can start its write while other catalogs are still being read.

use crate::client::Client;
use crate::copy::{self, Blueprint, Collisions, CopyPlan, Placement, Table};
use crate::diff::{Decision, TargetError, TargetPlan, decide_existing};
use crate::execute::Interrupt;
use crate::existing::{Existing, ExistingCopies};
use crate::plan::{ExistingPolicy, MissingStreamsPolicy, Names};
use crate::report::events::{Reporter, Step, count};
use crate::resolve::{Resolved, ResolvedTarget, SourceSummary};
use crate::wire::{ConnectionCreateRequest, ConnectionResponse, StreamConfiguration};
use futures::{StreamExt, stream};
use std::sync::Arc;

/// Catalog reads queued at once; the client's pace decides how many are actually in flight.
const CATALOGS_AT_ONCE: usize = 512;

/// Targets looked at between two yields to the runtime.
const YIELD_EVERY: usize = 64;

/// One target, decided: who it is, what it needs, and what the user should know.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The YAML path of the plan entry that selected it (`targets[2]`).
    pub entry: String,
    /// `None` when the entry selected no source.
    pub source: Option<SourceSummary>,
    /// The copy's name: as the plan renders it, else as it exists.
    pub name: Option<String>,
    pub plan: TargetPlan,
    /// Full sentences (streams left out by `missing_streams: skip`, masked mapper secrets, …).
    pub warnings: Vec<String>,
}

/// How targets are decided.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    pub existing: ExistingPolicy,
    pub missing_streams: MissingStreamsPolicy,
    /// `false` for `status`, which reads no catalog: a copy to create keeps the body built
    /// without one, and a copy whose streams differ is compared with the template's streams as
    /// they are, with a warning that the catalog was not consulted.
    pub read_catalogs: bool,
}

/// Decides every target of `resolved`, calling `decided(index, planned)` for each as soon as it
/// is known (targets that need no catalog first, in order; the others as their catalogs arrive).
/// Once `interrupt` is raised no more catalogs are read, and the targets still waiting for one
/// are never handed on.
///
/// With catalogs (`plan`, `apply`), a copy that shares its prefix with another target's or the
/// template's may write their tables: it is handed on only once every target is decided, after
/// the check for copies writing the same tables ([`Collisions`]), which makes it an error if so.
pub async fn build(
    resolved: &Resolved,
    blueprint: &Blueprint,
    options: BuildOptions,
    client: &Client,
    interrupt: &Interrupt,
    reporter: &Arc<dyn Reporter>,
    mut decided: impl FnMut(usize, Planned),
) {
    let owner = resolved.owner_tag.as_ref().map(|t| t.tag_id);
    let existing = ExistingCopies::new(&resolved.connections).owned_by(owner);
    let mut gate = Gate::new(resolved, blueprint, options.read_catalogs);
    let mut hand_on = |index: usize, planned: Planned, copy: Option<&ConnectionResponse>| {
        if let Some(planned) = gate.pass(index, planned, copy) {
            decided(index, planned);
        }
    };
    let mut waiting = Vec::new();
    for (index, target) in resolved.targets.iter().enumerate() {
        if index % YIELD_EVERY == YIELD_EVERY - 1 {
            // Thousands of targets are milliseconds of work: the answers that arrive meanwhile
            // (`status`'s reads of last syncs, an apply's writes) are taken and their slots
            // handed on in between, rather than all at the end.
            tokio::task::yield_now().await;
        }
        match first_look(resolved, blueprint, options, &existing, target) {
            Look::Decided(planned, copy) => hand_on(index, *planned, copy),
            Look::NeedsCatalog(wait) => waiting.push((index, wait)),
        }
    }

    if !options.read_catalogs {
        for (index, wait) in waiting {
            let planned = without_catalog(resolved, blueprint, options, index, &wait);
            hand_on(index, planned, wait.copy);
        }
        return;
    }

    let destination = resolved.template.destination_id;
    reporter.step_started(Step::Catalogs);
    let mut catalogs = stream::iter(waiting)
        .map(|(index, wait)| async move {
            let catalog = client.streams(wait.source.id, destination).await;
            (index, wait, catalog)
        })
        .buffer_unordered(CATALOGS_AT_ONCE);
    let mut read = 0;
    loop {
        let (index, wait, catalog) = tokio::select! {
            next = catalogs.next() => match next {
                Some(next) => next,
                None => break,
            },
            () = interrupt.raised() => break,
        };
        read += 1;
        reporter.step_advanced(Step::Catalogs, 1);
        let target = &resolved.targets[index];
        let names = names(wait.source, resolved);
        let built = match catalog {
            Ok(catalog) => copy::build_copy(
                blueprint,
                &names,
                &target.overrides,
                &catalog,
                options.missing_streams,
            )
            .map_err(TargetError::Build),
            Err(e) => Err(TargetError::Catalog(e.to_string())),
        };
        let mut planned = Planned {
            entry: target.entry.clone(),
            name: Some(target.overrides.name_for(&names)),
            source: Some(wait.source.clone()),
            plan: TargetPlan::Invalid(TargetError::Build(Vec::new())),
            warnings: Vec::new(),
        };
        match built {
            Err(error) => planned.plan = TargetPlan::Invalid(error),
            Ok(CopyPlan { body, warnings }) => {
                planned.warnings = warnings;
                planned.plan = match wait.copy {
                    Some(copy) => match decide_existing(&body, copy, options.existing, true) {
                        Decision::Decided(plan) => plan,
                        // Unreachable with `catalog_read`; say so rather than guess.
                        Decision::NeedsCatalog => TargetPlan::Invalid(TargetError::Build(vec![
                            "the streams could not be compared even with the catalog".into(),
                        ])),
                    },
                    None => TargetPlan::Create { body },
                };
                planned
                    .warnings
                    .extend_from_slice(planned.plan.drift_warnings());
            }
        }
        hand_on(index, planned, wait.copy);
    }
    reporter.step_finished(Step::Catalogs, &count(read, "catalog"));
    for (index, planned) in gate.release() {
        decided(index, planned);
    }
}

/// Holds back the targets whose copies might write another's tables (they share a prefix with
/// another target or the template) until every target is decided, then runs the check.
struct Gate {
    /// Each target's prefix, `None` for an entry that selected no source. Empty when nothing
    /// can wait, so that 20,000 prefixes are not kept for nothing: with the gate off (`status`,
    /// which writes nothing), and when no two prefixes are the same (a prefix per source, the
    /// usual case).
    prefixes: Vec<Option<String>>,
    collisions: Collisions<Planned>,
}

impl Gate {
    fn new(resolved: &Resolved, blueprint: &Blueprint, on: bool) -> Gate {
        let prefix = |t: &ResolvedTarget| {
            let source = t.source.as_ref().ok()?;
            let names = names(source, resolved);
            Some(copy::table_prefix(blueprint, &names, &t.overrides))
        };
        let prefixes: Vec<Option<String>> = if on {
            resolved.targets.iter().map(prefix).collect()
        } else {
            Vec::new()
        };
        let collisions = Collisions::new(
            &resolved.template,
            prefixes.iter().flatten().map(String::as_str),
        );
        let prefixes = if collisions.none_wait() {
            Vec::new()
        } else {
            prefixes
        };
        Gate {
            prefixes,
            collisions,
        }
    }

    /// The target, to hand on now; or `None`, held for the check. `copy` is the target's
    /// existing copy, if it has one: with its plan, it tells which tables the copy writes.
    fn pass(
        &mut self,
        index: usize,
        planned: Planned,
        copy: Option<&ConnectionResponse>,
    ) -> Option<Planned> {
        let prefix = self.prefixes.get(index).and_then(Option::as_deref);
        if !prefix.is_some_and(|prefix| self.collisions.must_wait(prefix)) {
            return Some(planned);
        }
        match (tables_after(&planned.plan, copy), &planned.source) {
            (Some(tables), Some(source)) => {
                let name = source.name.clone();
                self.collisions.hold(index, &name, tables, planned);
                None
            }
            _ => Some(planned),
        }
    }

    /// The held targets, those whose copies collide made errors.
    fn release(self) -> impl Iterator<Item = (usize, Planned)> {
        self.collisions
            .release()
            .into_iter()
            .map(|(index, mut planned, collision)| {
                if let Some(why) = collision {
                    planned.plan = TargetPlan::Invalid(TargetError::Build(vec![why]));
                }
                (index, planned)
            })
    }
}

/// The tables a target's copy writes once the plan is applied: what it creates; for an update,
/// the plan's placement with the streams it sends, else the copy's; a copy left as it is, its
/// own. `None` for a target that writes nothing.
fn tables_after(plan: &TargetPlan, copy: Option<&ConnectionResponse>) -> Option<Vec<Table>> {
    fn streams(body: &ConnectionCreateRequest) -> &[StreamConfiguration] {
        body.configurations
            .as_ref()
            .map_or(&[][..], |c| c.streams.as_slice())
    }
    match (plan, copy) {
        (TargetPlan::Create { body }, _) => Some(Placement::of_body(body).tables(streams(body))),
        (TargetPlan::Update { patch, .. }, Some(copy)) => {
            let placement = Placement {
                namespace_definition: patch.namespace_definition.or(copy.namespace_definition),
                namespace_format: patch
                    .namespace_format
                    .as_deref()
                    .or(copy.namespace_format.as_deref()),
                prefix: patch.prefix.as_deref().or(copy.prefix.as_deref()),
            };
            let streams = patch
                .configurations
                .as_ref()
                .map_or(&copy.configurations.streams, |c| &c.streams);
            Some(placement.tables(streams))
        }
        (TargetPlan::Unchanged { .. }, Some(copy)) => {
            Some(Placement::of_connection(copy).tables(&copy.configurations.streams))
        }
        _ => None,
    }
}

/// A target that would need its catalog, decided without it (for `status`).
fn without_catalog(
    resolved: &Resolved,
    blueprint: &Blueprint,
    options: BuildOptions,
    index: usize,
    wait: &Wait<'_>,
) -> Planned {
    let target = &resolved.targets[index];
    let names = names(wait.source, resolved);
    let mut planned = Planned {
        entry: target.entry.clone(),
        name: Some(target.overrides.name_for(&names)),
        source: Some(wait.source.clone()),
        plan: TargetPlan::Invalid(TargetError::Build(Vec::new())),
        warnings: Vec::new(),
    };
    planned.plan = match copy::build_desired(blueprint, &names, &target.overrides) {
        Err(problems) => TargetPlan::Invalid(TargetError::Build(problems)),
        Ok(CopyPlan { body, .. }) => match wait.copy {
            None => TargetPlan::Create { body },
            Some(copy) => {
                planned.warnings.push(
                    "its streams differ from the template's; compared without the source's \
                     catalog (`replicate plan` checks them against it)"
                        .into(),
                );
                match decide_existing(&body, copy, options.existing, true) {
                    Decision::Decided(plan) => plan,
                    Decision::NeedsCatalog => TargetPlan::Invalid(TargetError::Build(vec![
                        "the streams could not be compared".into(),
                    ])),
                }
            }
        },
    };
    let drift_warnings = planned.plan.drift_warnings().to_vec();
    planned.warnings.extend(drift_warnings);
    planned
}

/// A target that waits for its catalog: its source, and its copy if it has one. Both are
/// borrowed from `resolved`, so that the targets waiting (all of them, in a first apply) cost
/// no copy of their sources while the catalogs are read.
struct Wait<'a> {
    source: &'a SourceSummary,
    copy: Option<&'a ConnectionResponse>,
}

enum Look<'a> {
    /// Decided, with its existing copy if it has one.
    Decided(Box<Planned>, Option<&'a ConnectionResponse>),
    NeedsCatalog(Wait<'a>),
}

/// What a target needs, decided without its catalog where that is enough.
fn first_look<'a>(
    resolved: &Resolved,
    blueprint: &Blueprint,
    options: BuildOptions,
    existing: &ExistingCopies<'a>,
    target: &'a ResolvedTarget,
) -> Look<'a> {
    let invalid = |source: Option<SourceSummary>, name: Option<String>, error| {
        let planned = Planned {
            entry: target.entry.clone(),
            source,
            name,
            plan: TargetPlan::Invalid(error),
            warnings: Vec::new(),
        };
        Look::Decided(Box::new(planned), None)
    };
    let source = match &target.source {
        Ok(source) => source,
        Err(error) => {
            return invalid(
                error.source().cloned(),
                None,
                TargetError::Select {
                    entry: target.entry.clone(),
                    error: error.clone(),
                },
            );
        }
    };
    let names = names(source, resolved);
    let name = target.overrides.name_for(&names);
    let copy = match existing.find(source.id, resolved.destination.destination_id, &name) {
        Existing::None => {
            return Look::NeedsCatalog(Wait { source, copy: None });
        }
        Existing::Ambiguous(candidates) => {
            let error = TargetError::AmbiguousCopies {
                destination: resolved.destination.name.clone(),
                name: name.clone(),
                candidates: candidates
                    .iter()
                    .map(|c| (c.name.clone(), c.connection_id))
                    .collect(),
            };
            return invalid(Some(source.clone()), Some(name), error);
        }
        Existing::One(copy) => copy,
    };
    let desired = match copy::build_desired(blueprint, &names, &target.overrides) {
        Ok(desired) => desired,
        Err(problems) => {
            return invalid(
                Some(source.clone()),
                Some(name),
                TargetError::Build(problems),
            );
        }
    };
    match decide_existing(&desired.body, copy, options.existing, false) {
        Decision::NeedsCatalog => Look::NeedsCatalog(Wait {
            source,
            copy: Some(copy),
        }),
        Decision::Decided(plan) => {
            let mut warnings = desired.warnings;
            warnings.extend_from_slice(plan.drift_warnings());
            let planned = Planned {
                entry: target.entry.clone(),
                source: Some(source.clone()),
                name: Some(name),
                plan,
                warnings,
            };
            Look::Decided(Box::new(planned), Some(copy))
        }
    }
}

/// What a target's placeholders render to.
fn names<'a>(source: &'a SourceSummary, resolved: &'a Resolved) -> Names<'a> {
    Names {
        source_name: &source.name,
        source_id: source.id,
        source_type: &source.source_type,
        destination_name: &resolved.destination.name,
        destination_id: resolved.destination.destination_id,
        template_name: &resolved.template.name,
    }
}
