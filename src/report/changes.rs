//! One line per [`Change`] of a drifted copy, as the preview prints them under its `~` row
//! (SPEC §8, Terraform's `field: old → new`): pure text from the same values the JSON shows.

use crate::diff::{Change, Subject};
use serde_json::Value;

/// The line of one change, without indentation: `schedule: cron "0 0 2 * * ?" → cron "0 0 6 * * ?"`,
/// `+ stream products`, `stream orders: syncMode a → b (resets its sync state)`.
pub fn line(change: &Change) -> String {
    let resets = if change.resets_state {
        " (resets its sync state)"
    } else {
        ""
    };
    match &change.subject {
        Subject::StreamAdded(stream) => format!("+ stream {stream}"),
        Subject::StreamRemoved(stream) => format!("- stream {stream}"),
        Subject::Stream(stream, "selectedFields") => format!(
            "stream {stream}: selectedFields {} → {}",
            fields(&change.from),
            fields(&change.to)
        ),
        Subject::Stream(stream, "mappers") => format!(
            "stream {stream}: mappers {} → {}",
            mappers(&change.from),
            mappers(&change.to)
        ),
        Subject::Stream(stream, setting) => format!(
            "stream {stream}: {setting} {} → {}{resets}",
            value(&change.from),
            value(&change.to)
        ),
        Subject::Field("schedule") => format!(
            "schedule: {} → {}",
            schedule(&change.field, &change.from),
            schedule(&change.field, &change.to)
        ),
        Subject::Field("tags") => {
            let had: Vec<&Value> = change.from.as_array().into_iter().flatten().collect();
            let added: Vec<String> = change
                .to
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| !had.contains(t))
                .map(|t| format!("+ {}", t.as_str().unwrap_or_default()))
                .collect();
            format!("tags: {}", added.join(", "))
        }
        Subject::Field(field) => {
            format!("{field}: {} → {}", quoted(&change.from), quoted(&change.to))
        }
    }
}

/// A value as the preview shows it: enums bare (`incremental_append`), paths joined with `.`.
fn value(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "(none)".into(),
        Value::Array(items) => items.iter().map(value).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A connection field's value: strings quoted (a name or prefix may be empty or hold spaces),
/// enums too, which keeps one rule for every top-level field.
fn quoted(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

fn fields(v: &Value) -> String {
    match v.as_array() {
        Some(items) if !items.is_empty() => value(v),
        _ => "(all fields)".into(),
    }
}

fn mappers(v: &Value) -> String {
    let types: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["type"].as_str())
        .collect();
    if types.is_empty() {
        "(none)".into()
    } else {
        format!("[{}]", types.join(", "))
    }
}

/// `cron "0 0 2 * * ?"`, `manual`, `basic "Every 24 HOURS"`: from a whole schedule object, or
/// from a bare expression when only the cron changed (`schedule.cronExpression`).
fn schedule(field: &str, v: &Value) -> String {
    if field == "schedule.cronExpression" {
        return format!("cron {}", quoted(v));
    }
    let kind = v["scheduleType"].as_str().unwrap_or("?");
    match (&v["cronExpression"], &v["basicTiming"]) {
        (Value::String(cron), _) if kind == "cron" => format!("cron \"{cron}\""),
        (_, Value::String(timing)) if kind == "basic" => format!("basic \"{timing}\""),
        _ => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(field: &str, subject: Subject, from: Value, to: Value, resets: bool) -> Change {
        Change {
            field: field.into(),
            from,
            to,
            resets_state: resets,
            subject,
        }
    }

    #[test]
    fn lines_read_like_the_spec() {
        let cases = [
            (
                change(
                    "schedule.cronExpression",
                    Subject::Field("schedule"),
                    json!("0 0 2 * * ?"),
                    json!("0 0 6 * * ?"),
                    false,
                ),
                r#"schedule: cron "0 0 2 * * ?" → cron "0 0 6 * * ?""#,
            ),
            (
                change(
                    "schedule",
                    Subject::Field("schedule"),
                    json!({"scheduleType": "manual"}),
                    json!({"scheduleType": "cron", "cronExpression": "0 0 6 * * ?"}),
                    false,
                ),
                r#"schedule: manual → cron "0 0 6 * * ?""#,
            ),
            (
                change(
                    "streams.products",
                    Subject::StreamAdded("products".into()),
                    Value::Null,
                    json!({"name": "products"}),
                    false,
                ),
                "+ stream products",
            ),
            (
                change(
                    "streams.orders.syncMode",
                    Subject::Stream("orders".into(), "syncMode"),
                    json!("incremental_append"),
                    json!("incremental_deduped_history"),
                    true,
                ),
                "stream orders: syncMode incremental_append → incremental_deduped_history \
                 (resets its sync state)",
            ),
            (
                change(
                    "streams.customers.selectedFields",
                    Subject::Stream("customers".into(), "selectedFields"),
                    json!(["email", "id"]),
                    json!([]),
                    false,
                ),
                "stream customers: selectedFields email, id → (all fields)",
            ),
            (
                change(
                    "tags",
                    Subject::Field("tags"),
                    json!(["tenant"]),
                    json!(["tenant", "replicate:shops"]),
                    false,
                ),
                "tags: + replicate:shops",
            ),
            (
                change(
                    "prefix",
                    Subject::Field("prefix"),
                    json!(""),
                    json!("shop_eu_"),
                    false,
                ),
                r#"prefix: "" → "shop_eu_""#,
            ),
        ];
        for (change, want) in cases {
            assert_eq!(line(&change), want);
        }
    }
}
