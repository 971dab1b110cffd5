//! A sans-io, streaming validator for the ZMTP 3.x byte stream a remote peer sends us.
//!
//! zmq.rs trusts the frame sizes it reads (a 2^44-byte claim aborts the process) and has no
//! handshake timeout and no heartbeats, so every byte from the network passes through a
//! [`ZmtpValidator`]: before it reaches zmq.rs (outbound links) or before `net::wire`
//! assembles it into messages (inbound connections, which never touch zmq.rs). The
//! validator checks the greeting (NULL mechanism only), requires READY as the first command,
//! enforces frame, command and part limits, and drops PING/PONG commands.
//!
//! It is streaming: greeting bytes and message-frame bodies are handed to a [`Sink`] as they
//! arrive (libzmq sends its greeting in parts and waits for ours in between, so buffering
//! would deadlock). Only frame headers (at most 9 bytes), the 20-byte mechanism field and
//! command frames (capped by [`Limits::max_command`]) are held back until complete. Memory is
//! O(`max_command`) whatever the peer claims. A `Vec<u8>` sink receives the validated bytes
//! unchanged (minus PING/PONG), ready to be forwarded.
//!
//! Not responsible for: sockets, timers (the `*_timeout` and `max_connections` fields of
//! [`Limits`] are enforced by `net::guard`), the direction we write, or the contents of
//! messages (that is `meshmon_proto`'s job).

use std::time::Duration;

use thiserror::Error;

/// Size of the ZMTP 3 greeting.
const GREETING_LEN: usize = 64;
/// Offset and length of the mechanism field in the greeting.
const MECH_START: usize = 12;
const MECH_LEN: usize = 20;
/// Offset of the as-server byte in the greeting.
const AS_SERVER: usize = 32;

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;
const FLAGS_KNOWN: u8 = FLAG_MORE | FLAG_LONG | FLAG_COMMAND;

/// Limits for one guarded connection. The validator uses the size and count limits; the
/// timeouts and the connection cap are enforced by the guard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message frame body accepted, in bytes.
    pub max_frame: u64,
    /// Most frames in one multipart message.
    pub max_parts: u32,
    /// Largest command frame body accepted (READY, PING, PONG), in bytes.
    pub max_command: u64,
    /// Time from accept (or dial) until the peer's greeting and READY must be complete.
    pub handshake_timeout: Duration,
    /// After the handshake, longest silence from the peer before the connection is closed.
    pub idle_timeout: Duration,
    /// Most inbound connections open at once; further ones are refused.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            // A mesh frame is at most 64 KiB; the slack covers envelope overhead.
            max_frame: 65_536 + 1_024,
            max_parts: 4,
            max_command: 4_096,
            handshake_timeout: Duration::from_secs(5),
            // The application heartbeats every second.
            idle_timeout: Duration::from_secs(15),
            max_connections: 1_024,
        }
    }
}

/// What was wrong with the peer's byte stream. Every variant means "close the connection";
/// the distinction is for logs and counters. No variant carries more than a short command
/// or mechanism name from the peer.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Violation {
    /// The greeting signature (byte 0 = 0xff, byte 9 = 0x7f) is wrong: not a ZMTP 3 peer.
    #[error("bad greeting signature: byte {offset} is {byte:#04x}, expected {expected:#04x}")]
    BadSignature {
        /// Offset of the byte in the greeting.
        offset: u8,
        /// The byte received.
        byte: u8,
        /// The byte the signature requires.
        expected: u8,
    },
    /// The peer speaks ZMTP 1.0 or 2.0, which zmq.rs cannot talk to.
    #[error("unsupported ZMTP major version {0} (need 3 or later)")]
    Version(u8),
    /// The security mechanism is not NULL (zmq.rs implements NULL only).
    #[error("unsupported security mechanism '{0}' (only NULL)")]
    Mechanism(String),
    /// The as-server byte of the greeting is neither 0 nor 1.
    #[error("bad as-server byte {0:#04x} in greeting")]
    AsServer(u8),
    /// A frame's flags byte has bits set other than MORE, LONG and COMMAND.
    #[error("frame flags {0:#04x} set reserved bits")]
    ReservedFlags(u8),
    /// A command frame has the MORE flag, which ZMTP forbids.
    #[error("command frame with the MORE flag")]
    CommandWithMore,
    /// A message frame claims more than [`Limits::max_frame`] bytes.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Size the frame header claimed.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A command frame claims more than [`Limits::max_command`] bytes.
    #[error("command of {size} bytes exceeds the limit of {max} bytes")]
    CommandTooLarge {
        /// Size the frame header claimed.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// A multipart message has more than [`Limits::max_parts`] frames.
    #[error("message has more than {0} parts")]
    TooManyParts(u32),
    /// The first frame after the greeting is not a READY command.
    #[error("first frame after the greeting is not a READY command")]
    ExpectedReady,
    /// A command frame's body is not a well-formed ZMTP command.
    #[error("malformed command: {0}")]
    MalformedCommand(&'static str),
    /// The peer's READY names a socket type ours cannot talk to (ZMTP's compatibility table).
    #[error("incompatible peer socket type '{0}'")]
    SocketType(String),
    /// A command other than PING/PONG after the handshake (a second READY, ERROR, SUBSCRIBE...).
    #[error("command '{0}' is not allowed after the handshake")]
    UnexpectedCommand(String),
}

/// Receives what passed a [`ZmtpValidator`], in stream order.
pub trait Sink {
    /// Bytes of the peer's greeting, in order (the mechanism field as one piece, once whole).
    fn greeting(&mut self, bytes: &[u8]);
    /// The READY command, whole (frame header and body), and its properties, well formed.
    fn ready(&mut self, command: &[u8], properties: &[u8]);
    /// A message frame starts: its header bytes, whether more parts follow, its body size
    /// (within [`Limits::max_frame`]).
    fn frame_header(&mut self, header: &[u8], more: bool, size: u64);
    /// Body bytes of the current message frame, as they arrive.
    fn body(&mut self, bytes: &[u8]);
    /// The current message frame is complete.
    fn frame_end(&mut self);
}

/// The validated bytes, unchanged, for forwarding to a ZMTP library.
impl Sink for Vec<u8> {
    fn greeting(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn ready(&mut self, command: &[u8], _properties: &[u8]) {
        self.extend_from_slice(command);
    }
    fn frame_header(&mut self, header: &[u8], _more: bool, _size: u64) {
        self.extend_from_slice(header);
    }
    fn body(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn frame_end(&mut self) {}
}

/// The value of property `name` (compared ignoring ASCII case, as ZMTP says) in READY's
/// `properties`, as checked by the validator; `None` when absent or malformed.
pub fn property<'a>(mut props: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    while let Some((&name_len, rest)) = props.split_first() {
        let (key, rest) = rest.split_at_checked(usize::from(name_len))?;
        let (len_be, rest) = rest.split_first_chunk::<4>()?;
        let value_len = usize::try_from(u32::from_be_bytes(*len_be)).ok()?;
        let (value, rest) = rest.split_at_checked(value_len)?;
        if key.eq_ignore_ascii_case(name) {
            return Some(value);
        }
        props = rest;
    }
    None
}

/// Where the validator is in the peer's stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// `pos` bytes of the 64-byte greeting seen.
    Greeting { pos: usize },
    /// `len` bytes of a frame header (flags + 1 or 8 size bytes) collected in `header`.
    Header { header: [u8; 9], len: usize },
    /// Forwarding `remaining` bytes of a message frame body.
    Body { remaining: u64 },
    /// Collecting `remaining` more bytes of a command frame into `ZmtpValidator::command`.
    Command { remaining: u64 },
}

/// Validates the bytes one remote peer sends, as a stream. One per connection and direction.
#[derive(Debug)]
pub struct ZmtpValidator {
    max_frame: u64,
    max_parts: u32,
    max_command: u64,
    state: State,
    /// The mechanism field, held until complete so the error can name it.
    mechanism: [u8; MECH_LEN],
    /// Header and body of the command frame being collected; at most 9 + `max_command` bytes.
    command: Vec<u8>,
    /// Frames seen so far of the current multipart message.
    parts: u32,
    /// The greeting and the READY command have been seen.
    handshake_done: bool,
    /// The first violation; once set every later `feed` returns it.
    failed: Option<Violation>,
}

impl ZmtpValidator {
    /// A validator for a fresh connection, expecting the peer's greeting first.
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_frame: limits.max_frame,
            max_parts: limits.max_parts,
            max_command: limits.max_command,
            state: State::Greeting { pos: 0 },
            mechanism: [0; MECH_LEN],
            command: Vec::new(),
            parts: 0,
            handshake_done: false,
            failed: None,
        }
    }

    /// Whether the peer's greeting and READY command have been seen.
    pub fn handshake_done(&self) -> bool {
        self.handshake_done
    }

    /// Consumes `input` and hands to `out` what passed: all of it, except PING/PONG
    /// commands, which are dropped. Incomplete frame headers, mechanism fields and commands
    /// are held until the bytes that complete them arrive.
    ///
    /// On `Err` the connection must be closed; `out` may hold bytes from before the
    /// violation and should be discarded. Every later call returns the same violation.
    pub fn feed<S: Sink>(&mut self, input: &[u8], out: &mut S) -> Result<(), Violation> {
        if let Some(violation) = &self.failed {
            return Err(violation.clone());
        }
        let result = self.feed_inner(input, out);
        if let Err(violation) = &result {
            self.failed = Some(violation.clone());
            // Release the command buffer: a failed validator holds nothing.
            self.command = Vec::new();
        }
        result
    }

    fn feed_inner<S: Sink>(&mut self, mut input: &[u8], out: &mut S) -> Result<(), Violation> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                State::Greeting { pos } => {
                    self.greeting_byte(pos, byte, out)?;
                    input = rest;
                }
                State::Header { mut header, len } => {
                    header[len] = byte;
                    input = rest;
                    self.header_byte(header, len + 1, out)?;
                }
                State::Body { remaining } => {
                    let n = chunk_len(remaining, input.len());
                    let (now, rest) = input.split_at(n);
                    out.body(now);
                    input = rest;
                    self.state = match remaining - n as u64 {
                        0 => {
                            out.frame_end();
                            header_state()
                        }
                        left => State::Body { remaining: left },
                    };
                }
                State::Command { remaining } => {
                    let n = chunk_len(remaining, input.len());
                    let (now, rest) = input.split_at(n);
                    self.command.extend_from_slice(now);
                    input = rest;
                    match remaining - n as u64 {
                        0 => self.command_done(out)?,
                        left => self.state = State::Command { remaining: left },
                    }
                }
            }
        }
        Ok(())
    }

    /// Checks greeting byte `pos` and forwards it (mechanism bytes once all 20 are in).
    fn greeting_byte<S: Sink>(
        &mut self,
        pos: usize,
        byte: u8,
        out: &mut S,
    ) -> Result<(), Violation> {
        match pos {
            0 | 9 => {
                let expected = if pos == 0 { 0xff } else { 0x7f };
                if byte != expected {
                    return Err(Violation::BadSignature {
                        offset: pos as u8,
                        byte,
                        expected,
                    });
                }
            }
            10 if byte < 3 => return Err(Violation::Version(byte)),
            AS_SERVER if byte > 1 => return Err(Violation::AsServer(byte)),
            _ => {}
        }
        if (MECH_START..MECH_START + MECH_LEN).contains(&pos) {
            self.mechanism[pos - MECH_START] = byte;
            if pos == MECH_START + MECH_LEN - 1 {
                check_mechanism(&self.mechanism)?;
                out.greeting(&self.mechanism);
            }
        } else {
            out.greeting(std::slice::from_ref(&byte));
        }
        self.state = if pos + 1 == GREETING_LEN {
            header_state()
        } else {
            State::Greeting { pos: pos + 1 }
        };
        Ok(())
    }

    /// Handles a frame header of which `len` bytes are collected.
    fn header_byte<S: Sink>(
        &mut self,
        header: [u8; 9],
        len: usize,
        out: &mut S,
    ) -> Result<(), Violation> {
        let flags = header[0];
        if len == 1 {
            if flags & !FLAGS_KNOWN != 0 {
                return Err(Violation::ReservedFlags(flags));
            }
            if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
                return Err(Violation::CommandWithMore);
            }
        }
        let header_len = if flags & FLAG_LONG != 0 { 9 } else { 2 };
        if len < header_len {
            self.state = State::Header { header, len };
            return Ok(());
        }
        let size = if header_len == 9 {
            let mut be = [0u8; 8];
            be.copy_from_slice(&header[1..9]);
            u64::from_be_bytes(be)
        } else {
            u64::from(header[1])
        };
        let header = &header[..header_len];

        if flags & FLAG_COMMAND != 0 {
            if size > self.max_command {
                return Err(Violation::CommandTooLarge {
                    size,
                    max: self.max_command,
                });
            }
            self.command.clear();
            self.command.extend_from_slice(header);
            if size == 0 {
                return self.command_done(out);
            }
            self.state = State::Command { remaining: size };
            return Ok(());
        }

        if !self.handshake_done {
            return Err(Violation::ExpectedReady);
        }
        if self.parts >= self.max_parts {
            return Err(Violation::TooManyParts(self.max_parts));
        }
        if size > self.max_frame {
            return Err(Violation::FrameTooLarge {
                size,
                max: self.max_frame,
            });
        }
        let more = flags & FLAG_MORE != 0;
        self.parts = if more { self.parts + 1 } else { 0 };
        out.frame_header(header, more, size);
        self.state = if size == 0 {
            out.frame_end();
            header_state()
        } else {
            State::Body { remaining: size }
        };
        Ok(())
    }

    /// A whole command frame (header and body) is in `self.command`: forward READY once,
    /// drop PING/PONG, reject anything else.
    fn command_done<S: Sink>(&mut self, out: &mut S) -> Result<(), Violation> {
        self.state = header_state();
        let header_len = if self.command.first().is_some_and(|f| f & FLAG_LONG != 0) {
            9
        } else {
            2
        };
        let body = self.command.get(header_len..).unwrap_or_default();
        let (name, properties) = split_command(body)?;
        if !self.handshake_done {
            if name != b"READY" {
                return Err(Violation::ExpectedReady);
            }
            check_properties(properties)?;
            self.handshake_done = true;
            out.ready(&self.command, properties);
        } else if name != b"PING" && name != b"PONG" {
            return Err(Violation::UnexpectedCommand(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        self.command.clear();
        Ok(())
    }
}

fn header_state() -> State {
    State::Header {
        header: [0; 9],
        len: 0,
    }
}

/// How many of `available` bytes belong to a frame with `remaining` bytes left.
fn chunk_len(remaining: u64, available: usize) -> usize {
    usize::try_from(remaining).map_or(available, |r| r.min(available))
}

/// The mechanism field must be "NULL" padded with zero bytes.
fn check_mechanism(field: &[u8; MECH_LEN]) -> Result<(), Violation> {
    let name_len = field.iter().position(|&b| b == 0).unwrap_or(MECH_LEN);
    let (name, padding) = field.split_at(name_len);
    if name == b"NULL" && padding.iter().all(|&b| b == 0) {
        return Ok(());
    }
    let shown: String = String::from_utf8_lossy(field)
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect();
    Err(Violation::Mechanism(shown.trim_end_matches('?').to_owned()))
}

/// Splits a command body into its name and the bytes after it.
fn split_command(body: &[u8]) -> Result<(&[u8], &[u8]), Violation> {
    let (&name_len, rest) = body
        .split_first()
        .ok_or(Violation::MalformedCommand("empty command frame"))?;
    let name_len = usize::from(name_len);
    if name_len == 0 || rest.len() < name_len {
        return Err(Violation::MalformedCommand("bad command name length"));
    }
    Ok(rest.split_at(name_len))
}

/// Checks that READY's metadata is a well-formed list of (name, value) properties.
fn check_properties(mut props: &[u8]) -> Result<(), Violation> {
    while let Some((&name_len, rest)) = props.split_first() {
        let name_len = usize::from(name_len);
        if name_len == 0 || rest.len() < name_len {
            return Err(Violation::MalformedCommand("bad property name length"));
        }
        let (name, rest) = rest.split_at(name_len);
        if std::str::from_utf8(name).is_err() {
            return Err(Violation::MalformedCommand("property name is not utf-8"));
        }
        let Some((len_be, rest)) = rest.split_first_chunk::<4>() else {
            return Err(Violation::MalformedCommand(
                "truncated property value length",
            ));
        };
        let value_len = usize::try_from(u32::from_be_bytes(*len_be)).unwrap_or(usize::MAX);
        if rest.len() < value_len {
            return Err(Violation::MalformedCommand(
                "property value exceeds the command",
            ));
        }
        props = &rest[value_len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests;
