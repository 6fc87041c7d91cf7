//! The checked settings of a run (the "high" view): base URL and where it came from,
//! credentials, timeouts, colour; and the hints a failed run's error gets.

use super::{BuiltIn, CommonArgs, DEFAULT_URL, GRACE, Output, use_color};
use crate::client::{Client, ClientConfig, Credentials, RetryPolicy};
use crate::execute::ExecuteOptions;
use crate::plan::{ExistingPolicy, Plan};
use crate::report::escape::controls;
use crate::report::human::Style;
use crate::secret::Secret;
use anyhow::{Context, bail};
use clap::parser::ValueSource;
use std::io::IsTerminal;
use std::path::Path;

/// The checked settings of a `plan` or `apply` run.
pub(super) struct Settings {
    pub(super) client: ClientConfig,
    pub(super) execute: ExecuteOptions,
    pub(super) existing: Option<ExistingPolicy>,
    pub(super) output: Output,
    pub(super) verbosity: u8,
    pub(super) quiet: bool,
    pub(super) color: bool,
    /// Where the base URL came from, for messages: `--url`, `AIRBYTE_URL`, the plan, the default.
    pub(super) url_origin: String,
    /// Said on stderr before the run: which URL and credentials are in use, when not obvious.
    pub(super) notes: Vec<String>,
}

impl Settings {
    pub(super) fn new(
        common: &CommonArgs,
        plan: &Plan,
        sandbox: Option<&BuiltIn>,
    ) -> anyhow::Result<Self> {
        let concurrency = common
            .concurrency
            .map(usize::from)
            .or(plan.concurrency)
            .unwrap_or(8);
        let mut notes = Vec::new();
        let (base_url, url_origin, credentials) = if let Some(built_in) = sandbox {
            (
                built_in.sandbox.url(),
                "--sandbox".to_string(),
                built_in.credentials.clone(),
            )
        } else {
            let (url, origin) = choose_url(
                common.url.as_deref(),
                common.url_source,
                plan.url.as_deref().map(|url| (url, plan.file.as_path())),
                &mut notes,
            );
            let (credentials, note) = credentials_from_env()?;
            notes.extend(note);
            (url, origin, credentials)
        };
        Ok(Settings {
            client: ClientConfig {
                base_url,
                credentials,
                concurrency,
                timeout: common.request_timeout,
                read_timeout: common.read_timeout,
                give_up_after: common.target_timeout,
                allow_insecure_http: common.allow_insecure_http,
                retry: RetryPolicy::default(),
                ca_certificates: match &common.ca_cert {
                    Some(path) => Some(
                        std::fs::read(path)
                            .with_context(|| format!("--ca-cert {}", path.display()))?,
                    ),
                    None => None,
                },
            },
            execute: ExecuteOptions {
                concurrency,
                target_timeout: common.target_timeout,
                grace: GRACE,
                retry: RetryPolicy::default(),
                // A create that timed out may still land for about as long again.
                settle: common.request_timeout,
            },
            existing: common.existing.map(ExistingPolicy::from),
            output: common.output,
            verbosity: common.verbose,
            quiet: common.quiet,
            color: use_color(
                common.color,
                std::env::var("NO_COLOR").ok().as_deref(),
                std::env::var("CLICOLOR_FORCE").ok().as_deref(),
                std::io::stdout().is_terminal(),
            ),
            url_origin,
            notes,
        })
    }

    /// Progress bars: on a terminal, unless quiet or JSON.
    pub(super) fn shows_progress(common: &CommonArgs) -> bool {
        std::io::stderr().is_terminal() && !common.quiet && common.output == Output::Human
    }

    pub(super) fn style(&self) -> Style {
        Style {
            color: self.color,
            show_bodies: self.verbosity > 0,
            quiet: self.quiet,
        }
    }
}

/// The base URL and where it came from: `--url`, else `AIRBYTE_URL`, else the plan's
/// `airbyte.url`, else Airbyte Cloud (with a note saying so).
pub(super) fn choose_url(
    url: Option<&str>,
    source: Option<ValueSource>,
    plan: Option<(&str, &Path)>,
    notes: &mut Vec<String>,
) -> (String, String) {
    match (url.filter(|u| !u.is_empty()), plan) {
        (Some(url), _) if source == Some(ValueSource::EnvVariable) => {
            (url.to_string(), "AIRBYTE_URL".to_string())
        }
        (Some(url), _) => (url.to_string(), "--url".to_string()),
        (None, Some((url, file))) => (
            url.to_string(),
            format!("airbyte.url in {}", controls(&file.display().to_string())),
        ),
        (None, None) => {
            notes.push(format!(
                "note: no --url, AIRBYTE_URL or airbyte.url in the plan: using Airbyte Cloud, \
                 {DEFAULT_URL}"
            ));
            (DEFAULT_URL.to_string(), "the default".to_string())
        }
    }
}

/// `AIRBYTE_TOKEN`, else `AIRBYTE_CLIENT_ID` with `AIRBYTE_CLIENT_SECRET`, else no credentials;
/// with a note when the token wins over client credentials that are set too.
pub(super) fn credentials_from_env() -> anyhow::Result<(Credentials, Option<String>)> {
    let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(token) = var("AIRBYTE_TOKEN") {
        let note = (var("AIRBYTE_CLIENT_ID").is_some() || var("AIRBYTE_CLIENT_SECRET").is_some())
            .then(|| {
                "note: AIRBYTE_TOKEN is used; AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET are set \
                 too and ignored (unset AIRBYTE_TOKEN to use them)"
                    .to_string()
            });
        return Ok((Credentials::Token(Secret::new(token)), note));
    }
    let credentials = match (var("AIRBYTE_CLIENT_ID"), var("AIRBYTE_CLIENT_SECRET")) {
        (Some(client_id), Some(secret)) => Credentials::Application {
            client_id,
            client_secret: Secret::new(secret),
        },
        (Some(_), None) => bail!("AIRBYTE_CLIENT_ID is set but AIRBYTE_CLIENT_SECRET is not"),
        (None, Some(_)) => bail!("AIRBYTE_CLIENT_SECRET is set but AIRBYTE_CLIENT_ID is not"),
        (None, None) => Credentials::None,
    };
    Ok((credentials, None))
}

/// What to add to the error of a run that failed as a whole, from how the server answered: an
/// unreachable URL (and where it came from), a base URL without its API path, refused
/// credentials (which ones, and how to fix them).
pub(super) fn hints(url_origin: &str, credentials: &Credentials, client: &Client) -> Vec<String> {
    let contact = client.contact();
    let base = client.base_url();
    let mut hints = Vec::new();
    if contact.answers == 0 {
        hints.push(format!(
            "no answer from the Airbyte API at {base} (the URL from {url_origin}); check it, or \
             set --url or AIRBYTE_URL"
        ));
        return hints;
    }
    if contact.not_found == contact.answers && !base.ends_with("/v1") {
        hints.push(format!(
            "every answer from {base} was 404 Not Found (the URL from {url_origin}): the base \
             URL probably lacks the API's path; add /v1 (Airbyte Cloud: {DEFAULT_URL}) or \
             /api/public/v1 (self-hosted: http://host:8000/api/public/v1)"
        ));
    }
    if contact.refused > 0 {
        hints.push(match credentials {
            Credentials::Token(_) => "the server refused AIRBYTE_TOKEN (401): it may have \
                 expired or belong to another Airbyte; set a fresh AIRBYTE_TOKEN, or unset it \
                 and set AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET"
                .to_string(),
            Credentials::Application { client_id, .. } => format!(
                "the server refused the application credentials (AIRBYTE_CLIENT_ID={}): check \
                 AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET (Airbyte: Settings → \
                 Applications), or set AIRBYTE_TOKEN instead",
                controls(client_id)
            ),
            Credentials::None => "the server wants credentials (401) and none were sent: set \
                 AIRBYTE_TOKEN, or AIRBYTE_CLIENT_ID and AIRBYTE_CLIENT_SECRET"
                .to_string(),
        });
    }
    hints
}
