//! The payloads, one per [`Kind`], encoded as MessagePack maps with named fields
//! (`rmp_serde::to_vec_named`). Missing optional fields take their defaults and unknown fields
//! are ignored, so fields can be added without a new protocol version.
//!
//! Not here: what a node does with them (gossip), or how samples are delta-coded
//! ([`crate::samples`]).

use crate::error::{DecodeError, ProtoError};
use crate::frame::Kind;
use crate::num::Num;
use serde::{Deserialize, Serialize};
/// Byte strings in payloads (MessagePack bin).
pub use serde_bytes::ByteBuf;

/// What the sender of a [`Hello`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A mesh node: forwards gossip.
    #[default]
    Node,
    /// A viewer (the TUI, `meshmon status`): receives every frame the node accepts, sends none.
    Viewer,
}

/// Link: sent by each side when a link comes up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Hello {
    /// Sender's node name (viewers use any name).
    pub name: String,
    /// Sender's boot id.
    pub boot_id: u64,
    /// Node or viewer.
    pub role: Role,
    /// Sender's agent version.
    pub version: String,
    /// How many frames the sender accepts before it acknowledges (credit window).
    pub window: u32,
    /// A fresh random number of the sender for this link (never 0).
    pub nonce: u64,
    /// The other side's `nonce` from its Hello, or 0 in the very first Hello of a link. A
    /// side accepts the link only when the other echoes its nonce, so a recorded Hello
    /// replayed on a new connection opens nothing.
    pub echo: u64,
}

/// Link: liveness, credit and round-trip time, sent about once a second and whenever the
/// receiver has consumed a quarter of the window since its last acknowledgement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Heartbeat {
    /// Number of frames received from the peer on this link so far.
    pub acked: u64,
    /// Sender's monotonic clock in microseconds when sent.
    pub sent_us: u64,
    /// The `sent_us` of the last heartbeat received from the peer (0 if none), for RTT.
    pub echo_us: u64,
    /// How long the sender held `echo_us` before sending this, in microseconds: the peer's
    /// round-trip time is `now - echo_us - held_us`.
    pub held_us: u64,
    /// Epidemic broadcast trees: the newest live frame the sender holds of each origin whose
    /// frames it no longer pushes on this link (lazy push, "IHAVE"), batched per heartbeat.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub have: Vec<Have>,
    /// Origins whose frames the receiver should stop pushing to the sender (it got them twice).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prune: Vec<String>,
    /// Origins whose frames the receiver should push to the sender again, starting with the
    /// frames in the given range, which the sender misses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub graft: Vec<Graft>,
    /// The hop count each frame of `have` would carry if the sender pushed it on this link
    /// (0 for the sender's own frames), index by index. Empty from senders that predate it;
    /// a receiver ignores it unless it is as long as `have`. It lets the receiver graft a
    /// shorter path than its tree's (Plumtree's optimisation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub have_hops: Vec<u8>,
}

/// An announcement in a [`Heartbeat`]: `[origin, boot_id, seq]`, a MessagePack array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Have(pub String, pub u64, pub u64);

/// A graft in a [`Heartbeat`]: `[origin, boot_id, from_seq, to_seq]`, a MessagePack array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graft(pub String, pub u64, pub u64, pub u64);

/// How long a host may stay silent before it counts as down: 3 of its collection intervals,
/// and at least 5 s. The one definition every view of host state uses (status, store, TUI,
/// Prometheus).
pub fn down_after_ms(interval_ms: u64) -> u64 {
    interval_ms.saturating_mul(3).max(5_000)
}

/// One host as a node sees it (in [`Status`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HostStatus {
    /// Host (origin) name.
    pub name: String,
    /// Current boot id of the host.
    pub boot_id: u64,
    /// When the last frame of the host arrived, ms since the epoch (receiver's clock).
    pub last_seen_ms: u64,
    /// Hop distance of the last frame (1 = direct neighbour, 0 = this node).
    pub hops: u8,
    /// Frames accepted from this host.
    pub frames: u64,
    /// Agent version from its host info.
    pub version: String,
    /// Operating system from its host info.
    pub os: String,
    /// Tags from its host info.
    pub tags: Vec<String>,
    /// Collection interval from its host info, ms.
    pub interval_ms: u64,
    /// Whether the host has the dashboard role.
    pub dashboard: bool,
    /// Two hosts use this name: frames of another boot of it are live at the same time. The
    /// node keeps the higher boot's frames (PROTOCOL.md section 6).
    pub name_conflict: bool,
    /// For the node's own row: its clock against the median of its neighbours', ms (positive:
    /// ahead); `None` elsewhere or before it was measured.
    pub clock_offset_ms: Option<i64>,
}

/// One link of a node (in [`Status`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct LinkStatus {
    /// Peer node name once known from its hello, else empty.
    pub peer: String,
    /// Remote address (configured neighbour, or the accepted connection's address).
    pub addr: String,
    /// `out` (this node dials) or `in` (accepted).
    pub direction: String,
    /// `up`, `connecting` or `down`.
    pub state: String,
    /// `node` or `viewer`.
    pub role: String,
    /// Last measured round-trip time in microseconds.
    pub rtt_us: Option<u64>,
    /// Frames received on this link.
    pub frames_in: u64,
    /// Frames sent on this link.
    pub frames_out: u64,
    /// Frames not sent to this peer (no credit: the peer is slow or stalled).
    pub dropped: u64,
    /// Frames from this peer that failed authentication.
    pub auth_failures: u64,
    /// The peer's clock minus this node's, ms, estimated from heartbeats (section 5.3);
    /// `None` until measured.
    pub clock_offset_ms: Option<i64>,
}

/// Link, node to viewer: the node's view of the mesh, sent about once a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Status {
    /// The node's name.
    pub node: String,
    /// Every host the node has heard from.
    pub hosts: Vec<HostStatus>,
    /// The node's links.
    pub links: Vec<LinkStatus>,
    /// Frames dropped by the node (malformed, rate-limited, no credit, queue full).
    pub frames_dropped: u64,
    /// Frames that failed authentication, all links together.
    pub auth_failures: u64,
    /// Whether the node has the dashboard role (a store).
    pub dashboard: bool,
    /// A node with many hosts sends its status in several frames (a frame is at most 64 KiB):
    /// all parts of one status share `epoch`; part 0 carries the links and counters, every
    /// part a slice of the hosts. `parts` 0 or 1 means a single frame.
    pub epoch: u64,
    /// This frame's index, from 0.
    pub part: u32,
    /// Number of frames of this status.
    pub parts: u32,
}

/// Gossip: what a host is. Sent at start, on change and every 30 s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HostInfo {
    /// Operating system name and version, e.g. `Debian GNU/Linux 13`.
    pub os: String,
    /// Kernel version.
    pub kernel: String,
    /// CPU architecture.
    pub arch: String,
    /// meshmon version.
    pub version: String,
    /// Tags from the config.
    pub tags: Vec<String>,
    /// Collection interval in ms.
    pub interval_ms: u64,
    /// Boot time of the machine, seconds since the epoch.
    pub boot_time_s: u64,
    /// Logical CPUs.
    pub cores: u32,
    /// Whether the node has the dashboard role.
    pub dashboard: bool,
}

/// One series of a [`SeriesTable`]: name and sorted label pairs.
pub type WireSeries = (String, Vec<(String, String)>);

/// Gossip: the list of series that [`Samples`] indexes refer to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SeriesTable {
    /// Table id, unique within one boot of the origin.
    #[serde(rename = "t")]
    pub table: u32,
    /// The series in index order.
    #[serde(rename = "s")]
    pub series: Vec<WireSeries>,
}

/// Gossip: metric values at the frame's timestamp.
///
/// A key frame (`k` true) carries every series of table `t` positionally in `v` (nil where a
/// series has no value). Otherwise `c` carries `[index, value, index, value, ...]` for the
/// series whose value changed since sample frame `n - 1`; the others are unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Samples {
    /// Table id the indexes refer to.
    pub t: u32,
    /// Sample frame number within the boot, 1, 2, 3...
    pub n: u64,
    /// Key frame: `v` holds every value.
    pub k: bool,
    /// Key frame values, positional.
    pub v: Vec<Option<Num>>,
    /// Delta: alternating index and value.
    pub c: Vec<Num>,
}

/// Backfill: the frame's origin (a dashboard node) asks `target` to re-send the frames of
/// boot `boot_id` with sequence numbers `from_seq..=to_seq`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct BackfillRequest {
    /// The origin whose frames are missing.
    pub target: String,
    /// Its boot.
    pub boot_id: u64,
    /// First missing sequence number.
    pub from_seq: u64,
    /// Last missing sequence number.
    pub to_seq: u64,
}

/// Backfill: the frame's origin re-sends some of its own earlier frames, unchanged (sealed as
/// they were), to node `to`. Starts with the series table and key frame the deltas need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Replay {
    /// The node that asked.
    pub to: String,
    /// Original frames, in sequence order.
    pub frames: Vec<serde_bytes::ByteBuf>,
    /// Whether this is the last replay answering the request.
    pub last: bool,
}

/// A silence as dashboard nodes exchange it: no notifications for alerts of rules matching
/// `rule` on hosts matching `host` (globs) until `until_ms`. A silence is identified by `id`;
/// of two versions of one silence, the one with the larger `updated_ms` wins (removal is a
/// version with `removed` true).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct SilenceWire {
    /// Unique id (`<node>-<ms>-<random>`).
    pub id: String,
    /// Glob on rule names.
    pub rule: String,
    /// Glob on host names.
    pub host: String,
    /// Created, ms since the epoch.
    pub created_ms: u64,
    /// Ends, ms since the epoch.
    pub until_ms: u64,
    /// Who created it (free text).
    pub by: String,
    /// Removed before its end.
    pub removed: bool,
    /// Version: ms since the epoch of the last change.
    pub updated_ms: u64,
    /// A one-off maintenance window rather than a silence: matching alerts are recorded but
    /// not notified, and host-down does not fire (absent: false).
    pub maintenance: bool,
}

/// Alerts: a dashboard node's account of notifications, sent when it delivers one and every few
/// seconds (PROTOCOL.md section 10). Dashboard nodes use it so that each alert transition is
/// notified exactly once however many dashboard nodes evaluate the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct AlertSync {
    /// Notification ids this node delivered recently (`<event key>#<target>`).
    pub sent: Vec<String>,
    /// Alert ids (identities) acknowledged by a user, of alerts still active.
    pub acks: Vec<String>,
    /// Silences not yet ended.
    pub silences: Vec<SilenceWire>,
}

/// A decoded payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Hello(Hello),
    Heartbeat(Heartbeat),
    Status(Status),
    HostInfo(HostInfo),
    Samples(Samples),
    SeriesTable(SeriesTable),
    BackfillRequest(BackfillRequest),
    Replay(Replay),
    AlertSync(AlertSync),
}

impl Payload {
    /// The frame kind that carries this payload.
    pub fn kind(&self) -> Kind {
        match self {
            Payload::Hello(_) => Kind::Hello,
            Payload::Heartbeat(_) => Kind::Heartbeat,
            Payload::Status(_) => Kind::Status,
            Payload::HostInfo(_) => Kind::HostInfo,
            Payload::Samples(_) => Kind::Samples,
            Payload::SeriesTable(_) => Kind::SeriesTable,
            Payload::BackfillRequest(_) => Kind::BackfillRequest,
            Payload::Replay(_) => Kind::Replay,
            Payload::AlertSync(_) => Kind::AlertSync,
        }
    }

    /// Whether the kind is link-local (never forwarded).
    pub fn is_link(&self) -> bool {
        matches!(self.kind(), Kind::Hello | Kind::Heartbeat | Kind::Status)
    }

    /// MessagePack encoding (maps with field names).
    pub fn encode(&self) -> Result<Vec<u8>, ProtoError> {
        let r = match self {
            Payload::Hello(p) => rmp_serde::to_vec_named(p),
            Payload::Heartbeat(p) => rmp_serde::to_vec_named(p),
            Payload::Status(p) => rmp_serde::to_vec_named(p),
            Payload::HostInfo(p) => rmp_serde::to_vec_named(p),
            Payload::Samples(p) => rmp_serde::to_vec_named(p),
            Payload::SeriesTable(p) => rmp_serde::to_vec_named(p),
            Payload::BackfillRequest(p) => rmp_serde::to_vec_named(p),
            Payload::Replay(p) => rmp_serde::to_vec_named(p),
            Payload::AlertSync(p) => rmp_serde::to_vec_named(p),
        };
        r.map_err(|e| ProtoError::Encode(e.to_string()))
    }

    /// Decodes the plaintext of an opened frame of kind `kind`. Never panics.
    pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Payload, DecodeError> {
        fn de<'a, T: Deserialize<'a>>(b: &'a [u8]) -> Result<T, DecodeError> {
            rmp_serde::from_slice(b).map_err(|e| DecodeError::Payload(e.to_string()))
        }
        Ok(match kind {
            Kind::Hello => Payload::Hello(de(bytes)?),
            Kind::Heartbeat => Payload::Heartbeat(de(bytes)?),
            Kind::Status => Payload::Status(de(bytes)?),
            Kind::HostInfo => Payload::HostInfo(de(bytes)?),
            Kind::Samples => Payload::Samples(de(bytes)?),
            Kind::SeriesTable => Payload::SeriesTable(de(bytes)?),
            Kind::BackfillRequest => Payload::BackfillRequest(de(bytes)?),
            Kind::Replay => Payload::Replay(de(bytes)?),
            Kind::AlertSync => Payload::AlertSync(de(bytes)?),
            Kind::Other(b) => return Err(DecodeError::UnknownKind(b)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_after_three_intervals_and_at_least_five_seconds() {
        assert_eq!(down_after_ms(0), 5_000);
        assert_eq!(down_after_ms(1_000), 5_000);
        assert_eq!(down_after_ms(10_000), 30_000);
        assert_eq!(down_after_ms(u64::MAX), u64::MAX);
    }

    #[test]
    fn every_payload_round_trips() {
        let all = vec![
            Payload::Hello(Hello {
                name: "a".into(),
                boot_id: 3,
                role: Role::Viewer,
                version: "0.1.0".into(),
                window: 1024,
                nonce: 7,
                echo: 9,
            }),
            Payload::Heartbeat(Heartbeat {
                acked: 9,
                sent_us: 1,
                echo_us: 2,
                held_us: 3,
                have: vec![Have("o".into(), 4, 5)],
                prune: vec!["p".into()],
                graft: vec![Graft("g".into(), 6, 7, 8)],
                have_hops: vec![2],
            }),
            Payload::Status(Status {
                node: "n".into(),
                hosts: vec![HostStatus {
                    name: "h".into(),
                    ..Default::default()
                }],
                links: vec![LinkStatus {
                    rtt_us: Some(80),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            Payload::HostInfo(HostInfo {
                os: "Debian".into(),
                tags: vec!["gpu".into()],
                ..Default::default()
            }),
            Payload::Samples(Samples {
                t: 1,
                n: 2,
                k: true,
                v: vec![Some(Num(1.0)), None],
                c: vec![],
            }),
            Payload::SeriesTable(SeriesTable {
                table: 1,
                series: vec![("disk.used_pct".into(), vec![("mount".into(), "/".into())])],
            }),
            Payload::BackfillRequest(BackfillRequest {
                target: "a".into(),
                boot_id: 1,
                from_seq: 5,
                to_seq: 9,
            }),
            Payload::Replay(Replay {
                to: "d".into(),
                frames: vec![serde_bytes::ByteBuf::from(vec![1u8, 2, 3])],
                last: true,
            }),
            Payload::AlertSync(AlertSync {
                sent: vec!["cpu-hot\u{1f}a\u{1f}\u{1f}5:firing#slack".into()],
                acks: vec!["x".into()],
                silences: vec![SilenceWire {
                    id: "d-1-2".into(),
                    rule: "*".into(),
                    host: "web*".into(),
                    created_ms: 1,
                    until_ms: 2,
                    by: "ops".into(),
                    removed: false,
                    updated_ms: 1,
                    maintenance: true,
                }],
            }),
        ];
        for p in all {
            let bytes = p.encode().expect("encode");
            assert_eq!(Payload::decode(p.kind(), &bytes), Ok(p));
        }
    }

    #[test]
    fn unknown_fields_are_ignored_and_garbage_is_an_error() {
        #[derive(Serialize)]
        struct Future {
            name: String,
            extra: u32,
        }
        let bytes = rmp_serde::to_vec_named(&Future {
            name: "x".into(),
            extra: 1,
        })
        .expect("encode");
        let Ok(Payload::Hello(h)) = Payload::decode(Kind::Hello, &bytes) else {
            panic!("hello with extra field must decode");
        };
        assert_eq!(h.name, "x");
        assert!(Payload::decode(Kind::Samples, &[0xc1]).is_err());
        assert_eq!(
            Payload::decode(Kind::Other(0x77), b""),
            Err(DecodeError::UnknownKind(0x77))
        );
    }
}
