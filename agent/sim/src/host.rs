//! One simulated host, without I/O: its origin name, boot id and sequence numbers, its
//! sample encoder (the proto crate's, as a real agent uses it), and the sealed frames it
//! produces each turn: host info at start and every `host_info_every`, the series table when
//! the encoder sends it (at start and every 30 sample frames), then one samples frame. It
//! keeps its frames to answer backfill requests with Replay frames.
//!
//! Not here: when turns happen or whether a frame can be sent (credits): `run` decides.

use crate::config::FleetConfig;
use meshmon_proto::ring::OwnRing;

/// Memory cap of one simulated host's ring, in bytes of frames.
const RING_MAX_BYTES: usize = 1024 * 1024;
use crate::values::Values;
use bytes::Bytes;
use meshmon_proto::payload::{ByteBuf, HostInfo, Replay};
use meshmon_proto::samples::SampleEncoder;
use meshmon_proto::{Flags, Header, Keyring, Payload, ProtoError};
use std::time::Duration;

/// Replay payloads are cut at about this many bytes of frames (as a real agent does).
pub const REPLAY_CHUNK: usize = 48 * 1024;

/// A frame a host produced, sealed, with what the link needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct Produced {
    pub(crate) header: Header,
    pub(crate) bytes: Bytes,
}

/// One simulated host.
#[derive(Debug)]
pub(crate) struct SimHost {
    pub(crate) name: String,
    pub(crate) boot_id: u64,
    seq: u64,
    replay_seq: u64,
    encoder: SampleEncoder,
    values: Values,
    ring: OwnRing,
    info: HostInfo,
    info_every_ms: u64,
    next_info_ms: u64,
    /// The latest host info and series table frames, re-sent on every new link.
    pub(crate) descriptors: [Option<Bytes>; 2],
    /// The link (connection number) this host's descriptors were last re-sent on.
    pub(crate) descriptors_on: u64,
}

impl SimHost {
    /// Host `i` of the fleet; `boot_id` must grow from one run of the fleet to the next.
    pub(crate) fn new(cfg: &FleetConfig, i: usize, boot_id: u64, start_ms: u64) -> SimHost {
        let interval_ms = u64::try_from(cfg.interval.as_millis()).unwrap_or(u64::MAX);
        SimHost {
            name: cfg.host_name(i),
            boot_id,
            seq: 0,
            replay_seq: 0,
            encoder: SampleEncoder::new(),
            values: Values::new(i, cfg.hosts, cfg.series, cfg.pattern, cfg.seed),
            ring: OwnRing::new(
                u64::try_from(cfg.replay_window.as_millis()).unwrap_or(u64::MAX),
                RING_MAX_BYTES,
            ),
            info: HostInfo {
                os: "Simulated Linux 1".into(),
                kernel: "6.1.0-sim".into(),
                arch: "x86_64".into(),
                version: format!("sim-{}", env!("CARGO_PKG_VERSION")),
                tags: vec!["sim".into()],
                interval_ms,
                // Booted some minutes before the simulation, differently per host.
                boot_time_s: (start_ms / 1000).saturating_sub(600 + (i as u64 % 3600)),
                cores: 4,
                dashboard: false,
            },
            info_every_ms: u64::try_from(cfg.host_info_every.as_millis()).unwrap_or(u64::MAX),
            next_info_ms: 0,
            descriptors: [None, None],
            descriptors_on: 0,
        }
    }

    /// Whether the host has taken its first turn.
    pub(crate) fn booted(&self) -> bool {
        self.seq > 0
    }

    /// Seals `payload` in the live sequence (or the replay sequence) of this host.
    fn seal(
        &mut self,
        keyring: &Keyring,
        payload: &Payload,
        now_ms: u64,
        replay: bool,
    ) -> Result<Produced, ProtoError> {
        let (counter, flags) = if replay {
            (&mut self.replay_seq, Flags::REPLAY)
        } else {
            (&mut self.seq, Flags::default())
        };
        *counter += 1;
        let header = Header {
            kind: payload.kind(),
            flags,
            origin: self.name.clone(),
            boot_id: self.boot_id,
            seq: *counter,
            ts_ms: now_ms,
        };
        let bytes = Bytes::from(keyring.seal(&header, 0, &payload.encode()?)?);
        Ok(Produced { header, bytes })
    }

    /// One interval's frames, in order: host info if due, the series table if the encoder
    /// sends one, the samples. `elapsed` (since the fleet started) drives the value pattern;
    /// `now_ms` is the frames' timestamp.
    pub(crate) fn turn(
        &mut self,
        keyring: &Keyring,
        now_ms: u64,
        elapsed: Duration,
    ) -> Result<Vec<Produced>, ProtoError> {
        let mut payloads = Vec::with_capacity(3);
        if now_ms >= self.next_info_ms {
            payloads.push(Payload::HostInfo(self.info.clone()));
            self.next_info_ms = now_ms.saturating_add(self.info_every_ms);
        }
        let values = self.values.take(elapsed);
        payloads.extend(self.encoder.encode(&values));
        let mut out = Vec::with_capacity(payloads.len());
        for p in payloads {
            let key = matches!(&p, Payload::Samples(s) if s.k);
            let f = self.seal(keyring, &p, now_ms, false)?;
            match &p {
                Payload::HostInfo(_) => self.descriptors[0] = Some(f.bytes.clone()),
                Payload::SeriesTable(_) => self.descriptors[1] = Some(f.bytes.clone()),
                _ => {}
            }
            self.ring
                .push(f.header.seq, now_ms, f.header.kind, key, f.bytes.clone());
            self.ring.prune(now_ms);
            out.push(f);
        }
        Ok(out)
    }

    /// Replay frames answering `requester`'s request for `from..=to` of boot `boot_id`;
    /// nothing for another boot (that run's frames are gone, as with a restarted agent).
    pub(crate) fn answer(
        &mut self,
        keyring: &Keyring,
        requester: &str,
        boot_id: u64,
        (from, to): (u64, u64),
        now_ms: u64,
    ) -> Result<Vec<Produced>, ProtoError> {
        if boot_id != self.boot_id {
            return Ok(Vec::new());
        }
        let frames = self.ring.answer(from, to);
        let mut out = Vec::new();
        let mut chunk: Vec<ByteBuf> = Vec::new();
        let mut size = 0;
        let total = frames.len();
        for (i, f) in frames.into_iter().enumerate() {
            size += f.len() + 4;
            chunk.push(ByteBuf::from(f.to_vec()));
            let last = i + 1 == total;
            if size >= REPLAY_CHUNK || last {
                let replay = Payload::Replay(Replay {
                    to: requester.to_owned(),
                    frames: std::mem::take(&mut chunk),
                    last,
                });
                out.push(self.seal(keyring, &replay, now_ms, true)?);
                size = 0;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Pattern;
    use meshmon_proto::samples::SampleDecoder;
    use meshmon_proto::{Key, Kind};
    use std::net::SocketAddr;

    fn ring() -> Keyring {
        Keyring::new(vec![Key::NULL]).expect("ring")
    }

    fn host(pattern: Pattern) -> SimHost {
        let mut cfg = FleetConfig::new(SocketAddr::from(([127, 0, 0, 1], 1)), 10);
        cfg.pattern = pattern;
        cfg.host_info_every = Duration::from_secs(30);
        SimHost::new(&cfg, 3, 42, 1_000_000)
    }

    fn open(k: &Keyring, p: &Produced) -> (Header, Payload) {
        let o = k.open(&p.bytes).expect("opens");
        let payload = Payload::decode(o.header.kind, &o.plaintext).expect("decodes");
        (o.header, payload)
    }

    #[test]
    fn first_turn_sends_info_table_samples_then_only_samples_then_the_table_again() {
        let k = ring();
        let mut h = host(Pattern::RandomWalk);
        let mut dec = SampleDecoder::new();
        let mut kinds = Vec::new();
        for t in 0..31u64 {
            for p in h
                .turn(&k, 1_000_000 + t * 1000, Duration::from_secs(t))
                .expect("turn")
            {
                let (hdr, payload) = open(&k, &p);
                assert_eq!(hdr.origin, "sim-0003");
                assert_eq!(hdr.boot_id, 42);
                assert_eq!(hdr.seq, kinds.len() as u64 + 1, "gap-free sequence");
                assert!(!hdr.flags.contains(Flags::LINK) && !hdr.flags.contains(Flags::REPLAY));
                match &payload {
                    Payload::SeriesTable(t) => dec.table(t),
                    Payload::Samples(s) => {
                        let (v, gap) = dec.apply(s);
                        assert_eq!(gap, None);
                        assert_eq!(v.len(), 3, "every series decodes");
                    }
                    _ => {}
                }
                kinds.push(hdr.kind);
            }
        }
        assert_eq!(
            &kinds[..4],
            [
                Kind::HostInfo,
                Kind::SeriesTable,
                Kind::Samples,
                Kind::Samples
            ]
        );
        // 31 samples, the table at frames 1 and 31, host info at 0 s and 30 s.
        let count = |k: Kind| kinds.iter().filter(|x| **x == k).count();
        assert_eq!(count(Kind::Samples), 31);
        assert_eq!(count(Kind::SeriesTable), 2);
        assert_eq!(count(Kind::HostInfo), 2);
        assert!(h.descriptors.iter().all(Option::is_some));
    }

    #[test]
    fn a_backfill_answer_replays_the_range_with_its_decoder_context() {
        let k = ring();
        let mut h = host(Pattern::Steady);
        for t in 0..25u64 {
            h.turn(&k, 1_000_000 + t * 1000, Duration::from_secs(t))
                .expect("turn");
        }
        // Frames: 1 info, 2 table, 3.. samples n=1..; seq 20 is samples n=18 (key at n=11, seq 13).
        let replays = h
            .answer(&k, "dash", 42, (20, 22), 2_000_000)
            .expect("answer");
        assert_eq!(replays.len(), 1);
        let (hdr, payload) = open(&k, &replays[0]);
        assert!(hdr.flags.contains(Flags::REPLAY));
        assert_eq!((hdr.origin.as_str(), hdr.seq), ("sim-0003", 1));
        let Payload::Replay(r) = payload else {
            panic!("a replay")
        };
        assert_eq!(r.to, "dash");
        assert!(r.last);
        let seqs: Vec<u64> = r
            .frames
            .iter()
            .map(|f| k.open(f).expect("inner frame opens").header.seq)
            .collect();
        assert_eq!(seqs, vec![1, 2, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]);
        assert!(
            h.answer(&k, "dash", 41, (20, 22), 0)
                .expect("ok")
                .is_empty()
        );
    }
}
