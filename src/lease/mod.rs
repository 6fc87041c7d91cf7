//! The plan's lease: at most one `apply` of a plan writes at a time.
//!
//! Airbyte has no locks and no idempotency key, but a workspace holds one tag of a name, and
//! `POST /tags` answers 409 for a taken one: an atomic create-if-absent. The lease is built on
//! it, with two names per plan, both from a short hash of the plan's owner ([`hash`]):
//!
//! - the **gate** `lease:<hash>`: posting it is how a run starts taking the lease; another run
//!   posting it meanwhile gets 409;
//! - the **lease** `lease:<hash>:<taken>:<renewed>`: the gate renamed (`PATCH /tags/{tagId}`)
//!   once the run holds it, with the time it was taken and last renewed (seconds since the
//!   epoch in base 36, by the server's clock: [`crate::clock`]). Its colour is the run's id,
//!   six hex digits, so that a run can tell its lease from a successor's.
//!
//! **Taking it**: post the gate; read the workspace's tags; if another run's lease is there and
//! fresh, the lease is held: the gate is deleted again, and the run waits (`--lock-timeout`) or
//! stops before any write; a stale one is deleted, and the takeover is said. Then the gate is
//! renamed into the lease. At most one run holds it: the gate is held by one run at a time, and
//! every run looks for a lease between posting the gate and renaming it. Of two runs, the one
//! that posted the gate second did so after the first had renamed it, and so finds its lease
//! (or none, when the first had finished and dropped it).
//!
//! **Then list**: `apply` lists the workspace's connections only once the look at the tags
//! found no other run's lease while this run holds the gate ([`Lease::clear`]), alongside the
//! rename ([`crate::resolve`]): from that look on, no other run can write until this one drops
//! the lease, and a run that finished before it had landed its writes. A listing begun before
//! could miss the creates of a run that finished in between.
//!
//! **Stale**: a lease not renewed for [`LeaseOptions::stale_after`] (the longest a create can
//! take, `--request-timeout`, plus the renewal period and a margin) belongs to a run that died,
//! and whatever that run sent has landed. A run renews its lease every
//! [`LeaseOptions::renew_every`]; a renewal that finds the tag gone (404: taken over as stale,
//! or `replicate unlock`) means the lease is lost, and the run starts no further write. A gate
//! left by a run that died between posting and renaming it carries no time: it is stale once
//! seen unchanged for `stale_after`.
//!
//! **What remains possible**: a run stalled (not dead) for longer than `stale_after` is taken
//! over, and its writes still in flight can land after its successor listed; and a run that
//! dies keeps the lease until it goes stale (`replicate unlock PLAN` drops it at once). Either
//! leaves at worst a second copy owned by the plan, which the next run shows and, with prune,
//! deletes ([`crate::duplicates`]).

mod name;

pub use name::{Holder, hash, holders};
use name::{gate_name, lease_name};

use crate::client::{ApiError, Client};
use crate::wire::{Tag, TagCreateRequest, TagPatchRequest};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

/// How often a run waiting for a held lease looks again.
const POLL: Duration = Duration::from_secs(1);

/// Added to the longest a create can take before a lease is stale: the server may finish a
/// create a little after the client stopped waiting for it, and clocks read to the second.
const MARGIN: Duration = Duration::from_secs(5);

/// How long a lease lives and how long to wait for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseOptions {
    /// `--lock-timeout`: how long to wait for a lease held by another run (0: not at all).
    pub wait: Duration,
    /// A lease not renewed for this long is stale.
    pub stale_after: Duration,
    /// How often the holder renews it.
    pub renew_every: Duration,
}

impl LeaseOptions {
    /// The lease of a run whose requests take at most `request_timeout`: renewed every half of
    /// it (between 1 and 30 s), stale after it, one renewal period and a margin.
    pub fn new(request_timeout: Duration, wait: Duration) -> LeaseOptions {
        let renew_every =
            (request_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
        LeaseOptions {
            wait,
            stale_after: request_timeout + renew_every + MARGIN,
            renew_every,
        }
    }
}

/// Why the lease could not be taken; nothing was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "the plan's lease (owner \"{owner}\") is held by {holder}: another apply of this plan is \
         running{waited}. Nothing was written. --lock-timeout waits for it; if no run is going, \
         `replicate unlock {plan}` drops it{stale}"
    )]
    Held {
        owner: String,
        /// The plan file, as given.
        plan: String,
        holder: String,
        /// ", waited 60 s" or nothing.
        waited: String,
        /// " (or it goes stale in N s)" or nothing.
        stale: String,
    },
    #[error("taking the plan's lease (owner \"{owner}\"): {source}")]
    Request { owner: String, source: ApiError },
}

/// What taking the lease found.
#[derive(Debug, Clone)]
pub struct Taken {
    /// The workspace's tags, read while taking it (the owner tag is among them).
    pub tags: Vec<Tag>,
    /// A stale lease this run took over, as it was.
    pub took_over: Option<String>,
}

/// The lease this run holds, or is taking.
#[derive(Debug, Clone, Copy)]
struct Held {
    tag_id: Uuid,
    /// When the lease was taken; `None` while the tag is still the gate.
    taken: Option<i64>,
}

/// One run's lease on one plan: taken once, renewed while the run goes, dropped at its end.
#[derive(Debug)]
pub struct Lease {
    owner: String,
    /// The plan file, as given (for the messages).
    plan: String,
    hash: String,
    /// This run's id: the colour of its tags.
    run: String,
    options: LeaseOptions,
    workspace: Mutex<Option<Uuid>>,
    /// The gate or lease tag this run made, once known.
    held: Mutex<Option<Held>>,
    lost: AtomicBool,
    /// Wakes the renewal when the run is over, and whoever waits for a loss.
    changed: Notify,
    over: AtomicBool,
    /// Set once a look at the tags found no other run holding the lease (see [`Lease::clear`]).
    clear: AtomicBool,
}

/// What one look at the workspace's tags says.
enum Look {
    /// Nobody else holds it; stale leases to take over, if any.
    Free(Vec<Holder>),
    /// Held by another run.
    Busy(Holder),
}

impl Lease {
    pub fn new(owner: &str, plan: &str, options: LeaseOptions) -> Lease {
        let bytes = Uuid::new_v4().into_bytes();
        Lease {
            owner: owner.to_string(),
            plan: plan.to_string(),
            hash: hash(owner),
            run: format!("{:02x}{:02x}{:02x}", bytes[0], bytes[1], bytes[2]),
            options,
            workspace: Mutex::new(None),
            held: Mutex::new(None),
            lost: AtomicBool::new(false),
            changed: Notify::new(),
            over: AtomicBool::new(false),
            clear: AtomicBool::new(false),
        }
    }

    fn request_error(&self) -> impl Fn(ApiError) -> LeaseError + '_ {
        |source| LeaseError::Request {
            owner: self.owner.clone(),
            source,
        }
    }

    /// Takes the lease in `workspace`, waiting up to [`LeaseOptions::wait`] for another run's.
    /// `waiting` is told once when the run starts waiting.
    pub async fn take(
        &self,
        client: &Client,
        workspace: Uuid,
        waiting: impl Fn(&str),
    ) -> Result<Taken, LeaseError> {
        if let Ok(mut w) = self.workspace.lock() {
            *w = Some(workspace);
        }
        let started = Instant::now();
        // A gate seen again and again: when it was first seen.
        let mut gate_seen: Option<(Uuid, Instant)> = None;
        let mut told = false;
        loop {
            // The first try posts the gate at once; a run waiting looks before it posts, so
            // that its waiting writes nothing.
            let busy = match self.try_take(client, workspace, told).await? {
                Ok(taken) => return Ok(taken),
                Err(busy) => busy,
            };
            let now = client.server_now();
            if busy.times.is_none() {
                match gate_seen {
                    Some((id, since))
                        if id == busy.tag_id && since.elapsed() > self.options.stale_after =>
                    {
                        // A run died between posting the gate and renaming it.
                        client
                            .delete_tag(busy.tag_id)
                            .await
                            .map_err(self.request_error())?;
                        gate_seen = None;
                        continue;
                    }
                    Some((id, _)) if id == busy.tag_id => {}
                    _ => gate_seen = Some((busy.tag_id, Instant::now())),
                }
            }
            let waited = started.elapsed();
            if waited + POLL > self.options.wait {
                return Err(self.held_error(&busy, now, waited));
            }
            if !told {
                waiting(&format!(
                    "waiting up to {} s for the plan's lease, held by {}",
                    self.options.wait.saturating_sub(waited).as_secs(),
                    busy.describe(now)
                ));
                told = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn held_error(&self, busy: &Holder, now: i64, waited: Duration) -> LeaseError {
        let stale = busy.times.map_or(String::new(), |(_, renewed)| {
            let at = renewed
                .saturating_add(i64::try_from(self.options.stale_after.as_secs()).unwrap_or(0));
            format!(" (or it goes stale in {} s)", at.saturating_sub(now).max(1))
        });
        LeaseError::Held {
            owner: self.owner.clone(),
            plan: self.plan.clone(),
            holder: busy.describe(now),
            waited: if waited.as_secs() > 0 {
                format!(", waited {} s", waited.as_secs())
            } else {
                String::new()
            },
            stale,
        }
    }

    /// One try: the lease taken, or who holds it.
    async fn try_take(
        &self,
        client: &Client,
        workspace: Uuid,
        look_first: bool,
    ) -> Result<Result<Taken, Holder>, LeaseError> {
        if look_first {
            let tags = client.tags(workspace).await.map_err(self.request_error())?;
            if let Look::Busy(holder) = self.look(&tags, workspace, client.server_now(), None) {
                return Ok(Err(holder));
            }
        }
        let gate = match self.post_gate(client, workspace).await? {
            Ok(gate) => gate,
            Err(busy) => return Ok(Err(busy)),
        };
        let tags = client.tags(workspace).await.map_err(self.request_error())?;
        let stale = match self.look(&tags, workspace, client.server_now(), Some(gate)) {
            Look::Free(stale) => {
                self.clear.store(true, Ordering::SeqCst);
                self.changed.notify_waiters();
                stale
            }
            Look::Busy(holder) => {
                self.drop_tag(client).await.map_err(self.request_error())?;
                return Ok(Err(holder));
            }
        };
        let now = client.server_now();
        let took_over = stale.first().map(|h| h.describe(now));
        for holder in &stale {
            client
                .delete_tag(holder.tag_id)
                .await
                .map_err(self.request_error())?;
        }
        let lease = client
            .update_tag(
                gate,
                &TagPatchRequest {
                    name: lease_name(&self.hash, now, now),
                    color: self.run.clone(),
                },
            )
            .await
            .map_err(self.request_error())?;
        if let Ok(mut held) = self.held.lock() {
            *held = Some(Held {
                tag_id: lease.tag_id,
                taken: Some(now),
            });
        }
        Ok(Ok(Taken { tags, took_over }))
    }

    /// Posts the gate; its id, or (409) who holds the lease.
    async fn post_gate(
        &self,
        client: &Client,
        workspace: Uuid,
    ) -> Result<Result<Uuid, Holder>, LeaseError> {
        let request = TagCreateRequest {
            name: gate_name(&self.hash),
            color: self.run.clone(),
            workspace_id: workspace,
        };
        match client.create_tag(&request).await {
            Ok(tag) => {
                self.keep_id(tag.tag_id);
                Ok(Ok(tag.tag_id))
            }
            Err(e) if e.status() == Some(409) => {
                let tags = client.tags(workspace).await.map_err(self.request_error())?;
                let gate = holders(&tags, workspace, &self.owner)
                    .into_iter()
                    .find(|h| h.times.is_none());
                match gate {
                    // An earlier try of this very post made it; its answer was lost.
                    Some(gate) if gate.run == self.run => {
                        self.keep_id(gate.tag_id);
                        Ok(Ok(gate.tag_id))
                    }
                    Some(gate) => Ok(Err(gate)),
                    // Renamed or dropped since: look again at once.
                    None => Box::pin(self.post_gate(client, workspace)).await,
                }
            }
            Err(source) => Err(LeaseError::Request {
                owner: self.owner.clone(),
                source,
            }),
        }
    }

    fn keep_id(&self, tag_id: Uuid) {
        if let Ok(mut held) = self.held.lock() {
            *held = Some(Held {
                tag_id,
                taken: None,
            });
        }
    }

    /// Whether another run holds the lease, given the workspace's tags; `ours` is this run's gate.
    fn look(&self, tags: &[Tag], workspace: Uuid, now: i64, ours: Option<Uuid>) -> Look {
        let others: Vec<Holder> = holders(tags, workspace, &self.owner)
            .into_iter()
            .filter(|h| Some(h.tag_id) != ours)
            .collect();
        if let Some(fresh) = others
            .iter()
            .find(|h| !h.is_stale(now, self.options.stale_after))
        {
            return Look::Busy(fresh.clone());
        }
        Look::Free(others)
    }

    /// Deletes this run's tag (gate or lease), if it made one.
    async fn drop_tag(&self, client: &Client) -> Result<(), ApiError> {
        let held = self.held.lock().ok().and_then(|mut h| h.take());
        match held {
            Some(held) => client.delete_tag(held.tag_id).await,
            None => Ok(()),
        }
    }

    /// Renews the lease every [`LeaseOptions::renew_every`] until [`Lease::release`]; a
    /// renewal that finds the tag gone marks the lease lost and ends. `lost` is told why.
    pub async fn keep_fresh(&self, client: &Client, lost: impl Fn(&str)) {
        let mut renewed = Instant::now();
        loop {
            let wake = self.changed.notified();
            if self.over.load(Ordering::SeqCst) {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep(self.options.renew_every) => {}
                () = wake => continue,
            }
            // Not taken yet (the run is still resolving), or only the gate: nothing to renew.
            let Some((tag_id, taken)) = self
                .held
                .lock()
                .ok()
                .and_then(|h| *h)
                .and_then(|h| Some((h.tag_id, h.taken?)))
            else {
                renewed = Instant::now();
                continue;
            };
            let now = client.server_now();
            let renewal = TagPatchRequest {
                name: lease_name(&self.hash, taken, now),
                color: self.run.clone(),
            };
            let why = match client.update_tag(tag_id, &renewal).await {
                Ok(_) => {
                    renewed = Instant::now();
                    continue;
                }
                Err(e) if e.status() == Some(404) => {
                    "the plan's lease is gone (taken over as stale by another run, or `replicate \
                     unlock`): no further write is started"
                        .to_string()
                }
                // Tried again at the next period, unless another run may deem it stale by then.
                Err(e)
                    if renewed.elapsed() + self.options.renew_every < self.options.stale_after =>
                {
                    lost(&format!(
                        "renewing the plan's lease failed: {e}; trying again"
                    ));
                    continue;
                }
                Err(e) => format!(
                    "the plan's lease could not be renewed for {} s ({e}): another run may take it \
                     over, so no further write is started",
                    renewed.elapsed().as_secs()
                ),
            };
            self.lost.store(true, Ordering::SeqCst);
            self.changed.notify_waiters();
            lost(&why);
            return;
        }
    }

    /// The run is over: the renewal ends.
    pub fn stop_renewing(&self) {
        self.over.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Whether the lease was lost during the run.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Resolves once taking the lease has found no other run holding it: the gate is posted
    /// and the tags read, only the rename is left. From then on no other run writes, so `apply`
    /// lists the connections (alongside the rename), and reads the rest of the catalogs it
    /// reads ahead. Never resolves if the lease is not taken.
    pub async fn clear(&self) {
        self.until(&self.clear).await;
    }

    /// Resolves once the lease is lost.
    pub async fn lost(&self) {
        self.until(&self.lost).await;
    }

    /// Resolves once `flag` (one of this lease's, set with a notice on `changed`) is set.
    async fn until(&self, flag: &AtomicBool) {
        loop {
            let wake = self.changed.notified();
            if flag.load(Ordering::SeqCst) {
                return;
            }
            wake.await;
        }
    }

    /// Drops the lease (or the gate of a take cut short): deletes this run's tag. A tag posted
    /// whose answer never came is found by its colour.
    pub async fn release(&self, client: &Client) -> Result<(), ApiError> {
        self.stop_renewing();
        let held = self.held.lock().ok().and_then(|mut h| h.take());
        if let Some(held) = held {
            return client.delete_tag(held.tag_id).await;
        }
        let Some(workspace) = self.workspace.lock().ok().and_then(|w| *w) else {
            return Ok(());
        };
        let tags = client.tags(workspace).await?;
        for mine in holders(&tags, workspace, &self.owner)
            .iter()
            .filter(|h| h.run == self.run)
        {
            client.delete_tag(mine.tag_id).await?;
        }
        Ok(())
    }

    /// What to tell the user when the lease could not be dropped.
    pub fn release_failed(&self, error: &dyn std::fmt::Display) -> String {
        format!(
            "could not drop the plan's lease ({error}); it goes stale in {} s, or `replicate \
             unlock {}` drops it now",
            self.options.stale_after.as_secs(),
            self.plan
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_once_not_renewed_for_longer_than_a_create_can_take() {
        let options = LeaseOptions::new(Duration::from_secs(5), Duration::ZERO);
        assert_eq!(options.renew_every, Duration::from_millis(2500));
        assert_eq!(options.stale_after, Duration::from_millis(12_500));
        let defaults = LeaseOptions::new(Duration::from_secs(120), Duration::ZERO);
        assert_eq!(
            (defaults.renew_every, defaults.stale_after),
            (Duration::from_secs(30), Duration::from_secs(155))
        );
        let lease = Holder {
            tag_id: Uuid::nil(),
            run: "abcdef".into(),
            times: Some((100, 200)),
        };
        assert!(!lease.is_stale(212, options.stale_after));
        assert!(lease.is_stale(213, options.stale_after));
        let gate = Holder {
            times: None,
            ..lease
        };
        assert!(!gate.is_stale(i64::MAX, options.stale_after));
    }
}
