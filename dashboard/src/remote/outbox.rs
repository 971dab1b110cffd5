//! What remote write sends next, without I/O: a bounded queue of live samples (the oldest
//! dropped when full, and counted), the hole those drops leave (to be read back from the
//! store), and per series the newest timestamp delivered, so nothing is sent twice or out
//! of order (Prometheus rejects a whole request for one sample older than what it has).
//!
//! Order of work: while there is a hole, nothing newer is sent until the store has caught
//! up to the queue's oldest sample, reading each round as far as the store has flushed; then
//! the queue, oldest first, in batches. Catch-up reaches back at most [`MAX_CATCH_UP_MS`].
//!
//! Not here: HTTP, the store, the wire format (the parent module does the I/O).

use crate::Sample;
use meshmon_proto::SeriesKey;
use std::collections::{HashMap, VecDeque};

/// Samples per request, at most.
pub const MAX_BATCH: usize = 2000;
/// How far back catch-up from the store reaches: 1 hour. Older samples of an outage are not
/// sent (Prometheus' head refuses samples much older than that anyway).
pub const MAX_CATCH_UP_MS: i64 = 60 * 60 * 1000;
/// Catch-up reads the store this far past the queue's oldest sample: samples of several
/// hosts arrive interleaved, so the queue is contiguous per series only from a little later.
/// The overlap is never sent twice (see [`Outbox::fresh`]).
pub const OVERLAP_MS: i64 = 5_000;

/// The next thing to do.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Nothing to send.
    Idle,
    /// A hole is waiting for the store to hold it (flushed); send nothing newer meanwhile.
    Wait,
    /// Read `[from, to]` from the store and send it (through [`Outbox::fresh`]), then ask
    /// again.
    CatchUp {
        /// Oldest timestamp to read, ms.
        from: i64,
        /// Newest timestamp to read, ms.
        to: i64,
    },
    /// Send these live samples.
    Send(Vec<Sample>),
}

/// The queue and what has been delivered.
#[derive(Debug)]
pub struct Outbox {
    queue: VecDeque<Sample>,
    cap: usize,
    /// Oldest timestamp of a sample dropped and not yet read back from the store.
    hole: Option<i64>,
    /// The catch-up under way: the newest timestamp it reads, and whether that reaches the
    /// queue (else the rest of the hole stays).
    catching: Option<(i64, bool)>,
    /// (host, series) -> newest timestamp delivered (or given up on).
    last: HashMap<(String, SeriesKey), i64>,
    /// Samples dropped from the full queue (or never queued), since start.
    pub dropped: u64,
    /// Samples the receiver accepted, since start.
    pub sent: u64,
    /// Samples the receiver refused for good (HTTP 4xx), since start.
    pub rejected: u64,
    /// Milliseconds of outage older than [`MAX_CATCH_UP_MS`] that were not read back.
    pub skipped_ms: u64,
    /// Timestamp of the newest sample delivered.
    pub newest_ms: Option<i64>,
}

impl Outbox {
    /// An empty outbox holding at most `cap` queued samples (at least 1).
    pub fn new(cap: usize) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            cap: cap.max(1),
            hole: None,
            catching: None,
            last: HashMap::new(),
            dropped: 0,
            sent: 0,
            rejected: 0,
            skipped_ms: 0,
            newest_ms: None,
        }
    }

    /// Samples waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues live samples; past the bound the oldest go (counted, and read back later).
    pub fn offer(&mut self, samples: Vec<Sample>) {
        self.queue.extend(samples);
        while self.queue.len() > self.cap {
            if let Some(s) = self.queue.pop_front() {
                self.dropped += 1;
                self.lost(s.ts_ms, 0);
            }
        }
    }

    /// `n` live samples from `from_ms` on never reached the queue: read them back later.
    pub fn lost(&mut self, from_ms: i64, n: u64) {
        self.dropped += n;
        self.hole = Some(self.hole.map_or(from_ms, |h| h.min(from_ms)));
    }

    /// What to do next at `now_ms`, when the store surely holds everything up to `safe_ms`.
    pub fn next(&mut self, now_ms: i64, safe_ms: i64) -> Next {
        if let Some(from) = self.hole {
            let Some(front) = self.queue.front() else {
                // Nothing queued after the hole yet: its end is not known.
                return Next::Wait;
            };
            // The queue holds everything from its oldest sample on (plus the overlap); read
            // the store up to there, or as far as it is flushed: the rest of the hole stays
            // for the next round. A queue too small to span the store's flush interval thus
            // makes remote write follow the store, a flush interval behind, instead of
            // waiting for ever.
            let whole = front.ts_ms.saturating_add(OVERLAP_MS);
            let to = whole.min(safe_ms);
            if to < from {
                return Next::Wait;
            }
            let floor = now_ms.saturating_sub(MAX_CATCH_UP_MS);
            if from < floor {
                self.skipped_ms += u64::try_from(floor - from).unwrap_or(0);
            }
            self.hole = None;
            self.catching = Some((to, to >= whole));
            return Next::CatchUp {
                from: from.max(floor),
                to,
            };
        }
        while !self.queue.is_empty() {
            let n = self.queue.len().min(MAX_BATCH);
            let taken: Vec<Sample> = self.queue.drain(..n).collect();
            let batch = self.fresh(taken);
            if !batch.is_empty() {
                return Next::Send(batch);
            }
        }
        Next::Idle
    }

    /// The catch-up [`Next::CatchUp`] asked for was sent: queued samples it covered go, and
    /// what it could not reach yet (the store had not flushed it) stays a hole.
    pub fn caught_up(&mut self) {
        let Some((to, whole)) = self.catching.take() else {
            return;
        };
        self.queue.retain(|s| s.ts_ms > to);
        if !whole {
            let rest = to.saturating_add(1);
            self.hole = Some(self.hole.map_or(rest, |h| h.min(rest)));
        }
    }

    /// Keeps the samples newer than what was delivered of their series, oldest first.
    pub fn fresh(&self, mut samples: Vec<Sample>) -> Vec<Sample> {
        samples.retain(|s| {
            self.last
                .get(&(s.host.clone(), s.series.clone()))
                .is_none_or(|last| s.ts_ms > *last)
        });
        samples.sort_by_key(|s| s.ts_ms);
        samples
    }

    /// The receiver took `batch`.
    pub fn delivered(&mut self, batch: &[Sample]) {
        self.sent += batch.len() as u64;
        self.advance(batch);
    }

    /// The receiver refused `batch` for good; it is not sent again.
    pub fn refused(&mut self, batch: &[Sample]) {
        self.rejected += batch.len() as u64;
        self.advance(batch);
    }

    fn advance(&mut self, batch: &[Sample]) {
        for s in batch {
            let last = self
                .last
                .entry((s.host.clone(), s.series.clone()))
                .or_insert(s.ts_ms);
            *last = (*last).max(s.ts_ms);
            self.newest_ms = Some(self.newest_ms.map_or(s.ts_ms, |n| n.max(s.ts_ms)));
        }
    }

    /// Forgets series not delivered since `before_ms` (hosts gone, series renamed), so the
    /// map does not grow forever.
    pub fn forget_before(&mut self, before_ms: i64) {
        self.last.retain(|_, ts| *ts >= before_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::metrics::Metric;

    fn s(host: &str, ts_ms: i64) -> Sample {
        Sample {
            host: host.into(),
            series: SeriesKey::new(Metric::CpuUsagePct),
            ts_ms,
            value: ts_ms as f64,
        }
    }

    fn ts(v: &[Sample]) -> Vec<i64> {
        v.iter().map(|s| s.ts_ms).collect()
    }

    #[test]
    fn live_samples_go_in_order_and_never_twice() {
        let mut o = Outbox::new(100);
        o.offer(vec![s("a", 2000), s("a", 1000), s("b", 1500)]);
        let Next::Send(batch) = o.next(3000, 0) else {
            panic!("a batch")
        };
        assert_eq!(ts(&batch), [1000, 1500, 2000]);
        o.delivered(&batch);
        assert_eq!(o.next(3000, 0), Next::Idle);
        // The same and older samples again (a replay) go nowhere.
        o.offer(vec![s("a", 2000), s("a", 500), s("a", 3000)]);
        let Next::Send(batch) = o.next(4000, 0) else {
            panic!("a batch")
        };
        assert_eq!(ts(&batch), [3000]);
        o.delivered(&batch);
        assert_eq!((o.sent, o.dropped, o.newest_ms), (4, 0, Some(3000)));
    }

    #[test]
    fn batches_are_bounded() {
        let mut o = Outbox::new(10 * MAX_BATCH);
        o.offer((0..MAX_BATCH as i64 + 5).map(|t| s("a", t)).collect());
        let Next::Send(first) = o.next(0, 0) else {
            panic!("a batch")
        };
        assert_eq!(first.len(), MAX_BATCH);
        o.delivered(&first);
        let Next::Send(rest) = o.next(0, 0) else {
            panic!("a batch")
        };
        assert_eq!(rest.len(), 5);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_catches_up_from_the_store_first() {
        let mut o = Outbox::new(3);
        o.offer(vec![s("a", 1000)]);
        let Next::Send(b) = o.next(1000, 0) else {
            panic!("a batch")
        };
        o.delivered(&b);
        // Receiver down: 6 more arrive, 3 fit.
        o.offer((2..8).map(|i| s("a", i * 1000)).collect());
        assert_eq!(o.dropped, 3);
        assert_eq!(o.queued(), 3);
        // The hole (2000..) ends at the queue's oldest (5000) + overlap; the store holds
        // only up to 3000 yet: that part now, the rest stays a hole.
        assert_eq!(
            o.next(8000, 1_000),
            Next::Wait,
            "nothing of the hole flushed"
        );
        assert_eq!(
            o.next(8000, 3_000),
            Next::CatchUp {
                from: 2000,
                to: 3000
            }
        );
        let read = o.fresh((2..4).map(|i| s("a", i * 1000)).collect());
        o.delivered(&read);
        o.caught_up();
        assert_eq!(o.queued(), 3, "the queue is newer than the part read");
        assert_eq!(
            o.next(20_000, 10_000),
            Next::CatchUp {
                from: 3001,
                to: 5000 + OVERLAP_MS
            }
        );
        // The store answers 3001..=10000 (it holds the queued ones too): all fresh.
        let read = o.fresh((4..8).map(|i| s("a", i * 1000)).collect());
        assert_eq!(read.len(), 4);
        o.delivered(&read);
        o.caught_up();
        // The queue's copies are not sent again.
        assert_eq!(o.next(20_000, 10_000), Next::Idle);
        assert_eq!(o.sent, 7);
    }

    #[test]
    fn catch_up_reaches_back_an_hour_at_most() {
        let mut o = Outbox::new(1);
        o.offer(vec![s("a", 0), s("a", 2 * MAX_CATCH_UP_MS)]);
        let now = 2 * MAX_CATCH_UP_MS + 60_000;
        assert_eq!(
            o.next(now, now),
            Next::CatchUp {
                from: now - MAX_CATCH_UP_MS,
                to: 2 * MAX_CATCH_UP_MS + OVERLAP_MS
            }
        );
        assert_eq!(
            o.skipped_ms,
            u64::try_from(MAX_CATCH_UP_MS + 60_000).unwrap_or(0)
        );
    }

    #[test]
    fn a_queue_shorter_than_the_flush_interval_follows_the_store() {
        // Every round the queue drops again; remote write still advances with the store.
        let mut o = Outbox::new(2);
        let mut sent = Vec::new();
        for round in 0..40i64 {
            let now = 100_000 + round * 1000;
            o.offer((0..4).map(|i| s("a", now - 3000 + i * 1000)).collect());
            let safe = now - 32_000;
            match o.next(now, safe) {
                Next::CatchUp { from, to } => {
                    assert!(to <= safe, "only what the store holds");
                    sent.push((from, to));
                    o.caught_up();
                }
                Next::Wait => assert!(sent.is_empty(), "round {round}: stuck"),
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert!(sent.len() >= 8, "{sent:?}");
        for w in sent.windows(2) {
            assert_eq!(w[1].0, w[0].1 + 1, "contiguous rounds: {sent:?}");
        }
    }

    #[test]
    fn samples_lost_before_the_queue_leave_a_hole_too() {
        let mut o = Outbox::new(10);
        o.lost(5000, 4);
        assert_eq!(o.dropped, 4);
        assert_eq!(o.next(6000, 100_000), Next::Wait, "end of the hole unknown");
        o.offer(vec![s("a", 9000)]);
        assert_eq!(
            o.next(10_000, 100_000),
            Next::CatchUp {
                from: 5000,
                to: 9000 + OVERLAP_MS
            }
        );
    }

    #[test]
    fn refused_samples_are_not_retried_and_old_series_are_forgotten() {
        let mut o = Outbox::new(10);
        o.offer(vec![s("a", 1000), s("b", 5000)]);
        let Next::Send(b) = o.next(0, 0) else {
            panic!("a batch")
        };
        o.refused(&b);
        assert_eq!(o.rejected, 2);
        assert!(o.fresh(vec![s("a", 1000)]).is_empty());
        o.forget_before(2000);
        assert_eq!(o.fresh(vec![s("a", 1000)]).len(), 1);
        assert!(o.fresh(vec![s("b", 5000)]).is_empty());
    }
}
