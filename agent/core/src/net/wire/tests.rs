//! Tests of the wire: framing, handshake and the reader.

use super::*;

fn frames(parts: &[&[u8]]) -> Vec<u8> {
    let first = Bytes::copy_from_slice(parts[0]);
    let more = parts[1..]
        .iter()
        .map(|p| Bytes::copy_from_slice(p))
        .collect();
    let mut out = Vec::new();
    encode(&Message { first, more }, &mut out);
    out
}

fn assemble(input: &[u8], chunk: usize) -> Result<Vec<Message>, Violation> {
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut a = Assembler::new(Role::Router);
    for piece in input.chunks(chunk.max(1)) {
        v.feed(piece, &mut a)?;
    }
    if let Some(kind) = a.bad_type {
        return Err(Violation::SocketType(kind));
    }
    Ok(a.done)
}

fn client_handshake(socket_type: &[u8]) -> Vec<u8> {
    let mut h = handshake(Role::Router);
    h[32] = 0;
    // Replace our READY's socket type with the client's.
    h.truncate(64);
    h.extend(ready(socket_type));
    h
}

#[test]
fn our_handshakes_pass_our_own_validator_on_the_other_side() {
    for (ours, theirs) in [(Role::Router, Role::Dealer), (Role::Dealer, Role::Router)] {
        let mut v = ZmtpValidator::new(&Limits::default());
        let mut a = Assembler::new(theirs);
        assert_eq!(v.feed(&handshake(ours), &mut a), Ok(()));
        assert!(v.handshake_done());
        assert_eq!(a.bad_type, None);
    }
    // Two DEALERs may talk too; a DEALER does not take a REQ.
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut a = Assembler::new(Role::Dealer);
    assert_eq!(v.feed(&handshake(Role::Dealer), &mut a), Ok(()));
    assert_eq!(a.bad_type, None);
    let mut a = Assembler::new(Role::Dealer);
    let mut v = ZmtpValidator::new(&Limits::default());
    assert_eq!(v.feed(&client_handshake(b"REQ"), &mut a), Ok(()));
    assert_eq!(a.bad_type.as_deref(), Some("REQ"));
}

#[test]
fn messages_are_assembled_whatever_the_chunking() {
    let mut input = client_handshake(b"DEALER");
    input.extend(frames(&[b"one"]));
    input.extend(frames(&[b"a", b"", &[7; 300], &[9; 20_000]]));
    input.extend(frames(&[&[1; 255]]));
    input.extend(frames(&[&[2; 256]]));
    for chunk in [1, 2, 7, 64, 1000, input.len()] {
        let got = assemble(&input, chunk).expect("valid");
        let parts: Vec<Vec<&[u8]>> = got
            .iter()
            .map(|m| m.parts().map(|p| &p[..]).collect())
            .collect();
        let want: Vec<Vec<&[u8]>> = vec![
            vec![b"one"],
            vec![b"a", b"", &[7; 300], &[9; 20_000]],
            vec![&[1; 255]],
            vec![&[2; 256]],
        ];
        assert_eq!(parts, want, "chunk {chunk}");
    }
}

#[test]
fn incompatible_socket_types_are_refused() {
    for ok in [&b"DEALER"[..], b"REQ", b"ROUTER"] {
        assert!(assemble(&client_handshake(ok), 64).is_ok());
    }
    for bad in [&b"PUB"[..], b"SUB", b"PAIR", b""] {
        assert_eq!(
            assemble(&client_handshake(bad), 64).map(|_| ()),
            Err(Violation::SocketType(
                String::from_utf8_lossy(bad).into_owned()
            ))
        );
    }
}

#[test]
fn a_claimed_frame_reserves_at_most_one_buffer() {
    let mut v = ZmtpValidator::new(&Limits::default());
    let mut a = Assembler::new(Role::Router);
    let mut input = client_handshake(b"DEALER");
    input.push(0x02);
    input.extend_from_slice(&60_000u64.to_be_bytes());
    assert_eq!(v.feed(&input, &mut a), Ok(()));
    assert!(a.part.capacity() <= BUF_LEN);
}

#[test]
fn encode_uses_short_and_long_frames() {
    let mut out = Vec::new();
    encode(&Message::single(Bytes::from_static(b"hi")), &mut out);
    assert_eq!(out, b"\x00\x02hi");
    out.clear();
    encode(&Message::single(Bytes::from(vec![0; 256])), &mut out);
    assert_eq!(&out[..9], &[0x02, 0, 0, 0, 0, 0, 0, 1, 0]);
    assert_eq!(out.len(), 9 + 256);
}

#[tokio::test]
async fn a_message_in_the_handshakes_segment_is_handed_on_at_once() {
    // A peer that sends its first message with its greeting, then waits for an answer: the
    // message must not wait for more bytes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (dealer, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (mut dealer, (server, peer)) = (dealer.expect("connect"), accepted.expect("accept"));
    let mut hello = client_handshake(b"DEALER");
    hello.extend(frames(&[b"hello"]));
    dealer.write_all(&hello).await.expect("write");
    let (events_tx, mut events) = mpsc::channel(16);
    let limits = Limits::default();
    let deadline = Instant::now() + Duration::from_secs(3);
    tokio::spawn(async move { serve(server, peer, 9, &limits, deadline, &events_tx).await });
    let mut _held = None;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), events.recv()).await {
            Ok(Some(Event::Up { peer, .. })) => _held = Some(peer),
            Ok(Some(Event::Message { message, .. })) => {
                assert_eq!(message.first, Bytes::from_static(b"hello"));
                break;
            }
            other => panic!("expected the message, got {other:?}"),
        }
    }
}
