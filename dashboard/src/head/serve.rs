//! The node's head endpoint: a Unix socket next to the store file (mode 0600), one task
//! accepting, one short task per connection (at most [`MAX_CONNECTIONS`] at once; more wait
//! in the socket's backlog until one ends, which takes at most the timeouts below: the web
//! dashboard asks several at once, and a closed connection would make a query read the file
//! alone, without the newest data). A connection sends one [`HeadRequest`]; the task hands it to the store
//! writer thread (through the writer's queue, so nothing new touches the store or its memory
//! from another thread), waits for the framed reply and writes it back.
//!
//! Bounds: the request must arrive within [`IO_TIMEOUT`] and be at most
//! [`super::MAX_REQUEST`] bytes; the writer must answer within [`ANSWER_TIMEOUT`]; the reply
//! is written within [`IO_TIMEOUT`]. A full writer queue is answered with an error (the query
//! then reads the file alone), never waited on.
//!
//! On shutdown, connections still open are closed at once.
//!
//! Not here: building the reply (`writer::head`), the query side ([`super::client`]).

use super::{HEAD_VERSION, HeadReply, HeadRequest, MAX_REQUEST, frame_len};
use crate::writer::HeadSender;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 4;
/// Longest wait for a request to arrive, and for the reply to be written.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for the writer thread's answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the endpoint at `path` and serves it until `shutdown`, then removes the socket.
/// Returns `None` (and logs why) when it cannot serve: another process serves that path
/// (two nodes on one store), a file that is not a socket is in the way, or the path is too
/// long for a Unix socket. Queries then read the store file alone.
pub fn start(
    path: PathBuf,
    writer: HeadSender,
    tracker: &TaskTracker,
    shutdown: &CancellationToken,
) -> Option<PathBuf> {
    let listener = match bind(&path) {
        Ok(l) => l,
        Err(error) => {
            warn!(path = %path.display(), %error, "no head endpoint; queries read the store file alone");
            return None;
        }
    };
    info!(path = %path.display(), "head endpoint listening");
    let stop = shutdown.clone();
    let conns = tracker.clone();
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let served = path.clone();
    tracker.spawn(async move {
        loop {
            // A free slot first, then the next connection: others wait in the backlog.
            let permit = tokio::select! {
                () = stop.cancelled() => break,
                p = limit.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else {
                break;
            };
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((stream, _)) => {
                    let (writer, stop) = (writer.clone(), stop.clone());
                    conns.spawn(async move {
                        // Shutdown does not wait for a slow client or answer.
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = serve(stream, &writer) => {}
                        }
                        drop(permit);
                    });
                }
                Err(error) => {
                    warn!(%error, "head endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        let _ = std::fs::remove_file(&served);
    });
    Some(path)
}

/// Binds, first removing a stale socket a killed node left behind.
fn bind(path: &Path) -> Result<UnixListener, String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err("a file that is not a socket is in the way".into());
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err("another process serves it (two nodes on one store?)".into());
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot remove the stale socket: {e}"))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| e.to_string())?;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        let _ = std::fs::remove_file(path);
        return Err(format!("cannot make it private (mode 0600): {e}"));
    }
    Ok(listener)
}

async fn serve(mut stream: UnixStream, writer: &HeadSender) {
    let req = match tokio::time::timeout(IO_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(req)) => req,
        Ok(Err(e)) => {
            let _ = write(&mut stream, &HeadReply::error(e).frame()).await;
            return;
        }
        Err(_) => return,
    };
    let reply = if req.version != HEAD_VERSION {
        HeadReply::error(format!(
            "request version {} (this node speaks {HEAD_VERSION})",
            req.version
        ))
        .frame()
    } else {
        match writer.ask(req) {
            None => HeadReply::error("the store writer's queue is full").frame(),
            Some(rx) => match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(_)) => HeadReply::error("the store writer is gone").frame(),
                Err(_) => HeadReply::error("the store writer did not answer in time").frame(),
            },
        }
    };
    let _ = write(&mut stream, &reply).await;
}

async fn write(stream: &mut UnixStream, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(IO_TIMEOUT, stream.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<HeadRequest, String> {
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|e| format!("reading the request: {e}"))?;
    let n = frame_len(prefix, MAX_REQUEST)?;
    let mut body = vec![0u8; n];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|e| format!("reading the request: {e}"))?;
    rmp_serde::from_slice(&body).map_err(|e| format!("not a head request: {e}"))
}
