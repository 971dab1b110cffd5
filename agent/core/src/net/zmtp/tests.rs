//! Unit tests of the ZMTP validator: byte literals in the zmq.rs and libzmq formats, each
//! kind of violation, split-anywhere equivalence, and proptests that no input panics.

use super::*;
use proptest::prelude::*;

/// The greeting zmq.rs sends: signature with zero padding, version 3.0, NULL, client.
fn zmqrs_greeting() -> Vec<u8> {
    let mut g = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
    g.extend_from_slice(b"NULL");
    g.extend_from_slice(&[0; 16]);
    g.push(0);
    g.extend_from_slice(&[0; 31]);
    g
}

/// The greeting libzmq 4.x sends: padding encodes identity length + 1, version 3.1.
fn libzmq_greeting() -> Vec<u8> {
    let mut g = zmqrs_greeting();
    g[8] = 1;
    g[11] = 1;
    g
}

/// A command frame with the given name and properties, short or long form by size.
fn command(name: &[u8], props: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut body = vec![name.len() as u8];
    body.extend_from_slice(name);
    for (key, value) in props {
        body.push(key.len() as u8);
        body.extend_from_slice(key);
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    }
    frame_with_flags(FLAG_COMMAND, &body)
}

fn ready(socket_type: &[u8]) -> Vec<u8> {
    command(b"READY", &[(b"Socket-Type", socket_type)])
}

fn frame_with_flags(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    if body.len() > 255 {
        f.push(flags | FLAG_LONG);
        f.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        f.push(flags);
        f.push(body.len() as u8);
    }
    f.extend_from_slice(body);
    f
}

/// A whole message, MORE set on all parts but the last.
fn message(parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        let more = if i + 1 < parts.len() { FLAG_MORE } else { 0 };
        m.extend(frame_with_flags(more, part));
    }
    m
}

fn handshake() -> Vec<u8> {
    let mut h = zmqrs_greeting();
    h.extend(ready(b"DEALER"));
    h
}

fn ping() -> Vec<u8> {
    // PING carries a 2-byte TTL (in tenths of a second) and an optional context.
    frame_with_flags(FLAG_COMMAND, b"\x04PING\x00\x0a")
}

/// Feeds `input` in one call; returns what was forwarded and the result.
fn run(input: &[u8]) -> (Vec<u8>, Result<(), Violation>) {
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    let result = v.feed(input, &mut out);
    (out, result)
}

fn run_err(input: &[u8]) -> Violation {
    match run(input).1 {
        Err(violation) => violation,
        Ok(()) => panic!("input was accepted"),
    }
}

#[test]
fn zmqrs_handshake_and_messages_pass_unchanged() {
    let mut input = zmqrs_greeting();
    input.extend(ready(b"ROUTER"));
    input.extend(message(&[b"a", &[7u8; 300], b""]));
    input.extend(message(&[&[1u8; 65_536]]));
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    assert!(!v.handshake_done());
    assert_eq!(v.feed(&input, &mut out), Ok(()));
    assert!(v.handshake_done());
    assert_eq!(out, input);
}

#[test]
fn libzmq_handshake_with_empty_identity_passes() {
    let mut input = libzmq_greeting();
    input.extend(command(
        b"READY",
        &[(b"Socket-Type", b"DEALER"), (b"Identity", b"")],
    ));
    let (out, result) = run(&input);
    assert_eq!(result, Ok(()));
    assert_eq!(out, input);
}

#[test]
fn greeting_bytes_are_forwarded_as_they_arrive() {
    let greeting = libzmq_greeting();
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    // libzmq sends the 10-byte signature, then waits for ours: it must go through at once.
    assert_eq!(v.feed(&greeting[..10], &mut out), Ok(()));
    assert_eq!(out, &greeting[..10]);
    assert_eq!(v.feed(&greeting[10..11], &mut out), Ok(()));
    assert_eq!(out, &greeting[..11]);
}

#[test]
fn message_bodies_are_forwarded_as_they_arrive() {
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    assert_eq!(v.feed(&handshake(), &mut out), Ok(()));
    out.clear();
    let frame = frame_with_flags(0, &[9u8; 1000]);
    assert_eq!(v.feed(&frame[..100], &mut out), Ok(()));
    assert_eq!(out, &frame[..100]);
}

#[test]
fn huge_length_claim_is_rejected_at_the_header() {
    let mut input = handshake();
    let forwarded = input.len();
    input.push(FLAG_LONG);
    input.extend_from_slice(&(1u64 << 44).to_be_bytes());
    let (out, result) = run(&input);
    assert_eq!(
        result,
        Err(Violation::FrameTooLarge {
            size: 1 << 44,
            max: 66_560
        })
    );
    // The header itself never reaches zmq.rs.
    assert_eq!(out.len(), forwarded);
}

#[test]
fn frame_at_the_limit_passes_one_over_fails() {
    let max = Limits::default().max_frame;
    let mut ok = handshake();
    ok.extend(frame_with_flags(0, &vec![0; max as usize]));
    assert_eq!(run(&ok).1, Ok(()));
    let mut over = handshake();
    over.extend(frame_with_flags(0, &vec![0; max as usize + 1]));
    assert_eq!(
        run(&over).1,
        Err(Violation::FrameTooLarge { size: max + 1, max })
    );
}

#[test]
fn reserved_flag_bits_are_rejected() {
    for flags in [0x08u8, 0x10, 0x80, 0xff] {
        let mut input = handshake();
        input.extend([flags, 0]);
        assert_eq!(run_err(&input), Violation::ReservedFlags(flags));
    }
}

#[test]
fn bad_signature_and_version_are_rejected() {
    let mut g = zmqrs_greeting();
    g[0] = b'G';
    assert!(matches!(
        run_err(&g),
        Violation::BadSignature { offset: 0, .. }
    ));
    let mut g = zmqrs_greeting();
    g[9] = 0x7e;
    assert!(matches!(
        run_err(&g),
        Violation::BadSignature { offset: 9, .. }
    ));
    let mut g = zmqrs_greeting();
    g[10] = 2;
    assert_eq!(run_err(&g), Violation::Version(2));
    let mut g = zmqrs_greeting();
    g[32] = 7;
    assert_eq!(run_err(&g), Violation::AsServer(7));
}

#[test]
fn http_request_is_rejected_at_the_first_byte() {
    let (out, result) = run(b"GET / HTTP/1.1\r\n\r\n");
    assert!(matches!(
        result,
        Err(Violation::BadSignature { offset: 0, .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn mechanisms_other_than_null_are_rejected() {
    for (mech, shown) in [
        (&b"PLAIN"[..], "PLAIN"),
        (b"CURVE", "CURVE"),
        (b"NUL", "NUL"),
        (b"NULLX", "NULLX"),
    ] {
        let mut g = zmqrs_greeting();
        g[12..32].fill(0);
        g[12..12 + mech.len()].copy_from_slice(mech);
        assert_eq!(run_err(&g), Violation::Mechanism(shown.into()));
    }
    // NULL followed by garbage in the padding is not NULL either.
    let mut g = zmqrs_greeting();
    g[20] = b'x';
    assert!(matches!(run_err(&g), Violation::Mechanism(_)));
}

#[test]
fn first_frame_must_be_ready() {
    let mut input = zmqrs_greeting();
    input.extend(message(&[b"hello"]));
    assert_eq!(run_err(&input), Violation::ExpectedReady);
    let mut input = zmqrs_greeting();
    input.extend(ping());
    assert_eq!(run_err(&input), Violation::ExpectedReady);
}

#[test]
fn ping_and_pong_are_dropped_even_inside_a_multipart_message() {
    let mut input = handshake();
    let mut expected = input.clone();
    input.extend(ping());
    input.extend(frame_with_flags(FLAG_MORE, b"part1"));
    expected.extend(frame_with_flags(FLAG_MORE, b"part1"));
    input.extend(command(b"PONG", &[]));
    input.extend(frame_with_flags(0, b"part2"));
    expected.extend(frame_with_flags(0, b"part2"));
    let (out, result) = run(&input);
    assert_eq!(result, Ok(()));
    assert_eq!(out, expected);
}

#[test]
fn other_commands_after_the_handshake_are_rejected() {
    let mut input = handshake();
    input.extend(ready(b"DEALER"));
    assert_eq!(
        run_err(&input),
        Violation::UnexpectedCommand("READY".into())
    );
    let mut input = handshake();
    input.extend(command(b"SUBSCRIBE", &[]));
    assert_eq!(
        run_err(&input),
        Violation::UnexpectedCommand("SUBSCRIBE".into())
    );
}

#[test]
fn command_limits_and_shape_are_enforced() {
    let mut input = handshake();
    input.extend(frame_with_flags(FLAG_COMMAND, &vec![4; 5000]));
    assert_eq!(
        run_err(&input),
        Violation::CommandTooLarge {
            size: 5000,
            max: 4096
        }
    );
    let mut input = handshake();
    input.extend([FLAG_COMMAND | FLAG_MORE, 0]);
    assert_eq!(run_err(&input), Violation::CommandWithMore);
    let mut input = handshake();
    input.extend([FLAG_COMMAND, 0]);
    assert!(matches!(run_err(&input), Violation::MalformedCommand(_)));
    let mut input = handshake();
    input.extend(frame_with_flags(FLAG_COMMAND, &[9, b'P']));
    assert!(matches!(run_err(&input), Violation::MalformedCommand(_)));
}

#[test]
fn malformed_ready_properties_are_rejected() {
    let truncated: &[&[u8]] = &[
        b"\x05READY\x0bSocket",
        b"\x05READY\x0bSocket-Type\x00\x00",
        b"\x05READY\x0bSocket-Type\x00\x00\x00\x06DEAL",
        b"\x05READY\x00",
        b"\x05READY\x02\xff\xfe\x00\x00\x00\x00",
    ];
    for body in truncated {
        let mut input = zmqrs_greeting();
        input.extend(frame_with_flags(FLAG_COMMAND, body));
        assert!(
            matches!(run_err(&input), Violation::MalformedCommand(_)),
            "{body:?}"
        );
    }
}

#[test]
fn too_many_parts_is_rejected_at_the_first_extra_part() {
    let limits = Limits::default();
    let mut v = ZmtpValidator::new(&limits);
    let mut out = Vec::new();
    assert_eq!(v.feed(&handshake(), &mut out), Ok(()));
    let part = frame_with_flags(FLAG_MORE, b"x");
    for i in 0..100_000u32 {
        match v.feed(&part, &mut out) {
            Ok(()) => assert!(i < limits.max_parts, "part {} accepted", i + 1),
            Err(violation) => {
                assert_eq!(i, limits.max_parts);
                assert_eq!(violation, Violation::TooManyParts(limits.max_parts));
                return;
            }
        }
    }
    panic!("100k-part message accepted");
}

#[test]
fn part_count_resets_between_messages() {
    let mut input = handshake();
    for _ in 0..10 {
        input.extend(message(&[b"a", b"b", b"c", b"d"]));
    }
    assert_eq!(run(&input).1, Ok(()));
}

#[test]
fn a_failed_validator_keeps_failing() {
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    let err = v.feed(b"nope", &mut out);
    assert!(err.is_err());
    assert_eq!(v.feed(&handshake(), &mut out), err);
}

#[test]
fn command_buffer_stays_within_max_command() {
    let limits = Limits::default();
    let mut v = ZmtpValidator::new(&limits);
    let mut out = Vec::new();
    let mut input = handshake();
    for _ in 0..50 {
        input.extend(frame_with_flags(FLAG_COMMAND, &{
            let mut body = b"\x04PING".to_vec();
            body.resize(4096, 0);
            body
        }));
        input.extend(message(&[&[0; 60_000]]));
    }
    assert_eq!(v.feed(&input, &mut out), Ok(()));
    assert!(v.command.capacity() <= 2 * (9 + limits.max_command as usize));
}

/// A valid session with every kind of frame, for the split tests.
fn session() -> Vec<u8> {
    let mut s = libzmq_greeting();
    s.extend(command(
        b"READY",
        &[(b"Socket-Type", b"DEALER"), (b"Identity", b"")],
    ));
    s.extend(message(&[b"id", &[1; 400], b""]));
    s.extend(ping());
    s.extend(message(&[&[2; 10]]));
    s.extend(command(b"PONG", &[]));
    s
}

/// Feeds `input` split at `at`; returns the forwarded bytes and the result.
fn run_split(input: &[u8], at: usize) -> (Vec<u8>, Result<(), Violation>) {
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    let (a, b) = input.split_at(at);
    let result = v.feed(a, &mut out).and_then(|()| v.feed(b, &mut out));
    (out, result)
}

#[test]
fn splitting_at_any_byte_gives_the_same_result() {
    let valid = session();
    let mut invalid = session();
    invalid.extend([FLAG_LONG, 0, 0, 0x10, 0, 0, 0, 0, 0]);
    for input in [valid, invalid] {
        let whole = run(&input);
        for at in 0..=input.len() {
            let split = run_split(&input, at);
            assert_eq!(split.1, whole.1, "split at {at}");
            if whole.1.is_ok() {
                assert_eq!(split.0, whole.0, "split at {at}");
            }
        }
    }
}

#[test]
fn byte_by_byte_equals_whole() {
    let input = session();
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut out = Vec::new();
    for byte in &input {
        assert_eq!(v.feed(std::slice::from_ref(byte), &mut out), Ok(()));
    }
    assert_eq!(out, run(&input).0);
}

/// One step of a generated valid session.
#[derive(Debug, Clone)]
enum Step {
    /// A message of 1..=4 parts with the given sizes.
    Message(Vec<usize>),
    /// A PING or PONG command, to be dropped.
    Heartbeat(bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        proptest::collection::vec(0usize..700, 1..=4).prop_map(Step::Message),
        any::<bool>().prop_map(Step::Heartbeat),
    ]
}

proptest! {
    #[test]
    fn valid_sessions_pass_with_heartbeats_removed(
        steps in proptest::collection::vec(step(), 0..20),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut input = session();
        let mut expected = run(&input).0;
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Message(sizes) => {
                    let parts: Vec<Vec<u8>> = sizes.iter().map(|&n| vec![i as u8; n]).collect();
                    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
                    let bytes = message(&refs);
                    input.extend(&bytes);
                    expected.extend(bytes);
                }
                Step::Heartbeat(true) => input.extend(ping()),
                Step::Heartbeat(false) => input.extend(command(b"PONG", &[])),
            }
        }
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut v = ZmtpValidator::new(&Limits::default());
        let mut out = Vec::new();
        let mut start = 0;
        for point in points.into_iter().chain([input.len()]) {
            prop_assert_eq!(v.feed(&input[start..point], &mut out), Ok(()));
            start = point;
        }
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn random_input_never_panics(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = run(&input);
    }

    #[test]
    fn random_frames_after_a_valid_handshake_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut input = handshake();
        input.extend(tail);
        let mut v = ZmtpValidator::new(&Limits::default());
        let mut out = Vec::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut start = 0;
        let mut chunked = Ok(());
        for point in points.into_iter().chain([input.len()]) {
            chunked = chunked.and_then(|()| v.feed(&input[start..point], &mut out));
            start = point;
        }
        let whole = run(&input);
        prop_assert_eq!(chunked, whole.1.clone());
        if whole.1.is_ok() {
            prop_assert_eq!(out, whole.0);
        }
        prop_assert!(v.command.capacity() <= 2 * (9 + 4096));
    }
}
