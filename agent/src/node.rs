//! The one place a node is built, by role, stage by stage:
//!
//! 1. **mesh**: binds the port and starts the mesh task (links, guard, gossip); it hands the
//!    frames it accepts to one bounded queue.
//! 2. **dashboard** (feature `dashboard`, `node.dashboard = true`): store writer, alert thread,
//!    ingestion (`meshmon_dashboard::stage`); its `AlertSync` payloads go back to the mesh.
//!    With `export.remote_write_url`, it also pushes every host's live samples to a
//!    Prometheus remote-write receiver (`meshmon_dashboard::remote`).
//!    With `[web] listen` (feature `web`), it serves the web dashboard (`crate::web`), fed
//!    live samples by ingestion and the mesh's status.
//! 3. **export** (feature `export`, `export.prometheus_listen`): the Prometheus endpoint.
//! 4. **router**: one task that routes each accepted frame by kind to the stages that want
//!    it; it never waits (a full stage queue drops and counts).
//! 5. **agent** (`meshmon_agent_core::node`): collectors, checks, self-update.
//!
//! Shutdown has one mechanism: the `CancellationToken` (SIGINT/SIGTERM cancel it in the
//! binary). Tasks watch it and are awaited on a `TaskTracker` with a deadline; threads see it
//! through a `Stop` bridged from it and are joined without polling; the dashboard stage
//! flushes the store last.
//!
//! Not here: argument parsing (the binary), protocol decisions (gossip), sockets (net), the
//! stages' own logic.

use crate::config::Config;
use crate::gossip::{Delivered, GossipConfig};
#[cfg(feature = "dashboard")]
use crate::net::mesh::MeshCommand;
use crate::net::mesh::{self, MeshParams};
use crate::net::zmtp::Limits;
use anyhow::Context as _;
use meshmon_agent_core::node::{Threads, connection_cap};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
#[cfg(feature = "export")]
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use meshmon_agent_core::node::{HOST_INFO_EVERY, new_boot_id};

/// How long shutdown waits for tasks, then for threads, before giving up.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(3);
/// Accepted frames waiting for the router.
const DELIVER_QUEUE: usize = 8192;
/// Payloads the dashboard stage gossips (`AlertSync`), waiting for the mesh.
#[cfg(feature = "dashboard")]
const GOSSIP_OUT_QUEUE: usize = 64;
/// Backfill requests for frames the dashboard stage could not store, waiting for the mesh.
#[cfg(feature = "dashboard")]
const WANTS_QUEUE: usize = 4096;

/// The stages that take accepted frames.
struct Routes {
    #[cfg(feature = "dashboard")]
    dashboard: Option<meshmon_dashboard::stage::Inputs>,
    #[cfg(feature = "export")]
    export: Option<mpsc::Sender<Delivered>>,
    /// Frames the exporter's full queue refused.
    #[cfg_attr(not(feature = "export"), allow(dead_code))]
    export_drops: Arc<AtomicU64>,
}

impl Routes {
    /// Whether any stage wants frames (else the mesh delivers none).
    fn any(&self) -> bool {
        #[allow(unused_mut)]
        let mut any = false;
        #[cfg(feature = "dashboard")]
        {
            any |= self.dashboard.is_some();
        }
        #[cfg(feature = "export")]
        {
            any |= self.export.is_some();
        }
        any
    }

    /// Hands one frame to every stage that wants it; never waits.
    #[cfg_attr(
        not(any(feature = "dashboard", feature = "export")),
        allow(unused_variables)
    )]
    fn route(&self, d: Delivered) {
        #[cfg(feature = "export")]
        if let Some(export) = &self.export
            && !d.replay
            && export.try_send(d.clone()).is_err()
        {
            self.export_drops.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "dashboard")]
        if let Some(dash) = &self.dashboard {
            dash.offer(meshmon_dashboard::ingest::Accepted {
                own: d.from.is_none(),
                header: d.header,
                hops: d.hops,
                payload: d.payload,
                replay: d.replay,
            });
        }
    }
}

/// Remote write's settings from `[export]`; the stage fills in the store's path and flush
/// interval.
#[cfg(feature = "dashboard")]
fn remote_settings(r: &crate::config::RemoteWriteConfig) -> meshmon_dashboard::remote::Settings {
    use crate::config::RemoteAuth;
    use meshmon_dashboard::remote::Auth;
    meshmon_dashboard::remote::Settings {
        url: r.url.clone(),
        auth: match &r.auth {
            RemoteAuth::None => Auth::None,
            RemoteAuth::Bearer(t) => Auth::Bearer(t.clone()),
            RemoteAuth::Basic { user, password } => Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            },
        },
        interval: r.interval,
        queue: r.queue,
        store: std::path::PathBuf::new(),
        flush_interval: Duration::from_secs(30),
    }
}

/// Runs a node until `shutdown` is cancelled.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let a = &cfg.agent;
    let listener = TcpListener::bind(a.node.listen)
        .await
        .with_context(|| format!("cannot listen on '{}'", a.node.listen))?;
    let tracker = TaskTracker::new();
    let mut threads = Threads::default();

    // Stage 2: dashboard.
    #[cfg(feature = "dashboard")]
    let (gossip_tx, mut gossip_rx) = mpsc::channel(GOSSIP_OUT_QUEUE);
    #[cfg(feature = "dashboard")]
    let (wants_tx, mut wants_rx) = mpsc::channel(WANTS_QUEUE);
    #[cfg(feature = "web")]
    let (live_tx, live_rx) = crate::web::channel(&cfg).unzip();
    #[cfg(all(feature = "dashboard", not(feature = "web")))]
    let live_tx = None;
    #[cfg(all(feature = "dashboard", not(feature = "web")))]
    if let Some(listen) = cfg.dashboard.web.listen {
        warn!(%listen, "this meshmon was built without the web dashboard (feature web); web.listen is ignored");
    }
    #[cfg(feature = "dashboard")]
    let dashboard = if a.node.dashboard {
        let client = meshmon_dashboard::alert::deliver::configure(crate::http::builder(None))
            .build()
            .context("cannot build the HTTP client for notifications")?;
        Some(meshmon_dashboard::stage::start(
            meshmon_dashboard::stage::StageParams {
                cfg: &cfg.dashboard,
                node: &a.node.name,
                client,
                gossip: gossip_tx,
                wants: wants_tx,
                remote: a.remote_write.as_ref().map(remote_settings),
                live: live_tx,
            },
            &tracker,
            &shutdown,
        ))
    } else {
        drop((gossip_tx, wants_tx));
        None
    };

    // Stage 3: the exporter's queue (the endpoint starts once the mesh runs).
    #[cfg(feature = "export")]
    let (export_tx, export_rx) = match a.prometheus_listen {
        Some(_) => {
            let (tx, rx) = mpsc::channel(crate::export::EXPORT_QUEUE);
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    #[cfg(not(feature = "export"))]
    if let Some(listen) = a.prometheus_listen {
        warn!(%listen, "this meshmon was built without the Prometheus endpoint (feature export); export.prometheus_listen is ignored");
    }

    let routes = Routes {
        #[cfg(feature = "dashboard")]
        dashboard: dashboard.as_ref().map(|d| d.inputs.clone()),
        #[cfg(feature = "export")]
        export: export_tx,
        export_drops: Arc::new(AtomicU64::new(0)),
    };

    // Stage 1: the mesh. A dashboard node's remote write reports through its own samples.
    #[cfg(feature = "dashboard")]
    let own_values = dashboard
        .as_ref()
        .and_then(|d| d.remote.clone())
        .map(|stats| {
            Arc::new(move |out: &mut Vec<(meshmon_proto::SeriesKey, f64)>| {
                let now = i64::try_from(mesh::wall_ms()).unwrap_or(i64::MAX);
                out.extend(stats.values(now));
            }) as mesh::OwnValues
        });
    #[cfg(not(feature = "dashboard"))]
    let own_values = None;
    let mut gossip = GossipConfig::new(&a.node.name, new_boot_id(), a.node.max_hops);
    // Samples are decoded and delivered only where a stage reads them.
    let any_route = routes.any();
    gossip.deliver_all = any_route;
    gossip.backfill = a.node.dashboard;
    let (deliver_tx, mut deliver_rx) = mpsc::channel::<Delivered>(DELIVER_QUEUE);
    let handle = mesh::start(
        MeshParams {
            listener: Some(listener),
            neighbours: a.node.neighbours.clone(),
            gossip,
            keyring: a.node.keyring.clone(),
            limits: Limits {
                max_connections: connection_cap(),
                ..Limits::default()
            },
            deliveries: any_route.then_some(deliver_tx),
            own_values,
        },
        &tracker,
        shutdown.clone(),
    )
    .await?;

    #[cfg(feature = "dashboard")]
    if let Some(d) = &dashboard {
        for (origin, boot_id, seq) in &d.resume {
            let cmd = MeshCommand::Resume {
                origin: origin.clone(),
                boot_id: *boot_id,
                seq: *seq,
            };
            if handle.commands.send(cmd).await.is_err() {
                break;
            }
        }
        // The dashboard's own gossip (AlertSync) and its requests for frames it could not
        // store into the mesh; the mesh's queue is the mesh's, so waiting on it here holds up
        // nothing else.
        let (commands, stop) = (handle.commands.clone(), shutdown.clone());
        tracker.spawn(async move {
            loop {
                let cmd = tokio::select! {
                    () = stop.cancelled() => break,
                    Some(p) = gossip_rx.recv() => MeshCommand::Gossip(p),
                    Some(w) = wants_rx.recv() => MeshCommand::Want(w),
                    else => break,
                };
                if commands.send(cmd).await.is_err() {
                    break;
                }
            }
        });
    }

    #[cfg(feature = "export")]
    if let (Some(listen), Some(frames)) = (a.prometheus_listen, export_rx) {
        let params = crate::export::ExportParams {
            listen,
            frames,
            commands: handle.commands.clone(),
            delivery_drops: Arc::clone(&handle.queue_drops),
            export_drops: Arc::clone(&routes.export_drops),
        };
        if let Err(error) = crate::export::start(params, &tracker, shutdown.clone()).await {
            shutdown.cancel();
            return Err(error);
        }
    }

    #[cfg(feature = "web")]
    if let Some(samples) = live_rx {
        let commands = handle.commands.clone();
        if let Err(error) = crate::web::start(&cfg, samples, commands, &tracker, &shutdown).await {
            shutdown.cancel();
            return Err(error);
        }
    }

    // Stage 4: the router.
    tracker.spawn(async move {
        while let Some(d) = deliver_rx.recv().await {
            routes.route(d);
        }
    });

    // Stage 5: the agent.
    meshmon_agent_core::node::start(
        a,
        handle.commands.clone(),
        handle.hosts.clone(),
        &mut threads,
        &tracker,
        &shutdown,
    )
    .context("cannot start the collector thread")?;
    info!(
        name = %a.node.name,
        listen = %a.node.listen,
        neighbours = a.node.neighbours.len(),
        dashboard = a.node.dashboard,
        keyed = !a.node.keyring.is_null(),
        "node started"
    );

    shutdown.cancelled().await;
    info!("shutting down");
    drop(handle);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_DEADLINE, tracker.wait())
        .await
        .is_err()
    {
        warn!("tasks did not stop within 3 s; exiting anyway");
    }
    threads.join(SHUTDOWN_DEADLINE).await;
    #[cfg(feature = "dashboard")]
    if let Some(d) = dashboard {
        d.stop(SHUTDOWN_DEADLINE).await;
    }
    Ok(())
}
