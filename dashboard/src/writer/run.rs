//! The writer thread's loop: take messages, then do one bounded piece of background work
//! (a flush step, a host update, a rollup or prune step, a reconnect attempt), and repeat.
//! Failures go through [`Writer::fail`]: logged once per cause, retried with backoff.

use super::{
    COALESCE, FLUSH_STEP_ROWS, HOSTS_EVERY_MS, Ingest, MAX_BACKOFF, MSGS_PER_TURN, Msg,
    PRUNE_EVERY_MS, StoreConfig, TICK, Writer, flush, head, health, maint, mem,
};
use crate::error::StoreError;
use crate::layout::dur_ms;
use crate::schema;
use health::Shared;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

impl Writer {
    pub(super) fn new(cfg: StoreConfig, shared: Arc<Shared>) -> Writer {
        let now = cfg.clock.now_ms();
        let mem = mem::Mem {
            backlog_cap: cfg.max_backlog_bytes,
            retention_ms: dur_ms(cfg.retention_raw),
            ..mem::Mem::default()
        };
        Writer {
            next_flush_ms: now + dur_ms(cfg.flush_every),
            next_hosts_ms: now,
            next_prune_ms: now,
            cfg,
            shared,
            conn: None,
            mem,
            maint: maint::Maint::default(),
            flush_job: None,
            pruning: false,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(500),
            next_status: Instant::now(),
        }
    }

    fn now(&self) -> i64 {
        self.cfg.clock.now_ms()
    }

    /// Opens the store and loads its state; on failure records the error for a retry.
    pub(super) fn connect(&mut self) -> bool {
        let path = self.cfg.path.clone();
        let res =
            schema::open_writer_waiting(&path, schema::WRITER_BUSY_TIMEOUT).and_then(|conn| {
                flush::load(&conn, &mut self.mem, &self.shared.counters)
                    .and_then(|()| self.maint.load(&conn))
                    .map_err(|e| StoreError::sqlite(&path, e))?;
                Ok(conn)
            });
        match res {
            Ok(conn) => {
                self.conn = Some(conn);
                self.backoff = Duration::from_millis(500);
                if let Some(was) = self.shared.clear_error() {
                    tracing::info!(path = %path.display(), was = %was, "store writable again");
                }
                self.write_status("ok");
                true
            }
            Err(e) => {
                self.fail(e);
                false
            }
        }
    }

    /// Records a failure: drop the connection, log once per cause, back off.
    fn fail(&mut self, e: StoreError) {
        self.conn = None;
        self.flush_job = None;
        let now = self.now();
        if self.shared.set_error(&e, now) {
            tracing::error!(
                error = %e,
                backlog_bytes = self.mem.backlog_bytes,
                "store cannot be written; keeping samples in memory and retrying"
            );
            self.write_status("error");
        }
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    pub(super) fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            let wait = if self.busy() { Duration::ZERO } else { TICK };
            let first = match rx.recv_timeout(wait) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut stop = false;
            let (mut handled, mut waited_on) = (0, false);
            for m in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()).take(MSGS_PER_TURN))
            {
                handled += 1;
                // Someone waits for the answer of these: no coalescing pause after them.
                waited_on |= !matches!(m, Msg::Ingest(_));
                if !self.handle(m) {
                    stop = true;
                    break;
                }
            }
            if stop {
                break;
            }
            self.turn();
            // Let messages gather instead of waking this thread for each one (a wake-up is a
            // few microseconds of the kernel's time, per frame of every host). The queue holds
            // seconds of a large fleet; the store is written every flush interval anyway.
            if handled > 0 && handled < MSGS_PER_TURN && !waited_on && !self.busy() {
                std::thread::sleep(COALESCE);
            }
        }
        self.final_flush();
    }

    /// Handles one message; false means stop.
    fn handle(&mut self, m: Msg) -> bool {
        let now = self.now();
        match m {
            Msg::Ingest(Ingest::Samples(s)) => self.mem.ingest(s, now, &self.shared.counters),
            Msg::Ingest(Ingest::Host {
                name,
                info,
                hops,
                ts_ms,
            }) => {
                let h = self.mem.host(&name);
                self.mem.seen(h, ts_ms, Some(hops));
                self.mem.hosts[h].info = Some(info);
            }
            Msg::Ingest(Ingest::Position { host, boot_id, seq }) => {
                self.mem.positions.insert(host, (boot_id, seq));
            }
            Msg::Ingest(Ingest::Seen { name, hops, ts_ms }) => {
                let h = self.mem.host(&name);
                self.mem.seen(h, ts_ms, Some(hops));
            }
            Msg::Call(f) => {
                if self.conn.is_none() && Instant::now() >= self.retry_at {
                    self.connect();
                }
                f(self.conn.as_mut(), &self.cfg.path);
            }
            Msg::Head(req, reply) => {
                let _ = reply.send(head::answer(&self.mem, &req));
            }
            Msg::Flush(reply) => {
                let r = self.flush_all();
                let _ = reply.send(r);
            }
            Msg::Maintain(reply) => {
                let r = self.maintain_all();
                let _ = reply.send(r);
            }
            Msg::Shutdown => return false,
        }
        true
    }

    fn busy(&self) -> bool {
        self.conn.is_some() && (self.flush_job.is_some() || self.pruning)
    }

    /// One bounded piece of background work.
    fn turn(&mut self) {
        let now = self.now();
        if Instant::now() >= self.next_status {
            self.write_status(if self.conn.is_some() { "ok" } else { "error" });
        }
        if self.conn.is_none() {
            if Instant::now() >= self.retry_at {
                self.connect();
            }
            return;
        }
        if self.flush_job.is_none()
            && (now >= self.next_flush_ms
                || self.mem.backlog_bytes > self.cfg.max_backlog_bytes / 2)
        {
            self.mem.seal_idle(now, &self.shared.counters);
            self.flush_job = Some(flush::FlushJob::new(&self.mem));
        }
        if self.flush_job.is_some() {
            self.flush_step();
            return;
        }
        if now >= self.next_hosts_ms {
            self.next_hosts_ms = now + HOSTS_EVERY_MS;
            if self.mem.hosts.iter().any(|h| h.dirty) {
                let res = match &self.conn {
                    Some(conn) => flush::hosts_step(conn, &self.cfg.path, &mut self.mem),
                    None => Ok(()),
                };
                if let Err(e) = res {
                    self.fail(e);
                }
                return;
            }
        }
        if let Err(e) = self.background(now) {
            self.fail(e);
        }
    }

    /// Rollup and prune steps; at most one per turn.
    fn background(&mut self, now: i64) -> Result<(), StoreError> {
        let path = self.cfg.path.clone();
        let err = |e| StoreError::sqlite(&path, e);
        let Some(conn) = &self.conn else {
            return Ok(());
        };
        if !self.mem.sealed.is_empty() || !self.mem.late.is_empty() {
            return Ok(());
        }
        if self
            .maint
            .rollup_step(conn, now, &self.shared.counters)
            .map_err(err)?
        {
            return Ok(());
        }
        if self.pruning || now >= self.next_prune_ms {
            self.next_prune_ms = now + PRUNE_EVERY_MS;
            self.pruning = self
                .maint
                .prune_step(conn, now, self.retention())
                .map_err(err)?;
        }
        Ok(())
    }

    fn retention(&self) -> maint::Retention {
        maint::Retention {
            raw: dur_ms(self.cfg.retention_raw),
            m1: dur_ms(self.cfg.retention_1m),
            h1: dur_ms(self.cfg.retention_1h),
        }
    }

    /// Runs one flush step; completes the flush when it is the last.
    fn flush_step(&mut self) {
        let (Some(conn), Some(job)) = (&self.conn, &mut self.flush_job) else {
            return;
        };
        let res = flush::step(
            conn,
            &self.cfg.path,
            &mut self.mem,
            job,
            self.maint.rollup_next,
            FLUSH_STEP_ROWS,
            &self.shared.counters,
        );
        match res {
            Ok(false) => {}
            Ok(true) => {
                let now = self.now();
                self.flush_job = None;
                self.next_flush_ms = now + dur_ms(self.cfg.flush_every);
                self.shared
                    .counters
                    .flushes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.shared
                    .set_gauges(self.mem.backlog_bytes, self.mem.series.len(), Some(now));
            }
            Err(e) => self.fail(e),
        }
    }

    /// Flushes everything now (for `flush()`, `maintain()` and shutdown).
    fn flush_all(&mut self) -> Result<(), String> {
        if self.conn.is_none() && !self.connect() {
            return Err(self.health_error());
        }
        self.mem.seal_idle(self.now(), &self.shared.counters);
        self.flush_job = Some(flush::FlushJob::new(&self.mem));
        while self.flush_job.is_some() {
            self.flush_step();
            if self.conn.is_none() {
                return Err(self.health_error());
            }
        }
        Ok(())
    }

    fn maintain_all(&mut self) -> Result<(), String> {
        self.flush_all()?;
        let now = self.now();
        let path = self.cfg.path.clone();
        let ret = self.retention();
        let Some(conn) = &self.conn else {
            return Err(self.health_error());
        };
        let res = (|| {
            while self.maint.rollup_step(conn, now, &self.shared.counters)? {}
            while self.maint.prune_step(conn, now, ret)? {}
            Ok(())
        })();
        res.map_err(|e| {
            let e = StoreError::sqlite(&path, e);
            let text = e.to_string();
            self.fail(e);
            text
        })
    }

    fn health_error(&self) -> String {
        self.shared
            .health()
            .error
            .unwrap_or_else(|| "the store cannot be written".into())
    }

    fn final_flush(&mut self) {
        for attempt in 0..3 {
            match self.flush_all() {
                Ok(()) => break,
                Err(e) if attempt == 2 => {
                    tracing::error!(
                        error = %e,
                        backlog_bytes = self.mem.backlog_bytes,
                        "store not flushed at shutdown; unwritten samples are lost"
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        self.write_status("stopped");
    }

    fn write_status(&mut self, state: &str) {
        self.next_status = Instant::now() + Duration::from_secs(10);
        self.shared
            .set_gauges(self.mem.backlog_bytes, self.mem.series.len(), None);
        health::write_status(&self.cfg.path, &self.shared.health(), state, self.now());
    }
}
