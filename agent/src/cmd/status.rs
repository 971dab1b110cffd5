//! `meshmon status` output: a node's hosts and links as a table or JSON.

pub fn status_json(s: &meshmon_proto::payload::Status) -> serde_json::Value {
    let now = crate::net::mesh::wall_ms();
    serde_json::json!({
        "node": s.node,
        "dashboard": s.dashboard,
        "frames_dropped": s.frames_dropped,
        "auth_failures": s.auth_failures,
        "hosts": s.hosts.iter().map(|h| serde_json::json!({
            "host": h.name,
            "status": host_state(h, now),
            "last_seen_ms_ago": now.saturating_sub(h.last_seen_ms),
            "hops": h.hops,
            "frames": h.frames,
            "version": h.version,
            "os": h.os,
            "tags": h.tags,
            "name_conflict": h.name_conflict,
            "clock_offset_ms": h.clock_offset_ms,
        })).collect::<Vec<_>>(),
        "links": s.links.iter().map(|l| serde_json::json!({
            "peer": l.peer, "addr": l.addr, "direction": l.direction, "state": l.state,
            "role": l.role, "rtt_us": l.rtt_us, "frames_in": l.frames_in,
            "frames_out": l.frames_out, "dropped": l.dropped, "auth_failures": l.auth_failures,
            "clock_offset_ms": l.clock_offset_ms,
        })).collect::<Vec<_>>(),
    })
}

/// `up` when the host was heard within 3 of its intervals (at least 5 s), else `down`.
pub fn host_state(h: &meshmon_proto::payload::HostStatus, now_ms: u64) -> &'static str {
    if now_ms.saturating_sub(h.last_seen_ms) <= meshmon_proto::payload::down_after_ms(h.interval_ms)
    {
        "up"
    } else {
        "down"
    }
}

/// What `meshmon status` adds after a host's OS: a duplicate name, this node's clock offset.
pub fn host_marks(h: &meshmon_proto::payload::HostStatus) -> String {
    let mut m = String::new();
    if h.name_conflict {
        m.push_str("  [DUPLICATE NAME: two live hosts]");
    }
    if let Some(o) = h.clock_offset_ms {
        m.push_str(&format!("  [clock {:+.3}s]", o as f64 / 1000.0));
    }
    m
}

pub fn print_status(s: &meshmon_proto::payload::Status) {
    let now = crate::net::mesh::wall_ms();
    println!(
        "node {}  ({} hosts, {} links)",
        s.node,
        s.hosts.len(),
        s.links.len()
    );
    println!(
        "{:<24} {:<6} {:>10} {:>4} {:>8}  OS",
        "HOST", "STATUS", "LAST SEEN", "HOPS", "FRAMES"
    );
    for h in &s.hosts {
        let ago = now.saturating_sub(h.last_seen_ms) as f64 / 1000.0;
        println!(
            "{:<24} {:<6} {:>9.1}s {:>4} {:>8}  {}{}",
            h.name,
            host_state(h, now),
            ago,
            h.hops,
            h.frames,
            h.os,
            host_marks(h)
        );
    }
    println!();
    println!(
        "{:<20} {:<22} {:<4} {:<10} {:>9} {:>9} {:>9} {:>7} {:>5} {:>10}",
        "PEER", "ADDR", "DIR", "STATE", "RTT", "IN", "OUT", "DROPPED", "AUTH!", "CLOCK"
    );
    for l in &s.links {
        let rtt = l
            .rtt_us
            .map_or_else(|| "-".to_owned(), |r| format!("{:.2}ms", r as f64 / 1000.0));
        let clock = l
            .clock_offset_ms
            .map_or_else(|| "-".to_owned(), |o| format!("{:+.3}s", o as f64 / 1000.0));
        println!(
            "{:<20} {:<22} {:<4} {:<10} {:>9} {:>9} {:>9} {:>7} {:>5} {:>10}",
            l.peer,
            l.addr,
            l.direction,
            l.state,
            rtt,
            l.frames_in,
            l.frames_out,
            l.dropped,
            l.auth_failures,
            clock
        );
    }
}
