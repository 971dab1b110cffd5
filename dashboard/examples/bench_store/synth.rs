//! Synthetic hosts for the store benchmark: 50 series per host shaped like meshmon's core
//! collector set as it reaches a dashboard node (fractions rounded to `f32` as the wire
//! carries them, byte counts as integers, timestamps on a 1 s grid with millisecond jitter).

use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;

/// A small deterministic RNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in [0, 1).
    pub fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
}

fn f32v(v: f64) -> f64 {
    f64::from(v as f32)
}

/// The 50 series of every synthetic host.
pub fn keys() -> Vec<SeriesKey> {
    use Metric::*;
    let mut k = vec![SeriesKey::new(CpuUsagePct)];
    k.extend((0..8).map(|c| SeriesKey::labelled(CpuCoreUsagePct, c.to_string())));
    k.extend([CpuLoad1, CpuLoad5, CpuLoad15, CpuFreqMhz].map(SeriesKey::new));
    k.extend((0..2).map(|s| SeriesKey::labelled(CpuTempC, format!("temp{s}"))));
    k.extend(
        [
            MemUsedBytes,
            MemTotalBytes,
            MemAvailableBytes,
            MemUsedPct,
            SwapUsedBytes,
            SwapTotalBytes,
        ]
        .map(SeriesKey::new),
    );
    for m in ["/", "/home", "/var"] {
        k.extend(
            [
                DiskUsedBytes,
                DiskTotalBytes,
                DiskUsedPct,
                DiskInodesUsed,
                DiskInodesTotal,
                DiskInodesUsedPct,
            ]
            .map(|x| SeriesKey::labelled(x, m)),
        );
    }
    for i in ["eth0", "eth1"] {
        k.extend([NetRxBytesPerS, NetTxBytesPerS].map(|x| SeriesKey::labelled(x, i)));
    }
    k.extend(
        [
            HostUptimeS,
            HostBootTimeS,
            MeshPeers,
            MeshFramesInPerS,
            MeshFramesDropped,
            MeshAuthFailures,
            DockerDirBytes,
        ]
        .map(SeriesKey::new),
    );
    assert_eq!(k.len(), 50);
    k
}

/// One host's evolving state.
pub struct Host {
    rng: Rng,
    offset_ms: i64,
    cpu: f64,
    cores: [f64; 8],
    load: [f64; 3],
    freq: f64,
    temp: [f64; 2],
    mem_used: f64,
    disk_used: [f64; 3],
    inodes: [f64; 3],
    net: [f64; 4],
    frames: f64,
    tick: i64,
}

const MEM_TOTAL: f64 = 34_359_738_368.0;
const DISK_TOTAL: f64 = 499_963_174_912.0;

impl Host {
    pub fn new(seed: u64) -> Host {
        let mut rng = Rng::new(seed);
        let base = rng.f();
        Host {
            offset_ms: (rng.next() % 1000) as i64,
            cpu: 5.0 + 40.0 * base,
            cores: [10.0; 8],
            load: [0.5 + base, 0.6 + base, 0.7 + base],
            freq: 2400.0,
            temp: [45.0, 48.0],
            mem_used: (8_000_000 + rng.next() % 8_000_000) as f64 * 1024.0,
            disk_used: [1.2e11, 2.0e11, 3.1e10].map(|d: f64| (d / 4096.0).floor() * 4096.0),
            inodes: [812_345.0, 1_234_567.0, 91_234.0],
            net: [20_000.0, 5_000.0, 300.0, 100.0],
            frames: 150.0,
            tick: 0,
            rng,
        }
    }

    /// The time stamp of second `sec` after `base`: a 1 s grid with collection and
    /// scheduling jitter of a millisecond or so, and now and then a few more.
    pub fn ts(&mut self, base: i64, sec: i64) -> i64 {
        let r = &mut self.rng;
        let jitter = if r.chance(0.02) {
            2 + (r.next() % 15) as i64
        } else {
            (r.next() % 10 < 3) as i64
        };
        base + sec * 1000 + self.offset_ms + jitter
    }

    /// The next second's 50 values, in [`keys`] order.
    pub fn values(&mut self, out: &mut Vec<f64>) {
        out.clear();
        self.tick += 1;
        let t = self.tick;
        let r = &mut self.rng;
        self.cpu = (self.cpu + (r.f() - 0.5) * 6.0).clamp(0.5, 99.0);
        out.push(f32v(self.cpu));
        for c in &mut self.cores {
            *c = (self.cpu + (r.f() - 0.5) * 30.0).clamp(0.0, 100.0);
            out.push(f32v(*c));
        }
        if t % 5 == 0 {
            for (i, l) in self.load.iter_mut().enumerate() {
                *l = (*l + (r.f() - 0.5) * 0.2 / (i + 1) as f64).max(0.0);
            }
        }
        out.extend(self.load.map(|l| f32v((l * 100.0).round() / 100.0)));
        if r.chance(0.3) {
            self.freq = [800.0, 1400.0, 2400.0, 3100.0, 3600.0][(r.next() % 5) as usize];
        }
        out.push(self.freq);
        for tc in &mut self.temp {
            if r.chance(0.2) {
                *tc = (*tc + if r.chance(0.5) { 1.0 } else { -1.0 }).clamp(30.0, 90.0);
            }
            out.push(*tc);
        }
        self.mem_used += ((r.next() % 512) as f64 - 256.0) * 4096.0;
        let used_pct = 100.0 * self.mem_used / MEM_TOTAL;
        out.extend([
            self.mem_used,
            MEM_TOTAL,
            MEM_TOTAL - self.mem_used,
            f32v(used_pct),
            0.0,
            8_589_930_496.0,
        ]);
        for d in 0..3 {
            if r.chance(0.3) {
                self.disk_used[d] += ((r.next() % 64) as f64) * 4096.0;
            }
            if r.chance(0.1) {
                self.inodes[d] += (r.next() % 5) as f64;
            }
            let inodes_total = 30_531_584.0;
            out.extend([
                self.disk_used[d],
                DISK_TOTAL,
                f32v(100.0 * self.disk_used[d] / DISK_TOTAL),
                self.inodes[d],
                inodes_total,
                f32v(100.0 * self.inodes[d] / inodes_total),
            ]);
        }
        for n in &self.net {
            let burst = if r.chance(0.05) { 20.0 } else { 1.0 };
            out.push((n * (0.6 + 0.8 * r.f()) * burst).round());
        }
        if r.chance(0.3) {
            self.frames = (self.frames + (r.next() % 21) as f64 - 10.0).max(0.0);
        }
        out.extend([
            (3_600 + t) as f64,
            1_699_990_000.0,
            3.0,
            self.frames,
            0.0,
            0.0,
            7_523_123_456.0,
        ]);
    }
}
