//! The web dashboard's HTTP/1.1 server on the node's runtime: one accept loop, one task per
//! connection, at most [`MAX_CONNECTIONS`] at once (more are closed at once), request heads
//! of at most 16 KiB read within 10 s, and every connection closed on shutdown. Each request
//! carries its peer address (`ConnectInfo`) for the login rate limit and the proxy checks.
//!
//! Not here: routes and what they answer (the parent).

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;
use tracing::warn;

/// Connections served at once (SSE clients included).
pub const MAX_CONNECTIONS: usize = 256;
/// The most a request head (line and headers) may take.
const MAX_HEAD: usize = 16 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown`.
pub fn start(
    listener: TcpListener,
    app: Router,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) {
    let conns = tracker.clone();
    tracker.spawn(async move {
        let cap = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut refused: u64 = 0;
        loop {
            let (stream, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(error) => {
                        // Out of descriptors and the like: wait a little, then go on.
                        warn!(%error, "web: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = Arc::clone(&cap).try_acquire_owned() else {
                refused += 1;
                if refused.is_power_of_two() {
                    warn!(
                        refused,
                        max = MAX_CONNECTIONS,
                        "web: too many connections; closed"
                    );
                }
                continue;
            };
            let svc = app
                .clone()
                .map_request(move |mut req: hyper::Request<Incoming>| {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    req
                });
            let stop = shutdown.clone();
            conns.spawn(async move {
                let _permit = permit;
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD);
                let conn =
                    http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = stop.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                    }
                }
            });
        }
    });
}
