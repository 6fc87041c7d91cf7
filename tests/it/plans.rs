//! Every plan shipped in `plans/` validates, and the quick start's plan picks the sources the
//! README promises from the sandbox's default seed.

use crate::support::seed;
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
    let world = crate::support::World::new();
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
