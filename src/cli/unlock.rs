//! `replicate unlock PLAN`: drops the plan's lease by hand (Terraform's `force-unlock`), for when
//! a run died holding it and waiting for it to go stale is not wanted.
//!
//! It finds the template's workspace, reads its tags, and deletes the plan's lease tags (the
//! lease, or the gate of a run that died while taking it). It asks first when a person is
//! there to answer; without a terminal it needs `--yes`. A run still going finds its lease gone
//! at its next renewal and starts no further write.

use super::args::UnlockArgs;
use super::commands::{Connected, Connection, connect};
use super::hints;
use super::run::{ask, can_ask};
use crate::lease;
use crate::plan;
use crate::report::escape::controls;
use crate::resolve;
use anyhow::bail;

pub(super) async fn unlock(args: &UnlockArgs) -> anyhow::Result<u8> {
    let plan = plan::load(&args.plan).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let Connected {
        client,
        origin,
        credentials,
    } = connect(&Connection {
        url: args.url.as_deref(),
        url_source: args.url_source,
        plan_url: plan.url.as_deref().map(|url| (url, args.plan.as_path())),
        built_in: None,
        allow_insecure_http: args.allow_insecure_http,
        ca_cert: args.ca_cert.as_deref(),
    })?;
    let failed = |e: &dyn std::fmt::Display| {
        let mut message = e.to_string();
        for hint in hints(&origin, &credentials, &client) {
            message.push('\n');
            message.push_str(&hint);
        }
        anyhow::anyhow!(message)
    };
    let template = resolve::find_template(&plan, &client)
        .await
        .map_err(|e| failed(&e))?;
    let workspace = template.workspace_id;
    let tags = client.tags(workspace).await.map_err(|e| failed(&e))?;
    let holders = lease::holders(&tags, workspace, &plan.owner);
    let what = format!(
        "{} (owner \"{}\")",
        args.plan.display(),
        controls(&plan.owner)
    );
    if holders.is_empty() {
        println!("No lease is held on {what}.");
        return Ok(0);
    }
    let now = client.server_now();
    let described: Vec<String> = holders.iter().map(|h| h.describe(now)).collect();
    if !args.yes {
        if !can_ask() {
            bail!(
                "the lease of {what} is held by {}; no terminal to confirm on: pass --yes to drop \
                 it",
                described.join(" and by ")
            );
        }
        if !ask(&format!(
            "The lease of {what} is held by {}.\nDrop it? Only do this when no apply of this plan \
             is running. Only 'yes' or 'y' proceeds: ",
            described.join(" and by ")
        ))
        .await?
        {
            eprintln!("Nothing was dropped.");
            return Ok(1);
        }
    }
    for holder in &holders {
        client
            .delete_tag(holder.tag_id)
            .await
            .map_err(|e| failed(&e))?;
    }
    println!(
        "Dropped the lease of {what}, held by {}.",
        described.join(" and by ")
    );
    Ok(0)
}
