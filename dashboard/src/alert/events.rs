//! The alert machine's inputs and outputs: the [`Event`]s it is fed (with the [`Startup`]
//! state and [`Store`] reads the shell hands it) and the [`Effect`]s it returns ([`Db`]
//! writes, deliveries, syncs).
//!
//! Not here: the decisions (`machine`) or carrying effects out (`runner`).

use super::deliver::{Job, Outcome};
use crate::alertdb::{AlertRecord, OutboxRow, SilenceRow};
use meshmon_proto::SeriesKey;
use meshmon_proto::payload::{AlertSync, HostInfo};
use std::collections::HashMap;

/// A live frame (never a replayed one) of `host`, as the alert thread is told of it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub host: String,
    /// The frame's own timestamp.
    pub ts_ms: i64,
    /// This node's clock when it arrived.
    pub now_ms: i64,
    pub values: Vec<(SeriesKey, f64)>,
    /// `values` is every series the host reports now (decoded without a gap).
    pub complete: bool,
    pub info: Option<HostInfo>,
}

/// What other processes (`meshmon alerts`, the TUI) and merged syncs left in the store.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Store {
    /// Identities of acknowledged alerts still active, newest first (at most 1000).
    pub acked: Vec<String>,
    /// Silences in force now.
    pub silences: Vec<SilenceRow>,
    /// Silences changed in the last [`SYNC_WINDOW_MS`](super::SYNC_WINDOW_MS).
    pub silences_changed: Vec<SilenceRow>,
}

/// What the machine starts from: the store as the previous run left it.
#[derive(Debug, Clone, Default)]
pub struct Startup {
    /// Pending and firing alerts.
    pub active: Vec<AlertRecord>,
    /// Hosts in the store: name and the timestamp of their last frame.
    pub hosts: Vec<(String, i64)>,
    /// Every outbox row, oldest first.
    pub outbox: Vec<OutboxRow>,
    /// Rule and host of the alerts that queued rows are about, by ident.
    pub alerts: HashMap<String, (String, String)>,
    /// Notifications this node delivered in the last
    /// [`SYNC_WINDOW_MS`](super::SYNC_WINDOW_MS), newest first.
    pub sent: Vec<String>,
    pub store: Store,
}

/// What the machine is told.
#[derive(Debug, Clone)]
pub enum Event {
    /// A live frame.
    Frame(Frame),
    /// Another dashboard node's account.
    Sync {
        from: String,
        sync: AlertSync,
        now_ms: i64,
    },
    /// A delivery task's report on a notification.
    Report {
        notification: String,
        outcome: Outcome,
        now_ms: i64,
    },
    /// A fresh read of what others wrote into the store.
    Store(Store),
    /// A delivery task did not take a [`Effect::Deliver`] job (its queue was full or closed):
    /// the notification is no longer in flight and is offered again at the next dispatch.
    Refused(String),
    /// The last [`Effect::Gossip`] did not fit the gossip queue.
    GossipDropped,
    /// Time passed.
    Tick(i64),
}

/// How a queued notification ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    Sent,
    SentElsewhere,
    Silenced,
    Expired,
}

impl Done {
    /// The outbox's `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Done::Sent => "sent",
            Done::SentElsewhere => "sent_elsewhere",
            Done::Silenced => "silenced",
            Done::Expired => "expired",
        }
    }
}

/// One write to the alert tables.
#[derive(Debug, Clone, PartialEq)]
pub enum Db {
    Upsert(AlertRecord),
    DeletePending(String),
    /// Queue a notification (`silenced` rows are queued already finished); a no-op if the id
    /// exists.
    Enqueue {
        notification: String,
        target: String,
        body: String,
        silenced: bool,
        now_ms: i64,
    },
    /// End a notification if it is still queued.
    Finish {
        notification: String,
        state: Done,
        now_ms: i64,
        error: Option<String>,
    },
    AttemptFailed {
        notification: String,
        error: String,
    },
    /// These queued notifications go out as one message, `group` (the first's id).
    Group {
        group: String,
        notifications: Vec<String>,
    },
    AckIdents(Vec<String>),
    MergeSilence(SilenceRow),
    Prune {
        before_ms: i64,
    },
}

/// What the machine asks the shell to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Writes to run in one transaction.
    Tx(Vec<Db>),
    /// Hand `job` to the delivery task of `targets[target]`; if it is not taken, answer
    /// [`Event::Refused`].
    Deliver { target: usize, job: Job },
    /// Flood this to the other dashboard nodes; if it does not fit, answer
    /// [`Event::GossipDropped`].
    Gossip(AlertSync),
}
