//! Waits that last what they say: `--latency` and `--create-delay`.
//!
//! tokio's timer counts in whole milliseconds and rounds every sleep up, at its wheel's tick and
//! again at the poller's millisecond timeout: a `sleep(20 ms)` in the sandbox gave 21.3 ms per
//! request (p50 21.4, p99 21.6, measured one request at a time with nothing else running). The
//! latency is a promise: the benchmark divides by it, and a test of "within 1.2 × requests ×
//! latency ÷ concurrency" loses a third of its margin to a sandbox that adds 6.5 % on its own.
//! So the sandbox's delays are kept by one thread of its own, which sleeps until the nearest
//! deadline with the operating system's resolution and wakes the waiting requests (measured the
//! same way: 20.36 ms, handling included); a request whose client went away just drops its side.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Waits `duration`, without rounding it up to the millisecond.
pub async fn sleep(duration: Duration) {
    if duration.is_zero() {
        return;
    }
    let deadline = Instant::now() + duration;
    let (done, wait) = oneshot::channel();
    let sent = timer().map(|timer| timer.send(Due { deadline, done }));
    match sent {
        Some(Ok(())) => {
            let _ = wait.await;
        }
        // No timer thread could be started: the coarse wait.
        _ => tokio::time::sleep_until(deadline.into()).await,
    }
}

/// A wait to end: a min-heap entry, ordered by its deadline alone.
struct Due {
    deadline: Instant,
    done: oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// Reversed: the nearest deadline is the heap's greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        other.deadline.cmp(&self.deadline)
    }
}

/// The timer thread's inbox, started on first use; `None` if the thread could not be started.
fn timer() -> Option<&'static mpsc::Sender<Due>> {
    static TIMER: OnceLock<Option<mpsc::Sender<Due>>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let (sender, inbox) = mpsc::channel();
            std::thread::Builder::new()
                .name("sandbox-delays".into())
                .spawn(move || keep(&inbox))
                .ok()
                .map(|_| sender)
        })
        .as_ref()
}

/// Ends every wait at its deadline, until the process ends.
fn keep(inbox: &mpsc::Receiver<Due>) {
    let mut waits: BinaryHeap<Due> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while waits.peek().is_some_and(|first| first.deadline <= now) {
            if let Some(due) = waits.pop() {
                // The request may be gone (its client hung up): nothing to wake.
                let _ = due.done.send(());
            }
        }
        let next = match waits.peek() {
            Some(first) => inbox.recv_timeout(first.deadline - now),
            None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(due) => waits.push(due),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_end_in_deadline_order_and_never_early() {
        let started = Instant::now();
        let (a, b) = tokio::join!(
            async {
                sleep(Duration::from_millis(30)).await;
                Instant::now()
            },
            async {
                sleep(Duration::from_millis(10)).await;
                Instant::now()
            }
        );
        assert!(b < a, "the nearer deadline ends first");
        assert!(b - started >= Duration::from_millis(10));
        assert!(a - started >= Duration::from_millis(30));
    }
}
