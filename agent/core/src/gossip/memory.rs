//! An estimate of the memory the machine keeps, for the mesh simulator's "state per node"
//! figure: per-origin tables (de-duplication windows, the host table, descriptors, the
//! broadcast trees) and per-link state, counted from their lengths, capacities and heap strings.
//! An estimate, not an allocator measurement: hash tables are counted as hashbrown lays them
//! out (buckets a power of two, one control byte per bucket), allocator overhead is left out.
//!
//! Not here: deciding anything. Keep it in step when a per-origin structure is added.

use super::hashing::Map;
use super::{Gossip, peer::Peer};
use std::mem::size_of;

/// Bytes held, by part.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    /// Origins in the host table.
    pub origins: usize,
    /// De-duplication and anti-replay windows.
    pub dedup: usize,
    /// The host table.
    pub hosts: usize,
    /// The latest host info and series table frame of every origin, sealed.
    pub descriptors: usize,
    /// The broadcast trees: per origin its lazy links, newest frame (the reverse route of
    /// backfill) and the recent frames kept for grafts.
    pub trees: usize,
    /// Links.
    pub links: usize,
    /// This node's own recent frames (backfill ring).
    pub ring: usize,
}

impl Memory {
    /// Everything.
    pub fn total(&self) -> usize {
        self.per_origin() + self.links + self.ring
    }

    /// What grows with the number of origins.
    pub fn per_origin(&self) -> usize {
        self.dedup + self.hosts + self.descriptors + self.trees
    }
}

/// Bytes of a hash table's buckets for `capacity` entries of `entry` bytes.
pub(crate) fn table_bytes(capacity: usize, entry: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = (capacity.saturating_mul(8) / 7).max(4).next_power_of_two();
    buckets * (entry + 1)
}

fn map_bytes<K, V>(m: &Map<K, V>) -> usize {
    table_bytes(m.capacity(), size_of::<(K, V)>())
}

impl Gossip {
    /// An estimate of the bytes this machine keeps (see [`Memory`]). It walks every origin:
    /// call it for reports, not on the hot path.
    pub fn memory(&self) -> Memory {
        let hosts = map_bytes(&self.hosts)
            + self
                .hosts
                .iter()
                .map(|(k, h)| {
                    k.capacity()
                        + h.name.capacity()
                        + h.version.capacity()
                        + h.os.capacity()
                        + h.tags.capacity() * size_of::<String>()
                        + h.tags.iter().map(String::capacity).sum::<usize>()
                })
                .sum::<usize>();
        let descriptors = map_bytes(&self.descriptors)
            + self
                .descriptors
                .iter()
                .map(|(k, d)| {
                    k.capacity() + d.iter().flatten().map(|(b, _)| b.len()).sum::<usize>()
                })
                .sum::<usize>();
        let links = self
            .peers
            .values()
            .map(|p| {
                size_of::<Peer>()
                    + p.addr.capacity()
                    + 3 * size_of::<usize>()
                    + p.backlog.capacity() * size_of::<bytes::Bytes>()
                    + p.backlog.iter().map(bytes::Bytes::len).sum::<usize>()
            })
            .sum();
        Memory {
            origins: self.hosts.len(),
            dedup: self.dedup.memory(),
            hosts,
            descriptors,
            trees: self.trees.memory(),
            links,
            ring: self.ring.memory(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{GossipConfig, Input, Now};
    use super::*;
    use meshmon_proto::payload::HostInfo;
    use meshmon_proto::{Key, Keyring, Payload};

    #[test]
    fn own_frames_count_in_the_tables_and_the_ring() {
        let ring = Keyring::new(vec![Key::NULL]).expect("ring");
        let mut g = Gossip::new(GossipConfig::new("n0", 1, 8), ring);
        assert_eq!(g.memory().total(), 0);
        let now = Now {
            mono_us: 1_000_000,
            wall_ms: 1_700_000_000_000,
        };
        let info = Payload::HostInfo(HostInfo {
            os: "Debian".into(),
            ..HostInfo::default()
        });
        g.handle(now, Input::Local(info), &mut Vec::new());
        let m = g.memory();
        assert_eq!(m.origins, 1);
        assert!(m.hosts > 0 && m.descriptors > 0, "{m:?}");
        assert!(m.ring >= g.ring_memory() && m.ring > 0);
        assert_eq!(m.total(), m.per_origin() + m.links + m.ring);
        assert_eq!(table_bytes(0, 8), 0);
        assert_eq!(table_bytes(3, 8), 4 * 9, "at least 4 buckets");
        assert_eq!(table_bytes(14, 8), 16 * 9);
    }
}
