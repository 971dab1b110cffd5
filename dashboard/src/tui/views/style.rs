//! Colours and number formatting shared by the views. With `NO_COLOR` every style falls back
//! to bold, dim and reverse, so state stays visible without colour.

use crate::tui::data::HostState;
use ratatui::style::{Color, Modifier, Style};

/// The styles of one run.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    fn fg(self, c: Color) -> Style {
        if self.color {
            Style::new().fg(c)
        } else {
            Style::new()
        }
    }

    pub fn state(self, s: HostState) -> Style {
        match s {
            HostState::Up => self.fg(Color::Green),
            HostState::Stale => self.fg(Color::Yellow).add_modifier(Modifier::ITALIC),
            HostState::Down => self.bad(),
        }
    }

    /// Something broken: down hosts, firing alerts, failed checks.
    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    /// A percentage: normal, yellow from 75, red from 90.
    pub fn level(self, pct: f64) -> Style {
        if pct >= 90.0 {
            self.bad()
        } else if pct >= 75.0 {
            self.warn()
        } else {
            Style::new()
        }
    }

    pub fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub fn head(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }

    pub fn series(self, i: usize) -> Style {
        const C: [Color; 6] = [
            Color::Cyan,
            Color::Magenta,
            Color::Yellow,
            Color::Green,
            Color::Blue,
            Color::Red,
        ];
        self.fg(C[i % C.len()])
    }
}

/// `42%`, or `-` when unknown.
pub fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0}%"))
}

/// Binary-prefixed size: `512B`, `3.4K`, `1.2G`.
pub fn bytes(v: f64) -> String {
    const U: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = v.max(0.0);
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || v >= 100.0 {
        format!("{v:.0}{}", U[i])
    } else {
        format!("{v:.1}{}", U[i])
    }
}

pub fn opt_bytes(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), bytes)
}

/// A rate in bytes per second, without the `/s`: `1.2M`.
pub fn rate(v: Option<f64>) -> String {
    opt_bytes(v)
}

/// Number with an optional unit, or `-`.
pub fn num(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(
        || "-".into(),
        |v| {
            if v.fract() == 0.0 || v.abs() >= 100.0 {
                format!("{v:.0}{unit}")
            } else {
                format!("{v:.1}{unit}")
            }
        },
    )
}

/// A short age: `0s`, `12s`, `3m`, `2h`, `4d`.
pub fn ago(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

/// An uptime: `3d 4h`, `5h 12m`, `12m`.
pub fn uptime(s: f64) -> String {
    let s = s.max(0.0) as u64;
    let (d, h, m) = (s / 86400, s % 86400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// `HH:MM` (UTC) of a time in ms since the epoch.
pub fn hhmm(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86400);
    format!("{:02}:{:02}", s / 3600, s % 3600 / 60)
}

/// `HH:MM:SS` (UTC).
pub fn hms(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86400);
    format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
}

/// A text sparkline of `values` scaled to `[0, max]`, one block character per value.
pub fn sparkline(values: &[f64], max: f64) -> String {
    const B: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    values
        .iter()
        .map(|v| {
            let f = if max > 0.0 {
                (v / max).clamp(0.0, 1.0)
            } else {
                0.0
            };
            B[((f * 7.0).round() as usize).min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(512.0), "512B");
        assert_eq!(bytes(1536.0), "1.5K");
        assert_eq!(bytes(8.0 * 1024.0 * 1024.0 * 1024.0), "8.0G");
        assert_eq!(ago(61_000), "1m");
        assert_eq!(uptime(93_784.0), "1d 2h");
        assert_eq!(hhmm(1_700_000_000_000), "22:13");
        assert_eq!(sparkline(&[0.0, 50.0, 100.0], 100.0), "▁▅█");
        assert_eq!(pct(None), "-");
    }
}
