//! Progress on stderr with indicatif: a spinner per resolve step, then one bar over the writes.
//!
//! Built hidden when stderr is not a terminal, with `--quiet` or with `--output json`, so the
//! rest of the code never asks whether it is talking to a terminal. `-v` lines go above the bars.
//!
//! The writes' bar counts every row of the run from its first draw (its length is set once,
//! when resolve is done); a target with nothing to write counts as done when it is decided.
//! Its rate is that of the writes over the last few seconds ([`Throughput`]), and the time left
//! is the rows left at that rate, shown only once there is a rate to go by.

mod throughput;

use super::escape::controls;
use super::events::{Reporter, Step, WriteResult};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use throughput::{Throughput, short_duration};

/// The rate is that of the writes over this last stretch of time…
const RATE_WINDOW: Duration = Duration::from_secs(5);
/// …and is not shown before the writes have been watched this long.
const RATE_MIN_SPAN: Duration = Duration::from_secs(1);

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
    unchanged: AtomicU64,
    failed: AtomicU64,
    /// Writes finished (of any outcome): the count whose rate the bar shows.
    written: AtomicU64,
    throughput: Arc<Mutex<Throughput>>,
    /// The pace the server allows, in requests per second (`f64` bits); 0 while unlimited.
    pace: AtomicU64,
    /// The first syncs' bar, and how many ended well or not.
    syncs: Mutex<Option<ProgressBar>>,
    synced: AtomicU64,
    sync_failed: AtomicU64,
    /// Set by [`Reporter::done`]: nothing is drawn any more, and log lines go straight out.
    ended: AtomicBool,
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
            unchanged: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            written: AtomicU64::new(0),
            throughput: Arc::new(Mutex::new(Throughput::new(RATE_WINDOW, RATE_MIN_SPAN))),
            pace: AtomicU64::new(0),
            syncs: Mutex::new(None),
            synced: AtomicU64::new(0),
            sync_failed: AtomicU64::new(0),
            ended: AtomicBool::new(false),
        }
    }

    fn step(&self, step: Step) -> Option<ProgressBar> {
        let steps = self.steps.lock().ok()?;
        steps
            .iter()
            .find(|(s, _)| *s == step)
            .map(|(_, b)| b.clone())
    }

    /// One more row done: its counter, the bar, the bar's message.
    fn count(&self, result: WriteResult) {
        let counter = match result {
            WriteResult::Created => &self.created,
            WriteResult::Updated => &self.updated,
            WriteResult::Deleted => &self.deleted,
            WriteResult::Unchanged => &self.unchanged,
            WriteResult::Failed => &self.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(writes) = self.writes.lock() {
            if let Some(bar) = writes.as_ref() {
                bar.inc(1);
            }
        }
        self.update_writes_message();
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
                // Updates, deletes and unchanged copies are named only once there are some: a
                // first apply creates, and its bar says just that.
                let mut counts = format!("created {}", self.created.load(Ordering::Relaxed));
                for (count, what) in [
                    (&self.updated, "updated"),
                    (&self.deleted, "deleted"),
                    (&self.unchanged, "unchanged"),
                ] {
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
        // Above the writes' bar (the last one) when the catalogs are read as the writes go on.
        let writing = self.writes.lock().is_ok_and(|writes| writes.is_some());
        let bar = if writing {
            self.multi.insert_from_back(1, ProgressBar::new_spinner())
        } else {
            self.multi.add(ProgressBar::new_spinner())
        };
        // The lease has nothing to count: its spinner says what it is doing.
        let template = if step == Step::Lease {
            "{spinner:.cyan} {prefix:<12} {msg}"
        } else {
            "{spinner:.cyan} {prefix:<12} {pos} {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
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

    fn step_note(&self, step: Step, note: &str) {
        if let Some(bar) = self.step(step) {
            // Like log lines, a note could one day quote the server.
            bar.set_message(controls(note).into_owned());
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
        if let Ok(mut throughput) = self.throughput.lock() {
            throughput.record(Instant::now(), self.written.load(Ordering::Relaxed));
        }
        let throughput = Arc::clone(&self.throughput);
        let speed = move |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let now = Instant::now();
            let Ok(throughput) = throughput.lock() else {
                return;
            };
            let Some(rate) = throughput.per_sec(now) else {
                return;
            };
            let _ = write!(w, "  {rate:.1}/s");
            let left = state.len().unwrap_or(0).saturating_sub(state.pos());
            if let Some(eta) = throughput.eta(now, left) {
                let _ = write!(w, "  ETA {}", short_duration(eta));
            }
        };
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("{bar:30.green/dim} {pos}/{len} targets  {msg}{speed}")
                .map_or_else(
                    |_| ProgressStyle::default_bar(),
                    |style| style.with_key("speed", speed),
                ),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        if let Ok(mut writes) = self.writes.lock() {
            *writes = Some(bar);
        }
        self.update_writes_message();
    }

    fn target_settled(&self, result: WriteResult) {
        self.count(result);
    }

    fn write_finished(&self, result: WriteResult) {
        let written = self.written.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut throughput) = self.throughput.lock() {
            throughput.record(Instant::now(), written);
        }
        self.count(result);
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

    fn before_prompt(&self) {
        if !self.visible {
            return;
        }
        // The finished spinners stay on screen as printed lines. The bars forget them: they are
        // taken out while nothing is drawn, and the bars get a fresh target that has drawn
        // nothing, so the next draw starts on the line below the answer instead of clearing
        // its way up over the prompt.
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
        if let Ok(mut steps) = self.steps.lock() {
            for (_, bar) in steps.drain(..) {
                self.multi.remove(&bar);
            }
        }
        self.multi.set_draw_target(ProgressDrawTarget::stderr());
    }

    fn pace(&self, rate: f64) {
        self.pace.store(rate.to_bits(), Ordering::Relaxed);
    }

    fn done(&self) {
        self.clear_unfinished();
        // What is on screen stays, and nothing is drawn over what follows.
        self.ended.store(true, Ordering::SeqCst);
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
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
        if self.visible && !self.ended.load(Ordering::SeqCst) {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

impl Progress {
    /// Leaves no spinner ticking (a run stopped early): an unfinished step is cleared from the
    /// screen, a finished one stays as its line.
    fn clear_unfinished(&self) {
        if let Ok(steps) = self.steps.lock() {
            for (_, bar) in steps.iter() {
                if !bar.is_finished() {
                    bar.finish_and_clear();
                }
            }
        }
        for bar in [&self.writes, &self.syncs] {
            if let Ok(bar) = bar.lock() {
                if let Some(bar) = bar.as_ref().filter(|bar| !bar.is_finished()) {
                    bar.finish_and_clear();
                }
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear_unfinished();
    }
}
