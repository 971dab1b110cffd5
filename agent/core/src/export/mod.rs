//! Exports the mesh to other systems. Today: an optional Prometheus endpoint
//! (`[export] prometheus_listen`), a small HTTP/1.1 server whose only route is
//! `GET /metrics`. One task owns the [`prom::LatestValues`] model and is fed the frames this
//! node accepts; each scrape asks the mesh for its status and the model for a rendering.
//!
//! Not here: the model and text format ([`prom`]), deciding which frames are accepted (gossip).

pub mod prom;

use crate::gossip::Delivered;
use crate::net::mesh::{self, MeshCommand};
use prom::{LatestValues, NodeCounters};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Frames waiting for the exporter's model.
pub const EXPORT_QUEUE: usize = 8192;
/// The longest request head accepted.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a client has to send its request (and to take the answer).
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a scrape waits for the mesh's status.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Scrapes served at once; more connections are closed at once.
const MAX_CONNECTIONS: usize = 16;
/// How often stale hosts are dropped from the model.
const EXPIRE_EVERY: Duration = Duration::from_secs(30);

/// What the exporter needs from the node.
pub struct ExportParams {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Live frames accepted by this node.
    pub frames: mpsc::Receiver<Delivered>,
    /// The mesh, for its status.
    pub commands: mpsc::Sender<MeshCommand>,
    /// The mesh's count of frames its consumers' queues could not take.
    pub delivery_drops: Arc<AtomicU64>,
    /// Frames the exporter's queue could not take (counted by whoever feeds it).
    pub export_drops: Arc<AtomicU64>,
}

/// A scrape's request to the model task.
struct Render {
    node: NodeCounters,
    reply: oneshot::Sender<String>,
}

/// Binds the endpoint and starts the model and server tasks; both stop on `shutdown`.
pub async fn start(
    p: ExportParams,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind(p.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "export.prometheus_listen: cannot listen on '{}': {e}",
            p.listen
        )
    })?;
    info!(listen = %p.listen, "prometheus endpoint at /metrics");
    let (render_tx, render_rx) = mpsc::channel::<Render>(MAX_CONNECTIONS);
    tracker.spawn(model_task(p.frames, render_rx, shutdown.clone()));
    let server = Server {
        commands: p.commands,
        render: render_tx,
        delivery_drops: p.delivery_drops,
        export_drops: p.export_drops,
    };
    tracker.spawn(accept_loop(
        listener,
        Arc::new(server),
        tracker.clone(),
        shutdown,
    ));
    Ok(())
}

async fn model_task(
    mut frames: mpsc::Receiver<Delivered>,
    mut renders: mpsc::Receiver<Render>,
    shutdown: CancellationToken,
) {
    let mut latest = LatestValues::default();
    let mut expire = tokio::time::interval(EXPIRE_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            d = frames.recv() => match d {
                Some(d) => latest.on_frame(&d, mesh::wall_ms()),
                None => break,
            },
            r = renders.recv() => match r {
                Some(r) => {
                    let _ = r.reply.send(prom::render(&latest, &r.node, mesh::wall_ms()));
                }
                None => break,
            },
            _ = expire.tick() => latest.expire(mesh::wall_ms()),
        }
    }
}

struct Server {
    commands: mpsc::Sender<MeshCommand>,
    render: mpsc::Sender<Render>,
    delivery_drops: Arc<AtomicU64>,
    export_drops: Arc<AtomicU64>,
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<Server>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                warn!(%error, "prometheus endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            debug!(%peer, "prometheus endpoint busy; connection closed");
            continue;
        };
        let server = Arc::clone(&server);
        let stop = shutdown.clone();
        tracker.spawn(async move {
            tokio::select! {
                () = stop.cancelled() => {}
                r = tokio::time::timeout(IO_TIMEOUT * 2, server.serve(stream)) => {
                    if let Ok(Err(error)) = r {
                        debug!(%peer, %error, "prometheus endpoint: connection failed");
                    }
                }
            }
            drop(slot);
        });
    }
}

/// Reads a request head: up to the blank line, at most [`MAX_REQUEST`] bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tokio::time::timeout(IO_TIMEOUT, stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "read timeout"))??;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(buf));
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

/// The route of a request head: `true` for `GET /metrics` (a query string is ignored).
pub fn is_metrics(head: &[u8]) -> bool {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return false;
    };
    let path = target.split('?').next().unwrap_or_default();
    method == "GET" && path == "/metrics"
}

impl Server {
    async fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let Some(head) = read_head(&mut stream).await? else {
            return respond(
                &mut stream,
                "400 Bad Request",
                "text/plain",
                "bad request\n",
            )
            .await;
        };
        if !is_metrics(&head) {
            return respond(&mut stream, "404 Not Found", "text/plain", "not found\n").await;
        }
        let body = self.scrape().await;
        respond(
            &mut stream,
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &body,
        )
        .await
    }

    async fn scrape(&self) -> String {
        let (tx, rx) = oneshot::channel();
        let status = if self.commands.try_send(MeshCommand::Status(tx)).is_ok() {
            tokio::time::timeout(STATUS_TIMEOUT, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        let node = NodeCounters {
            status,
            delivery_drops: self.delivery_drops.load(Ordering::Relaxed),
            export_drops: self.export_drops.load(Ordering::Relaxed),
        };
        let (reply, answer) = oneshot::channel();
        if self.render.send(Render { node, reply }).await.is_err() {
            return String::new();
        }
        answer.await.unwrap_or_default()
    }
}

async fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(IO_TIMEOUT, write)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timeout"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_is_routed() {
        assert!(is_metrics(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(is_metrics(b"GET /metrics?x=1 HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics(b"POST /metrics HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics(b"GET /metricsx HTTP/1.1\r\n\r\n"));
        assert!(!is_metrics(b"\xff\xfe"));
        assert!(!is_metrics(b""));
    }
}
