//! The pace of the whole run: how many requests may be in flight, and how fast they may start.
//!
//! Two limits, shared by every request of the run:
//! - **Concurrency**: the user's `--concurrency` slots; a request holds one while it is on the
//!   wire. A freed slot goes to a waiting [`Priority::First`] request (lookups, list pages, the
//!   lease) before anything else, then, as a rule, to a [`Priority::Write`] before a
//!   [`Priority::Catalog`] read: catalog reads are queued by the hundred while the writes they
//!   unlock come one at a time, and in one FIFO every write would wait behind every catalog
//!   read queued before it (an `apply` of 400 targets made no create until all 400 catalogs
//!   were read). Once no more catalog reads wait than there are slots, the run's end is near and
//!   they go before the writes instead: each is the first half of a target's two requests, and
//!   a catalog read left for last leaves its write alone on the wire a round trip later (a
//!   simulation of 1,000 targets at concurrency 32 ends 15 ms sooner; a write then waits for at
//!   most that one wave). A priority, rather than a bound on catalog reads in flight, keeps
//!   every slot busy with whatever is there (all catalogs while no write is ready) and still
//!   starts each write at the first free slot while catalog reads are many; they cannot
//!   starve, since each write is unlocked by one.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

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
    slots: Mutex<Slots>,
    state: Mutex<State>,
}

/// Which waiting requests a freed slot goes to first (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    /// List pages, lookups, the lease and the owner tag: everything but a target's requests.
    First,
    /// A target's write (a connection created, patched or deleted, a sync started).
    Write,
    /// A catalog read (`GET /streams`): queued in bulk, so it yields to writes while many wait.
    Catalog,
}

/// The concurrency slots: free ones, and who waits for one. Invariant: while a slot is free,
/// nobody waits.
struct Slots {
    free: usize,
    /// The `--concurrency`: while no more catalog reads than this wait, they go before writes.
    concurrency: usize,
    first: VecDeque<Arc<Waiter>>,
    write: VecDeque<Arc<Waiter>>,
    catalog: VecDeque<Arc<Waiter>>,
}

/// A request waiting for a slot; `granted` is set (under the slots' lock) when one is handed
/// to it.
#[derive(Default)]
struct Waiter {
    granted: AtomicBool,
    wake: Notify,
}

/// Gives the slot back if a waiter is dropped (its request cancelled) after one was handed to
/// it, and takes it out of its queue if not.
struct Waiting<'a> {
    pace: &'a Pace,
    waiter: Arc<Waiter>,
    done: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut slots = self.pace.lock_slots();
        if self.waiter.granted.load(Ordering::Acquire) {
            Pace::hand_on(&mut slots);
        } else {
            let slots = &mut *slots;
            for queue in [&mut slots.first, &mut slots.write, &mut slots.catalog] {
                queue.retain(|w| !Arc::ptr_eq(w, &self.waiter));
            }
        }
    }
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
    pace: &'a Pace,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        Pace::hand_on(&mut self.pace.lock_slots());
    }
}

impl Pace {
    pub fn new(concurrency: usize) -> Pace {
        let now = Instant::now();
        Pace {
            slots: Mutex::new(Slots {
                free: concurrency.max(1),
                concurrency: concurrency.max(1),
                first: VecDeque::new(),
                write: VecDeque::new(),
                catalog: VecDeque::new(),
            }),
            state: Mutex::new(State {
                rate: None,
                next_start: now,
                paused_until: now,
                successes: VecDeque::new(),
                last_decrease: None,
            }),
        }
    }

    /// The slots, also after a panic elsewhere: their counts stay consistent under the lock.
    fn lock_slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot was freed: to the first waiter of the first queue that has one, else free. The
    /// writes' queue comes before the catalog reads' unless no more of those wait than there
    /// are slots.
    fn hand_on(slots: &mut Slots) {
        let next = slots.first.pop_front().or_else(|| {
            if slots.catalog.len() > slots.concurrency {
                slots
                    .write
                    .pop_front()
                    .or_else(|| slots.catalog.pop_front())
            } else {
                slots
                    .catalog
                    .pop_front()
                    .or_else(|| slots.write.pop_front())
            }
        });
        match next {
            Some(waiter) => {
                waiter.granted.store(true, Ordering::Release);
                waiter.wake.notify_one();
            }
            None => slots.free += 1,
        }
    }

    /// Waits for a free slot, handed out by priority, then first come first served.
    async fn acquire(&self, priority: Priority) -> Slot<'_> {
        let waiter = {
            let mut slots = self.lock_slots();
            if slots.free > 0 {
                slots.free -= 1;
                return Slot { pace: self };
            }
            let waiter = Arc::new(Waiter::default());
            match priority {
                Priority::First => slots.first.push_back(waiter.clone()),
                Priority::Write => slots.write.push_back(waiter.clone()),
                Priority::Catalog => slots.catalog.push_back(waiter.clone()),
            }
            waiter
        };
        let mut waiting = Waiting {
            pace: self,
            waiter,
            done: false,
        };
        // `notify_one` keeps its wake-up for a waiter that is not polled yet: none is lost.
        while !waiting.waiter.granted.load(Ordering::Acquire) {
            waiting.waiter.wake.notified().await;
        }
        waiting.done = true;
        Slot { pace: self }
    }

    /// Waits for a free slot and for the request's turn under the current rate and any pause.
    /// A request whose turn would come after `deadline` gets no slot: it is told how long it
    /// would have been held instead, at once.
    pub async fn slot(&self, priority: Priority, deadline: Instant) -> Result<Slot<'_>, NoSlot> {
        let slot = self.acquire(priority).await;
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
        Ok(slot)
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
        let first = pace.slot(Priority::First, deadline).await.unwrap();
        let second = pace.slot(Priority::First, deadline).await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(2) / 9);
        drop((first, second));
    }

    #[tokio::test]
    async fn a_freed_slot_goes_to_a_first_request_before_any_catalog_read() {
        use futures::FutureExt;
        let pace = Pace::new(1);
        let deadline = Instant::now() + Duration::from_secs(60);
        let held = pace.slot(Priority::First, deadline).await.unwrap();
        let mut catalogs: Vec<_> = (0..3)
            .map(|_| Box::pin(pace.slot(Priority::Catalog, deadline)))
            .collect();
        for catalog in &mut catalogs {
            assert!(catalog.as_mut().now_or_never().is_none());
        }
        let mut write = Box::pin(pace.slot(Priority::Write, deadline));
        assert!(write.as_mut().now_or_never().is_none());
        drop(held);
        // The write came last, but is served first while more catalog reads wait than there
        // are slots.
        let write = write.await.unwrap();
        for catalog in &mut catalogs {
            assert!(catalog.as_mut().now_or_never().is_none());
        }
        // A waiter cancelled after a slot was handed to it gives the slot on.
        drop(write);
        drop(catalogs.remove(0));
        let second = catalogs.remove(0).await.unwrap();
        drop(second);
        let third = catalogs.remove(0).await.unwrap();
        drop(third);
        assert_eq!(pace.lock_slots().free, 1, "every slot came back");
    }

    #[tokio::test]
    async fn near_the_end_catalog_reads_go_before_writes_but_never_before_first_requests() {
        use futures::FutureExt;
        let pace = Pace::new(2);
        let deadline = Instant::now() + Duration::from_secs(60);
        let held = [
            pace.slot(Priority::First, deadline).await.unwrap(),
            pace.slot(Priority::First, deadline).await.unwrap(),
        ];
        let mut write = Box::pin(pace.slot(Priority::Write, deadline));
        let mut catalogs: Vec<_> = (0..2)
            .map(|_| Box::pin(pace.slot(Priority::Catalog, deadline)))
            .collect();
        let mut lookup = Box::pin(pace.slot(Priority::First, deadline));
        // Polled once each, in this order, to queue them.
        assert!(write.as_mut().now_or_never().is_none());
        for catalog in &mut catalogs {
            assert!(catalog.as_mut().now_or_never().is_none());
        }
        assert!(lookup.as_mut().now_or_never().is_none());
        let [one, two] = held;
        drop(one);
        // The lookup came last and goes first; then, two catalog reads waiting for two
        // slots, they go before the write.
        let lookup = lookup.await.unwrap();
        drop(two);
        let first_read = catalogs.remove(0).await.unwrap();
        assert!(write.as_mut().now_or_never().is_none());
        drop(lookup);
        let second_read = catalogs.remove(0).await.unwrap();
        drop((first_read, second_read));
        drop(write.await.unwrap());
        assert_eq!(pace.lock_slots().free, 2, "every slot came back");
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
        match pace.slot(Priority::First, deadline).await {
            Err(NoSlot::Held(wait)) => assert!(wait > Duration::from_secs(3000), "{wait:?}"),
            other => panic!("{:?}", other.map(|_| ())),
        }
    }
}
