//! One simulated host's recent frames, sealed as sent, so that it can answer a dashboard's
//! backfill request as a real agent does (PROTOCOL.md section 8): the frames asked for,
//! preceded by the latest host info and series table before them and every frame from the
//! last samples key frame before the range.
//!
//! Not here: sealing the Replay frames that carry them (`host`).

use bytes::Bytes;
use meshmon_proto::Kind;
use std::collections::VecDeque;

/// Memory cap of one host's ring, in bytes of frames.
pub const RING_MAX_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
struct Entry {
    seq: u64,
    ts_ms: u64,
    kind: Kind,
    key: bool,
    bytes: Bytes,
}

/// Frames of one host, oldest first.
#[derive(Debug)]
pub(crate) struct Ring {
    entries: VecDeque<Entry>,
    bytes: usize,
    window_ms: u64,
}

impl Ring {
    /// Keeps frames for `window_ms` (and at most [`RING_MAX_BYTES`]).
    pub(crate) fn new(window_ms: u64) -> Ring {
        Ring {
            entries: VecDeque::new(),
            bytes: 0,
            window_ms,
        }
    }

    /// Remembers a frame; `key` marks a samples key frame. Forgets what fell out of the window.
    pub(crate) fn push(&mut self, seq: u64, ts_ms: u64, kind: Kind, key: bool, bytes: Bytes) {
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
        while self.bytes > RING_MAX_BYTES
            || self
                .entries
                .front()
                .is_some_and(|e| ts_ms.saturating_sub(e.ts_ms) > self.window_ms)
        {
            match self.entries.pop_front() {
                Some(e) => self.bytes -= e.bytes.len(),
                None => break,
            }
        }
    }

    /// Frames held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The frames answering a request for `from..=to`, in sequence order, with what a decoder
    /// needs before them.
    pub(crate) fn answer(&self, from: u64, to: u64) -> Vec<Bytes> {
        let start = self
            .entries
            .iter()
            .filter(|e| e.seq <= from && e.kind == Kind::Samples && e.key)
            .map(|e| e.seq)
            .max()
            .unwrap_or(from)
            .min(from);
        let mut picked: Vec<&Entry> = [Kind::HostInfo, Kind::SeriesTable]
            .into_iter()
            .filter_map(|kind| {
                self.entries
                    .iter()
                    .filter(|e| e.seq < start && e.kind == kind)
                    .max_by_key(|e| e.seq)
            })
            .collect();
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
    fn answers_with_decoder_context_and_forgets_old_frames() {
        let mut r = Ring::new(60_000);
        r.push(1, 0, Kind::HostInfo, false, b(1));
        r.push(2, 0, Kind::SeriesTable, false, b(2));
        r.push(3, 1000, Kind::Samples, true, b(3));
        r.push(4, 2000, Kind::Samples, false, b(4));
        r.push(5, 3000, Kind::Samples, false, b(5));
        r.push(6, 4000, Kind::Samples, false, b(6));
        assert_eq!(r.answer(5, 5), vec![b(1), b(2), b(3), b(4), b(5)]);
        assert_eq!(r.answer(9, 12), vec![b(1), b(2), b(3), b(4), b(5), b(6)]);
        r.push(7, 70_000, Kind::Samples, true, b(7));
        assert_eq!(r.len(), 1, "older than the window");
        assert_eq!(r.answer(7, 7), vec![b(7)]);
    }

    #[test]
    fn a_zero_window_keeps_nothing() {
        let mut r = Ring::new(0);
        r.push(1, 0, Kind::HostInfo, false, b(1));
        assert_eq!(r.len(), 0);
        assert!(r.answer(1, 1).is_empty());
    }
}
