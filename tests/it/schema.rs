//! Issue 13.12: `replicate schema` prints the JSON Schema of plan files, for editors (the YAML
//! language server's `# yaml-language-server: $schema=…`). The schema, as the binary prints it,
//! is compiled with an independent validator (boon): every shipped plan fits it, and it refuses
//! what `validate` refuses for unknown keys and enum values.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

/// The schema as `replicate schema` prints it, compiled.
struct PlanSchema {
    document: Value,
    schemas: boon::Schemas,
    index: boon::SchemaIndex,
}

impl PlanSchema {
    fn printed() -> PlanSchema {
        let output = Command::cargo_bin("replicate")
            .unwrap()
            .arg("schema")
            .output()
            .unwrap();
        assert!(output.status.success());
        let document: Value = serde_json::from_slice(&output.stdout).unwrap();
        let mut compiler = boon::Compiler::new();
        compiler
            .add_resource("plan.schema.json", document.clone())
            .unwrap();
        let mut schemas = boon::Schemas::new();
        let index = compiler.compile("plan.schema.json", &mut schemas).unwrap();
        PlanSchema {
            document,
            schemas,
            index,
        }
    }

    /// Whether a plan, as YAML, fits the schema; the validator's complaint if not.
    fn check(&self, yaml: &str) -> Result<(), String> {
        let plan: Value = serde_yaml::from_str(yaml).unwrap();
        self.schemas
            .validate(&plan, self.index)
            .map_err(|e| e.to_string())
    }
}

/// Every key a plan may have, each set (accepted by `validate` and by the schema).
const EVERY_KEY: &str = r#"version: 1
template: "shop-template → Warehouse"
airbyte:
  url: https://api.airbyte.com/v1
targets:
  - source: shop-eu
    name: "EU"
    prefix: "eu_"
    status: inactive
    schedule: { scheduleType: manual }
    namespaceDefinition: source
    namespaceFormat: "x"
    nonBreakingSchemaUpdatesBehavior: ignore
  - match: "shop-*"
    type: postgres
    exclude: ["shop-legacy"]
    allow_empty: true
defaults:
  name: "{source.name} → {destination.name}"
  prefix: "{source.name|slug}_"
  status: active
  schedule: { scheduleType: cron, cronExpression: "0 0 3 * * ?" }
  namespaceDefinition: custom_format
  namespaceFormat: "${SOURCE_NAMESPACE}_{source.name|slug}"
  nonBreakingSchemaUpdatesBehavior: propagate_columns
existing: update
owner: "replicate:shops"
prune: false
missing_streams: fail
concurrency: 8
"#;

fn validates(yaml: &str) -> bool {
    replicate::plan::parse(Path::new("p.yaml"), yaml.as_bytes()).is_ok()
}

#[test]
fn the_schema_is_closed_and_spells_out_enums() {
    let schema = PlanSchema::printed();
    let doc = &schema.document;
    assert_eq!(doc["$schema"], "http://json-schema.org/draft-07/schema#");
    // `deny_unknown_fields` everywhere: every mapping is closed.
    assert_eq!(doc["additionalProperties"], false);
    let definitions = doc["definitions"].as_object().unwrap();
    assert!(definitions.len() >= 4, "{doc}");
    for (name, definition) in definitions {
        assert_eq!(definition["additionalProperties"], false, "{name}");
    }
    let names = |value: &Value| -> Vec<String> {
        value["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    assert_eq!(
        names(&doc["properties"]["existing"]),
        ["update", "skip", "fail"]
    );
    assert_eq!(
        names(&doc["properties"]["missing_streams"]),
        ["fail", "skip"]
    );
    let overrides = &definitions["RawOverrides"]["properties"];
    assert_eq!(names(&overrides["status"]), ["active", "inactive"]);
    assert_eq!(
        names(&overrides["namespaceDefinition"]),
        ["source", "destination", "custom_format"]
    );
    assert_eq!(
        names(&definitions["RawSchedule"]["properties"]["scheduleType"]),
        ["manual", "cron"]
    );
    assert_eq!(
        doc["required"],
        serde_json::json!(["version", "template", "targets"])
    );
}

#[test]
fn every_shipped_plan_fits_the_schema() {
    let schema = PlanSchema::printed();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(schema.check(&text), Ok(()), "{}", path.display());
            checked += 1;
        }
    }
    assert!(checked >= 5, "{checked} plans");
    assert_eq!(schema.check(EVERY_KEY), Ok(()));
    assert!(validates(EVERY_KEY));
}

#[test]
fn the_schema_refuses_what_validate_refuses() {
    let schema = PlanSchema::printed();
    // Each: what to change in EVERY_KEY; `validate` and the schema must both refuse the result.
    let mistakes = [
        // Unknown keys, at every level.
        ("concurrency: 8", "concurency: 8"),
        ("  url: https", "  ulr: https"),
        ("    type: postgres", "    typ: postgres"),
        ("    name: \"EU\"", "    nmae: \"EU\""),
        ("  prefix: \"{source", "  prefx: \"{source"),
        ("cronExpression: \"0 0 3", "cronExpresion: \"0 0 3"),
        (
            "{ scheduleType: manual }",
            "{ scheduleType: manual, timezone: UTC }",
        ),
        ("prune: false", "prune: false\ntoken: x"),
        // Values outside an enum.
        ("status: inactive", "status: paused"),
        ("status: active", "status: deprecated"),
        (
            "namespaceDefinition: source",
            "namespaceDefinition: sources",
        ),
        (
            "namespaceDefinition: custom_format",
            "namespaceDefinition: customformat",
        ),
        (
            "nonBreakingSchemaUpdatesBehavior: ignore",
            "nonBreakingSchemaUpdatesBehavior: ignored",
        ),
        ("existing: update", "existing: updat"),
        ("missing_streams: fail", "missing_streams: skipp"),
        ("scheduleType: manual", "scheduleType: basic"),
        ("version: 1", "version: 2"),
    ];
    for (from, to) in mistakes {
        assert!(EVERY_KEY.contains(from), "{from}");
        let plan = EVERY_KEY.replacen(from, to, 1);
        assert!(!validates(&plan), "validate accepted `{to}`");
        assert!(schema.check(&plan).is_err(), "the schema accepted `{to}`");
    }
}

#[test]
fn completions_and_the_man_page_know_the_schema_command() {
    let run = |args: &[&str]| {
        let output = Command::cargo_bin("replicate")
            .unwrap()
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap()
    };
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let script = run(&["completions", shell]);
        assert!(script.contains("schema"), "{shell}");
    }
    assert!(run(&["man"]).contains("replicate\\-schema"));
}
