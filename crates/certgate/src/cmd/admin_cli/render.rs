//! Human-readable output: aligned tables and `key: value` blocks built from the admin API's
//! JSON. Every accessor tolerates a missing or differently typed field (it prints `-`), so
//! an answer from a newer or older node never makes the CLI panic.

use serde_json::Value;

/// A field as display text: strings as they are, other scalars as JSON, absent/null as `-`.
pub fn text(v: &Value, key: &str) -> String {
    scalar(v.get(key))
}

/// A value as display text (see [`text`]).
pub fn scalar(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A boolean field as `yes`/`no` (`-` when absent).
pub fn yes_no(v: &Value, key: &str) -> String {
    match v.get(key).and_then(Value::as_bool) {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => text(v, key),
    }
}

/// A field's array as strings (non-string members rendered as JSON); empty when absent.
pub fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|x| scalar(Some(x))).collect())
        .unwrap_or_default()
}

/// A field's array of objects; empty when absent.
pub fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The members of a JSON array answer; empty when it is not an array.
pub fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Renders rows under headers, columns separated by two spaces, no trailing blanks.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(old) => *old = (*old).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    let header_row: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows.iter()) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            let pad = widths
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_sub(cell.chars().count());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Renders `key: value` lines with the values aligned; a value with several lines continues
/// under the first one.
pub fn block(indent: usize, pairs: &[(&str, String)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.chars().count() + 1)
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for (k, v) in pairs {
        let label = format!("{k}:");
        let mut lines = v.lines();
        let first = lines.next().unwrap_or("");
        out.push_str(format!("{pad}{label:<width$}  {first}").trim_end());
        out.push('\n');
        for more in lines {
            out.push_str(&format!("{pad}{:<width$}  {more}", ""));
            out.push('\n');
        }
    }
    out
}

/// A `trusted_dns` list for display: one pattern a line, or what an empty list means.
pub fn dn_list(patterns: &[String], empty: &str) -> String {
    if patterns.is_empty() {
        empty.to_owned()
    } else {
        patterns.join("\n")
    }
}

/// The `expiry_status` of a trust-table row as shown to an operator.
pub fn expiry_flag(status: &str) -> String {
    match status {
        "ok" => "ok".to_owned(),
        "expiring_soon" => "EXPIRING SOON".to_owned(),
        "expired" => "EXPIRED".to_owned(),
        other => other.to_uppercase(),
    }
}

/// Counted noun: `1 pattern`, `2 patterns`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_aligns_columns_and_trims() {
        let t = table(
            &["ID", "NAME", "X"],
            &[
                vec!["1".into(), "root-ca".into(), "".into()],
                vec!["12".into(), "é".into(), "z".into()],
            ],
        );
        assert_eq!(t, "ID  NAME     X\n1   root-ca\n12  é        z\n");
    }

    #[test]
    fn block_aligns_and_continues_lines() {
        let b = block(2, &[("a", "1".into()), ("longer", "x\ny".into())]);
        assert_eq!(b, "  a:       1\n  longer:  x\n           y\n");
    }

    #[test]
    fn accessors_tolerate_missing_fields() {
        let v = json!({"s": "x", "n": 3, "b": false, "z": null, "l": ["a", 1]});
        assert_eq!(text(&v, "s"), "x");
        assert_eq!(text(&v, "n"), "3");
        assert_eq!(text(&v, "z"), "-");
        assert_eq!(text(&v, "nope"), "-");
        assert_eq!(yes_no(&v, "b"), "no");
        assert_eq!(strings(&v, "l"), vec!["a".to_owned(), "1".to_owned()]);
        assert!(items(&v, "s").is_empty());
        assert!(array(&v).is_empty());
    }

    #[test]
    fn expiry_flags() {
        assert_eq!(expiry_flag("ok"), "ok");
        assert_eq!(expiry_flag("expiring_soon"), "EXPIRING SOON");
        assert_eq!(expiry_flag("expired"), "EXPIRED");
    }
}
