//! Property tests: frames and payloads round-trip, and no byte string (random, truncated,
//! bit-flipped) makes decoding panic or accept a frame that was not sealed with the key.

use meshmon_proto::num::Num;
use meshmon_proto::payload::{HostInfo, Samples, SeriesTable};
use meshmon_proto::{DecodeError, Flags, Frame, Header, Key, Keyring, Kind, Payload};
use proptest::prelude::*;

fn ring() -> Keyring {
    Keyring::new(vec![
        Key::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=").expect("key"),
    ])
    .expect("ring")
}

fn header() -> impl Strategy<Value = Header> {
    (
        prop_oneof![
            Just(Kind::HostInfo),
            Just(Kind::Samples),
            Just(Kind::SeriesTable)
        ],
        0u8..4,
        "[a-z0-9][a-z0-9._-]{0,20}",
        any::<u64>(),
        1u64..u64::MAX,
        any::<u64>(),
    )
        .prop_map(|(kind, flags, origin, boot_id, seq, ts_ms)| Header {
            kind,
            flags: Flags(flags),
            origin,
            boot_id,
            seq,
            ts_ms,
        })
}

fn payload() -> impl Strategy<Value = Payload> {
    prop_oneof![
        (
            "[ -~]{0,40}",
            proptest::collection::vec("[a-z]{1,8}", 0..4),
            any::<u32>()
        )
            .prop_map(|(os, tags, cores)| Payload::HostInfo(HostInfo {
                os,
                tags,
                cores,
                ..HostInfo::default()
            })),
        (
            any::<u32>(),
            1u64..1000,
            proptest::collection::vec(any::<i32>(), 0..50)
        )
            .prop_map(|(t, n, vals)| Payload::Samples(Samples {
                t,
                n,
                k: true,
                v: vals.into_iter().map(|v| Some(Num(f64::from(v)))).collect(),
                c: Vec::new(),
            })),
        (
            any::<u32>(),
            proptest::collection::vec(("[a-z._]{1,20}", "[a-z/]{0,10}"), 0..20)
        )
            .prop_map(|(table, s)| Payload::SeriesTable(SeriesTable {
                table,
                series: s
                    .into_iter()
                    .map(|(n, l)| (n, vec![("mount".to_owned(), l)]))
                    .collect(),
            })),
    ]
}

proptest! {
    #[test]
    fn sealed_frames_round_trip(h in header(), p in payload(), hops in any::<u8>()) {
        let mut h = h;
        h.kind = p.kind();
        let bytes = ring().seal(&h, hops, &p.encode().expect("encode")).expect("seal");
        let opened = ring().open(&bytes).expect("open");
        prop_assert_eq!(&opened.header, &h);
        prop_assert_eq!(opened.hops, hops);
        prop_assert_eq!(Payload::decode(h.kind, &opened.plaintext).expect("decode"), p);
    }

    #[test]
    fn every_truncation_is_an_error(h in header(), p in payload()) {
        let mut h = h;
        h.kind = p.kind();
        let bytes = ring().seal(&h, 0, &p.encode().expect("encode")).expect("seal");
        for cut in 0..bytes.len() {
            prop_assert!(ring().open(&bytes[..cut]).is_err(), "cut at {}", cut);
        }
    }

    #[test]
    fn every_bit_flip_outside_the_hop_count_is_rejected(h in header(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let bytes = ring().seal(&h, 0, b"\x80").expect("seal");
        let mut i = flip.index(bytes.len());
        if i == 1 { i = 0; }
        let mut t = bytes.clone();
        t[i] ^= 1 << bit;
        prop_assert!(ring().open(&t).is_err());
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Frame::decode(&data);
        let _ = ring().open(&data);
        for k in [Kind::Hello, Kind::Heartbeat, Kind::Status, Kind::HostInfo, Kind::Samples, Kind::SeriesTable] {
            let _ = Payload::decode(k, &data);
        }
    }

    #[test]
    fn random_bytes_after_a_valid_prefix_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..600), hlen in 0u16..300) {
        let mut data = vec![meshmon_proto::PROTOCOL_VERSION, 0];
        data.extend_from_slice(&hlen.to_be_bytes());
        data.extend(tail);
        let _ = Frame::decode(&data);
        prop_assert!(ring().open(&data).is_err());
    }
}

#[test]
fn oversized_input_is_rejected_before_parsing() {
    let big = vec![1u8; 70_000];
    assert_eq!(Frame::decode(&big), Err(DecodeError::TooLarge(70_000)));
}

#[test]
fn hostile_length_prefixes_in_payloads_do_not_allocate_or_panic() {
    // A map claiming 2^32-1 entries, an array claiming 2^32-1 items, a str claiming 4 GiB.
    for bytes in [
        &[0xdf, 0xff, 0xff, 0xff, 0xff][..],
        &[0xdd, 0xff, 0xff, 0xff, 0xff],
        &[0xdb, 0xff, 0xff, 0xff, 0xff],
    ] {
        for k in [
            Kind::HostInfo,
            Kind::Samples,
            Kind::SeriesTable,
            Kind::Status,
        ] {
            assert!(Payload::decode(k, bytes).is_err());
        }
    }
}
