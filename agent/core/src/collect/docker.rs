//! The Docker directory size collector (`collect.docker_dir`, every `collect.docker_interval`):
//! walks the tree and publishes `docker.dir_bytes` into [`Extras`] under the source `docker`.
//!
//! The total is what `du -sbx DIR` prints: the apparent size (`st_size`) of every entry,
//! directories and symlinks (their own `lstat` size) included, each hard-linked inode counted
//! once, symlinks not followed, other filesystems (running containers' overlay mounts, which
//! would count image layers twice) not entered and their mount points left out, unreadable
//! entries skipped. A symlinked `docker_dir` itself is followed (as `du -sbxD` would).
//!
//! The walk runs on its own thread at nice 19 and checks [`Stop`] every few entries, so a long
//! walk never delays the core loop or shutdown. The I/O priority is left alone: rustix has no
//! `ioprio_set` and `unsafe` is forbidden in this workspace.
//!
//! Not here: per-container or per-image sizes (they would need the Docker API).

use super::{Extras, Stop};
use meshmon_proto::SeriesKey;
use meshmon_proto::metrics::Metric;
use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};
use walkdir::WalkDir;

/// The source name in [`Extras`].
pub const SOURCE: &str = "docker";

/// [`Stop`] is checked every this many entries (a check is a short uncontended lock).
const STOP_CHECK_EVERY: u64 = 64;

/// The result of one walk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sum of apparent sizes, as `du -sbx` prints it.
    pub bytes: u64,
    /// Entries counted (hard links to an inode already counted are not).
    pub entries: u64,
    /// Entries that could not be read (a directory that cannot be listed, a vanished file).
    pub skipped: u64,
    /// The first of those errors, for the log.
    pub first_error: Option<String>,
}

/// Why a walk gave no total.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    /// The directory does not exist: no metric (Docker is not installed, or not yet).
    #[error("'{0}' does not exist")]
    Missing(PathBuf),
    /// The directory exists but cannot be read at all.
    #[error("cannot read '{path}': {source}")]
    Root {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The node is stopping; the walk was abandoned.
    #[error("stopped")]
    Stopped,
}

/// Walks `root` once and sums it like `du -sbx root`.
pub fn walk(root: &Path, stop: &Stop) -> Result<Totals, WalkError> {
    let root_dev = match std::fs::metadata(root) {
        Ok(m) => m.dev(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(WalkError::Missing(root.to_owned()));
        }
        Err(source) => {
            return Err(WalkError::Root {
                path: root.to_owned(),
                source,
            });
        }
    };
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut t = Totals::default();
    let skip = |t: &mut Totals, e: walkdir::Error| {
        t.skipped += 1;
        if t.first_error.is_none() {
            t.first_error = Some(e.to_string());
        }
    };
    for (n, entry) in WalkDir::new(root)
        .follow_links(false)
        .same_file_system(true)
        .into_iter()
        .enumerate()
    {
        if (n as u64).is_multiple_of(STOP_CHECK_EVERY) && stop.stopped() {
            return Err(WalkError::Stopped);
        }
        let md = match entry.and_then(|e| e.metadata()) {
            Ok(md) => md,
            Err(e) => {
                skip(&mut t, e);
                continue;
            }
        };
        // walkdir yields a mount point but does not enter it; `du -x` leaves it out entirely.
        if md.dev() != root_dev {
            continue;
        }
        if !md.is_dir() && md.nlink() > 1 && !seen.insert((md.dev(), md.ino())) {
            continue;
        }
        t.bytes += md.size();
        t.entries += 1;
    }
    Ok(t)
}

/// Lowers the calling thread's CPU priority to nice 19 (on Linux the nice value is per thread,
/// so the rest of the agent keeps its priority).
pub fn lower_priority() {
    if let Err(error) = rustix::process::setpriority_process(None, 19) {
        debug!(%error, "cannot lower the docker walk's priority");
    }
}

/// Starts the collector thread if `dir` is set.
pub fn start(
    dir: Option<&Path>,
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    let dir = dir?.to_owned();
    super::extra::spawn("collect-docker", "docker", extras, stop, move |e, s| {
        run(&dir, interval, e, s)
    })
}

/// Walks `dir` every `interval` until `stop`, publishing under [`SOURCE`].
pub fn run(dir: &Path, interval: Duration, extras: &Extras, stop: &Stop) {
    lower_priority();
    // What was logged last about the directory, so a state is logged once, not every walk.
    let mut last_state = String::new();
    let mut first = true;
    loop {
        let started = Instant::now();
        match walk(dir, stop) {
            Ok(t) => {
                let key = SeriesKey::new(Metric::DockerDirBytes);
                extras.set(SOURCE, vec![(key, t.bytes as f64)]);
                let took_ms = started.elapsed().as_millis() as u64;
                if first || !last_state.is_empty() {
                    info!(dir = %dir.display(), bytes = t.bytes, entries = t.entries, took_ms,
                        "docker collector: walked the directory");
                } else {
                    debug!(dir = %dir.display(), bytes = t.bytes, entries = t.entries, took_ms,
                        "docker walk done");
                }
                last_state.clear();
                if t.skipped > 0 {
                    warn!(dir = %dir.display(), skipped = t.skipped,
                        first_error = t.first_error.as_deref().unwrap_or(""),
                        "docker walk skipped unreadable entries");
                }
            }
            Err(WalkError::Stopped) => return,
            Err(error) => {
                extras.clear(SOURCE);
                let state = error.to_string();
                if state != last_state {
                    // No Docker on this host is a normal state; an unreadable one is not.
                    if matches!(error, WalkError::Missing(_)) {
                        info!(%error, "docker collector: no docker.dir_bytes until the directory exists");
                    } else {
                        warn!(%error, "docker collector: no docker.dir_bytes until the directory can be read");
                    }
                    last_state = state;
                }
            }
        }
        first = false;
        if stop.sleep(interval) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    /// `du -sbx DIR`'s total, as this environment (user, filesystem) gives it.
    fn du(dir: &Path) -> u64 {
        let out = std::process::Command::new("du")
            .arg("-sbx")
            .arg(dir)
            .output()
            .expect("run du");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("du printed '{text}'"))
    }

    /// A tree with files of many sizes, hard links, symlinks to files and to a directory
    /// outside, an empty file, a deep chain and an unreadable folder.
    fn tree(root: &Path, outside: &Path) {
        let w = |p: &Path, n: usize| std::fs::write(p, vec![b'x'; n]).expect("write");
        std::fs::create_dir_all(root.join("a/b/c/d")).expect("mkdir");
        std::fs::create_dir_all(outside.join("big")).expect("mkdir");
        w(&outside.join("big/f"), 1 << 20);
        for (i, n) in [0, 1, 511, 4096, 4097, 100_000, 1 << 20].iter().enumerate() {
            w(&root.join(format!("f{i}")), *n);
            w(&root.join(format!("a/b/c/d/g{i}")), *n * 3);
        }
        std::fs::hard_link(root.join("f5"), root.join("a/hard5")).expect("link");
        std::fs::hard_link(root.join("f5"), root.join("a/b/hard5b")).expect("link");
        std::fs::hard_link(root.join("f6"), root.join("a/b/c/hard6")).expect("link");
        symlink(root.join("f6"), root.join("a/sym-to-file")).expect("symlink");
        symlink(outside.join("big"), root.join("a/sym-to-outside-dir")).expect("symlink");
        symlink("dangling/target/name", root.join("dangling")).expect("symlink");
        let locked = root.join("locked");
        std::fs::create_dir_all(locked.join("inner")).expect("mkdir");
        w(&locked.join("secret"), 12345);
        w(&locked.join("inner/secret2"), 777);
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    }

    #[test]
    fn walk_equals_du_sbx() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("docker");
        tree(&root, &dir.path().join("outside"));
        let t = walk(&root, &Stop::default()).expect("walk");
        let want = du(&root);
        // Leave the tempdir removable.
        std::fs::set_permissions(root.join("locked"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod back");
        assert_eq!(t.bytes, want, "walk {t:?} vs du -sbx {want}");
        // The hard links and the outside directory would make the total larger if miscounted.
        assert!(t.bytes < (1 << 20) * 5, "{t:?}");
        if rustix::process::geteuid().is_root() {
            assert_eq!(t.skipped, 0, "root reads the locked folder, as du does");
        } else {
            assert_eq!(t.skipped, 1, "the locked folder's contents are skipped");
        }
    }

    #[test]
    fn missing_dir_is_missing_and_stop_abandons_a_walk() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = walk(&dir.path().join("nope"), &Stop::default());
        assert!(matches!(r, Err(WalkError::Missing(_))));
        let stop = Stop::default();
        stop.stop();
        assert!(matches!(walk(dir.path(), &stop), Err(WalkError::Stopped)));
    }

    #[test]
    fn collector_publishes_and_clears_when_the_dir_goes_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("d");
        std::fs::create_dir(&root).expect("mkdir");
        std::fs::write(root.join("f"), [0u8; 1000]).expect("write");
        let (extras, stop) = (Extras::default(), Stop::default());
        let t = start(Some(&root), Duration::from_millis(100), &extras, &stop).expect("thread");
        let wait = |want: Option<f64>| {
            let until = Instant::now() + Duration::from_secs(10);
            loop {
                let got = extras.get(SOURCE).and_then(|v| v.first().map(|s| s.1));
                if got == want || Instant::now() > until {
                    return got;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert_eq!(wait(Some(du(&root) as f64)), Some(du(&root) as f64));
        std::fs::remove_dir_all(&root).expect("rm");
        assert_eq!(wait(None), None, "a missing directory means no metric");
        stop.stop();
        t.join().expect("docker thread");
    }

    #[test]
    fn priority_is_lowered_for_the_walking_thread_only() {
        let before = rustix::process::getpriority_process(None).expect("getpriority");
        let inside = std::thread::spawn(|| {
            lower_priority();
            rustix::process::getpriority_process(None).expect("getpriority")
        })
        .join()
        .expect("thread");
        assert_eq!(inside, 19);
        assert_eq!(
            rustix::process::getpriority_process(None).ok(),
            Some(before)
        );
    }
}
