//! The writer's answer to a head request: everything in its memory the store file does not
//! have yet (dirty open chunks, sealed chunks and late samples waiting for the next flush,
//! and the hosts' newest sightings), for the series and range asked for, encoded on the
//! writer thread so the node's runtime only copies bytes.
//!
//! Not here: the endpoint ([`crate::head::serve`]) or the merge ([`crate::reader`]).

use super::mem::Mem;
use crate::head::{HEAD_VERSION, HeadHost, HeadReply, HeadRequest, HeadSeries, MAX_REPLY};
use crate::layout::RAW_WINDOW_MS;
use serde_bytes::ByteBuf;
use std::collections::HashMap;

/// Room kept in [`MAX_REPLY`] for framing and the hosts.
const SLACK: usize = 1 << 20;

/// The framed reply to `req` from `mem`.
pub(crate) fn answer(mem: &Mem, req: &HeadRequest) -> Vec<u8> {
    build(mem, req).frame()
}

pub(crate) fn build(mem: &Mem, req: &HeadRequest) -> HeadReply {
    let mut reply = HeadReply {
        version: HEAD_VERSION,
        ..HeadReply::default()
    };
    let mut size = 0usize;
    if req.hosts {
        for h in mem.hosts.iter().filter(|h| h.last_seen_ms > i64::MIN) {
            size += h.name.len() + 32;
            reply.hosts.push(HeadHost {
                name: h.name.clone(),
                first_seen_ms: h.first_seen_ms,
                last_seen_ms: h.last_seen_ms,
                hops: h.hops,
                info: h.info.clone(),
            });
        }
    }
    if req.no_series {
        return reply;
    }
    if req.keys
        && let Some(&h) = req.host.as_ref().and_then(|h| mem.host_idx.get(h))
    {
        for &idx in mem.hosts[h].series.values() {
            let k = &mem.series[idx].key;
            size += k.name.len() + 16;
            reply.keys.push((k.name.clone(), k.labels.clone()));
        }
    }
    let overlaps =
        |w: i64| w * RAW_WINDOW_MS <= req.until_ms && (w + 1) * RAW_WINDOW_MS > req.since_ms;
    let wanted = |idx: usize| {
        let s = &mem.series[idx];
        req.host
            .as_ref()
            .is_none_or(|h| mem.hosts[s.host].name == *h)
            && (req.names.is_empty() || req.names.contains(&s.key.name))
    };
    // Per series index, sorted by it at the end.
    let mut out: HashMap<usize, HeadSeries> = HashMap::new();
    let full = |size: usize| size > MAX_REPLY - SLACK;
    // Open chunks first: under the size cap, the newest data is what a query misses least
    // gladly. One host's series, or all.
    let candidates: Box<dyn Iterator<Item = usize>> = match &req.host {
        Some(h) => {
            let mut of_host: Vec<usize> = mem
                .host_idx
                .get(h)
                .map(|&i| mem.hosts[i].series.values().copied().collect())
                .unwrap_or_default();
            of_host.sort_unstable();
            Box::new(of_host.into_iter())
        }
        None => Box::new(0..mem.series.len()),
    };
    for idx in candidates {
        let open = mem.series[idx].open.as_ref();
        let Some(o) = open.filter(|o| o.dirty && overlaps(o.window)) else {
            continue;
        };
        if !wanted(idx) {
            continue;
        }
        if full(size) {
            reply.truncated = true;
            break;
        }
        let blob = o.enc.to_blob();
        size += blob.len() + o.ooo.len() * 16;
        let h = slot(mem, &mut out, idx, &mut size);
        h.chunks.push(ByteBuf::from(blob));
        h.samples.extend_from_slice(&o.ooo);
    }
    for s in &mem.sealed {
        if !overlaps(s.window) || !wanted(s.series) {
            continue;
        }
        if full(size) {
            reply.truncated = true;
            break;
        }
        size += s.blob.len();
        slot(mem, &mut out, s.series, &mut size)
            .chunks
            .push(ByteBuf::from(s.blob.clone()));
    }
    for (&(idx, w), samples) in &mem.late {
        if !overlaps(w) || !wanted(idx) {
            continue;
        }
        if full(size) {
            reply.truncated = true;
            break;
        }
        size += samples.len() * 16;
        slot(mem, &mut out, idx, &mut size)
            .samples
            .extend_from_slice(samples);
    }
    let mut series: Vec<(usize, HeadSeries)> = out.into_iter().collect();
    series.sort_by_key(|(i, _)| *i);
    reply.series = series.into_iter().map(|(_, s)| s).collect();
    reply
}

/// The reply's entry of series `idx`, made on first use (its size added to `size`).
fn slot<'a>(
    mem: &Mem,
    out: &'a mut HashMap<usize, HeadSeries>,
    idx: usize,
    size: &mut usize,
) -> &'a mut HeadSeries {
    out.entry(idx).or_insert_with(|| {
        let s = &mem.series[idx];
        let host = &mem.hosts[s.host].name;
        *size += s.key.name.len() + host.len() + 16;
        HeadSeries {
            host: host.clone(),
            name: s.key.name.clone(),
            labels: s.key.labels.clone(),
            ..HeadSeries::default()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::Head;
    use crate::writer::{Sample, WriterCounters};
    use meshmon_proto::SeriesKey;
    use meshmon_proto::metrics::Metric;

    fn sample(host: &str, m: Metric, ts: i64, v: f64) -> Sample {
        Sample {
            host: host.into(),
            series: SeriesKey::new(m),
            ts_ms: ts,
            value: v,
        }
    }

    #[test]
    fn the_head_holds_what_is_unwritten_for_the_host_names_and_range_asked() {
        let c = WriterCounters::default();
        let mut m = Mem {
            backlog_cap: 1 << 20,
            retention_ms: 7 * 86_400_000,
            ..Mem::default()
        };
        let t0 = 1_700_000_400_000; // a window start
        let now = t0 + 2 * RAW_WINDOW_MS;
        m.ingest(
            vec![
                sample("a", Metric::CpuUsagePct, t0, 1.0),
                sample("a", Metric::CpuUsagePct, t0 + RAW_WINDOW_MS, 2.0),
                sample("a", Metric::CpuUsagePct, t0 + RAW_WINDOW_MS + 2000, 4.0),
                sample("a", Metric::CpuUsagePct, t0 + RAW_WINDOW_MS + 1000, 3.0),
                sample("a", Metric::MemUsedPct, t0 + RAW_WINDOW_MS, 50.0),
                sample("b", Metric::CpuUsagePct, t0 + RAW_WINDOW_MS, 7.0),
            ],
            now,
            &c,
        );
        let req = HeadRequest {
            version: HEAD_VERSION,
            host: Some("a".into()),
            names: vec!["cpu.usage_pct".into()],
            since_ms: 0,
            until_ms: now,
            hosts: true,
            no_series: false,
            keys: true,
        };
        let reply = build(&m, &req);
        assert_eq!(reply.hosts.len(), 2);
        assert_eq!(reply.series.len(), 1, "one host, one name");
        assert_eq!(reply.keys.len(), 2, "every series of the host");
        let head = Head::from_reply(reply, Some("a")).expect("decodes");
        let key = SeriesKey::new(Metric::CpuUsagePct);
        assert_eq!(
            head.samples("a", &key),
            &[
                (t0, 1.0),
                (t0 + RAW_WINDOW_MS, 2.0),
                (t0 + RAW_WINDOW_MS + 1000, 3.0),
                (t0 + RAW_WINDOW_MS + 2000, 4.0)
            ],
            "the sealed chunk, the open chunk and its out-of-order sample"
        );
        // Only the open window: the sealed chunk is left out.
        let recent = HeadRequest {
            since_ms: t0 + RAW_WINDOW_MS,
            ..req.clone()
        };
        let head = Head::from_reply(build(&m, &recent), Some("a")).expect("decodes");
        assert_eq!(head.samples("a", &key).len(), 3);
        // Written open chunks are the file's: not sent again.
        for s in &mut m.series {
            if let Some(o) = &mut s.open {
                o.dirty = false;
            }
        }
        m.sealed.clear();
        assert!(build(&m, &req).series.is_empty());
    }
}
