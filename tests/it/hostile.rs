//! Hostile input: no plan, seed or server response makes replicate panic, hang or eat memory.
//!
//! Four fronts. The plan loader and the seed loader get a table of hostile documents (empty,
//! random bytes, BOMs, tabs, duplicate keys, wrong types, huge numbers, non-UTF-8, deep nesting,
//! alias bombs, 10 MB of junk, a 10 MB valid plan) and property tests over arbitrary and mutated
//! input. The client meets a hostile server: the real binary runs against a proxy in front of a
//! sandbox that answers one route with truncated JSON, wrong types, HTML, an endless body, a
//! hang, endless pages; and property tests send arbitrary bodies to the library's client. The
//! sandbox, as a server, gets hostile requests.
//!
//! Property tests run a fixed, modest number of cases; `PROPTEST_CASES=100000 cargo test
//! --release --test it hostile::` runs a longer search.

use crate::support::seed::{self, TEMPLATE, WORKSPACE};
use crate::support::{Api, HANG_GUARD, RawRequest, read_request};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use proptest::test_runner::TestRunner;
use replicate::client::{Client, ClientConfig, Credentials, RetryPolicy};
use replicate::plan::{Names, Template};
use replicate::report::events::Silent;
use replicate::sandbox::{Sandbox, SandboxConfig, Seed};
use replicate::secret::Secret;
use std::fmt::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const PLAN_FILE: &str = "hostile-plan.yaml";
const SEED_FILE: &str = "hostile-seed.yaml";

/// The most an error message may hold: a hostile value is quoted, not dumped whole.
const MAX_MESSAGE: usize = 1024;

// ---------------------------------------------------------------------------------------------
// Hostile documents, shared by the plan and the seed loaders.

const VALID_PLAN: &str =
    "version: 1\ntemplate: shop-template → Warehouse\ntargets:\n  - match: \"shop-*\"\n";

/// A billion-laughs document: nine levels of nine aliases each, 9^9 nodes if expanded.
fn alias_bomb(root: &str) -> String {
    let mut text = String::from(
        "a: &a [\"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\", \"lol\"]\n",
    );
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(", ");
        writeln!(text, "{name}: &{name} [{refs}]").unwrap();
    }
    writeln!(text, "{root}: *i").unwrap();
    text
}

/// 10 MB of deterministic random bytes.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len).map(|_| rng.u8(..)).collect()
}

/// 10 MB of deterministic random printable ASCII, newlines and YAML punctuation included.
fn random_printable(len: usize, seed: u64) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789 :-[]{},&*!|>'\"#%@`?\n\t";
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..len)
        .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
        .collect()
}

const TEN_MB: usize = 10 * 1024 * 1024;

/// Documents that must not load: each a name and its bytes. The valid plan's keys appear in
/// many of them, so the seed loader sees unknown keys and the plan loader sees the shape it
/// expects, broken one way at a time.
#[allow(clippy::too_many_lines)] // a table
fn hostile_documents() -> Vec<(&'static str, Vec<u8>)> {
    let mut docs: Vec<(&'static str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("only whitespace", b"  \n\n\t\n".to_vec()),
        ("only a comment", b"# nothing here\n".to_vec()),
        ("only a BOM", b"\xEF\xBB\xBF".to_vec()),
        ("a BOM then nothing but space", b"\xEF\xBB\xBF\n  \n".to_vec()),
        ("two BOMs", [b"\xEF\xBB\xBF\xEF\xBB\xBF".as_slice(), VALID_PLAN.as_bytes()].concat()),
        ("UTF-16 LE with its BOM", {
            let mut bytes = vec![0xFF, 0xFE];
            bytes.extend(VALID_PLAN.encode_utf16().flat_map(u16::to_le_bytes));
            bytes
        }),
        ("a lone continuation byte", b"version: 1\ntemplate: \x80\n".to_vec()),
        ("Latin-1 text", b"version: 1\ntemplate: Z\xFCrich\n".to_vec()),
        ("a truncated UTF-8 sequence at the end", b"version: 1\ntemplate: \xE2\x82".to_vec()),
        ("NUL bytes", b"version: 1\0\ntemplate: \0x\n".to_vec()),
        ("control characters", b"version: 1\ntemplate: \x07\x1b[31m\n".to_vec()),
        ("tabs for indentation", b"version: 1\ntemplate: t\ntargets:\n\t- match: x\n".to_vec()),
        ("a tab before a key", b"\tversion: 1\n".to_vec()),
        ("a duplicate key", b"version: 1\nversion: 1\ntemplate: t\ntargets: [{match: x}]\n".to_vec()),
        ("a duplicate nested key", b"version: 1\ntemplate: t\ntargets:\n  - match: x\n    match: y\n".to_vec()),
        ("a null document", b"~\n".to_vec()),
        ("an explicit null document", b"--- null\n".to_vec()),
        ("two documents", format!("{VALID_PLAN}---\n{VALID_PLAN}").into_bytes()),
        ("a document end marker then junk", format!("{VALID_PLAN}...\n]]]\n").into_bytes()),
        ("a scalar document", b"just a string\n".to_vec()),
        ("a sequence document", b"- version: 1\n".to_vec()),
        ("version as a string", b"version: \"1\"\ntemplate: t\ntargets: [{match: x}]\n".to_vec()),
        ("version as a float", b"version: 1.0\ntemplate: t\ntargets: [{match: x}]\n".to_vec()),
        ("version huge", b"version: 99999999999999999999999999999999\n".to_vec()),
        ("version negative", b"version: -1\ntemplate: t\ntargets: [{match: x}]\n".to_vec()),
        ("version i64::MIN", b"version: -9223372036854775808\ntemplate: t\ntargets: [{match: x}]\n".to_vec()),
        ("version .inf", b"version: .inf\n".to_vec()),
        ("version .nan", b"version: .nan\n".to_vec()),
        ("concurrency huge", format!("{VALID_PLAN}concurrency: 18446744073709551616\n").into_bytes()),
        ("concurrency u64::MAX", format!("{VALID_PLAN}concurrency: 18446744073709551615\n").into_bytes()),
        ("concurrency i64::MAX", format!("{VALID_PLAN}concurrency: 9223372036854775807\n").into_bytes()),
        ("concurrency zero", format!("{VALID_PLAN}concurrency: 0\n").into_bytes()),
        ("concurrency negative", format!("{VALID_PLAN}concurrency: -8\n").into_bytes()),
        ("concurrency a float", format!("{VALID_PLAN}concurrency: 2.5\n").into_bytes()),
        ("concurrency 1e400", format!("{VALID_PLAN}concurrency: 1e400\n").into_bytes()),
        ("concurrency hex", format!("{VALID_PLAN}concurrency: 0xFFFFFFFFFFFFFFFFFFFF\n").into_bytes()),
        ("template a list", b"version: 1\ntemplate: [a, b]\ntargets: [{match: x}]\n".to_vec()),
        ("template null", b"version: 1\ntemplate: null\ntargets: [{match: x}]\n".to_vec()),
        ("a tagged mapping", b"!!map {version: 1}\n".to_vec()),
        ("a !!set", b"version: 1\ntemplate: t\ntargets: !!set {a, b}\n".to_vec()),
        ("targets a string", b"version: 1\ntemplate: t\ntargets: \"shop-*\"\n".to_vec()),
        ("targets a mapping", b"version: 1\ntemplate: t\ntargets: {match: x}\n".to_vec()),
        ("targets of null", b"version: 1\ntemplate: t\ntargets: [null, ~, 42, [], {}]\n".to_vec()),
        ("a non-string key", b"version: 1\ntemplate: t\n12: x\n[a]: b\n".to_vec()),
        ("a complex key", b"? [version]\n: 1\n".to_vec()),
        ("a merge key", b"base: &base {prefix: x_}\nversion: 1\ntemplate: t\ntargets:\n  - match: x\n    <<: *base\n".to_vec()),
        ("an undefined alias", b"version: *nope\n".to_vec()),
        ("a recursive anchor", b"a: &a [*a]\n".to_vec()),
        ("an unclosed quote", b"version: 1\ntemplate: \"t\n".to_vec()),
        ("an unclosed flow", b"version: 1\ntargets: [{match: x\n".to_vec()),
        ("a lone colon", b":\n".to_vec()),
        ("a directive", b"%YAML 1.1\n%TAG ! tag:x,2000:\n---\nversion: 1\n".to_vec()),
        ("a bad directive", b"%YAML 9.9\n---\nversion: 1\n".to_vec()),
        ("a glob `[`", b"version: 1\ntemplate: t\ntargets:\n  - match: \"[\"\n".to_vec()),
        ("a glob `{{a,`", b"version: 1\ntemplate: t\ntargets:\n  - match: \"{a,\"\n".to_vec()),
        ("a glob `**/[`", b"version: 1\ntemplate: t\ntargets:\n  - match: \"**/[\"\n".to_vec()),
        ("a glob `[z-a]`", b"version: 1\ntemplate: t\ntargets:\n  - match: \"[z-a]\"\n".to_vec()),
        ("a glob ending in `\\`", b"version: 1\ntemplate: t\ntargets:\n  - match: 'shop\\'\n".to_vec()),
        ("a bad exclude glob", b"version: 1\ntemplate: t\ntargets:\n  - match: x\n    exclude: [\"[\"]\n".to_vec()),
        ("an unclosed filter", b"version: 1\ntemplate: t\ntargets: [{match: x}]\ndefaults: {prefix: \"{source.name|\"}\n".to_vec()),
        ("an unknown filter", b"version: 1\ntemplate: t\ntargets: [{match: x}]\ndefaults: {prefix: \"{source.name|upper}\"}\n".to_vec()),
        ("a lone `{`", b"version: 1\ntemplate: t\ntargets: [{match: x, name: \"{\"}]\n".to_vec()),
        ("a lone `}`", b"version: 1\ntemplate: t\ntargets: [{match: x, name: \"}\"}]\n".to_vec()),
        ("`{{{`", b"version: 1\ntemplate: t\ntargets: [{match: x, name: \"{{{\"}]\n".to_vec()),
        ("a placeholder in namespaceFormat", b"version: 1\ntemplate: t\ntargets: [{match: x}]\ndefaults: {namespaceFormat: \"${\"}\n".to_vec()),
        ("a bad cron", b"version: 1\ntemplate: t\ntargets: [{match: x}]\ndefaults: {schedule: {scheduleType: cron, cronExpression: \"99 99 99 * * * * * *\"}}\n".to_vec()),
        ("a secret key", b"version: 1\ntemplate: t\ntargets: [{match: x}]\nairbyte: {url: \"https://x\", token: hunter2}\n".to_vec()),
        ("a URL with credentials", b"version: 1\ntemplate: t\ntargets: [{match: x}]\nairbyte: {url: \"https://me:hunter2@x\"}\n".to_vec()),
        ("a URL with a huge port", b"version: 1\ntemplate: t\ntargets: [{match: x}]\nairbyte: {url: \"https://x:99999999999999999999\"}\n".to_vec()),
        ("a URL that is only a scheme", b"version: 1\ntemplate: t\ntargets: [{match: x}]\nairbyte: {url: \"https://\"}\n".to_vec()),
        ("a URL of multibyte characters", "version: 1\ntemplate: t\ntargets: [{match: x}]\nairbyte: {url: \"ħŧŧþş://é:ü\"}\n".as_bytes().to_vec()),
        ("an empty template and source", b"version: 1\ntemplate: \"\"\ntargets: [{source: \"\"}, {match: \"\"}]\n".to_vec()),
    ];
    docs.push((
        "a billion laughs at the top",
        alias_bomb("version").into_bytes(),
    ));
    docs.push((
        "a billion laughs in targets",
        alias_bomb("targets").into_bytes(),
    ));
    docs.push((
        "10,000 nested flow sequences",
        "[".repeat(10_000).into_bytes(),
    ));
    docs.push((
        "10,000 nested flow sequences, closed",
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
    ));
    docs.push((
        "10,000 nested flow mappings",
        "{a: ".repeat(10_000).into_bytes(),
    ));
    docs.push((
        "10,000 nested targets",
        format!(
            "version: 1\ntemplate: t\ntargets: {}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        )
        .into_bytes(),
    ));
    docs.push((
        "10,000 nested block sequences",
        "- ".repeat(10_000).into_bytes(),
    ));
    docs.push((
        "10,000 anchors on one node",
        "&a ".repeat(10_000).into_bytes(),
    ));
    docs.push((
        "a 1 MB key",
        format!("{}: 1\n", "k".repeat(1 << 20)).into_bytes(),
    ));
    docs.push((
        "a 1 MB unknown value",
        format!("{VALID_PLAN}existing: {}\n", "x".repeat(1 << 20)).into_bytes(),
    ));
    docs.push((
        "a 1 MB version string",
        format!("version: \"{}\"\n", "9".repeat(1 << 20)).into_bytes(),
    ));
    docs.push((
        "a 1 MB number",
        format!("version: {}\n", "9".repeat(1 << 20)).into_bytes(),
    ));
    docs.push((
        "a 1 MB unclosed placeholder",
        format!(
            "{VALID_PLAN}defaults: {{name: \"{{{}\"}}\n",
            "s".repeat(1 << 20)
        )
        .into_bytes(),
    ));
    docs.push((
        "a 1 MB unknown placeholder",
        format!(
            "{VALID_PLAN}defaults: {{name: \"{{{}}}\"}}\n",
            "s".repeat(1 << 20)
        )
        .into_bytes(),
    ));
    docs.push((
        "a 1 MB bad glob",
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: \"[{}\"}}]\n",
            "a".repeat(1 << 20)
        )
        .into_bytes(),
    ));
    docs.push((
        "alternations nested 300 deep",
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: \"{}{}\"}}]\n",
            "{a,".repeat(300),
            "}".repeat(300)
        )
        .into_bytes(),
    ));
    docs.push((
        "200,000 `?`",
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: \"{}\"}}]\n",
            "?".repeat(200_000)
        )
        .into_bytes(),
    ));
    docs.push((
        "a 100 KB glob of stars",
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: \"{}\", type: \"\"}}]\n",
            "*a".repeat(50_000)
        )
        .into_bytes(),
    ));
    docs.push((
        "a 100 KB alternation",
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: \"{{{}}}\", type: \"\"}}]\n",
            vec!["[a-z]*"; 15_000].join(",")
        )
        .into_bytes(),
    ));
    docs.push((
        "a 1 MB URL",
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: x}}]\nairbyte: {{url: \"ftp://{}\"}}\n",
            "h".repeat(1 << 20)
        )
        .into_bytes(),
    ));
    docs.push(("a 1 MB cron", format!("version: 1\ntemplate: t\ntargets: [{{match: x}}]\ndefaults: {{schedule: {{scheduleType: cron, cronExpression: \"{}\"}}}}\n", "0 ".repeat(1 << 19)).into_bytes()));
    docs.push((
        "a 1 MB secret key",
        format!(
            "version: 1\n{}token: {}\n",
            "x".repeat(1 << 20),
            "y".repeat(1 << 20)
        )
        .into_bytes(),
    ));
    docs.push(("10 MB of random bytes", random_bytes(TEN_MB, 1)));
    docs.push((
        "10 MB of random printable text",
        random_printable(TEN_MB, 2),
    ));
    docs.push(("10 MB of one scalar", "x".repeat(TEN_MB).into_bytes()));
    docs.push((
        "10 MB of sequence items",
        "- x\n".repeat(TEN_MB / 4).into_bytes(),
    ));
    docs.push((
        "10 MB of the same key",
        "version: 1\n".repeat(TEN_MB / 11).into_bytes(),
    ));
    docs.push((
        "10 MB of unknown targets keys",
        format!(
            "version: 1\ntemplate: t\ntargets:\n{}",
            "  - {match: x, bogus: 1}\n".repeat(TEN_MB / 26)
        )
        .into_bytes(),
    ));
    docs
}

/// Odd documents that are valid plans all the same.
fn odd_but_valid_plans() -> Vec<(&'static str, Vec<u8>)> {
    let plan = |text: &str| text.as_bytes().to_vec();
    vec![
        (
            "a BOM",
            [b"\xEF\xBB\xBF".as_slice(), VALID_PLAN.as_bytes()].concat(),
        ),
        ("CRLF line ends", plan(&VALID_PLAN.replace('\n', "\r\n"))),
        ("CR line ends", plan(&VALID_PLAN.replace('\n', "\r"))),
        ("no final newline", plan(VALID_PLAN.trim_end())),
        (
            "a number as the template's name",
            plan("version: 1\ntemplate: 12\ntargets: [{match: x}]\n"),
        ),
        (
            "tabs inside a flow mapping",
            plan("version: 1\ntemplate: t\ntargets: [{match:\tx}]\n"),
        ),
        (
            "anchors and aliases",
            plan(
                "version: 1\ntemplate: &t shop\ntargets:\n  - {source: *t}\n  - {match: \"x\", prefix: &p \"{source.name|slug}_\"}\n  - {match: \"y\", prefix: *p}\n",
            ),
        ),
        (
            "an explicit document start and end",
            plan(&format!("---\n{VALID_PLAN}...\n")),
        ),
        // Tags on scalars are ignored: the text is the value.
        (
            "a !!binary tag",
            plan("version: 1\ntemplate: !!binary aGVsbG8=\ntargets: [{match: x}]\n"),
        ),
        (
            "a custom tag",
            plan("version: 1\ntemplate: !shell rm -rf /\ntargets: [{match: x}]\n"),
        ),
        (
            "!!str tags",
            plan("version: 1\ntemplate: !!str 12\ntargets: [{match: !!str x}]\n"),
        ),
        (
            "nested alternations",
            plan("version: 1\ntemplate: t\ntargets: [{match: \"{a,{b,c}}\"}]\n"),
        ),
        (
            "a 1,024 character glob",
            plan(&format!(
                "version: 1\ntemplate: t\ntargets: [{{match: \"{}\"}}]\n",
                "?*".repeat(512)
            )),
        ),
        (
            "a 1 MB template name",
            plan(&format!(
                "version: 1\ntemplate: {}\ntargets: [{{match: x}}]\n",
                "t".repeat(1 << 20)
            )),
        ),
        (
            "comments everywhere",
            plan("# a\nversion: 1 # b\ntemplate: t # c\ntargets: # d\n  - match: x # e\n# f\n"),
        ),
        (
            "unicode everywhere",
            plan(
                "version: 1\ntemplate: \"東京 → Склад 🚀\"\ntargets: [{match: \"東京-*\", name: \"{source.name} → 倉庫\"}]\n",
            ),
        ),
    ]
}

/// Calls `f`, turning a panic into a failure that names the case.
fn no_panic<T>(case: &str, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(value) => value,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{case}: panicked: {message}");
        }
    }
}

/// Every message names the file and stays short enough to read.
fn check_messages(case: &str, file: &str, messages: &[String]) {
    assert!(!messages.is_empty(), "{case}: an error with no message");
    for message in messages {
        let head: String = message.chars().take(200).collect();
        assert!(
            message.starts_with(file),
            "{case}: does not name the file: {head}"
        );
        assert!(
            message.len() <= MAX_MESSAGE,
            "{case}: a {} byte message: {head}…",
            message.len()
        );
    }
}

fn load_plan(case: &str, bytes: &[u8]) -> Result<replicate::plan::Plan, Vec<String>> {
    no_panic(case, || replicate::plan::parse(Path::new(PLAN_FILE), bytes))
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
}

// ---------------------------------------------------------------------------------------------
// Plans.

#[test]
fn hostile_plans_are_errors_that_name_the_file() {
    let mut failures = Vec::new();
    for (case, bytes) in hostile_documents() {
        let r = catch_unwind(AssertUnwindSafe(|| match load_plan(case, &bytes) {
            Ok(_) => panic!("{case}: loaded"),
            Err(messages) => check_messages(case, PLAN_FILE, &messages),
        }));
        if r.is_err() {
            failures.push(case);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn odd_but_valid_plans_load() {
    for (case, bytes) in odd_but_valid_plans() {
        if let Err(messages) = load_plan(case, &bytes) {
            panic!("{case}: {messages:#?}");
        }
    }
}

/// A plan of `targets` entries, every key set, about 100 bytes an entry.
fn large_plan(targets: usize) -> String {
    let mut text = String::from(
        "version: 1\ntemplate: shop-template → Warehouse\nconcurrency: 16\ndefaults:\n  \
         prefix: \"{source.name|slug}_\"\ntargets:\n",
    );
    for i in 0..targets {
        match i % 3 {
            0 => writeln!(text, "  - source: shop-{i:07}\n    name: \"{{source.name}} copy {i}\""),
            1 => writeln!(
                text,
                "  - match: \"shop-{}*\"\n    exclude: [\"shop-{i}-old\"]\n    status: inactive",
                i % 100
            ),
            _ => writeln!(
                text,
                "  - source: {}\n    schedule: {{ scheduleType: cron, cronExpression: \"0 0 3 * * ?\" }}",
                uuid_like(i)
            ),
        }
        .unwrap();
    }
    text
}

fn uuid_like(i: usize) -> String {
    format!("c0000000-0000-4000-8000-{i:012}")
}

#[test]
fn a_10_mb_valid_plan_loads() {
    let text = large_plan(125_000);
    assert!(text.len() > TEN_MB, "{} bytes", text.len());
    // About 2 s in a debug build on two busy cores (125,000 targets); the YAML parser dominates.
    let plan = load_plan("10 MB plan", text.as_bytes()).unwrap();
    assert_eq!(plan.targets.len(), 125_000);
    assert_eq!(plan.concurrency, Some(16));
}

#[test]
fn bad_globs_and_placeholders_name_the_key() {
    let cases = [
        ("match: \"[\"", "targets[0].match: invalid glob \"[\""),
        ("match: \"{a,\"", "targets[0].match: invalid glob \"{a,\""),
        ("match: \"**/[\"", "targets[0].match: invalid glob \"**/[\""),
        (
            "{match: x, exclude: [y, \"[\"]}",
            "targets[0].exclude[1]: invalid glob",
        ),
        (
            "{match: x, name: \"{source.name|\"}",
            "targets[0].name: unclosed `{`",
        ),
        (
            "{match: x, name: \"{source.name|upper}\"}",
            "targets[0].name: unknown filter `|upper`",
        ),
        (
            "{match: x, prefix: \"{\"}",
            "targets[0].prefix: unclosed `{` at character 1",
        ),
        (
            "{match: x, prefix: \"}\"}",
            "targets[0].prefix: unmatched `}` at character 1",
        ),
        (
            "{match: x, prefix: \"{{{\"}",
            "targets[0].prefix: unclosed `{` at character 3",
        ),
        (
            "{match: x, namespaceFormat: \"{}\"}",
            "targets[0].namespaceFormat: unknown placeholder `{}`",
        ),
    ];
    for (entry, expected) in cases {
        let text = format!("version: 1\ntemplate: t\ntargets:\n  - {entry}\n");
        let messages = load_plan(entry, text.as_bytes()).unwrap_err();
        assert_eq!(messages.len(), 1, "{entry}: {messages:#?}");
        // At the line of the entry's key (issue 13.8).
        let want = format!("{PLAN_FILE}:4:");
        assert!(
            messages[0].starts_with(&want) && messages[0].contains(&format!(": {expected}")),
            "{entry}:\n  got  {}\n  want {want}…: {expected}",
            messages[0]
        );
    }
}

#[test]
fn a_huge_value_is_quoted_not_dumped() {
    let long = "x".repeat(1 << 20);
    let cases = [
        format!("version: \"{long}\"\n"),
        format!("{VALID_PLAN}existing: {long}\n"),
        format!("{VALID_PLAN}defaults: {{prefix: \"{long}{{\"}}\n"),
        format!(
            "version: 1\ntemplate: t\ntargets: [{{match: \"[{}\"}}]\n",
            &long[..1000]
        ),
    ];
    for text in cases {
        let messages = load_plan("a huge value", text.as_bytes()).unwrap_err();
        let all = messages.join("\n");
        assert!(
            all.contains("xxxxx…") || all.contains("…xxxxx"),
            "{}",
            &all[..all.len().min(400)]
        );
        assert!(all.len() < 1000, "{} bytes: {}", all.len(), &all[..400]);
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds.

fn load_seed(case: &str, bytes: &[u8]) -> Result<replicate::sandbox::Seed, String> {
    no_panic(case, || {
        replicate::sandbox::Seed::from_yaml(Path::new(SEED_FILE), bytes)
    })
    .map_err(|e| e.to_string())
}

#[test]
fn hostile_seeds_are_errors_that_name_the_file() {
    for (case, bytes) in hostile_documents() {
        match load_seed(case, &bytes) {
            // A seed of only comments is the empty seed, as `{}` is.
            Ok(seed) if case == "only a comment" => assert_eq!(seed, Seed::default()),
            Ok(_) => panic!("{case}: loaded as a seed"),
            Err(message) => check_messages(case, SEED_FILE, &[message]),
        }
    }
}

#[test]
fn hostile_seed_contents_are_errors_that_name_the_file() {
    let base = "workspaces: [{name: W}]\ndestinations: [{name: D, type: bigquery}]\n";
    let deep_field = vec!["f"; 1_000].join(", ");
    let cases = [
        (
            "a source with no catalog",
            format!("{base}sources: [{{name: S, type: pg, catalog: nope}}]\n"),
        ),
        (
            "two sources with one id",
            format!(
                "{base}catalogs: {{c: [{{name: s, fields: [id]}}]}}\nsources: [{{name: A, type: pg, catalog: c, id: 00000000-0000-4000-8000-000000000001}}, {{name: B, type: pg, catalog: c, id: 00000000-0000-4000-8000-000000000001}}]\n"
            ),
        ),
        (
            "a connection to nothing",
            format!("{base}connections: [{{source: nope, destination: nope}}]\n"),
        ),
        (
            "a bad UUID",
            format!("{base}sources: [{{name: S, type: pg, catalog: c, id: not-a-uuid}}]\n"),
        ),
        (
            "an unknown sync mode",
            format!("{base}catalogs: {{c: [{{name: s, fields: [id], syncModes: [sometimes]}}]}}\n"),
        ),
        (
            "an unknown workspace",
            format!(
                "{base}catalogs: {{c: [{{name: s, fields: [id]}}]}}\nsources: [{{name: S, type: pg, catalog: c, workspace: nope}}]\n"
            ),
        ),
        (
            "createdAt huge",
            format!(
                "{base}catalogs: {{c: [{{name: s, fields: [id]}}]}}\nsources: [{{name: S, type: pg, catalog: c, createdAt: 1e400}}]\n"
            ),
        ),
        (
            "a 100,000 deep field path and a bad connection",
            format!(
                "{base}catalogs: {{c: [{{name: s, fields: [[{deep_field}]]}}]}}\nsources: [{{name: S, type: pg, catalog: c}}]\nconnections: [{{source: S, destination: nope}}]\n"
            ),
        ),
        (
            "a stream with no fields and a bad cursor",
            format!(
                "{base}catalogs: {{c: [{{name: s, fields: []}}]}}\nsources: [{{name: S, type: pg, catalog: c}}]\nconnections: [{{source: S, destination: D, streams: [{{name: s, syncMode: incremental_append, cursorField: [nope]}}]}}]\n"
            ),
        ),
        (
            "a 1 MB catalog name",
            format!(
                "{base}catalogs: {{{}: [{{name: s, fields: [id]}}]}}\nsources: [{{name: S, type: pg, catalog: nope}}]\n",
                "c".repeat(1 << 20)
            ),
        ),
    ];
    for (case, text) in cases {
        match load_seed(case, text.as_bytes()) {
            Ok(_) => panic!("{case}: loaded"),
            Err(message) => check_messages(case, SEED_FILE, &[message]),
        }
    }
}

/// Runs `f` on its own thread and fails the test when it is not done within `limit`: for code
/// that would otherwise hang the whole run.
fn within<T: Send + 'static>(
    what: &str,
    limit: std::time::Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("{what}: not done after {limit:?}"))
}

#[test]
fn a_seed_with_huge_catalogs_loads_or_names_its_limit() {
    let deep = vec!["f"; 5_000].join(", ");
    let wide: Vec<String> = (0..50_000).map(|i| format!("f{i}")).collect();
    // Each case: the fields, and the error it must give (`None`: it loads, with every field).
    for (case, fields, refused) in [
        (
            "a 5,000 deep field path",
            format!("[[{deep}]]"),
            Some("hostile-seed.yaml: catalogs.c[0].fields: a field path may have at most 32 parts"),
        ),
        ("50,000 fields", format!("[{}]", wide.join(", ")), None),
    ] {
        let text = format!(
            "workspaces: [{{name: W}}]\ndestinations: [{{name: D, type: bigquery}}]\n\
             catalogs: {{c: [{{name: s, fields: {fields}}}]}}\nsources: [{{name: S, type: pg, catalog: c}}]\n"
        );
        // A hang fails the test too.
        let loaded = within(case, HANG_GUARD, move || {
            replicate::sandbox::Seed::from_yaml(Path::new(SEED_FILE), text.as_bytes())
        });
        match (loaded, refused) {
            (Ok(seed), None) => assert_eq!(seed.catalogs["c"][0].fields.len(), 50_000, "{case}"),
            (Err(e), Some(message)) => assert_eq!(e.to_string(), message, "{case}"),
            (Ok(_), Some(_)) => panic!("{case}: loaded"),
            (Err(e), None) => panic!("{case}: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Property tests: plans, seeds and placeholders.

/// A fixed seed and a modest number of cases, unless `PROPTEST_CASES` or `PROPTEST_RNG_SEED`
/// ask for more (or another) search.
fn proptest_config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    if std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = RngSeed::Fixed(0x5EED_1E55);
    }
    config.failure_persistence = None;
    config
}

const PLANS: [&str; 3] = [
    include_str!("../../plans/example.yaml"),
    include_str!("../../plans/per-shop-overrides.yaml"),
    include_str!("../../plans/with-legacy.yaml"),
];

const DEFAULT_SEED: &str = include_str!("../../src/sandbox/default_seed.yaml");

/// Pieces of YAML and of plans: indicators, keys, values, placeholders, globs, odd bytes.
const TOKENS: &[&str] = &[
    "version",
    "template",
    "targets",
    "match",
    "source",
    "exclude",
    "type",
    "defaults",
    "name",
    "prefix",
    "status",
    "schedule",
    "scheduleType",
    "cronExpression",
    "existing",
    "concurrency",
    "airbyte",
    "url",
    "token",
    "workspaces",
    "sources",
    "catalogs",
    "fields",
    ": ",
    ":",
    "- ",
    "-",
    "\n",
    "\n  ",
    "\n    ",
    "\t",
    " ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "<<: ",
    "!!binary ",
    "!tag ",
    "? ",
    "|\n",
    ">-\n",
    "\"",
    "'",
    "#",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "~",
    "null",
    "1",
    "-1",
    "0x1F",
    "1e400",
    ".inf",
    "99999999999999999999",
    "shop-*",
    "[",
    "{a,",
    "**/[",
    "{source.name}",
    "{source.name|slug}",
    "{source.name|",
    "{{",
    "}}",
    "${X}",
    "é",
    "\u{feff}",
    "\u{0}",
    "\r\n",
    "\\",
    "\\u0041",
    "\\x",
    "0 0 3 * * ?",
    "https://x",
    "c0000000-0000-4000-8000-000000000001",
];

fn yamlish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(TOKENS).prop_map(str::to_string),
            1 => "[a-z0-9 ]{1,8}",
            1 => any::<char>().prop_map(String::from),
        ],
        0..64,
    )
    .prop_map(|parts| parts.concat())
}

/// One edit of a document: where (a fraction of its length), what, and how much.
#[derive(Debug, Clone)]
enum Edit {
    Delete(f64, usize),
    Insert(f64, &'static str),
    Byte(f64, u8),
    DuplicateLine(f64),
    Truncate(f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    let at = 0.0..1.0f64;
    prop_oneof![
        (at.clone(), 1..16usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (at.clone(), prop::sample::select(TOKENS)).prop_map(|(at, t)| Edit::Insert(at, t)),
        (at.clone(), any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
        at.clone().prop_map(Edit::DuplicateLine),
        at.prop_map(Edit::Truncate),
    ]
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = |len: usize, at: f64| ((len as f64) * at) as usize;
    for edit in edits {
        let len = bytes.len();
        match *edit {
            Edit::Delete(at, n) => {
                let i = index(len, at);
                bytes.drain(i..(i + n).min(len));
            }
            Edit::Insert(at, token) => {
                let i = index(len, at);
                bytes.splice(i..i, token.bytes());
            }
            Edit::Byte(at, b) => {
                if let Some(slot) = bytes.get_mut(index(len, at)) {
                    *slot = b;
                }
            }
            Edit::DuplicateLine(at) => {
                let i = index(len, at);
                let start = bytes[..i]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |p| p + 1);
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(len, |p| i + p + 1);
                let line = bytes[start..end].to_vec();
                bytes.splice(end..end, line);
            }
            Edit::Truncate(at) => bytes.truncate(index(len, at)),
        }
    }
    bytes
}

/// Loads `bytes` as a plan and as a seed; neither may panic, and every error names the file.
fn check_both_loaders(bytes: &[u8]) {
    if let Err(messages) = load_plan("generated", bytes) {
        check_messages("generated plan", PLAN_FILE, &messages);
    }
    if let Err(message) = load_seed("generated", bytes) {
        check_messages("generated seed", SEED_FILE, &[message]);
    }
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_both_loaders(&bytes);
    }

    #[test]
    fn yamlish_text_never_panics(text in yamlish()) {
        check_both_loaders(text.as_bytes());
    }

    #[test]
    fn mutated_plans_never_panic(
        plan in prop::sample::select(PLANS.as_slice()),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        check_both_loaders(&apply(plan, &edits));
    }

    #[test]
    fn mutated_seeds_never_panic(edits in prop::collection::vec(edit(), 1..6)) {
        let bytes = apply(DEFAULT_SEED, &edits);
        if let Err(message) = load_seed("mutated seed", &bytes) {
            check_messages("mutated seed", SEED_FILE, &[message]);
        }
    }

    #[test]
    fn templates_never_panic(
        text in prop_oneof!["[{}|a-z. $_]{0,40}", ".{0,40}", yamlish()],
        source_name in ".{0,20}",
    ) {
        match no_panic(&text, || Template::parse(&text)) {
            Ok(template) => {
                let names = Names {
                    source_name: &source_name,
                    source_id: uuid::Uuid::nil(),
                    source_type: "postgres",
                    destination_name: "Warehouse",
                    destination_id: uuid::Uuid::nil(),
                    template_name: &text,
                };
                no_panic(&text, || template.render(&names));
            }
            Err(message) => {
                let known = ["unclosed `{`", "unmatched `}`", "unknown placeholder", "unknown filter"];
                prop_assert!(known.iter().any(|k| message.starts_with(k)), "{}", message);
                prop_assert!(message.len() <= MAX_MESSAGE);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A hostile server: a proxy in front of a sandbox that answers some requests itself, badly.

/// The template's read: the run's first request.
fn template_route() -> String {
    format!("GET /connections/{TEMPLATE}")
}

/// The plan every end-to-end case runs: the template by id, so the first request is
/// `GET /connections/{id}`.
fn e2e_plan() -> String {
    format!(
        "version: 1\ntemplate: {TEMPLATE}\ntargets:\n  - match: \"shop-*\"\n    exclude: [shop-legacy]\n\
         defaults: {{prefix: \"{{source.name|slug}}_\"}}\n"
    )
}

/// What the hostile server sends instead of the sandbox's answer.
#[derive(Debug, Clone)]
enum Answer {
    /// A status, a content type and a body, with a correct `Content-Length`.
    Body {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// 200 and its headers, then silence.
    HangAfterHeaders,
    /// 200, then a chunked body that never ends (throttled, so a client that keeps it all
    /// grows by tens of MB a second, not GBs).
    Endless,
}

fn json(status: u16, body: impl Into<Vec<u8>>) -> Answer {
    Answer::Body {
        status,
        content_type: "application/json",
        body: body.into(),
    }
}

/// Decides, from the method and the target (`/v1/sources?limit=100&offset=0…`), whether to
/// answer a request itself; `None` passes it to the sandbox.
type Rule = Arc<dyn Fn(&str, &str) -> Option<Answer> + Send + Sync>;

struct Hostile {
    rt: tokio::runtime::Runtime,
    sandbox: Option<Sandbox>,
    url: String,
    dir: tempfile::TempDir,
    /// Bytes of endless bodies written so far.
    endless_bytes: Arc<AtomicU64>,
}

impl Hostile {
    fn new(rule: impl Fn(&str, &str) -> Option<Answer> + Send + Sync + 'static) -> Hostile {
        Hostile::with_sandbox(SandboxConfig::default_on_free_port(), rule)
    }

    fn with_sandbox(
        config: SandboxConfig,
        rule: impl Fn(&str, &str) -> Option<Answer> + Send + Sync + 'static,
    ) -> Hostile {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let rule: Rule = Arc::new(rule);
        let endless_bytes = Arc::new(AtomicU64::new(0));
        let (sandbox, addr) = rt.block_on(async {
            let sandbox = Sandbox::start(config).await.unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let upstream = sandbox.addr();
            let http = reqwest::Client::new();
            let counter = endless_bytes.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let (rule, http, counter) = (rule.clone(), http.clone(), counter.clone());
                    tokio::spawn(async move {
                        // A client that hangs up early is no concern of the server's.
                        let _ = serve(socket, upstream, &rule, &http, &counter).await;
                    });
                }
            });
            (sandbox, addr)
        });
        Hostile {
            rt,
            sandbox: Some(sandbox),
            url: format!("http://{addr}/v1"),
            dir: tempfile::tempdir().unwrap(),
            endless_bytes,
        }
    }

    /// `replicate plan` on [`e2e_plan`], against this server, with a short request timeout.
    fn plan(&self) -> assert_cmd::Command {
        self.plan_with_timeout("2s")
    }

    fn plan_with_timeout(&self, request_timeout: &str) -> assert_cmd::Command {
        let path = self.dir.path().join("plan.yaml");
        std::fs::write(&path, e2e_plan()).unwrap();
        let mut cmd = assert_cmd::Command::cargo_bin("replicate").unwrap();
        cmd.env_remove("AIRBYTE_CLIENT_ID")
            .env_remove("AIRBYTE_CLIENT_SECRET")
            .env("AIRBYTE_TOKEN", seed::TOKEN)
            .env("AIRBYTE_URL", &self.url)
            .env("NO_COLOR", "1")
            .args(["plan", "--quiet", "--request-timeout", request_timeout])
            .arg(&path)
            .current_dir(self.dir.path())
            .timeout(HANG_GUARD);
        cmd
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        if let Some(sandbox) = self.sandbox.take() {
            self.rt.block_on(sandbox.shutdown());
        }
    }
}

/// One request on one connection (answers say `Connection: close`).
async fn serve(
    mut socket: TcpStream,
    upstream: std::net::SocketAddr,
    rule: &Rule,
    http: &reqwest::Client,
    endless_bytes: &AtomicU64,
) -> std::io::Result<()> {
    let Some(RawRequest {
        method,
        target,
        authorization,
        body,
    }) = read_request(&mut socket).await?
    else {
        return Ok(());
    };

    let answer = if let Some(answer) = rule(&method, &target) {
        answer
    } else {
        let url = format!("http://{upstream}{target}");
        let mut request = http.request(method.parse().unwrap(), url);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        if !body.is_empty() {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        json(status, response.bytes().await.unwrap().to_vec())
    };
    match answer {
        Answer::Body {
            status,
            content_type,
            body,
        } => {
            let head = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
                 connection: close\r\n\r\n",
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(&body).await?;
        }
        Answer::HangAfterHeaders => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\
                      connection: close\r\n\r\n{\"connectionId\":",
                )
                .await?;
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Answer::Endless => {
            socket
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      transfer-encoding: chunked\r\nconnection: close\r\n\r\n\
                      12\r\n{\"connectionId\": \"\r\n",
                )
                .await?;
            let chunk = [
                format!("{:x}\r\n", 1 << 20).into_bytes(),
                vec![b'x'; 1 << 20],
                b"\r\n".to_vec(),
            ]
            .concat();
            loop {
                socket.write_all(&chunk).await?;
                endless_bytes.fetch_add(1 << 20, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
    }
    socket.shutdown().await
}

/// The run failed as a user should see it: exit 1, the request named, no panic, and a message
/// short enough to read.
fn assert_fails_naming(case: &str, output: &std::process::Output, route: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let head: String = stderr.chars().take(600).collect();
    assert!(!stderr.contains("panicked"), "{case}: panicked: {head}");
    assert_eq!(output.status.code(), Some(1), "{case}: {head}");
    // A run-wide failure is on stderr; a failed target is a row of the preview, on stdout.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stderr.contains(route) || stdout.contains(route),
        "{case}: does not name {route}: {head}{stdout}"
    );
    assert!(
        stderr.len() < 4096,
        "{case}: {} bytes on stderr: {head}…",
        stderr.len()
    );
}

fn garbage_bodies() -> Vec<(&'static str, Answer)> {
    let html = Answer::Body {
        status: 200,
        content_type: "text/html",
        body: b"<!DOCTYPE html>\n<html><body>Welcome to nginx!</body></html>".to_vec(),
    };
    vec![
        ("an empty 200", json(200, "")),
        (
            "truncated JSON",
            json(
                200,
                format!("{{\"connectionId\": \"{TEMPLATE}\", \"name\": \"shop"),
            ),
        ),
        ("null", json(200, "null")),
        ("an array", json(200, "[{\"connectionId\": 1}]")),
        ("an empty object", json(200, "{}")),
        ("a number", json(200, "1e999999")),
        (
            "wrong field types",
            json(
                200,
                format!(
                    "{{\"connectionId\": \"{TEMPLATE}\", \"name\": 12, \"sourceId\": [], \"destinationId\": {{}}, \"workspaceId\": true, \"status\": 1, \"schedule\": \"daily\"}}"
                ),
            ),
        ),
        ("an unknown enum value", {
            let mut body = json_template();
            body["status"] = "paused".into();
            json(200, body.to_string())
        }),
        ("invalid UTF-8 in a string", {
            let mut body = json_template().to_string().into_bytes();
            let at = body.windows(6).position(|w| w == b"\"name\"").unwrap() + 9;
            body[at] = 0xFF;
            json(200, body)
        }),
        ("HTML with a 200", html),
        ("10,000 nested arrays", json(200, "[".repeat(10_000))),
    ]
}

/// Answers that quote a huge value back: the error must quote it, not dump it.
fn huge_bodies() -> Vec<(&'static str, Answer)> {
    vec![
        ("a 10 MB string where an enum goes", {
            let mut body = json_template();
            body["status"] = "x".repeat(TEN_MB).into();
            json(200, body.to_string())
        }),
        (
            "a 10 MB error body",
            json(400, format!("{{\"message\": \"{}\"}}", "x".repeat(TEN_MB))),
        ),
        (
            "a 400 of invalid UTF-8",
            json(400, b"\xFF\xFE\xFD".to_vec()),
        ),
        (
            "a 404 problem with a huge detail",
            json(
                404,
                format!(
                    "{{\"status\": 404, \"type\": \"t\", \"title\": \"x\", \"detail\": \"{}\"}}",
                    "d".repeat(1 << 20)
                ),
            ),
        ),
    ]
}

/// The template connection as the default seed's sandbox returns it.
fn json_template() -> serde_json::Value {
    serde_json::json!({
        "connectionId": TEMPLATE,
        "name": "shop-template → Warehouse",
        "sourceId": "50c00000-0000-4000-8000-000000000001",
        "destinationId": "de570000-0000-4000-8000-000000000001",
        "workspaceId": WORKSPACE,
        "status": "active",
        "schedule": { "scheduleType": "manual" },
        "configurations": { "streams": [] },
        "createdAt": 0,
    })
}

#[test]
fn garbage_for_the_template_fails_naming_the_request() {
    for (case, answer) in garbage_bodies() {
        let server = Hostile::new(move |method, target| {
            (method == "GET" && target == format!("/v1/connections/{TEMPLATE}"))
                .then(|| answer.clone())
        });
        let output = server.plan().output().unwrap();
        assert_fails_naming(case, &output, &template_route());
    }
}

#[test]
fn huge_values_in_answers_are_quoted_not_dumped() {
    let mut failures = Vec::new();
    for (case, answer) in huge_bodies() {
        let server = Hostile::new(move |method, target| {
            (method == "GET" && target == format!("/v1/connections/{TEMPLATE}"))
                .then(|| answer.clone())
        });
        let output = server.plan().output().unwrap();
        if catch_unwind(|| assert_fails_naming(case, &output, &template_route())).is_err() {
            failures.push(case);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn garbage_for_a_list_or_a_catalog_fails_naming_the_request() {
    let cases: [(&str, &str, &str, Answer); 6] = [
        (
            "sources: data null",
            "/v1/sources?",
            "GET /sources?limit=100&offset=0",
            json(200, "{\"data\": null}"),
        ),
        (
            "sources: data an object",
            "/v1/sources?",
            "GET /sources?limit=100&offset=0",
            json(200, "{\"data\": {}}"),
        ),
        (
            "sources: items of the wrong type",
            "/v1/sources?",
            "GET /sources?limit=100&offset=0",
            json(200, "{\"data\": [1, \"two\", null]}"),
        ),
        (
            "connections: a bare array",
            "/v1/connections?",
            "GET /connections?limit=100&offset=0",
            json(200, "[]"),
        ),
        (
            "destination: truncated",
            "/v1/destinations/",
            "GET /destinations/de570000-0000-4000-8000-000000000001",
            json(200, "{\"destinationId\""),
        ),
        (
            "streams: an object",
            "/v1/streams?",
            "GET /streams?sourceId=",
            json(200, "{\"streams\": []}"),
        ),
    ];
    for (case, prefix, route, answer) in cases {
        let server = Hostile::new(move |method, target| {
            (method == "GET" && target.starts_with(prefix)).then(|| answer.clone())
        });
        let output = server.plan().output().unwrap();
        assert_fails_naming(case, &output, route);
    }
}

#[test]
fn a_request_that_hangs_after_its_headers_times_out_and_is_tried_again() {
    let calls = AtomicU64::new(0);
    let server = Hostile::new(move |method, target| {
        let first = method == "GET"
            && target == format!("/v1/connections/{TEMPLATE}")
            && calls.fetch_add(1, Ordering::Relaxed) == 0;
        first.then_some(Answer::HangAfterHeaders)
    });
    let output = server.plan().arg("-v").output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{}: timed out", template_route())),
        "the timeout is not reported: {stderr}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("Plan: 4 to create"));
}

#[test]
fn a_server_that_always_hangs_is_given_up_on() {
    let server = Hostile::new(|method, target| {
        (method == "GET" && target == format!("/v1/connections/{TEMPLATE}"))
            .then_some(Answer::HangAfterHeaders)
    });
    let output = server.plan().timeout(HANG_GUARD).output().unwrap();
    assert_fails_naming("always hangs", &output, &template_route());
    assert!(String::from_utf8_lossy(&output.stderr).contains("timed out"));
}

#[test]
fn an_endless_body_is_cut_off() {
    let server = Hostile::new(|method, target| {
        (method == "GET" && target == format!("/v1/connections/{TEMPLATE}"))
            .then_some(Answer::Endless)
    });
    // A request timeout longer than the hang guard, so only the size limit can end the read.
    let output = server
        .plan_with_timeout("1h")
        .timeout(HANG_GUARD)
        .output()
        .unwrap();
    assert_fails_naming("endless body", &output, &template_route());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the response body is larger than 64 MB"),
        "the size limit ended it: {stderr}"
    );
    let sent = server.endless_bytes.load(Ordering::Relaxed);
    assert!(sent < 200 << 20, "the client read {} MB", sent >> 20);
}

/// A page of `n` sources of the default workspace, numbered from `first`.
fn source_page(first: u64, n: u64) -> String {
    let data: Vec<serde_json::Value> = (first..first + n)
        .map(|i| {
            serde_json::json!({
                "sourceId": format!("b0000000-0000-4000-8000-{i:012}"),
                "name": format!("bulk-{i}"),
                "sourceType": "postgres",
                "workspaceId": WORKSPACE,
                "configuration": {},
                "createdAt": 0,
                "definitionId": "decd338e-5647-4c0b-adf4-da0e75f5a750",
            })
        })
        .collect();
    serde_json::json!({ "data": data, "next": "", "previous": "" }).to_string()
}

fn offset(target: &str) -> u64 {
    target
        .split(['?', '&'])
        .find_map(|pair| pair.strip_prefix("offset="))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn endless_full_pages_end() {
    let server = Hostile::new(|method, target| {
        (method == "GET" && target.starts_with("/v1/sources?"))
            .then(|| json(200, source_page(offset(target), 100)))
    });
    // Only a hang trips the guard: how long the 2,000 pages take is the benchmarks' business.
    let output = server.plan().timeout(HANG_GUARD).output().unwrap();
    assert_fails_naming("endless pages", &output, "GET /sources?limit=100");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the server kept sending full pages past 200000 items; giving up"),
        "the list's bound ended it: {stderr}"
    );
}

#[test]
fn a_page_with_50_000_items_is_read_whole() {
    // The server ignores `limit`: each page holds the rest of a list of the seed's sources and
    // 50,000 more, from its offset.
    let page: serde_json::Value = serde_json::from_str(&source_page(0, 50_000)).unwrap();
    let mut data = page["data"].as_array().unwrap().clone();
    for source in Seed::default_seed().sources {
        data.push(serde_json::json!({
            "sourceId": source.id.unwrap(),
            "name": source.name,
            "sourceType": source.source_type,
            "workspaceId": WORKSPACE,
            "configuration": {},
            "createdAt": 0,
            "definitionId": "decd338e-5647-4c0b-adf4-da0e75f5a750",
        }));
    }
    let items: Vec<String> = data.iter().map(ToString::to_string).collect();
    let server = Hostile::new(move |method, target| {
        (method == "GET" && target.starts_with("/v1/sources?")).then(|| {
            let from = usize::try_from(offset(target)).unwrap().min(items.len());
            json(200, format!("{{\"data\": [{}]}}", items[from..].join(",")))
        })
    });
    let output = server.plan().output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Plan: 4 to create"), "{stdout}");
}

// ---------------------------------------------------------------------------------------------
// Property tests: the library's client against arbitrary answers.

#[test]
fn arbitrary_answers_are_errors_naming_the_request() {
    let answer = Arc::new(Mutex::new(json(200, "")));
    let server = Hostile::new({
        let answer = answer.clone();
        move |method, target| {
            let hostile =
                target.starts_with("/v1/connections/") || target.starts_with("/v1/sources?");
            (method == "GET" && hostile).then(|| answer.lock().unwrap().clone())
        }
    });
    let config = ClientConfig {
        base_url: server.url.clone(),
        credentials: Credentials::Token(Secret::new(seed::TOKEN)),
        concurrency: 2,
        timeout: Duration::from_secs(10),
        read_timeout: Duration::from_secs(10),
        give_up_after: Duration::from_secs(60),
        allow_insecure_http: false,
        // One try: a retried 5xx would only repeat the same answer, slowly.
        retry: RetryPolicy {
            attempts: 1,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(1),
        },
        ca_certificates: None,
    };
    let client = Client::new(&config, Arc::new(Silent)).unwrap();
    let template = seed::id(TEMPLATE);
    let workspace = seed::id(WORKSPACE);
    let template_json = serde_json::to_string_pretty(&json_template()).unwrap();
    let page_json = source_page(0, 3);
    // Statuses the client does not treat as a throttle, so the run is not slowed down.
    let status = prop::sample::select(vec![200u16, 201, 204, 400, 401, 403, 404, 422, 500, 503]);
    let body = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(edit(), 1..6).prop_map(move |edits| apply(&template_json, &edits)),
        prop::collection::vec(edit(), 1..6).prop_map(move |edits| apply(&page_json, &edits)),
    ];
    let mut runner = TestRunner::new(proptest_config(64));
    runner
        .run(&(status, body), |(status, body)| {
            *answer.lock().unwrap() = json(status, body);
            let (one, list) = server.rt.block_on(async {
                (
                    client.connection(template).await,
                    client.sources(Some(workspace), |_| {}).await,
                )
            });
            for (result, route) in [
                (one.map(|_| ()), template_route()),
                (
                    list.map(|_| ()),
                    format!("GET /sources?limit=100&offset=0&workspaceIds={WORKSPACE}"),
                ),
            ] {
                if let Err(error) = result {
                    let message = error.to_string();
                    prop_assert!(message.starts_with(&route), "{}", message);
                    prop_assert!(message.len() <= MAX_MESSAGE, "{}", message);
                }
            }
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// The sandbox as a server, against hostile requests.

/// The sandbox answered as Airbyte does: a 4xx with a problem body whose status matches.
fn assert_airbyte_error(case: &str, status: u16, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert!((400..500).contains(&status), "{case}: {status} {text}");
    let problem: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{case}: {status} with a body that is not JSON ({e}): {text}"));
    assert_eq!(problem["status"], status, "{case}: {text}");
    assert!(
        problem["type"].is_string() && problem["title"].is_string(),
        "{case}: {text}"
    );
}

fn sandbox_request(
    rt: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    method: &str,
    url: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    rt.block_on(async {
        let response = http
            .request(method.parse().unwrap(), url)
            .bearer_auth(seed::TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.bytes().await.unwrap().to_vec(),
        )
    })
}

#[test]
#[allow(clippy::too_many_lines)] // a table
fn the_sandbox_answers_hostile_requests_with_airbyte_errors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(Api::start());
    let sandbox = &api.sandbox;
    let base = sandbox.url();
    let http = reqwest::Client::new();
    let long_id = "a".repeat(50_000);
    let cases: Vec<(&str, &str, String, &str, Vec<u8>)> = vec![
        (
            "malformed JSON",
            "POST",
            "/connections".into(),
            "application/json",
            b"{\"name\": ".to_vec(),
        ),
        (
            "JSON of the wrong shape",
            "POST",
            "/connections".into(),
            "application/json",
            b"[1, 2, 3]".to_vec(),
        ),
        (
            "null",
            "POST",
            "/connections".into(),
            "application/json",
            b"null".to_vec(),
        ),
        (
            "non-UTF-8",
            "POST",
            "/connections".into(),
            "application/json",
            b"{\"name\": \"\xFF\xFE\"}".to_vec(),
        ),
        (
            "a NUL body",
            "POST",
            "/connections".into(),
            "application/json",
            vec![0; 64],
        ),
        (
            "10,000 nested arrays",
            "POST",
            "/connections".into(),
            "application/json",
            "[".repeat(10_000).into_bytes(),
        ),
        (
            "a huge number",
            "POST",
            "/connections".into(),
            "application/json",
            format!("{{\"sourceId\": {}}}", "9".repeat(10_000)).into_bytes(),
        ),
        (
            "the wrong content type",
            "POST",
            "/connections".into(),
            "text/plain",
            b"name=x".to_vec(),
        ),
        (
            "a form body",
            "POST",
            "/connections".into(),
            "application/x-www-form-urlencoded",
            b"name=x&sourceId=y".to_vec(),
        ),
        (
            "a malformed patch",
            "PATCH",
            format!("/connections/{TEMPLATE}"),
            "application/json",
            b"{\"status\": 12}".to_vec(),
        ),
        (
            "limit past u64",
            "GET",
            "/connections?limit=99999999999999999999".into(),
            "",
            Vec::new(),
        ),
        (
            "a negative offset",
            "GET",
            "/sources?offset=-1".into(),
            "",
            Vec::new(),
        ),
        (
            "an offset past i64",
            "GET",
            "/sources?offset=99999999999999999999".into(),
            "",
            Vec::new(),
        ),
        (
            "a float limit",
            "GET",
            "/sources?limit=1.5".into(),
            "",
            Vec::new(),
        ),
        (
            "a non-UTF-8 limit",
            "GET",
            "/sources?limit=%FF".into(),
            "",
            Vec::new(),
        ),
        (
            "a bad workspace id",
            "GET",
            "/sources?workspaceIds=,,x,,".into(),
            "",
            Vec::new(),
        ),
        (
            "a bad tag id",
            "GET",
            "/connections?tagIds=%00".into(),
            "",
            Vec::new(),
        ),
        (
            "a bad includeDeleted",
            "GET",
            "/connections?includeDeleted=maybe".into(),
            "",
            Vec::new(),
        ),
        (
            "streams without a source",
            "GET",
            "/streams".into(),
            "",
            Vec::new(),
        ),
        (
            "streams with a bad source",
            "GET",
            "/streams?sourceId=%FF%FE".into(),
            "",
            Vec::new(),
        ),
        (
            "a path id that is not a UUID",
            "GET",
            "/connections/not-a-uuid".into(),
            "",
            Vec::new(),
        ),
        (
            "a 100 KB path id",
            "GET",
            format!("/destinations/{long_id}"),
            "",
            Vec::new(),
        ),
        (
            "a dot-dot path id",
            "DELETE",
            "/connections/..%2F..%2Fetc".into(),
            "",
            Vec::new(),
        ),
        (
            "an unknown route",
            "GET",
            "/connections/x/y/z".into(),
            "",
            Vec::new(),
        ),
        (
            "an unknown method",
            "PUT",
            "/connections".into(),
            "application/json",
            b"{}".to_vec(),
        ),
    ];
    let mut failures = Vec::new();
    for (case, method, path, content_type, body) in cases {
        let (status, answer) = sandbox_request(
            &rt,
            &http,
            method,
            &format!("{base}{path}"),
            content_type,
            body,
        );
        if catch_unwind(|| assert_airbyte_error(case, status, &answer)).is_err() {
            failures.push(case);
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Still serving.
    let (status, _) = sandbox_request(
        &rt,
        &http,
        "GET",
        &format!("{base}/sources"),
        "",
        Vec::new(),
    );
    assert_eq!(status, 200);
    rt.block_on(api.sandbox.shutdown());
}

#[test]
fn the_sandbox_survives_broken_http() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(Api::start());
    let sandbox = &api.sandbox;
    let addr = sandbox.addr();
    let garbage: [&[u8]; 5] = [
        b"\xFF\xFE garbage\r\n\r\n",
        b"GET /v1/sources HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xFF\r\n\r\n",
        b"GET /v1/sources?limit=\xFF HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sandbox-token\r\n\r\n",
        b"POST /v1/connections HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"trunc",
        b"POST /v1/connections HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    ];
    rt.block_on(async {
        for request in garbage {
            let mut socket = TcpStream::connect(addr).await.unwrap();
            socket.write_all(request).await.unwrap();
            let _ = socket.shutdown().await;
            let mut answer = Vec::new();
            let read = tokio::time::timeout(HANG_GUARD, socket.read_to_end(&mut answer)).await;
            assert!(
                read.is_ok(),
                "no answer and no close: {}",
                String::from_utf8_lossy(request)
            );
        }
    });
    let http = reqwest::Client::new();
    let (status, _) = sandbox_request(
        &rt,
        &http,
        "GET",
        &format!("{}/sources", sandbox.url()),
        "",
        Vec::new(),
    );
    assert_eq!(status, 200, "the sandbox stopped serving");
    rt.block_on(api.sandbox.shutdown());
}

#[test]
fn the_sandbox_answers_what_axum_rejects_with_airbyte_errors() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(Api::start());
    let sandbox = &api.sandbox;
    let http = reqwest::Client::new();
    let base = sandbox.url();
    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(TEN_MB)).into_bytes();

    // A body over the limit is refused as soon as its length is known, and the connection is
    // closed without reading the rest: the client may see the 413 or a broken pipe, depending on
    // timing. The sandbox's stats say what it answered; when the answer arrives, it must have
    // Airbyte's shape.
    let answer = rt.block_on(async {
        let response = http
            .post(format!("{base}/connections"))
            .bearer_auth(seed::TOKEN)
            .header("content-type", "application/json")
            .body(huge)
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.bytes().await.ok()?.to_vec()))
    });
    if let Some((status, body)) = answer {
        assert_airbyte_error("a 10 MB body", status, &body);
    }
    let counts = rt.block_on(api.stats());
    assert_eq!(counts["responses"]["413"], 1, "{counts}");

    let (status, answer) = sandbox_request(
        &rt,
        &http,
        "GET",
        &format!("{base}/sources/%FF%FE"),
        "application/json",
        Vec::new(),
    );
    assert_airbyte_error("a path id that is not UTF-8", status, &answer);
    rt.block_on(api.sandbox.shutdown());
}
