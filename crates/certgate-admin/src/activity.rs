//! Denials over the last hour for the console's Activity page:
//! `GET /api/v1/activity/denials`.
//!
//! Source: the node's own `certgate_auth_denied_total{reason,api}` counters, read from
//! the Prometheus handle's rendered text (the same numbers `/metrics` shows). A sample
//! of every series is taken when the admin API starts (the baseline), once a minute while
//! it runs, and at every request of this endpoint; each sample's growth over the one
//! before is added to its minute, and the last [`WINDOW_MINUTES`] minutes are kept. Reading the rendered counters rather than adding a second
//! counter to the data plane keeps the hot path untouched and the chart equal to
//! `/metrics`; the cost is a render per minute.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::AdminState;

/// The minutes the endpoint covers.
pub const WINDOW_MINUTES: i64 = 60;

const METRIC: &str = "certgate_auth_denied_total";

/// `(reason, api)` → cumulative count.
type Counts = BTreeMap<(String, String), u64>;

/// Per-minute growth of the denial counters.
#[derive(Debug, Default)]
pub struct Activity {
    inner: Mutex<Samples>,
}

#[derive(Debug, Default)]
struct Samples {
    /// The counters at the latest sample (`None` before the first one).
    last: Option<Counts>,
    /// (minute since the epoch, growth during that minute), oldest first.
    minutes: VecDeque<(i64, Counts)>,
}

impl Activity {
    /// Records the counters of a rendered Prometheus text at `now`: their growth since the
    /// previous sample is added to `now`'s minute. The first sample is the baseline.
    pub fn sample(&self, now: OffsetDateTime, text: &str) {
        let minute = now.unix_timestamp().div_euclid(60);
        let counts = parse(text);
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(last) = s.last.take() {
            let mut grew = Counts::new();
            for (key, n) in &counts {
                let d = n.saturating_sub(last.get(key).copied().unwrap_or(0));
                if d > 0 {
                    grew.insert(key.clone(), d);
                }
            }
            if !grew.is_empty() {
                match s.minutes.back_mut() {
                    // A clock that went back adds to the newest minute.
                    Some((m, c)) if *m >= minute => {
                        for (k, d) in grew {
                            *c.entry(k).or_default() += d;
                        }
                    }
                    _ => s.minutes.push_back((minute, grew)),
                }
            }
        }
        s.last = Some(counts);
        while s
            .minutes
            .front()
            .is_some_and(|(m, _)| *m <= minute - WINDOW_MINUTES)
        {
            s.minutes.pop_front();
        }
    }

    /// The per-minute denials of the window ending at `now`'s minute.
    fn window(&self, now: OffsetDateTime) -> DenialsView {
        let current = now.unix_timestamp().div_euclid(60);
        let first = current - WINDOW_MINUTES + 1;
        let s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut minutes: Vec<MinuteView> = (first..=current)
            .map(|m| MinuteView {
                start: rfc3339(m * 60),
                denials: Vec::new(),
            })
            .collect();
        let mut total: Counts = BTreeMap::new();
        for (m, grew) in &s.minutes {
            if *m < first || *m > current {
                continue;
            }
            let slot = &mut minutes[(*m - first) as usize];
            for (key, n) in grew {
                *total.entry(key.clone()).or_default() += n;
                slot.denials.push(entry(key, *n));
            }
        }
        DenialsView {
            window_minutes: WINDOW_MINUTES,
            source: "certgate_auth_denied_total",
            minutes,
            total: total.iter().map(|(k, n)| entry(k, *n)).collect(),
        }
    }
}

fn entry((reason, api): &(String, String), count: u64) -> DenialEntry {
    DenialEntry {
        reason: reason.clone(),
        api: api.clone(),
        count,
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DenialEntry {
    reason: String,
    api: String,
    count: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct MinuteView {
    start: String,
    denials: Vec<DenialEntry>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DenialsView {
    window_minutes: i64,
    source: &'static str,
    minutes: Vec<MinuteView>,
    total: Vec<DenialEntry>,
}

/// The `certgate_auth_denied_total` series of a Prometheus text.
fn parse(text: &str) -> Counts {
    let mut out = Counts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(METRIC) else {
            continue;
        };
        let Some(rest) = rest.strip_prefix('{') else {
            continue;
        };
        let Some((labels, value)) = split_labels(rest) else {
            continue;
        };
        let Ok(v) = value.trim().parse::<f64>() else {
            continue;
        };
        let reason = labels.get("reason").cloned().unwrap_or_default();
        let api = labels.get("api").cloned().unwrap_or_default();
        *out.entry((reason, api)).or_default() += v.max(0.0) as u64;
    }
    out
}

/// Parses `k="v",k2="v2"} value` into the labels and the rest after `}`.
fn split_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut labels = BTreeMap::new();
    let mut chars = s.char_indices().peekable();
    loop {
        while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
            chars.next();
        }
        let (start, c) = chars.next()?;
        if c == '}' {
            return Some((labels, &s[start + 1..]));
        }
        let mut key = String::from(c);
        for (_, c) in chars.by_ref() {
            if c == '=' {
                break;
            }
            key.push(c);
        }
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '"' => break,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                c => value.push(c),
            }
        }
        labels.insert(key, value);
    }
}

/// How many requests this node forwarded with identity headers over the 16 KiB the data
/// plane warns at (`certgate_forwarded_headers_too_large_total`; 0 without metrics).
pub(crate) fn forwarded_too_large(st: &AdminState) -> u64 {
    let Some(h) = &st.metrics else { return 0 };
    counter_total(&h.render(), "certgate_forwarded_headers_too_large_total")
}

/// The sum of every series of the counter `name` in a Prometheus text.
fn counter_total(text: &str, name: &str) -> u64 {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(labelled) => split_labels(labelled)?.1,
                None if rest.starts_with(' ') => rest,
                None => return None,
            };
            value.trim().parse::<f64>().ok()
        })
        .map(|v| v.max(0.0) as u64)
        .sum()
}

/// Takes a sample now from the state's Prometheus handle (nothing without one).
pub(crate) fn sample_now(st: &AdminState) {
    if let Some(h) = &st.metrics {
        st.activity.sample((st.clock)(), &h.render());
    }
}

/// `GET /api/v1/activity/denials`.
#[utoipa::path(get, path = "/activity/denials", tag = "activity", responses((status = 200, description = "Denials per minute and reason for the console's Activity page", body = DenialsView), crate::openapi::ReadErrors))]
pub(crate) async fn denials(State(st): State<AdminState>) -> Response {
    sample_now(&st);
    Json(st.activity.window((st.clock)())).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn counter_totals_sum_the_series_of_one_name_only() {
        let text = "# TYPE certgate_forwarded_headers_too_large_total counter\n\
                    certgate_forwarded_headers_too_large_total 3\n\
                    certgate_forwarded_headers_too_large_total_other 9\n\
                    certgate_auth_denied_total{reason=\"untrusted\",api=\"a\"} 2\n\
                    certgate_auth_denied_total{reason=\"expired\",api=\"b\"} 5\n";
        assert_eq!(
            counter_total(text, "certgate_forwarded_headers_too_large_total"),
            3
        );
        assert_eq!(counter_total(text, "certgate_auth_denied_total"), 7);
        assert_eq!(counter_total(text, "certgate_absent_total"), 0);
    }

    fn text(untrusted_orders: u64, dn: u64) -> String {
        format!(
            "# TYPE certgate_auth_denied_total counter\n\
             certgate_auth_denied_total{{reason=\"untrusted\",api=\"orders\"}} {untrusted_orders}\n\
             certgate_auth_denied_total{{reason=\"dn_mismatch\",api=\"a\\\"b\"}} {dn}\n\
             certgate_requests_total{{api=\"orders\",status=\"200\"}} 99\n"
        )
    }

    #[test]
    fn counts_growth_per_minute_within_the_window() {
        let a = Activity::default();
        let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(); // a minute boundary
        a.sample(t0, "");
        a.sample(t0 + Duration::seconds(70), &text(3, 0));
        a.sample(t0 + Duration::seconds(80), &text(4, 1));
        a.sample(t0 + Duration::minutes(5), &text(6, 1));
        let w = a.window(t0 + Duration::minutes(5));
        assert_eq!(w.minutes.len(), 60);
        let m1 = &w.minutes[58 - 3];
        assert_eq!(m1.denials.len(), 2, "{:?}", w.minutes);
        let last = &w.minutes[59];
        assert_eq!(last.denials.len(), 1);
        assert_eq!(last.denials[0].count, 2);
        let totals: Vec<_> = w
            .total
            .iter()
            .map(|e| (e.reason.as_str(), e.api.as_str(), e.count))
            .collect();
        assert_eq!(
            totals,
            vec![("dn_mismatch", "a\"b", 1), ("untrusted", "orders", 6)]
        );
        // A baseline and a denial within the same minute still count.
        let b = Activity::default();
        b.sample(t0, "");
        b.sample(t0 + Duration::seconds(5), &text(1, 0));
        assert_eq!(b.window(t0).total.len(), 1);
        // An hour later the old minutes have left the window.
        a.sample(t0 + Duration::minutes(70), &text(7, 1));
        let w = a.window(t0 + Duration::minutes(70));
        let totals: Vec<_> = w.total.iter().map(|e| e.count).collect();
        assert_eq!(totals, vec![1]);
    }
}
