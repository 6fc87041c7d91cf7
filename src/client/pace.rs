//! The pace of the whole run: how many requests may be in flight, and how fast they may start.
//!
//! Two limits, shared by every request of the run:
//! - **Concurrency**: a semaphore with the user's `--concurrency` permits; a request holds one
//!   while it is on the wire.
//! - **Rate**: none at first. When the server throttles (a 429, or a 409 `try-again-later`) or
//!   times out, the rate is set just under what actually succeeded in the last second, and
//!   request starts are spaced to it. Each success then raises it a little (about one request
//!   per second, per second), each throttle lowers it by a tenth — additive increase,
//!   multiplicative decrease — so the run settles just under the server's limit instead of every
//!   request backing off on its own.
//!
//! A `Retry-After` from the server pauses every request until it has passed (an hour at most);
//! a request that cannot wait that long, its deadline coming first, fails at once instead.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How far back successes are counted to estimate the server's pace.
const WINDOW: Duration = Duration::from_secs(1);
/// The slowest pace the run will ever go.
const MIN_RATE: f64 = 0.5;
/// The factor a throttle applies to the rate.
const DECREASE: f64 = 0.9;
/// The longest a `Retry-After` pauses the run: a server's number is not trusted to be sane.
const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The shared pace. See the module docs.
pub struct Pace {
    permits: Semaphore,
    state: Mutex<State>,
}

struct State {
    /// Requests per second, once the server has pushed back.
    rate: Option<f64>,
    /// When the next request may start, under `rate`.
    next_start: Instant,
    /// Nobody starts before this (a `Retry-After`).
    paused_until: Instant,
    /// Recent successes, to measure the pace the server accepts.
    successes: VecDeque<Instant>,
    /// Throttles seen; ignored while a decrease from the same burst is fresh.
    last_decrease: Option<Instant>,
}

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSlot {
    /// The pace is gone: the run is shutting down.
    Closed,
    /// Its turn would come this long from now, after its deadline.
    Held(Duration),
}

/// A request's right to be on the wire; dropping it frees the slot.
pub struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Pace {
    pub fn new(concurrency: usize) -> Pace {
        let now = Instant::now();
        Pace {
            permits: Semaphore::new(concurrency.max(1)),
            state: Mutex::new(State {
                rate: None,
                next_start: now,
                paused_until: now,
                successes: VecDeque::new(),
                last_decrease: None,
            }),
        }
    }

    /// Waits for a free slot and for the request's turn under the current rate and any pause.
    /// A request whose turn would come after `deadline` gets no slot: it is told how long it
    /// would have been held instead, at once.
    pub async fn slot(&self, deadline: Instant) -> Result<Slot<'_>, NoSlot> {
        let permit = self.permits.acquire().await.map_err(|_| NoSlot::Closed)?;
        let start = {
            let mut state = self.state.lock().map_err(|_| NoSlot::Closed)?;
            let now = Instant::now();
            let start = now.max(state.paused_until).max(state.next_start);
            if start > deadline {
                return Err(NoSlot::Held(start - now));
            }
            if let Some(rate) = state.rate {
                state.next_start = start + Duration::from_secs_f64(1.0 / rate);
            }
            start
        };
        // Most requests may start at once: do not pay a timer tick (a millisecond) for nothing.
        if start > Instant::now() {
            tokio::time::sleep_until(start.into()).await;
        }
        Ok(Slot { _permit: permit })
    }

    /// A request succeeded: count it, and let the rate creep up. Returns the rate, if any.
    pub fn success(&self) -> Option<f64> {
        let mut state = self.state.lock().ok()?;
        let now = Instant::now();
        state.successes.push_back(now);
        while state
            .successes
            .front()
            .is_some_and(|t| now.duration_since(*t) > WINDOW)
        {
            state.successes.pop_front();
        }
        if let Some(rate) = state.rate {
            state.rate = Some(rate + 1.0 / rate.max(1.0));
        }
        state.rate
    }

    /// The server throttled or timed out: slow the whole run down. Returns the new rate.
    pub fn throttled(&self, retry_after: Option<Duration>) -> Option<f64> {
        let mut state = self.state.lock().ok()?;
        let now = Instant::now();
        if let Some(wait) = retry_after {
            let until = now.checked_add(wait.min(MAX_PAUSE)).unwrap_or(now);
            state.paused_until = state.paused_until.max(until);
        }
        // Requests already in flight when the first throttle came back report the same burst;
        // decrease once per burst (a tenth of a second), not once per request.
        if state
            .last_decrease
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
        {
            return state.rate;
        }
        state.last_decrease = Some(now);
        let accepted = state
            .successes
            .iter()
            .filter(|t| now.duration_since(**t) <= WINDOW)
            .count();
        #[allow(clippy::cast_precision_loss)] // a count of requests in one second
        let measured = accepted as f64 / WINDOW.as_secs_f64();
        let rate = match state.rate {
            None => measured * DECREASE,
            Some(rate) => rate * DECREASE,
        }
        .max(MIN_RATE);
        state.rate = Some(rate);
        // Space the next start from now, so the burst that caused this does not repeat.
        state.next_start = state
            .next_start
            .max(now + Duration::from_secs_f64(1.0 / rate));
        Some(rate)
    }

    /// The current rate limit, when the server has pushed back (for the progress display).
    pub fn rate(&self) -> Option<f64> {
        self.state.lock().ok()?.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn throttles_set_the_rate_from_what_succeeded_then_it_creeps_up() {
        let pace = Pace::new(4);
        assert_eq!(pace.rate(), None);
        for _ in 0..40 {
            pace.success();
        }
        let rate = pace.throttled(None).unwrap();
        assert!((rate - 36.0).abs() < 1e-9, "{rate}");
        // The same burst does not decrease twice.
        assert_eq!(pace.throttled(None), Some(rate));
        pace.success();
        assert!(pace.rate().unwrap() > rate);
    }

    #[tokio::test]
    async fn the_rate_spaces_request_starts() {
        let pace = Pace::new(8);
        for _ in 0..10 {
            pace.success();
        }
        let started = Instant::now();
        assert_eq!(pace.throttled(None), Some(9.0));
        // At 9 requests a second, starts are 1/9 s apart, the first 1/9 s after the throttle.
        let deadline = Instant::now() + Duration::from_secs(60);
        let first = pace.slot(deadline).await.unwrap();
        let second = pace.slot(deadline).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(2) / 9);
        drop((first, second));
    }

    #[tokio::test]
    async fn an_absurd_retry_after_pauses_an_hour_at_most() {
        let pace = Pace::new(1);
        pace.throttled(Some(Duration::MAX));
        pace.throttled(Some(Duration::from_secs(u64::MAX)));
        let paused_until = pace.state.lock().unwrap().paused_until;
        assert!(paused_until <= Instant::now() + MAX_PAUSE);
        // A request that cannot wait that long is told so at once.
        let deadline = Instant::now() + Duration::from_secs(5);
        match pace.slot(deadline).await {
            Err(NoSlot::Held(wait)) => assert!(wait > Duration::from_secs(3000), "{wait:?}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
