//! Progress on stderr with indicatif: a spinner per resolve step, then one bar over the writes.
//!
//! Built hidden when stderr is not a terminal, with `--quiet` or with `--output json`, so the
//! rest of the code never asks whether it is talking to a terminal. `-v` lines go above the bars.

use super::escape::controls;
use super::events::{Reporter, Step, WriteResult};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The terminal reporter.
pub struct Progress {
    multi: MultiProgress,
    visible: bool,
    verbosity: u8,
    steps: Mutex<Vec<(Step, ProgressBar)>>,
    writes: Mutex<Option<ProgressBar>>,
    created: AtomicU64,
    updated: AtomicU64,
    deleted: AtomicU64,
    failed: AtomicU64,
    /// The pace the server allows, in requests per second (`f64` bits); 0 while unlimited.
    pace: AtomicU64,
    /// The first syncs' bar, and how many ended well or not.
    syncs: Mutex<Option<ProgressBar>>,
    synced: AtomicU64,
    sync_failed: AtomicU64,
}

impl Progress {
    /// `visible`: draw bars (stderr is a terminal, not quiet, not JSON). `verbosity`: `-v` count.
    pub fn new(visible: bool, verbosity: u8) -> Progress {
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            multi: MultiProgress::with_draw_target(target),
            visible,
            verbosity,
            steps: Mutex::new(Vec::new()),
            writes: Mutex::new(None),
            created: AtomicU64::new(0),
            updated: AtomicU64::new(0),
            deleted: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            pace: AtomicU64::new(0),
            syncs: Mutex::new(None),
            synced: AtomicU64::new(0),
            sync_failed: AtomicU64::new(0),
        }
    }

    fn step(&self, step: Step) -> Option<ProgressBar> {
        let steps = self.steps.lock().ok()?;
        steps
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, b)| b.clone())
    }

    fn update_writes_message(&self) {
        if let Ok(writes) = self.writes.lock() {
            if let Some(bar) = writes.as_ref() {
                let pace = f64::from_bits(self.pace.load(Ordering::Relaxed));
                let pace = if pace > 0.0 {
                    format!(", server pace {pace:.0} req/s")
                } else {
                    String::new()
                };
                // Updates and deletes are named only once there are some: a first apply
                // creates, and its bar says just that.
                let mut counts = format!("created {}", self.created.load(Ordering::Relaxed));
                for (count, what) in [(&self.updated, "updated"), (&self.deleted, "deleted")] {
                    let n = count.load(Ordering::Relaxed);
                    if n > 0 {
                        let _ =
                            std::fmt::Write::write_fmt(&mut counts, format_args!(", {what} {n}"));
                    }
                }
                bar.set_message(format!(
                    "{counts}, failed {}{pace}",
                    self.failed.load(Ordering::Relaxed)
                ));
            }
        }
    }
}

impl Reporter for Progress {
    fn step_started(&self, step: Step) {
        // Hidden bars would still tick and format on a timer thread: make none at all.
        if !self.visible {
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix:<12} {pos} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(step.label());
        bar.enable_steady_tick(Duration::from_millis(100));
        if let Ok(mut steps) = self.steps.lock() {
            steps.push((step, bar));
        }
    }

    fn step_advanced(&self, step: Step, n: u64) {
        if let Some(bar) = self.step(step) {
            bar.inc(n);
        }
    }

    fn step_finished(&self, step: Step, summary: &str) {
        if let Some(bar) = self.step(step) {
            bar.set_style(
                ProgressStyle::with_template("✔ {prefix:<12} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.finish_with_message(summary.to_string());
        }
    }

    fn writes_started(&self, total: u64) {
        if !self.visible {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:30.green/dim} {pos}/{len} targets  {msg}  {rate}  ETA {eta}",
            )
            .map_or_else(
                |_| ProgressStyle::default_bar(),
                |style| {
                    style.with_key(
                        "rate",
                        |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.1}/s", state.per_sec());
                        },
                    )
                },
            ),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut writes) = self.writes.lock() {
            *writes = Some(bar);
        }
        self.update_writes_message();
    }

    fn writes_queued(&self, n: u64) {
        if let Ok(writes) = self.writes.lock() {
            if let Some(bar) = writes.as_ref() {
                bar.inc_length(n);
            }
        }
    }

    fn write_finished(&self, result: WriteResult) {
        match result {
            WriteResult::Created => self.created.fetch_add(1, Ordering::Relaxed),
            WriteResult::Updated => self.updated.fetch_add(1, Ordering::Relaxed),
            WriteResult::Deleted => self.deleted.fetch_add(1, Ordering::Relaxed),
            WriteResult::Failed => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        if let Ok(writes) = self.writes.lock() {
            if let Some(bar) = writes.as_ref() {
                bar.inc(1);
            }
        }
        self.update_writes_message();
    }

    fn writes_finished(&self) {
        // The summary line says the same, on stdout; leave the terminal on a fresh line for it.
        if let Ok(writes) = self.writes.lock() {
            if let Some(bar) = writes.as_ref() {
                bar.finish_and_clear();
            }
        }
    }

    fn syncs_started(&self, total: u64) {
        if !self.visible {
            return;
        }
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{bar:30.cyan/dim} {pos}/{len} syncs  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message("starting");
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut syncs) = self.syncs.lock() {
            *syncs = Some(bar);
        }
    }

    fn sync_finished(&self, status: Option<crate::wire::JobStatus>) {
        match status {
            Some(crate::wire::JobStatus::Succeeded) => {
                self.synced.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {
                self.sync_failed.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
        if let Ok(syncs) = self.syncs.lock() {
            if let Some(bar) = syncs.as_ref() {
                bar.inc(1);
                bar.set_message(format!(
                    "succeeded {}, failed {}",
                    self.synced.load(Ordering::Relaxed),
                    self.sync_failed.load(Ordering::Relaxed)
                ));
            }
        }
    }

    fn syncs_finished(&self) {
        if let Ok(syncs) = self.syncs.lock() {
            if let Some(bar) = syncs.as_ref() {
                bar.finish_and_clear();
            }
        }
    }

    fn pace(&self, rate: f64) {
        self.pace.store(rate.to_bits(), Ordering::Relaxed);
    }

    /// `text` is a human rendering: its values are escaped already, and its own escape
    /// sequences are the colours.
    fn print(&self, text: &str) {
        self.multi.suspend(|| {
            super::stdout::print(text);
        });
    }

    fn log(&self, level: u8, line: &str) {
        if level > self.verbosity {
            return;
        }
        // Log lines quote the server and the plan.
        let line = controls(line);
        if self.visible {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Leave no spinner ticking if the run stopped early.
        if let Ok(steps) = self.steps.lock() {
            for (_, bar) in steps.iter() {
                if !bar.is_finished() {
                    bar.finish_and_clear();
                }
            }
        }
    }
}
