//! The query side of the head endpoint: connect to `<store>.sock` with a short timeout, send
//! one request, read one reply. No socket, or nobody listening on it, means the node is not
//! running: the query reads the file alone, at once.
//!
//! Not here: merging the reply into results ([`crate::reader`]).

use super::{Head, HeadReply, HeadRequest, MAX_REPLY, frame, frame_len, socket_path};
use std::path::Path;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::UnixStream;

/// Longest wait for the connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait for the whole answer after connecting.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// What asking the node gave.
#[derive(Debug)]
pub enum Fetched {
    /// No node serves this store (stopped, or not a dashboard node): read the file alone.
    NotRunning,
    /// The node's head.
    Head(Head),
    /// A node answers but the head could not be had; the text says why.
    Failed(String),
}

/// Asks the node whose store is `db` for its head. Blocks (at most [`CONNECT_TIMEOUT`] plus
/// [`ANSWER_TIMEOUT`]); callable from inside an async runtime too (it then asks from a thread
/// of its own).
pub fn fetch(db: &Path, req: &HeadRequest) -> Fetched {
    let path = socket_path(db);
    if !path.exists() {
        return Fetched::NotRunning;
    }
    if tokio::runtime::Handle::try_current().is_ok() {
        // A runtime cannot be started inside another one's context.
        return std::thread::scope(|s| {
            s.spawn(|| ask(&path, req))
                .join()
                .unwrap_or_else(|_| Fetched::Failed("the head request panicked".into()))
        });
    }
    ask(&path, req)
}

fn ask(path: &Path, req: &HeadRequest) -> Fetched {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Fetched::Failed(format!("cannot start a runtime: {e}")),
    };
    rt.block_on(async {
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, UnixStream::connect(path)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
                ) =>
            {
                return Fetched::NotRunning;
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Fetched::Failed(format!(
                    "'{}' is private to the node's user (mode 0600); run the query as that \
                     user or root",
                    path.display()
                ));
            }
            Ok(Err(e)) => return Fetched::Failed(format!("'{}': {e}", path.display())),
            Err(_) => return Fetched::Failed(format!("'{}': connect timed out", path.display())),
        };
        match tokio::time::timeout(ANSWER_TIMEOUT, exchange(stream, req)).await {
            Ok(Ok(reply)) => match reply.error {
                Some(e) => Fetched::Failed(e),
                None => match Head::from_reply(reply, req.host.as_deref()) {
                    Ok(h) => Fetched::Head(h),
                    Err(e) => Fetched::Failed(e),
                },
            },
            Ok(Err(e)) => Fetched::Failed(e),
            Err(_) => Fetched::Failed(format!("no answer within {}s", ANSWER_TIMEOUT.as_secs())),
        }
    })
}

async fn exchange(mut stream: UnixStream, req: &HeadRequest) -> Result<HeadReply, String> {
    let io = |e: std::io::Error| format!("head endpoint: {e}");
    stream.write_all(&frame(req)).await.map_err(io)?;
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await.map_err(io)?;
    let n = frame_len(prefix, MAX_REPLY)?;
    let mut body = vec![0u8; n];
    stream.read_exact(&mut body).await.map_err(io)?;
    rmp_serde::from_slice(&body).map_err(|e| format!("head endpoint: bad reply: {e}"))
}
