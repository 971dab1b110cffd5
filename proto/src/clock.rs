//! The one clock of meshmon: wall-clock milliseconds since the epoch, read from the system or,
//! in tests and benchmarks, from a manual clock moved by hand. Every part that needs "now"
//! reads it here (or is handed a [`Clock`]), so there is one definition of time.
//!
//! Not here: durations' syntax ([`crate::units`]) or calendar formatting (the dashboard).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from: the system clock, or a manual clock that tests and benchmarks move
/// by hand.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Wall-clock time.
    #[default]
    System,
    /// A shared value in ms since the epoch, moved with [`Clock::set`] / [`Clock::advance`].
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock reading `ms`.
    pub fn manual(ms: i64) -> Clock {
        Clock::Manual(Arc::new(AtomicI64::new(ms)))
    }

    /// Now, in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => now_ms(),
            Clock::Manual(v) => v.load(Ordering::Relaxed),
        }
    }

    /// Sets a manual clock (no effect on the system clock).
    pub fn set(&self, ms: i64) {
        if let Clock::Manual(v) = self {
            v.store(ms, Ordering::Relaxed);
        }
    }

    /// Moves a manual clock forward by `ms`.
    pub fn advance(&self, ms: i64) {
        if let Clock::Manual(v) = self {
            v.fetch_add(ms, Ordering::Relaxed);
        }
    }
}

/// Wall-clock now in ms since the epoch (0 before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// [`now_ms`] unsigned, as frames carry it.
pub fn wall_ms() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_by_hand() {
        let c = Clock::manual(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(500);
        assert_eq!(c.now_ms(), 1_500);
        c.set(7);
        assert_eq!(c.now_ms(), 7);
        assert!(Clock::System.now_ms() > 1_600_000_000_000);
        assert!(wall_ms() > 1_600_000_000_000);
    }
}
