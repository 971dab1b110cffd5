//! Reading one process: `/proc/PID/stat` (name, state, CPU ticks, start time, resident pages,
//! kernel-thread flag), `/proc/PID/io` (storage bytes, where readable) and, once per process
//! and only for interpreters, `/proc/PID/cmdline` (the script's name).
//!
//! Not here: grouping, rates and the choice of what is sent (the parent).

use std::io::Read;
use std::path::Path;

/// `PF_KTHREAD` in the `flags` field of `stat`: a kernel thread.
const PF_KTHREAD: u64 = 0x0020_0000;

/// The name kernel threads are grouped under.
pub(super) const KERNEL: &str = "kthreads";

/// The `stat` fields used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stat {
    /// `comm`: the kernel's name of the process (at most 15 bytes).
    pub comm: String,
    /// `R`, `S`, `D`, `Z`, ...
    pub state: char,
    pub kernel_thread: bool,
    /// User + system time, in clock ticks.
    pub ticks: u64,
    /// Start time after boot, in clock ticks.
    pub start: u64,
    /// Resident set, in pages.
    pub rss_pages: u64,
}

/// Parses `/proc/PID/stat`. The name is between the first `(` and the last `)` (it may hold
/// spaces and parentheses itself).
pub(super) fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let rest: Vec<&str> = text.get(close + 1..)?.split_ascii_whitespace().collect();
    // Field k of proc(5) (1-based, `state` is field 3) is rest[k - 3].
    let num = |k: usize| rest.get(k - 3).and_then(|w| w.parse::<u64>().ok());
    let state = rest.first()?.chars().next()?;
    let flags = num(9)?;
    Some(Stat {
        comm,
        state,
        kernel_thread: flags & PF_KTHREAD != 0,
        ticks: num(14)?.saturating_add(num(15)?),
        start: num(22)?,
        rss_pages: num(24)?,
    })
}

/// `read_bytes` and `write_bytes` of `/proc/PID/io`: what the process made the storage layer
/// fetch and write (not `rchar`/`wchar`, which count page-cache hits and pipes).
pub(super) fn parse_io(text: &str) -> Option<(u64, u64)> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some((field("read_bytes")?, field("write_bytes")?))
}

/// Interpreters whose processes are named after the script they run (`comm` prefix).
const INTERPRETERS: [&str; 6] = ["python", "perl", "ruby", "node", "php", "bash"];

/// Whether processes named `comm` are grouped by their script rather than by `comm`.
pub(super) fn is_interpreter(comm: &str) -> bool {
    INTERPRETERS.iter().any(|i| comm.starts_with(i))
}

/// The script an interpreter runs, from its NUL-separated command line: the base name of the
/// first argument after the interpreter that is not an option (`python3 -u /srv/app.py` ->
/// `app.py`), or the module of `-m` (`python3 -m http.server` -> `http.server`). `None` when
/// there is none (`python3 -c ...`, an interactive shell).
pub(super) fn script_name(cmdline: &[u8]) -> Option<String> {
    let mut args = cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).skip(1);
    while let Some(a) = args.next() {
        match a {
            b"-m" => return args.next().map(|m| String::from_utf8_lossy(m).into_owned()),
            b"-c" | b"-e" | b"-E" | b"-r" => return None,
            a if a.starts_with(b"-") => {}
            a => {
                let base = a.rsplit(|b| *b == b'/').next().unwrap_or(a);
                let name: String = String::from_utf8_lossy(base).chars().take(64).collect();
                return (!name.is_empty()).then_some(name);
            }
        }
    }
    None
}

/// The group name of a process: `kthreads` for kernel threads, the script for interpreters
/// (reading `cmdline` under `dir`), else `comm`.
pub(super) fn group_name(dir: &Path, stat: &Stat, buf: &mut Vec<u8>) -> String {
    if stat.kernel_thread {
        return KERNEL.to_owned();
    }
    if is_interpreter(&stat.comm) {
        buf.clear();
        let read = std::fs::File::open(dir.join("cmdline")).and_then(|mut f| f.read_to_end(buf));
        if read.is_ok()
            && let Some(script) = script_name(buf)
        {
            return script;
        }
    }
    stat.comm.clone()
}

/// The page size, from the first mapping's `KernelPageSize` in `/proc/self/smaps` (read once
/// at start); 4096 when it cannot be read.
pub(super) fn page_size() -> u64 {
    std::fs::read_to_string("/proc/self/smaps")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let kb = l
                    .strip_prefix("KernelPageSize:")?
                    .trim()
                    .strip_suffix("kB")?;
                kb.trim().parse::<u64>().ok()
            })
        })
        .map_or(4096, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (my (odd) name) R 1 4242 4242 0 -1 4194304 120 0 0 0 \
                        250 50 0 0 20 0 1 0 123456 10485760 2560 18446744073709551615 \
                        1 1 0 0 0 0 0 0 0 0 0 0 17 3 0 0 0 0 0\n";

    #[test]
    fn stat_fields() {
        let s = parse_stat(STAT).expect("stat");
        assert_eq!(s.comm, "my (odd) name");
        assert_eq!(s.state, 'R');
        assert!(!s.kernel_thread);
        assert_eq!((s.ticks, s.start, s.rss_pages), (300, 123_456, 2560));
        let k = STAT.replace(" 4194304 ", " 2129984 ");
        assert!(parse_stat(&k).expect("kthread").kernel_thread);
        assert_eq!(parse_stat("4242 (x) R 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn io_fields() {
        let io = "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\n\
                  write_bytes: 8192\ncancelled_write_bytes: 0\n";
        assert_eq!(parse_io(io), Some((4096, 8192)));
        assert_eq!(parse_io("rchar: 1\n"), None);
    }

    #[test]
    fn scripts_of_interpreters() {
        assert_eq!(
            script_name(b"/usr/bin/python3\0-u\0/srv/app/worker.py\0--fast\0").as_deref(),
            Some("worker.py")
        );
        assert_eq!(
            script_name(b"python3\0-m\0http.server\0").as_deref(),
            Some("http.server")
        );
        assert_eq!(script_name(b"python3\0-c\0print(1)\0"), None);
        assert_eq!(script_name(b"bash\0"), None);
        assert_eq!(script_name(b""), None);
        assert!(is_interpreter("python3.11") && is_interpreter("node"));
        assert!(!is_interpreter("nginx"));
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        let p = page_size();
        assert!(p >= 4096 && p.is_power_of_two(), "{p}");
    }
}
