//! The commands that are not a run of the pipeline: `validate`, `completions`, `man`, `schema`,
//! `ls`.

use super::{BuiltIn, Cli, Listed, LsArgs, Output, Shell, choose_url, credentials_from_env, hints};
use crate::client::{Client, ClientConfig, Credentials, RetryPolicy};
use crate::listing;
use crate::plan::{self};
use crate::report::escape::controls;
use crate::report::stdout;
use anyhow::{Context, bail};
use clap::CommandFactory;
use clap::parser::ValueSource;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// `replicate validate`: every file checked, every problem printed (or, with `--output json`,
/// one document: each plan, whether it is valid, its problems).
pub(super) fn validate(files: &[PathBuf], output: Output) -> u8 {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Checked {
        plan: String,
        valid: bool,
        target_entries: usize,
        errors: Vec<String>,
    }
    let mut failed = false;
    let mut checked = Vec::new();
    for file in files {
        let plan = file.display().to_string();
        match plan::load(file) {
            Ok(loaded) => {
                let n = loaded.targets.len();
                if output == Output::Human {
                    stdout::println(&format!(
                        "{}: ok ({n} target {})",
                        controls(&plan),
                        if n == 1 { "entry" } else { "entries" }
                    ));
                }
                checked.push(Checked {
                    plan,
                    valid: true,
                    target_entries: n,
                    errors: Vec::new(),
                });
            }
            Err(errors) => {
                failed = true;
                if output == Output::Human {
                    eprintln!("{}", controls(&errors.to_string()));
                }
                checked.push(Checked {
                    plan,
                    valid: false,
                    target_entries: 0,
                    errors: errors.0.iter().map(ToString::to_string).collect(),
                });
            }
        }
    }
    if output == Output::Json {
        #[derive(serde::Serialize)]
        struct Validated {
            plans: Vec<Checked>,
        }
        stdout::println(&crate::report::json(&Validated { plans: checked }));
    }
    u8::from(failed)
}

/// `replicate completions SHELL`: the completion script, generated from the same definition
/// that parses the arguments.
pub(super) fn completions(shell: Shell) -> u8 {
    use clap_complete::Shell as S;
    let shell = match shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Powershell => S::PowerShell,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "replicate", &mut script);
    stdout::print(&String::from_utf8_lossy(&script));
    0
}

/// `replicate man`: the manual page (roff), generated from the argument definitions.
pub(super) fn man() -> anyhow::Result<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut page)?;
    stdout::print(&String::from_utf8_lossy(&page));
    Ok(0)
}

/// `replicate schema`: the JSON Schema of plan files, generated from the plan's types.
pub(super) fn schema() -> u8 {
    stdout::println(&crate::report::json(&plan::schema()));
    0
}

/// `replicate ls`: the connections or sources the credentials can see.
pub(super) async fn list(args: &LsArgs) -> anyhow::Result<u8> {
    let plan_url = match &args.plan {
        Some(file) => plan::load(file)
            .map_err(|errors| anyhow::anyhow!("{errors}"))?
            .url
            .map(|url| (url, file.clone())),
        None => None,
    };
    let built_in = if args.sandbox {
        Some(BuiltIn::start().await?)
    } else {
        None
    };
    let Connected {
        client,
        origin,
        credentials,
    } = connect(&Connection {
        url: args.url.as_deref(),
        url_source: args.url_source,
        plan_url: plan_url
            .as_ref()
            .map(|(url, file)| (url.as_str(), file.as_path())),
        built_in: built_in.as_ref(),
        allow_insecure_http: args.allow_insecure_http,
        ca_cert: args.ca_cert.as_deref(),
    })?;
    let what = match args.what {
        Listed::Connections => listing::Listing::Connections,
        Listed::Sources => listing::Listing::Sources,
    };
    let rows = listing::rows(&client, what).await;
    if let Some(built_in) = built_in {
        built_in.sandbox.shutdown().await;
    }
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            let mut message = e.to_string();
            for hint in hints(&origin, &credentials, &client) {
                message.push('\n');
                message.push_str(&hint);
            }
            bail!(message);
        }
    };
    match args.output {
        Output::Human => stdout::print(&listing::human(&rows)),
        Output::Json => stdout::println(&crate::report::json(&rows)),
    }
    Ok(0)
}

/// Where a command that is not a run talks to, and how (`ls`, `unlock`).
pub(super) struct Connection<'a> {
    pub(super) url: Option<&'a str>,
    pub(super) url_source: Option<ValueSource>,
    /// A plan's `airbyte.url`, and the plan's file.
    pub(super) plan_url: Option<(&'a str, &'a Path)>,
    pub(super) built_in: Option<&'a BuiltIn>,
    pub(super) allow_insecure_http: bool,
    pub(super) ca_cert: Option<&'a Path>,
}

/// A client for a command that is not a run: the URL from the flag, the environment, the plan or
/// the default (where it came from is returned too, for the hints), credentials from the
/// environment, 8 requests at once and the default timeouts.
pub(super) fn connect(how: &Connection) -> anyhow::Result<Connected> {
    let mut notes = Vec::new();
    let (base_url, origin, credentials) = if let Some(built_in) = how.built_in {
        (
            built_in.sandbox.url(),
            "--sandbox".to_string(),
            built_in.credentials.clone(),
        )
    } else {
        let (url, origin) = choose_url(how.url, how.url_source, how.plan_url, &mut notes);
        let (credentials, note) = credentials_from_env()?;
        notes.extend(note);
        (url, origin, credentials)
    };
    for note in &notes {
        eprintln!("{note}");
    }
    let config = ClientConfig {
        base_url,
        credentials: credentials.clone(),
        concurrency: 8,
        timeout: crate::client::DEFAULT_TIMEOUT,
        read_timeout: Duration::from_secs(30),
        give_up_after: Duration::from_secs(600),
        allow_insecure_http: how.allow_insecure_http,
        retry: RetryPolicy::default(),
        ca_certificates: match how.ca_cert {
            Some(path) => {
                Some(std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?)
            }
            None => None,
        },
    };
    let client = Client::new(&config, Arc::new(crate::report::events::Silent))?;
    Ok(Connected {
        client,
        origin,
        credentials,
    })
}

/// What [`connect`] made.
pub(super) struct Connected {
    pub(super) client: Client,
    /// Where the URL came from, for the hints.
    pub(super) origin: String,
    pub(super) credentials: Credentials,
}
