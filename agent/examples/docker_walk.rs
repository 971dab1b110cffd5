//! Walks a directory once the way the Docker size collector does and prints the total in
//! bytes (what `du -sbx DIR` prints), the entries counted and the entries skipped, tab
//! separated. `scripts/bench_docker.sh` times it against `du`.
//!
//! Usage: `cargo run --release --example docker_walk -- DIR`

use meshmon_agent::collect::Stop;
use meshmon_agent::collect::docker;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .ok_or_else(|| anyhow::anyhow!("usage: docker_walk DIR"))?;
    docker::lower_priority();
    let t = docker::walk(&dir, &Stop::default())?;
    println!("{}\t{}\t{}", t.bytes, t.entries, t.skipped);
    Ok(())
}
