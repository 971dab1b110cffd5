//! The fleet's side of one mesh link, without I/O (PROTOCOL.md section 5): the three-way
//! hello as a node, credits both ways (never more than the node's window unacknowledged; the
//! running count of what the node sent us acknowledged in heartbeats), heartbeats with
//! round-trip time, and the liveness rule (5 s without a byte: dead).
//!
//! It opens only what a non-forwarding node must: Hello, Heartbeat and backfill requests.
//! Gossip the node floods to us is counted (it costs the node credits) and ignored.
//!
//! Not here: sockets and timers (`run`).

use bytes::Bytes;
use meshmon_proto::payload::{BackfillRequest, Heartbeat, Hello, Role};
use meshmon_proto::{Flags, Frame, Header, Keyring, Kind, Payload, ProtoError};
use std::time::{Duration, Instant};

/// The window the fleet announces (what meshmon nodes announce).
pub const WINDOW: u32 = 1024;
/// Heartbeats go out this often once the node's Hello arrived.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A link with nothing received for this long is dead.
pub const DEAD_AFTER: Duration = Duration::from_secs(5);

/// What an incoming message asks of the fleet.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Incoming {
    /// Link frames to send now, in order (our Hello echoing the node's nonce, an early
    /// acknowledgement).
    pub(crate) send: Vec<Bytes>,
    /// The hello completed with this message: gossip may flow from now on.
    pub(crate) accepted: bool,
    /// A dashboard (the frame's origin) asks one of our hosts for frames.
    pub(crate) backfill: Option<(String, BackfillRequest)>,
    /// A frame failed authentication (wrong mesh key?) or a Hello echoed a foreign nonce.
    pub(crate) auth_failure: bool,
}

/// Link state of one connection.
#[derive(Debug)]
pub(crate) struct Link {
    keyring: Keyring,
    name: String,
    boot_id: u64,
    version: String,
    seq: u64,
    nonce: u64,
    /// The node's nonce we last echoed.
    echoed: u64,
    /// Both Hellos checked: the node echoed our nonce.
    pub(crate) accepted: bool,
    node_name: Option<String>,
    node_window: u64,
    /// Credit-bearing frames we sent, and the node's acknowledgement of them.
    pub(crate) sent: u64,
    acked_by_node: u64,
    /// Credit-bearing frames the node sent us, and our last acknowledgement.
    pub(crate) received: u64,
    acked_sent: u64,
    start: Instant,
    last_rx: Instant,
    last_hb: Option<Instant>,
    /// The node's last heartbeat `sent_us` and when it arrived, for its RTT.
    echo: Option<(u64, Instant)>,
    pub(crate) rtt: Option<Duration>,
}

impl Link {
    /// A link that just connected at `now`.
    pub(crate) fn new(keyring: Keyring, name: &str, boot_id: u64, now: Instant) -> Link {
        Link {
            keyring,
            name: name.to_owned(),
            boot_id,
            version: format!("sim-{}", env!("CARGO_PKG_VERSION")),
            seq: 0,
            nonce: rand::random::<u64>() | 1,
            echoed: 0,
            accepted: false,
            node_name: None,
            node_window: 0,
            sent: 0,
            acked_by_node: 0,
            received: 0,
            acked_sent: 0,
            start: now,
            last_rx: now,
            last_hb: None,
            echo: None,
            rtt: None,
        }
    }

    /// The node's name, once its Hello arrived.
    pub(crate) fn node_name(&self) -> Option<&str> {
        self.node_name.as_deref()
    }

    fn seal(&mut self, payload: &Payload) -> Result<Bytes, ProtoError> {
        self.seq += 1;
        let header = Header {
            kind: payload.kind(),
            flags: Flags::LINK,
            origin: self.name.clone(),
            boot_id: self.boot_id,
            seq: self.seq,
            ts_ms: crate::wall_ms(),
        };
        Ok(Bytes::from(self.keyring.seal(
            &header,
            0,
            &payload.encode()?,
        )?))
    }

    /// Our Hello, echoing `echo` (0 to open the link).
    pub(crate) fn hello(&mut self, echo: u64) -> Result<Bytes, ProtoError> {
        self.echoed = echo;
        self.seal(&Payload::Hello(Hello {
            name: self.name.clone(),
            boot_id: self.boot_id,
            role: Role::Node,
            version: self.version.clone(),
            window: WINDOW,
            nonce: self.nonce,
            echo,
        }))
    }

    /// A heartbeat acknowledging everything received so far.
    pub(crate) fn heartbeat(&mut self, now: Instant) -> Result<Bytes, ProtoError> {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let (echo_us, held_us) = self.echo.map_or((0, 0), |(sent, at)| {
            (sent, us(now.saturating_duration_since(at)))
        });
        let hb = Payload::Heartbeat(Heartbeat {
            acked: self.received,
            sent_us: us(now.saturating_duration_since(self.start)),
            echo_us,
            held_us,
            ..Default::default()
        });
        self.acked_sent = self.received;
        self.last_hb = Some(now);
        self.seal(&hb)
    }

    /// Whether the periodic heartbeat is due (only once the node's Hello arrived).
    pub(crate) fn heartbeat_due(&self, now: Instant) -> bool {
        self.node_name.is_some()
            && self
                .last_hb
                .is_none_or(|t| now.saturating_duration_since(t) >= HEARTBEAT_EVERY)
    }

    /// Whether nothing arrived for [`DEAD_AFTER`].
    pub(crate) fn dead(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_rx) > DEAD_AFTER
    }

    /// Frames sent and not yet acknowledged.
    pub(crate) fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.acked_by_node)
    }

    /// The node's window (0 before its Hello).
    pub(crate) fn window(&self) -> u64 {
        self.node_window
    }

    /// Takes one credit for a gossip frame; false when the node's window is used up (or the
    /// link is not accepted yet): the frame must be dropped, not queued.
    pub(crate) fn take_credit(&mut self) -> bool {
        if !self.accepted || self.in_flight() >= self.node_window {
            return false;
        }
        self.sent += 1;
        true
    }

    /// An early acknowledgement when a quarter of our window arrived since the last one.
    fn maybe_ack(&mut self, now: Instant, send: &mut Vec<Bytes>) -> Result<(), ProtoError> {
        let quarter = u64::from(WINDOW / 4).max(1);
        if self.node_name.is_some() && self.received - self.acked_sent >= quarter {
            send.push(self.heartbeat(now)?);
        }
        Ok(())
    }

    /// One message from the node.
    pub(crate) fn on_message(
        &mut self,
        bytes: &[u8],
        now: Instant,
    ) -> Result<Incoming, ProtoError> {
        self.last_rx = now;
        let mut inc = Incoming::default();
        let frame = Frame::decode(bytes);
        let control = frame.as_ref().is_ok_and(|f| {
            f.header.flags.contains(Flags::LINK)
                && matches!(f.header.kind, Kind::Hello | Kind::Heartbeat)
        });
        if !control {
            self.received += 1;
        }
        match frame {
            Ok(f) if control => self.on_control(bytes, &f, now, &mut inc)?,
            Ok(f)
                if f.header.flags.contains(Flags::REPLAY)
                    && f.header.kind == Kind::BackfillRequest =>
            {
                match self.keyring.open_parsed(bytes, &f) {
                    Ok(plain) => {
                        if let Ok(Payload::BackfillRequest(r)) =
                            Payload::decode(Kind::BackfillRequest, &plain)
                        {
                            inc.backfill = Some((f.header.origin, r));
                        }
                    }
                    Err(_) => inc.auth_failure = true,
                }
            }
            // Gossip, status, replays for others, malformed bytes: counted above, ignored.
            _ => {}
        }
        self.maybe_ack(now, &mut inc.send)?;
        Ok(inc)
    }

    fn on_control(
        &mut self,
        bytes: &[u8],
        f: &Frame,
        now: Instant,
        inc: &mut Incoming,
    ) -> Result<(), ProtoError> {
        let Ok(plain) = self.keyring.open_parsed(bytes, f) else {
            inc.auth_failure = true;
            return Ok(());
        };
        match Payload::decode(f.header.kind, &plain) {
            Ok(Payload::Hello(h)) => {
                // Three-way hello: accept once the node echoes our nonce; echo its nonce once.
                if h.echo == self.nonce {
                    inc.accepted = !self.accepted;
                    self.accepted = true;
                    self.node_window = u64::from(h.window.max(1));
                    self.node_name = Some(h.name);
                } else if h.echo != 0 {
                    inc.auth_failure = true;
                    return Ok(());
                }
                if h.nonce != 0 && self.echoed != h.nonce {
                    inc.send.push(self.hello(h.nonce)?);
                }
            }
            Ok(Payload::Heartbeat(hb)) if self.accepted => {
                self.acked_by_node = self.acked_by_node.max(hb.acked.min(self.sent));
                if hb.echo_us != 0 {
                    let now_us =
                        u64::try_from(now.saturating_duration_since(self.start).as_micros())
                            .unwrap_or(u64::MAX);
                    self.rtt = Some(Duration::from_micros(
                        now_us.saturating_sub(hb.echo_us).saturating_sub(hb.held_us),
                    ));
                }
                self.echo = Some((hb.sent_us, now));
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshmon_proto::Key;

    fn ring() -> Keyring {
        Keyring::new(vec![Key::NULL]).expect("ring")
    }

    /// The node's side: a frame sealed as `node`.
    fn node_frame(seq: u64, flags: Flags, payload: &Payload) -> Bytes {
        let header = Header {
            kind: payload.kind(),
            flags,
            origin: "node".into(),
            boot_id: 9,
            seq,
            ts_ms: 1,
        };
        Bytes::from(
            ring()
                .seal(&header, 0, &payload.encode().expect("encode"))
                .expect("seal"),
        )
    }

    fn node_hello(nonce: u64, echo: u64) -> Bytes {
        node_frame(
            1,
            Flags::LINK,
            &Payload::Hello(Hello {
                name: "node".into(),
                boot_id: 9,
                role: Role::Node,
                version: "x".into(),
                window: 4,
                nonce,
                echo,
            }),
        )
    }

    fn open(b: &Bytes) -> Payload {
        let o = ring().open(b).expect("opens");
        Payload::decode(o.header.kind, &o.plaintext).expect("decodes")
    }

    #[test]
    fn three_way_hello_then_credits_up_to_the_window_then_acks_free_them() {
        let now = Instant::now();
        let mut l = Link::new(ring(), "sim-fleet", 5, now);
        let Payload::Hello(h) = open(&l.hello(0).expect("hello")) else {
            panic!("hello")
        };
        assert_eq!((h.role, h.echo, h.window), (Role::Node, 0, WINDOW));
        assert!(!l.take_credit(), "no gossip before the hello");
        // A Hello echoing something else is a replay from another connection.
        assert!(
            l.on_message(&node_hello(77, 1234), now)
                .expect("ok")
                .auth_failure
        );
        let inc = l.on_message(&node_hello(77, h.nonce), now).expect("ok");
        assert!(inc.accepted);
        assert_eq!(inc.send.len(), 1);
        let Payload::Hello(third) = open(&inc.send[0]) else {
            panic!("hello")
        };
        assert_eq!((third.nonce, third.echo), (h.nonce, 77));
        assert_eq!(l.node_name(), Some("node"));
        assert!((0..4).all(|_| l.take_credit()));
        assert!(!l.take_credit(), "window of 4 used up");
        let hb = Payload::Heartbeat(Heartbeat {
            acked: 3,
            ..Heartbeat::default()
        });
        assert_eq!(
            l.on_message(&node_frame(2, Flags::LINK, &hb), now)
                .expect("ok"),
            Incoming::default()
        );
        assert_eq!(l.in_flight(), 1);
        assert!(l.take_credit());
        // An acknowledgement beyond what was sent is capped.
        let hb = Payload::Heartbeat(Heartbeat {
            acked: 1000,
            ..Heartbeat::default()
        });
        l.on_message(&node_frame(3, Flags::LINK, &hb), now)
            .expect("ok");
        assert_eq!(l.in_flight(), 0);
    }

    #[test]
    fn gossip_from_the_node_is_counted_and_acknowledged_every_quarter_window() {
        let now = Instant::now();
        let mut l = Link::new(ring(), "sim-fleet", 5, now);
        let Payload::Hello(h) = open(&l.hello(0).expect("hello")) else {
            panic!("hello")
        };
        l.on_message(&node_hello(77, h.nonce), now).expect("ok");
        let info = Payload::HostInfo(Default::default());
        let quarter = u64::from(WINDOW / 4);
        let mut acks = Vec::new();
        for seq in 1..=quarter {
            acks.extend(
                l.on_message(&node_frame(seq, Flags::default(), &info), now)
                    .expect("ok")
                    .send,
            );
        }
        // Garbage costs a credit too.
        l.on_message(b"\x01garbage", now).expect("ok");
        assert_eq!(l.received, quarter + 1);
        assert_eq!(acks.len(), 1);
        let Payload::Heartbeat(hb) = open(&acks[0]) else {
            panic!("heartbeat")
        };
        assert_eq!(hb.acked, quarter);
    }

    #[test]
    fn backfill_requests_are_opened_and_bad_seals_counted() {
        let now = Instant::now();
        let mut l = Link::new(ring(), "sim-fleet", 5, now);
        let req = Payload::BackfillRequest(BackfillRequest {
            target: "sim-0001".into(),
            boot_id: 3,
            from_seq: 10,
            to_seq: 20,
        });
        let Some((requester, request)) = l
            .on_message(&node_frame(1, Flags::REPLAY, &req), now)
            .expect("ok")
            .backfill
        else {
            panic!("backfill")
        };
        assert_eq!(requester, "node");
        assert_eq!((request.from_seq, request.to_seq), (10, 20));
        let mut forged = node_frame(2, Flags::REPLAY, &req).to_vec();
        if let Some(b) = forged.last_mut() {
            *b ^= 1;
        }
        assert!(l.on_message(&forged, now).expect("ok").auth_failure);
    }

    #[test]
    fn silence_for_five_seconds_is_death_and_heartbeats_wait_for_the_hello() {
        let now = Instant::now();
        let mut l = Link::new(ring(), "sim-fleet", 5, now);
        assert!(!l.heartbeat_due(now));
        assert!(!l.dead(now + Duration::from_secs(5)));
        assert!(l.dead(now + Duration::from_millis(5001)));
        let Payload::Hello(h) = open(&l.hello(0).expect("hello")) else {
            panic!("hello")
        };
        l.on_message(&node_hello(77, h.nonce), now).expect("ok");
        assert!(l.heartbeat_due(now));
        l.heartbeat(now).expect("hb");
        assert!(!l.heartbeat_due(now + Duration::from_millis(999)));
        assert!(l.heartbeat_due(now + Duration::from_secs(1)));
    }
}
