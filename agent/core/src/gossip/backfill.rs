//! Gap-free history, the sans-io parts: the origin's ring of its own recent frames
//! ([`OwnRing`], which answers backfill requests) and a dashboard's per-origin gap tracker
//! ([`GapTracker`], which decides what to ask for and when).
//!
//! Not here: routing requests and replays through the mesh (gossip does that), or storing
//! what arrives (the store).

use bytes::Bytes;
use meshmon_proto::Kind;
use std::collections::VecDeque;

/// How long an origin keeps its own frames for backfill.
pub use meshmon_proto::gaps::RING_WINDOW_MS;
/// Memory cap of the ring, in bytes of frames.
pub const RING_MAX_BYTES: usize = 8 * 1024 * 1024;
pub use meshmon_proto::gaps::{
    GAP_GRACE_MS, GapTracker, MAX_GAPS, MAX_RANGE, MAX_TRIES, RETRY_MS, TAIL, Wanted,
};

/// Replay payloads are cut at about this many bytes of frames.
pub const REPLAY_CHUNK: usize = 48 * 1024;

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    ts_ms: u64,
    kind: Kind,
    key: bool,
    bytes: Bytes,
}

/// An origin's own recent gossip frames, sealed as sent.
#[derive(Debug, Default)]
pub struct OwnRing {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl OwnRing {
    /// Remembers a frame this node originated. `key` marks key-frame samples.
    pub fn push(&mut self, seq: u64, ts_ms: u64, kind: Kind, key: bool, bytes: Bytes) {
        self.bytes += bytes.len();
        self.entries.push_back(Entry {
            seq,
            ts_ms,
            kind,
            key,
            bytes,
        });
        while self.bytes > RING_MAX_BYTES {
            self.pop();
        }
    }

    fn pop(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.bytes.len();
        }
    }

    /// Forgets frames older than the window.
    pub fn prune(&mut self, now_ms: u64) {
        while self
            .entries
            .front()
            .is_some_and(|e| now_ms.saturating_sub(e.ts_ms) > RING_WINDOW_MS)
        {
            self.pop();
        }
    }

    /// Bytes held.
    pub fn memory(&self) -> usize {
        self.bytes + self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The frames answering a request for `from..=to`, in sequence order, preceded by what a
    /// decoder needs: the latest host info and series table before them and every frame from
    /// the last samples key frame before `from`.
    pub fn answer(&self, from: u64, to: u64) -> Vec<Bytes> {
        let key_start = self
            .entries
            .iter()
            .filter(|e| e.seq <= from && e.kind == Kind::Samples && e.key)
            .map(|e| e.seq)
            .max()
            .unwrap_or(from);
        let start = key_start.min(from);
        let mut picked: Vec<&Entry> = Vec::new();
        for kind in [Kind::HostInfo, Kind::SeriesTable] {
            if let Some(e) = self
                .entries
                .iter()
                .filter(|e| e.seq < start && e.kind == kind)
                .max_by_key(|e| e.seq)
            {
                picked.push(e);
            }
        }
        picked.extend(
            self.entries
                .iter()
                .filter(|e| e.seq >= start && e.seq <= to),
        );
        picked.sort_by_key(|e| e.seq);
        picked.dedup_by_key(|e| e.seq);
        picked.into_iter().map(|e| e.bytes.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(n: u8) -> Bytes {
        Bytes::from(vec![n; 10])
    }

    #[test]
    fn ring_answers_with_decoder_context_and_forgets_old_frames() {
        let mut r = OwnRing::default();
        r.push(1, 0, Kind::HostInfo, false, b(1));
        r.push(2, 0, Kind::SeriesTable, false, b(2));
        r.push(3, 1000, Kind::Samples, true, b(3));
        r.push(4, 2000, Kind::Samples, false, b(4));
        r.push(5, 3000, Kind::Samples, false, b(5));
        r.push(6, 4000, Kind::Samples, false, b(6));
        assert_eq!(
            r.answer(5, 5),
            vec![b(1), b(2), b(3), b(4), b(5)],
            "context from the key frame"
        );
        r.prune(RING_WINDOW_MS + 1500);
        assert_eq!(r.len(), 3, "frames older than the window are gone");
    }
}
