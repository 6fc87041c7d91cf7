//! Time as the server tells it, and instants printed the way Airbyte prints them.
//!
//! The plan's lease ([`crate::lease`]) is judged stale by comparing the time written into it
//! with "now". Two runs on two machines would compare two clocks; the server's is the one both
//! can see: every HTTP answer carries a `Date` (RFC 9110 §6.6.1), to the second. The client
//! keeps the last one it read from a tag request ([`ServerClock::observe`]), and "now" is that
//! plus the time elapsed since on the local monotonic clock. Without a `Date`, the local wall
//! clock stands in.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The server's clock, as last read from a `Date` header.
#[derive(Debug, Default)]
pub struct ServerClock {
    /// Seconds since the Unix epoch as the server said, and when the answer was read.
    last: Mutex<Option<(i64, Instant)>>,
}

impl ServerClock {
    /// Takes the time from a `Date` header value (IMF-fixdate); an unreadable one is ignored.
    pub fn observe(&self, date: &[u8]) {
        let Some(secs) = std::str::from_utf8(date)
            .ok()
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_secs()).ok())
        else {
            return;
        };
        if let Ok(mut last) = self.last.lock() {
            *last = Some((secs, Instant::now()));
        }
    }

    /// Seconds since the Unix epoch: the server's clock if it has been read, else this
    /// machine's.
    pub fn now(&self) -> i64 {
        let server = self.last.lock().ok().and_then(|last| *last);
        match server {
            Some((secs, at)) => {
                secs.saturating_add(i64::try_from(at.elapsed().as_secs()).unwrap_or(i64::MAX))
            }
            None => local_now(),
        }
    }
}

/// This machine's wall clock, in seconds since the Unix epoch.
pub fn local_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_secs()).ok())
        .unwrap_or(0)
}

/// An instant as Java's `OffsetDateTime.toString()` prints it in UTC, which is what Airbyte
/// sends: `2026-01-01T00:00Z` (seconds left out when zero), `2023-03-25T01:30:50Z`.
pub fn iso_datetime(epoch_seconds: i64) -> String {
    let days = epoch_seconds.div_euclid(86_400);
    let secs = epoch_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if s == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    }
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 to (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_date_is_the_clock_once_read() {
        let clock = ServerClock::default();
        clock.observe(b"Tue, 01 Dec 2026 14:55:28 GMT");
        let now = clock.now();
        // 2026-12-01T14:55:28Z; the test itself takes well under a minute.
        assert!((1_796_136_928..1_796_136_988).contains(&now), "{now}");
        assert_eq!(iso_datetime(1_796_136_928), "2026-12-01T14:55:28Z");
    }

    #[test]
    fn an_unreadable_date_leaves_the_local_clock() {
        let clock = ServerClock::default();
        clock.observe(b"yesterday");
        clock.observe(&[0xff, 0xfe]);
        assert!((clock.now() - local_now()).abs() <= 1);
    }
}
