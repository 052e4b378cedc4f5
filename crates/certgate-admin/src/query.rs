//! Query strings of the admin API: one reader, so that every endpoint splits, decodes and
//! refuses them alike (`?dry_run=true`, `?lookup=true`, `?limit=10&before=42`,
//! `?wait=cluster`, …). A parameter given twice counts with its last value; unknown
//! parameters are ignored; a value of the wrong type is 422 `invalid_query`.

use std::borrow::Cow;

use crate::error::ApiError;

/// The decoded `name=value` pairs of a query string (`+` is a space, `%XX` a byte).
#[derive(Debug, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Reads `raw` (the part after `?`, if any).
    pub(crate) fn parse(raw: Option<&str>) -> Query {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Query { pairs }
    }

    /// The last value of `name`; a bare `name` (no `=`) is the empty string.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `name` as a boolean: `true`/`1`/bare is true, `false`/`0` false, absent `None`.
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some("true" | "1" | "") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(other) => Err(ApiError::invalid(
                "invalid_query",
                format!("{name} must be true or false, not {other:?}."),
            )),
        }
    }

    /// `name` as an integer, absent `None`.
    pub(crate) fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::invalid(
                        "invalid_query",
                        format!("{name} must be an integer, not {v:?}."),
                    )
                })
            })
            .transpose()
    }
}

fn decode(s: &str) -> String {
    let spaced: Cow<str> = if s.contains('+') {
        Cow::Owned(s.replace('+', " "))
    } else {
        Cow::Borrowed(s)
    };
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::Query;

    #[test]
    fn booleans_integers_and_strings() {
        let q = Query::parse(Some("dry_run&lookup=0&limit=10&api=a%20b+c&limit=20"));
        assert_eq!(q.bool("dry_run").unwrap(), Some(true));
        assert_eq!(q.bool("lookup").unwrap(), Some(false));
        assert_eq!(q.bool("absent").unwrap(), None);
        assert_eq!(q.int("limit").unwrap(), Some(20), "the last value counts");
        assert_eq!(q.get("api"), Some("a b c"));
        assert_eq!(Query::parse(None).get("x"), None);
    }

    #[test]
    fn wrong_types_are_refused_with_the_parameter_named() {
        let q = Query::parse(Some("dry_run=yes&limit=ten"));
        let e = q.bool("dry_run").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code.as_str()), (422, "invalid_query"));
        assert_eq!(e.message, "dry_run must be true or false, not \"yes\".");
        let e = q.int("limit").unwrap_err();
        assert_eq!(e.message, "limit must be an integer, not \"ten\".");
    }
}
