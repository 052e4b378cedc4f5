//! The DN pattern language of SPEC §4 (Ant-style wildcards over RDNs) and [`PatternSet`].

use crate::dn::Dn;

/// A pattern that does not parse. Displays exactly as SPEC §4 requires:
/// `invalid DN pattern "CN=a,,O=b" at position 6: empty RDN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN pattern \"{pattern}\" at position {position}: {reason}")]
pub struct PatternError {
    pub pattern: String,
    /// 1-based character position of the first problem.
    pub position: usize,
    pub reason: String,
}

/// One compiled DN pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
}

impl Pattern {
    /// Compiles a pattern.
    pub fn parse(_pattern: &str) -> Result<Pattern, PatternError> {
        todo!()
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the DN matches this pattern.
    pub fn matches(&self, _dn: &Dn) -> bool {
        todo!()
    }
}

/// Up to 1000 compiled patterns, answering "which pattern matches first".
#[derive(Debug, Clone, Default)]
pub struct PatternSet {
    patterns: Vec<Pattern>,
}

impl PatternSet {
    /// Compiles every pattern; the first that does not parse is the error.
    pub fn compile<I, S>(_patterns: I) -> Result<PatternSet, PatternError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        todo!()
    }

    /// The index of the first pattern (in the order given) that matches `dn`.
    pub fn first_match(&self, _dn: &Dn) -> Option<usize> {
        todo!()
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
