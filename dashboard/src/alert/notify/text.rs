//! Text helpers every kind shares: cutting to a service's limit (in characters, on a character
//! boundary), naming hosts ("web01, web02, … and 25 more"), fitting lines into a budget, and
//! escaping for HTML.
//!
//! Not here: any service's format.

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The first `max` hosts, comma-separated, then `… and N more` for the rest.
pub fn host_list(hosts: &[&str], max: usize) -> String {
    if hosts.len() <= max {
        return hosts.join(", ");
    }
    format!(
        "{}, … and {} more",
        hosts[..max].join(", "),
        hosts.len() - max
    )
}

/// As many whole `lines` as fit in `max` characters joined by `sep`, then `… and N more`
/// (which always fits: lines are dropped to make room for it).
pub fn fit_lines(lines: &[String], max: usize, sep: &str) -> String {
    let total: usize = lines.iter().map(|l| l.chars().count()).sum::<usize>()
        + sep.chars().count() * lines.len().saturating_sub(1);
    if total <= max {
        return lines.join(sep);
    }
    let mut out = String::new();
    let mut used = 0;
    for (i, line) in lines.iter().enumerate() {
        let more = format!("{sep}… and {} more", lines.len() - i);
        let need = line.chars().count() + if i > 0 { sep.chars().count() } else { 0 };
        if used + need + more.chars().count() > max {
            if i == 0 {
                // Not even one line fits beside the tail: cut the first one.
                let room = max.saturating_sub(more.chars().count());
                return cut(line, room) + &format!("{sep}… and {} more", lines.len() - 1);
            }
            return out + &more;
        }
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(line);
        used += need;
    }
    out
}

/// `&`, `<`, `>` and `"` escaped for HTML (Telegram's HTML mode, email).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// `&`, `<` and `>` escaped as Slack's mrkdwn wants them (its only control characters).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `s` made fit for an HTTP header: ASCII only (`…` becomes `...`, other characters `?`).
pub fn header_text(s: &str) -> String {
    s.replace('…', "...")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_on_characters() {
        assert_eq!(cut("héllo", 5), "héllo");
        assert_eq!(cut("héllo wörld", 5), "héll…");
    }

    #[test]
    fn names_hosts_then_counts_the_rest() {
        let hosts: Vec<String> = (1..=30).map(|i| format!("web{i:02}")).collect();
        let refs: Vec<&str> = hosts.iter().map(String::as_str).collect();
        assert_eq!(
            host_list(&refs, 5),
            "web01, web02, web03, web04, web05, … and 25 more"
        );
        assert_eq!(host_list(&refs[..2], 5), "web01, web02");
    }

    #[test]
    fn fitted_lines_stay_within_the_limit() {
        let lines: Vec<String> = (0..500).map(|i| format!("host{i:03}: down")).collect();
        for max in [20, 100, 4096] {
            let s = fit_lines(&lines, max, "\n");
            assert!(s.chars().count() <= max, "{max}: {}", s.chars().count());
            assert!(s.ends_with("more"), "{s}");
        }
        assert_eq!(
            fit_lines(&lines[..2], 100, "\n"),
            "host000: down\nhost001: down"
        );
    }
}
