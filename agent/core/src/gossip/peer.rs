//! The state gossip keeps per link: who is at the other end, liveness, credits (flow
//! control), the per-peer rate limit and the counters shown in the mesh view.
//!
//! Credits: every frame except Hello and Heartbeat costs one credit. A sender keeps at most
//! the peer's announced window unacknowledged; the receiver acknowledges with the running
//! count of such frames it received. So no queue below us (zmq.rs keeps 100,000 per peer)
//! ever holds more than a window for one peer. Pushed frames beyond it wait on the link's
//! backlog, up to one more window (bytes shared with the other links), and leave as
//! acknowledgements free credits; beyond that they are dropped, and announced so the peer
//! can graft them (section 6 of PROTOCOL.md): a stalled peer costs a window's memory and
//! drops. What a join hands a new peer (two frames per known origin, a few hundred bytes
//! each) waits on the backlog whatever its length, and goes with the link.

use bytes::Bytes;
use meshmon_proto::payload::{LinkStatus, Role};
use std::collections::VecDeque;

/// What became of a pushed frame ([`Peer::push`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// Sent now, with a credit.
    Sent(Bytes),
    /// Waits on the link's backlog for a credit.
    Queued,
    /// The window and the backlog are full: dropped (and counted).
    Dropped,
}

/// Identifies a link within one node (assigned by the socket layer).
pub type PeerId = u64;

/// Who dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This node dialled a configured neighbour.
    Out,
    /// The peer dialled this node.
    In,
}

/// A token bucket counting frames.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_s: f64,
    burst: f64,
    tokens: f64,
    last_us: u64,
}

impl TokenBucket {
    /// Refills at `rate_per_s`, holds at most `burst`; starts full.
    pub fn new(rate_per_s: u32, burst: u32, now_us: u64) -> TokenBucket {
        TokenBucket {
            rate_per_s: f64::from(rate_per_s),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last_us: now_us,
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now_us: u64) -> bool {
        let dt = now_us.saturating_sub(self.last_us) as f64 / 1e6;
        self.last_us = now_us;
        self.tokens = (self.tokens + dt * self.rate_per_s).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// One link's state.
#[derive(Debug, Clone)]
pub struct Peer {
    pub direction: Direction,
    pub addr: String,
    /// Name and role from the peer's Hello; `None` until it arrived.
    pub hello: Option<(String, Role)>,
    /// Our nonce for this link, which the peer must echo before we accept it.
    pub nonce: u64,
    /// The peer's nonce we last echoed (0: none yet).
    pub echoed: u64,
    pub up_since_us: u64,
    pub last_rx_us: u64,
    pub last_hb_sent_us: u64,
    /// Credit-bearing frames received from the peer.
    pub received: u64,
    /// `received` at our last acknowledgement.
    pub acked_sent: u64,
    /// Credit-bearing frames sent to the peer.
    pub sent: u64,
    /// The peer's acknowledgement of `sent`.
    pub acked_by_peer: u64,
    /// The peer's window.
    pub window: u64,
    /// Peer's last heartbeat `sent_us` and when we got it, for the echo.
    pub echo: Option<(u64, u64)>,
    pub rtt_us: Option<u64>,
    pub frames_in: u64,
    pub frames_out: u64,
    pub dropped: u64,
    pub auth_failures: u64,
    pub rate_limited: u64,
    pub bucket: TokenBucket,
    /// Whether a frame of another protocol version was already logged for this link.
    pub version_warned: bool,
    /// What a join hands the peer (every origin's descriptors, this node's frames that
    /// reached no node) beyond its credit window: sent in order as its acknowledgements free
    /// credits, instead of dropped (a mesh of more than 512 hosts has more descriptors than a
    /// window holds).
    pub backlog: VecDeque<Bytes>,
}

impl Peer {
    /// A link that just came up.
    pub fn new(direction: Direction, addr: String, now_us: u64, rate: u32, burst: u32) -> Peer {
        Peer {
            direction,
            addr,
            hello: None,
            nonce: rand::random::<u64>() | 1,
            echoed: 0,
            up_since_us: now_us,
            last_rx_us: now_us,
            last_hb_sent_us: 0,
            received: 0,
            acked_sent: 0,
            sent: 0,
            acked_by_peer: 0,
            window: 0,
            echo: None,
            rtt_us: None,
            frames_in: 0,
            frames_out: 0,
            dropped: 0,
            auth_failures: 0,
            rate_limited: 0,
            bucket: TokenBucket::new(rate, burst, now_us),
            version_warned: false,
            backlog: VecDeque::new(),
        }
    }

    /// Whether the peer said hello as a mesh node (it gets forwarded gossip).
    pub fn is_node(&self) -> bool {
        matches!(self.hello, Some((_, Role::Node)))
    }

    /// Whether the peer said hello as a viewer (it gets every accepted frame and status).
    pub fn is_viewer(&self) -> bool {
        matches!(self.hello, Some((_, Role::Viewer)))
    }

    /// Whether a frame may be sent now (the window is not used up).
    pub fn has_credit(&self) -> bool {
        self.sent.saturating_sub(self.acked_by_peer) < self.window
    }

    /// Sends `bytes` with a credit, or queues them on the backlog when the window is used up
    /// or earlier frames still wait there (they keep their order).
    pub fn send_or_queue(&mut self, bytes: Bytes) -> Option<Bytes> {
        if self.backlog.is_empty() && self.has_credit() {
            self.spend();
            Some(bytes)
        } else {
            self.backlog.push_back(bytes);
            None
        }
    }

    /// Pushes a gossip frame: sent with a credit; else queued on the backlog while it holds
    /// less than a window (a burst beyond the window then leaves as acknowledgements free
    /// credits, a round trip later, instead of being dropped and repaired by a graft a
    /// quarter of a second later); else dropped and counted. So a stalled peer costs at most
    /// a window of queued frames (shared with the other links: the same bytes) and drops.
    pub fn push(&mut self, bytes: &Bytes) -> Pushed {
        if self.backlog.is_empty() && self.has_credit() {
            self.spend();
            Pushed::Sent(bytes.clone())
        } else if self.backlog.len() < self.window as usize {
            self.backlog.push_back(bytes.clone());
            Pushed::Queued
        } else {
            self.dropped += 1;
            Pushed::Dropped
        }
    }

    /// The backlog's next frame when a credit is free (taken).
    pub fn next_from_backlog(&mut self) -> Option<Bytes> {
        if !self.has_credit() {
            return None;
        }
        let bytes = self.backlog.pop_front()?;
        self.spend();
        Some(bytes)
    }

    /// One credit-bearing frame goes out.
    fn spend(&mut self) {
        self.sent += 1;
        self.frames_out += 1;
    }

    /// Takes a credit for one frame; false (and counts a drop) when the window is used up.
    pub fn take_credit(&mut self) -> bool {
        if !self.has_credit() {
            self.dropped += 1;
            return false;
        }
        self.spend();
        true
    }

    /// The peer's row in the mesh view.
    pub fn status(&self) -> LinkStatus {
        LinkStatus {
            peer: self
                .hello
                .as_ref()
                .map(|(n, _)| n.clone())
                .unwrap_or_default(),
            addr: self.addr.clone(),
            direction: match self.direction {
                Direction::Out => "out".into(),
                Direction::In => "in".into(),
            },
            state: if self.hello.is_some() {
                "up"
            } else {
                "connecting"
            }
            .into(),
            role: match self.hello {
                Some((_, Role::Viewer)) => "viewer".into(),
                _ => "node".into(),
            },
            rtt_us: self.rtt_us,
            frames_in: self.frames_in,
            frames_out: self.frames_out,
            dropped: self.dropped + self.rate_limited,
            auth_failures: self.auth_failures,
            clock_offset_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_limits_rate_and_refills() {
        let mut b = TokenBucket::new(10, 5, 0);
        assert_eq!((0..10).filter(|_| b.take(0)).count(), 5, "burst");
        assert!(!b.take(0));
        assert!(b.take(100_000), "one token after 100 ms at 10/s");
        assert!(!b.take(100_000));
    }

    #[test]
    fn credits_stop_at_window() {
        let mut p = Peer::new(Direction::Out, "x".into(), 0, 1, 1);
        p.window = 3;
        assert!(p.take_credit() && p.take_credit() && p.take_credit());
        assert!(!p.take_credit());
        assert_eq!(p.dropped, 1);
        p.acked_by_peer = 2;
        assert!(p.take_credit());
    }

    #[test]
    fn a_push_beyond_the_window_waits_on_the_backlog_up_to_a_window() {
        let mut p = Peer::new(Direction::Out, "x".into(), 0, 1, 1);
        p.window = 2;
        let f = Bytes::from_static(b"f");
        assert_eq!(p.push(&f), Pushed::Sent(f.clone()));
        assert_eq!(p.push(&f), Pushed::Sent(f.clone()));
        assert_eq!(p.push(&f), Pushed::Queued);
        assert_eq!(p.push(&f), Pushed::Queued);
        assert_eq!(p.push(&f), Pushed::Dropped);
        assert_eq!((p.dropped, p.backlog.len()), (1, 2));
        p.acked_by_peer = 1;
        assert_eq!(p.next_from_backlog(), Some(f.clone()));
        assert_eq!(
            p.next_from_backlog(),
            None,
            "one credit freed, one frame sent"
        );
        assert_eq!(p.push(&f), Pushed::Queued, "behind the backlog, in order");
    }
}
