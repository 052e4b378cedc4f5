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
//! Choices where SPEC §4 is silent:
//! - a value may be empty (`CN=` matches an empty CN); `?` matches exactly one character
//!   of the normalised value, and white space is folded in the pattern too, wildcards
//!   counting as non-space characters (`CN=John *` needs a space after `John`);
//! - an unescaped `#` in a pattern value is a literal character, so `2.5.4.45=#03*`
//!   matches the `#hex` rendering of a non-string value;
//! - unescaped `"`, `;`, `<`, `>` are errors as in DN strings, and a segment of three or
//!   more stars (`***`) is an error;
//! - in a multi-valued RDN pattern, attributes pair one-to-one with the RDN's attributes
//!   (a bipartite matching too), so `OU=*1+OU=a*` does not match `OU=a1+OU=b`.
//!
//! Values are compared in the normalised form the [`Dn`] precomputes (Unicode lower-case,
//! white space trimmed and folded), with `?`/`*` wildcards. Compiling does the work once:
//! literal values are pre-folded, wildcard-free values compare as plain strings, wildcard
//! values are split at their `*`s into literal parts found with `str` searches, and each
//! pattern carries cheap pre-filters that reject most non-matching DNs before any value is
//! compared: the RDN count, an attribute-type census, and a 256-bit Bloom signature of its
//! wildcard-free (type, value) pairs checked against the one each [`Dn`] precomputes. The
//! bipartite rows only test RDNs holding the right attribute types (a per-type bit set in
//! the DN). Matching never allocates for DNs of up to 64 RDNs.

use std::collections::{HashMap, VecDeque};

use crate::dn::{
    parse_syntax, value_bit, Dn, Mode, NormAttr, RawSegment, RawValue, Signature, TypeKey, VChar,
    TYPE_BUCKETS,
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
    /// Bits of the wildcard-free (type, value) pairs; a DN whose signature lacks one of
    /// them cannot match.
    signature: Signature,
    /// The RDN segments, most selective first: the bipartite matcher fills its rows in
    /// this order so a non-matching DN is usually rejected by the first row.
    rows: Vec<Row>,
}

/// One row of the bipartite matching: an RDN segment and the type buckets an RDN must
/// hold to be a candidate for it.
#[derive(Debug, Clone)]
struct Row {
    segment: usize,
    buckets: Vec<usize>,
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
    Glob(Glob),
}

/// A compiled-time token of a value pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GTok {
    Char(char),
    One,
    Many,
}

/// A wildcard value split at its `*`s into parts of fixed character length: the first
/// part is anchored at the start (unless the value starts with `*`), the last at the end
/// (unless it ends with `*`), and the parts between are found leftmost-first, which is
/// exact for `*` wildcards because every part has a fixed length in characters.
#[derive(Debug, Clone)]
struct Glob {
    starts_with_many: bool,
    ends_with_many: bool,
    /// Never empty, no part is empty.
    parts: Box<[Part]>,
}

/// A run of characters and `?` between two `*`.
#[derive(Debug, Clone)]
enum Part {
    /// Only literal characters: matched with `str` searches.
    Lit(Box<str>),
    /// Literal characters and `?`.
    Mixed(Box<[PTok]>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PTok {
    Char(char),
    One,
}

impl Part {
    fn new(toks: &[GTok]) -> Part {
        if toks.iter().all(|t| matches!(t, GTok::Char(_))) {
            let s: String = toks
                .iter()
                .filter_map(|t| match t {
                    GTok::Char(c) => Some(*c),
                    _ => None,
                })
                .collect();
            return Part::Lit(s.into_boxed_str());
        }
        Part::Mixed(
            toks.iter()
                .map(|t| match t {
                    GTok::Char(c) => PTok::Char(*c),
                    _ => PTok::One,
                })
                .collect(),
        )
    }

    /// Bytes of `text` this part matches at its start.
    #[inline]
    fn match_prefix(&self, text: &str) -> Option<usize> {
        match self {
            Part::Lit(lit) => text.starts_with(&**lit).then_some(lit.len()),
            Part::Mixed(toks) => {
                let mut chars = text.char_indices();
                for t in toks.iter() {
                    let (_, c) = chars.next()?;
                    if let PTok::Char(pc) = t {
                        if *pc != c {
                            return None;
                        }
                    }
                }
                Some(chars.next().map_or(text.len(), |(i, _)| i))
            }
        }
    }

    /// Start (in bytes) of the match of this part at the end of `text`.
    #[inline]
    fn match_suffix(&self, text: &str) -> Option<usize> {
        match self {
            Part::Lit(lit) => text.ends_with(&**lit).then(|| text.len() - lit.len()),
            Part::Mixed(toks) => {
                let mut chars = text.char_indices().rev();
                let mut start = text.len();
                for t in toks.iter().rev() {
                    let (i, c) = chars.next()?;
                    if let PTok::Char(pc) = t {
                        if *pc != c {
                            return None;
                        }
                    }
                    start = i;
                }
                Some(start)
            }
        }
    }

    /// End (in bytes) of the leftmost match of this part in `text`.
    #[inline]
    fn find(&self, text: &str) -> Option<usize> {
        match self {
            Part::Lit(lit) => find_bytes(text.as_bytes(), lit.as_bytes()).map(|i| i + lit.len()),
            Part::Mixed(_) => text.char_indices().find_map(|(i, _)| {
                let rest = text.get(i..)?;
                self.match_prefix(rest).map(|n| i + n)
            }),
        }
    }
}

/// Leftmost occurrence of `needle` in `hay`. A plain first-byte scan: DN values are short,
/// where it beats `str::find`'s searcher set-up. On UTF-8 input a match of a whole UTF-8
/// needle always starts on a character boundary.
#[inline]
fn find_bytes(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let last_start = hay.len().checked_sub(needle.len())?;
    (0..=last_start)
        .find(|&i| hay.get(i) == Some(&first) && hay.get(i + 1..i + needle.len()) == Some(rest))
}

impl Glob {
    fn new(toks: &[GTok]) -> Glob {
        Glob {
            starts_with_many: toks.first() == Some(&GTok::Many),
            ends_with_many: toks.last() == Some(&GTok::Many),
            parts: toks
                .split(|t| *t == GTok::Many)
                .filter(|p| !p.is_empty())
                .map(Part::new)
                .collect(),
        }
    }

    fn matches(&self, text: &str) -> bool {
        let mut parts: &[Part] = &self.parts;
        let mut rest = text;
        if !self.starts_with_many {
            let Some((first, others)) = parts.split_first() else {
                return rest.is_empty();
            };
            let Some(n) = first.match_prefix(rest) else {
                return false;
            };
            rest = rest.get(n..).unwrap_or("");
            parts = others;
            if parts.is_empty() && !self.ends_with_many {
                // No '*' at all: the part must be the whole value.
                return rest.is_empty();
            }
        }
        if !self.ends_with_many {
            let Some((last, others)) = parts.split_last() else {
                return true;
            };
            let Some(start) = last.match_suffix(rest) else {
                return false;
            };
            rest = rest.get(..start).unwrap_or("");
            parts = others;
        }
        for part in parts {
            let Some(end) = part.find(rest) else {
                return false;
            };
            rest = rest.get(end..).unwrap_or("");
        }
        true
    }
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
        if let [GTok::Many] = toks.as_slice() {
            return ValuePat::Any;
        }
        if let Some(s) = literal(&toks) {
            return ValuePat::Exact(s);
        }
        if let [head @ .., GTok::Many] = toks.as_slice() {
            if let Some(s) = literal(head) {
                return ValuePat::Prefix(s);
            }
        }
        if let [GTok::Many, tail @ ..] = toks.as_slice() {
            if let Some(s) = literal(tail) {
                return ValuePat::Suffix(s);
            }
        }
        ValuePat::Glob(Glob::new(&toks))
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
            ValuePat::Glob(g) => g.matches(text),
        }
    }
}

impl RdnPat {
    /// Whether the DN RDN has exactly this set of attributes (any order).
    #[inline]
    fn matches(&self, attrs: &[NormAttr]) -> bool {
        match (self.attrs.as_slice(), attrs) {
            ([p], [a]) => p.matches(a),
            (ps, as_) if ps.len() == as_.len() => perfect_matching(
                ps.len(),
                as_.len(),
                |_| u64::MAX,
                |i, j| match (ps.get(i), as_.get(j)) {
                    (Some(p), Some(a)) => p.matches(a),
                    _ => false,
                },
            ),
            _ => false,
        }
    }

    /// Lower is more likely to reject a DN: values of identity-like types (CN, UID, E,
    /// SERIALNUMBER) before organisational ones, and exact values before wildcards.
    fn selectivity(&self) -> u8 {
        self.attrs
            .iter()
            .map(|a| {
                if matches!(a.value, ValuePat::Any) {
                    return u8::MAX;
                }
                let type_rank = match a.key {
                    // CN, UID, E, SERIALNUMBER
                    TypeKey::Kw(0) | TypeKey::Kw(8) | TypeKey::Kw(9) | TypeKey::Kw(10) => 0,
                    // C, ST
                    TypeKey::Kw(1) | TypeKey::Kw(2) => 3,
                    // L, O, DC
                    TypeKey::Kw(3) | TypeKey::Kw(4) | TypeKey::Kw(7) => 2,
                    _ => 1,
                };
                type_rank * 4 + a.value.selectivity()
            })
            .min()
            .unwrap_or(u8::MAX)
    }
}

impl ValuePat {
    /// The literal text every matching value starts with (empty when none).
    fn literal_prefix(&self) -> String {
        match self {
            ValuePat::Exact(s) | ValuePat::Prefix(s) => s.to_string(),
            ValuePat::Glob(g) if !g.starts_with_many => match g.parts.first() {
                Some(Part::Lit(l)) => l.to_string(),
                Some(Part::Mixed(toks)) => toks
                    .iter()
                    .map_while(|t| match t {
                        PTok::Char(c) => Some(*c),
                        PTok::One => None,
                    })
                    .collect(),
                None => String::new(),
            },
            _ => String::new(),
        }
    }
}

impl Pattern {
    /// Every (attribute type, literal prefix) this pattern could be indexed under, each
    /// prefix cut to [`INDEX_KEY_CHARS`] characters: every attribute of every RDN segment
    /// must be matched, so each is a necessary condition.
    fn index_keys(&self) -> Vec<(&TypeKey, String)> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Rdn(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| r.attrs.iter())
            .map(|a| {
                let prefix: String = a
                    .value
                    .literal_prefix()
                    .chars()
                    .take(INDEX_KEY_CHARS)
                    .collect();
                (&a.key, prefix)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect()
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
/// stack, and `candidates(i)` (a bit set of columns) limits the columns `edge` is asked
/// about; beyond 64 it allocates and asks about every column.
fn perfect_matching(
    rows: usize,
    cols: usize,
    mut candidates: impl FnMut(usize) -> u64,
    mut edge: impl FnMut(usize, usize) -> bool,
) -> bool {
    if rows > cols {
        return false;
    }
    if cols <= 64 {
        let all = if cols == 64 {
            u64::MAX
        } else {
            (1u64 << cols) - 1
        };
        let mut adj = [0u64; 64];
        for (i, slot) in adj.iter_mut().enumerate().take(rows) {
            let mut m = 0u64;
            let mut cand = candidates(i) & all;
            while cand != 0 {
                let j = cand.trailing_zeros() as usize;
                cand &= cand - 1;
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
        let mut rows: Vec<(u8, Row)> = Vec::new();
        let mut signature: Signature = [0; 4];
        for (i, seg) in segments.iter().enumerate() {
            let Segment::Rdn(r) = seg else { continue };
            let mut buckets: Vec<usize> = r.attrs.iter().map(|a| a.key.bucket()).collect();
            buckets.sort_unstable();
            buckets.dedup();
            rows.push((
                r.selectivity(),
                Row {
                    segment: i,
                    buckets,
                },
            ));
            for a in &r.attrs {
                if let ValuePat::Exact(v) = &a.value {
                    let (word, bit) = value_bit(&a.key, v);
                    if let Some(w) = signature.get_mut(word) {
                        *w |= bit;
                    }
                }
            }
        }
        rows.sort_by_key(|(rank, _)| *rank);
        Ok(Pattern {
            source: pattern.to_owned(),
            segments,
            has_many,
            fixed,
            required,
            signature,
            rows: rows.into_iter().map(|(_, r)| r).collect(),
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
        let sig = dn.signature();
        if self
            .signature
            .iter()
            .zip(sig.iter())
            .any(|(p, d)| p & !d != 0)
        {
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
        perfect_matching(
            self.rows.len(),
            n,
            |i| match self.rows.get(i) {
                // An RDN is a candidate only if it holds every type the row names.
                Some(row) => row
                    .buckets
                    .iter()
                    .fold(u64::MAX, |m, &b| m & dn.rdns_with(b)),
                None => 0,
            },
            |i, j| match self.rows.get(i).and_then(|r| self.segments.get(r.segment)) {
                Some(Segment::Rdn(r)) => r.matches(dn.norm_rdn(j)),
                _ => false,
            },
        )
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
    /// Candidate index for sets larger than [`INDEX_MIN`] (and at most [`INDEX_MAX`]).
    index: Option<PrefixIndex>,
}

/// Below this many patterns a plain scan is as fast as the index.
const INDEX_MIN: usize = 16;
/// The index keeps candidates in a bit set on the stack: 16 words = 1024 patterns (the
/// store allows 1000). Larger sets are scanned.
const INDEX_MAX: usize = 64 * INDEX_WORDS;
const INDEX_WORDS: usize = 16;
/// Index keys are at most this many characters of a literal prefix.
const INDEX_KEY_CHARS: usize = 8;

/// Every pattern RDN must be matched by some RDN of the DN, so a pattern attribute
/// `TYPE=literal…` can only match a DN holding a `TYPE` value that starts with `literal`.
/// The index files each pattern under its longest such literal prefix (up to
/// [`INDEX_KEY_CHARS`] characters) and type; a DN then looks up the prefixes of its own
/// values and only those patterns (plus the ones without any literal prefix) are matched,
/// in order. 1000 patterns that differ in a literal part cost a few hash lookups instead
/// of 1000 matches.
#[derive(Debug, Clone)]
struct PrefixIndex {
    by_type: HashMap<TypeKey, HashMap<Box<str>, Vec<u16>>>,
    /// The distinct key lengths in characters, ascending.
    lengths: Vec<usize>,
    /// Patterns without a literal prefix: always candidates.
    unkeyed: [u64; INDEX_WORDS],
}

impl PrefixIndex {
    fn build(patterns: &[Pattern]) -> PrefixIndex {
        // Every (type, prefix) key each pattern could be filed under; the pattern goes
        // under its rarest key across the set (ties: the longer), so a prefix shared by
        // many patterns (`O=Acme Corp` everywhere) does not make them all candidates.
        let keys: Vec<Vec<(&TypeKey, String)>> = patterns.iter().map(Pattern::index_keys).collect();
        let mut frequency: HashMap<(&TypeKey, &str), usize> = HashMap::new();
        for pattern_keys in &keys {
            for (t, k) in pattern_keys {
                *frequency.entry((*t, k.as_str())).or_default() += 1;
            }
        }
        let mut by_type: HashMap<TypeKey, HashMap<Box<str>, Vec<u16>>> = HashMap::new();
        let mut lengths = Vec::new();
        let mut unkeyed = [0u64; INDEX_WORDS];
        for (i, pattern_keys) in keys.iter().enumerate() {
            let best = pattern_keys.iter().min_by_key(|(t, k)| {
                let n = frequency.get(&(*t, k.as_str())).copied().unwrap_or(0);
                (n, usize::MAX - k.chars().count())
            });
            match best {
                Some((key, chars)) => {
                    let n = chars.chars().count();
                    if !lengths.contains(&n) {
                        lengths.push(n);
                    }
                    by_type
                        .entry((*key).clone())
                        .or_default()
                        .entry(chars.clone().into_boxed_str())
                        .or_default()
                        .push(i as u16);
                }
                None => set_bit(&mut unkeyed, i),
            }
        }
        lengths.sort_unstable();
        PrefixIndex {
            by_type,
            lengths,
            unkeyed,
        }
    }

    /// The candidate patterns for `dn`, as a bit set by pattern index.
    fn candidates(&self, dn: &Dn) -> [u64; INDEX_WORDS] {
        let mut bits = self.unkeyed;
        for attr in dn.norm_attrs() {
            let Some(by_prefix) = self.by_type.get(&attr.key) else {
                continue;
            };
            let value: &str = &attr.value;
            for &n in &self.lengths {
                // Byte end of the first `n` characters; stop when the value is shorter.
                let end = match value.char_indices().nth(n) {
                    Some((end, _)) => end,
                    None if value.chars().count() == n => value.len(),
                    None => break,
                };
                if let Some(list) = value.get(..end).and_then(|k| by_prefix.get(k)) {
                    for &i in list {
                        set_bit(&mut bits, usize::from(i));
                    }
                }
            }
        }
        bits
    }
}

fn set_bit(bits: &mut [u64; INDEX_WORDS], i: usize) {
    if let Some(w) = bits.get_mut(i / 64) {
        *w |= 1u64 << (i % 64);
    }
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
        let index = (INDEX_MIN..=INDEX_MAX)
            .contains(&patterns.len())
            .then(|| PrefixIndex::build(&patterns));
        Ok(PatternSet { patterns, index })
    }

    /// The index of the first pattern (in the order given) that matches `dn`.
    pub fn first_match(&self, dn: &Dn) -> Option<usize> {
        let Some(index) = &self.index else {
            return self.patterns.iter().position(|p| p.matches(dn));
        };
        let bits = index.candidates(dn);
        for (w, word) in bits.iter().enumerate() {
            let mut word = *word;
            while word != 0 {
                let i = w * 64 + word.trailing_zeros() as usize;
                if self.patterns.get(i).is_some_and(|p| p.matches(dn)) {
                    return Some(i);
                }
                word &= word - 1;
            }
        }
        None
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
    use proptest::prelude::*;

    fn toks(s: &str) -> Vec<GTok> {
        s.chars()
            .map(|c| match c {
                '*' => GTok::Many,
                '?' => GTok::One,
                c => GTok::Char(c),
            })
            .collect()
    }

    fn glob(p: &str, text: &str) -> bool {
        Glob::new(&toks(p)).matches(text)
    }

    /// Reference matcher: dynamic programming over characters.
    fn reference(p: &str, text: &str) -> bool {
        let p: Vec<char> = p.chars().collect();
        let t: Vec<char> = text.chars().collect();
        // dp[i][j]: p[..i] matches t[..j]
        let mut dp = vec![vec![false; t.len() + 1]; p.len() + 1];
        dp[0][0] = true;
        for i in 1..=p.len() {
            for j in 0..=t.len() {
                dp[i][j] = match p[i - 1] {
                    '*' => dp[i - 1][j] || (j > 0 && dp[i][j - 1]),
                    '?' => j > 0 && dp[i - 1][j - 1],
                    c => j > 0 && t[j - 1] == c && dp[i - 1][j - 1],
                };
            }
        }
        dp[p.len()][t.len()]
    }

    #[test]
    fn glob_basics() {
        assert!(glob("a*b?d", "axxbcd"));
        assert!(glob("*", ""));
        assert!(!glob("?", ""));
        assert!(glob("*é?", "xxéü"));
        assert!(!glob("a*b", "ac"));
        assert!(glob("*a*a*", "baaab"));
        assert!(!glob("*a*a*a*a", "aaa"));
        assert!(glob("ab*ba", "aba") == reference("ab*ba", "aba"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("a?c", "aéc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*?é", "xé"));
        assert!(!glob("*?é", "é"));
    }

    proptest! {
        #[test]
        fn glob_agrees_with_reference(p in "[ab?*é]{0,8}", t in "[abé]{0,10}") {
            prop_assert_eq!(glob(&p, &t), reference(&p, &t), "pattern {:?} text {:?}", p, t);
        }
    }

    #[test]
    fn matching_is_not_greedy() {
        // Row 0 can take column 0 or 1, row 1 only column 0: a greedy choice fails.
        let edges = [[true, true], [true, false]];
        assert!(perfect_matching(2, 2, |_| u64::MAX, |i, j| edges[i][j]));
        let edges = [[true, false], [true, false]];
        assert!(!perfect_matching(2, 2, |_| u64::MAX, |i, j| edges[i][j]));
        // Candidates limit the columns tried.
        let edges = [[true, true], [true, false]];
        assert!(!perfect_matching(
            2,
            2,
            |i| if i == 0 { 0b01 } else { 0b11 },
            |i, j| edges[i][j]
        ));
    }

    #[test]
    fn large_matching_agrees_with_small() {
        // A shifted diagonal where a greedy pass would take the wrong column first.
        let n = 64;
        let edge = |i: usize, j: usize| j == i || j == i + 1;
        assert!(perfect_matching(n, n, |_| u64::MAX, edge));
        assert!(perfect_matching_large(n, n, edge));
        let n = 70;
        assert!(perfect_matching(n, n, |_| u64::MAX, edge));
        let edge =
            |i: usize, j: usize| j == (i + 1) % n || (i == 0 && j == 0) || (i == 1 && j == 0);
        assert!(perfect_matching(n, n, |_| 0, edge));
        let edge = |i: usize, j: usize| j + 1 >= i && i > 1 || (i <= 1 && j == 0);
        assert!(!perfect_matching(n, n, |_| u64::MAX, edge));
        assert!(!perfect_matching(
            n - 1,
            n,
            |_| u64::MAX,
            |i, j| i == 0 && j == 0 || i > 0 && j == 1
        ));
    }
}
