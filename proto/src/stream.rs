//! Per-origin sample streams at a receiver: [`Streams`] owns one [`SampleDecoder`] per stream,
//! a stream being one boot of one origin, live or replayed ([`StreamId`]). Live and replay
//! streams of the same boot are kept apart (a replay carries its own tables and key frames,
//! and feeding it to the live decoder would corrupt the live delta state).
//!
//! Decoders are made on demand. When a stream of an origin starts with a boot newer than any
//! it had (a restart), the decoders of the older boots of that stream (live or replay) go.
//! Decoders unused for `idle_ms` go when a new one is made or on [`Streams::expire`], and there
//! are never more than `cap`: past it the least recently used goes. Time is passed in
//! (`now_ms`, the receiver's own clock); nothing here reads a clock.
//!
//! Not here: the sample encoding itself ([`crate::samples`]), what is done with the values
//! (store, alerts, exporter, TUI), or which frames are live or replayed (the caller says).

use crate::frame::Header;
use crate::metrics::SeriesKey;
use crate::payload::{Samples, SeriesTable};
use crate::samples::{SampleDecoder, SampleGap};
use std::collections::HashMap;

/// Decoders not used for this long are dropped, by default.
pub const DEFAULT_IDLE_MS: u64 = 30 * 60 * 1000;
/// At most this many decoders are held, by default.
pub const DEFAULT_CAP: usize = 4096;

/// Which stream a payload belongs to: its origin, the origin's boot, live or replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamId<'a> {
    pub origin: &'a str,
    pub boot: u64,
    /// Re-sent history (backfill), decoded apart from the live stream.
    pub replay: bool,
}

impl<'a> StreamId<'a> {
    /// The stream of a frame with this header; `replay` says whether it came in a Replay.
    pub fn of(header: &'a Header, replay: bool) -> StreamId<'a> {
        StreamId {
            origin: &header.origin,
            boot: header.boot_id,
            replay,
        }
    }
}

/// One decoded Samples payload.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    /// The values known at the frame's time.
    pub values: Vec<(SeriesKey, f64)>,
    /// Set when something was missing (see [`SampleGap`]).
    pub gap: Option<SampleGap>,
    /// The payload opened a new decoder: the stream's first payload, the first of a newer
    /// boot, or the first after its decoder was evicted. Values decoded before belong to
    /// another decoder.
    pub fresh: bool,
}

#[derive(Debug)]
struct Slot {
    boot: u64,
    replay: bool,
    used_ms: u64,
    decoder: SampleDecoder,
}

impl Slot {
    fn is(&self, id: StreamId<'_>) -> bool {
        self.boot == id.boot && self.replay == id.replay
    }
}

/// The decoders of every origin's streams, made on demand, bounded in number and age.
#[derive(Debug)]
pub struct Streams {
    /// origin -> its streams (few: one live and one replay boot, normally).
    origins: HashMap<String, Vec<Slot>>,
    len: usize,
    idle_ms: u64,
    cap: usize,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams::new(DEFAULT_IDLE_MS, DEFAULT_CAP)
    }
}

impl Streams {
    /// Drops decoders unused for `idle_ms` and holds at most `cap` (at least one).
    pub fn new(idle_ms: u64, cap: usize) -> Streams {
        Streams {
            origins: HashMap::new(),
            len: 0,
            idle_ms,
            cap: cap.max(1),
        }
    }

    /// Feeds a series table to its stream. Returns true when it opened a new decoder (see
    /// [`Decoded::fresh`]).
    pub fn table(&mut self, id: StreamId<'_>, t: &SeriesTable, now_ms: u64) -> bool {
        self.with(id, now_ms, |d| d.table(t)).1
    }

    /// Feeds a samples payload to its stream and returns what it decodes to.
    pub fn samples(&mut self, id: StreamId<'_>, s: &Samples, now_ms: u64) -> Decoded {
        let ((values, gap), fresh) = self.with(id, now_ms, |d| d.apply(s));
        Decoded { values, gap, fresh }
    }

    /// Drops decoders unused for `idle_ms` as of `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let idle_ms = self.idle_ms;
        self.retain(|s| now_ms.saturating_sub(s.used_ms) < idle_ms);
    }

    /// Number of decoders held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No decoder is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Runs `f` on the stream's decoder, making it first if needed; also says whether it
    /// was made.
    fn with<R>(
        &mut self,
        id: StreamId<'_>,
        now_ms: u64,
        f: impl FnOnce(&mut SampleDecoder) -> R,
    ) -> (R, bool) {
        if let Some(slot) = self
            .origins
            .get_mut(id.origin)
            .and_then(|v| v.iter_mut().find(|s| s.is(id)))
        {
            slot.used_ms = now_ms;
            return (f(&mut slot.decoder), false);
        }
        self.make_room(id, now_ms);
        let mut slot = Slot {
            boot: id.boot,
            replay: id.replay,
            used_ms: now_ms,
            decoder: SampleDecoder::new(),
        };
        let r = f(&mut slot.decoder);
        self.origins
            .entry(id.origin.to_owned())
            .or_default()
            .push(slot);
        self.len += 1;
        (r, true)
    }

    /// Before `id` gets a decoder: drops the older boots of its stream if `id` is a newer
    /// one, then idle decoders, then the least recently used ones while at the cap.
    fn make_room(&mut self, id: StreamId<'_>, now_ms: u64) {
        if let Some(slots) = self.origins.get_mut(id.origin) {
            let same = |s: &Slot| s.replay == id.replay;
            if !slots.iter().any(|s| same(s) && s.boot > id.boot) {
                let before = slots.len();
                slots.retain(|s| !same(s));
                self.len -= before - slots.len();
            }
        }
        self.expire(now_ms);
        while self.len >= self.cap {
            let Some(oldest) = self.origins.values().flatten().map(|s| s.used_ms).min() else {
                break;
            };
            let mut dropped = false;
            self.retain(|s| {
                let keep = dropped || s.used_ms != oldest;
                dropped |= !keep;
                keep
            });
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Slot) -> bool) {
        let mut len = 0;
        self.origins.retain(|_, slots| {
            slots.retain(&mut keep);
            len += slots.len();
            !slots.is_empty()
        });
        self.len = len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metric;
    use crate::payload::Payload;
    use crate::samples::{KEY_EVERY, SampleEncoder};

    const MIN: u64 = 60_000;

    fn live(origin: &str, boot: u64) -> StreamId<'_> {
        StreamId {
            origin,
            boot,
            replay: false,
        }
    }

    fn values(cpu: f64) -> Vec<(SeriesKey, f64)> {
        vec![
            (SeriesKey::new(Metric::CpuUsagePct), cpu),
            (SeriesKey::new(Metric::MemTotalBytes), 8e9),
        ]
    }

    /// Sends the encoder's payloads through their wire bytes (MessagePack) into `streams`;
    /// returns the last Samples' result and whether a table opened a decoder.
    fn feed(
        streams: &mut Streams,
        id: StreamId<'_>,
        payloads: Vec<Payload>,
        now_ms: u64,
    ) -> (Decoded, bool) {
        let mut out = (Decoded::default(), false);
        for p in payloads {
            let kind = p.kind();
            let bytes = p.encode().expect("encode");
            match Payload::decode(kind, &bytes).expect("decode") {
                Payload::SeriesTable(t) => out.1 |= streams.table(id, &t, now_ms),
                Payload::Samples(s) => out.0 = streams.samples(id, &s, now_ms),
                other => panic!("unexpected {other:?}"),
            }
        }
        out
    }

    fn cpu(d: &Decoded) -> Option<f64> {
        d.values
            .iter()
            .find(|(k, _)| *k == SeriesKey::new(Metric::CpuUsagePct))
            .map(|(_, v)| *v)
    }

    #[test]
    fn decodes_across_key_frames() {
        let mut streams = Streams::default();
        let mut enc = SampleEncoder::new();
        let (first, opened) = feed(&mut streams, live("a", 1), enc.encode(&values(0.0)), 0);
        assert!(opened, "the table opened the stream");
        assert!(!first.fresh, "the samples found it open");
        for i in 1..3 * KEY_EVERY {
            let (d, _) = feed(&mut streams, live("a", 1), enc.encode(&values(i as f64)), i);
            assert_eq!(d.gap, None, "frame {i}");
            assert_eq!(d.values.len(), 2, "frame {i}");
            assert_eq!(cpu(&d), Some(i as f64), "frame {i}");
        }
        assert_eq!(streams.len(), 1);
    }

    #[test]
    fn a_new_boot_resets_and_drops_the_old() {
        let mut streams = Streams::default();
        let mut old = SampleEncoder::new();
        feed(&mut streams, live("a", 1), old.encode(&values(1.0)), 0);
        feed(&mut streams, live("a", 1), old.encode(&values(2.0)), 1);
        // The restarted origin's first frame is a samples payload whose table we missed:
        // its table ids start again, so the old boot's table must not be used.
        let mut new = SampleEncoder::new();
        let out = new.encode(&values(9.0));
        let (d, _) = feed(&mut streams, live("a", 2), out[1..].to_vec(), 2);
        assert!(d.fresh);
        assert!(matches!(d.gap, Some(SampleGap::UnknownTable(_))));
        assert!(d.values.is_empty());
        assert_eq!(streams.len(), 1, "boot 1 dropped");
        let (d, opened) = feed(&mut streams, live("a", 2), new.encode(&values(10.0)), 3);
        assert!(!opened);
        // Table re-sent only every TABLE_EVERY frames: the delta still lacks it.
        assert!(matches!(d.gap, Some(SampleGap::UnknownTable(_))));
        let (d, opened) = feed(&mut streams, live("a", 2), out, 4);
        assert!(!opened);
        assert_eq!(cpu(&d), Some(9.0));
        // A late frame of boot 1 gets a decoder of its own and leaves boot 2 alone.
        let (d, _) = feed(&mut streams, live("a", 1), old.encode(&values(3.0)), 5);
        assert!(d.fresh);
        assert_eq!(streams.len(), 2);
        let (d, _) = feed(&mut streams, live("a", 2), new.encode(&values(11.0)), 6);
        assert!(!d.fresh);
    }

    #[test]
    fn replay_and_live_are_separate() {
        let mut streams = Streams::default();
        let mut enc = SampleEncoder::new();
        let first = enc.encode(&values(1.0));
        feed(&mut streams, live("a", 1), first.clone(), 0);
        let second = enc.encode(&values(2.0));
        // The replay resends frame 1 (table and key frame) after live frame 2.
        let replay = StreamId {
            replay: true,
            ..live("a", 1)
        };
        let (d, opened) = feed(&mut streams, replay, first, 1);
        assert!(opened);
        assert_eq!(cpu(&d), Some(1.0));
        let (d, _) = feed(&mut streams, live("a", 1), second.clone(), 2);
        assert_eq!(
            d.gap, None,
            "the replay did not disturb the live delta state"
        );
        assert_eq!(cpu(&d), Some(2.0));
        let (d, _) = feed(&mut streams, replay, second, 3);
        assert_eq!(d.gap, None);
        assert_eq!(d.values.len(), 2);
        assert_eq!(streams.len(), 2);
        // A newer live boot drops the old live decoder only.
        feed(
            &mut streams,
            live("a", 2),
            SampleEncoder::new().encode(&values(5.0)),
            4,
        );
        assert_eq!(streams.len(), 2);
        let (d, _) = feed(&mut streams, replay, enc.encode(&values(3.0)), 5);
        assert!(!d.fresh, "the replay of boot 1 kept its decoder");
    }

    #[test]
    fn idle_decoders_are_evicted() {
        let mut streams = Streams::new(10 * MIN, 100);
        feed(
            &mut streams,
            live("a", 1),
            SampleEncoder::new().encode(&values(1.0)),
            0,
        );
        let mut b = SampleEncoder::new();
        feed(&mut streams, live("b", 1), b.encode(&values(1.0)), 5 * MIN);
        streams.expire(10 * MIN - 1);
        assert_eq!(streams.len(), 2);
        streams.expire(10 * MIN);
        assert_eq!(streams.len(), 1, "a went");
        // Making a decoder also sweeps the idle ones.
        feed(
            &mut streams,
            live("c", 1),
            SampleEncoder::new().encode(&values(1.0)),
            15 * MIN,
        );
        assert_eq!(streams.len(), 1, "b went, c came");
        let (d, _) = feed(&mut streams, live("b", 1), b.encode(&values(2.0)), 15 * MIN);
        assert!(d.fresh, "b starts over");
        assert!(matches!(d.gap, Some(SampleGap::UnknownTable(_))));
    }

    #[test]
    fn the_cap_drops_the_least_recently_used() {
        let mut streams = Streams::new(u64::MAX, 3);
        let mut encs: Vec<SampleEncoder> = (0..4).map(|_| SampleEncoder::new()).collect();
        let names = ["h0", "h1", "h2", "h3"];
        for (i, enc) in encs.iter_mut().enumerate().take(3) {
            feed(
                &mut streams,
                live(names[i], 1),
                enc.encode(&values(1.0)),
                i as u64,
            );
        }
        // h0 is used again, so h1 is now the least recently used.
        feed(
            &mut streams,
            live("h0", 1),
            encs[0].encode(&values(2.0)),
            10,
        );
        feed(
            &mut streams,
            live("h3", 1),
            encs[3].encode(&values(1.0)),
            11,
        );
        assert_eq!(streams.len(), 3);
        let (d, _) = feed(
            &mut streams,
            live("h0", 1),
            encs[0].encode(&values(3.0)),
            12,
        );
        assert!(!d.fresh, "h0 kept");
        let (d, _) = feed(
            &mut streams,
            live("h1", 1),
            encs[1].encode(&values(2.0)),
            13,
        );
        assert!(d.fresh, "h1 was dropped");
        assert_eq!(streams.len(), 3);
    }
}
