//! Mesh keys and sealing: XChaCha20-Poly1305 with random 24-byte nonces, the header as
//! associated data. A [`Keyring`] seals with its first key and opens with any of its keys,
//! which is how keys are rotated without a flag day.
//!
//! Not here: which frames to accept (replay, de-duplication); that is gossip's business.

use crate::error::{DecodeError, ProtoError};
use crate::frame::{AD_INLINE, Frame, Header, MAX_FRAME_LEN, NONCE_LEN, PROTOCOL_VERSION, TAG_LEN};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20::cipher::{KeyIvInit, StreamCipherCore};
use chacha20::variants::Ietf;
use chacha20::{ChaChaCore, R20, hchacha};
use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use poly1305::universal_hash::UniversalHash;
use poly1305::{Block, Poly1305};

/// A 32-byte pre-shared mesh key.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; 32]);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// The all-zero key used by nodes without a key file. It authenticates nothing (everyone
    /// knows it), which is why such nodes only listen on loopback addresses.
    pub const NULL: Key = Key([0; 32]);

    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Key, ProtoError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| ProtoError::Random(e.to_string()))?;
        Ok(Key(k))
    }

    /// Parses standard base64 of exactly 32 bytes (surrounding whitespace ignored).
    pub fn from_base64(s: &str) -> Result<Key, ProtoError> {
        let bytes = B64
            .decode(s.trim())
            .map_err(|e| ProtoError::Key(format!("not base64 ({e})")))?;
        let arr: [u8; 32] = bytes.try_into().map_err(|b: Vec<u8>| {
            ProtoError::Key(format!("decodes to {} bytes, expected 32", b.len()))
        })?;
        Ok(Key(arr))
    }

    /// Standard base64, one line, as `meshmon keygen` prints it.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Whether this is [`Key::NULL`].
    pub fn is_null(&self) -> bool {
        self.0 == [0; 32]
    }
}

/// A frame whose seal verified: header, hop count and the plaintext payload.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenedFrame {
    /// Hop count as received.
    pub hops: u8,
    /// The authenticated header.
    pub header: Header,
    /// The decrypted MessagePack payload.
    pub plaintext: Vec<u8>,
}

/// The keys a node seals with (the first) and accepts (all of them).
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(Key, XChaCha20Poly1305)>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

impl Keyring {
    /// A keyring of the given keys; the first seals.
    pub fn new(keys: Vec<Key>) -> Result<Keyring, ProtoError> {
        if keys.is_empty() {
            return Err(ProtoError::EmptyKeyring);
        }
        let keys = keys
            .into_iter()
            .map(|k| {
                let cipher = XChaCha20Poly1305::new(&k.0.into());
                (k, cipher)
            })
            .collect();
        Ok(Keyring { keys })
    }

    /// Parses a key file: the first non-empty, non-`#` line is the sealing key, further lines
    /// are keys also accepted. Errors name the line.
    pub fn parse(text: &str) -> Result<Keyring, ProtoError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let key = Key::from_base64(line)
                .map_err(|e| ProtoError::Key(format!("line {}: {e}", i + 1)))?;
            keys.push(key);
        }
        if keys.is_empty() {
            return Err(ProtoError::Key(
                "no key in file (run 'meshmon keygen')".into(),
            ));
        }
        Keyring::new(keys)
    }

    /// Whether this keyring seals with [`Key::NULL`].
    pub fn is_null(&self) -> bool {
        self.keys.first().is_some_and(|(k, _)| k.is_null())
    }

    /// Builds and seals a frame: envelope with `hops`, header, random nonce, ciphertext.
    pub fn seal(&self, header: &Header, hops: u8, payload: &[u8]) -> Result<Vec<u8>, ProtoError> {
        let (_, cipher) = self.keys.first().ok_or(ProtoError::EmptyKeyring)?;
        let hbytes = header.encode();
        let hlen = u16::try_from(hbytes.len())
            .map_err(|_| ProtoError::Encode("header too long".into()))?;
        let total = 4 + hbytes.len() + NONCE_LEN + payload.len() + TAG_LEN;
        if total > MAX_FRAME_LEN {
            return Err(ProtoError::Encode(format!(
                "frame of {total} bytes exceeds {MAX_FRAME_LEN}"
            )));
        }
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|e| ProtoError::Random(e.to_string()))?;
        let mut out = Vec::with_capacity(total);
        out.push(PROTOCOL_VERSION);
        out.push(hops);
        out.extend_from_slice(&hlen.to_be_bytes());
        out.extend_from_slice(&hbytes);
        let mut ad_buf = [0u8; AD_INLINE];
        let ad = Frame::associated_data(&out, out.len(), &mut ad_buf);
        let ct = cipher
            .encrypt(
                &XNonce::from(nonce),
                AeadPayload {
                    msg: payload,
                    aad: &ad,
                },
            )
            .map_err(|_| ProtoError::Encode("encryption failed".into()))?;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Verifies and decrypts a frame already parsed with [`Frame::decode`].
    pub fn open_parsed(&self, bytes: &[u8], frame: &Frame) -> Result<Vec<u8>, DecodeError> {
        let (nonce, sealed) = nonce_and_sealed(bytes, frame)?;
        let mut ad_buf = [0u8; AD_INLINE];
        let ad = Frame::associated_data(bytes, frame.nonce_at, &mut ad_buf);
        let nonce = XNonce::from(nonce);
        for (_, cipher) in &self.keys {
            let payload = AeadPayload {
                msg: sealed,
                aad: &ad,
            };
            if let Ok(pt) = cipher.decrypt(&nonce, payload) {
                return Ok(pt);
            }
        }
        Err(DecodeError::Auth)
    }

    /// Verifies a parsed frame's seal without decrypting its payload: all a node needs for
    /// a frame it only passes on. The tag is checked as [`Keyring::open_parsed`] checks it
    /// (RFC 8439, 2.8: Poly1305 keyed with the first 32 bytes of the XChaCha20 keystream,
    /// over the padded associated data, the padded ciphertext and both lengths), in constant
    /// time; only the payload's keystream is never computed. The tests hold both to the same
    /// answer for every byte of a frame flipped.
    pub fn verify_parsed(&self, bytes: &[u8], frame: &Frame) -> Result<(), DecodeError> {
        let (nonce, sealed) = nonce_and_sealed(bytes, frame)?;
        let (ciphertext, tag) = sealed
            .split_last_chunk::<TAG_LEN>()
            .ok_or(DecodeError::Auth)?;
        let mut ad_buf = [0u8; AD_INLINE];
        let ad = Frame::associated_data(bytes, frame.nonce_at, &mut ad_buf);
        let mut lengths = [0u8; 16];
        lengths[..8].copy_from_slice(&(ad.len() as u64).to_le_bytes());
        lengths[8..].copy_from_slice(&(ciphertext.len() as u64).to_le_bytes());
        for (key, _) in &self.keys {
            let mut mac = Poly1305::new(&poly1305_key(key, &nonce).into());
            mac.update_padded(&ad);
            mac.update_padded(ciphertext);
            mac.update(&[Block::from(lengths)]);
            if mac.verify(&Block::from(*tag)).is_ok() {
                return Ok(());
            }
        }
        Err(DecodeError::Auth)
    }

    /// Parses, verifies and decrypts untrusted bytes.
    pub fn open(&self, bytes: &[u8]) -> Result<OpenedFrame, DecodeError> {
        let frame = Frame::decode(bytes)?;
        let plaintext = self.open_parsed(bytes, &frame)?;
        Ok(OpenedFrame {
            hops: frame.hops,
            header: frame.header,
            plaintext,
        })
    }
}

/// The one-time Poly1305 key of a sealed frame: the first 32 bytes of XChaCha20's keystream
/// block 0 (HChaCha20 derives a subkey from the nonce's first 16 bytes; ChaCha20 runs under it
/// with the last 8 behind four zero bytes). Written as one block, without the stream wrapper,
/// whose byte-wise XOR cost more than the block itself.
fn poly1305_key(key: &Key, nonce: &[u8; NONCE_LEN]) -> [u8; 32] {
    let mut head = [0u8; 16];
    head.copy_from_slice(&nonce[..16]);
    let subkey = hchacha::<R20>(&key.0.into(), &head.into());
    let mut iv = [0u8; 12];
    iv[4..].copy_from_slice(&nonce[16..]);
    let mut block = Default::default();
    ChaChaCore::<R20, Ietf>::new(&subkey, &iv.into()).write_keystream_block(&mut block);
    let mut out = [0u8; 32];
    out.copy_from_slice(&block[..32]);
    out
}

/// A parsed frame's nonce and what follows it (ciphertext and tag).
fn nonce_and_sealed<'a>(
    bytes: &'a [u8],
    frame: &Frame,
) -> Result<([u8; NONCE_LEN], &'a [u8]), DecodeError> {
    let nonce_end = frame.nonce_at + NONCE_LEN;
    let nonce = bytes
        .get(frame.nonce_at..nonce_end)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError::Truncated("nonce"))?;
    let sealed = bytes
        .get(nonce_end..)
        .ok_or(DecodeError::Truncated("ciphertext"))?;
    Ok((nonce, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{Flags, Kind, with_hops};

    fn header() -> Header {
        Header {
            kind: Kind::HostInfo,
            flags: Flags::default(),
            origin: "a".into(),
            boot_id: 7,
            seq: 1,
            ts_ms: 5,
        }
    }

    fn ring() -> Keyring {
        Keyring::new(vec![Key::generate().expect("rng")]).expect("one key")
    }

    /// `.cargo/config.toml` picks Poly1305's portable backend: on frames of a few hundred
    /// bytes it opens a frame in about half the time of the AVX2 one (`scripts/BENCHMARKS.md`,
    /// "Opening a frame"). A `RUSTFLAGS` variable replaces that file's flags; this says so.
    #[test]
    #[allow(clippy::assertions_on_constants)] // constant by design: it reads the build's flags
    fn poly1305_is_the_portable_backend() {
        assert!(
            cfg!(poly1305_backend = "soft"),
            "built without `--cfg poly1305_backend=\"soft\"` (a RUSTFLAGS variable replaces \
             .cargo/config.toml's rustflags; add the flag to it)"
        );
    }

    #[test]
    fn seal_open_round_trip_and_hops_are_not_authenticated() {
        let k = ring();
        let bytes = k.seal(&header(), 0, b"hello").expect("seal");
        let opened = k.open(&bytes).expect("open");
        assert_eq!(opened.plaintext, b"hello");
        assert_eq!(opened.header, header());
        let forwarded = with_hops(&bytes, 3);
        let opened = k.open(&forwarded).expect("hops may change");
        assert_eq!(opened.hops, 3);
    }

    #[test]
    fn wrong_key_and_tampering_fail() {
        let k = ring();
        let bytes = k.seal(&header(), 0, b"hello").expect("seal");
        assert_eq!(ring().open(&bytes), Err(DecodeError::Auth));
        for i in (0..bytes.len()).filter(|&i| i != 1) {
            let mut t = bytes.clone();
            t[i] ^= 0x01;
            assert!(k.open(&t).is_err(), "flipping byte {i} must fail");
        }
    }

    /// Verifying alone gives the answer opening gives: for a frame as sealed, forwarded
    /// (hops changed), with each of its bytes flipped, cut short, under a wrong key, and on
    /// a keyring that holds the sealing key second. Payloads of 0 to 200 bytes cross the
    /// 16-byte padding of both the associated data and the ciphertext.
    #[test]
    fn verifying_agrees_with_opening() {
        let k = ring();
        let other = ring();
        let rotated =
            Keyring::new(vec![Key::generate().expect("rng"), k.keys[0].0.clone()]).expect("ring");
        let agree = |ring: &Keyring, bytes: &[u8]| -> bool {
            let Ok(frame) = Frame::decode(bytes) else {
                return false;
            };
            let opened = ring.open_parsed(bytes, &frame).is_ok();
            assert_eq!(
                ring.verify_parsed(bytes, &frame).is_ok(),
                opened,
                "verify and open disagree on {} bytes",
                bytes.len()
            );
            opened
        };
        for len in [0, 1, 15, 16, 17, 63, 64, 65, 200] {
            let mut h = header();
            h.origin = "o".repeat(len % 40 + 1);
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let bytes = k.seal(&h, 0, &payload).expect("seal");
            assert!(agree(&k, &bytes));
            assert!(agree(&k, &with_hops(&bytes, 5)));
            assert!(agree(&rotated, &bytes));
            assert!(!agree(&other, &bytes));
            for i in (0..bytes.len()).filter(|&i| i != 1) {
                let mut t = bytes.clone();
                t[i] ^= 0x80;
                assert!(!agree(&k, &t), "flipping byte {i} of {len} must fail");
            }
            for cut in 1..=TAG_LEN + 1 {
                assert!(!agree(&k, &bytes[..bytes.len() - cut]));
            }
        }
    }

    #[test]
    fn rotation_accepts_old_key() {
        let old = Key::generate().expect("rng");
        let new = Key::generate().expect("rng");
        let sender = Keyring::new(vec![old.clone()]).expect("ring");
        let receiver = Keyring::new(vec![new, old]).expect("ring");
        let bytes = sender.seal(&header(), 0, b"x").expect("seal");
        assert!(receiver.open(&bytes).is_ok());
    }

    #[test]
    fn key_file_parsing() {
        let a = Key::generate().expect("rng").to_base64();
        let b = Key::generate().expect("rng").to_base64();
        let ring = Keyring::parse(&format!("# comment\n{a}\n\n{b}\n")).expect("two keys");
        assert_eq!(ring.keys.len(), 2);
        let err = Keyring::parse("not-base64!\n").expect_err("bad");
        assert!(err.to_string().contains("line 1"), "{err}");
        assert!(Keyring::parse("# only comments\n").is_err());
        assert!(Key::from_base64("AAAA").is_err());
    }
}
