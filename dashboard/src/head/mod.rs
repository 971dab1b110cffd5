//! The head: what a running dashboard node has received but not yet written to its store
//! file (open chunks, sealed chunks and late samples waiting for the next flush, and hosts'
//! newest sightings), served on a local control endpoint so that `meshmon query` answers
//! within about a second instead of lagging by up to `store.flush_interval`, the way
//! Prometheus answers from its in-memory head.
//!
//! The endpoint is a Unix socket next to the store file (`<store>.sock`, mode 0600). One
//! request per connection, both ways a 4-byte big-endian length and a MessagePack body:
//! [`HeadRequest`] (at most [`MAX_REQUEST`] bytes) and [`HeadReply`] (at most [`MAX_REPLY`]
//! bytes; a head bigger than that is cut and marked `truncated`).
//!
//! # Layout
//! - this file: the request and reply, their framing, and [`Head`], a decoded reply the
//!   reader merges with the file.
//! - [`serve`]: the node's endpoint task.
//! - [`client`]: the query side: ask, with short timeouts; no answer means "read the file".
//!
//! Not here: building the reply from the writer's memory (`writer::head`, on the writer
//! thread) or merging it into query results ([`crate::reader`]).

pub mod client;
pub mod serve;

use crate::codec::chunk;
use meshmon_proto::SeriesKey;
use meshmon_proto::payload::HostInfo;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// Version of the request and reply; a node answers a request of another version with an
/// error.
pub const HEAD_VERSION: u32 = 1;
/// Largest request body, bytes.
pub const MAX_REQUEST: usize = 64 << 10;
/// Largest reply body, bytes: the writer stops adding series beyond it and marks the reply
/// `truncated` (the series it left out are read from the file only).
pub const MAX_REPLY: usize = 64 << 20;

/// The control endpoint of the node whose store is `db`: `<db>.sock`.
pub fn socket_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".sock");
    PathBuf::from(s)
}

/// What a query asks the node for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HeadRequest {
    /// [`HEAD_VERSION`].
    pub version: u32,
    /// Series of this host only (`None`: every host).
    pub host: Option<String>,
    /// Series with one of these metric names only (empty: every name).
    pub names: Vec<String>,
    /// Only data of raw windows overlapping `[since_ms, until_ms]`.
    pub since_ms: i64,
    /// See `since_ms`.
    pub until_ms: i64,
    /// Whether to send no series at all (a host-table query).
    pub no_series: bool,
    /// Whether to send the hosts' newest sightings.
    pub hosts: bool,
    /// Whether to list every series of `host` too (data or not, any name): a query that
    /// finds no series names the closest ones the host has.
    pub keys: bool,
}

/// A host as the writer knows it now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HeadHost {
    /// Host name.
    pub name: String,
    /// First heard, ms since the epoch.
    pub first_seen_ms: i64,
    /// Last heard, ms since the epoch.
    pub last_seen_ms: i64,
    /// Hop distance when last heard.
    pub hops: u8,
    /// Host info not yet written to the file.
    pub info: Option<HostInfo>,
}

/// The unwritten data of one series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HeadSeries {
    /// Host name.
    pub host: String,
    /// Metric name.
    pub name: String,
    /// Labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Chunks in the store's chunk format (the open chunk, sealed chunks).
    pub chunks: Vec<serde_bytes::ByteBuf>,
    /// Loose samples (out of order in the open chunk, late for written windows).
    pub samples: Vec<(i64, f64)>,
}

/// The node's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct HeadReply {
    /// [`HEAD_VERSION`].
    pub version: u32,
    /// Set when the node could not answer (the request is bad, the writer is busy).
    pub error: Option<String>,
    /// Hosts, when asked for.
    pub hosts: Vec<HeadHost>,
    /// Series with unwritten data in the range.
    pub series: Vec<HeadSeries>,
    /// Every series of the requested host, when asked for: (name, labels).
    pub keys: Vec<(String, Vec<(String, String)>)>,
    /// The reply was cut at [`MAX_REPLY`]: some unwritten data is missing from it.
    pub truncated: bool,
}

impl HeadReply {
    /// An error reply.
    pub fn error(msg: impl Into<String>) -> HeadReply {
        HeadReply {
            version: HEAD_VERSION,
            error: Some(msg.into()),
            ..HeadReply::default()
        }
    }

    /// The framed reply: length, then MessagePack.
    pub fn frame(&self) -> Vec<u8> {
        frame(self)
    }
}

/// `value` as MessagePack behind a 4-byte big-endian length.
pub(crate) fn frame<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![0u8; 4];
    // Writing into a Vec fails only for types serde cannot map, which ours are not.
    if rmp_serde::encode::write_named(&mut out, value).is_err() {
        out.truncate(4);
    }
    let n = u32::try_from(out.len() - 4).unwrap_or(u32::MAX);
    out[..4].copy_from_slice(&n.to_be_bytes());
    out
}

/// The length in a frame's 4-byte prefix, refused above `max`.
pub(crate) fn frame_len(prefix: [u8; 4], max: usize) -> Result<usize, String> {
    let n = u32::from_be_bytes(prefix) as usize;
    if n > max {
        return Err(format!("message of {n} bytes is over the limit of {max}"));
    }
    Ok(n)
}

/// A decoded reply, indexed for the reader: per host, per series, its unwritten samples in
/// time order.
#[derive(Debug, Clone, Default)]
pub struct Head {
    series: HashMap<String, BTreeMap<SeriesKey, Vec<(i64, f64)>>>,
    hosts: Vec<HeadHost>,
    /// Some unwritten data is missing (the reply was cut).
    pub truncated: bool,
}

impl Head {
    /// Decodes a reply to a request for `host` (its `keys` are that host's). Fails on a
    /// chunk that does not decode.
    pub fn from_reply(reply: HeadReply, host: Option<&str>) -> Result<Head, String> {
        let mut head = Head {
            hosts: reply.hosts,
            truncated: reply.truncated,
            ..Head::default()
        };
        for s in reply.series {
            let mut points = Vec::new();
            for c in &s.chunks {
                let got = chunk::decode(c).map_err(|e| format!("a chunk of the head: {e}"))?;
                points = chunk::merge(&points, &got);
            }
            points = chunk::merge(&points, &s.samples);
            let key = SeriesKey {
                name: s.name,
                labels: s.labels,
            };
            let per_host = head.series.entry(s.host).or_default();
            let have = per_host.entry(key).or_default();
            *have = chunk::merge(have, &points);
        }
        if let Some(host) = host
            && !reply.keys.is_empty()
        {
            let per_host = head.series.entry(host.to_owned()).or_default();
            for (name, labels) in reply.keys {
                per_host.entry(SeriesKey { name, labels }).or_default();
            }
        }
        Ok(head)
    }

    /// The unwritten samples of `host`'s series `key`, in time order.
    pub fn samples(&self, host: &str, key: &SeriesKey) -> &[(i64, f64)] {
        self.series
            .get(host)
            .and_then(|s| s.get(key))
            .map_or(&[], Vec::as_slice)
    }

    /// The series of `host` with unwritten data (and every series of it, when asked for).
    pub fn keys<'a>(&'a self, host: &str) -> impl Iterator<Item = &'a SeriesKey> + 'a {
        self.series.get(host).into_iter().flat_map(|s| s.keys())
    }

    /// Every (host, series) with unwritten data.
    pub fn all(&self) -> impl Iterator<Item = (&str, &SeriesKey)> {
        self.series
            .iter()
            .flat_map(|(h, s)| s.keys().map(move |k| (h.as_str(), k)))
    }

    /// Whether the node knows `host` (heard from, or has series of it).
    pub fn knows_host(&self, host: &str) -> bool {
        self.series.contains_key(host) || self.hosts.iter().any(|h| h.name == host)
    }

    /// The hosts' newest sightings (when asked for).
    pub fn hosts(&self) -> &[HeadHost] {
        &self.hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_survives_its_framing_and_decodes_into_merged_samples() {
        let reply = HeadReply {
            version: HEAD_VERSION,
            series: vec![HeadSeries {
                host: "a".into(),
                name: "cpu.usage_pct".into(),
                labels: vec![],
                chunks: vec![serde_bytes::ByteBuf::from(chunk::encode(&[
                    (1000, 1.0),
                    (3000, 3.0),
                ]))],
                samples: vec![(2000, 2.0), (3000, 9.0)],
            }],
            ..HeadReply::default()
        };
        let bytes = reply.frame();
        let n = frame_len(bytes[..4].try_into().expect("4 bytes"), MAX_REPLY).expect("len");
        assert_eq!(n, bytes.len() - 4);
        let back: HeadReply = rmp_serde::from_slice(&bytes[4..]).expect("decode");
        assert_eq!(back, reply);
        let head = Head::from_reply(back, None).expect("head");
        let key = SeriesKey {
            name: "cpu.usage_pct".into(),
            labels: vec![],
        };
        assert_eq!(
            head.samples("a", &key),
            &[(1000, 1.0), (2000, 2.0), (3000, 3.0)]
        );
        assert!(head.knows_host("a") && !head.knows_host("b"));
        assert!(frame_len(u32::MAX.to_be_bytes(), MAX_REPLY).is_err());
    }

    #[test]
    fn a_bad_chunk_is_an_error_not_a_panic() {
        let reply = HeadReply {
            series: vec![HeadSeries {
                host: "a".into(),
                name: "x".into(),
                chunks: vec![serde_bytes::ByteBuf::from(vec![0xff, 0x01, 0x02])],
                ..HeadSeries::default()
            }],
            ..HeadReply::default()
        };
        assert!(Head::from_reply(reply, None).is_err());
    }
}
