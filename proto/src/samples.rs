//! Compact sample streams: an origin sends its series names once ([`SeriesTable`]), then per
//! interval only the values that changed ([`Samples`] deltas), with a key frame of every value
//! every [`KEY_EVERY`] sample frames and the table again every [`TABLE_EVERY`] frames or when
//! the set of series changes.
//!
//! [`SampleEncoder`] runs at the origin, [`SampleDecoder`] at each receiver (one per origin
//! boot). A receiver that missed a delta still gets the values that frame lists, never stale
//! ones for the others, and is whole again at the next key frame.

use crate::metrics::SeriesKey;
use crate::num::Num;
use crate::payload::{Payload, Samples, SeriesTable};
use std::collections::HashMap;

/// A key frame every this many sample frames.
pub const KEY_EVERY: u64 = 10;
/// The series table is re-sent every this many sample frames.
pub const TABLE_EVERY: u64 = 30;

/// Origin side: turns each interval's values into payloads.
#[derive(Debug, Default)]
pub struct SampleEncoder {
    table: u32,
    series: Vec<SeriesKey>,
    last: Vec<Option<f64>>,
    n: u64,
    since_table: u64,
}

impl SampleEncoder {
    /// A new encoder; its first call sends a table and a key frame.
    pub fn new() -> SampleEncoder {
        SampleEncoder::default()
    }

    /// Encodes one interval's values (series order does not matter; a series absent now but
    /// present before is sent as missing in the next key frame). Returns the payloads to send
    /// in order: possibly a [`SeriesTable`], then one [`Samples`].
    pub fn encode(&mut self, values: &[(SeriesKey, f64)]) -> Vec<Payload> {
        let mut out = Vec::with_capacity(2);
        let mut sorted: Vec<&(SeriesKey, f64)> = values.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|a, b| a.0 == b.0);
        let same_set = sorted.len() == self.series.len()
            && sorted.iter().zip(&self.series).all(|(v, k)| &v.0 == k);
        let mut key = false;
        if !same_set || self.n == 0 {
            self.table = self.table.wrapping_add(1);
            self.series = sorted.iter().map(|(k, _)| k.clone()).collect();
            self.last = vec![None; self.series.len()];
            self.since_table = TABLE_EVERY; // force the table out now
            key = true;
        }
        if self.since_table >= TABLE_EVERY {
            out.push(Payload::SeriesTable(SeriesTable {
                table: self.table,
                series: self
                    .series
                    .iter()
                    .map(|k| (k.name.clone(), k.labels.clone()))
                    .collect(),
            }));
            self.since_table = 0;
        }
        self.n += 1;
        self.since_table += 1;
        if self.n % KEY_EVERY == 1 {
            key = true;
        }
        let now: Vec<f64> = sorted.iter().map(|(_, v)| *v).collect();
        let samples = if key {
            Samples {
                t: self.table,
                n: self.n,
                k: true,
                v: now.iter().map(|v| Some(Num(*v))).collect(),
                c: Vec::new(),
            }
        } else {
            let mut c = Vec::new();
            for (i, v) in now.iter().enumerate() {
                let unchanged = self.last[i].is_some_and(|old| old.to_bits() == v.to_bits());
                if !unchanged {
                    c.push(Num(i as f64));
                    c.push(Num(*v));
                }
            }
            Samples {
                t: self.table,
                n: self.n,
                k: false,
                v: Vec::new(),
                c,
            }
        };
        self.last = now.into_iter().map(Some).collect();
        out.push(Payload::Samples(samples));
        out
    }
}

/// Receiver side, one per origin boot: rebuilds full values from tables, key frames and deltas.
#[derive(Debug, Default)]
pub struct SampleDecoder {
    tables: HashMap<u32, Vec<SeriesKey>>,
    table: u32,
    state: Vec<Option<f64>>,
    last_n: u64,
    whole: bool,
    /// A samples payload was applied (`last_n` means something).
    applied: bool,
}

/// Why samples could not be (fully) decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleGap {
    /// The table the frame refers to has not arrived yet; nothing decoded.
    UnknownTable(u32),
    /// An earlier delta was missed; only the values this frame lists were decoded.
    Partial,
}

impl SampleDecoder {
    /// A decoder that knows no table yet.
    pub fn new() -> SampleDecoder {
        SampleDecoder::default()
    }

    /// Learns a series table (the two most recent are kept).
    pub fn table(&mut self, t: &SeriesTable) {
        let keys = t
            .series
            .iter()
            .map(|(n, l)| SeriesKey::custom(n.clone(), l.clone()))
            .collect();
        self.tables.insert(t.table, keys);
        if self.tables.len() > 2 {
            // The newest held, not the one just learnt: a table that arrives late (over a
            // slower path, or by a graft) must not evict the one in use.
            let newest = self.tables.keys().copied().max().unwrap_or(t.table);
            self.tables
                .retain(|k, _| *k == newest || *k == newest.wrapping_sub(1));
        }
    }

    /// Applies one samples payload. Returns the values known at this frame's time, and a gap
    /// marker when something was missing.
    pub fn apply(&mut self, s: &Samples) -> (Vec<(SeriesKey, f64)>, Option<SampleGap>) {
        let Some(keys) = self.tables.get(&s.t) else {
            return (Vec::new(), Some(SampleGap::UnknownTable(s.t)));
        };
        if self.applied && s.n <= self.last_n {
            // A late frame (it came over a slower path, or by a graft after newer ones): its
            // own values only, and the delta state is left as it is, since rewinding it would
            // leave every later delta partial until the next key frame.
            let out = if s.k {
                known(keys, s.v.iter().map(|v| v.map(|n| n.0)))
            } else {
                changes(&s.c)
                    .filter_map(|(i, v)| keys.get(i).map(|k| (k.clone(), v)))
                    .collect()
            };
            return (out, (!s.k).then_some(SampleGap::Partial));
        }
        self.applied = true;
        if s.t != self.table {
            self.table = s.t;
            self.state = vec![None; keys.len()];
            self.whole = false;
        }
        let mut gap = None;
        let mut out = Vec::new();
        if s.k {
            self.state = (0..keys.len())
                .map(|i| s.v.get(i).copied().flatten().map(|n| n.0))
                .collect();
            self.whole = true;
            out = known(keys, self.state.iter().copied());
        } else {
            let in_order = self.whole && self.last_n.checked_add(1) == Some(s.n);
            if !in_order {
                self.whole = false;
                gap = Some(SampleGap::Partial);
            }
            for (idx, value) in changes(&s.c) {
                if let Some(slot) = self.state.get_mut(idx) {
                    *slot = Some(value);
                    if !self.whole {
                        out.push((keys[idx].clone(), value));
                    }
                }
            }
            if self.whole {
                out = known(keys, self.state.iter().copied());
            }
        }
        self.last_n = s.n;
        (out, gap)
    }
}

/// The (index, value) pairs of a delta's `c`, skipping indexes that are not whole numbers.
fn changes(c: &[Num]) -> impl Iterator<Item = (usize, f64)> + '_ {
    c.chunks_exact(2)
        .filter(|p| p[0].0 >= 0.0 && p[0].0.fract() == 0.0)
        .map(|p| (p[0].0 as usize, p[1].0))
}

/// The series of `keys` that have a value, by position.
fn known(keys: &[SeriesKey], values: impl Iterator<Item = Option<f64>>) -> Vec<(SeriesKey, f64)> {
    keys.iter()
        .zip(values)
        .filter_map(|(k, v)| v.map(|v| (k.clone(), v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metric;

    fn feed(
        dec: &mut SampleDecoder,
        payloads: &[Payload],
    ) -> (Vec<(SeriesKey, f64)>, Option<SampleGap>) {
        let mut res = (Vec::new(), None);
        for p in payloads {
            match p {
                Payload::SeriesTable(t) => dec.table(t),
                Payload::Samples(s) => res = dec.apply(s),
                _ => {}
            }
        }
        res
    }

    fn values(cpu: f64, total: f64) -> Vec<(SeriesKey, f64)> {
        vec![
            (SeriesKey::new(Metric::CpuUsagePct), cpu),
            (SeriesKey::new(Metric::MemTotalBytes), total),
        ]
    }

    #[test]
    fn deltas_carry_only_changes_and_decode_fully() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        let first = enc.encode(&values(1.0, 8e9));
        assert!(matches!(first[0], Payload::SeriesTable(_)));
        let (v, gap) = feed(&mut dec, &first);
        assert_eq!(v.len(), 2);
        assert_eq!(gap, None);
        let second = enc.encode(&values(2.0, 8e9));
        let Payload::Samples(s) = &second[0] else {
            panic!("samples")
        };
        assert!(!s.k);
        assert_eq!(s.c.len(), 2, "only cpu changed");
        let (mut v, gap) = feed(&mut dec, &second);
        v.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(gap, None);
        assert_eq!(v, {
            let mut e = values(2.0, 8e9);
            e.sort_by(|a, b| a.0.cmp(&b.0));
            e
        });
    }

    #[test]
    fn a_missed_delta_gives_partial_then_whole_at_key_frame() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        feed(&mut dec, &enc.encode(&values(1.0, 8e9)));
        let _lost = enc.encode(&values(2.0, 7e9));
        let (v, gap) = feed(&mut dec, &enc.encode(&values(3.0, 7e9)));
        assert_eq!(gap, Some(SampleGap::Partial));
        assert_eq!(
            v,
            vec![(SeriesKey::new(Metric::CpuUsagePct), 3.0)],
            "no stale total"
        );
        let mut last = (Vec::new(), None);
        for i in 0..KEY_EVERY {
            last = feed(&mut dec, &enc.encode(&values(4.0 + i as f64, 7e9)));
            if last.0.len() == 2 {
                break;
            }
        }
        assert_eq!(last.0.len(), 2, "whole again by the next key frame");
    }

    #[test]
    fn changing_series_set_sends_new_table() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        feed(&mut dec, &enc.encode(&values(1.0, 8e9)));
        let mut more = values(1.0, 8e9);
        more.push((SeriesKey::labelled(Metric::DiskUsedPct, "/"), 40.0));
        let out = enc.encode(&more);
        assert!(matches!(out[0], Payload::SeriesTable(_)));
        let (v, _) = feed(&mut dec, &out);
        assert_eq!(v.len(), 3);
    }

    #[test]
    fn a_late_frame_decodes_alone_and_leaves_the_deltas_whole() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        let first = enc.encode(&values(1.0, 8e9));
        feed(&mut dec, &first);
        let late = enc.encode(&values(2.0, 8e9));
        let third = enc.encode(&values(3.0, 8e9));
        let (v, gap) = feed(&mut dec, &third);
        assert_eq!(
            gap,
            Some(SampleGap::Partial),
            "the second is missing so far"
        );
        assert_eq!(v, vec![(SeriesKey::new(Metric::CpuUsagePct), 3.0)]);
        // The second arrives after the third: its own change only, nothing rewound.
        let (v, gap) = feed(&mut dec, &late);
        assert_eq!(gap, Some(SampleGap::Partial));
        assert_eq!(v, vec![(SeriesKey::new(Metric::CpuUsagePct), 2.0)]);
        // A late key frame decodes whole on its own.
        let (v, gap) = feed(&mut dec, &first);
        assert_eq!((v.len(), gap), (2, None));
        // Later deltas are not hurt by the late frames: whole again at the next key frame,
        // as if they had never come.
        let mut last = (Vec::new(), None);
        for i in 0..KEY_EVERY {
            last = feed(&mut dec, &enc.encode(&values(4.0 + i as f64, 8e9)));
            if last.0.len() == 2 {
                break;
            }
        }
        assert_eq!(last.0.len(), 2);
        let (v, gap) = feed(&mut dec, &enc.encode(&values(9.0, 8e9)));
        assert_eq!((v.len(), gap), (2, None), "in-order deltas decode whole");
    }

    #[test]
    fn a_delta_after_a_late_frame_of_the_same_stream_is_still_whole() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        feed(&mut dec, &enc.encode(&values(1.0, 8e9)));
        let second = enc.encode(&values(2.0, 8e9));
        feed(&mut dec, &second);
        feed(&mut dec, &second);
        let (v, gap) = feed(&mut dec, &enc.encode(&values(3.0, 8e9)));
        assert_eq!(
            (v.len(), gap),
            (2, None),
            "a repeated frame rewinds nothing"
        );
    }

    #[test]
    fn a_late_older_table_does_not_evict_the_one_in_use() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        let first = enc.encode(&values(1.0, 8e9));
        feed(&mut dec, &first);
        let mut more = values(1.0, 8e9);
        more.push((SeriesKey::labelled(Metric::DiskUsedPct, "/"), 40.0));
        feed(&mut dec, &enc.encode(&more));
        more.push((SeriesKey::labelled(Metric::DiskUsedPct, "/data"), 50.0));
        feed(&mut dec, &enc.encode(&more));
        // The first table arrives again, late.
        feed(&mut dec, &first[..1]);
        let (v, gap) = feed(&mut dec, &enc.encode(&more));
        assert_eq!((v.len(), gap), (4, None), "the newest table is still known");
    }

    #[test]
    fn unknown_table_decodes_nothing() {
        let mut enc = SampleEncoder::new();
        let mut dec = SampleDecoder::new();
        let out = enc.encode(&values(1.0, 8e9));
        let Payload::Samples(s) = &out[1] else {
            panic!("samples")
        };
        assert_eq!(dec.apply(s).1, Some(SampleGap::UnknownTable(s.t)));
    }
}
