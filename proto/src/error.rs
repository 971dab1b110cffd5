//! Errors of the protocol crate. Decoding errors say what was wrong with the bytes; they never
//! carry the bytes themselves (they came from the network).

use thiserror::Error;

/// Why a byte string is not a valid frame or payload. Every variant means "drop it"; the
/// distinction is for counters and logs.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is longer than [`crate::MAX_FRAME_LEN`]; it was not parsed further.
    #[error("frame of {0} bytes exceeds the limit of {max} bytes", max = crate::MAX_FRAME_LEN)]
    TooLarge(usize),
    /// The input ends before the structure it announces.
    #[error("frame truncated: {0}")]
    Truncated(&'static str),
    /// The first byte is not a protocol version this build speaks.
    #[error("unsupported protocol version {0}")]
    Version(u8),
    /// The header is not the MessagePack array the protocol specifies.
    #[error("malformed header: {0}")]
    Header(String),
    /// The frame kind is not known to this build.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// The header announced something invalid (empty origin, bad flags, ...).
    #[error("invalid header field: {0}")]
    Field(&'static str),
    /// The sealed body did not verify under any key of the keyring: wrong key or tampering.
    #[error("authentication failed")]
    Auth,
    /// The body verified but is not the MessagePack payload its kind requires.
    #[error("malformed payload: {0}")]
    Payload(String),
}

/// Errors that are not about untrusted input: keys and encoding of our own values.
#[derive(Debug, Error)]
pub enum ProtoError {
    /// A key file or key string is not 32 bytes of base64.
    #[error("invalid mesh key: {0}")]
    Key(String),
    /// The keyring has no key to seal with.
    #[error("the keyring is empty")]
    EmptyKeyring,
    /// Encoding our own payload failed (a bug, or a payload too large for one frame).
    #[error("cannot encode frame: {0}")]
    Encode(String),
    /// The operating system's random number generator failed.
    #[error("random number generator failed: {0}")]
    Random(String),
}
