//! A whole node: binds the mesh port, starts the mesh task, runs the collectors on their own
//! thread and feeds their values to the mesh every interval, and stops everything cleanly on
//! shutdown (SIGINT/SIGTERM are turned into a cancelled token by the binary).
//!
//! Not here: argument parsing (the binary), protocol decisions (gossip), sockets (net).

use crate::collect::{CollectOptions, Collector, Extras, Stop};
use crate::config::Config;
use crate::export;
use crate::gossip::{Delivered, GossipConfig};
use crate::ingest::Ingestor;
use crate::net::mesh::{self, MeshCommand, MeshParams};
use crate::net::zmtp::Limits;
use anyhow::Context as _;
use meshmon_dashboard::{Reader, StoreConfig, StoreError, WriterHandle, start_writer};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Host info is re-sent this often (and at start).
pub const HOST_INFO_EVERY: Duration = Duration::from_secs(30);
/// How long shutdown waits for tasks before giving up.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);

/// A boot id: microseconds since the epoch at start, so a restart is always newer.
pub fn new_boot_id() -> u64 {
    mesh::wall_ms().saturating_mul(1000) + u64::from(rand::random::<u16>() % 1000)
}

/// File descriptors one guarded connection can take: the accepted socket, the guard's
/// connection to the internal ROUTER and the ROUTER's end of it.
const FDS_PER_CONNECTION: u64 = 3;
/// File descriptors kept for everything else (links, store, logs).
const FDS_RESERVED: u64 = 64;

/// Raises the soft limit on open files to the hard limit (as Go and systemd services commonly
/// do) and returns the connection cap that fits in it, at most the default of 1,024.
fn connection_cap() -> usize {
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

/// Frames waiting for the store's ingestion.
const INGEST_QUEUE: usize = 8192;

/// Starts the store writer of a dashboard node and reads how far it holds each origin. A
/// store that cannot be opened (full disk, read-only, corrupt) does not stop the node: the
/// writer reports the error, keeps what it can in memory and retries.
fn open_store(cfg: &Config) -> (WriterHandle, Vec<(String, u64, u64)>) {
    let path = &cfg.store.path;
    if let Some(dir) = path.parent()
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        warn!(dir = %dir.display(), %error, "cannot create the store's directory");
    }
    let mut scfg = StoreConfig::new(path);
    scfg.retention_raw = cfg.store.retention;
    scfg.retention_1m = cfg.store.retention_1m;
    scfg.retention_1h = cfg.store.retention_1h;
    scfg.flush_every = cfg.store.flush_interval;
    let positions = match Reader::open(path).and_then(|r| r.positions()) {
        Ok(p) => p,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(error) => {
            warn!(%error, "cannot read the store's positions; backfill starts from live data");
            Vec::new()
        }
    };
    (start_writer_logged(scfg), positions)
}

fn start_writer_logged(cfg: StoreConfig) -> WriterHandle {
    loop {
        match start_writer(cfg.clone()) {
            Ok(w) => return w,
            Err(error) => {
                // Only a failure to start a thread ends up here.
                warn!(%error, "cannot start the store writer; retrying");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// One sender for the mesh's deliveries: the store's or the exporter's queue when only one
/// exists, else a small task that hands each frame to both. The exporter only gets live
/// frames; a full exporter queue drops (and counts) the frame, never stalls the store.
fn fan_out(
    ingest: Option<mpsc::Sender<Delivered>>,
    export: Option<mpsc::Sender<Delivered>>,
    export_drops: &Arc<AtomicU64>,
    tracker: &TaskTracker,
) -> Option<mpsc::Sender<Delivered>> {
    match (ingest, export) {
        (Some(ingest), Some(export)) => {
            let (tx, mut rx) = mpsc::channel::<Delivered>(INGEST_QUEUE);
            let drops = Arc::clone(export_drops);
            tracker.spawn(async move {
                while let Some(d) = rx.recv().await {
                    if !d.replay && export.try_send(d.clone()).is_err() {
                        drops.fetch_add(1, Ordering::Relaxed);
                    }
                    // The store's queue is as large as this one: wait for it rather than
                    // drop here, so the mesh's own count of drops stays the store's.
                    if ingest.send(d).await.is_err() {
                        break;
                    }
                }
            });
            Some(tx)
        }
        (ingest, export) => ingest.or(export),
    }
}

/// Runs a node until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener = TcpListener::bind(cfg.node.listen)
        .await
        .with_context(|| format!("cannot listen on '{}'", cfg.node.listen))?;
    let boot_id = new_boot_id();
    let mut gossip = GossipConfig::new(&cfg.node.name, boot_id, cfg.node.max_hops);
    // Samples are decoded and delivered only where someone reads them: the store, the exporter.
    gossip.deliver_all = cfg.node.dashboard || cfg.prometheus_listen.is_some();
    gossip.backfill = cfg.node.dashboard;
    let tracker = TaskTracker::new();
    let store = if cfg.node.dashboard {
        Some(open_store(&cfg))
    } else {
        None
    };
    let (ingest_tx, ingest_rx) = match &store {
        Some(_) => {
            let (tx, rx) = mpsc::channel(INGEST_QUEUE);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let (export_tx, export_rx) = match cfg.prometheus_listen {
        Some(_) => {
            let (tx, rx) = mpsc::channel(export::EXPORT_QUEUE);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let export_drops = Arc::new(AtomicU64::new(0));
    let deliveries = fan_out(ingest_tx, export_tx, &export_drops, &tracker);
    let handle = mesh::start(
        MeshParams {
            listener: Some(listener),
            neighbours: cfg.node.neighbours.clone(),
            gossip,
            keyring: cfg.node.keyring.clone(),
            limits: Limits {
                max_connections: connection_cap(),
                ..Limits::default()
            },
            deliveries,
        },
        &tracker,
        shutdown.clone(),
    )
    .await?;
    if let (Some(listen), Some(frames)) = (cfg.prometheus_listen, export_rx) {
        let params = export::ExportParams {
            listen,
            frames,
            commands: handle.commands.clone(),
            delivery_drops: Arc::clone(&handle.queue_drops),
            export_drops,
        };
        if let Err(error) = export::start(params, &tracker, shutdown.clone()).await {
            shutdown.cancel();
            return Err(error);
        }
    }
    info!(
        name = %cfg.node.name,
        listen = %cfg.node.listen,
        neighbours = cfg.node.neighbours.len(),
        dashboard = cfg.node.dashboard,
        keyed = !cfg.node.keyring.is_null(),
        "node started"
    );
    let mut alert_thread = None;
    if let (Some((writer, resume)), Some(mut rx)) = (&store, ingest_rx) {
        let mut ingestor = Ingestor::new(writer.sender());
        match crate::alert::start(&cfg, handle.commands.clone(), &tracker, &shutdown) {
            Ok((alerts, thread)) => {
                let watched = cfg
                    .alerts
                    .iter()
                    .filter_map(|r| r.metric_name().map(str::to_owned));
                ingestor = ingestor.with_alerts(alerts, watched);
                alert_thread = Some(thread);
            }
            Err(error) => warn!(
                error = format!("{error:#}"),
                "cannot start the alert engine"
            ),
        }
        for (origin, boot_id, seq) in resume {
            ingestor.resume(origin, *boot_id, *seq);
            let cmd = MeshCommand::Resume {
                origin: origin.clone(),
                boot_id: *boot_id,
                seq: *seq,
            };
            if handle.commands.send(cmd).await.is_err() {
                break;
            }
        }
        info!(path = %cfg.store.path.display(), origins = resume.len(), "store open; backfill resumes from it");
        tracker.spawn(async move {
            while let Some(d) = rx.recv().await {
                ingestor.on_frame(d, mesh::wall_ms());
            }
        });
    }

    if cfg.update.auto
        && let Some(url) = cfg.update.url.clone()
    {
        tracker.spawn(auto_update(url, shutdown.clone()));
    }

    // Dropping `stop_tx` wakes the collector thread at once; until then it sleeps exactly
    // until its next reading (no polling wake-ups).
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let extras = Extras::default();
    let optional_stop = Stop::default();
    let optional = crate::collect::start_optional(&cfg, &extras, &optional_stop);
    crate::check::start(&cfg.checks, &extras, &tracker, &shutdown);
    let commands = handle.commands.clone();
    let collect_cfg = cfg.clone();
    let collect_extras = extras.clone();
    let collector = std::thread::Builder::new()
        .name("collect".into())
        .spawn(move || collect_loop(&collect_cfg, &commands, &collect_extras, &stop_rx))
        .context("cannot start the collector thread")?;

    shutdown.cancelled().await;
    info!("shutting down");
    drop(stop_tx);
    optional_stop.stop();
    drop(handle);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        warn!("tasks did not stop within 3 s; exiting anyway");
    }
    let _ = tokio::task::spawn_blocking(move || {
        let _ = collector.join();
        // An optional collector may be inside a long walk or a hung program; it checks
        // `Stop` between steps. Do not wait for it past the deadline.
        let deadline = Instant::now() + SHUTDOWN_DEADLINE;
        for t in optional {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    })
    .await;
    if let Some(t) = alert_thread {
        // It ends once the ingestor (holding its queue) and the delivery tasks are gone.
        let _ = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + SHUTDOWN_DEADLINE;
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        })
        .await;
    }
    if let Some((writer, _)) = store {
        // Flushes open chunks and positions; the store file is consistent after this.
        let health = tokio::task::spawn_blocking(move || writer.shutdown()).await;
        if let Ok(h) = health
            && let Some(error) = h.error
        {
            warn!(%error, "the store could not be flushed at shutdown");
        }
    }
    Ok(())
}

/// First self-update check this long after start (lets a crash-looping update show itself).
const UPDATE_FIRST_CHECK: Duration = Duration::from_secs(10 * 60);
/// Then once a day.
const UPDATE_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// The daily self-update check (`update.auto`). When a newer release is verified and installed
/// it cancels `shutdown`, so the node stops cleanly and systemd (`Restart=always`) starts the
/// new binary. Failures are logged and retried the next day.
async fn auto_update(url: String, shutdown: CancellationToken) {
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

/// Collects every interval on this (blocking) thread and hands the values to the mesh.
fn collect_loop(
    cfg: &Config,
    commands: &mpsc::Sender<MeshCommand>,
    extras: &Extras,
    stop: &std::sync::mpsc::Receiver<()>,
) {
    let interval = cfg.collect.interval;
    let mut collector = match Collector::new(CollectOptions { interval }) {
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
        }
        let wait = next
            .min(next_info)
            .saturating_duration_since(Instant::now());
        match stop.recv_timeout(wait) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => break,
        }
    }
}
