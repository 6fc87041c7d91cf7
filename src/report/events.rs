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
    Catalogs,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Template => "template",
            Step::Sources => "sources",
            Step::Connections => "connections",
            Step::Catalogs => "catalogs",
        }
    }
}

/// How a target's write ended, for the progress bar's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    Created,
    Updated,
    Deleted,
    Failed,
}

/// Receives progress events. Every method has an empty default, so an implementation only
/// listens to what it shows.
pub trait Reporter: Send + Sync {
    /// A resolve step began.
    fn step_started(&self, _step: Step) {}
    /// A resolve step counted `n` more items (pages, sources, catalogs).
    fn step_advanced(&self, _step: Step, _n: u64) {}
    /// A resolve step is done; `summary` says what it found ("7 sources").
    fn step_finished(&self, _step: Step, _summary: &str) {}
    /// The writes begin, with `total` targets known so far.
    fn writes_started(&self, _total: u64) {}
    /// `n` more targets are queued for writing (the preview found them while writes ran).
    fn writes_queued(&self, _n: u64) {}
    /// One target's write finished.
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
