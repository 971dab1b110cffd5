//! What a fleet simulates: how many hosts, how often they report, which series and how their
//! values move, and where they connect. [`FleetConfig::new`] gives the defaults; every
//! field is public, [`FleetConfig::validate`] says what is out of range.
//!
//! Not here: producing frames (`host`) or the connection (`run`).

use crate::error::SimError;
use meshmon_proto::Keyring;
use meshmon_proto::frame::validate_origin;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The most hosts one fleet simulates: a node tracks 65,536 origins and forgets the least
/// recently heard beyond that.
pub const MAX_HOSTS: usize = 65_536;
/// The most series per host (a series table must fit one 64 KiB frame).
pub const MAX_SERIES: usize = 512;
/// The fewest series per host: `cpu.usage_pct`, `mem.used_pct`, `disk.used_pct{mount="/"}`.
pub const MIN_SERIES: usize = 3;
/// The shortest sample interval.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);

/// How the simulated values move.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    /// Every series keeps one value per host (deltas are empty after the first frame).
    Steady,
    /// Every series takes a bounded random step each interval.
    RandomWalk,
    /// `cpu.usage_pct` is `high` for the first half of each `period` and `low` for the second,
    /// shifted per host by `period * i / hosts` so the changes are spread over the period;
    /// the other series stay steady. A rule with a threshold between `low` and `high` keeps
    /// firing and resolving.
    Flap {
        /// One full cycle (high then low).
        period: Duration,
        /// Value in the low half.
        low: f64,
        /// Value in the high half.
        high: f64,
    },
}

impl Pattern {
    /// Flapping between 10 and 95 with the given period.
    pub fn flap(period: Duration) -> Pattern {
        Pattern::Flap {
            period,
            low: 10.0,
            high: 95.0,
        }
    }
}

impl FromStr for Pattern {
    type Err = String;

    /// `steady`, `walk` (or `random-walk`), `flap` (20 s period) or `flap:PERIOD` (`flap:30s`).
    fn from_str(s: &str) -> Result<Pattern, String> {
        match s {
            "steady" => Ok(Pattern::Steady),
            "walk" | "random-walk" => Ok(Pattern::RandomWalk),
            "flap" => Ok(Pattern::flap(Duration::from_secs(20))),
            other => match other.strip_prefix("flap:") {
                Some(p) => meshmon_proto::units::parse_duration(p).map(Pattern::flap),
                None => Err(format!(
                    "'{other}' is not a pattern (expected steady, walk, flap or flap:PERIOD)"
                )),
            },
        }
    }
}

/// A fleet of simulated hosts behind one mesh link.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The mesh port of the node the fleet dials.
    pub target: SocketAddr,
    /// Number of simulated hosts.
    pub hosts: usize,
    /// Every host sends one samples frame per interval; the hosts' frames are spread evenly
    /// over it...
    pub interval: Duration,
    /// ...or, when true, sent at once on the wall clock's multiples of it, as agents collect
    /// (`collect.interval`; a fleet of over 100 hosts in up to ten slots spread over it, a
    /// host's picked by a hash of its name).
    pub aligned: bool,
    /// Series per host, at least [`MIN_SERIES`].
    pub series: usize,
    /// How values move.
    pub pattern: Pattern,
    /// The mesh key (sealing and opening); `None` uses the null key of keyless nodes.
    pub key: Option<Keyring>,
    /// Host `i` is named `{name_prefix}{i}` with `i` zero-padded to 4 digits (more if needed).
    pub name_prefix: String,
    /// The name the fleet gives in its Hello (the peer name the node shows for the link).
    pub link_name: String,
    /// Seed of the random walks (the same seed gives the same values).
    pub seed: u64,
    /// How long each host keeps its own frames to answer backfill requests.
    pub replay_window: Duration,
    /// Host info is sent at start and again this often (a real agent: 30 s).
    pub host_info_every: Duration,
}

impl FleetConfig {
    /// `hosts` hosts named `sim-0000`... dialling `target`: 1 s interval, 3 series, steady
    /// values, null key, 5 minutes of frames kept for backfill.
    pub fn new(target: SocketAddr, hosts: usize) -> FleetConfig {
        FleetConfig {
            target,
            hosts,
            interval: Duration::from_secs(1),
            aligned: false,
            series: MIN_SERIES,
            pattern: Pattern::Steady,
            key: None,
            name_prefix: "sim-".into(),
            link_name: "sim-fleet".into(),
            seed: 1,
            replay_window: Duration::from_secs(5 * 60),
            host_info_every: Duration::from_secs(30),
        }
    }

    /// Reads the mesh key from a key file (`meshmon keygen`'s format: the first key seals,
    /// further lines are also accepted).
    pub fn with_key_file(mut self, path: &Path) -> Result<FleetConfig, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Key {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let ring = Keyring::parse(&text).map_err(|e| SimError::Key {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        self.key = Some(ring);
        Ok(self)
    }

    /// The name of host `i`.
    pub fn host_name(&self, i: usize) -> String {
        let width = self.hosts.saturating_sub(1).to_string().len().max(4);
        format!("{}{i:0width$}", self.name_prefix)
    }

    /// Every host's name, in order.
    pub fn host_names(&self) -> Vec<String> {
        (0..self.hosts).map(|i| self.host_name(i)).collect()
    }

    /// Checks every value; the error names the field and the bad value.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        if self.hosts == 0 || self.hosts > MAX_HOSTS {
            return bad(format!("hosts: {} (expected 1 to {MAX_HOSTS})", self.hosts));
        }
        if self.interval < MIN_INTERVAL {
            return bad(format!(
                "interval: {:?} (expected at least {MIN_INTERVAL:?})",
                self.interval
            ));
        }
        if !(MIN_SERIES..=MAX_SERIES).contains(&self.series) {
            return bad(format!(
                "series: {} (expected {MIN_SERIES} to {MAX_SERIES})",
                self.series
            ));
        }
        if let Pattern::Flap { period, low, high } = self.pattern {
            if period < self.interval * 2 {
                return bad(format!(
                    "flap period: {period:?} (expected at least two intervals, {:?})",
                    self.interval * 2
                ));
            }
            if !(low.is_finite() && high.is_finite() && low < high) {
                return bad(format!(
                    "flap values: low {low}, high {high} (expected finite, low < high)"
                ));
            }
        }
        for (field, name) in [
            ("name_prefix", self.host_name(self.hosts - 1)),
            ("link_name", self.link_name.clone()),
        ] {
            if let Err(e) = validate_origin(&name) {
                return bad(format!("{field}: '{name}' is not a valid node name ({e})"));
            }
        }
        if self.host_names().contains(&self.link_name) {
            return bad(format!(
                "link_name: '{}' is also a host name",
                self.link_name
            ));
        }
        if self.host_info_every.is_zero() {
            return bad("host_info_every: must not be zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> FleetConfig {
        FleetConfig::new(SocketAddr::from(([127, 0, 0, 1], 7000)), 500)
    }

    #[test]
    fn names_are_zero_padded_and_grow_with_the_fleet() {
        let c = cfg();
        assert_eq!(c.host_name(0), "sim-0000");
        assert_eq!(c.host_name(499), "sim-0499");
        let mut big = cfg();
        big.hosts = 20_000;
        assert_eq!(big.host_name(7), "sim-00007");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn out_of_range_values_are_named() {
        let check = |f: &dyn Fn(&mut FleetConfig), want: &str| {
            let mut c = cfg();
            f(&mut c);
            let e = c.validate().expect_err(want).to_string();
            assert!(e.contains(want), "{e}");
        };
        check(&|c| c.hosts = 0, "hosts: 0");
        check(&|c| c.series = 2, "series: 2");
        check(&|c| c.interval = Duration::from_millis(10), "interval");
        check(&|c| c.name_prefix = "bad name ".into(), "name_prefix");
        check(&|c| c.link_name = "sim-0003".into(), "also a host name");
        check(
            &|c| c.pattern = Pattern::flap(Duration::from_secs(1)),
            "flap period",
        );
    }

    #[test]
    fn patterns_parse() {
        assert_eq!("steady".parse(), Ok(Pattern::Steady));
        assert_eq!("walk".parse(), Ok(Pattern::RandomWalk));
        assert_eq!(
            "flap:30s".parse(),
            Ok(Pattern::flap(Duration::from_secs(30)))
        );
        assert!("wobble".parse::<Pattern>().is_err());
        assert!("flap:x".parse::<Pattern>().is_err());
    }

    #[test]
    fn key_files_are_read_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("meshmon-sim-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let good = dir.join("good.key");
        let key = meshmon_proto::Key::generate().expect("rng");
        std::fs::write(&good, format!("{}\n", key.to_base64())).expect("write");
        assert!(cfg().with_key_file(&good).expect("key").key.is_some());
        let bad = dir.join("bad.key");
        std::fs::write(&bad, "nope\n").expect("write");
        let e = cfg().with_key_file(&bad).expect_err("bad key").to_string();
        assert!(e.contains("bad.key"), "{e}");
        let e = cfg()
            .with_key_file(&dir.join("missing.key"))
            .expect_err("missing")
            .to_string();
        assert!(e.contains("missing.key"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
