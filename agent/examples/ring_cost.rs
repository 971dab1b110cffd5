//! Memory of an agent's backfill ring: runs the real collector and sample encoder through 15
//! minutes of 1 s frames (with a fake clock, so it takes seconds) and prints what the ring
//! holds. `cargo run --release -p meshmon-agent --example ring_cost`

use meshmon_agent::collect::{CollectOptions, Collector};
use meshmon_agent::gossip::{Gossip, GossipConfig, Input, Now};
use meshmon_proto::samples::SampleEncoder;
use meshmon_proto::{Key, Keyring, Payload};
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let keyring = Keyring::new(vec![Key::generate()?])?;
    let mut g = Gossip::new(GossipConfig::new("ring-cost", 1, 8), keyring);
    let mut c = Collector::new(CollectOptions {
        interval: Duration::from_secs(1),
        ..CollectOptions::default()
    })?;
    // One real reading a full interval after the first, then values that evolve each
    // simulated second the way a host's do: fractions drift, totals stay.
    std::thread::sleep(Duration::from_secs(1));
    let mut values = c.collect();
    let info = c.host_info();
    let series = values.len();
    let mut enc = SampleEncoder::new();
    let mut out = Vec::new();
    let start_ms = 1_700_000_000_000u64;
    for s in 0..(15 * 60u64) {
        let now = Now {
            mono_us: s * 1_000_000,
            wall_ms: start_ms + s * 1000,
        };
        if s % 30 == 0 {
            g.handle(now, Input::Local(Payload::HostInfo(info.clone())), &mut out);
        }
        for (i, (_, v)) in values.iter_mut().enumerate() {
            if v.fract() != 0.0 || (i + s as usize).is_multiple_of(3) {
                *v += ((s * 31 + i as u64) % 7) as f64 * 0.37 - 1.0;
            }
        }
        for p in enc.encode(&values) {
            g.handle(now, Input::Local(p), &mut out);
        }
        g.handle(now, Input::Tick, &mut out);
        out.clear();
    }
    println!(
        "| ring window | series | frames held | bytes held (frames + index) | per frame |\n|---|---|---|---|---|\n| 15 min at 1 s | {series} | {} | {:.0} KiB | {:.0} B |",
        g.ring_len(),
        g.ring_memory() as f64 / 1024.0,
        g.ring_memory() as f64 / g.ring_len().max(1) as f64
    );
    Ok(())
}
