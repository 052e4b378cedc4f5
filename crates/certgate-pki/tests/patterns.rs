//! The DN pattern language of SPEC §4: the SPEC's example table, a table of cases
//! (pattern, DN, expected match or expected error with its position), exact error
//! messages, `PatternSet` order, and property tests.

use certgate_pki::{Dn, Pattern, PatternError, PatternSet};
use proptest::prelude::*;

/// What a case expects.
#[derive(Debug, Clone, Copy)]
enum Want {
    Match,
    NoMatch,
    /// The pattern does not parse: 1-based position and reason.
    Error(usize, &'static str),
}
use Want::*;

const SPEC_DN: &str = "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com";

/// SPEC §4's example table, verbatim.
#[test]
fn spec_section_4_examples() {
    let dn = Dn::parse(SPEC_DN).unwrap();
    assert_eq!(dn.to_string(), SPEC_DN);
    let table: &[(&str, bool)] = &[
        (
            "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,Email=abc@test.com",
            true,
        ),
        (
            "Email=abc@test.com, OU=boomi, O=Boomi, L=BLR, ST=KA, C=IND, CN=localhost",
            true,
        ),
        ("CN=local?ost,C=*,ST=*,L=*,O=Boomi,OU=*,E=*@test.com", true),
        ("CN=localhost,**", true),
        ("CN=*,**,OU=Boomi,**", true),
        ("**,O=Boomi,**", true),
        ("**,O=Other,**", false),
        ("CN=*", false),
        ("CN=localhost,O=Boomi", false),
    ];
    for (pattern, want) in table {
        let p = Pattern::parse(pattern).unwrap();
        assert_eq!(p.matches(&dn), *want, "pattern {pattern:?}");
    }
}

#[test]
fn spec_error_message_is_exact() {
    let err = Pattern::parse("CN=a,,O=b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN"
    );
    assert_eq!(
        err,
        PatternError {
            pattern: "CN=a,,O=b".into(),
            position: 6,
            reason: "empty RDN".into()
        }
    );
}

/// The DNs the table refers to, as DN strings (parsed with `Dn::parse`).
const MULTI: &str = "CN=John+UID=j1,O=Acme,C=US";
const DUP_TYPES: &str = "OU=a1+OU=b,CN=x";
const TWO_OU: &str = "OU=ab,OU=ac,CN=x";
const SPACES: &str = "CN=John   Smith,O=Acme\\20\\20Corp";
const UNICODE: &str = "CN=Émile Zola,O=Société Générale,C=FR";
const ESCAPES: &str =
    "CN=Smith\\, John,O=A\\+B,OU=x\\;y,L=\\<a\\>,ST=\\\"q\\\",STREET=back\\\\slash";
const LITERAL_WILD: &str = "CN=a*b?c,O=x";
const HASH: &str = "CN=\\#1,O=x";
const HEXVAL: &str = "2.5.4.45=#030200FF,CN=x";
const OIDS: &str = "2.5.4.17=560001,CN=x";
const KEYWORDS: &str = "SERIALNUMBER=42,T=Dr,GN=Jo,SN=Do,STREET=Main,DC=example,DC=com";
const EMPTY_VALUE: &str = "CN=,O=x";
const EMPTY_DN: &str = "";
const UID_OID: &str = "0.9.2342.19200300.100.1.1=j1,CN=x";

/// (pattern, DN string, expected).
const CASES: &[(&str, &str, Want)] = &[
    // --- SPEC's certificate: keywords, aliases, OIDs, case ---
    ("CN=localhost,C=IND,S=KA,L=BLR,O=Boomi,OU=Boomi,EMAILADDRESS=abc@test.com", SPEC_DN, Match),
    ("cn=localhost,c=IND,st=KA,l=BLR,o=Boomi,ou=Boomi,email=abc@test.com", SPEC_DN, Match),
    ("2.5.4.3=localhost,2.5.4.6=IND,2.5.4.8=KA,2.5.4.7=BLR,2.5.4.10=Boomi,2.5.4.11=Boomi,1.2.840.113549.1.9.1=abc@test.com", SPEC_DN, Match),
    ("CN=LOCALHOST,**", SPEC_DN, Match),
    ("CN=localhost,C=ind,ST=ka,L=blr,O=BOOMI,OU=bOOmi,E=ABC@TEST.COM", SPEC_DN, Match),
    ("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.co", SPEC_DN, NoMatch),
    ("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=*", SPEC_DN, Match),
    ("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,*", SPEC_DN, Match),
    ("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,CN=*", SPEC_DN, NoMatch),
    ("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,O=Boomi,E=*", SPEC_DN, NoMatch),
    ("*,*,*,*,*,*,*", SPEC_DN, Match),
    ("*,*,*,*,*,*", SPEC_DN, NoMatch),
    ("*,*,*,*,*,*,*,*", SPEC_DN, NoMatch),
    ("E=*,*,*,*,*,*,CN=localhost", SPEC_DN, Match),
    ("UID=*,*,*,*,*,*,*", SPEC_DN, NoMatch),
    // --- `**` sequences, both directions ---
    ("**", SPEC_DN, Match),
    ("**,**", SPEC_DN, Match),
    ("CN=localhost,**,E=abc@test.com", SPEC_DN, Match),
    ("E=abc@test.com,**,CN=localhost", SPEC_DN, Match),
    ("CN=localhost,C=IND,**", SPEC_DN, Match),
    ("C=IND,CN=localhost,**", SPEC_DN, NoMatch),
    ("**,C=IND,CN=localhost", SPEC_DN, Match),
    ("**,CN=localhost", SPEC_DN, Match),
    ("**,E=abc@test.com", SPEC_DN, Match),
    ("**,L=BLR", SPEC_DN, NoMatch),
    ("*,C=IND,**", SPEC_DN, Match),
    ("*,*,ST=KA,**", SPEC_DN, Match),
    ("**,ST=KA,*,*,*,*", SPEC_DN, Match),
    ("**,ST=KA,*,*,*", SPEC_DN, NoMatch),
    ("**,O=Boomi,OU=Boomi,**", SPEC_DN, Match),
    ("**,OU=Boomi,O=Boomi,**", SPEC_DN, Match),
    ("**,O=Boomi,L=BLR,**", SPEC_DN, Match),
    ("**,CN=localhost,E=abc@test.com,**", SPEC_DN, NoMatch),
    ("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com,**", SPEC_DN, Match),
    ("**,CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com,**", SPEC_DN, Match),
    ("**,CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com,*", SPEC_DN, NoMatch),
    ("CN=localhost,**,C=IND,**", SPEC_DN, Match),
    ("**,*,*,*,*,*,*,*", SPEC_DN, Match),
    ("**,*,*,*,*,*,*,*,*", SPEC_DN, NoMatch),
    ("CN=localhost,**,O=Other", SPEC_DN, NoMatch),
    // --- value wildcards ---
    ("CN=*host,C=*,ST=*,L=*,O=*,OU=*,E=*", SPEC_DN, Match),
    ("CN=l*t,**", SPEC_DN, Match),
    ("CN=l?calhost,**", SPEC_DN, Match),
    ("CN=lo?host,**", SPEC_DN, NoMatch),
    ("CN=*local*,**", SPEC_DN, Match),
    ("CN=*LOCAL*,**", SPEC_DN, Match),
    ("CN=localhost?,**", SPEC_DN, NoMatch),
    ("CN=localhost*,**", SPEC_DN, Match),
    ("CN=**host,**", SPEC_DN, Match),
    ("CN=?????????,**", SPEC_DN, Match),
    ("CN=????????,**", SPEC_DN, NoMatch),
    ("E=*@TEST.COM,**", SPEC_DN, Match),
    ("E=abc@*.com,**", SPEC_DN, Match),
    ("E=abc@*.org,**", SPEC_DN, NoMatch),
    ("CN=\\*,**", SPEC_DN, NoMatch),
    ("CN=local\\?ost,**", SPEC_DN, NoMatch),
    // --- literal '*' and '?' in the DN ---
    ("CN=a\\*b\\?c,O=x", LITERAL_WILD, Match),
    ("CN=a\\*b\\?d,O=x", LITERAL_WILD, NoMatch),
    ("CN=a*,O=x", LITERAL_WILD, Match),
    ("CN=a\\*,O=x", LITERAL_WILD, NoMatch),
    ("CN=a?b?c,O=x", LITERAL_WILD, Match),
    // --- multi-valued RDNs ---
    ("CN=John+UID=j1,O=Acme,C=US", MULTI, Match),
    ("UID=j1+CN=John,O=Acme,C=US", MULTI, Match),
    ("C=US,O=Acme,UID=j1+CN=john", MULTI, Match),
    ("CN=John,O=Acme,C=US", MULTI, NoMatch),
    ("CN=John,UID=j1,O=Acme,C=US", MULTI, NoMatch),
    ("CN=John+UID=j1+E=x,O=Acme,C=US", MULTI, NoMatch),
    ("CN=*+UID=*,*,*", MULTI, Match),
    ("CN=* + UID=j?,O=*,C=*", MULTI, Match),
    ("*,O=Acme,C=US", MULTI, Match),
    ("**,O=Acme,**", MULTI, Match),
    ("CN=John+UID=j1,**", MULTI, Match),
    ("CN=John,**", MULTI, NoMatch),
    ("USERID=J1+CN=JOHN,**", MULTI, Match),
    ("CN=John+CN=John,O=Acme,C=US", MULTI, NoMatch),
    ("OU=b+OU=a*,CN=x", DUP_TYPES, Match),
    ("OU=a*+OU=*,CN=x", DUP_TYPES, Match),
    ("OU=*1+OU=a*,CN=x", DUP_TYPES, NoMatch),
    ("OU=a1,OU=b,CN=x", DUP_TYPES, NoMatch),
    // --- bipartite matching, not greedy ---
    ("OU=a*,OU=*b,CN=x", TWO_OU, Match),
    ("OU=*b,OU=a*,CN=x", TWO_OU, Match),
    ("OU=*b,OU=*b,CN=x", TWO_OU, NoMatch),
    ("OU=a*,OU=a*,CN=*", TWO_OU, Match),
    ("CN=x,OU=a?,OU=a?", TWO_OU, Match),
    ("CN=x,OU=ab,OU=ab", TWO_OU, NoMatch),
    // --- white space folding ---
    ("CN=john smith,O=acme corp", SPACES, Match),
    ("CN = John Smith , O = Acme Corp", SPACES, Match),
    ("CN=John  Smith,O=Acme Corp", SPACES, Match),
    ("CN=JohnSmith,O=Acme Corp", SPACES, NoMatch),
    ("CN=John*Smith,O=*", SPACES, Match),
    ("CN=John ?mith,O=*", SPACES, Match),
    ("CN=\\ John Smith\\ ,O=Acme\tCorp", SPACES, Match),
    ("CN=John  *,O=Acme Corp", SPACES, Match),
    // --- Unicode ---
    ("CN=émile zola,O=SOCIÉTÉ GÉNÉRALE,C=fr", UNICODE, Match),
    ("CN=?mile*,O=*,C=FR", UNICODE, Match),
    ("CN=\\C3\\89mile Zola,O=*,C=FR", UNICODE, Match),
    ("CN=\\c3\\a9mile Zola,O=*,C=FR", UNICODE, Match),
    ("CN=Emile Zola,O=*,C=FR", UNICODE, NoMatch),
    ("CN=*é*,**", UNICODE, Match),
    ("**,O=soci?t? g?n?rale,**", UNICODE, Match),
    // --- RFC 4514 escapes ---
    ("CN=Smith\\, John,O=A\\+B,OU=x\\;y,L=\\<a\\>,ST=\\\"q\\\",STREET=back\\\\slash", ESCAPES, Match),
    ("CN=smith\\2C john,**", ESCAPES, Match),
    ("CN=Smith*,O=A\\+*,**", ESCAPES, Match),
    ("**,STREET=back\\5Cslash", ESCAPES, Match),
    ("**,ST=\\22q\\22,*", ESCAPES, Match),
    ("**,ST=\\22q\\22", ESCAPES, NoMatch),
    ("CN=\\#1,O=x", HASH, Match),
    ("CN=#1,O=x", HASH, Match),
    ("CN=\\#?,O=\\x", HASH, Error(10, "invalid escape sequence \"\\x\"")),
    ("CN=a\\=b,O=x", "CN=a=b,O=x", Match),
    ("CN=a=b,O=x", "CN=a\\=b,O=x", Match),
    // --- non-string values (#hex) and dotted OIDs ---
    ("2.5.4.45=#030200ff,CN=x", HEXVAL, Match),
    ("2.5.4.45=#03*,CN=x", HEXVAL, Match),
    ("2.5.4.45=*,CN=x", HEXVAL, Match),
    ("2.5.4.45=#0302,CN=x", HEXVAL, NoMatch),
    ("2.5.4.17=560001,CN=x", OIDS, Match),
    ("2.5.4.17=56*,cn=X", OIDS, Match),
    ("2.5.4.18=560001,CN=x", OIDS, NoMatch),
    ("UID=j1,CN=x", UID_OID, Match),
    ("0.9.2342.19200300.100.1.1=j1,2.5.4.3=x", UID_OID, Match),
    ("serialnumber=42,t=dr,gn=jo,sn=do,street=main,dc=*,dc=example", KEYWORDS, Match),
    ("DC=com,DC=example,**", KEYWORDS, Match),
    ("SERIALNUMBER=42,**,DC=com", KEYWORDS, Match),
    ("**,SN=Do,GN=Jo,**", KEYWORDS, Match),
    ("**,SN=Jo,**", KEYWORDS, NoMatch),
    // --- empty values and the empty DN ---
    ("CN=,O=x", EMPTY_VALUE, Match),
    ("CN=*,O=x", EMPTY_VALUE, Match),
    ("CN=?,O=x", EMPTY_VALUE, NoMatch),
    ("CN= ,O=x", EMPTY_VALUE, Match),
    ("**", EMPTY_DN, Match),
    ("*", EMPTY_DN, NoMatch),
    ("CN=*", EMPTY_DN, NoMatch),
    ("**,**", EMPTY_DN, Match),
    // --- parse errors: position and reason ---
    ("", SPEC_DN, Error(1, "empty pattern")),
    ("   ", SPEC_DN, Error(1, "empty pattern")),
    ("CN=a,,O=b", SPEC_DN, Error(6, "empty RDN")),
    (",CN=a", SPEC_DN, Error(1, "empty RDN")),
    ("CN=a,", SPEC_DN, Error(6, "empty RDN")),
    ("CN=a, ,O=b", SPEC_DN, Error(7, "empty RDN")),
    ("CN=é,,O=b", SPEC_DN, Error(6, "empty RDN")),
    ("CN=a,O=b\\x", SPEC_DN, Error(9, "invalid escape sequence \"\\x\"")),
    ("CN=a\\*b\\q", SPEC_DN, Error(8, "invalid escape sequence \"\\q\"")),
    ("CN=a\\", SPEC_DN, Error(5, "'\\' at the end of a value")),
    ("CN=\\4", SPEC_DN, Error(4, "'\\' must be followed by two hex digits")),
    ("CN=\\4g", SPEC_DN, Error(4, "'\\' must be followed by two hex digits")),
    ("CN=\\C3", SPEC_DN, Error(4, "hex escapes are not valid UTF-8")),
    ("CN=x\\C3\\28", SPEC_DN, Error(5, "hex escapes are not valid UTF-8")),
    ("FOO=bar", SPEC_DN, Error(1, "unknown attribute type \"FOO\"")),
    ("CN=a,XX=b", SPEC_DN, Error(6, "unknown attribute type \"XX\"")),
    ("CN=a,emailaddr=b", SPEC_DN, Error(6, "unknown attribute type \"emailaddr\"")),
    ("title=Dr", SPEC_DN, Error(1, "unknown attribute type \"title\"")),
    ("CN", SPEC_DN, Error(3, "expected '=' after the attribute type")),
    ("CN a", SPEC_DN, Error(4, "expected '=' after the attribute type, found 'a'")),
    ("=a", SPEC_DN, Error(1, "expected an attribute type, found '='")),
    ("CN=a+", SPEC_DN, Error(6, "empty attribute")),
    ("CN=a++UID=b", SPEC_DN, Error(6, "empty attribute")),
    ("+CN=a", SPEC_DN, Error(1, "empty attribute")),
    ("CN=a+,O=b", SPEC_DN, Error(6, "empty attribute")),
    ("***", SPEC_DN, Error(1, "a wildcard segment is '*' (one RDN) or '**' (any number of RDNs)")),
    ("CN=a, *** ,O=b", SPEC_DN, Error(7, "a wildcard segment is '*' (one RDN) or '**' (any number of RDNs)")),
    ("2.5.04.3=a", SPEC_DN, Error(1, "invalid OID \"2.5.04.3\"")),
    ("1.=a", SPEC_DN, Error(1, "invalid OID \"1.\"")),
    ("2=a", SPEC_DN, Error(1, "invalid OID \"2\"")),
    ("CN=a;O=b", SPEC_DN, Error(5, "';' must be escaped as '\\;'")),
    ("CN=\"a\"", SPEC_DN, Error(4, "'\"' must be escaped as '\\\"'")),
    ("CN=<a>", SPEC_DN, Error(4, "'<' must be escaped as '\\<'")),
    ("*=a", SPEC_DN, Error(1, "expected an attribute type, found '*'")),
    ("CN=a,*x", SPEC_DN, Error(6, "expected an attribute type, found '*'")),
    ("CN=a,**x=b", SPEC_DN, Error(6, "expected an attribute type, found '*'")),
    ("Ö=a", SPEC_DN, Error(1, "expected an attribute type, found 'Ö'")),
    ("O=A+B", SPEC_DN, Error(5, "unknown attribute type \"B\"")),
    ("O=A+CN", SPEC_DN, Error(7, "expected '=' after the attribute type")),
];

#[test]
fn pattern_table() {
    assert!(CASES.len() >= 100, "only {} cases", CASES.len());
    let mut failures = Vec::new();
    for (i, (pattern, dn, want)) in CASES.iter().enumerate() {
        let dn = Dn::parse(dn).unwrap_or_else(|e| panic!("case {i}: DN does not parse: {e}"));
        let got = Pattern::parse(pattern);
        let ok = match (want, &got) {
            (Match, Ok(p)) => p.matches(&dn),
            (NoMatch, Ok(p)) => !p.matches(&dn),
            (Error(pos, reason), Err(e)) => {
                e.position == *pos
                    && e.reason == *reason
                    && e.pattern == *pattern
                    && e.to_string()
                        == format!("invalid DN pattern \"{pattern}\" at position {pos}: {reason}")
            }
            _ => false,
        };
        if !ok {
            let got = match &got {
                Ok(p) => format!("matches={}", p.matches(&dn)),
                Err(e) => format!("error {e}"),
            };
            failures.push(format!(
                "case {i}: {pattern:?} vs {dn}: want {want:?}, got {got}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn pattern_keeps_its_source() {
    let p = Pattern::parse(" Email=abc@test.com , ** ").unwrap();
    assert_eq!(p.as_str(), " Email=abc@test.com , ** ");
    assert!(p.has_globstar());
    assert!(!Pattern::parse("CN=*").unwrap().has_globstar());
}

#[test]
fn pattern_set_returns_the_first_match_in_order() {
    let dn = Dn::parse(SPEC_DN).unwrap();
    let set = PatternSet::compile(["CN=other,**", "**,O=Boomi,**", "CN=localhost,**"]).unwrap();
    assert_eq!(set.len(), 3);
    assert_eq!(set.first_match(&dn), Some(1));
    assert_eq!(set.first_matching(&dn).unwrap().as_str(), "**,O=Boomi,**");
    assert_eq!(set.patterns()[2].as_str(), "CN=localhost,**");

    let none = PatternSet::compile(["CN=other,**", "CN=*"]).unwrap();
    assert_eq!(none.first_match(&dn), None);

    let empty = PatternSet::compile(Vec::<String>::new()).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.first_match(&dn), None);
}

#[test]
fn pattern_set_reports_the_first_bad_pattern() {
    let err = PatternSet::compile(["CN=ok", "CN=a,,O=b", "FOO=x"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN"
    );
}

#[test]
fn thousand_patterns_with_the_match_last() {
    let dn =
        Dn::parse("CN=user-0999,OU=Payments,OU=Engineering,O=Acme Corp,L=Bengaluru,ST=KA,C=IN")
            .unwrap();
    let patterns: Vec<String> = (0..1000)
        .map(|i| {
            format!("CN=user-{i:04},OU=Payments,OU=Engineering,O=Acme Corp,L=Bengaluru,ST=KA,C=IN")
        })
        .collect();
    let set = PatternSet::compile(&patterns).unwrap();
    assert_eq!(set.first_match(&dn), Some(999));
}

/// A DN made of 1..=6 RDNs, each 1..=2 attributes, from a small alphabet so that values
/// collide often (which exercises the bipartite matching).
fn dn_strategy() -> impl Strategy<Value = Vec<Vec<(&'static str, String)>>> {
    let keyword = prop::sample::select(vec!["CN", "O", "OU", "C", "DC", "UID", "E", "2.5.4.17"]);
    let value = "[a-cA-C ,+é*?#=\\\\]{0,6}";
    let attr = (keyword, value);
    prop::collection::vec(prop::collection::vec(attr, 1..=2), 1..=6)
}

/// Escapes a value for a DN string or a pattern, everything literal.
fn escape(v: &str) -> String {
    let mut out = String::new();
    for c in v.chars() {
        match c {
            ',' | '+' | '"' | '\\' | ';' | '<' | '>' | '#' | '=' | ' ' | '*' | '?' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn render(rdns: &[Vec<(&str, String)>], value: impl Fn(&str) -> String) -> String {
    rdns.iter()
        .map(|rdn| {
            rdn.iter()
                .map(|(k, v)| format!("{k}={}", value(v)))
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// DN-string escaping: like `escape` but '*' and '?' are plain characters in a DN.
fn escape_dn(v: &str) -> String {
    escape(v).replace("\\*", "*").replace("\\?", "?")
}

proptest! {
    #[test]
    fn prop_values_replaced_by_star_match(rdns in dn_strategy()) {
        let dn = Dn::parse(&render(&rdns, escape_dn)).unwrap();
        let pattern = render(&rdns, |_| "*".to_owned());
        let p = Pattern::parse(&pattern).unwrap();
        prop_assert!(p.matches(&dn), "{} vs {}", pattern, dn);
    }

    #[test]
    fn prop_exact_pattern_matches_in_any_rdn_order(rdns in dn_strategy(), rot in 0usize..6) {
        let dn = Dn::parse(&render(&rdns, escape_dn)).unwrap();
        let mut shuffled = rdns.clone();
        let k = rot % shuffled.len();
        shuffled.rotate_left(k);
        for rdn in &mut shuffled {
            rdn.reverse();
        }
        let pattern = render(&shuffled, escape);
        let p = Pattern::parse(&pattern).unwrap();
        prop_assert!(p.matches(&dn), "{} vs {}", pattern, dn);
    }

    #[test]
    fn prop_globstar_pattern_reversed_matches_reversed_dn(
        rdns in dn_strategy(),
        cut in 0usize..6,
        star_values in any::<bool>(),
    ) {
        // Pattern: the first `cut` RDNs (values exact or `*`), then `**`.
        let cut = cut % (rdns.len() + 1);
        let value = |v: &str| if star_values { "*".to_owned() } else { escape(v) };
        let head = render(&rdns[..cut], value);
        let pattern = if head.is_empty() { "**".to_owned() } else { format!("{head},**") };
        let dn = Dn::parse(&render(&rdns, escape_dn)).unwrap();
        prop_assert!(Pattern::parse(&pattern).unwrap().matches(&dn), "{} vs {}", pattern, dn);

        // Reversed pattern against the reversed DN.
        let mut rev_rdns = rdns.clone();
        rev_rdns.reverse();
        let rev_dn = Dn::parse(&render(&rev_rdns, escape_dn)).unwrap();
        let rev_head: Vec<_> = rdns[..cut].iter().rev().cloned().collect();
        let rev_head = render(&rev_head, value);
        let rev_pattern = if rev_head.is_empty() { "**".to_owned() } else { format!("**,{rev_head}") };
        prop_assert!(Pattern::parse(&rev_pattern).unwrap().matches(&rev_dn), "{} vs {}", rev_pattern, rev_dn);
        // The reversed pattern also matches the original DN (reverse-order matching).
        prop_assert!(Pattern::parse(&rev_pattern).unwrap().matches(&dn), "{} vs {}", rev_pattern, dn);
    }

    #[test]
    fn prop_parser_never_panics(s in "\\PC{0,40}") {
        let _ = Pattern::parse(&s);
        let _ = Dn::parse(&s);
    }

    #[test]
    fn prop_dn_display_round_trips(rdns in dn_strategy()) {
        let dn = Dn::parse(&render(&rdns, escape_dn)).unwrap();
        let again = Dn::parse(&dn.to_string()).unwrap();
        prop_assert_eq!(&again, &dn);
        let ascii = Dn::parse(&dn.to_ascii_string()).unwrap();
        prop_assert_eq!(&ascii, &dn);
    }
}

/// The set's prefix index (used from 16 patterns on) must give exactly the answer of a
/// plain scan: every valid pattern of the table, in table order and rotated, against every
/// DN of the table.
#[test]
fn indexed_pattern_set_agrees_with_a_plain_scan() {
    let patterns: Vec<&str> = CASES
        .iter()
        .filter(|(p, _, _)| Pattern::parse(p).is_ok())
        .map(|(p, _, _)| *p)
        .collect();
    assert!(patterns.len() > 100);
    let mut dns: Vec<&str> = CASES.iter().map(|(_, dn, _)| *dn).collect();
    dns.sort_unstable();
    dns.dedup();
    for rotation in [0, 1, 37, 90] {
        let mut order = patterns.clone();
        let by = rotation % order.len();
        order.rotate_left(by);
        let set = PatternSet::compile(&order).unwrap();
        let compiled: Vec<Pattern> = order.iter().map(|p| Pattern::parse(p).unwrap()).collect();
        for dn in &dns {
            let dn = Dn::parse(dn).unwrap();
            let scan = compiled.iter().position(|p| p.matches(&dn));
            assert_eq!(set.first_match(&dn), scan, "rotation {rotation}, DN {dn}");
        }
        // Subsets of every size around the index threshold.
        for n in [15, 16, 17, 40] {
            let subset = &order[..n.min(order.len())];
            let set = PatternSet::compile(subset).unwrap();
            for dn in &dns {
                let dn = Dn::parse(dn).unwrap();
                let scan = compiled[..subset.len()].iter().position(|p| p.matches(&dn));
                assert_eq!(set.first_match(&dn), scan, "{n} patterns, DN {dn}");
            }
        }
    }
}

proptest! {
    /// Random DNs against a large set of table patterns plus patterns made from the DN
    /// itself: the index never changes the answer.
    #[test]
    fn prop_index_agrees_with_scan(rdns in dn_strategy()) {
        let dn_text = render(&rdns, escape_dn);
        let Ok(dn) = Dn::parse(&dn_text) else { return Ok(()); };
        let mut patterns: Vec<String> = CASES
            .iter()
            .filter(|(p, _, _)| Pattern::parse(p).is_ok())
            .map(|(p, _, _)| p.to_string())
            .collect();
        patterns.push(render(&rdns, |v| format!("{}*", escape(&v.chars().take(2).collect::<String>()))));
        patterns.push(render(&rdns, escape));
        let patterns: Vec<String> = patterns.into_iter().filter(|p| Pattern::parse(p).is_ok()).collect();
        let set = PatternSet::compile(&patterns).unwrap();
        let scan = patterns.iter().position(|p| Pattern::parse(p).unwrap().matches(&dn));
        prop_assert_eq!(set.first_match(&dn), scan);
    }
}
