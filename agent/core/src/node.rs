//! The agent stage of a node: the collector thread that reads the core metrics every interval
//! and hands them to the mesh, the optional collectors' threads, the HTTP checks and the daily
//! self-update check. Every part stops when the node's one shutdown token is cancelled;
//! threads see it through a [`Stop`] bridged from the token.
//!
//! Not here: building the whole node by role (the `meshmon` binary's `node`), protocol
//! decisions (gossip), sockets (net).

use crate::collect::{CollectOptions, Collector, Extras, Stop};
use crate::config::AgentConfig;
use crate::net::mesh::{MeshCommand, wall_ms};
use crate::net::zmtp::Limits;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::warn;

/// Host info is re-sent this often (and at start).
pub const HOST_INFO_EVERY: Duration = Duration::from_secs(30);

/// A boot id: microseconds since the epoch at start, so a restart is always newer.
pub fn new_boot_id() -> u64 {
    wall_ms().saturating_mul(1000) + u64::from(rand::random::<u16>() % 1000)
}

/// File descriptors one guarded connection can take: the accepted socket, the guard's
/// connection to the internal ROUTER and the ROUTER's end of it.
const FDS_PER_CONNECTION: u64 = 3;
/// File descriptors kept for everything else (links, store, logs).
const FDS_RESERVED: u64 = 64;

/// Raises the soft limit on open files to the hard limit (as Go and systemd services commonly
/// do) and returns the connection cap that fits in it, at most the default of 1,024.
pub fn connection_cap() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    if let (Some(cur), Some(max)) = (lim.current, lim.maximum)
        && max > cur
    {
        lim.current = Some(max);
        if let Err(error) = setrlimit(Resource::Nofile, lim) {
            warn!(%error, "cannot raise the open-files limit");
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let fit = soft.saturating_sub(FDS_RESERVED) / FDS_PER_CONNECTION;
    let cap = usize::try_from(fit)
        .unwrap_or(usize::MAX)
        .min(Limits::default().max_connections);
    if cap < Limits::default().max_connections {
        warn!(
            open_files = soft,
            cap, "the open-files limit caps concurrent mesh connections"
        );
    }
    cap.max(16)
}

/// Threads of a stage, joined without polling: at shutdown each is joined on the runtime's
/// blocking pool, and [`Threads::join`] awaits those joins with one deadline.
#[derive(Default)]
pub struct Threads(Vec<std::thread::JoinHandle<()>>);

impl Threads {
    /// Starts `body` on a thread named `name`.
    pub fn spawn(
        &mut self,
        name: &str,
        body: impl FnOnce() + Send + 'static,
    ) -> std::io::Result<()> {
        let t = std::thread::Builder::new().name(name.into()).spawn(body)?;
        self.0.push(t);
        Ok(())
    }

    /// Adds a thread started elsewhere.
    pub fn add(&mut self, t: std::thread::JoinHandle<()>) {
        self.0.push(t);
    }

    /// Waits until every thread has ended or `deadline` passed; names the late ones. A thread
    /// past the deadline (a hung smartctl, a long walk) is left behind: the process exits.
    pub async fn join(self, deadline: Duration) {
        let end = tokio::time::Instant::now() + deadline;
        for t in self.0 {
            let name = t.thread().name().unwrap_or("thread").to_owned();
            let joined = tokio::task::spawn_blocking(move || {
                let _ = t.join();
            });
            if tokio::time::timeout_at(end, joined).await.is_err() {
                warn!(thread = %name, "thread did not stop in time; exiting without it");
            }
        }
    }
}

/// Starts the agent stage: the core collector thread, the optional collectors, the checks and
/// the self-update check. Everything stops when `shutdown` is cancelled; the threads are
/// added to `threads`.
pub fn start(
    cfg: &AgentConfig,
    commands: mpsc::Sender<MeshCommand>,
    hosts: Arc<AtomicUsize>,
    threads: &mut Threads,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> std::io::Result<()> {
    let stop = Stop::on_cancel(shutdown, tracker);
    let extras = Extras::default();
    for t in crate::collect::start_optional(&cfg.collect, &extras, &stop) {
        threads.add(t);
    }
    #[cfg(feature = "checks")]
    crate::check::start(&cfg.checks, &extras, tracker, shutdown);
    #[cfg(not(feature = "checks"))]
    if !cfg.checks.is_empty() {
        warn!(
            checks = cfg.checks.len(),
            "this meshmon was built without HTTP checks; [[check]] is ignored"
        );
    }
    #[cfg(feature = "self-update")]
    if cfg.update.auto
        && let Some(url) = cfg.update.url.clone()
    {
        tracker.spawn(auto_update(url, shutdown.clone()));
    }
    let cfg = cfg.clone();
    threads.spawn("collect", move || {
        collect_loop(&cfg, &commands, &extras, &hosts, &stop)
    })
}

/// First self-update check this long after start (lets a crash-looping update show itself).
#[cfg(feature = "self-update")]
const UPDATE_FIRST_CHECK: Duration = Duration::from_secs(10 * 60);
/// Then once a day.
#[cfg(feature = "self-update")]
const UPDATE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// The daily self-update check (`update.auto`). When a newer release is verified and installed
/// it cancels `shutdown`, so the node stops cleanly and systemd (`Restart=always`) starts the
/// new binary. Failures are logged and retried the next day.
#[cfg(feature = "self-update")]
async fn auto_update(url: String, shutdown: CancellationToken) {
    use tracing::info;
    let mut wait = UPDATE_FIRST_CHECK;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = UPDATE_EVERY;
        match crate::update::run(&url, None, false).await {
            Ok(crate::update::Outcome::Updated {
                current,
                latest,
                path,
            }) => {
                info!(from = %current, to = %latest, path = %path.display(),
                    "self-update installed; exiting so systemd restarts the new binary");
                shutdown.cancel();
                return;
            }
            Ok(outcome) => info!(?outcome, "self-update check: nothing to do"),
            Err(error) => {
                warn!(error = format!("{error:#}"), %url, "self-update failed; retrying tomorrow")
            }
        }
    }
}

/// Hosts that share one collection instant (see [`collect_offset_ms`]).
pub const HOSTS_PER_SLOT: usize = 100;
/// At most this many collection instants an interval.
pub const MAX_SLOTS: usize = 10;

/// Where in each interval a host collects: milliseconds after the wall clock's multiples of
/// the interval, for a host named `name` in a mesh of `hosts` hosts.
///
/// Agents collect on the wall clock (as Netdata does, and Telegraf with `round_interval`):
/// the samples of a fleet line up in time, and a node receives the fleet's frames in bursts
/// rather than one by one, so it wakes a few times an interval instead of once per host
/// (wake-ups are most of a mesh node's CPU). Up to [`HOSTS_PER_SLOT`] hosts share one instant;
/// a larger mesh splits into up to [`MAX_SLOTS`] instants spread over the interval, a host's
/// slot picked by a hash of its name, so that bursts stay within what a link may have in
/// flight (in the simulator, 2,000 hosts sending at one instant lost frames for good after
/// 10 % of the nodes were killed; 1,000 did not).
pub fn collect_offset_ms(name: &str, hosts: usize, period_ms: u64) -> u64 {
    let slots = hosts.div_ceil(HOSTS_PER_SLOT).clamp(1, MAX_SLOTS) as u64;
    if slots == 1 {
        return 0;
    }
    // FNV-1a: the same slot on every platform and release.
    let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    (hash % slots) * period_ms / slots
}

/// Milliseconds from Unix time `wall_ms` to the next instant that is `offset_ms` past a
/// multiple of `period_ms` (0 on one). Clock steps are harmless: the wait is always less than
/// one interval. (Any unit will do, the same for all three: the simulator passes µs.)
pub fn until_slot(wall_ms: u64, period_ms: u64, offset_ms: u64) -> u64 {
    let period = period_ms.max(1);
    let shifted = wall_ms
        .wrapping_sub(offset_ms % period)
        .wrapping_add(period);
    (period - shifted % period) % period
}

/// Collects on this (blocking) thread, at once and then at its slot of every interval on the
/// wall clock ([`collect_offset_ms`]; `hosts`: the mesh's host count), and hands the values
/// to the mesh; never waits for the mesh (a full queue skips this interval's values and says
/// so).
fn collect_loop(
    cfg: &AgentConfig,
    commands: &mpsc::Sender<MeshCommand>,
    extras: &Extras,
    hosts: &AtomicUsize,
    stop: &Stop,
) {
    let interval = cfg.collect.interval;
    let mut collector = match Collector::new(CollectOptions {
        interval,
        disk_io: cfg.collect.disk_io,
        disk_io_partitions: cfg.collect.disk_io_partitions,
    }) {
        Ok(c) => Some(c),
        Err(error) => {
            warn!(%error, "core collectors unavailable; sending mesh metrics only");
            None
        }
    };
    let mut next = Instant::now();
    let mut next_info = Instant::now();
    loop {
        let now = Instant::now();
        if now >= next_info {
            let mut info = collector
                .as_ref()
                .map(Collector::host_info)
                .unwrap_or_default();
            info.version = env!("CARGO_PKG_VERSION").into();
            info.tags = cfg.node.tags.clone();
            info.interval_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
            info.dashboard = cfg.node.dashboard;
            if commands.try_send(MeshCommand::HostInfo(info)).is_err() {
                warn!("mesh busy; host info skipped this time");
            }
            next_info = now + HOST_INFO_EVERY;
        }
        if now >= next {
            let mut values = collector
                .as_mut()
                .map(Collector::collect)
                .unwrap_or_default();
            extras.append_to(&mut values);
            if commands.try_send(MeshCommand::Samples(values)).is_err() {
                warn!("mesh busy; samples of this interval dropped");
            }
            // The next boundary at least half an interval away: one collection per boundary,
            // and a late one does not make up for the boundary it missed.
            let period_ms = u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
            let half = interval / 2;
            let half_ms = u64::try_from(half.as_millis()).unwrap_or(0);
            let offset =
                collect_offset_ms(&cfg.node.name, hosts.load(Ordering::Relaxed), period_ms);
            let wait = until_slot(wall_ms().saturating_add(half_ms), period_ms, offset);
            next = Instant::now() + half + Duration::from_millis(wait);
            extras.set_next_frame(next);
        }
        let wait = next
            .min(next_info)
            .saturating_duration_since(Instant::now());
        if stop.sleep(wait) {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{collect_offset_ms, until_slot};

    #[test]
    fn the_wait_reaches_the_next_slot_of_the_interval() {
        assert_eq!(until_slot(1_700_000_000_000, 1000, 0), 0, "on a boundary");
        assert_eq!(until_slot(1_700_000_000_001, 1000, 0), 999);
        assert_eq!(until_slot(1_700_000_000_999, 1000, 0), 1);
        assert_eq!(until_slot(1_700_000_004_000, 15_000, 0), 6_000);
        assert_eq!(until_slot(1_700_000_000_050, 1000, 300), 250);
        assert_eq!(until_slot(1_700_000_000_400, 1000, 300), 900);
        assert_eq!(until_slot(1_700_000_000_300, 1000, 300), 0);
        assert_eq!(until_slot(100, 1000, 300), 200, "near the epoch");
        assert_eq!(until_slot(5, 0, 0), 0, "a zero period waits for nothing");
    }

    #[test]
    fn small_meshes_share_one_instant_large_ones_spread_over_ten() {
        for n in ["a", "web-01", "db"] {
            assert_eq!(collect_offset_ms(n, 1, 1000), 0);
            assert_eq!(collect_offset_ms(n, 100, 1000), 0);
        }
        let slots = |hosts: usize| {
            let mut s: Vec<u64> = (0..2000)
                .map(|i| collect_offset_ms(&format!("host-{i:05}"), hosts, 1000))
                .collect();
            s.sort_unstable();
            s.dedup();
            s
        };
        assert_eq!(slots(250), vec![0, 333, 666]);
        assert_eq!(slots(2000), (0..10).map(|i| i * 100).collect::<Vec<_>>());
        assert_eq!(slots(50_000).len(), 10, "at most ten");
        // Balanced enough: no slot of 2,000 names holds more than 1.5x its share.
        let mut count = [0usize; 10];
        for i in 0..2000 {
            count[(collect_offset_ms(&format!("host-{i:05}"), 2000, 1000) / 100) as usize] += 1;
        }
        assert!(count.iter().all(|c| *c < 300), "{count:?}");
        assert_eq!(
            collect_offset_ms("web-01", 2000, 1000),
            collect_offset_ms("web-01", 2000, 1000),
            "stable"
        );
    }
}
