//! Building copies (SPEC §3): the pure stage between resolve and diff.
//!
//! The pipeline is load → resolve → **build copies** → diff → execute → report. This stage takes
//! what resolve fetched (the template connection, each target source's stream catalog) and what
//! load validated (the overrides), and builds the exact `POST /connections` body for each target,
//! or every problem that would make Airbyte refuse it. Nothing here touches the network, so `plan`
//! reports the server's 400s (DIGEST §7) before anything is written.
//!
//! [`Blueprint::new`] checks the template once, for problems no plan key can fix, and keeps a
//! cleaned-up copy of the parts a create may carry, plus the plan's owner tag
//! ([`Blueprint::with_owner`]). [`build_copy`] then runs once per target.

mod collisions;
mod streams;
#[cfg(test)]
mod tests;

pub use collisions::{Collisions, Placement, Table};
pub(crate) use streams::SECRET_MASK;

use crate::cron;
use crate::plan::{MissingStreamsPolicy, Names, Overrides};
use crate::wire::{
    ConnectionCreateRequest, ConnectionResponse, ConnectionSchedule, ConnectionStatus,
    NamespaceDefinition, NonBreakingSchemaUpdatesBehavior, ScheduleType, ScheduleTypeWithBasic,
    StreamConfiguration, StreamConfigurations, StreamProperties, Tag,
};
use serde::Serialize;
use uuid::Uuid;

/// What identifies the template connection, as the report shows it (SPEC §5, `template`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateConnection {
    pub connection_id: Uuid,
    pub name: String,
    pub source_id: Uuid,
    pub destination_id: Uuid,
    pub workspace_id: Uuid,
}

impl From<&ConnectionResponse> for TemplateConnection {
    fn from(c: &ConnectionResponse) -> Self {
        TemplateConnection {
            connection_id: c.connection_id,
            name: c.name.clone(),
            source_id: c.source_id,
            destination_id: c.destination_id,
            workspace_id: c.workspace_id,
        }
    }
}

/// The template connection, checked once, reduced to what a create body may carry.
///
/// Problems the plan can fix (a `basic` schedule, a `locked` status) are kept, not raised: they
/// become per-target errors only for targets whose overrides leave them unfixed.
#[derive(Debug, Clone)]
pub struct Blueprint {
    template: TemplateConnection,
    /// The template's schedule in create form, or why the plan must set `schedule`.
    schedule: Result<ConnectionSchedule, String>,
    /// The template's status, or why the plan must set `status`.
    status: Result<ConnectionStatus, String>,
    namespace_definition: Option<NamespaceDefinition>,
    namespace_format: Option<String>,
    prefix: Option<String>,
    non_breaking_schema_updates_behavior: Option<NonBreakingSchemaUpdatesBehavior>,
    tags: Vec<Tag>,
    /// The template's streams with empty `selectedFields` and mapper ids removed.
    streams: Vec<StreamConfiguration>,
}

impl Blueprint {
    /// Checks the template for problems that no plan key can fix: a deleted (`deprecated`)
    /// template, a mapper whose secret came back masked, duplicate streams, no streams at all, or
    /// a field selection create would refuse. Each error is a full sentence naming the template.
    pub fn new(template: &ConnectionResponse) -> Result<Blueprint, Vec<String>> {
        let name = &template.name;
        let mut errors = Vec::new();
        if template.status == ConnectionStatus::Deprecated {
            errors.push(format!(
                "the template connection \"{name}\" ({}) is deleted (status deprecated); point \
                 `template` at a live connection",
                template.connection_id
            ));
        }
        let streams = streams::clean_template(name, &template.configurations.streams, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Blueprint {
            template: TemplateConnection::from(template),
            schedule: template_schedule(template),
            status: template_status(template),
            namespace_definition: template.namespace_definition,
            namespace_format: template.namespace_format.clone(),
            prefix: template.prefix.clone(),
            non_breaking_schema_updates_behavior: template.non_breaking_schema_updates_behavior,
            tags: template.tags.clone(),
            streams,
        })
    }

    /// The template's identity: its id, name, source, destination and workspace.
    pub fn template(&self) -> &TemplateConnection {
        &self.template
    }

    /// Every copy also carries the plan's owner tag (SPEC §9), after the template's own tags.
    #[must_use]
    pub fn with_owner(mut self, owner: Tag) -> Blueprint {
        if !self.tags.iter().any(|t| t.tag_id == owner.tag_id) {
            self.tags.push(owner);
        }
        self
    }
}

/// One target's create body, plus what the user should know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyPlan {
    pub body: ConnectionCreateRequest,
    /// E.g. streams dropped by `missing_streams: skip`; full sentences, in a stable order.
    pub warnings: Vec<String>,
}

/// Builds the create body for one target, or returns every problem that stops it.
///
/// `names` gives the target source and the destination (for `sourceId` and for rendering `name`,
/// `prefix` and `namespaceFormat`); `overrides` are the plan's defaults overlaid with the target's
/// keys; `catalog` is the target's `GET /streams?sourceId=…&destinationId=…` answer.
pub fn build_copy(
    blueprint: &Blueprint,
    names: &Names<'_>,
    overrides: &Overrides,
    catalog: &[StreamProperties],
    missing_streams: MissingStreamsPolicy,
) -> Result<CopyPlan, Vec<String>> {
    build(
        blueprint,
        names,
        overrides,
        Some((catalog, missing_streams)),
    )
}

/// The desired body of a target whose catalog has not been read: the template's streams as they
/// are (cursors, keys and all), unchecked. It decides every field of an existing copy but its
/// streams exactly; a stream difference found with it is settled with [`build_copy`] (the diff
/// stage says when). Never posted as it is.
pub fn build_desired(
    blueprint: &Blueprint,
    names: &Names<'_>,
    overrides: &Overrides,
) -> Result<CopyPlan, Vec<String>> {
    build(blueprint, names, overrides, None)
}

fn build(
    blueprint: &Blueprint,
    names: &Names<'_>,
    overrides: &Overrides,
    catalog: Option<(&[StreamProperties], MissingStreamsPolicy)>,
) -> Result<CopyPlan, Vec<String>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let schedule = match &overrides.schedule {
        Some(schedule) => Some(request_schedule(schedule)),
        None => blueprint.schedule.clone().map_err(|e| errors.push(e)).ok(),
    };
    let status = match overrides.status {
        Some(status) => Some(status),
        None => blueprint.status.clone().map_err(|e| errors.push(e)).ok(),
    };
    let streams = match catalog {
        Some((catalog, missing_streams)) => streams::copy_streams(
            &blueprint.streams,
            names.source_name,
            catalog,
            missing_streams,
            &mut errors,
            &mut warnings,
        ),
        None => blueprint.streams.clone(),
    };
    if !errors.is_empty() {
        return Err(errors);
    }

    let name = overrides.name_for(names);
    let prefix = prefix(blueprint, names, overrides);
    let namespace_format = match &overrides.namespace_format {
        Some(t) => Some(t.render(names)),
        None => blueprint.namespace_format.clone(),
    };
    let namespace_definition = overrides
        .namespace_definition
        .or(blueprint.namespace_definition);

    Ok(CopyPlan {
        body: ConnectionCreateRequest {
            name: Some(name),
            source_id: names.source_id,
            destination_id: blueprint.template.destination_id,
            configurations: Some(StreamConfigurations { streams }),
            schedule,
            data_residency: None,
            namespace_definition,
            namespace_format,
            prefix,
            non_breaking_schema_updates_behavior: overrides
                .non_breaking_schema_updates_behavior
                .or(blueprint.non_breaking_schema_updates_behavior),
            status,
            tags: Some(blueprint.tags.clone()),
        },
        warnings,
    })
}

/// The copy's `prefix`: the plan's, rendered for the target, else the template's.
fn prefix(blueprint: &Blueprint, names: &Names<'_>, overrides: &Overrides) -> Option<String> {
    match &overrides.prefix {
        Some(t) => Some(t.render(names)),
        None => blueprint.prefix.clone(),
    }
}

/// The prefix a target's copy writes its tables with (none is `""`), known before its catalog:
/// the copies that share one may collide ([`Collisions`]).
pub fn table_prefix(blueprint: &Blueprint, names: &Names<'_>, overrides: &Overrides) -> String {
    prefix(blueprint, names, overrides).unwrap_or_default()
}

/// A plan schedule in create form: the plan validated it, but a trailing ` UTC` is still
/// stripped so the body carries what the server stores.
fn request_schedule(schedule: &ConnectionSchedule) -> ConnectionSchedule {
    ConnectionSchedule {
        schedule_type: schedule.schedule_type,
        cron_expression: schedule
            .cron_expression
            .as_deref()
            .map(|e| cron::strip_utc(e).to_string()),
    }
}

/// The template's schedule in create form, or an error saying to set `schedule` in the plan.
fn template_schedule(template: &ConnectionResponse) -> Result<ConnectionSchedule, String> {
    let name = &template.name;
    let schedule = &template.schedule;
    match schedule.schedule_type {
        ScheduleTypeWithBasic::Manual => Ok(ConnectionSchedule {
            schedule_type: ScheduleType::Manual,
            cron_expression: None,
        }),
        ScheduleTypeWithBasic::Basic => {
            let timing = schedule
                .basic_timing
                .as_deref()
                .unwrap_or("no interval given");
            let example = schedule
                .basic_timing
                .as_deref()
                .and_then(cron_for_basic_timing)
                .unwrap_or_else(|| "0 0 2 * * ?".to_string());
            Err(format!(
                "the template \"{name}\" runs on a basic schedule (\"{timing}\"), which Airbyte's \
                 API cannot create; set `defaults.schedule` in the plan, e.g. {{ scheduleType: \
                 cron, cronExpression: \"{example}\" }} or {{ scheduleType: manual }}"
            ))
        }
        ScheduleTypeWithBasic::Cron => {
            let Some(expression) = schedule.cron_expression.as_deref() else {
                return Err(format!(
                    "the template \"{name}\" has a cron schedule without an expression; set \
                     `schedule` in the plan"
                ));
            };
            let stripped = cron::strip_utc(expression);
            if let Some(zone) = cron::time_zone(stripped) {
                return Err(format!(
                    "the template \"{name}\" runs on cron \"{expression}\" in time zone \
                     \"{zone}\", but Airbyte's API only creates UTC schedules; set `schedule` in \
                     the plan to a UTC cron expression"
                ));
            }
            if let Err(why) = cron::check(stripped) {
                return Err(format!(
                    "the template \"{name}\" runs on cron \"{expression}\", which a create would \
                     refuse ({}); set `schedule` in the plan",
                    why.trim_end_matches('.')
                ));
            }
            Ok(ConnectionSchedule {
                schedule_type: ScheduleType::Cron,
                cron_expression: Some(stripped.to_string()),
            })
        }
    }
}

/// A cron expression close to a `basicTiming` such as "Every 6 HOURS", to suggest in the error.
fn cron_for_basic_timing(timing: &str) -> Option<String> {
    let mut words = timing.split_whitespace();
    let (Some(every), Some(count), Some(unit)) = (words.next(), words.next(), words.next()) else {
        return None;
    };
    if !every.eq_ignore_ascii_case("every") {
        return None;
    }
    let count: u32 = count.parse().ok()?;
    let unit = unit.to_ascii_uppercase();
    match (unit.trim_end_matches('S'), count) {
        ("HOUR", 1) => Some("0 0 * * * ?".to_string()),
        ("HOUR", 2..=23) => Some(format!("0 0 */{count} * * ?")),
        ("HOUR", 24) | ("DAY", 1) => Some("0 0 0 * * ?".to_string()),
        ("WEEK", 1) => Some("0 0 0 ? * MON".to_string()),
        _ => None,
    }
}

/// The template's status if a copy may take it, or an error saying to set `status`.
fn template_status(template: &ConnectionResponse) -> Result<ConnectionStatus, String> {
    match template.status {
        ConnectionStatus::Active | ConnectionStatus::Inactive => Ok(template.status),
        // Rejected by `Blueprint::new`; kept an error here so no path copies it.
        ConnectionStatus::Deprecated => Err(format!(
            "the template \"{}\" is deleted (status deprecated)",
            template.name
        )),
        ConnectionStatus::Locked => Err(format!(
            "the template \"{}\" is locked (Airbyte disabled it, e.g. for billing), and a copy \
             must not start locked; set `status` in the plan (active or inactive)",
            template.name
        )),
    }
}
