//! Disk space and inodes of the real filesystems, as `df -B1` and `df -i` report them.
//!
//! Mounts come from `/proc/self/mountinfo`, re-read when the kernel flags a change of the mount
//! table (`POLLPRI` on an open descriptor of it, checked every call), so new mounts appear at
//! the next call without generating the table's text every second (Netdata rechecks every
//! 15 s); where that cannot be polled, it is re-read every call. Pseudo
//! and in-memory filesystems are skipped, and a device mounted more than once (bind mounts,
//! btrfs subvolumes) is reported once, under its shortest mount point. Numbers come from
//! `statvfs`: total = `f_blocks * f_frsize`, used = `(f_blocks - f_bfree) * f_frsize`, used % =
//! used / (used + available) like df.
//!
//! Not here: network filesystems (NFS, CIFS, sshfs...) are skipped because `statvfs` on a dead
//! server blocks the calling thread, which would stall every other metric; disk I/O rates and
//! SMART are other collectors.

use super::{CollectError, Failing, Sample, parse_error, pct, push_labelled, read};
use meshmon_proto::metrics::Metric;
use std::collections::HashMap;

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// Filesystem types that hold no disk space of their own.
const PSEUDO: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "fusectl",
    "hugetlbfs",
    "mqueue",
    "nfsd",
    "nsfs",
    "overlay",
    "proc",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tmpfs",
    "tracefs",
    "fuse.gvfsd-fuse",
    "fuse.lxcfs",
    "fuse.portal",
    "fuse.snapfuse",
    "fuse.xdg-document-portal",
    "fuse.kio-fuse",
    "none",
];

/// Network filesystems: skipped (see the module header).
const REMOTE: &[&str] = &[
    "9p",
    "afs",
    "ceph",
    "cifs",
    "davfs",
    "fuse.glusterfs",
    "fuse.rclone",
    "fuse.s3fs",
    "fuse.sshfs",
    "glusterfs",
    "lustre",
    "ncpfs",
    "nfs",
    "nfs4",
    "smb3",
    "smbfs",
];

/// One line of `/proc/self/mountinfo`, the fields that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mount {
    /// `major:minor` of the device.
    dev: String,
    /// The directory of the filesystem that is mounted (`/` unless a bind mount or subvolume).
    root: String,
    /// Where it is mounted.
    point: String,
    fstype: String,
}

/// Disk state kept between calls: which mounts already logged a `statvfs` failure, and the
/// mounts as last read.
#[derive(Debug, Default)]
pub(super) struct Disks {
    failing: Failing,
    /// The mount table, opened only to be polled: the kernel flags it when a mount comes or
    /// goes (`proc(5)`, `/proc/pid/mounts`).
    table: Option<std::fs::File>,
    /// The mounts selected at the last read; `None` until the first one.
    mounts: Option<Vec<Mount>>,
}

impl Disks {
    /// `disk.*{mount}` for every real filesystem. A mount whose `statvfs` fails is left out and
    /// logged once (the error is not returned: the other mounts are fine).
    pub(super) fn collect(&mut self, out: &mut Vec<Sample>) -> Result<(), CollectError> {
        if self.mounts.is_none() || self.table_changed() {
            // Opened before the read: a change in between is flagged at the next call.
            if self.table.is_none() {
                self.table = std::fs::File::open(MOUNTINFO).ok();
            }
            self.mounts = None;
            self.mounts = Some(select(parse_mountinfo(&read(MOUNTINFO)?)?));
        }
        let mounts = self.mounts.as_deref().unwrap_or_default();
        // Forget failures of mounts that are gone, so a later mount there logs afresh.
        self.failing.0.retain(|k| {
            mounts
                .iter()
                .any(|m| k.strip_prefix("disk ") == Some(&m.point))
        });
        for m in mounts {
            let st =
                rustix::fs::statvfs(m.point.as_str()).map_err(|source| CollectError::Statvfs {
                    mount: m.point.clone(),
                    source,
                });
            if let Some(st) = self.failing.record(&format!("disk {}", m.point), st) {
                emit(out, &m.point, &st);
            }
        }
        Ok(())
    }

    /// Whether the mount table changed since the last poll; true where it cannot be polled.
    fn table_changed(&self) -> bool {
        use rustix::event::{PollFd, PollFlags, Timespec};
        let Some(table) = &self.table else {
            return true;
        };
        let mut fds = [PollFd::new(table, PollFlags::PRI)];
        let now = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match rustix::event::poll(&mut fds, Some(&now)) {
            Ok(_) => fds[0].revents().intersects(PollFlags::PRI | PollFlags::ERR),
            Err(_) => true,
        }
    }
}

fn emit(out: &mut Vec<Sample>, mount: &str, st: &rustix::fs::StatVfs) {
    if st.f_blocks == 0 {
        return; // a pseudo filesystem of a type not in the list
    }
    let bs = st.f_frsize;
    let total = st.f_blocks.saturating_mul(bs);
    let used = st.f_blocks.saturating_sub(st.f_bfree).saturating_mul(bs);
    let avail = st.f_bavail.saturating_mul(bs);
    push_labelled(out, Metric::DiskTotalBytes, mount, total as f64);
    push_labelled(out, Metric::DiskUsedBytes, mount, used as f64);
    push_labelled(
        out,
        Metric::DiskUsedPct,
        mount,
        pct(used, used.saturating_add(avail)),
    );
    // Filesystems without a fixed inode table (btrfs) report 0; df -i shows '-' for them.
    if st.f_files > 0 {
        let iused = st.f_files.saturating_sub(st.f_ffree);
        push_labelled(out, Metric::DiskInodesTotal, mount, st.f_files as f64);
        push_labelled(out, Metric::DiskInodesUsed, mount, iused as f64);
        push_labelled(
            out,
            Metric::DiskInodesUsedPct,
            mount,
            pct(iused, st.f_files),
        );
    }
}

/// Parses mountinfo lines: `id parent major:minor root point options [optional...] - type
/// source super-options`.
fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, CollectError> {
    let mut mounts = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || parse_error(MOUNTINFO, format!("line '{line}'"));
        let (left, right) = line.split_once(" - ").ok_or_else(bad)?;
        let mut l = left.split(' ');
        let (Some(dev), Some(root), Some(point)) = (l.nth(2), l.next(), l.next()) else {
            return Err(bad());
        };
        let fstype = right.split(' ').next().ok_or_else(bad)?;
        mounts.push(Mount {
            dev: dev.to_owned(),
            root: unescape(root),
            point: unescape(point),
            fstype: fstype.to_owned(),
        });
    }
    Ok(mounts)
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                let v = d.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                out.push(u8::try_from(v).unwrap_or(b'?'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a filesystem type holds local disk space.
fn is_real(fstype: &str) -> bool {
    !PSEUDO.contains(&fstype) && !REMOTE.contains(&fstype)
}

/// The real filesystems, one mount per device: the one that mounts the filesystem's root if
/// any, else the shortest mount point. Keeps mountinfo order.
fn select(mounts: Vec<Mount>) -> Vec<Mount> {
    let mut best: HashMap<&str, usize> = HashMap::new();
    for (i, m) in mounts.iter().enumerate() {
        if !is_real(&m.fstype) {
            continue;
        }
        let rank = |m: &Mount| (m.root != "/", m.point.len());
        best.entry(m.dev.as_str())
            .and_modify(|b| {
                if rank(m) < rank(&mounts[*b]) {
                    *b = i;
                }
            })
            .or_insert(i);
    }
    let mut keep: Vec<usize> = best.into_values().collect();
    keep.sort_unstable();
    let mut mounts: Vec<Option<Mount>> = mounts.into_iter().map(Some).collect();
    keep.into_iter()
        .filter_map(|i| mounts.get_mut(i)?.take())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
50 27 254:0 /srv/data /mnt/bind rw,relatime shared:1 - ext4 /dev/vda rw
51 27 254:1 / /mnt/my\\040disk rw,relatime - xfs /dev/vdb rw
52 27 0:50 / /var/lib/docker/overlay2/x/merged rw - overlay overlay rw
53 27 0:51 / /mnt/nas rw - nfs4 nas:/export rw
54 27 0:52 /@home /home rw - btrfs /dev/vdc rw,subvol=/@home
55 27 0:52 /@ /btr rw - btrfs /dev/vdc rw,subvol=/@
";

    #[test]
    fn mountinfo_fields_and_escapes() {
        let m = parse_mountinfo(MOUNTINFO_SAMPLE).expect("parse");
        assert_eq!(m.len(), 10);
        assert_eq!(m[2].dev, "254:0");
        assert_eq!(m[4].root, "/srv/data");
        assert_eq!(m[5].point, "/mnt/my disk");
        assert_eq!(m[5].fstype, "xfs");
        assert!(parse_mountinfo("garbage\n").is_err());
        assert!(parse_mountinfo("1 2 - ext4\n").is_err());
        assert_eq!(unescape("a\\134b\\011c\\9"), "a\\b\tc\\9");
    }

    #[test]
    fn only_real_filesystems_once_per_device() {
        let kept: Vec<String> = select(parse_mountinfo(MOUNTINFO_SAMPLE).expect("parse"))
            .into_iter()
            .map(|m| m.point)
            .collect();
        // The bind mount of /dev/vda and the second btrfs subvolume are duplicates; /btr is
        // shorter than /home.
        assert_eq!(kept, ["/", "/mnt/my disk", "/btr"]);
    }

    #[test]
    fn a_mount_coming_or_going_is_flagged_at_the_next_call() {
        let mut d = Disks::default();
        d.collect(&mut Vec::new()).expect("mountinfo on linux");
        assert!(
            d.table.is_some(),
            "the mount table is kept open to be polled"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "meshmon-test"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("skipped: cannot mount a tmpfs here (CI runs as root)");
            return;
        }
        let changed = d.table_changed();
        let unmounted = std::process::Command::new("umount")
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(changed, "a new mount flags the table");
        assert!(unmounted);
        assert!(d.table_changed(), "so does its end");
    }

    #[test]
    fn root_filesystem_matches_statvfs() {
        let mut out = Vec::new();
        Disks::default()
            .collect(&mut out)
            .expect("mountinfo on linux");
        let st = rustix::fs::statvfs("/").expect("statvfs /");
        let get = |m: Metric| {
            out.iter()
                .find(|(k, _)| k.name == m.name() && k.label("mount") == Some("/"))
                .map(|&(_, v)| v)
        };
        assert_eq!(
            get(Metric::DiskTotalBytes),
            Some((st.f_blocks * st.f_frsize) as f64)
        );
        if st.f_files > 0 {
            assert_eq!(get(Metric::DiskInodesTotal), Some(st.f_files as f64));
        }
    }
}
