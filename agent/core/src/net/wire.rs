//! One ZMTP connection served in-line, without zmq.rs, in either direction: the
//! connection's task validates the peer's bytes ([`ZmtpValidator`]), assembles them into
//! whole messages and hands those straight to the mesh task's event queue; it writes the
//! mesh task's messages to the peer with ZMTP framing itself.
//!
//! - Inbound ([`serve`], from the guard's listener): our side of the handshake is a ROUTER
//!   (ZMTP 3.0, NULL mechanism), so any DEALER (zmq.rs, libzmq) talks to it unchanged.
//! - Outbound ([`dial`], from a link task): our side is a DEALER, so any ROUTER (a meshmon
//!   node, libzmq, zmq.rs) accepts it.
//!
//! Per connection: one read buffer ([`super::guard::BUF_LEN`]), the validator, the message
//! being assembled (it grows with the bytes the peer actually sent, at most
//! [`Limits::max_parts`] x [`Limits::max_frame`]), and a bounded send queue
//! ([`SEND_QUEUE`]). A full event queue makes the reader wait (credits bound what a peer may
//! have in flight, and TCP pushes back); a full send queue drops (the mesh task counts it).
//!
//! Not responsible for: accepting, the connection cap and the handshake deadline's start
//! (`guard`), dialling and re-dialling (`link`), what messages mean (the mesh task and
//! gossip).

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout_at};

use super::guard::{BUF_LEN, End};
use super::zmtp::{self, Limits, Sink, Violation, ZmtpValidator};

/// Capacity of each connection's send queue (as each outbound link's).
pub const SEND_QUEUE: usize = 2048;
/// Most messages the writer encodes into one write.
const WRITE_BATCH: usize = 256;

/// One ZeroMQ message: one part or more. Mesh messages have one (`more` empty, so a
/// single-part message allocates nothing beyond its body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The first part.
    pub first: Bytes,
    /// Further parts, in order.
    pub more: Vec<Bytes>,
}

impl Message {
    /// A single-part message.
    pub fn single(bytes: Bytes) -> Self {
        Self {
            first: bytes,
            more: Vec::new(),
        }
    }

    /// All parts, in order.
    pub fn parts(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.first).chain(&self.more)
    }
}

/// Identifies one inbound connection for as long as the guard runs.
pub type ConnId = u64;

/// What an inbound connection tells its consumer (the mesh task). For one connection,
/// `Up` comes first, then its messages in order, then `Down`.
#[derive(Debug)]
pub enum Event {
    /// The peer completed the ZMTP handshake. Send to it through `peer`; dropping `peer`
    /// closes the connection.
    Up {
        conn: ConnId,
        addr: SocketAddr,
        peer: Peer,
    },
    /// One whole message from the peer.
    Message { conn: ConnId, message: Message },
    /// The connection ended (after `Up`).
    Down { conn: ConnId },
}

/// The consumer's handle on one connection.
#[derive(Debug)]
pub struct Peer {
    tx: mpsc::Sender<Message>,
    /// Never sent on: dropping it tells the connection to close.
    _alive: oneshot::Sender<()>,
}

impl Peer {
    /// Queues a message for the peer without waiting; `Err` when the queue is full or the
    /// connection has ended (the message is dropped either way).
    pub fn try_send(&self, message: Message) -> Result<(), Message> {
        self.tx.try_send(message).map_err(|e| e.into_inner())
    }
}

/// A consumer that sends every message back on the connection it came from, until the
/// guard ends: the echo endpoint of the guard's tests and of `examples/guard_echo.rs` (the
/// libzmq interop check).
pub async fn echo(mut events: mpsc::Receiver<Event>) {
    let mut peers = std::collections::HashMap::new();
    while let Some(event) = events.recv().await {
        match event {
            Event::Up { conn, peer, .. } => {
                peers.insert(conn, peer);
            }
            Event::Message { conn, message } => {
                if let Some(peer) = peers.get(&conn) {
                    // A full queue drops, as the mesh task does.
                    let _ = peer.try_send(message);
                }
            }
            Event::Down { conn } => {
                peers.remove(&conn);
            }
        }
    }
}

/// Which side of a connection we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Accepted on our port: a ROUTER, as-server.
    Router,
    /// Dialled by a link: a DEALER, as-client.
    Dealer,
}

impl Role {
    fn socket_type(self) -> &'static [u8] {
        match self {
            Role::Router => b"ROUTER",
            Role::Dealer => b"DEALER",
        }
    }

    /// Socket types we may talk to (ZMTP's compatibility table).
    fn peer_types(self) -> &'static [&'static [u8]] {
        match self {
            Role::Router => &[b"DEALER", b"REQ", b"ROUTER"],
            Role::Dealer => &[b"DEALER", b"REP", b"ROUTER"],
        }
    }
}

/// Our greeting (ZMTP 3.0, NULL) followed by READY, as `role`.
fn handshake(role: Role) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    out[0] = 0xff;
    out[9] = 0x7f;
    out[10] = 3;
    out[12..16].copy_from_slice(b"NULL");
    out[32] = u8::from(role == Role::Router); // as-server
    out.extend(ready(role.socket_type()));
    out
}

/// The READY command announcing socket type `kind` (a short command frame).
fn ready(kind: &[u8]) -> Vec<u8> {
    let mut body = vec![5];
    body.extend_from_slice(b"READY");
    body.push(11);
    body.extend_from_slice(b"Socket-Type");
    body.extend_from_slice(&(kind.len() as u32).to_be_bytes());
    body.extend_from_slice(kind);
    let mut out = vec![0x04, body.len() as u8];
    out.extend(body);
    out
}

/// Appends `message` to `out` as ZMTP message frames.
pub fn encode(message: &Message, out: &mut Vec<u8>) {
    let last = message.more.len();
    for (i, part) in message.parts().enumerate() {
        let more = if i < last { 0x01 } else { 0 };
        match u8::try_from(part.len()) {
            Ok(len) => out.extend_from_slice(&[more, len]),
            Err(_) => {
                out.push(more | 0x02);
                out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(part);
    }
}

/// Builds whole messages from what passed the validator.
#[derive(Debug)]
struct Assembler {
    /// Socket types the peer may have.
    peer_types: &'static [&'static [u8]],
    /// Body of the frame being read.
    part: BytesMut,
    /// Whether more frames follow the one being read.
    more: bool,
    /// Earlier frames of the message being read.
    parts: Vec<Bytes>,
    /// Complete messages not yet handed on.
    done: Vec<Message>,
    /// The peer's READY named a socket type we cannot talk to.
    bad_type: Option<String>,
}

impl Sink for Assembler {
    fn greeting(&mut self, _bytes: &[u8]) {}

    fn ready(&mut self, _command: &[u8], properties: &[u8]) {
        let kind = zmtp::property(properties, b"Socket-Type").unwrap_or_default();
        if !self.peer_types.contains(&kind) {
            self.bad_type = Some(String::from_utf8_lossy(kind).into_owned());
        }
    }

    fn frame_header(&mut self, _header: &[u8], more: bool, size: u64) {
        // Grows with what actually arrives: a claim alone reserves at most one buffer.
        let cap = usize::try_from(size).map_or(BUF_LEN, |s| s.min(BUF_LEN));
        self.part = BytesMut::with_capacity(cap);
        self.more = more;
    }

    fn body(&mut self, bytes: &[u8]) {
        self.part.extend_from_slice(bytes);
    }

    fn frame_end(&mut self) {
        let part = std::mem::take(&mut self.part).freeze();
        if self.more {
            self.parts.push(part);
            return;
        }
        let message = if self.parts.is_empty() {
            Message::single(part)
        } else {
            let mut parts = std::mem::take(&mut self.parts);
            parts.push(part);
            let first = parts.remove(0);
            Message { first, more: parts }
        };
        self.done.push(message);
    }
}

impl Assembler {
    fn new(role: Role) -> Self {
        Self {
            peer_types: role.peer_types(),
            part: BytesMut::new(),
            more: false,
            parts: Vec::new(),
            done: Vec::new(),
            bad_type: None,
        }
    }
}

/// The reading side of one connection.
pub(super) struct Reader {
    validator: ZmtpValidator,
    assembler: Assembler,
    buf: Box<[u8]>,
}

impl Reader {
    fn new(limits: &Limits, role: Role) -> Self {
        Self {
            validator: ZmtpValidator::new(limits),
            assembler: Assembler::new(role),
            buf: vec![0; BUF_LEN].into_boxed_slice(),
        }
    }

    /// Reads one chunk of the peer's handshake (by `deadline`) and feeds it.
    async fn read_handshake(
        &mut self,
        remote: &mut TcpStream,
        deadline: Instant,
    ) -> Result<(), End> {
        let n = match timeout_at(deadline, remote.read(&mut self.buf)).await {
            Err(_elapsed) => return Err(End::HandshakeTimeout),
            Ok(Ok(0)) => return Err(End::RemoteClosed),
            Ok(Ok(n)) => n,
            Ok(Err(error)) => return Err(End::RemoteIo(error)),
        };
        self.feed(n)
    }

    /// Validates and assembles one chunk from the peer.
    fn feed(&mut self, n: usize) -> Result<(), End> {
        let input = self.buf.get(..n).unwrap_or_default();
        self.validator
            .feed(input, &mut self.assembler)
            .map_err(End::Violation)?;
        match self.assembler.bad_type.take() {
            Some(kind) => Err(End::Violation(Violation::SocketType(kind))),
            None => Ok(()),
        }
    }
}

/// Serves one inbound connection whose peer has sent something, until it ends. `deadline`
/// bounds the handshake; events go to `events` as `E::from(Event)`.
pub(super) async fn serve<E>(
    mut remote: TcpStream,
    addr: SocketAddr,
    conn: ConnId,
    limits: &Limits,
    deadline: Instant,
    events: &mpsc::Sender<E>,
) -> End
where
    E: From<Event>,
{
    let mut reader = Reader::new(limits, Role::Router);
    // Handshake: our greeting and READY go out once the peer's first bytes passed (a scan
    // or an HTTP request gets nothing), then the peer's greeting and READY must complete.
    let mut greeted = false;
    while !reader.validator.handshake_done() {
        if let Err(end) = reader.read_handshake(&mut remote, deadline).await {
            return end;
        }
        if !greeted {
            if let Err(end) = greet(&mut remote, Role::Router, deadline).await {
                return end;
            }
            greeted = true;
        }
    }
    let (tx, mut rx) = mpsc::channel(SEND_QUEUE);
    let (alive, closed) = oneshot::channel();
    let peer = Peer { tx, _alive: alive };
    if events
        .send(E::from(Event::Up { conn, addr, peer }))
        .await
        .is_err()
    {
        return End::LocalClosed;
    }
    let end = {
        let (mut rd, mut wr) = remote.split();
        let wrap = |message| E::from(Event::Message { conn, message });
        tokio::select! {
            end = read_loop(&mut rd, &mut reader, limits.idle_timeout, events, wrap) => end,
            end = write_loop(&mut wr, &mut rx) => end,
            _ = closed => End::LocalClosed,
        }
    };
    // Best effort: the consumer may be gone (shutdown).
    let _ = events.send(E::from(Event::Down { conn })).await;
    end
}

/// Our side of the handshake on a connection we dialled: sends our greeting and READY as a
/// DEALER, then reads until the peer's greeting and READY have passed the validator, by
/// `deadline`. Returns the reader for [`read_loop`].
pub(super) async fn dial(
    remote: &mut TcpStream,
    limits: &Limits,
    deadline: Instant,
) -> Result<Reader, End> {
    greet(remote, Role::Dealer, deadline).await?;
    let mut reader = Reader::new(limits, Role::Dealer);
    while !reader.validator.handshake_done() {
        reader.read_handshake(remote, deadline).await?;
    }
    Ok(reader)
}

/// Writes our greeting and READY as `role`, by `deadline`.
async fn greet(remote: &mut TcpStream, role: Role, deadline: Instant) -> Result<(), End> {
    match timeout_at(deadline, remote.write_all(&handshake(role))).await {
        Err(_elapsed) => Err(End::HandshakeTimeout),
        Ok(Err(error)) => Err(End::RemoteIo(error)),
        Ok(Ok(())) => Ok(()),
    }
}

/// Reads, validates and hands on whole messages (as `wrap(message)`) until the peer stops
/// or breaks a rule.
pub(super) async fn read_loop<E>(
    rd: &mut ReadHalf<'_>,
    reader: &mut Reader,
    idle_timeout: Duration,
    events: &mpsc::Sender<E>,
    wrap: impl Fn(Message) -> E,
) -> End {
    // One timer for the connection, re-armed only when it fires: a read costs no timer work.
    let mut last = Instant::now();
    let idle = tokio::time::sleep_until(last + idle_timeout);
    tokio::pin!(idle);
    loop {
        for message in reader.assembler.done.drain(..) {
            // Waiting here is bounded: credits cap what each peer may have in flight, and
            // while we wait we do not read, so TCP pushes back on a peer that ignores them.
            if events.send(wrap(message)).await.is_err() {
                return End::LocalClosed;
            }
        }
        let read = tokio::select! {
            read = rd.read(&mut reader.buf) => read,
            () = &mut idle => {
                if last.elapsed() >= idle_timeout {
                    return End::IdleTimeout;
                }
                idle.as_mut().reset(last + idle_timeout);
                continue;
            }
        };
        let n = match read {
            Ok(0) => return End::RemoteClosed,
            Ok(n) => n,
            Err(error) => return End::RemoteIo(error),
        };
        last = Instant::now();
        if let Err(end) = reader.feed(n) {
            return end;
        }
    }
}

/// What a connection's writer takes from its queue: a message to frame, or (a link's
/// command) the end of the connection.
pub(super) trait Outgoing {
    /// Appends the item's frames to `out`; `false` ends the connection instead.
    fn write_to(self, out: &mut Vec<u8>) -> bool;
}

impl Outgoing for Message {
    fn write_to(self, out: &mut Vec<u8>) -> bool {
        encode(&self, out);
        true
    }
}

/// Writes queued messages, as many per write as are waiting, until the queue closes (or an
/// item ends the connection: [`End::LocalClosed`] either way).
pub(super) async fn write_loop<T: Outgoing>(
    wr: &mut WriteHalf<'_>,
    rx: &mut mpsc::Receiver<T>,
) -> End {
    let mut batch = Vec::new();
    let mut out = Vec::new();
    loop {
        if rx.recv_many(&mut batch, WRITE_BATCH).await == 0 {
            return End::LocalClosed;
        }
        for item in batch.drain(..) {
            if !item.write_to(&mut out) {
                return End::LocalClosed;
            }
        }
        if let Err(error) = wr.write_all(&out).await {
            return End::RemoteIo(error);
        }
        out.clear();
        // A burst may have grown it; keep the steady state small.
        out.shrink_to(2 * BUF_LEN);
    }
}

#[cfg(test)]
mod tests;
