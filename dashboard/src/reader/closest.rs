//! The series a "no such series" error suggests: the host's series closest to what was asked
//! for, by metric-name prefix and edit distance.

/// How many of the closest series a "no such series" error names.
pub(super) const CLOSEST: usize = 5;

/// Up to `n` of `names` closest to `want`: names that share its metric name (or whose metric
/// name starts with it, or it with theirs) first, then by edit distance; names far from it
/// only when none is near (then the three nearest).
pub fn closest(want: &str, names: &[String], n: usize) -> Vec<String> {
    let metric = |s: &str| s.split('{').next().unwrap_or("").to_owned();
    let want_metric = metric(want);
    let mut scored: Vec<(usize, usize, &String)> = names
        .iter()
        .map(|name| {
            let m = metric(name);
            let related = m == want_metric
                || (!want_metric.is_empty()
                    && (m.starts_with(&want_metric) || want_metric.starts_with(&m)));
            (usize::from(!related), edit_distance(want, name), name)
        })
        .collect();
    scored.sort();
    let near = (want.chars().count() / 3).max(3);
    let close: Vec<String> = scored
        .iter()
        .filter(|(unrelated, d, _)| *unrelated == 0 || *d <= near)
        .take(n)
        .map(|(_, _, s)| (*s).clone())
        .collect();
    if !close.is_empty() {
        return close;
    }
    scored
        .into_iter()
        .take(n.min(3))
        .map(|(_, _, s)| s.clone())
        .collect()
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn edit_distance_counts_characters() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("mem.usd_pct", "mem.used_pct"), 1);
        assert_eq!(edit_distance("für", "fur"), 1);
    }

    #[test]
    fn prefixes_and_near_names_come_first_far_ones_only_when_nothing_is_near() {
        let have = names(&[
            "cpu.load1",
            "cpu.usage_pct",
            "disk.used_pct{mount=\"/\"}",
            "disk.used_pct{mount=\"/boot\"}",
            "mem.used_pct",
        ]);
        assert_eq!(closest("cpu.usage", &have, 5), ["cpu.usage_pct"]);
        assert_eq!(closest("mem.usd_pct", &have, 5), ["mem.used_pct"]);
        assert_eq!(
            closest("disk.used_pct{mount=\"/x\"}", &have, 5),
            [
                "disk.used_pct{mount=\"/\"}",
                "disk.used_pct{mount=\"/boot\"}"
            ]
        );
        assert_eq!(closest("zzzzzzzzzzzzzzzzzzzz", &have, 5).len(), 3);
        assert!(closest("x", &[], 5).is_empty());
    }
}
