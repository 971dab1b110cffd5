//! `meshmon keygen`: a new mesh key, printed or written with mode 0600.

use super::Failure;
use anyhow::Context as _;
use meshmon_proto::Key;
use std::io::Write as _;
use std::path::PathBuf;

pub fn keygen(out: Option<PathBuf>) -> Result<(), Failure> {
    let key = Key::generate()
        .context("cannot generate a key")?
        .to_base64();
    match out {
        None => {
            println!("{key}");
            Ok(())
        }
        Some(path) => {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| {
                    format!(
                        "cannot create '{}' (an existing key is never overwritten)",
                        path.display()
                    )
                })?;
            writeln!(f, "{key}").with_context(|| format!("cannot write '{}'", path.display()))?;
            f.sync_all()
                .with_context(|| format!("cannot write '{}'", path.display()))?;
            eprintln!("wrote a new mesh key to {}", path.display());
            Ok(())
        }
    }
}
