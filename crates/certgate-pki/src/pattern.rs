//! The DN pattern language of SPEC §4 (Ant-style wildcards over RDNs) and [`PatternSet`].
//!
//! This module owns compiling a pattern string into a [`Pattern`] and matching it against
//! a [`Dn`]:
//! - a pattern **without** `**` matches a DN with the same number of RDNs when every
//!   pattern RDN can be paired with a different DN RDN (a perfect bipartite matching,
//!   found with augmenting paths, so the order of the RDNs does not matter);
//! - a pattern **with** `**` is matched as an Ant path (RDNs for directories, `**` for
//!   any number of them, `*` for exactly one) against the DN in canonical order or in
//!   reverse order.
//!
//! Values are compared in the normalised form the [`Dn`] precomputes (Unicode lower-case,
//! white space trimmed and folded), with `?`/`*` wildcards. Compiling does the work once:
//! literal values are pre-folded, wildcard-free values compare as plain strings, and each
//! pattern carries a cheap pre-filter (RDN count, attribute census) that rejects most
//! non-matching DNs before any value is compared. Matching never allocates for DNs of up
//! to 64 RDNs.

use std::collections::VecDeque;

use crate::dn::{
    parse_syntax, Dn, Mode, NormAttr, RawSegment, RawValue, TypeKey, VChar, TYPE_BUCKETS,
};

/// A pattern that does not parse. Displays exactly as SPEC §4 requires:
/// `invalid DN pattern "CN=a,,O=b" at position 6: empty RDN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN pattern \"{pattern}\" at position {position}: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// 1-based character position of the first problem.
    pub position: usize,
    /// What is wrong there.
    pub reason: String,
}

/// One compiled DN pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    segments: Vec<Segment>,
    /// True when a segment is `**` (sequence matching), else bipartite matching.
    has_many: bool,
    /// Number of segments other than `**`: the exact RDN count without `**`, the minimum
    /// with it.
    fixed: usize,
    /// Minimum number of DN attributes per type bucket (a necessary condition).
    required: [u16; TYPE_BUCKETS],
    /// Indexes of the RDN segments, most selective first: the bipartite matcher fills its
    /// rows in this order so a non-matching DN is usually rejected by the first row.
    rows: Vec<usize>,
}

/// One comma-separated segment of a compiled pattern.
#[derive(Debug, Clone)]
enum Segment {
    /// `*`: any one RDN.
    One,
    /// `**`: zero or more RDNs.
    Many,
    /// An RDN pattern.
    Rdn(RdnPat),
}

/// `type=value[+type=value...]`: matches an RDN with exactly these attributes.
#[derive(Debug, Clone)]
struct RdnPat {
    attrs: Vec<AttrPat>,
}

#[derive(Debug, Clone)]
struct AttrPat {
    key: TypeKey,
    value: ValuePat,
}

/// A value pattern over the normalised value text.
#[derive(Debug, Clone)]
enum ValuePat {
    /// Only `*`: any value.
    Any,
    /// No wildcard: equal text.
    Exact(Box<str>),
    /// `literal*`.
    Prefix(Box<str>),
    /// `*literal`.
    Suffix(Box<str>),
    /// Anything else.
    Glob(Box<[GTok]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GTok {
    Char(char),
    One,
    Many,
}

impl ValuePat {
    fn compile(chars: &[VChar]) -> ValuePat {
        // Normalise like Dn does for values: lower-case, trim, fold white space; the
        // wildcards count as non-space characters, and runs of '*' collapse.
        let mut toks: Vec<GTok> = Vec::with_capacity(chars.len());
        let mut started = false;
        let mut pending_space = false;
        for c in chars {
            if let VChar::Lit(ch) = c {
                if ch.is_whitespace() {
                    pending_space = started;
                    continue;
                }
            }
            if pending_space {
                toks.push(GTok::Char(' '));
                pending_space = false;
            }
            started = true;
            match c {
                VChar::Lit(ch) => toks.extend(ch.to_lowercase().map(GTok::Char)),
                VChar::One => toks.push(GTok::One),
                VChar::Many => {
                    if toks.last() != Some(&GTok::Many) {
                        toks.push(GTok::Many)
                    }
                }
            }
        }
        let literal = |t: &[GTok]| -> Option<Box<str>> {
            t.iter()
                .map(|g| match g {
                    GTok::Char(c) => Some(*c),
                    _ => None,
                })
                .collect::<Option<String>>()
                .map(String::into_boxed_str)
        };
        match toks.as_slice() {
            [GTok::Many] => ValuePat::Any,
            t => {
                if let Some(s) = literal(t) {
                    return ValuePat::Exact(s);
                }
                if let [head @ .., GTok::Many] = t {
                    if let Some(s) = literal(head) {
                        return ValuePat::Prefix(s);
                    }
                }
                if let [GTok::Many, tail @ ..] = t {
                    if let Some(s) = literal(tail) {
                        return ValuePat::Suffix(s);
                    }
                }
                ValuePat::Glob(toks.into_boxed_slice())
            }
        }
    }

    /// Lower is more selective; used to order the bipartite rows.
    fn selectivity(&self) -> u8 {
        match self {
            ValuePat::Exact(_) => 0,
            ValuePat::Prefix(_) | ValuePat::Suffix(_) => 1,
            ValuePat::Glob(_) => 2,
            ValuePat::Any => 3,
        }
    }

    #[inline]
    fn matches(&self, text: &str) -> bool {
        match self {
            ValuePat::Any => true,
            ValuePat::Exact(s) => **s == *text,
            ValuePat::Prefix(s) => text.starts_with(&**s),
            ValuePat::Suffix(s) => text.ends_with(&**s),
            ValuePat::Glob(toks) => glob(toks, text),
        }
    }
}

/// Wildcard match of `text` against `pat` (`?` one character, `*` any run), with the
/// classic single-backtrack-point algorithm: O(|pat|·|text|) at worst, no allocation.
fn glob(pat: &[GTok], text: &str) -> bool {
    let mut pi = 0usize;
    let mut ti = 0usize;
    // (pattern index after the last '*', text index that '*' currently stops at)
    let mut back: Option<(usize, usize)> = None;
    loop {
        let Some(c) = text.get(ti..).and_then(|s| s.chars().next()) else {
            return pat
                .get(pi..)
                .unwrap_or(&[])
                .iter()
                .all(|g| *g == GTok::Many);
        };
        match pat.get(pi) {
            Some(GTok::Many) => {
                back = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(GTok::One) => {
                pi += 1;
                ti += c.len_utf8();
                continue;
            }
            Some(GTok::Char(pc)) if *pc == c => {
                pi += 1;
                ti += c.len_utf8();
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last '*' swallow one more character and retry.
        let Some((bp, bt)) = back else { return false };
        let step = text
            .get(bt..)
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8);
        back = Some((bp, bt + step));
        pi = bp;
        ti = bt + step;
    }
}

impl RdnPat {
    /// Whether the DN RDN has exactly this set of attributes (any order).
    #[inline]
    fn matches(&self, attrs: &[NormAttr]) -> bool {
        match (self.attrs.as_slice(), attrs) {
            ([p], [a]) => p.matches(a),
            (ps, as_) if ps.len() == as_.len() => {
                perfect_matching(ps.len(), as_.len(), |i, j| match (ps.get(i), as_.get(j)) {
                    (Some(p), Some(a)) => p.matches(a),
                    _ => false,
                })
            }
            _ => false,
        }
    }

    fn selectivity(&self) -> u8 {
        self.attrs
            .iter()
            .map(|a| a.value.selectivity())
            .min()
            .unwrap_or(3)
    }
}

impl AttrPat {
    #[inline]
    fn matches(&self, a: &NormAttr) -> bool {
        self.key == a.key && self.value.matches(&a.value)
    }
}

/// Whether every row can be paired with a different column along `edge` (a matching
/// that saturates the rows), by augmenting paths (Kuhn's algorithm). Returns early when
/// some row has no edge at all. Up to 64 rows and columns it runs on bit sets on the
/// stack; beyond that it allocates.
fn perfect_matching(rows: usize, cols: usize, mut edge: impl FnMut(usize, usize) -> bool) -> bool {
    if rows > cols {
        return false;
    }
    if cols <= 64 {
        let mut adj = [0u64; 64];
        for (i, slot) in adj.iter_mut().enumerate().take(rows) {
            let mut m = 0u64;
            for j in 0..cols {
                if edge(i, j) {
                    m |= 1 << j;
                }
            }
            if m == 0 {
                return false;
            }
            *slot = m;
        }
        let mut owner = [u8::MAX; 64];
        for i in 0..rows {
            let mut seen = 0u64;
            if !augment_small(i, &adj, &mut owner, &mut seen) {
                return false;
            }
        }
        return true;
    }
    perfect_matching_large(rows, cols, edge)
}

/// Depth-first augmenting path from row `i` over bit-set adjacency (depth ≤ 64).
fn augment_small(i: usize, adj: &[u64; 64], owner: &mut [u8; 64], seen: &mut u64) -> bool {
    let mut cand = adj.get(i).copied().unwrap_or(0) & !*seen;
    while cand != 0 {
        let j = cand.trailing_zeros() as usize;
        cand &= cand - 1;
        *seen |= 1 << j;
        let prev = owner.get(j).copied().unwrap_or(u8::MAX);
        if prev == u8::MAX || augment_small(usize::from(prev), adj, owner, seen) {
            if let Some(o) = owner.get_mut(j) {
                *o = i as u8;
            }
            return true;
        }
    }
    false
}

/// The same as [`perfect_matching`] for more than 64 columns, with breadth-first
/// augmenting paths (no recursion, so no stack depth limit).
fn perfect_matching_large(
    rows: usize,
    cols: usize,
    mut edge: impl FnMut(usize, usize) -> bool,
) -> bool {
    const NONE: usize = usize::MAX;
    let mut adj: Vec<Vec<usize>> = Vec::with_capacity(rows);
    for i in 0..rows {
        let list: Vec<usize> = (0..cols).filter(|&j| edge(i, j)).collect();
        if list.is_empty() {
            return false;
        }
        adj.push(list);
    }
    let mut owner = vec![NONE; cols]; // column -> row
    let mut mate = vec![NONE; rows]; // row -> column
    let mut parent = vec![NONE; cols]; // column -> row that reached it in this search
    let mut queue = VecDeque::new();
    for start in 0..rows {
        parent.iter_mut().for_each(|p| *p = NONE);
        queue.clear();
        queue.push_back(start);
        let mut free = None;
        'bfs: while let Some(u) = queue.pop_front() {
            for &j in &adj[u] {
                if parent[j] != NONE {
                    continue;
                }
                parent[j] = u;
                if owner[j] == NONE {
                    free = Some(j);
                    break 'bfs;
                }
                queue.push_back(owner[j]);
            }
        }
        let Some(mut j) = free else { return false };
        // Flip the path: each row on it takes the column that led to it.
        loop {
            let u = parent[j];
            let prev = mate[u];
            mate[u] = j;
            owner[j] = u;
            if u == start {
                break;
            }
            j = prev;
        }
    }
    true
}

impl Pattern {
    /// Compiles a pattern.
    pub fn parse(pattern: &str) -> Result<Pattern, PatternError> {
        let raw = parse_syntax(pattern, Mode::Pattern).map_err(|e| PatternError {
            pattern: pattern.to_owned(),
            position: e.position,
            reason: e.reason,
        })?;
        let mut segments = Vec::with_capacity(raw.len());
        let mut required = [0u16; TYPE_BUCKETS];
        for seg in raw {
            segments.push(match seg {
                RawSegment::AnyOne => Segment::One,
                RawSegment::AnyMany => Segment::Many,
                RawSegment::Rdn(attrs) => Segment::Rdn(RdnPat {
                    attrs: attrs
                        .into_iter()
                        .map(|a| {
                            let key = a.attr_type.key();
                            if let Some(r) = required.get_mut(key.bucket()) {
                                *r = r.saturating_add(1);
                            }
                            let value = match a.value {
                                RawValue::Text(chars) => ValuePat::compile(&chars),
                                // Not produced in pattern mode; compare as text if it were.
                                RawValue::Hex(h) => ValuePat::Exact(h.to_lowercase().into()),
                            };
                            AttrPat { key, value }
                        })
                        .collect(),
                }),
            });
        }
        let has_many = segments.iter().any(|s| matches!(s, Segment::Many));
        let fixed = segments
            .iter()
            .filter(|s| !matches!(s, Segment::Many))
            .count();
        let mut rows: Vec<usize> = segments
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Segment::Rdn(r) => Some((r.selectivity(), i)),
                _ => None,
            })
            .map(|(_, i)| i)
            .collect();
        rows.sort_by_key(|&i| match segments.get(i) {
            Some(Segment::Rdn(r)) => r.selectivity(),
            _ => u8::MAX,
        });
        Ok(Pattern {
            source: pattern.to_owned(),
            segments,
            has_many,
            fixed,
            required,
            rows,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when the pattern holds a `**` segment (sequence matching, SPEC §4).
    pub fn has_globstar(&self) -> bool {
        self.has_many
    }

    /// Whether the DN matches this pattern.
    pub fn matches(&self, dn: &Dn) -> bool {
        let n = dn.rdn_count();
        if self.has_many {
            if n < self.fixed {
                return false;
            }
        } else if n != self.fixed {
            return false;
        }
        let census = dn.census();
        if self.required.iter().zip(census.iter()).any(|(r, c)| r > c) {
            return false;
        }
        if self.has_many {
            self.sequence_matches(dn, false) || self.sequence_matches(dn, true)
        } else {
            self.bipartite_matches(dn)
        }
    }

    /// Without `**`: every RDN segment takes a different DN RDN; the `*` segments take
    /// the rest (the counts are already equal).
    fn bipartite_matches(&self, dn: &Dn) -> bool {
        let n = dn.rdn_count();
        perfect_matching(self.rows.len(), n, |i, j| {
            match self.rows.get(i).and_then(|&s| self.segments.get(s)) {
                Some(Segment::Rdn(r)) => r.matches(dn.norm_rdn(j)),
                _ => false,
            }
        })
    }

    /// With `**`: Ant-style sequence match against the RDNs in canonical order, or in
    /// reverse order when `reversed`. Single backtrack point, as in glob matching: `**`
    /// is the star, `*` matches any one RDN, an RDN segment one matching RDN.
    fn sequence_matches(&self, dn: &Dn, reversed: bool) -> bool {
        let n = dn.rdn_count();
        let segs = self.segments.as_slice();
        let at = |t: usize| if reversed { n - 1 - t } else { t };
        let mut pi = 0usize;
        let mut ti = 0usize;
        let mut back: Option<(usize, usize)> = None;
        while ti < n {
            match segs.get(pi) {
                Some(Segment::Many) => {
                    back = Some((pi + 1, ti));
                    pi += 1;
                    continue;
                }
                Some(Segment::One) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                Some(Segment::Rdn(r)) if r.matches(dn.norm_rdn(at(ti))) => {
                    pi += 1;
                    ti += 1;
                    continue;
                }
                _ => {}
            }
            let Some((bp, bt)) = back else { return false };
            back = Some((bp, bt + 1));
            pi = bp;
            ti = bt + 1;
        }
        segs.get(pi..)
            .unwrap_or(&[])
            .iter()
            .all(|s| matches!(s, Segment::Many))
    }
}

/// Up to 1000 compiled patterns, answering "which pattern matches first".
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    /// Compiles every pattern; the first that does not parse is the error.
    pub fn compile<I, S>(patterns: I) -> Result<PatternSet, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| Pattern::parse(p.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatternSet { patterns })
    }

    /// The index of the first pattern (in the order given) that matches `dn`.
    pub fn first_match(&self, dn: &Dn) -> Option<usize> {
        self.patterns.iter().position(|p| p.matches(dn))
    }

    /// The first pattern (in the order given) that matches `dn`.
    pub fn first_matching(&self, dn: &Dn) -> Option<&Pattern> {
        self.first_match(dn).and_then(|i| self.patterns.get(i))
    }

    /// The patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Number of patterns.
    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    /// True when the set holds no pattern (no DN restriction).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<GTok> {
        s.chars()
            .map(|c| match c {
                '*' => GTok::Many,
                '?' => GTok::One,
                c => GTok::Char(c),
            })
            .collect()
    }

    #[test]
    fn glob_basics() {
        assert!(glob(&toks("a*b?d"), "axxbcd"));
        assert!(glob(&toks("*"), ""));
        assert!(!glob(&toks("?"), ""));
        assert!(glob(&toks("*é?"), "xxéü"));
        assert!(!glob(&toks("a*b"), "ac"));
        assert!(glob(&toks("*a*a*"), "baaab"));
        assert!(!glob(&toks("*a*a*a*a"), "aaa"));
    }

    #[test]
    fn matching_is_not_greedy() {
        // Row 0 can take column 0 or 1, row 1 only column 0: a greedy choice fails.
        let edges = [[true, true], [true, false]];
        assert!(perfect_matching(2, 2, |i, j| edges[i][j]));
        let edges = [[true, false], [true, false]];
        assert!(!perfect_matching(2, 2, |i, j| edges[i][j]));
    }

    #[test]
    fn large_matching_agrees_with_small() {
        // A shifted diagonal where a greedy pass would take the wrong column first.
        let n = 70;
        let edge = |i: usize, j: usize| j == i || j == i + 1;
        assert!(perfect_matching(n, n, edge));
        assert!(perfect_matching_large(n, n, edge));
        let edge =
            |i: usize, j: usize| j == (i + 1) % n || (i == 0 && j == 0) || (i == 1 && j == 0);
        assert!(perfect_matching_large(n, n, edge));
        let edge = |i: usize, j: usize| j + 1 >= i && i > 1 || (i <= 1 && j == 0);
        assert!(!perfect_matching_large(n, n, edge));
    }
}
