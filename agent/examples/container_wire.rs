//! What the container series add to a host's wire traffic, measured from encoded frames:
//! every second the real core collector and the real container collector (reading an engine
//! socket and the cgroups) run, and two sample encoders, one fed the core values alone and one
//! fed core and container values, encode them as the agent does (series table, key frames,
//! deltas); the MessagePack payload bytes of both are summed. With `--synthetic N` the
//! container values are N made-up containers whose every value changes every second (the
//! worst case for the delta encoding) instead of the collector's.
//!
//! Prints one table row: containers, container series, payload bytes/s core alone, core and
//! containers, the difference, and the part of it that is series tables (re-sent every 30
//! frames and whenever the set of series changes). `scripts/bench_containers.sh` starts the Podman containers.
//!
//! Usage: `container_wire [--socket PATH] [--seconds N] [--synthetic N]`

use meshmon_agent::collect::containers::{self, Containers, Options, cgroup::Roots};
use meshmon_agent::collect::{CollectOptions, Collector, Sample};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use meshmon_proto::samples::SampleEncoder;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Payload bytes of one interval: (all, of which series tables).
fn bytes(enc: &mut SampleEncoder, values: &[Sample]) -> anyhow::Result<(usize, usize)> {
    let (mut n, mut table) = (0, 0);
    for p in enc.encode(values) {
        let len = p.encode()?.len();
        n += len;
        if matches!(p, meshmon_proto::Payload::SeriesTable(_)) {
            table += len;
        }
    }
    Ok((n, table))
}

/// `n` containers whose every value changes each call (`tick`).
fn synthetic(n: usize, tick: u64) -> Vec<Sample> {
    let mut out = Vec::new();
    for c in 0..n {
        let name = format!("service-{c:02}");
        let k = |m| SeriesKey::labelled(m, name.clone());
        let x = (tick * 7919 + c as u64 * 104_729) as f64;
        out.push((k(Metric::ContainerRunning), 1.0));
        let labels = vec![
            ("container".to_owned(), name.clone()),
            (
                "image".to_owned(),
                format!("registry.example.com/team/app-{c}:1.2.3"),
            ),
            ("state".to_owned(), "running".to_owned()),
        ];
        out.push((SeriesKey::custom(Metric::ContainerInfo.name(), labels), 1.0));
        out.push((k(Metric::ContainerRestarts), 0.0));
        out.push((k(Metric::ContainerCpuPct), 1.0 + (x % 997.0) / 100.0));
        out.push((k(Metric::ContainerMemBytes), 2e8 + (x % 65_536.0) * 4096.0));
        out.push((k(Metric::ContainerMemLimitBytes), 1_073_741_824.0));
        out.push((k(Metric::ContainerNetRxBytesPerS), (x % 100_000.0).round()));
        out.push((k(Metric::ContainerNetTxBytesPerS), (x % 50_000.0).round()));
        out.push((k(Metric::ContainerBlkioReadBytesPerS), 0.0));
        out.push((k(Metric::ContainerBlkioWriteBytesPerS), (x % 3.0) * 4096.0));
    }
    out
}

fn main() -> anyhow::Result<()> {
    let mut socket = None;
    let mut seconds = 60u64;
    let mut synth = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args
            .next()
            .ok_or_else(|| anyhow::anyhow!("{a} needs a value"))?;
        match a.as_str() {
            "--socket" => socket = Some(PathBuf::from(v)),
            "--seconds" => seconds = v.parse()?,
            "--synthetic" => synth = Some(v.parse::<usize>()?),
            _ => {
                anyhow::bail!("usage: container_wire [--socket PATH] [--seconds N] [--synthetic N]")
            }
        }
    }
    let mut core = Collector::new(CollectOptions::default())?;
    let mut ctr = Containers::new(Options {
        sockets: socket.into_iter().collect(),
        roots: Roots {
            cgroup: "/sys/fs/cgroup".into(),
            proc: "/proc".into(),
        },
        max: containers::MAX_CONTAINERS,
    });
    let (mut alone, mut with) = (SampleEncoder::new(), SampleEncoder::new());
    let (mut b_alone, mut b_with) = (0usize, 0usize);
    let (mut t_alone, mut t_with) = (0usize, 0usize);
    let (mut n_ctr, mut n_series) = (0usize, 0usize);
    let start = Instant::now();
    for tick in 0..seconds {
        std::thread::sleep(Duration::from_secs(1));
        let c = core.collect();
        let extra = match synth {
            Some(n) => synthetic(n, tick),
            None => ctr.collect(Instant::now()),
        };
        n_series = extra.len();
        n_ctr = extra
            .iter()
            .filter(|(k, _)| k.name == Metric::ContainerRunning.name())
            .count();
        let (b, t) = bytes(&mut alone, &c)?;
        (b_alone, t_alone) = (b_alone + b, t_alone + t);
        let mut all = c;
        all.extend(extra);
        let (b, t) = bytes(&mut with, &all)?;
        (b_with, t_with) = (b_with + b, t_with + t);
    }
    let secs = start.elapsed().as_secs_f64();
    let per_s = |b: usize| b as f64 / secs;
    println!(
        "| containers | container series | core B/s | core + containers B/s | added B/s | of which series tables |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| {n_ctr} | {n_series} | {:.0} | {:.0} | {:.0} | {:.0} |",
        per_s(b_alone),
        per_s(b_with),
        per_s(b_with) - per_s(b_alone),
        per_s(t_with) - per_s(t_alone)
    );
    Ok(())
}
