//! The events a run emits while it works, and the [`Reporter`] that receives them.
//!
//! Logic never prints: the resolver, the executor and the client call a `Reporter`; the terminal
//! progress bars implement it, and tests or `--quiet` runs use [`Silent`].

/// A resolve step, shown as one spinner with a count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Template,
    Sources,
    Connections,
    /// `apply`'s lease on the plan: taken, or waited for.
    Lease,
    Catalogs,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Template => "template",
            Step::Sources => "sources",
            Step::Connections => "connections",
            Step::Lease => "lease",
            Step::Catalogs => "catalogs",
        }
    }
}

/// How a target ended, for the progress bar's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Created,
    Updated,
    Deleted,
    /// Nothing to write: the copy is in line (or left as it is).
    Unchanged,
    /// The write failed, or the target cannot be written at all.
    Failed,
}

/// Receives progress events. Every method has an empty default, so an implementation only
/// listens to what it shows.
pub trait Reporter: Send + Sync {
    /// A resolve step began.
    fn step_started(&self, _step: Step) {}
    /// A resolve step counted `n` more items (pages, sources, catalogs).
    fn step_advanced(&self, _step: Step, _n: u64) {}
    /// A resolve step says what it is doing now ("waiting for it"), until it is done.
    fn step_note(&self, _step: Step, _note: &str) {}
    /// A resolve step is done; `summary` says what it found ("7 sources").
    fn step_finished(&self, _step: Step, _summary: &str) {}
    /// The writes begin. `total` counts every row of the run (targets, and orphans to delete),
    /// known once resolve is done: each ends once, by [`Reporter::target_settled`] or
    /// [`Reporter::write_finished`], and `total` never changes.
    fn writes_started(&self, _total: u64) {}
    /// A target with nothing to write was decided (unchanged, or an error): it is done.
    fn target_settled(&self, _result: WriteResult) {}
    /// One target's write finished: the pace of these is the run's rate.
    fn write_finished(&self, _result: WriteResult) {}
    /// The writes are done.
    fn writes_finished(&self) {}
    /// First syncs begin for `total` copies.
    fn syncs_started(&self, _total: u64) {}
    /// One copy's sync was started (and, when waited for, ended with `status`).
    fn sync_finished(&self, _status: Option<crate::wire::JobStatus>) {}
    /// The syncs are started (and followed, with `--wait`).
    fn syncs_finished(&self) {}
    /// The server pushed back, and requests now start at most `rate` per second.
    fn pace(&self, _rate: f64) {}
    /// The run is over and its end is about to be printed: nothing shown may stay drawn, or be
    /// drawn again, below it. (Clones of the reporter, held by the client, may outlive this.)
    fn done(&self) {}
    /// A prompt is about to take the terminal: what is shown stays as it is, and whatever is
    /// drawn next starts below the prompt's line (the question and its answer stay intact).
    fn before_prompt(&self) {}
    /// Prints `text` on stdout, around whatever the reporter shows on the terminal.
    fn print(&self, text: &str) {
        super::stdout::print(text);
    }
    /// A diagnostic line for `-v` (level 1) or `-vv` (level 2). Never contains secrets.
    fn log(&self, _level: u8, _line: &str) {}
}

/// A reporter that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {}

/// `n` and the noun, singular or plural: "1 source", "7 sources".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
