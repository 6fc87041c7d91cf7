//! Every plan shipped in `plans/` validates, and the quick start's plan picks the sources the
//! README promises from the sandbox's default seed. Then what a plan is checked for, end to end:
//! every problem of a file at once, a source selected twice, copies writing the same tables.

use crate::support::{World, seed};
use replicate::plan::{self, Plan, Reference, Selector};
use std::path::{Path, PathBuf};

fn plan_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_plan_validates() {
    let files = plan_files();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap()).collect();
    for expected in [
        "example.yaml",
        "per-shop-overrides.yaml",
        "with-legacy.yaml",
    ] {
        assert!(
            names.iter().any(|n| *n == expected),
            "plans/{expected} is missing"
        );
    }
    let failures: Vec<String> = files
        .iter()
        .filter_map(|file| plan::load(file).err().map(|e| e.to_string()))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The seed sources a plan's targets pick, leaving out the template's own source as resolve does.
fn picked(plan: &Plan) -> Vec<&'static str> {
    seed::SOURCES
        .iter()
        .filter(|(name, _, _)| *name != "shop-template")
        .filter(|(name, source_type, _)| {
            plan.targets.iter().any(|target| match &target.selector {
                Selector::Source(Reference::Name(n)) => n == name,
                Selector::Source(Reference::Id(_)) => false,
                Selector::Match {
                    pattern,
                    source_type: wanted,
                    exclude,
                    ..
                } => {
                    pattern.is_match(name)
                        && wanted.as_deref().is_none_or(|t| t == *source_type)
                        && !exclude.iter().any(|g| g.is_match(name))
                }
            })
        })
        .map(|(name, _, _)| *name)
        .collect()
}

#[test]
fn shipped_plans_pick_the_promised_sources() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let cases: [(&str, &[&str]); 4] = [
        (
            "example.yaml",
            &["shop-eu", "shop-us", "shop-apac", "shop-latam"],
        ),
        (
            "per-shop-overrides.yaml",
            &["shop-eu", "shop-us", "shop-apac", "shop-latam"],
        ),
        ("with-legacy.yaml", &["shop-legacy"]),
        (
            "shops.yaml",
            &["shop-eu", "shop-us", "shop-apac", "shop-latam"],
        ),
    ];
    for (file, expected) in cases {
        let plan = plan::load(&dir.join(file)).unwrap();
        assert_eq!(
            plan.template,
            Reference::Name("shop-template → Warehouse".into()),
            "{file}"
        );
        assert_eq!(picked(&plan), expected, "{file}");
    }
}

#[test]
fn example_names_its_copies_readably() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("plans");
    let plan = plan::load(&dir.join("example.yaml")).unwrap();
    let names = plan::Names {
        source_name: "shop-eu",
        source_id: uuid::Uuid::nil(),
        source_type: "postgres",
        destination_name: "Warehouse",
        destination_id: uuid::Uuid::nil(),
        template_name: "shop-template → Warehouse",
    };
    let render = |t: Option<&plan::Template>| t.map(|t| t.render(&names));
    assert_eq!(
        render(plan.defaults.name.as_ref()).as_deref(),
        Some("shop-eu → Warehouse")
    );
    assert_eq!(
        render(plan.defaults.prefix.as_ref()).as_deref(),
        Some("shop_eu_")
    );
    let legacy = plan::load(&dir.join("with-legacy.yaml")).unwrap();
    assert_eq!(legacy.missing_streams, plan::MissingStreamsPolicy::Skip);
}

/// Issue 13.8: every problem of a plan is reported at once, each at its `file:line:column`:
/// every unknown key (the parser no longer stops at the first), and the semantic problems at the
/// line of their key. These are the README's example lines.
#[test]
fn every_problem_of_a_plan_is_reported_at_once_with_its_place() {
    let world = World::new();
    std::fs::create_dir(world.dir.path().join("plans")).unwrap();
    world.plan(
        "plans/x.yaml",
        "version: 1\n\
         template: \"shop-template → Warehouse\"\n\
         targets:\n  \
           - source: shop-eu\n    \
             nmae: \"EU\"\n  \
           - match: \"shop-{eu,us\"\n    \
             exlude: [shop-legacy]\n\
         defaults:\n  \
           name: \"{source.nam} → {destination.name}\"\n",
    );
    let output = world
        .replicate()
        .args(["validate", "plans/x.yaml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "plans/x.yaml:5:5: targets[0]: unknown key `nmae` (did you mean `name`?)",
            "plans/x.yaml:6:5: targets[1].match: invalid glob \"shop-{eu,us\": unclosed alternate \
             group; missing '}' (maybe escape '{' with '[{]'?)",
            "plans/x.yaml:7:5: targets[1]: unknown key `exlude` (did you mean `exclude`?)",
            "plans/x.yaml:9:3: defaults.name: unknown placeholder `{source.nam}` (did you mean \
             `{source.name}`?); valid placeholders: {source.name}, {source.id}, {source.type}, \
             {destination.name}, {destination.id}, {template.name} (write `{{` and `}}` for \
             literal braces)",
        ]
    );
}

/// Issue 13.9: a source that two `match` entries select is labelled by its name, in the
/// preview and in the JSON document, not by the entry (`targets[0]   targets[0]: …`).
#[test]
fn a_source_selected_twice_is_labelled_by_its_name() {
    let world = World::new();
    let plan = world.plan(
        "twice.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  - match: \"shop-e*\"\n  \
         - match: \"shop-*u*\"\ndefaults:\n  prefix: \"{source.name|slug}_\"\n",
    );
    let output = world.replicate().arg("plan").arg(&plan).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.lines().any(|line| line
            == "! shop-eu  targets[0]: source \"shop-eu\" is selected by both targets[0] and \
                targets[1]; a source may have one copy only"),
        "{stdout}"
    );
    let output = world
        .replicate()
        .args(["plan", "--output", "json"])
        .arg(&plan)
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let row = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["action"] == "error")
        .unwrap();
    assert_eq!(row["sourceName"], "shop-eu", "{doc}");
    assert_eq!(row["sourceId"], crate::support::seed::SHOP_EU, "{doc}");
}

/// Issue 13.16: copies that would write the same destination tables (the same namespace, as
/// each copy resolves it, prefix and stream) as each other or as the template are errors for
/// each of them, found before any write: against a sandbox that refuses such connections
/// (`--refuse-conflicting-streams`), nothing is refused, because nothing colliding is sent.
#[test]
fn copies_writing_the_same_tables_are_errors_before_any_write() {
    let world = World::with(|c| c.refuse_conflicting_streams = true);
    let plan = world.plan(
        "collide.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  \
         - source: shop-eu\n    prefix: shop_\n  \
         - source: shop-us\n    prefix: shop_\n  \
         - source: shop-apac\n    prefix: shop_template_\n  \
         - source: shop-latam\n\
         defaults:\n  prefix: \"{source.name|slug}_\"\n",
    );
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let advice = "; two connections writing one table overwrite each other's data (and Airbyte \
                  may refuse the second): give each copy its own `prefix` (e.g. \
                  \"{source.name|slug}_\") or namespace";
    for row in [
        format!(
            "! shop-apac   writes the same destination tables as the template \"shop-template → \
             Warehouse\": shop_template_orders, shop_template_customers, shop_template_products \
             (the destination's default namespace){advice}"
        ),
        format!(
            "! shop-eu     writes the same destination tables as the copy for source \"shop-us\": \
             shop_orders, shop_customers, shop_products (the destination's default namespace)\
             {advice}"
        ),
        format!(
            "! shop-us     writes the same destination tables as the copy for source \"shop-eu\": \
             shop_orders, shop_customers, shop_products (the destination's default namespace)\
             {advice}"
        ),
        "+ shop-latam  shop-latam → Warehouse".to_string(),
    ] {
        assert!(
            stdout.lines().any(|line| line == row),
            "{row}\nin:\n{stdout}"
        );
    }
    // Only the copy that collides with nothing was sent, and the sandbox took it.
    assert_eq!(world.requests("POST /connections"), 1);
    assert_eq!(world.copies_per_source().len(), 1);

    // The same prefix, but a namespace each copy renders from its source: no collision.
    let plan = world.plan(
        "apart.yaml",
        "version: 1\ntemplate: \"shop-template → Warehouse\"\ntargets:\n  \
         - source: shop-eu\n  - source: shop-us\n\
         defaults:\n  prefix: shop_\n  namespaceDefinition: custom_format\n  \
         namespaceFormat: \"tenant_{source.name|slug}\"\n",
    );
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(world.requests("POST /connections"), 3);
}

/// Issue 13.16: an existing copy counts too, with the streams and namespaces it has: a new copy
/// whose tables it already writes is an error, and so is the copy (the plan says both write
/// them). With `namespaceDefinition: source`, the shops' streams all resolve to `public`.
#[test]
fn a_new_copy_may_not_write_an_existing_copys_tables() {
    let world = World::new();
    let head = "version: 1\ntemplate: \"shop-template → Warehouse\"\ndefaults:\n  prefix: p_\n  \
                namespaceDefinition: source\ntargets:\n  - source: shop-eu\n";
    let first = world.plan("first.yaml", head);
    let output = world
        .replicate()
        .args(["apply", "--yes"])
        .arg(&first)
        .output()
        .unwrap();
    assert!(output.status.success());
    let second = world.plan("second.yaml", &format!("{head}  - source: shop-us\n"));
    let output = world.replicate().arg("plan").arg(&second).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    for (source, other) in [("shop-eu", "shop-us"), ("shop-us", "shop-eu")] {
        let row = format!(
            "! {source}  writes the same destination tables as the copy for source \"{other}\": \
             p_orders, p_customers, p_products (namespace \"public\")"
        );
        assert!(
            stdout.lines().any(|line| line.starts_with(&row)),
            "{row}\nin:\n{stdout}"
        );
    }
}
