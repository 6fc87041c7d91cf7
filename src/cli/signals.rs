//! Ctrl-C and SIGTERM: the first winds the run down, the second stops the wait for writes in
//! flight, the third exits at once.

use super::{GRACE, INTERRUPTED, TERMINATED};
use crate::execute::Interrupt;
use crate::report::events::Reporter;
use anyhow::Context;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Weak};

/// The signals that stop a run: Ctrl-C (SIGINT) and, on Unix, SIGTERM (how CI systems cancel a
/// job). Listening starts when this is made, so no signal after that is lost.
pub(super) struct Signals {
    #[cfg(unix)]
    pub(super) interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    pub(super) terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn listen() -> anyhow::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt()).context("listening for Ctrl-C")?,
                terminate: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next signal, as the exit code it calls for; `None` when no more can come.
    pub(super) async fn next(&mut self) -> Option<u8> {
        #[cfg(unix)]
        {
            tokio::select! {
                got = self.interrupt.recv() => got.map(|()| INTERRUPTED),
                got = self.terminate.recv() => got.map(|()| TERMINATED),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await.ok().map(|()| INTERRUPTED)
        }
    }
}

/// The first signal asks the run to wind down (and sets the exit code); the second ends the wait
/// for the creates in flight, and the run writes its report and exits; a third exits at once.
pub(super) async fn watch_signals(
    mut signals: Signals,
    interrupt: Arc<Interrupt>,
    code: Arc<AtomicU8>,
    asking: Arc<AtomicBool>,
    reporter: Weak<dyn Reporter>,
) {
    let log = |line: &str| {
        if let Some(reporter) = reporter.upgrade() {
            reporter.log(0, line);
        }
    };
    let Some(first) = signals.next().await else {
        return;
    };
    code.store(first, Ordering::SeqCst);
    // At the prompt nothing is in flight: the run ends at once, with nothing written.
    if !asking.load(Ordering::SeqCst) {
        log(&format!(
            "{}: nothing new will start; writes in flight, if any, get {} s to finish (again to \
             stop waiting)",
            if first == TERMINATED {
                "terminated (SIGTERM)"
            } else {
                "interrupted"
            },
            GRACE.as_secs()
        ));
    }
    interrupt.raise();
    if signals.next().await.is_none() {
        return;
    }
    log("interrupted again: writing the report and exiting (again to exit at once)");
    interrupt.raise();
    if signals.next().await.is_some() {
        std::process::exit(i32::from(first));
    }
}

/// Stops a background task when the run is over.
pub(super) struct AbortOnDrop(pub(super) tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
