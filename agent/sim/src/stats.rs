//! The fleet's counters: updated by the fleet task, read at any time through
//! [`crate::FleetHandle::stats`] as one [`FleetStats`] snapshot.

use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

/// Shared between the fleet task and its handle (atomics: the task writes, the handle reads).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) originated: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) refused_credit: AtomicU64,
    pub(crate) refused_offline: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) connects: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) connect_failures: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) backfill_requests: AtomicU64,
    pub(crate) replays_sent: AtomicU64,
    pub(crate) replays_dropped: AtomicU64,
    pub(crate) rounds_skipped: AtomicU64,
    pub(crate) boots_deferred: AtomicU64,
    pub(crate) rtt_us: AtomicU64,
    pub(crate) connected: AtomicBool,
}

impl Shared {
    pub(crate) fn snapshot(&self) -> FleetStats {
        let rtt = self.rtt_us.load(Relaxed);
        FleetStats {
            frames_originated: self.originated.load(Relaxed),
            frames_sent: self.sent.load(Relaxed),
            refused_no_credit: self.refused_credit.load(Relaxed),
            refused_offline: self.refused_offline.load(Relaxed),
            frames_in: self.frames_in.load(Relaxed),
            connects: self.connects.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            connect_failures: self.connect_failures.load(Relaxed),
            auth_failures: self.auth_failures.load(Relaxed),
            backfill_requests: self.backfill_requests.load(Relaxed),
            replays_sent: self.replays_sent.load(Relaxed),
            replays_dropped: self.replays_dropped.load(Relaxed),
            rounds_skipped: self.rounds_skipped.load(Relaxed),
            boots_deferred: self.boots_deferred.load(Relaxed),
            rtt: (rtt > 0).then(|| Duration::from_micros(rtt)),
            connected: self.connected.load(Relaxed),
        }
    }
}

/// What a fleet has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetStats {
    /// Live gossip frames the simulated hosts produced (host info, series tables, samples).
    pub frames_originated: u64,
    /// Credit-bearing frames handed to the socket: live frames, host info and series tables
    /// re-sent on a new link, and replays.
    pub frames_sent: u64,
    /// Frames dropped because the node's credit window was used up (the node is slow or
    /// stalled; the fleet drops them where an agent would queue up to a window).
    pub refused_no_credit: u64,
    /// Frames produced while no link was up (they stay in the hosts' rings for backfill).
    pub refused_offline: u64,
    /// Credit-bearing frames received from the node (gossip it floods to us), all links.
    pub frames_in: u64,
    /// Links that completed the hello.
    pub connects: u64,
    /// Links that completed the hello after the first one.
    pub reconnects: u64,
    /// Dial attempts that did not connect.
    pub connect_failures: u64,
    /// Frames from the node that failed authentication (a key mismatch).
    pub auth_failures: u64,
    /// Backfill requests received for our hosts (or others).
    pub backfill_requests: u64,
    /// Replay frames sent in answer.
    pub replays_sent: u64,
    /// Replay frames dropped because too many were waiting for credits.
    pub replays_dropped: u64,
    /// Times the fleet fell more than an interval behind and skipped ahead.
    pub rounds_skipped: u64,
    /// Host turns skipped because the host had not booted yet and the link had no room for
    /// its first frames (a slow node: hosts boot over several rounds).
    pub boots_deferred: u64,
    /// Last measured round-trip time of the link.
    pub rtt: Option<Duration>,
    /// Whether a link is up now.
    pub connected: bool,
}

impl FleetStats {
    /// Frames not sent, for lack of credit or of a link.
    pub fn frames_refused(&self) -> u64 {
        self.refused_no_credit + self.refused_offline
    }
}

impl fmt::Display for FleetStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rtt = self.rtt.map_or("-".to_owned(), |r| {
            format!("{:.2}ms", r.as_secs_f64() * 1e3)
        });
        write!(
            f,
            "link={} originated={} sent={} refused_credit={} refused_offline={} in={} \
             connects={} reconnects={} dial_failures={} auth_failures={} backfill_req={} \
             replays={} replays_dropped={} skipped_rounds={} boots_deferred={} rtt={rtt}",
            if self.connected { "up" } else { "down" },
            self.frames_originated,
            self.frames_sent,
            self.refused_no_credit,
            self.refused_offline,
            self.frames_in,
            self.connects,
            self.reconnects,
            self.connect_failures,
            self.auth_failures,
            self.backfill_requests,
            self.replays_sent,
            self.replays_dropped,
            self.rounds_skipped,
            self.boots_deferred,
        )
    }
}
