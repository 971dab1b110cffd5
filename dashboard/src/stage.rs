//! The dashboard stage of a node: opens the store (its one writer thread), starts the alert
//! thread, the ingest task and the head endpoint (fresh queries, [`crate::head`]), and routes each accepted frame by payload kind: `AlertSync` to
//! the alert thread directly, everything else to ingestion. Nothing here waits on a queue: a
//! full one drops and counts, so a slow or locked store never holds up the mesh.
//!
//! Not here: the mesh or the agent stage (the `meshmon` binary's node composes them), the
//! store's and the alerts' own logic.

use crate::alert::{self, AlertParams, AlertSender, Input as AlertInput};
use crate::config::DashboardConfig;
use crate::ingest::{Accepted, Ingestor};
use crate::{Reader, StoreConfig, StoreError, WriterHandle, start_writer};
use meshmon_proto::Payload;
use meshmon_proto::gaps::Wanted;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Frames waiting for ingestion.
pub const INGEST_QUEUE: usize = 8192;

/// Where a dashboard stage takes frames: cheap to clone, for the node's router.
#[derive(Clone)]
pub struct Inputs {
    frames: mpsc::Sender<Accepted>,
    alerts: Option<AlertSender>,
    /// Where frames refused by a full queue are asked for again.
    wants: mpsc::Sender<Wanted>,
    /// Frames the full ingest queue refused.
    pub ingest_drops: Arc<AtomicU64>,
    /// `AlertSync` payloads the full alert queue refused.
    pub alert_drops: Arc<AtomicU64>,
}

/// A running dashboard stage.
pub struct Stage {
    /// Where it takes frames.
    pub inputs: Inputs,
    /// (origin, boot, seq) the store holds without a hole: where backfill resumes.
    pub resume: Vec<(String, u64, u64)>,
    writer: WriterHandle,
    /// Ends (its sender dropped) when the alert thread has ended.
    alert_thread: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Remote write's counters, when it is on.
    pub remote: Option<Arc<crate::remote::Stats>>,
}

/// What the stage needs from the node.
pub struct StageParams<'a> {
    pub cfg: &'a DashboardConfig,
    /// This node's name.
    pub node: &'a str,
    /// The HTTP client for notifications, already configured (TLS provider, user agent).
    pub client: reqwest::Client,
    /// Where `AlertSync` payloads for the other dashboard nodes go (the mesh).
    pub gossip: mpsc::Sender<Payload>,
    /// Where frames the node accepted but could not store are asked for again (the mesh's
    /// backfill); a full queue drops the request, and the store's position stays below them.
    pub wants: mpsc::Sender<Wanted>,
    /// Remote write (`export.remote_write_url`), when on. Its `store` and `flush_interval`
    /// are set here from the store's config.
    pub remote: Option<crate::remote::Settings>,
    /// The web dashboard's live view (each live frame's samples), when it is on.
    pub live: Option<mpsc::Sender<Vec<crate::Sample>>>,
}

/// Starts the store writer, the alert thread and the ingest task. A store that cannot be
/// opened (full disk, read-only, corrupt) does not stop the node: the writer reports the
/// error, keeps what it can in memory and retries.
pub fn start(p: StageParams<'_>, tracker: &TaskTracker, shutdown: &CancellationToken) -> Stage {
    let path = &p.cfg.store.path;
    if let Some(dir) = path.parent()
        && let Err(error) = std::fs::create_dir_all(dir)
    {
        warn!(dir = %dir.display(), %error, "cannot create the store's directory");
    }
    let resume = match Reader::open(path).and_then(|r| r.positions()) {
        Ok(p) => p,
        Err(StoreError::NotFound { .. }) => Vec::new(),
        Err(error) => {
            warn!(%error, "cannot read the store's positions; backfill starts from live data");
            Vec::new()
        }
    };
    let writer = start_writer_logged(p.cfg.store.clone());
    // Fresh queries: the writer's unwritten data, on `<store>.sock`.
    crate::head::serve::start(
        crate::head::socket_path(path),
        writer.heads(),
        tracker,
        shutdown,
    );
    let mut ingestor = Ingestor::new(writer.sender()).with_wants(p.wants.clone());
    if let Some(live) = p.live {
        ingestor = ingestor.with_live(live);
    }
    let mut remote = None;
    if let Some(mut settings) = p.remote {
        settings.store.clone_from(path);
        settings.flush_interval = p.cfg.store.flush_every;
        let (feed, stats) =
            crate::remote::start(settings, p.client.clone(), tracker, shutdown.clone());
        ingestor = ingestor.with_remote(feed);
        remote = Some(stats);
    }
    let params = AlertParams {
        node: p.node.to_owned(),
        store: path.clone(),
        calls: writer.calls(),
        rules: p.cfg.alerts.clone(),
        notify: p.cfg.notify.clone(),
        maintenance: p.cfg.maintenance.clone(),
    };
    let (alerts, alert_thread) = match alert::start(params, p.client, p.gossip, tracker, shutdown) {
        Ok((alerts, thread)) => {
            let watched = p
                .cfg
                .alerts
                .iter()
                .filter_map(|r| r.metric_name().map(str::to_owned));
            ingestor = ingestor.with_alerts(alerts.clone(), watched);
            (Some(alerts), Some(thread))
        }
        Err(error) => {
            warn!(
                error = format!("{error:#}"),
                "cannot start the alert engine"
            );
            (None, None)
        }
    };
    for (origin, boot_id, seq) in &resume {
        ingestor.resume(origin, *boot_id, *seq);
    }
    info!(path = %path.display(), origins = resume.len(), "store open; backfill resumes from it");
    let (frames, mut rx) = mpsc::channel::<Accepted>(INGEST_QUEUE);
    let stop = shutdown.clone();
    tracker.spawn(async move {
        loop {
            tokio::select! {
                biased;
                d = rx.recv() => match d {
                    Some(d) => ingestor.on_frame(d, meshmon_proto::clock::wall_ms()),
                    None => break,
                },
                () = stop.cancelled() => {
                    // What is queued still reaches the writer, which flushes it at the end.
                    while let Ok(d) = rx.try_recv() {
                        ingestor.on_frame(d, meshmon_proto::clock::wall_ms());
                    }
                    break;
                }
            }
        }
    });
    Stage {
        inputs: Inputs {
            frames,
            alerts,
            wants: p.wants,
            ingest_drops: Arc::default(),
            alert_drops: Arc::default(),
        },
        resume,
        writer,
        alert_thread,
        remote,
    }
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

impl Inputs {
    /// Routes one accepted frame by its payload kind; never waits.
    pub fn offer(&self, a: Accepted) {
        if let Payload::AlertSync(sync) = a.payload {
            // Another dashboard node's account; our own and replayed ones mean nothing here.
            if a.own || a.replay {
                return;
            }
            if let Some(alerts) = &self.alerts {
                let input = AlertInput::Sync {
                    from: a.header.origin,
                    sync,
                };
                if alerts.try_send(input).is_err() {
                    self.alert_drops.fetch_add(1, Ordering::Relaxed);
                }
            }
            return;
        }
        if let Err(e) = self.frames.try_send(a) {
            let a = e.into_inner();
            if !a.own {
                let _ = self.wants.try_send(Wanted {
                    origin: a.header.origin,
                    boot_id: a.header.boot_id,
                    from_seq: a.header.seq,
                    to_seq: a.header.seq,
                });
            }
            let n = self.ingest_drops.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                warn!(
                    dropped = n,
                    "ingest queue full; frames dropped (backfill recovers what the mesh still has)"
                );
            }
        }
    }
}

impl Stage {
    /// Stops: the alert thread (it ends on the shutdown token) within `deadline`, then flushes
    /// open chunks and positions; the store file is consistent after this. Call after the
    /// shutdown token was cancelled.
    pub async fn stop(self, deadline: Duration) {
        let Stage {
            inputs,
            writer,
            alert_thread,
            ..
        } = self;
        drop(inputs);
        if let Some(ended) = alert_thread
            && tokio::time::timeout(deadline, ended).await.is_err()
        {
            warn!("the alert thread did not stop in time; flushing the store without it");
        }
        let flush = tokio::task::spawn_blocking(move || writer.shutdown());
        if let Ok(h) = flush.await
            && let Some(error) = h.error
        {
            warn!(%error, "the store could not be flushed at shutdown");
        }
    }
}
