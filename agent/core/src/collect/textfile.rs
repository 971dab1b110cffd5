//! Textfile metrics (`collect.textfile_dir`): the `*.prom` files that backup scripts and cron
//! jobs write in node_exporter's text format, read every `collect.interval` and forwarded with
//! their own names and labels ([`SeriesKey::custom`]).
//!
//! Prometheus metric names (`[a-zA-Z_:][a-zA-Z0-9_:]*`) and label names are kept exactly as
//! written: meshmon's names and selectors accept letters, digits, `_`, `:` and `.`, so every
//! valid Prometheus name is a valid meshmon name and cannot collide with a built-in dotted one.
//! `# HELP`, `# TYPE` and other comments are skipped; a sample's timestamp is ignored (the value
//! is sent with the frame's time); `NaN` and `±Inf` values are skipped silently (meshmon stores
//! finite numbers only). A malformed line is skipped with a warning that names the file and
//! line number, logged when that version of the file is first read, not every interval.
//!
//! A file is re-read only when its modification time or size changes. Limits keep the node's
//! series table inside one mesh frame (64 KiB): files over [`MAX_FILE_BYTES`] are skipped, and
//! at most [`MAX_SERIES`] series with at most [`MAX_KEY_BYTES`] of names and labels are sent in
//! all (files in name order; the rest is dropped with one warning).
//!
//! Not here: scheduling (the thread in [`start`]) and sending (the core loop via [`Extras`]).

use super::{Extras, Sample, Stop};
use meshmon_proto::SeriesKey;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use tracing::warn;

/// The source name under which the values are published.
pub const SOURCE: &str = "textfile";
/// Larger `*.prom` files are skipped.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Series sent in all, over every file.
pub const MAX_SERIES: usize = 500;
/// Bytes of metric names, label names and label values sent in all.
pub const MAX_KEY_BYTES: usize = 32 * 1024;
/// Malformed lines logged per file version (the count of the rest is logged too).
const MAX_WARNINGS: usize = 5;

/// One parse problem: 1-based line number and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: usize,
    pub what: String,
}

/// Parses a node_exporter text file. Returns the finite samples (the first of duplicate
/// series wins) and the malformed lines.
pub fn parse(text: &str) -> (Vec<Sample>, Vec<LineError>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match parse_line(line) {
            Ok(None) => {}
            Ok(Some((key, v))) => {
                if seen.insert(key.clone()) {
                    out.push((key, v));
                } else {
                    errors.push(LineError {
                        line: i + 1,
                        what: format!("duplicate series '{key}'"),
                    });
                }
            }
            Err(what) => errors.push(LineError { line: i + 1, what }),
        }
    }
    (out, errors)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// One sample line: `Ok(None)` for a non-finite value.
fn parse_line(line: &str) -> Result<Option<Sample>, String> {
    let name_end = line.find(|c: char| !is_name_char(c)).unwrap_or(line.len());
    let name = &line[..name_end];
    if !name.starts_with(is_name_start) {
        return Err("expected a metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.trim_start().strip_prefix('{') {
        let (l, after) = parse_labels(inner)?;
        labels = l;
        rest = after;
    }
    if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
        return Err("expected a space before the value".into());
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("missing value")?;
    let value: f64 = value
        .parse()
        .map_err(|_| format!("'{value}' is not a number"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("'{ts}' is not a timestamp"));
    }
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".into());
    }
    Ok(value
        .is_finite()
        .then(|| (SeriesKey::custom(name, labels), value)))
}

/// Label pairs as written.
type Labels = Vec<(String, String)>;

/// Parses `a="x",b="y"}` (after the `{`); returns the labels and the text after `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
        let key = &s[..end];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit() || c == ':') {
            return Err("expected a label name".into());
        }
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("label '{key}': expected '='"))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("label '{key}': expected a quoted value"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let close = loop {
            match chars.next() {
                None => return Err(format!("label '{key}': unterminated value")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    _ => return Err(format!("label '{key}': bad escape")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(k, _)| k == key) {
            return Err(format!("label '{key}' given twice"));
        }
        labels.push((key.to_owned(), value));
        s = s[close + 1..].trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

/// A file's last parse, kept while its modification time and size stay the same.
#[derive(Debug)]
struct Cached {
    version: (Option<SystemTime>, u64),
    samples: Vec<Sample>,
}

/// Reads the `*.prom` files of one directory, re-parsing only files that changed.
#[derive(Debug)]
pub struct Textfile {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Cached>,
    dir_failing: bool,
    capped: bool,
}

impl Textfile {
    /// A collector of the `*.prom` files in `dir`.
    pub fn new(dir: &Path) -> Textfile {
        Textfile {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
            dir_failing: false,
            capped: false,
        }
    }

    /// The current samples of every file, within the limits.
    pub fn collect(&mut self) -> Vec<Sample> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => {
                self.dir_failing = false;
                e
            }
            Err(error) => {
                if !self.dir_failing {
                    warn!(dir = %self.dir.display(), %error, "cannot read collect.textfile_dir; logged again after it recovers");
                    self.dir_failing = true;
                }
                self.files.clear();
                return Vec::new();
            }
        };
        let mut present = HashSet::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "prom") {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            present.insert(path.clone());
            let version = (meta.modified().ok(), meta.len());
            if self.files.get(&path).is_some_and(|c| c.version == version) {
                continue;
            }
            let samples = read_file(&path, meta.len());
            self.files.insert(path, Cached { version, samples });
        }
        self.files.retain(|p, _| present.contains(p));
        self.capped_union()
    }

    fn capped_union(&mut self) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut bytes = 0usize;
        let mut dropped = 0usize;
        for c in self.files.values() {
            for (key, v) in &c.samples {
                let size = key.name.len()
                    + key
                        .labels
                        .iter()
                        .map(|(k, v)| k.len() + v.len())
                        .sum::<usize>();
                if out.len() >= MAX_SERIES || bytes + size > MAX_KEY_BYTES {
                    dropped += 1;
                    continue;
                }
                bytes += size;
                out.push((key.clone(), *v));
            }
        }
        if dropped > 0 && !self.capped {
            warn!(dir = %self.dir.display(), dropped, max_series = MAX_SERIES, max_key_bytes = MAX_KEY_BYTES,
                "textfile series over the limit are not sent");
        }
        self.capped = dropped > 0;
        out
    }
}

/// Reads and parses one file, logging its malformed lines.
fn read_file(path: &Path, len: u64) -> Vec<Sample> {
    if len > MAX_FILE_BYTES {
        warn!(file = %path.display(), bytes = len, max = MAX_FILE_BYTES, "textfile too large; skipped");
        return Vec::new();
    }
    let text = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(error) => {
            warn!(file = %path.display(), %error, "cannot read textfile; skipped");
            return Vec::new();
        }
    };
    let (samples, errors) = parse(&text);
    for e in errors.iter().take(MAX_WARNINGS) {
        warn!(file = %path.display(), line = e.line, error = %e.what, "malformed textfile line skipped");
    }
    if errors.len() > MAX_WARNINGS {
        warn!(file = %path.display(), more = errors.len() - MAX_WARNINGS, "more malformed textfile lines skipped");
    }
    samples
}

/// Starts the collector thread when `collect.textfile_dir` is set.
pub fn start(
    dir: Option<&Path>,
    interval: Duration,
    extras: &Extras,
    stop: &Stop,
) -> Option<std::thread::JoinHandle<()>> {
    let mut tf = Textfile::new(dir?);
    super::extra::spawn("textfile", "textfile", extras, stop, move |extras, stop| {
        loop {
            extras.set(SOURCE, tf.collect());
            if stop.sleep(interval) {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, labels: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::custom(
            name,
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn node_exporter_text() {
        let text = r#"# HELP backup_last_success_timestamp_seconds Last good backup.
# TYPE backup_last_success_timestamp_seconds gauge
backup_last_success_timestamp_seconds{job="home",target="nas"} 1.7e9
backup_size_bytes 123456 1700000000000
node:ratio:sum{a="x"}	0.5
escaped{path="C:\\dir",quote="say \"hi\"",nl="a\nb",} 3
spaced { a = "1" , b="2" } -4
nan_value NaN
inf_value +Inf
neg_inf{a="b"} -Inf
"#;
        let (samples, errors) = parse(text);
        assert_eq!(errors, vec![]);
        let want = vec![
            (
                key(
                    "backup_last_success_timestamp_seconds",
                    &[("job", "home"), ("target", "nas")],
                ),
                1.7e9,
            ),
            (key("backup_size_bytes", &[]), 123_456.0),
            (key("node:ratio:sum", &[("a", "x")]), 0.5),
            (
                key(
                    "escaped",
                    &[("nl", "a\nb"), ("path", "C:\\dir"), ("quote", "say \"hi\"")],
                ),
                3.0,
            ),
            (key("spaced", &[("a", "1"), ("b", "2")]), -4.0),
        ];
        assert_eq!(samples, want);
    }

    #[test]
    fn malformed_lines_are_reported_with_line_numbers() {
        let text = "ok 1\n9bad 1\nno_value\nx{a=\"1} 2\nx{a=1} 2\ny notanumber\nz 1 2 3\nw{a=\"1\"}3\nok 2\nq 1 12.5\nd{a=\"1\",a=\"2\"} 1\n";
        let (samples, errors) = parse(text);
        assert_eq!(samples, vec![(key("ok", &[]), 1.0)]);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(errors[0].what, "expected a metric name");
        assert_eq!(errors[4].what, "'notanumber' is not a number");
        assert_eq!(errors[7].what, "duplicate series 'ok'");
    }

    #[test]
    fn files_are_cached_by_version_and_capped() {
        let t = tempfile::tempdir().expect("tempdir");
        std::fs::write(t.path().join("a.prom"), "a_metric 1\n").expect("write");
        std::fs::write(t.path().join("ignored.txt"), "b_metric 1\n").expect("write");
        let mut tf = Textfile::new(t.path());
        assert_eq!(tf.collect(), vec![(key("a_metric", &[]), 1.0)]);
        // A different size is a new version.
        std::fs::write(t.path().join("a.prom"), "a_metric 22\n").expect("write");
        assert_eq!(tf.collect(), vec![(key("a_metric", &[]), 22.0)]);
        let many: String = (0..MAX_SERIES + 10)
            .map(|i| format!("m{{i=\"{i}\"}} 1\n"))
            .collect();
        std::fs::write(t.path().join("b.prom"), many).expect("write");
        let out = tf.collect();
        assert_eq!(out.len(), MAX_SERIES);
        assert_eq!(out[0], (key("a_metric", &[]), 22.0));
        std::fs::remove_file(t.path().join("b.prom")).expect("rm");
        assert_eq!(tf.collect().len(), 1);
        assert!(!tf.capped);
    }

    #[test]
    fn missing_directory_gives_nothing() {
        let mut tf = Textfile::new(Path::new("/nonexistent/meshmon-textfile"));
        assert!(tf.collect().is_empty());
        assert!(tf.dir_failing);
    }
}
