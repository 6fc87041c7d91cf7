//! The plan loader end to end: plan text in, a [`Plan`] or every error it holds out.

use super::*;
use crate::wire::{
    ConnectionSchedule, ConnectionStatus, NamespaceDefinition, NonBreakingSchemaUpdatesBehavior,
    ScheduleType,
};
use std::path::Path;

fn load_str(text: &str) -> Result<Plan, PlanErrors> {
    parse(Path::new("p.yaml"), text.as_bytes())
}

fn errors(text: &str) -> Vec<String> {
    match load_str(text) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.0.iter().map(ToString::to_string).collect(),
    }
}

/// A minimal valid plan followed by `extra` top-level lines (from line 5 on).
fn with(extra: &str) -> String {
    format!("version: 1\ntemplate: shop-template\ntargets:\n  - source: shop-eu\n{extra}")
}

/// A minimal valid plan whose only target is `- ` followed by `entry` (from line 4 on).
fn target(entry: &str) -> String {
    format!("version: 1\ntemplate: shop-template\ntargets:\n  - {entry}\n")
}

/// An error without its `:line:column`, for the cases about what it says rather than where.
fn unplaced(error: &str) -> String {
    match error.strip_prefix("p.yaml:") {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
            let rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':');
            format!("p.yaml:{rest}")
        }
        _ => error.to_string(),
    }
}

/// Each case: a plan, and the start of every error it must produce, in order. An expected error
/// without a place (`p.yaml: path: …`) is compared with the error's place left out.
fn check_cases(cases: &[(String, &[&str])]) {
    for (text, expected) in cases {
        let got = errors(text);
        let matches = got.len() == expected.len()
            && got.iter().zip(expected.iter()).all(|(g, e)| {
                if e.starts_with("p.yaml: ") {
                    unplaced(g).starts_with(e)
                } else {
                    g.starts_with(e)
                }
            });
        assert!(
            matches,
            "plan:\n{text}\ngot:  {got:#?}\nwant: {expected:#?}"
        );
    }
}

#[test]
fn a_secret_key_in_a_document_that_does_not_parse_is_still_an_error() {
    // The parser reads past the unknown key `token|`, then finds that the rest is not YAML.
    let got = errors("? token|\nversion");
    assert_eq!(got.len(), 2, "{got:#?}");
    assert!(
        got[0].starts_with("p.yaml:1:3: token|: `token|` looks like a credential"),
        "{got:#?}"
    );
    assert!(
        got[1].starts_with("p.yaml:3:1: could not find expected ':'"),
        "{got:#?}"
    );
}

#[test]
fn syntax_and_type_errors_give_line_and_column() {
    check_cases(&[
        (
            "version: 1\ntemplate: \"t\ntargets: []\n".into(),
            &["p.yaml:4:1: found unexpected end of stream, while scanning a quoted scalar"],
        ),
        (
            target("source: [a]"),
            &["p.yaml:4:13: targets[0].source: invalid type: sequence, expected a string"],
        ),
        (
            "version: one\n".into(),
            &["p.yaml:1:10: version: invalid type: string \"one\", expected i64"],
        ),
        (
            "- a\n- b\n".into(),
            &["p.yaml:1:1: invalid type: sequence, expected a mapping of plan keys"],
        ),
        (
            target("shop-eu"),
            &[
                "p.yaml:4:5: targets[0]: invalid type: string \"shop-eu\", expected a mapping \
                   with `source: ID-OR-NAME` or `match: GLOB`",
            ],
        ),
        (
            with("defaults:\n  schedule: manual\n"),
            &[
                "p.yaml:6:13: defaults.schedule: invalid type: string \"manual\", expected a \
                   mapping like { scheduleType: cron",
            ],
        ),
        // serde_yaml places a duplicate key at the start of its mapping.
        (
            with("targets: []\n"),
            &["p.yaml:1:1: duplicate field `targets`"],
        ),
        (
            target("source: a\n    name: x\n    name: y"),
            &["p.yaml:4:5: targets[0]: duplicate field `name`"],
        ),
        (String::new(), &["p.yaml: the file is empty"]),
        (
            "# only a comment\n".into(),
            &[
                "p.yaml: version: missing",
                "p.yaml: template: missing",
                "p.yaml: targets: missing",
            ],
        ),
    ]);
}

#[test]
fn unknown_keys_suggest_the_closest() {
    check_cases(&[
        (
            with("concurency: 4\n"),
            &["p.yaml:5:1: unknown key `concurency` (did you mean `concurrency`?)"],
        ),
        (
            with("missing-streams: skip\n"),
            &["p.yaml:5:1: unknown key `missing-streams` (did you mean `missing_streams`?)"],
        ),
        (
            target("source: a\n    prefx: x_"),
            &["p.yaml:5:5: targets[0]: unknown key `prefx` (did you mean `prefix`?)"],
        ),
        (
            target("match: a\n    exclude: [b]\n    typ: postgres"),
            &["p.yaml:6:5: targets[0]: unknown key `typ` (did you mean `type`?)"],
        ),
        (
            with("defaults:\n  namespace_format: x\n"),
            &[
                "p.yaml:6:3: defaults: unknown key `namespace_format` (did you mean \
                   `namespaceFormat`?)",
            ],
        ),
        (
            with("defaults:\n  schedule: { scheduleType: cron, cron: x }\n"),
            &[
                // What the misspelt key leaves missing is said too, at the mapping's key.
                "p.yaml:6:3: defaults.schedule.cronExpression: missing",
                "p.yaml:6:35: defaults.schedule: unknown key `cron`; expected one of: \
                   scheduleType, cronExpression",
            ],
        ),
        (
            with("airbyte:\n  ulr: https://x\n"),
            &["p.yaml:6:3: airbyte: unknown key `ulr` (did you mean `url`?)"],
        ),
    ]);
}

#[test]
fn secret_keys_are_refused_anywhere_without_their_values() {
    let hint = "looks like a credential, and plan files must not hold credentials (the value \
                    is not shown); remove it and set AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and \
                    AIRBYTE_CLIENT_SECRET, in the environment";
    // Each case: a plan, and the (path, key) of every secret key in it.
    let cases = [
        (with("token: hunter2-value\n"), vec![("token", "token")]),
        (
            with("airbyte:\n  url: https://x\n  client_secret: hunter2-value\n"),
            vec![("airbyte.client_secret", "client_secret")],
        ),
        (
            with("airbyte:\n  clientSecret: hunter2-value\n  AIRBYTE_TOKEN: hunter2-value\n"),
            vec![
                ("airbyte.clientSecret", "clientSecret"),
                ("airbyte.AIRBYTE_TOKEN", "AIRBYTE_TOKEN"),
            ],
        ),
        (
            target("source: a\n    apiKey: hunter2-value"),
            vec![("targets[0].apiKey", "apiKey")],
        ),
        (
            with("defaults:\n  schedule:\n    Password: { nested: hunter2-value }\n"),
            vec![("defaults.schedule.Password", "Password")],
        ),
        (
            with("extra:\n  - [1, 2]\n  - { API-KEY: hunter2-value, secret: hunter2-value }\n"),
            vec![
                ("extra[1].API-KEY", "API-KEY"),
                ("extra[1].secret", "secret"),
            ],
        ),
        (
            target("api_key: \"hunter2-value\""),
            vec![("targets[0].api_key", "api_key")],
        ),
        (
            with("\"api.key\": hunter2-value\n"),
            vec![("api.key", "api.key")],
        ),
    ];
    for (text, secrets) in cases {
        let got: Vec<String> = errors(&text).iter().map(|e| unplaced(e)).collect();
        let want: Vec<String> = secrets
            .iter()
            .map(|(path, key)| format!("p.yaml: {path}: `{key}` {hint}"))
            .collect();
        // An unrelated key is still reported with the secrets; a secret key is not reported
        // twice as unknown.
        let (secrets, rest): (Vec<String>, Vec<String>) =
            got.iter().cloned().partition(|e| e.contains(hint));
        assert_eq!(secrets, want, "{text}");
        assert!(
            rest.iter()
                .all(|e| !e.contains("unknown key") || e.contains("unknown key `extra`")),
            "{text}: {rest:?}"
        );
        assert!(!got.iter().any(|e| e.contains("hunter2")), "{got:?}");
    }
}

#[test]
fn top_level_checks() {
    check_cases(&[
        (
            "version: 2\ntemplate: t\ntargets: [{source: a}]\n".into(),
            &["p.yaml: version: plan version 2 is not supported; this replicate reads version 1"],
        ),
        (
            "template: t\ntargets: [{source: a}]\n".into(),
            &["p.yaml: version: missing; add `version: 1` at the top of the plan"],
        ),
        (
            "version: 1\ntargets: [{source: a}]\n".into(),
            &[
                "p.yaml: template: missing; name the template connection by its id or its exact name",
            ],
        ),
        (
            "version: 1\ntemplate: ''\ntargets: [{source: a}]\n".into(),
            &["p.yaml: template: is empty; give the template connection's id or exact name"],
        ),
        (
            "version: 1\ntemplate: t\n".into(),
            &["p.yaml: targets: missing; list the sources to copy the template onto"],
        ),
        (
            "version: 1\ntemplate: t\ntargets: []\n".into(),
            &["p.yaml: targets: is empty; list at least one target"],
        ),
        (
            with("existing: skp\n"),
            &[
                "p.yaml: existing: unknown value `skp` (did you mean `skip`?); expected one of: update, skip, fail",
            ],
        ),
        (
            with("missing_streams: drop\n"),
            &["p.yaml: missing_streams: unknown value `drop`; expected one of: fail, skip"],
        ),
        (
            with("concurrency: 0\n"),
            &[
                "p.yaml: concurrency: 0 is out of range: the API requests in flight at once, 1 to 256",
            ],
        ),
        (
            with("concurrency: 257\n"),
            &["p.yaml: concurrency: 257 is out of range"],
        ),
        (
            with("concurrency: -3\n"),
            &["p.yaml: concurrency: -3 is out of range"],
        ),
        (
            with("concurrency: 99999999999999999999999\n"),
            &[
                "p.yaml:5:14: concurrency: invalid type: integer `99999999999999999999999` as \
                   u128, expected i64",
            ],
        ),
        (
            with("concurrency: 1.5\n"),
            &["p.yaml:5:14: concurrency: invalid type: floating point `1.5`, expected i64"],
        ),
    ]);
}

#[test]
fn urls_must_be_http() {
    let url = |u: &str| with(&format!("airbyte:\n  url: \"{u}\"\n"));
    check_cases(&[
        (
            url("ftp://api.airbyte.com/v1"),
            &[
                "p.yaml: airbyte.url: \"ftp://api.airbyte.com/v1\" is not an http(s) URL: it \
                   must start with `https://` (or `http://` for a local Airbyte)",
            ],
        ),
        (
            url("api.airbyte.com/v1"),
            &["p.yaml: airbyte.url: \"api.airbyte.com/v1\" is not an http(s) URL"],
        ),
        (
            url(""),
            &["p.yaml: airbyte.url: \"\" is not an http(s) URL"],
        ),
        (
            url("https:///v1"),
            &["p.yaml: airbyte.url: \"https:///v1\" has no host"],
        ),
        (
            url("https://:8000/v1"),
            &["p.yaml: airbyte.url: \"https://:8000/v1\" has no host"],
        ),
        (
            url("http://localhost:99999/v1"),
            &["p.yaml: airbyte.url: \"http://localhost:99999/v1\" has an invalid port `99999`"],
        ),
        (
            url("https://api airbyte.com"),
            &[
                "p.yaml: airbyte.url: \"https://api airbyte.com\" is not a URL: it contains whitespace",
            ],
        ),
        (
            url("https://me:hunter2@api.airbyte.com/v1"),
            &["p.yaml: airbyte.url: the URL holds credentials (`user:password@`; not shown)"],
        ),
    ]);
    assert!(!errors(&url("https://me:hunter2@x/v1"))[0].contains("hunter2"));
    for ok in [
        "https://api.airbyte.com/v1",
        "HTTPS://API.AIRBYTE.COM/v1",
        "http://localhost:8000/api/public/v1",
        "http://127.0.0.1:8006/v1",
        "http://[::1]:8006/v1",
        "http://[::1]/v1",
        "https://airbyte.internal",
    ] {
        let plan = load_str(&url(ok)).unwrap();
        assert_eq!(plan.url.as_deref(), Some(ok));
    }
}

#[test]
fn target_selectors() {
    check_cases(&[
        (
            target("source: a\n    match: \"b*\""),
            &["p.yaml: targets[0]: has both `source` and `match`; give exactly one"],
        ),
        (
            target("name: x"),
            &["p.yaml: targets[0]: needs `source` (one source, by id or exact name) or `match`"],
        ),
        (
            target("source: a\n    type: postgres\n    exclude: [b]"),
            &[
                "p.yaml: targets[0].type: `type` only goes with `match`",
                "p.yaml: targets[0].exclude: `exclude` only goes with `match`",
            ],
        ),
        (
            target("source: ''"),
            &["p.yaml: targets[0].source: is empty; give the source's id or exact name"],
        ),
        (
            target("match: \"shop-[\""),
            &[
                "p.yaml: targets[0].match: invalid glob \"shop-[\": unclosed character class; missing ']'",
            ],
        ),
        (
            target("match: \"{a,b\""),
            &["p.yaml: targets[0].match: invalid glob \"{a,b\": unclosed alternate group"],
        ),
        (
            target("match: ''"),
            &["p.yaml: targets[0].match: is empty; give a glob"],
        ),
        (
            target("match: \"shop-*\"\n    exclude: [ok, \"[z-a]\", \"x\\\\\"]"),
            &[
                "p.yaml: targets[0].exclude[1]: invalid glob \"[z-a]\": invalid range; 'z' > 'a'",
                "p.yaml: targets[0].exclude[2]: invalid glob \"x\\\": dangling '\\'",
            ],
        ),
        (
            target("match: \"*\"\n    type: ''"),
            &["p.yaml: targets[0].type: is empty"],
        ),
    ]);
}

#[test]
fn a_source_named_twice_names_both_entries() {
    let id = "3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11";
    let text = format!(
        "version: 1\ntemplate: t\ntargets:\n  - source: shop-eu\n  - match: \"shop-*\"\n  \
             - source: {id}\n  - source: shop-eu\n  - source: Shop-EU\n  - source: {}\n  \
             - source: shop-eu\n",
        id.to_uppercase()
    );
    assert_eq!(
        errors(&text),
        [
            "p.yaml:7:5: targets[3].source: \"shop-eu\" is already named by targets[0].source; \
                 name each source once"
                .to_string(),
            format!(
                "p.yaml:9:5: targets[5].source: {id} is already named by targets[2].source; \
                     name each source once"
            ),
            "p.yaml:10:5: targets[6].source: \"shop-eu\" is already named by targets[0].source; \
                 name each source once"
                .to_string(),
        ]
    );
}

#[test]
fn overrides_are_checked_in_defaults_and_targets() {
    check_cases(&[
        (
            with("defaults:\n  status: actve\n"),
            &[
                "p.yaml: defaults.status: unknown value `actve` (did you mean `active`?); \
                   expected one of: active, inactive",
            ],
        ),
        (
            target("source: a\n    status: deprecated"),
            &[
                "p.yaml: targets[0].status: `deprecated` means deleted, and a copy cannot be \
                   created deleted; use `active` or `inactive`",
            ],
        ),
        (
            target("source: a\n    status: locked"),
            &["p.yaml: targets[0].status: `locked` is set by Airbyte"],
        ),
        (
            with("defaults:\n  namespaceDefinition: customformat\n"),
            &[
                "p.yaml: defaults.namespaceDefinition: unknown value `customformat` (did you \
                   mean `custom_format`?); expected one of: source, destination, custom_format",
            ],
        ),
        (
            with("defaults:\n  nonBreakingSchemaUpdatesBehavior: propagateColumns\n"),
            &[
                "p.yaml: defaults.nonBreakingSchemaUpdatesBehavior: unknown value \
                   `propagateColumns` (did you mean `propagate_columns`?); expected one of: \
                   ignore, disable_connection, propagate_columns, propagate_fully",
            ],
        ),
        (
            with("defaults:\n  name: \"{source.nme} copy\"\n"),
            &[
                "p.yaml: defaults.name: unknown placeholder `{source.nme}` (did you mean \
                   `{source.name}`?)",
            ],
        ),
        (
            with("defaults:\n  name: ''\n"),
            &[
                "p.yaml: defaults.name: is empty; leave `name` out to get \"{source.name} → \
                   {destination.name}\"",
            ],
        ),
        (
            target("source: a\n    prefix: \"{source.name|slug\""),
            &["p.yaml: targets[0].prefix: unclosed `{` at character 1"],
        ),
        (
            target("source: a\n    namespaceFormat: \"{source.name|lower}\""),
            &["p.yaml: targets[0].namespaceFormat: unknown filter `|lower`"],
        ),
        (
            target("source: a\n    name: \"a}b\""),
            &["p.yaml: targets[0].name: unmatched `}` at character 2"],
        ),
    ]);
}

#[test]
fn schedules() {
    let schedule = |s: &str| with(&format!("defaults:\n  schedule: {s}\n"));
    check_cases(&[
        (
            schedule("{ scheduleType: manual, cronExpression: \"0 0 3 * * ?\" }"),
            &[
                "p.yaml: defaults.schedule.cronExpression: a manual schedule takes no \
                   cronExpression; remove it, or set `scheduleType: cron`",
            ],
        ),
        (
            schedule("{ scheduleType: cron }"),
            &[
                "p.yaml: defaults.schedule.cronExpression: missing; a cron schedule needs a \
                   Quartz expression",
            ],
        ),
        (
            schedule("{ scheduleType: cron, cronExpression: \"0 0 3 * *\" }"),
            &["p.yaml: defaults.schedule.cronExpression: Cron expression contains 5 parts"],
        ),
        (
            schedule("{ scheduleType: cron, cronExpression: \"0 */5 * * * ?\" }"),
            &[
                "p.yaml: defaults.schedule.cronExpression: The cron expression 0 */5 * * * ? \
                   is not valid: cron executions must be more than 1 hour apart",
            ],
        ),
        (
            schedule("{ scheduleType: cron, cronExpression: \"0 0 3 * * ? Europe/Paris\" }"),
            &[
                "p.yaml: defaults.schedule.cronExpression: The cron expression 0 0 3 * * ? \
                   Europe/Paris is not valid: 'Europe/Paris' is a time zone, not a cron field. \
                   Airbyte's cron is Quartz",
            ],
        ),
        (
            schedule("{ scheduleType: basic }"),
            &[
                "p.yaml: defaults.schedule.scheduleType: `basic` schedules cannot be created \
                   through the Airbyte API",
            ],
        ),
        (
            schedule("{ scheduleType: Cron, cronExpression: \"0 0 3 * * ?\" }"),
            &[
                "p.yaml: defaults.schedule.scheduleType: unknown value `Cron` (did you mean \
                   `cron`?); expected one of: manual, cron",
            ],
        ),
        (
            schedule("{ cronExpression: \"0 0 3 * * ?\" }"),
            &["p.yaml: defaults.schedule.scheduleType: missing; set `manual`, or `cron`"],
        ),
        (
            target(
                "source: a\n    schedule: { scheduleType: cron, cronExpression: \"0 0 3 * * *\" }",
            ),
            &[
                "p.yaml: targets[0].schedule.cronExpression: The cron expression 0 0 3 * * * is \
                   not valid: support for specifying both a day-of-week AND a day-of-month",
            ],
        ),
    ]);
    let cron = |e: &str| {
        load_str(&schedule(&format!(
            "{{ scheduleType: cron, cronExpression: \"{e}\" }}"
        )))
        .unwrap()
        .defaults
        .schedule
        .unwrap()
    };
    assert_eq!(
        cron("0 0 3 * * ? UTC"),
        ConnectionSchedule {
            schedule_type: ScheduleType::Cron,
            cron_expression: Some("0 0 3 * * ?".into())
        }
    );
    assert_eq!(
        cron("0 30 */4 * * ? 2030").cron_expression.as_deref(),
        Some("0 30 */4 * * ? 2030")
    );
    let manual = load_str(&schedule("{ scheduleType: manual }")).unwrap();
    assert_eq!(
        manual.defaults.schedule,
        Some(ConnectionSchedule {
            schedule_type: ScheduleType::Manual,
            cron_expression: None
        })
    );
}

#[test]
fn every_problem_is_reported_together() {
    let text = "\
version: 3
template: shop-template
airbyte:
  url: ftp://x
targets:
  - source: shop-eu
    status: locked
  - match: \"shop-[\"
  - source: shop-eu
    type: postgres
defaults:
  name: \"{source}\"
  schedule: { scheduleType: cron }
existing: updat
concurrency: 0
";
    let got: Vec<String> = errors(text).iter().map(|e| unplaced(e)).collect();
    let paths: Vec<&str> = got
        .iter()
        .map(|e| {
            e.strip_prefix("p.yaml: ")
                .unwrap()
                .split(": ")
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(
        paths,
        [
            "version",
            "airbyte.url",
            "targets[0].status",
            "targets[1].match",
            "targets[2].source",
            "targets[2].type",
            "defaults.name",
            "defaults.schedule.cronExpression",
            "existing",
            "concurrency",
        ]
    );
}

/// The full report for a plan with one mistake of most kinds, as a user reads it.
#[test]
fn snapshot_of_a_plan_with_many_problems() {
    let text = "\
version: 2
template: \"shop-template → Warehouse\"
airbyte:
  url: api.airbyte.com
targets:
  - source: shop-eu
    status: deprecated
    nmae: \"EU\"
  - match: \"shop-{eu,us\"
    exclude: [shop-legacy]
  - source: shop-us
    match: \"shop-*\"
  - source: shop-eu
    prefix: \"{source.name|slugify}_\"
defaults:
  name: \"{source.nam} → {destination.name}\"
  schedule: { scheduleType: cron, cronExpression: \"0 0 3 * * ? America/New_York\" }
  namespaceDefinition: customformat
existing: updat
missing_streams: skipp
concurrency: 1000
";
    insta::assert_snapshot!(load_str(text).unwrap_err().to_string());
}

#[test]
fn snapshot_of_secret_keys() {
    let text = "\
version: 1
template: t
airbyte:
  url: https://api.airbyte.com/v1
  clientSecret: do-not-print-me
targets:
  - source: a
    token: do-not-print-me
defaults:
  prefx: x_
";
    let report = load_str(text).unwrap_err().to_string();
    assert!(!report.contains("do-not-print-me"));
    insta::assert_snapshot!(report);
}

#[test]
fn hostile_input_is_an_error_not_a_panic() {
    let inputs: Vec<Vec<u8>> = vec![
            b"\xff\xfe\x00garbage".to_vec(),
            "\u{feff}".as_bytes().to_vec(),
            b"\x00\x01\x02".to_vec(),
            "[".repeat(100_000).into_bytes(),
            "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n\
             c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n\
             e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n\
             g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]\n\
             token: *h\n"
                .as_bytes()
                .to_vec(),
            "version: 1\ntemplate: t\ntargets:\n  - source: a\n".repeat(3).into_bytes(),
            "version: 18446744073709551616\n".as_bytes().to_vec(),
            "{a: ".repeat(200).into_bytes(),
            format!("{{{}}}", "a: [".repeat(60)).into_bytes(),
        ];
    for bytes in inputs {
        let result = parse(Path::new("p.yaml"), &bytes);
        let errors = result.expect_err("hostile input was accepted");
        assert!(!errors.0.is_empty());
        assert!(errors.to_string().starts_with("p.yaml"), "{errors}");
    }
    // A BOM before a valid plan is fine.
    let bom = format!("\u{feff}{}", with(""));
    assert!(parse(Path::new("p.yaml"), bom.as_bytes()).is_ok());
}

#[test]
fn a_valid_plan_becomes_the_model() {
    let text = "\
version: 1
template: \"shop-template → Warehouse\"
airbyte:
  url: https://api.airbyte.com/v1
targets:
  - source: shop-eu
  - source: 3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11
    name: \"EU special\"
    status: inactive
  - match: \"shop-*\"
    type: postgres
    exclude: [\"shop-legacy\"]
  - source: 3c0d1c8e5b7e4a7a9d3e2f1b4b9a7c11
defaults:
  prefix: \"{source.name|slug}_\"
  status: active
  schedule: { scheduleType: cron, cronExpression: \"0 0 3 * * ?\" }
  namespaceDefinition: custom_format
  namespaceFormat: \"${SOURCE_NAMESPACE}\"
  nonBreakingSchemaUpdatesBehavior: propagate_columns
existing: fail
missing_streams: skip
concurrency: 16
";
    let plan = load_str(text).unwrap();
    assert_eq!(plan.file, Path::new("p.yaml"));
    assert_eq!(
        plan.template,
        Reference::Name("shop-template → Warehouse".into())
    );
    assert_eq!(plan.url.as_deref(), Some("https://api.airbyte.com/v1"));
    assert_eq!(plan.existing, ExistingPolicy::Fail);
    assert_eq!(plan.missing_streams, MissingStreamsPolicy::Skip);
    assert_eq!(plan.concurrency, Some(16));

    let paths: Vec<&str> = plan.targets.iter().map(|t| t.path.as_str()).collect();
    assert_eq!(
        paths,
        ["targets[0]", "targets[1]", "targets[2]", "targets[3]"]
    );
    assert!(
        matches!(&plan.targets[0].selector, Selector::Source(Reference::Name(n)) if n == "shop-eu")
    );
    let id = Uuid::parse_str("3c0d1c8e-5b7e-4a7a-9d3e-2f1b4b9a7c11").unwrap();
    assert!(matches!(&plan.targets[1].selector, Selector::Source(Reference::Id(i)) if *i == id));
    // Only the hyphenated form is an id; Airbyte never writes ids any other way.
    assert!(matches!(
        &plan.targets[3].selector,
        Selector::Source(Reference::Name(_))
    ));
    let Selector::Match {
        pattern,
        source_type,
        exclude,
        ..
    } = &plan.targets[2].selector
    else {
        panic!("targets[2] is a match");
    };
    assert_eq!(pattern.text, "shop-*");
    assert_eq!(source_type.as_deref(), Some("postgres"));
    assert_eq!(
        exclude.iter().map(|g| g.text.as_str()).collect::<Vec<_>>(),
        ["shop-legacy"]
    );

    let special = &plan.targets[1].overrides;
    assert_eq!(
        special.name.as_ref().map(Template::as_str),
        Some("EU special")
    );
    assert_eq!(special.status, Some(ConnectionStatus::Inactive));
    assert_eq!(plan.targets[0].overrides, Overrides::default());

    let d = &plan.defaults;
    assert_eq!(d.name.as_ref().map(Template::as_str), Some(DEFAULT_NAME));
    assert_eq!(
        d.prefix.as_ref().map(Template::as_str),
        Some("{source.name|slug}_")
    );
    assert_eq!(d.status, Some(ConnectionStatus::Active));
    assert_eq!(
        d.namespace_definition,
        Some(NamespaceDefinition::CustomFormat)
    );
    assert_eq!(
        d.namespace_format.as_ref().map(Template::as_str),
        Some("${SOURCE_NAMESPACE}")
    );
    assert_eq!(
        d.non_breaking_schema_updates_behavior,
        Some(NonBreakingSchemaUpdatesBehavior::PropagateColumns)
    );
    let merged = d.overlaid_with(special);
    assert_eq!(
        merged.name.as_ref().map(Template::as_str),
        Some("EU special")
    );
    assert_eq!(merged.status, Some(ConnectionStatus::Inactive));
    assert_eq!(merged.prefix, d.prefix);
}

#[test]
fn read_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let errors = load(&missing).unwrap_err();
    let message = errors.to_string();
    assert!(
        message.starts_with(&format!(
            "{}: cannot read the plan file: ",
            missing.display()
        )),
        "{message}"
    );
    let good = dir.path().join("good.yaml");
    std::fs::write(&good, with("")).unwrap();
    assert_eq!(load(&good).unwrap().file, good);
}

#[test]
fn minimal_plan_gets_the_defaults() {
    let plan = load_str(&with("")).unwrap();
    assert_eq!(plan.template, Reference::Name("shop-template".into()));
    assert_eq!(plan.url, None);
    assert_eq!(plan.existing, ExistingPolicy::Update);
    assert_eq!(plan.missing_streams, MissingStreamsPolicy::Fail);
    assert_eq!(plan.concurrency, None);
    assert_eq!(plan.owner, "replicate:p", "from the file stem");
    assert!(!plan.prune);
    assert_eq!(
        plan.defaults,
        Overrides {
            name: Some(Template::parse(DEFAULT_NAME).unwrap()),
            ..Overrides::default()
        }
    );
    // A name set in `defaults` replaces the default one.
    let named = load_str(&with("defaults:\n  name: \"{source.name}\"\n")).unwrap();
    assert_eq!(named.defaults.name.unwrap().as_str(), "{source.name}");
}

#[test]
fn twenty_thousand_targets_load() {
    use std::fmt::Write as _;
    let mut text = String::from("version: 1\ntemplate: t\ntargets:\n");
    for i in 0..20_000 {
        writeln!(text, "  - source: bulk-{i:06}").unwrap();
        if i % 100 == 0 {
            writeln!(
                text,
                "  - match: \"bulk-{i:04}*\"\n    name: \"{{source.name}} #{i}\""
            )
            .unwrap();
        }
    }
    let plan = load_str(&text).unwrap();
    assert_eq!(plan.targets.len(), 20_200);
    text.push_str("  - source: bulk-019999\n");
    assert_eq!(
        errors(&text),
        [
            "p.yaml:20404:5: targets[20200].source: \"bulk-019999\" is already named by \
              targets[20199].source; name each source once"
        ]
    );
}

#[test]
fn owner_prune_and_allow_empty() {
    let plan = load_str(&with("owner: \"replicate:shops\"\nprune: true\n")).unwrap();
    assert_eq!(plan.owner, "replicate:shops");
    assert!(plan.prune);
    let plan = load_str(&target("match: \"x-*\"\n    allow_empty: true")).unwrap();
    assert!(matches!(
        plan.targets[0].selector,
        Selector::Match {
            allow_empty: true,
            ..
        }
    ));
    // 30 UTF-16 units is Airbyte's limit; `é` is one unit.
    let thirty = format!("replicate:{}", "é".repeat(20));
    assert_eq!(
        load_str(&with(&format!("owner: \"{thirty}\"\n")))
            .unwrap()
            .owner,
        thirty
    );
    check_cases(&[
        (
            with("owner: \"replicate:a-very-long-owner-nam\"\n"),
            &[
                "p.yaml: owner: \"replicate:a-very-long-owner-nam\" has 31 characters, but \
                 Airbyte's tag names have at most 30; choose a shorter owner tag",
            ],
        ),
        (
            with("owner: \"\"\n"),
            &["p.yaml: owner: is empty; name the tag that marks this plan's copies"],
        ),
        (
            with("prune: yes please\n"),
            &["p.yaml:5:8: prune: invalid type"],
        ),
        (
            target("source: shop-eu\n    allow_empty: true"),
            &["p.yaml: targets[0].allow_empty: `allow_empty` only goes with `match`"],
        ),
    ]);
    // The default comes from the file name, and says so when it is too long.
    let long = parse(
        Path::new("plans/a-rather-long-plan-file-name.yaml"),
        with("").as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        long,
        "plans/a-rather-long-plan-file-name.yaml: owner: the default owner tag \
         \"replicate:a-rather-long-plan-file-name\" (from the file name) has 38 characters, but \
         Airbyte's tag names have at most 30; set `owner` to a shorter tag name, e.g. \
         \"replicate:shops\""
    );
}
