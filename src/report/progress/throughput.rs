//! How fast the writes go now, and how long the rest will take at that pace.
//!
//! A rate averaged from the start of a run says little once the server slows down or speeds up
//! (a rate limit, a slow catalog), and indicatif's own estimate can read 0 s while hundreds of
//! targets are left. [`Throughput`] keeps the count of items done at the moments it changed and
//! measures the rate over the last `window` only: items done in that window ÷ its length. It
//! says nothing until it has watched for `min_span`, and a run that stalls sees its rate fall
//! towards 0, where the time left is unknown rather than "0 s". Pure: the caller passes the
//! time, so it is tested without a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The rate of a running count over a recent window.
#[derive(Debug, Clone)]
pub struct Throughput {
    window: Duration,
    /// Less than this watched, and there is no rate yet.
    min_span: Duration,
    /// `(when, done by then)`, oldest first, counts never decreasing; the oldest kept is the last
    /// one at or before the start of the window, so the count at that start is known.
    samples: VecDeque<(Instant, u64)>,
}

impl Throughput {
    pub fn new(window: Duration, min_span: Duration) -> Throughput {
        Throughput {
            window,
            min_span,
            samples: VecDeque::new(),
        }
    }

    /// `done` items in all as of `at`. A sample older than the last one, or with a smaller
    /// count, is out of order and ignored.
    pub fn record(&mut self, at: Instant, done: u64) {
        if let Some(&(last_at, last_done)) = self.samples.back() {
            if at < last_at || done < last_done {
                return;
            }
            if done == last_done {
                // The count is a step function: a sample that does not change it adds nothing.
                return;
            }
        }
        self.samples.push_back((at, done));
        // Forget what lies before the window, but for the sample that gives its starting count.
        if let Some(start) = at.checked_sub(self.window) {
            while self.samples.len() > 1 && self.samples[1].0 <= start {
                self.samples.pop_front();
            }
        }
    }

    /// Items per second over the window that ends at `now` (or since the first sample, when
    /// that is more recent); `None` until `min_span` has been watched.
    pub fn per_sec(&self, now: Instant) -> Option<f64> {
        let &(first_at, first_done) = self.samples.front()?;
        let start = now
            .checked_sub(self.window)
            .filter(|start| *start > first_at);
        let (span, base) = match start {
            Some(start) => (self.window, self.done_at(start)),
            None => (now.saturating_duration_since(first_at), first_done),
        };
        if span < self.min_span || span.is_zero() {
            return None;
        }
        // Counts of targets: far below 2^52, exact as f64.
        #[allow(clippy::cast_precision_loss)]
        let done = self.done_at(now).saturating_sub(base) as f64;
        Some(done / span.as_secs_f64())
    }

    /// The time `remaining` items take at the current rate; `None` while there is no rate or
    /// it is 0 (stalled: no honest estimate).
    pub fn eta(&self, now: Instant, remaining: u64) -> Option<Duration> {
        let rate = self.per_sec(now)?;
        if rate <= 0.0 {
            return None;
        }
        #[allow(clippy::cast_precision_loss)]
        let remaining = remaining as f64;
        Duration::try_from_secs_f64(remaining / rate).ok()
    }

    /// The count as of `at`: that of the last sample at or before it.
    fn done_at(&self, at: Instant) -> u64 {
        self.samples
            .iter()
            .take_while(|(when, _)| *when <= at)
            .last()
            .map_or(0, |&(_, done)| done)
    }
}

/// A time left as a person reads it: `8s`, `4m05s`, `2h07m`.
pub fn short_duration(d: Duration) -> String {
    // Rounded up: "0s" would claim the work is done.
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(5);
    const MIN: Duration = Duration::from_secs(1);

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn nothing_to_say_before_min_span() {
        let t0 = Instant::now();
        let mut t = Throughput::new(WINDOW, MIN);
        assert_eq!(t.per_sec(t0), None);
        t.record(t0, 0);
        t.record(at(t0, 200), 10);
        assert_eq!(t.per_sec(at(t0, 500)), None);
        assert_eq!(t.eta(at(t0, 500), 100), None);
        assert_eq!(t.per_sec(at(t0, 1000)), Some(10.0));
    }

    #[test]
    fn the_rate_is_over_the_window_not_since_the_start() {
        let t0 = Instant::now();
        let mut t = Throughput::new(WINDOW, MIN);
        t.record(t0, 0);
        // 100 items per second for 10 s, then 10 per second for 10 s.
        for s in 1..=10 {
            t.record(at(t0, s * 1000), s * 100);
        }
        for s in 1..=10 {
            t.record(at(t0, 10_000 + s * 1000), 1000 + s * 10);
        }
        let now = at(t0, 20_000);
        // Since the start: 1100 / 20 s = 55/s; over the last 5 s: 50 / 5 s.
        assert_eq!(t.per_sec(now), Some(10.0));
        assert_eq!(t.eta(now, 300), Some(Duration::from_secs(30)));
    }

    #[test]
    fn a_stalled_run_has_no_eta() {
        let t0 = Instant::now();
        let mut t = Throughput::new(WINDOW, MIN);
        t.record(t0, 0);
        t.record(at(t0, 1000), 50);
        assert_eq!(t.eta(at(t0, 2000), 50), Some(Duration::from_secs(2)));
        // Nothing more done: the rate decays as the window moves past the last item.
        assert_eq!(t.per_sec(at(t0, 5000)), Some(10.0));
        assert_eq!(t.per_sec(at(t0, 6000)), Some(0.0));
        assert_eq!(t.eta(at(t0, 6000), 50), None);
    }

    #[test]
    fn the_window_starts_from_the_count_at_its_start() {
        let t0 = Instant::now();
        let mut t = Throughput::new(WINDOW, MIN);
        t.record(t0, 0);
        t.record(at(t0, 1000), 40);
        t.record(at(t0, 7000), 60);
        // The window [2 s, 7 s] starts at 40 (the sample at 1 s), not at 0.
        assert_eq!(t.per_sec(at(t0, 7000)), Some(4.0));
        assert_eq!(t.samples.len(), 2, "older samples are forgotten");
    }

    #[test]
    fn out_of_order_and_repeated_samples_are_ignored() {
        let t0 = Instant::now();
        let mut t = Throughput::new(WINDOW, MIN);
        t.record(at(t0, 1000), 10);
        t.record(t0, 0);
        t.record(at(t0, 1500), 5);
        t.record(at(t0, 1500), 10);
        assert_eq!(t.samples.len(), 1);
        assert_eq!(t.per_sec(at(t0, 3000)), Some(0.0));
    }

    #[test]
    fn durations_read_short_and_rounded_up() {
        assert_eq!(short_duration(Duration::from_millis(1)), "1s");
        assert_eq!(short_duration(Duration::from_secs(8)), "8s");
        assert_eq!(short_duration(Duration::from_secs(245)), "4m05s");
        assert_eq!(short_duration(Duration::from_secs(7620)), "2h07m");
        assert_eq!(short_duration(Duration::ZERO), "0s");
    }
}
