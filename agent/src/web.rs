//! Wires the web dashboard (feature `web`, `[web] listen` on a dashboard node) into a node:
//! the live samples queue ingestion feeds, and the mesh status the fleet and mesh views read.
//!
//! Not here: the server itself (`meshmon_dashboard::web`).

use crate::config::Config;
use crate::net::mesh::MeshCommand;
use meshmon_dashboard::Sample;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

/// Where ingestion hands each live frame's samples.
pub type LiveTx = mpsc::Sender<Vec<Sample>>;

/// The live samples queue, when this node serves the web dashboard.
pub fn channel(cfg: &Config) -> Option<(LiveTx, mpsc::Receiver<Vec<Sample>>)> {
    (cfg.agent.node.dashboard && cfg.dashboard.web.listen.is_some())
        .then(|| mpsc::channel(meshmon_dashboard::web::LIVE_QUEUE))
}

/// Starts the web dashboard; returns its URL.
pub async fn start(
    cfg: &Config,
    samples: mpsc::Receiver<Vec<Sample>>,
    commands: mpsc::Sender<MeshCommand>,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<String> {
    let status: meshmon_dashboard::web::StatusSource = Arc::new(move || {
        let commands = commands.clone();
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            commands.send(MeshCommand::Status(tx)).await.ok()?;
            rx.await.ok()
        })
    });
    let web = &cfg.dashboard.web;
    let params = meshmon_dashboard::web::WebParams {
        cfg: web.clone(),
        store: cfg.dashboard.store.path.clone(),
        node: cfg.agent.node.name.clone(),
        status,
        samples,
    };
    let addr = meshmon_dashboard::web::start(params, tracker, shutdown)
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot listen on '{}' (web.listen): {e}",
                web.listen.map(|a| a.to_string()).unwrap_or_default()
            )
        })?;
    let url = format!("http://{addr}/");
    info!(%url, login = web.password_hash.is_some(), public_status = web.public_status, "web dashboard listening");
    Ok(url)
}
