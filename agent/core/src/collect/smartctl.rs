//! Running `smartctl` and reading what it prints: a child process with a deadline (its whole
//! process group is killed when the deadline passes, so a hung drive cannot hang the
//! collector), the exit-status bit mask, and the JSON of `--scan` and `--xall`.
//!
//! smartctl's exit status is a bit mask (smartctl(8), "RETURN VALUES"): bit 0 = the command
//! line did not parse, bit 1 = the device could not be opened, bits 2-7 = the device answered
//! and reports something (a failed SMART command, a failing drive, errors in its logs). Only
//! bits 0-1 mean there is nothing to read; otherwise the JSON is read as it is.
//!
//! Not here: scheduling and metrics (the parent `smart` module).

use super::Stop;
use serde_json::Value;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The most of smartctl's stdout that is read (a `--xall` report is tens of KiB).
const MAX_OUTPUT: u64 = 16 << 20;
/// How often a running smartctl is polled for exit (and the node for stopping).
const POLL: Duration = Duration::from_millis(20);
/// "Text file busy".
const ETXTBSY: i32 = 26;

/// Why a smartctl run gave nothing to read.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The program does not exist (smartmontools not installed, or a wrong `collect.smartctl`).
    #[error("program '{0}' not found")]
    NotFound(String),
    /// The program exists but could not be started (e.g. not executable).
    #[error("cannot run '{program}': {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// It ran past the deadline and was killed.
    #[error("'{program} {args}' did not finish within {timeout:?} and was killed")]
    Timeout {
        /// The program.
        program: String,
        /// Its arguments, space separated.
        args: String,
        /// The deadline.
        timeout: Duration,
    },
    /// It ended without printing JSON.
    #[error("'{program} {args}' printed no JSON (exit status {status:?}): {what}")]
    NotJson {
        /// The program.
        program: String,
        /// Its arguments, space separated.
        args: String,
        /// Its exit status, if it exited.
        status: Option<i32>,
        /// The parser's complaint.
        what: String,
    },
    /// smartctl could not open the device or did not understand its command line (exit bit
    /// 0 or 1); `messages` are its own words, e.g. `Smartctl open device: /dev/sda failed:
    /// Permission denied`.
    #[error("{messages} (smartctl exit status {status})")]
    Device {
        /// smartctl's exit status.
        status: i32,
        /// `smartctl.messages[].string`, joined with "; ".
        messages: String,
    },
    /// The node is stopping; the run was abandoned.
    #[error("stopped")]
    Stopped,
}

/// The smartctl program and the deadline of each run.
#[derive(Debug, Clone)]
pub struct Smartctl {
    /// Path or name (looked up on `PATH`).
    pub program: String,
    /// A run past this is killed.
    pub timeout: Duration,
}

impl Smartctl {
    /// Runs smartctl with `args` and parses its stdout as JSON, whatever the exit status.
    /// Returns the JSON and the exit status (`None` if killed by a signal).
    pub fn json(&self, args: &[&str], stop: &Stop) -> Result<(Value, Option<i32>), RunError> {
        let (stdout, status) = self.run(args, stop)?;
        match serde_json::from_slice::<Value>(&stdout) {
            Ok(v) if v.is_object() => Ok((v, status)),
            Ok(_) => Err(self.not_json(args, status, "not a JSON object".into())),
            Err(e) => Err(self.not_json(args, status, e.to_string())),
        }
    }

    fn not_json(&self, args: &[&str], status: Option<i32>, what: String) -> RunError {
        RunError::NotJson {
            program: self.program.clone(),
            args: args.join(" "),
            status,
            what,
        }
    }

    /// Runs the program in a process group of its own; kills the group at the deadline or when
    /// the node stops. stdout is read on a helper thread so a large report never blocks it.
    fn run(&self, args: &[&str], stop: &Stop) -> Result<(Vec<u8>, Option<i32>), RunError> {
        let mut tries = 0;
        let mut child = loop {
            let spawned = Command::new(&self.program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn();
            match spawned {
                Ok(child) => break child,
                // ETXTBSY: a script written moments ago whose write descriptor a concurrent
                // fork still holds; it clears in moments.
                Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 5 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(source) if source.kind() == io::ErrorKind::NotFound => {
                    return Err(RunError::NotFound(self.program.clone()));
                }
                Err(source) => {
                    return Err(RunError::Spawn {
                        program: self.program.clone(),
                        source,
                    });
                }
            }
        };
        let group = rustix::process::Pid::from_child(&child);
        let reader = child.stdout.take().map(|out| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = out.take(MAX_OUTPUT).read_to_end(&mut buf);
                buf
            })
        });
        let deadline = Instant::now() + self.timeout;
        let outcome = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status.code()),
                Ok(None) => {}
                Err(source) => {
                    break Err(RunError::Spawn {
                        program: self.program.clone(),
                        source,
                    });
                }
            }
            if Instant::now() >= deadline {
                break Err(RunError::Timeout {
                    program: self.program.clone(),
                    args: args.join(" "),
                    timeout: self.timeout,
                });
            }
            if stop.sleep(POLL) {
                break Err(RunError::Stopped);
            }
        };
        // Whatever happened, nothing of the group may outlive the run: a leftover child
        // holding the pipe would also keep the reader waiting. (ESRCH: already gone.)
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = child.wait();
        let stdout = reader.and_then(|r| r.join().ok()).unwrap_or_default();
        outcome.map(|status| (stdout, status))
    }
}

/// A device found by `smartctl --scan --json`: its name and the `-d` type to read it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// e.g. `/dev/nvme0`.
    pub name: String,
    /// e.g. `nvme`, `sat`, `scsi`.
    pub kind: String,
}

/// The devices of a `--scan --json` output (none when the key is absent, as smartctl prints
/// on a machine without drives it can see).
pub fn scan_devices(v: &Value) -> Vec<Device> {
    v.get("devices")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|d| {
                    let name = d.get("name")?.as_str()?.to_owned();
                    let kind = d.get("type").and_then(Value::as_str).unwrap_or("auto");
                    Some(Device {
                        name,
                        kind: kind.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Checks the exit bits that mean "nothing to read" (0: bad command line, 1: device open
/// failed); the exit status comes from the process, else from the JSON's own copy.
pub fn check_exit(v: &Value, status: Option<i32>) -> Result<(), RunError> {
    let status = status
        .or_else(|| {
            v.pointer("/smartctl/exit_status")
                .and_then(Value::as_i64)
                .and_then(|s| i32::try_from(s).ok())
        })
        .unwrap_or(0);
    if status & 0b11 == 0 {
        return Ok(());
    }
    let messages: Vec<&str> = v
        .pointer("/smartctl/messages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|m| m.get("string").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let messages = if messages.is_empty() {
        "smartctl could not read the device".to_owned()
    } else {
        messages.join("; ")
    };
    Err(RunError::Device { status, messages })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sh(script: &str, timeout: Duration) -> (tempfile::TempDir, Smartctl) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("fake-smartctl");
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write");
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let s = Smartctl {
            program: path.display().to_string(),
            timeout,
        };
        (dir, s)
    }

    #[test]
    fn json_is_read_whatever_the_exit_status() {
        let (_d, s) = sh("echo '{\"a\": 1}'; exit 216", Duration::from_secs(10));
        let (v, status) = s.json(&[], &Stop::default()).expect("json");
        assert_eq!(v["a"], 1);
        assert_eq!(status, Some(216));
        assert!(
            check_exit(&v, status).is_ok(),
            "bits 3-7 still mean valid output"
        );
    }

    #[test]
    fn not_json_missing_program_and_timeout_are_errors() {
        let (_d, s) = sh("echo 'Permission denied'; exit 2", Duration::from_secs(10));
        let r = s.json(&[], &Stop::default());
        assert!(
            matches!(
                r,
                Err(RunError::NotJson {
                    status: Some(2),
                    ..
                })
            ),
            "{r:?}"
        );
        let missing = Smartctl {
            program: "/nonexistent/smartctl".into(),
            timeout: Duration::from_secs(1),
        };
        let r = missing.json(&["--scan"], &Stop::default());
        assert!(matches!(r, Err(RunError::NotFound(_))), "{r:?}");
        // A hung drive: the script's own child (sleep) holds stdout open; the whole group
        // is killed at the deadline.
        let (_d2, hung) = sh("sleep 30; echo '{}'", Duration::from_millis(300));
        let start = Instant::now();
        let r = hung.json(&[], &Stop::default());
        assert!(matches!(r, Err(RunError::Timeout { .. })), "{r:?}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn stop_abandons_a_run() {
        let (_d2, hung) = sh("sleep 30", Duration::from_secs(60));
        let stop = Stop::default();
        let s2 = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            s2.stop();
        });
        let start = Instant::now();
        let r = hung.json(&[], &stop);
        assert!(matches!(r, Err(RunError::Stopped)), "{r:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().expect("thread");
    }

    #[test]
    fn open_failure_bits_give_smartctls_own_message() {
        let v = json!({"smartctl": {"exit_status": 2, "messages": [
            {"string": "Smartctl open device: /dev/sda failed: Permission denied", "severity": "error"}
        ]}});
        let e = check_exit(&v, Some(2)).expect_err("bit 1");
        assert!(e.to_string().contains("Permission denied"), "{e}");
        assert!(check_exit(&json!({"smartctl": {"exit_status": 1}}), None).is_err());
        assert!(check_exit(&json!({"smartctl": {"exit_status": 4}}), None).is_ok());
    }

    #[test]
    fn scan_lists_devices_and_types() {
        let v = json!({"devices": [
            {"name": "/dev/sda", "info_name": "/dev/sda [SAT]", "type": "sat", "protocol": "ATA"},
            {"name": "/dev/nvme0", "type": "nvme"},
            {"type": "scsi"}
        ]});
        let d = scan_devices(&v);
        assert_eq!(d.len(), 2);
        assert_eq!(d[1].name, "/dev/nvme0");
        assert_eq!(d[0].kind, "sat");
        assert!(scan_devices(&json!({"smartctl": {}})).is_empty());
    }
}
