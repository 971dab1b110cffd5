//! The frame envelope: what every message on a mesh link looks like before and after sealing.
//!
//! ```text
//! offset  size  field
//! 0       1     protocol version (1)
//! 1       1     hops: links traversed so far (NOT authenticated; forwarders increment it)
//! 2       2     header length H, big endian
//! 4       H     header: MessagePack array [kind, flags, origin, boot_id, seq, ts_ms]
//! 4+H     24    XChaCha20 nonce
//! 28+H    n+16  ciphertext of the MessagePack payload, then the Poly1305 tag
//! ```
//! The associated data is byte 0 followed by bytes 2..4+H: everything before the nonce
//! except the hop count. This module parses and builds that layout; sealing is in
//! [`crate::seal`]. It does not decide anything about forwarding.

use crate::error::DecodeError;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// The protocol version this build speaks (byte 0 of every frame).
pub const PROTOCOL_VERSION: u8 = 2;
/// Largest frame accepted or produced, in bytes, envelope included.
pub const MAX_FRAME_LEN: usize = 64 * 1024;
/// Largest header accepted.
pub const MAX_HEADER_LEN: usize = 256;
/// Largest origin name, in bytes.
pub const MAX_ORIGIN_LEN: usize = 64;
/// Size of the XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Size of the Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// What a frame carries. Unknown kinds are kept as [`Kind::Other`] so that a node forwards
/// frames of newer kinds it cannot read itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Link: first message on a link, both directions ([`crate::payload::Hello`]).
    Hello,
    /// Link: liveness, credits and round-trip time ([`crate::payload::Heartbeat`]).
    Heartbeat,
    /// Link: a node's view of the mesh, sent to viewers ([`crate::payload::Status`]).
    Status,
    /// Gossip: host description ([`crate::payload::HostInfo`]).
    HostInfo,
    /// Gossip: metric values ([`crate::payload::Samples`]).
    Samples,
    /// Gossip: the series table that sample indexes refer to ([`crate::payload::SeriesTable`]).
    SeriesTable,
    /// Backfill: a dashboard asks an origin for frames it missed ([`crate::payload::BackfillRequest`]).
    BackfillRequest,
    /// Backfill: an origin re-sends old frames to one node ([`crate::payload::Replay`]).
    Replay,
    /// Alerts: what a dashboard node delivered, acknowledged and silenced
    /// ([`crate::payload::AlertSync`]).
    AlertSync,
    /// A kind this build does not know.
    Other(u8),
}

impl Kind {
    /// The byte on the wire.
    pub fn to_u8(self) -> u8 {
        match self {
            Kind::Hello => 0x01,
            Kind::Heartbeat => 0x02,
            Kind::Status => 0x03,
            Kind::HostInfo => 0x10,
            Kind::Samples => 0x11,
            Kind::SeriesTable => 0x12,
            Kind::BackfillRequest => 0x20,
            Kind::Replay => 0x21,
            Kind::AlertSync => 0x30,
            Kind::Other(b) => b,
        }
    }

    /// The kind for a byte on the wire.
    pub fn from_u8(b: u8) -> Kind {
        match b {
            0x01 => Kind::Hello,
            0x02 => Kind::Heartbeat,
            0x03 => Kind::Status,
            0x10 => Kind::HostInfo,
            0x11 => Kind::Samples,
            0x12 => Kind::SeriesTable,
            0x20 => Kind::BackfillRequest,
            0x21 => Kind::Replay,
            0x30 => Kind::AlertSync,
            other => Kind::Other(other),
        }
    }
}

/// Header flag bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// Link-local: concerns only the two ends of one link, never forwarded; its `seq` counts in
    /// a space of its own so gossip sequence numbers stay gap-free.
    pub const LINK: Flags = Flags(0x01);
    /// Backfill traffic (requests and replays), not live data: it counts in a sequence of its
    /// own per origin, so live sequences stay gap-free for every node.
    pub const REPLAY: Flags = Flags(0x02);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

/// The authenticated header of a frame.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// What the payload is.
    pub kind: Kind,
    /// See [`Flags`].
    pub flags: Flags,
    /// Name of the node that created the frame.
    pub origin: String,
    /// Identifies one run of the origin; larger is newer (microseconds since the epoch at start).
    pub boot_id: u64,
    /// Sequence number within (origin, boot_id), starting at 1.
    pub seq: u64,
    /// Creation time at the origin, milliseconds since the Unix epoch.
    pub ts_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct WireHeader<'a>(u8, u8, #[serde(borrow)] &'a str, u64, u64, u64);

impl Header {
    /// MessagePack encoding of the header (an array of six).
    pub fn encode(&self) -> Vec<u8> {
        let wire = WireHeader(
            self.kind.to_u8(),
            self.flags.0,
            &self.origin,
            self.boot_id,
            self.seq,
            self.ts_ms,
        );
        // Serializing a tuple of integers and a str into a Vec cannot fail.
        rmp_serde::to_vec(&wire).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Header, DecodeError> {
        let wire: WireHeader<'_> =
            rmp_serde::from_slice(bytes).map_err(|e| DecodeError::Header(e.to_string()))?;
        validate_origin(wire.2)?;
        if wire.4 == 0 {
            return Err(DecodeError::Field("seq must start at 1"));
        }
        Ok(Header {
            kind: Kind::from_u8(wire.0),
            flags: Flags(wire.1),
            origin: wire.2.to_owned(),
            boot_id: wire.3,
            seq: wire.4,
            ts_ms: wire.5,
        })
    }
}

/// Checks a node name: 1 to 64 bytes of letters, digits, `-`, `_`, `.`.
pub fn validate_origin(name: &str) -> Result<(), DecodeError> {
    if name.is_empty() || name.len() > MAX_ORIGIN_LEN {
        return Err(DecodeError::Field("origin must be 1 to 64 bytes"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(DecodeError::Field(
            "origin has characters other than [A-Za-z0-9._-]",
        ));
    }
    Ok(())
}

/// A parsed, not yet authenticated frame: the header and where the sealed part starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Hop count from byte 1.
    pub hops: u8,
    /// The header (authenticated only once the frame is opened).
    pub header: Header,
    /// Offset of the nonce, which is also the end of the associated data (4 + H).
    pub nonce_at: usize,
}

impl Frame {
    /// Parses the envelope of untrusted bytes. Checks sizes and the header; does not verify the
    /// seal. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Frame, DecodeError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        if bytes.len() < 4 {
            return Err(DecodeError::Truncated("shorter than the fixed prefix"));
        }
        if bytes[0] != PROTOCOL_VERSION {
            return Err(DecodeError::Version(bytes[0]));
        }
        let hlen = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        if hlen > MAX_HEADER_LEN {
            return Err(DecodeError::Field("header longer than 256 bytes"));
        }
        let nonce_at = 4 + hlen;
        if bytes.len() < nonce_at + NONCE_LEN + TAG_LEN {
            return Err(DecodeError::Truncated("shorter than header, nonce and tag"));
        }
        let header = Header::decode(&bytes[4..nonce_at])?;
        Ok(Frame {
            hops: bytes[1],
            header,
            nonce_at,
        })
    }

    /// The associated data of a frame: byte 0 and bytes 2..nonce_at. Built in `buf`, on the
    /// caller's stack, when it fits (a valid header always does: at most 97 bytes with the
    /// version byte), so opening a frame allocates nothing for it.
    pub fn associated_data<'a>(
        bytes: &[u8],
        nonce_at: usize,
        buf: &'a mut [u8; AD_INLINE],
    ) -> Cow<'a, [u8]> {
        let (Some(first), Some(rest)) = (bytes.first(), bytes.get(2..nonce_at)) else {
            return Cow::Borrowed(&[]);
        };
        let len = 1 + rest.len();
        match buf.get_mut(..len) {
            Some(ad) => {
                ad[0] = *first; // len >= 1
                ad[1..].copy_from_slice(rest);
                Cow::Borrowed(ad)
            }
            None => {
                let mut ad = Vec::with_capacity(len);
                ad.push(*first);
                ad.extend_from_slice(rest);
                Cow::Owned(ad)
            }
        }
    }
}

/// Room for a frame's associated data on the stack ([`Frame::associated_data`]).
pub const AD_INLINE: usize = 128;

/// Returns a copy of `bytes` with the hop count set to `hops`; forwarding needs nothing else.
pub fn with_hops(bytes: &[u8], hops: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    if let Some(b) = out.get_mut(1) {
        *b = hops;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            kind: Kind::Samples,
            flags: Flags::default(),
            origin: "srv01".into(),
            boot_id: 1_700_000_000_000_000,
            seq: 42,
            ts_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn associated_data_on_the_stack_or_not_is_the_same_bytes() {
        for nonce_at in [4, 60, AD_INLINE + 1, AD_INLINE + 2, 300] {
            let bytes: Vec<u8> = (0..400u32).map(|i| (i % 251) as u8).collect();
            let mut want = vec![bytes[0]];
            want.extend_from_slice(&bytes[2..nonce_at]);
            let mut buf = [0u8; AD_INLINE];
            let ad = Frame::associated_data(&bytes, nonce_at, &mut buf);
            assert_eq!(&ad[..], &want[..], "nonce at {nonce_at}");
            assert_eq!(matches!(ad, Cow::Borrowed(_)), want.len() <= AD_INLINE);
        }
        let mut buf = [0u8; AD_INLINE];
        assert!(
            Frame::associated_data(&[1], 4, &mut buf).is_empty(),
            "too short"
        );
    }

    #[test]
    fn header_round_trips() {
        let h = header();
        assert_eq!(Header::decode(&h.encode()), Ok(h));
    }

    #[test]
    fn kinds_round_trip_including_unknown() {
        for b in 0..=255u8 {
            assert_eq!(Kind::from_u8(b).to_u8(), b);
        }
    }

    #[test]
    fn rejects_short_and_wrong_version() {
        assert_eq!(
            Frame::decode(b""),
            Err(DecodeError::Truncated("shorter than the fixed prefix"))
        );
        assert_eq!(Frame::decode(&[9, 0, 0, 0]), Err(DecodeError::Version(9)));
        assert_eq!(
            Frame::decode(&[1, 0, 0, 0]),
            Err(DecodeError::Version(1)),
            "version 1 (flooding) peers are refused"
        );
        assert!(matches!(
            Frame::decode(&[PROTOCOL_VERSION, 0, 0, 3, 1, 2, 3]),
            Err(DecodeError::Truncated(_))
        ));
        assert!(matches!(
            Frame::decode(&[PROTOCOL_VERSION, 0, 0xff, 0xff]),
            Err(DecodeError::Field(_))
        ));
        let big = vec![PROTOCOL_VERSION; MAX_FRAME_LEN + 1];
        assert_eq!(
            Frame::decode(&big),
            Err(DecodeError::TooLarge(MAX_FRAME_LEN + 1))
        );
    }

    #[test]
    fn rejects_bad_origins() {
        assert!(validate_origin("").is_err());
        assert!(validate_origin("a b").is_err());
        assert!(validate_origin(&"x".repeat(65)).is_err());
        assert!(validate_origin("srv-01.lan_2").is_ok());
    }
}
