//! A viewer: attaches to a node's mesh port like a neighbour that only listens, and receives
//! every frame the node accepts plus its status once a second. The TUI and `meshmon status`
//! use it. It runs the same mesh task as a node, in the viewer role, with no listener.

use crate::gossip::{Delivered, GossipConfig};
use crate::net::mesh::{self, MeshParams};
use crate::net::zmtp::Limits;
use meshmon_proto::payload::{Role, Status};
use meshmon_proto::{Keyring, Payload};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The address to reach a node listening on `listen` from this machine: an unspecified
/// address (0.0.0.0, ::) becomes loopback.
pub fn local_target(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(v) if v.is_unspecified() => "127.0.0.1".parse().ok(),
        std::net::IpAddr::V6(v) if v.is_unspecified() => "::1".parse().ok(),
        ip => Some(ip),
    };
    SocketAddr::new(ip.unwrap_or(listen.ip()), listen.port()).to_string()
}

/// Attaches to `target` (`host:port`); frames and status arrive on the returned channel until
/// `shutdown` is cancelled. Re-attaches by itself if the node restarts.
pub async fn attach(
    target: &str,
    keyring: Keyring,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> anyhow::Result<mpsc::Receiver<Delivered>> {
    let (tx, rx) = mpsc::channel(4096);
    let name = format!("viewer-{}", std::process::id());
    let mut gossip = GossipConfig::new(&name, crate::node::new_boot_id(), u8::MAX);
    gossip.role = Role::Viewer;
    gossip.deliver_all = true;
    gossip.window = 4096;
    mesh::start(
        MeshParams {
            listener: None,
            neighbours: vec![target.to_owned()],
            gossip,
            keyring,
            limits: Limits::default(),
            deliveries: Some(tx),
            own_values: None,
        },
        tracker,
        shutdown,
    )
    .await?;
    Ok(rx)
}

/// Attaches to `target` and returns the node's first status, or an error after `timeout`.
pub async fn fetch_status(
    target: &str,
    keyring: Keyring,
    timeout: Duration,
) -> anyhow::Result<Status> {
    let tracker = TaskTracker::new();
    let stop = CancellationToken::new();
    let _guard = stop.clone().drop_guard();
    let mut rx = attach(target, keyring, &tracker, stop.clone()).await?;
    let wait = async {
        let mut whole = StatusAssembler::default();
        while let Some(d) = rx.recv().await {
            if let Payload::Status(s) = d.payload
                && let Some(s) = whole.push(s)
            {
                return Some(s);
            }
        }
        None
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(Some(s)) => Ok(s),
        _ => anyhow::bail!(
            "no answer from a meshmon node at '{target}' within {}s; is it running \
             ('meshmon agent') and is the key the same?",
            timeout.as_secs()
        ),
    }
}

/// Puts a node's status back together when it comes in several frames (nodes that know many
/// hosts page it; see [`meshmon_proto::payload::Status::parts`]).
#[derive(Debug, Default)]
pub struct StatusAssembler {
    epoch: u64,
    pending: Vec<Option<Status>>,
}

impl StatusAssembler {
    /// Feeds one status frame; returns the whole status once every part of an epoch is in.
    pub fn push(&mut self, s: Status) -> Option<Status> {
        if s.parts <= 1 {
            return Some(s);
        }
        if s.epoch != self.epoch || self.pending.len() != s.parts as usize {
            self.epoch = s.epoch;
            self.pending = vec![None; s.parts as usize];
        }
        let idx = s.part as usize;
        if let Some(slot) = self.pending.get_mut(idx) {
            *slot = Some(s);
        }
        if self.pending.iter().any(Option::is_none) {
            return None;
        }
        let mut parts = std::mem::take(&mut self.pending).into_iter().flatten();
        let mut whole = parts.next()?;
        for p in parts {
            whole.hosts.extend(p.hosts);
        }
        whole.part = 0;
        whole.parts = 1;
        Some(whole)
    }
}
