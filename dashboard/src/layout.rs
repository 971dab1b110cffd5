//! Where data lives: window and block sizes, row ids, and the default retentions.
//!
//! Every blob row (raw chunk or rollup block) has the integer primary key
//! `block_index << 24 | series_id`, where `block_index` is the row's start time divided by its
//! block length. Rows are therefore ordered by time first: new rows append at the end of the
//! b-tree (pages fill up instead of splitting), pruning deletes a prefix, and one series' rows
//! are point look-ups, one per block. Series ids are below 2^24.
//! Not responsible for the blobs' contents ([`crate::codec`]).

use std::time::Duration;

/// Raw samples are grouped per series into chunks of this many ms, aligned to the epoch.
pub const RAW_WINDOW_MS: i64 = 10 * 60_000;
/// Bits of a row id that hold the series id.
pub const SERIES_BITS: u32 = 24;
/// The largest series id a store can hold.
pub const MAX_SERIES_ID: i64 = (1 << SERIES_BITS) - 1;

/// Default raw retention (`store.retention`).
pub const DEFAULT_RETENTION_RAW: Duration = Duration::from_secs(7 * 86_400);
/// Default retention of one-minute rollups.
pub const DEFAULT_RETENTION_1M: Duration = Duration::from_secs(90 * 86_400);
/// Default retention of one-hour rollups.
pub const DEFAULT_RETENTION_1H: Duration = Duration::from_secs(730 * 86_400);
/// Default interval between flushes of open chunks (how stale readers can be, and what a
/// crash can lose before mesh backfill re-delivers it).
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(30);

/// Samples may arrive this late (mesh backfill); hours are rolled up only after it.
pub const LATE_TOLERANCE_MS: i64 = 15 * 60_000;
/// An hour is rolled up once its end is this far in the past.
pub const ROLLUP_DELAY_MS: i64 = LATE_TOLERANCE_MS + 5 * 60_000;
/// An open chunk nobody appends to is sealed this long after its window ends.
pub const SEAL_GRACE_MS: i64 = 60_000;
/// Samples stamped further than this in the future are refused (a host with a wrong clock).
pub const MAX_FUTURE_MS: i64 = 10 * 60_000;

/// A rollup resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Res {
    /// One-minute buckets, 360 per row (six hours).
    M1,
    /// One-hour buckets, 168 per row (seven days).
    H1,
}

impl Res {
    /// Bucket length in ms.
    pub const fn bucket_ms(self) -> i64 {
        match self {
            Res::M1 => 60_000,
            Res::H1 => 3_600_000,
        }
    }

    /// Buckets per row.
    pub const fn slots(self) -> usize {
        match self {
            Res::M1 => 360,
            Res::H1 => 168,
        }
    }

    /// Time covered by one row, in ms.
    pub const fn block_ms(self) -> i64 {
        self.bucket_ms() * self.slots() as i64
    }

    /// The table holding this resolution.
    pub const fn table(self) -> &'static str {
        match self {
            Res::M1 => "rollup_1m",
            Res::H1 => "rollup_1h",
        }
    }
}

/// The row id of `series_id`'s row for the block with index `block`.
pub const fn row_id(block: i64, series_id: i64) -> i64 {
    (block << SERIES_BITS) | series_id
}

/// The (block index, series id) of a row id.
pub const fn split_id(id: i64) -> (i64, i64) {
    (id >> SERIES_BITS, id & MAX_SERIES_ID)
}

/// Index of the raw window holding `ts`.
pub const fn window_of(ts: i64) -> i64 {
    ts.div_euclid(RAW_WINDOW_MS)
}

/// `ts` rounded down to a multiple of `unit`.
pub const fn floor_to(ts: i64, unit: i64) -> i64 {
    ts.saturating_sub(ts.rem_euclid(unit))
}

/// A `Duration` as ms, saturating.
pub fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_order_by_time_then_series() {
        let a = row_id(window_of(1_700_000_000_000), 5);
        let b = row_id(window_of(1_700_000_000_000), 6);
        let c = row_id(window_of(1_700_000_000_000 + RAW_WINDOW_MS), 1);
        assert!(a < b && b < c);
        assert_eq!(split_id(b), (window_of(1_700_000_000_000), 6));
        assert_eq!(split_id(row_id(3, MAX_SERIES_ID)), (3, MAX_SERIES_ID));
    }

    #[test]
    fn blocks_hold_whole_raw_windows_and_hours() {
        assert_eq!(Res::M1.block_ms() % 3_600_000, 0);
        assert_eq!(Res::H1.block_ms() % 3_600_000, 0);
        assert_eq!(3_600_000 % RAW_WINDOW_MS, 0);
    }
}
