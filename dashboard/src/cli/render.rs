//! Rendering rows: an aligned table, a JSON array of objects, or CSV with a header row.

use super::{Cell, Format};
use crate::time::format_rfc3339;

/// Renders rows in `format`.
pub fn render(format: Format, headers: &[&str], rows: &[Vec<Cell>]) -> String {
    match format {
        Format::Json => {
            let objs: Vec<String> = rows.iter().map(|r| json_object(headers, r)).collect();
            if objs.is_empty() {
                "[]\n".into()
            } else {
                format!("[\n{}\n]\n", objs.join(",\n"))
            }
        }
        Format::Csv => {
            let mut s = headers.join(",") + "\n";
            for r in rows {
                s += &csv_line(r);
                s.push('\n');
            }
            s
        }
        Format::Table => table(headers, rows),
    }
}

fn table(headers: &[&str], rows: &[Vec<Cell>]) -> String {
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell_text(c, true)).collect())
        .collect();
    let mut width: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &text {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = |i: usize| {
        rows.first()
            .is_some_and(|r| matches!(r.get(i), Some(Cell::Int(_) | Cell::Num(_))))
    };
    let line = |cells: Vec<String>| -> String {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if right(i) {
                    format!("{c:>w$}", w = width[i])
                } else {
                    format!("{c:<w$}", w = width[i])
                }
            })
            .collect();
        parts.join("  ").trim_end().to_owned() + "\n"
    };
    let mut s = line(headers.iter().map(|h| h.to_uppercase()).collect());
    for r in text {
        s += &line(r);
    }
    s
}

/// A number as text: integers without a fraction, values that are exactly an `f32` (as the
/// wire carries fractions) with `f32`'s shortest digits, others with `f64`'s. `short` rounds
/// fractions to 3 decimals for tables.
pub fn fmt_num(v: f64, short: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    if short {
        let s = format!("{v:.3}");
        return s.trim_end_matches('0').trim_end_matches('.').to_owned();
    }
    if f64::from(v as f32) == v {
        format!("{}", v as f32)
    } else {
        format!("{v}")
    }
}

fn cell_text(c: &Cell, table: bool) -> String {
    match c {
        Cell::Str(s) => s.clone(),
        Cell::Int(i) => i.to_string(),
        Cell::Num(v) => fmt_num(*v, table),
        Cell::Time(t) => format_rfc3339(*t),
        Cell::List(l) => l.join(","),
        Cell::Null => if table { "-" } else { "" }.into(),
    }
}

fn json_value(c: &Cell) -> serde_json::Value {
    use serde_json::Value;
    match c {
        Cell::Str(s) => Value::String(s.clone()),
        Cell::Int(i) => Value::from(*i),
        Cell::Num(v) => fmt_num(*v, false)
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        Cell::Time(t) => Value::String(format_rfc3339(*t)),
        Cell::List(l) => Value::from(l.clone()),
        Cell::Null => Value::Null,
    }
}

pub(super) fn json_object(headers: &[&str], row: &[Cell]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = headers
        .iter()
        .zip(row)
        .map(|(h, c)| ((*h).to_owned(), json_value(c)))
        .collect();
    serde_json::Value::Object(map).to_string()
}

pub(super) fn csv_line(row: &[Cell]) -> String {
    let cells: Vec<String> = row
        .iter()
        .map(|c| {
            let t = cell_text(c, false);
            if t.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", t.replace('"', "\"\""))
            } else {
                t
            }
        })
        .collect();
    cells.join(",")
}
