//! The names of a plan's lease tags, and who holds it as read back from them.
//!
//! The gate is `lease:<hash>`, the lease `lease:<hash>:<taken>:<renewed>`: the hash of the
//! plan's owner in 8 base-36 digits, the times in seconds since the epoch in base 36. Both fit
//! Airbyte's 30 characters until 2100. The colour is the holding run's id.

use crate::clock::iso_datetime;
use crate::wire::Tag;
use std::time::Duration;
use uuid::Uuid;

/// What every lease tag's name starts with.
pub(super) const PREFIX: &str = "lease:";

/// The short hash of an owner that names its lease: 64-bit FNV-1a, as 8 base-36 digits.
pub fn hash(owner: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in owner.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut digits = base36(h);
    digits.truncate(8);
    format!("{digits:0>8}")
}

fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[usize::try_from(n % 36).unwrap_or(0)]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn time36(secs: i64) -> String {
    base36(u64::try_from(secs).unwrap_or(0))
}

fn parse36(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > 12 {
        return None;
    }
    let n = u64::from_str_radix(text, 36).ok()?;
    i64::try_from(n).ok()
}

/// The gate's name for an owner hash.
pub(super) fn gate_name(hash: &str) -> String {
    format!("{PREFIX}{hash}")
}

/// The lease's name.
pub(super) fn lease_name(hash: &str, taken: i64, renewed: i64) -> String {
    format!("{PREFIX}{hash}:{}:{}", time36(taken), time36(renewed))
}

/// A tag of a plan's lease, as found in the workspace's tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub tag_id: Uuid,
    /// The holding run's id (the tag's colour).
    pub run: String,
    /// When it was taken and last renewed; `None` for a gate (a run taking it right now).
    pub times: Option<(i64, i64)>,
}

impl Holder {
    fn from_tag(tag: &Tag, hash: &str) -> Option<Holder> {
        let rest = tag.name.strip_prefix(PREFIX)?.strip_prefix(hash)?;
        let times = if rest.is_empty() {
            None
        } else {
            let (taken, renewed) = rest.strip_prefix(':')?.split_once(':')?;
            Some((parse36(taken)?, parse36(renewed)?))
        };
        Some(Holder {
            tag_id: tag.tag_id,
            run: tag.color.to_ascii_lowercase(),
            times,
        })
    }

    /// Whether it is stale at `now` (server seconds); a gate's age cannot be told from it.
    pub(super) fn is_stale(&self, now: i64, stale_after: Duration) -> bool {
        self.times.is_some_and(|(_, renewed)| {
            now.saturating_sub(renewed) > i64::try_from(stale_after.as_secs()).unwrap_or(i64::MAX)
        })
    }

    /// "run 3fa2c1, which took it at 2026-12-01T14:03:22Z and last renewed it 4 s ago".
    pub fn describe(&self, now: i64) -> String {
        match self.times {
            Some((taken, renewed)) if renewed == taken => format!(
                "run {}, which took it at {} ({} s ago)",
                self.run,
                iso_datetime(taken),
                now.saturating_sub(taken).max(0)
            ),
            Some((taken, renewed)) => format!(
                "run {}, which took it at {} and last renewed it {} s ago",
                self.run,
                iso_datetime(taken),
                now.saturating_sub(renewed).max(0)
            ),
            None => format!("run {}, which is taking it right now", self.run),
        }
    }
}

/// The lease tags of `owner` among a workspace's tags.
pub fn holders(tags: &[Tag], workspace: Uuid, owner: &str) -> Vec<Holder> {
    let hash = hash(owner);
    tags.iter()
        .filter(|t| t.workspace_id == workspace)
        .filter_map(|t| Holder::from_tag(t, &hash))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: u128, name: &str, color: &str) -> Tag {
        Tag {
            tag_id: Uuid::from_u128(id),
            workspace_id: Uuid::from_u128(9),
            name: name.into(),
            color: color.into(),
        }
    }

    #[test]
    fn names_fit_airbytes_thirty_characters_until_2100() {
        let h = hash("replicate:a-very-long-owner-name-xx");
        assert_eq!(h.len(), 8);
        assert_eq!(h, hash("replicate:a-very-long-owner-name-xx"), "stable");
        assert_ne!(h, hash("replicate:shops"));
        let year_2100 = 4_102_444_800;
        let name = lease_name(&h, year_2100, year_2100);
        assert!(name.len() <= 30, "{name}");
        assert!(gate_name(&h).len() <= 30);
    }

    #[test]
    fn holders_are_read_back_from_names_and_colours() {
        let owner = "replicate:shops";
        let h = hash(owner);
        let tags = [
            tag(1, &gate_name(&h), "AB12CD"),
            tag(2, &lease_name(&h, 1_796_136_928, 1_796_136_990), "00ff00"),
            tag(3, &gate_name(&hash("replicate:other")), "111111"),
            tag(4, "replicate:shops", "4F46E5"),
            tag(5, &format!("{}:zz", gate_name(&h)), "222222"),
        ];
        let found = holders(&tags, Uuid::from_u128(9), owner);
        assert_eq!(
            found,
            vec![
                Holder {
                    tag_id: Uuid::from_u128(1),
                    run: "ab12cd".into(),
                    times: None
                },
                Holder {
                    tag_id: Uuid::from_u128(2),
                    run: "00ff00".into(),
                    times: Some((1_796_136_928, 1_796_136_990))
                },
            ]
        );
        assert!(holders(&tags, Uuid::from_u128(8), owner).is_empty());
        assert_eq!(
            found[1].describe(1_796_136_994),
            "run 00ff00, which took it at 2026-12-01T14:55:28Z and last renewed it 4 s ago"
        );
        let fresh = Holder {
            times: Some((1_796_136_928, 1_796_136_928)),
            ..found[1].clone()
        };
        assert_eq!(
            fresh.describe(1_796_136_930),
            "run 00ff00, which took it at 2026-12-01T14:55:28Z (2 s ago)"
        );
    }
}
