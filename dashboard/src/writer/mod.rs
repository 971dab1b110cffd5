//! The store writer: one thread that owns the SQLite connection, fed by a bounded queue.
//!
//! Raw samples go into per-series open chunks in memory (see [`mem`]); every
//! [`StoreConfig::flush_every`] the open chunks, sealed chunks, late samples and hosts are
//! written in bounded transactions ([`flush`]), and between batches the writer rolls up
//! finished hours and prunes old data ([`maint`]). A reader therefore sees data at most about
//! `flush_every` old, and `kill -9` loses at most that much (mesh backfill re-delivers it).
//!
//! When SQLite fails (disk full, read-only file, corrupt file, I/O error) the writer logs the
//! cause once, shows it in [`WriterHealth`] and the status file, keeps routing samples into
//! memory (the unwritten backlog is capped; beyond it the oldest chunks are dropped and
//! counted), and retries with a fresh connection and backoff until writing works again.
//! Not responsible for reading ([`crate::reader`]) or for the mesh.

mod flush;
mod head;
mod health;
mod maint;
mod mem;

pub use health::{STATUS_LEN, StatusFile, WriterCounters, WriterHealth, read_status, status_path};

use crate::error::StoreError;
use crate::layout;
use crate::time::Clock;
use health::Shared;
use meshmon_proto::SeriesKey;
use meshmon_proto::payload::HostInfo;
use rusqlite::Connection;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the writer is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The SQLite file (created with its directory if missing).
    pub path: PathBuf,
    /// How long raw samples are kept (`store.retention`, default 7 days).
    pub retention_raw: Duration,
    /// How long one-minute rollups are kept (default 90 days).
    pub retention_1m: Duration,
    /// How long one-hour rollups are kept (default 2 years).
    pub retention_1h: Duration,
    /// How often open chunks are written (default 30 s).
    pub flush_every: Duration,
    /// Ingest queue capacity in messages; a full queue drops (and counts) new messages.
    pub queue: usize,
    /// Cap on unwritten sealed chunks and late samples held while the store cannot be
    /// written, in bytes; beyond it the oldest are dropped and counted.
    pub max_backlog_bytes: usize,
    /// Where "now" comes from (tests and benchmarks use a manual clock).
    pub clock: Clock,
}

impl StoreConfig {
    /// Defaults for a store at `path`.
    pub fn new(path: impl Into<PathBuf>) -> StoreConfig {
        StoreConfig {
            path: path.into(),
            retention_raw: layout::DEFAULT_RETENTION_RAW,
            retention_1m: layout::DEFAULT_RETENTION_1M,
            retention_1h: layout::DEFAULT_RETENTION_1H,
            flush_every: layout::DEFAULT_FLUSH_EVERY,
            queue: 8192,
            max_backlog_bytes: 256 << 20,
            clock: Clock::System,
        }
    }
}

/// One metric value of one host.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Origin host name.
    pub host: String,
    /// The series.
    pub series: SeriesKey,
    /// Time at the origin, ms since the epoch.
    pub ts_ms: i64,
    /// The value.
    pub value: f64,
}

/// What the writer takes in.
#[derive(Debug, Clone)]
pub enum Ingest {
    /// Samples, in any order, possibly late (backfill) or re-delivered (kept once).
    Samples(Vec<Sample>),
    /// A host's info, heard at `ts_ms` over `hops` links.
    Host {
        /// Host name.
        name: String,
        /// Its host info.
        info: HostInfo,
        /// Hop distance of the frame.
        hops: u8,
        /// When it was heard (receiver's clock).
        ts_ms: i64,
    },
    /// Everything of `host`'s boot `boot_id` up to frame `seq` has been sent before this
    /// message. Persisted after the data it covers, so a restarted dashboard can ask the mesh
    /// for exactly the frames after it.
    Position {
        /// Host (origin) name.
        host: String,
        /// Its boot id.
        boot_id: u64,
        /// Last frame sequence number covered.
        seq: u64,
    },
    /// A host was heard from (any frame).
    Seen {
        /// Host name.
        name: String,
        /// Hop distance of the frame.
        hops: u8,
        /// When it was heard (receiver's clock).
        ts_ms: i64,
    },
}

type Reply = SyncSender<Result<(), String>>;

/// Work another part of the node does on the writer's connection (the alert tables), so the
/// store file has one writer: it gets the connection, or `None` while the store cannot be
/// opened, and the file's path for its errors.
pub type Call = Box<dyn FnOnce(Option<&mut Connection>, &std::path::Path) + Send>;

enum Msg {
    Ingest(Ingest),
    Call(Call),
    /// A head request of the control endpoint; the framed reply goes back.
    Head(
        crate::head::HeadRequest,
        tokio::sync::oneshot::Sender<Vec<u8>>,
    ),
    Flush(Reply),
    Maintain(Reply),
    Shutdown,
}

/// A cloneable sender into the writer's queue.
#[derive(Debug, Clone)]
pub struct IngestSender {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl IngestSender {
    /// Queues `ingest` without blocking. Returns false when the queue is full or the writer
    /// is gone; the dropped samples are counted in [`WriterHealth::dropped_queue`].
    pub fn try_send(&self, ingest: Ingest) -> bool {
        let n = match &ingest {
            Ingest::Samples(s) => s.len() as u64,
            _ => 0,
        };
        match self.tx.try_send(Msg::Ingest(ingest)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.counters.dropped_queue.fetch_add(n, Relaxed);
                false
            }
        }
    }
}

/// A sender of calls into the writer thread, for the alert thread.
#[derive(Clone)]
pub struct CallSender {
    tx: SyncSender<Msg>,
}

impl std::fmt::Debug for CallSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CallSender")
    }
}

impl CallSender {
    /// Runs `f` on the writer thread with its connection and waits for the result. It waits
    /// for room in the writer's queue too: call it only from a thread of its own (never from
    /// an async runtime other parts share). While the store cannot be opened, `f` is not run
    /// and the answer is [`StoreError::Writer`].
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection, &std::path::Path) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = sync_channel(1);
        let call: Call = Box::new(move |conn, path| {
            let r = match conn {
                Some(conn) => f(conn, path),
                None => Err(StoreError::Writer(format!(
                    "store '{}' is not open (see the writer's error)",
                    path.display()
                ))),
            };
            let _ = tx.send(r);
        });
        self.tx
            .send(Msg::Call(call))
            .map_err(|_| StoreError::Writer("the writer thread is gone".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Writer("the writer thread is gone".into()))?
    }
}

/// A sender of head requests into the writer's queue, for the control endpoint's task.
#[derive(Clone)]
pub struct HeadSender {
    tx: SyncSender<Msg>,
}

impl std::fmt::Debug for HeadSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeadSender")
    }
}

impl HeadSender {
    /// Queues `req` without blocking (it is answered after everything queued before it);
    /// `None` when the queue is full or the writer is gone. The receiver gets the framed
    /// [`crate::head::HeadReply`].
    pub fn ask(
        &self,
        req: crate::head::HeadRequest,
    ) -> Option<tokio::sync::oneshot::Receiver<Vec<u8>>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.tx.try_send(Msg::Head(req, tx)).ok().map(|()| rx)
    }
}

/// The handle of a running writer.
#[derive(Debug)]
pub struct WriterHandle {
    sender: IngestSender,
    thread: Option<JoinHandle<()>>,
}

impl WriterHandle {
    /// Queues `ingest` without blocking; false (and counted) when the queue is full.
    pub fn try_send(&self, ingest: Ingest) -> bool {
        self.sender.try_send(ingest)
    }

    /// A sender for other threads or tasks.
    pub fn sender(&self) -> IngestSender {
        self.sender.clone()
    }

    /// A sender of calls on the writer's connection (the alert tables).
    pub fn calls(&self) -> CallSender {
        CallSender {
            tx: self.sender.tx.clone(),
        }
    }

    /// A sender of head requests (the control endpoint).
    pub fn heads(&self) -> HeadSender {
        HeadSender {
            tx: self.sender.tx.clone(),
        }
    }

    /// The writer's health now.
    pub fn health(&self) -> WriterHealth {
        self.sender.shared.health()
    }

    /// Writes everything queued before this call, blocking until done. Fails with the store
    /// error when the store cannot be written right now.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.request(Msg::Flush)
    }

    /// Flushes, then rolls up every hour that is due and prunes past retention, blocking.
    /// The writer does this by itself in the background; this is for tests and tools.
    pub fn maintain(&self) -> Result<(), StoreError> {
        self.request(Msg::Maintain)
    }

    fn request(&self, make: fn(Reply) -> Msg) -> Result<(), StoreError> {
        let (tx, rx) = sync_channel(1);
        self.sender
            .tx
            .send(make(tx))
            .map_err(|_| StoreError::Writer("the writer thread is gone".into()))?;
        rx.recv()
            .map_err(|_| StoreError::Writer("the writer thread is gone".into()))?
            .map_err(StoreError::Writer)
    }

    /// Flushes what can be flushed and stops the writer thread; returns its final health.
    pub fn shutdown(mut self) -> WriterHealth {
        let _ = self.sender.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
        self.health()
    }
}

/// Starts the writer thread for the store in `cfg`. The store is opened (created and
/// migrated if needed) on the writer thread; if that fails the writer still runs, reports
/// the error in its health and retries. Fails only if the thread cannot be started.
pub fn start_writer(cfg: StoreConfig) -> Result<WriterHandle, StoreError> {
    let (tx, rx) = sync_channel(cfg.queue.max(1));
    let shared = Arc::new(Shared::default());
    let mut w = Writer::new(cfg, shared.clone());
    w.connect();
    let thread = std::thread::Builder::new()
        .name("meshmon-store".into())
        .spawn(move || {
            let shared = w.shared.clone();
            let path = w.cfg.path.clone();
            // A bug must not take the node down: report it as the store's error instead.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.run(&rx))).is_err() {
                let e = StoreError::Writer("the writer thread stopped after an internal error".into());
                tracing::error!(path = %path.display(), "store writer stopped after an internal error");
                shared.set_error(&e, crate::time::now_ms());
            }
        })
        .map_err(|e| StoreError::Writer(format!("cannot start the writer thread: {e}")))?;
    Ok(WriterHandle {
        sender: IngestSender { tx, shared },
        thread: Some(thread),
    })
}

/// Rows per flush step (one transaction).
const FLUSH_STEP_ROWS: usize = 2000;
/// Longest wait for the queue when idle.
const TICK: Duration = Duration::from_millis(100);
/// After a batch of ingest messages, how long the writer lets the next ones gather.
const COALESCE: Duration = Duration::from_millis(20);
/// Messages handled between two steps of background work.
const MSGS_PER_TURN: usize = 512;
/// Hosts are written at least this often (ms) even between flushes.
const HOSTS_EVERY_MS: i64 = 1000;
/// Pruning runs this often (ms).
const PRUNE_EVERY_MS: i64 = 3_600_000;
/// Longest wait between retries after a failure.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

struct Writer {
    cfg: StoreConfig,
    shared: Arc<Shared>,
    conn: Option<Connection>,
    mem: mem::Mem,
    maint: maint::Maint,
    flush_job: Option<flush::FlushJob>,
    next_flush_ms: i64,
    next_hosts_ms: i64,
    next_prune_ms: i64,
    pruning: bool,
    retry_at: Instant,
    backoff: Duration,
    next_status: Instant,
}

mod run;
