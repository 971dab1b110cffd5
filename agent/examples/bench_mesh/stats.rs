//! Quantiles over repeats and the one table the benchmark prints.

/// The `q` quantile (0..=1, nearest rank) of sorted values; NaN when empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// (median, min, max) of unsorted values.
pub fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    (
        quantile(&v, 0.5),
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    )
}

/// One line of the table.
pub struct Row {
    pub figure: String,
    pub median: String,
    pub min: String,
    pub max: String,
    pub target: String,
    pub note: String,
}

impl Row {
    /// A row of repeated measurements in `unit`.
    pub fn new(figure: &str, unit: &str, samples: &[f64], target: &str, note: String) -> Row {
        let (med, min, max) = spread(samples);
        let note = format!("n={}; {note}", samples.len());
        Row {
            figure: figure.to_owned(),
            median: fmt(med, unit),
            min: fmt(min, unit),
            max: fmt(max, unit),
            target: target.to_owned(),
            note,
        }
    }

    /// A row for a figure that could not be measured.
    pub fn failed(figure: &str, target: &str, error: &anyhow::Error) -> Row {
        Row {
            figure: figure.to_owned(),
            median: "-".into(),
            min: "-".into(),
            max: "-".into(),
            target: target.to_owned(),
            note: format!("FAILED: {error:#}").replace('\n', " "),
        }
    }
}

fn fmt(v: f64, unit: &str) -> String {
    if v.is_nan() {
        return "-".into();
    }
    match unit {
        "ms" => format!("{v:.3} ms"),
        "MiB" => format!("{v:.1} MiB"),
        "%" => format!("{v:.0} %"),
        _ => format!("{} {unit}", thousands(v.round() as i64)),
    }
}

fn thousands(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Prints the rows as one Markdown table on stdout.
pub fn print(rows: &[Row]) {
    println!("| figure | median | min | max | target | note |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.figure, r.median, r.min, r.max, r.target, r.note
        );
    }
}
