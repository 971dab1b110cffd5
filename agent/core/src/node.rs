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
        collect_loop(&cfg, &commands, &extras, &stop)
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

/// Collects every interval on this (blocking) thread and hands the values to the mesh; never
/// waits for the mesh (a full queue skips this interval's values and says so).
fn collect_loop(
    cfg: &AgentConfig,
    commands: &mpsc::Sender<MeshCommand>,
    extras: &Extras,
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
            next += interval;
            if next < now {
                next = now + interval;
            }
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
