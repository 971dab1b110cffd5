//! An origin's ring of its own recent frames, sealed as sent, which answers backfill
//! requests (PROTOCOL.md section 8): the frames asked for, preceded by what a decoder needs
//! (the latest host info and series table before them, and every frame from the last samples
//! key frame before the range). Used by every agent's gossip and by the fleet simulator's
//! hosts.
//!
//! Not here: routing requests and replays (the agent's gossip), sealing (`seal`).

use crate::Kind;
use bytes::Bytes;
use std::collections::VecDeque;

/// How long an agent keeps its own frames for backfill.
pub use crate::gaps::RING_WINDOW_MS;
/// Memory cap of an agent's ring, in bytes of frames.
pub const RING_MAX_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    ts_ms: u64,
    kind: Kind,
    key: bool,
    bytes: Bytes,
}

/// An origin's own recent gossip frames, sealed as sent.
#[derive(Debug)]
pub struct OwnRing {
    entries: VecDeque<Entry>,
    bytes: usize,
    window_ms: u64,
    max_bytes: usize,
}

impl Default for OwnRing {
    /// An agent's ring: [`RING_WINDOW_MS`], [`RING_MAX_BYTES`].
    fn default() -> Self {
        OwnRing::new(RING_WINDOW_MS, RING_MAX_BYTES)
    }
}

impl OwnRing {
    /// Keeps frames for `window_ms` and at most `max_bytes` of them; a zero window keeps
    /// nothing.
    pub fn new(window_ms: u64, max_bytes: usize) -> OwnRing {
        OwnRing {
            entries: VecDeque::new(),
            bytes: 0,
            window_ms,
            max_bytes,
        }
    }

    /// Remembers a frame this node originated. `key` marks key-frame samples.
    pub fn push(&mut self, seq: u64, ts_ms: u64, kind: Kind, key: bool, bytes: Bytes) {
        if self.window_ms == 0 {
            return;
        }
        self.bytes += bytes.len();
        self.entries.push_back(Entry {
            seq,
            ts_ms,
            kind,
            key,
            bytes,
        });
        while self.bytes > self.max_bytes {
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
            .is_some_and(|e| now_ms.saturating_sub(e.ts_ms) > self.window_ms)
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

    /// The newest `max` frames from `from` on, in sequence order, leaving out the kinds in
    /// `skip`.
    pub fn since(&self, from: u64, max: usize, skip: &[Kind]) -> Vec<Bytes> {
        let picked: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.seq >= from && !skip.contains(&e.kind))
            .collect();
        let start = picked.len().saturating_sub(max);
        picked[start..].iter().map(|e| e.bytes.clone()).collect()
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

    #[test]
    fn since_gives_the_newest_frames_of_the_kinds_asked() {
        let mut r = OwnRing::default();
        r.push(1, 0, Kind::HostInfo, false, b(1));
        r.push(2, 0, Kind::SeriesTable, false, b(2));
        for seq in 3..=8 {
            r.push(seq, seq * 1000, Kind::Samples, seq == 3, b(seq as u8));
        }
        let skip = [Kind::HostInfo, Kind::SeriesTable];
        assert_eq!(
            r.since(1, 10, &skip),
            vec![b(3), b(4), b(5), b(6), b(7), b(8)]
        );
        assert_eq!(r.since(1, 2, &skip), vec![b(7), b(8)], "the newest");
        assert_eq!(r.since(6, 10, &[]), vec![b(6), b(7), b(8)]);
    }

    #[test]
    fn a_zero_window_keeps_nothing_and_the_byte_cap_holds() {
        let mut r = OwnRing::new(0, 1024);
        r.push(1, 0, Kind::HostInfo, false, b(1));
        assert!(r.is_empty());
        assert!(r.answer(1, 1).is_empty());
        let mut r = OwnRing::new(60_000, 25);
        for seq in 1..=5 {
            r.push(seq, 0, Kind::Samples, seq == 1, b(seq as u8));
        }
        assert_eq!(r.len(), 2, "10-byte frames under a 25-byte cap");
        assert_eq!(r.answer(4, 5), vec![b(4), b(5)]);
    }
}
