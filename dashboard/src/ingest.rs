//! Dashboard ingestion: turns the frames a dashboard node accepts (live and replayed) into
//! store writes. It decodes samples per origin boot (live and replay streams separately, as
//! replays carry their own key frames and tables), records hosts, and tells the store how far
//! it has each origin's sequence, so a restarted dashboard asks the mesh for exactly the rest.
//!
//! Not here: the store itself (`writer`), alert decisions (`alert`), or deciding what to
//! backfill (the agent's gossip).

use crate::alert::{AlertSender, Frame, Input as AlertInput};
use crate::skew::{Offsets, offset_in, place};
use crate::{Ingest, IngestSender, Sample};
use meshmon_proto::gaps::{GapTracker, Wanted};
use meshmon_proto::payload::HostInfo;
use meshmon_proto::stream::{Decoded, StreamId, Streams};
use meshmon_proto::{Flags, Payload};
use meshmon_proto::{Header, SeriesKey};
use std::collections::{HashMap, HashSet};
use tracing::warn;

/// A frame the node accepted, as the dashboard needs it.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub header: Header,
    /// Links it crossed before the last one (as received).
    pub hops: u8,
    pub payload: Payload,
    /// This node's own frame (it came on no link).
    pub own: bool,
    /// Re-sent historic data (backfill), not live: store it, never alert on it.
    pub replay: bool,
}

/// Per-dashboard ingestion state.
pub struct Ingestor {
    sink: IngestSender,
    /// Sample decoders per origin boot, live and replay apart.
    streams: Streams,
    /// Frames that could not be queued to the store (it was full or failing).
    pub dropped: u64,
    warned: bool,
    /// Which frames of each origin were handed to the store, for its position.
    held: GapTracker,
    /// The position last sent per origin.
    sent: HashMap<String, (u64, u64)>,
    /// The alert thread, which gets live frames only.
    alerts: Option<AlertSender>,
    /// Metric names some alert rule watches: only their values go to the alert thread.
    watched: HashSet<String>,
    /// Frames the alert thread's full queue refused.
    pub alert_drops: u64,
    /// Where frames lost on the way to the store are asked for again (the mesh).
    wants: Option<tokio::sync::mpsc::Sender<Wanted>>,
    /// Requests the full `wants` queue refused (the position still stays below them).
    pub wants_dropped: u64,
    /// Origins' published clock offsets, to place their timestamps ([`crate::skew`]).
    offsets: Offsets,
    /// Remote write, which gets live samples only.
    remote: Option<crate::remote::Feed>,
    /// The web dashboard's live view, which gets live samples only (one entry per frame).
    live: Option<tokio::sync::mpsc::Sender<Vec<Sample>>>,
    /// Frames the live view's full queue refused.
    pub live_drops: u64,
}

impl Ingestor {
    /// Writes into `sink`.
    pub fn new(sink: IngestSender) -> Ingestor {
        Ingestor {
            sink,
            streams: Streams::default(),
            dropped: 0,
            warned: false,
            held: GapTracker::default(),
            sent: HashMap::new(),
            alerts: None,
            watched: HashSet::new(),
            alert_drops: 0,
            wants: None,
            wants_dropped: 0,
            offsets: Offsets::default(),
            remote: None,
            live: None,
            live_drops: 0,
        }
    }

    /// Also hands live samples (never replayed ones) to the web dashboard's live view; a
    /// full queue drops them (the view shows the next frame's values).
    pub fn with_live(mut self, live: tokio::sync::mpsc::Sender<Vec<Sample>>) -> Ingestor {
        self.live = Some(live);
        self
    }

    /// Also hands live samples (never replayed ones) to remote write.
    pub fn with_remote(mut self, feed: crate::remote::Feed) -> Ingestor {
        self.remote = Some(feed);
        self
    }

    /// Asks the mesh, through `wants`, for frames the store's full queue refused.
    pub fn with_wants(mut self, wants: tokio::sync::mpsc::Sender<Wanted>) -> Ingestor {
        self.wants = Some(wants);
        self
    }

    /// Also hands live frames to the alert thread (never replayed ones), with the values of
    /// the metrics named in `watched` (the ones some rule watches; the others would be copied
    /// for nothing on every frame).
    pub fn with_alerts(
        mut self,
        alerts: AlertSender,
        watched: impl IntoIterator<Item = String>,
    ) -> Ingestor {
        self.alerts = Some(alerts);
        self.watched = watched.into_iter().collect();
        self
    }

    /// Tells the alert thread that a live frame of `origin` arrived. `complete`: `values` is
    /// every series the origin reports now, so a watched series missing from it is gone.
    fn alert_frame(
        &mut self,
        origin: &str,
        ts_ms: i64,
        now_ms: i64,
        values: Vec<(SeriesKey, f64)>,
        complete: bool,
        info: Option<HostInfo>,
    ) {
        if self.alerts.is_none() {
            return;
        }
        self.alert(AlertInput::Frame(Frame {
            host: origin.to_owned(),
            ts_ms,
            now_ms,
            values,
            complete,
            info,
        }));
    }

    fn alert(&mut self, input: AlertInput) {
        let Some(tx) = &self.alerts else { return };
        if let Err(tokio::sync::mpsc::error::TrySendError::Full(_)) = tx.try_send(input) {
            self.alert_drops += 1;
            if self.alert_drops.is_power_of_two() {
                warn!(
                    dropped = self.alert_drops,
                    "alert queue full; frames skipped by the alert engine"
                );
            }
        }
    }

    /// Starts from what the store already holds (the positions it persisted).
    pub fn resume(&mut self, origin: &str, boot_id: u64, seq: u64) {
        self.held.resume(origin, boot_id, seq);
        self.sent.insert(origin.to_owned(), (boot_id, seq));
    }

    /// Queues a write; false when the queue refused it (counted and logged).
    fn send(&mut self, ingest: Ingest) -> bool {
        if !self.sink.try_send(ingest) {
            self.dropped += 1;
            if !self.warned {
                warn!(
                    "store queue full or store failing; samples are dropped (backfill recovers what the mesh still has)"
                );
                self.warned = true;
            }
            false
        } else {
            self.warned = false;
            true
        }
    }

    /// Asks the mesh, through `wants`, for the frame `header` again.
    fn ask_again(&mut self, origin: String, header: &Header) {
        let want = Wanted {
            origin,
            boot_id: header.boot_id,
            from_seq: header.seq,
            to_seq: header.seq,
        };
        if let Some(w) = &self.wants
            && w.try_send(want).is_err()
        {
            self.wants_dropped += 1;
        }
    }

    /// Handles one accepted frame. `now_ms` is this node's wall clock.
    pub fn on_frame(&mut self, d: Accepted, now_ms: u64) {
        if d.header.flags.contains(Flags::LINK) {
            return;
        }
        let origin = d.header.origin.clone();
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        // Distance: frames from a neighbour arrive with hops 0; our own have no link.
        let hops = if d.own && !d.replay {
            0
        } else {
            d.hops.saturating_add(1)
        };
        if !d.replay {
            self.send(Ingest::Seen {
                name: origin.clone(),
                hops,
                ts_ms: now,
            });
        }
        let raw_ts = i64::try_from(d.header.ts_ms).unwrap_or(i64::MAX);
        // The origin's clock may be off: place its time on this node's (`skew`).
        let offset = self.offsets.get(&origin, d.header.boot_id);
        let ts_ms = place(raw_ts, offset, now, !d.replay);
        match d.payload {
            Payload::HostInfo(info) => {
                if !d.replay {
                    self.alert_frame(&origin, ts_ms, now, Vec::new(), false, Some(info.clone()));
                    self.send(Ingest::Host {
                        name: origin.clone(),
                        info,
                        hops,
                        ts_ms: now,
                    });
                }
            }
            Payload::SeriesTable(t) => {
                self.streams
                    .table(StreamId::of(&d.header, d.replay), &t, now_ms);
                if !d.replay {
                    self.alert_frame(&origin, ts_ms, now, Vec::new(), false, None);
                }
            }
            Payload::Samples(s) => {
                let Decoded { values, gap, .. } =
                    self.streams
                        .samples(StreamId::of(&d.header, d.replay), &s, now_ms);
                // A sample frame carries the offset its origin measured when it was sent.
                let carried = offset_in(&values);
                let ts_ms = if d.replay {
                    place(raw_ts, carried.or(offset), now, false)
                } else {
                    self.offsets.learn(&origin, d.header.boot_id, carried);
                    place(
                        raw_ts,
                        self.offsets.get(&origin, d.header.boot_id),
                        now,
                        true,
                    )
                };
                // Replayed (backfilled) data is stored but never evaluated: it would fire
                // alerts about the past.
                if !d.replay && self.alerts.is_some() {
                    let watched: Vec<(SeriesKey, f64)> = values
                        .iter()
                        .filter(|(k, _)| self.watched.contains(&k.name))
                        .cloned()
                        .collect();
                    let complete = gap.is_none() && !values.is_empty();
                    self.alert_frame(&origin, ts_ms, now, watched, complete, None);
                }
                if !values.is_empty() {
                    let samples = values
                        .into_iter()
                        .map(|(series, value)| Sample {
                            host: origin.clone(),
                            series,
                            ts_ms,
                            value,
                        })
                        .collect::<Vec<Sample>>();
                    if !d.replay
                        && let Some(remote) = &self.remote
                    {
                        remote.offer(samples.clone());
                    }
                    if !d.replay
                        && let Some(live) = &self.live
                        && live.try_send(samples.clone()).is_err()
                    {
                        self.live_drops += 1;
                    }
                    if !self.send(Ingest::Samples(samples)) {
                        // Not held: the position stays below it, and the mesh is asked for
                        // the frame again (it is in its origin's ring for 15 minutes).
                        self.ask_again(origin, &d.header);
                        return;
                    }
                }
                // A live delta decoded without its key frame (this node joined mid-stream, or
                // frames before it were missed) lacks the values that did not change: not
                // held, so the position stays below it, and asked for again. The origin's
                // replay starts from the key frame before it and decodes whole.
                if !d.replay && gap.is_some() {
                    self.ask_again(origin, &d.header);
                    return;
                }
            }
            _ => return,
        }
        self.held
            .observe(&origin, d.header.boot_id, d.header.seq, now_ms);
        if let Some(pos) = self.held.contiguous(&origin, now_ms)
            && self.sent.get(&origin) != Some(&pos)
        {
            self.sent.insert(origin.clone(), pos);
            self.send(Ingest::Position {
                host: origin,
                boot_id: pos.0,
                seq: pos.1,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{StoreConfig, start_writer};
    use meshmon_proto::metrics::Metric;
    use meshmon_proto::samples::SampleEncoder;

    fn accepted(seq: u64, payload: Payload) -> Accepted {
        Accepted {
            header: Header {
                kind: payload.kind(),
                flags: Flags::default(),
                origin: "o".into(),
                boot_id: 7,
                seq,
                ts_ms: 1_000 * seq,
            },
            hops: 1,
            payload,
            own: false,
            replay: false,
        }
    }

    fn values(cpu: f64) -> Vec<(SeriesKey, f64)> {
        vec![
            (SeriesKey::new(Metric::CpuUsagePct), cpu),
            (SeriesKey::new(Metric::MemTotalBytes), 8e9),
        ]
    }

    /// Feeds the origin's table, key frame (unless `skip_key`) and three deltas; returns the
    /// sequence numbers asked for again.
    fn asked_again(skip_key: bool) -> Vec<u64> {
        let dir = tempfile::tempdir().expect("tempdir");
        let writer = start_writer(StoreConfig::new(dir.path().join("s.db"))).expect("writer");
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        let mut ing = Ingestor::new(writer.sender()).with_wants(tx);
        let mut enc = SampleEncoder::new();
        let mut seq = 0;
        for (i, cpu) in [1.0, 2.0, 3.0, 4.0].into_iter().enumerate() {
            for p in enc.encode(&values(cpu)) {
                seq += 1;
                let key = matches!(&p, Payload::Samples(s) if s.k);
                if i == 0 && key && skip_key {
                    continue;
                }
                ing.on_frame(accepted(seq, p), 10_000);
            }
        }
        let mut asked = Vec::new();
        while let Ok(w) = rx.try_recv() {
            assert_eq!((w.from_seq, w.to_seq), (w.from_seq, w.from_seq));
            asked.push(w.from_seq);
        }
        asked
    }

    #[test]
    fn deltas_decoded_without_their_key_frame_are_asked_for_again() {
        // Table = 1, key frame = 2 (missed), deltas 3, 4, 5: mem.total_bytes, unchanged, is
        // in none of them.
        assert_eq!(asked_again(true), vec![3, 4, 5]);
        assert_eq!(
            asked_again(false),
            Vec::<u64>::new(),
            "a whole stream asks for nothing"
        );
    }
}
