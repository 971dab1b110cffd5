//! What opening one frame costs (parse, verify, decrypt: `Frame::decode` then
//! `Keyring::open_parsed`, as a node does for every new frame it reads), and what verifying
//! it alone costs (`Keyring::verify_parsed`, for a frame only passed on), by payload size.
//! `cargo run --release -p meshmon-proto --example open_cost`; prefix
//! `RUSTFLAGS=-Ctarget-cpu=x86-64` to see Poly1305's AVX2 backend instead of the portable one
//! that `.cargo/config.toml` picks (the variable replaces that file's flags).

use meshmon_proto::{Flags, Frame, Header, Key, Keyring, Kind};
use std::hint::black_box;
use std::time::Instant;

/// Opens per timed round; the median of [`ROUNDS`] rounds is printed.
const OPENS: u32 = 20_000;
const ROUNDS: usize = 9;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let ring = Keyring::new(vec![Key::generate()?])?;
    let backend = if cfg!(poly1305_backend = "soft") {
        "portable"
    } else {
        "AVX2 when the CPU has it"
    };
    println!("Poly1305 backend: {backend}; median of {ROUNDS} rounds of {OPENS} opens");
    println!("| payload bytes | frame bytes | ns per open | ns per verify |");
    println!("|---:|---:|---:|---:|");
    for size in [150usize, 400, 1000, 4000] {
        let header = Header {
            kind: Kind::Samples,
            flags: Flags::default(),
            origin: "gpu-node-017".into(),
            boot_id: 1_764_000_000_000_000,
            seq: 42,
            ts_ms: 1_764_000_000_000,
        };
        let payload: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        let bytes = ring.seal(&header, 1, &payload)?;
        let open = median_ns(|| {
            let frame = Frame::decode(black_box(&bytes))?;
            black_box(ring.open_parsed(black_box(&bytes), &frame)?);
            Ok(())
        })?;
        let verify = median_ns(|| {
            let frame = Frame::decode(black_box(&bytes))?;
            ring.verify_parsed(black_box(&bytes), &frame)?;
            Ok(())
        })?;
        println!("| {size} | {} | {open:.0} | {verify:.0} |", bytes.len());
    }
    Ok(())
}

/// The median over [`ROUNDS`] rounds of `f`'s time per call, [`OPENS`] calls a round.
fn median_ns(
    mut f: impl FnMut() -> Result<(), meshmon_proto::DecodeError>,
) -> Result<f64, meshmon_proto::DecodeError> {
    let mut rounds = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..OPENS {
            f()?;
        }
        rounds.push(start.elapsed().as_nanos() as f64 / f64::from(OPENS));
    }
    rounds.sort_by(f64::total_cmp);
    Ok(rounds[ROUNDS / 2])
}
