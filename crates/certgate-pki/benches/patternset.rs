//! `PatternSet::first_match` with 1000 patterns against one 7-RDN DN: all patterns miss,
//! and the matching pattern is the last one. One iteration is one DN checked against the
//! whole set, so criterion's time per iteration is the cost per DN.
//!
//! Run: `cargo bench -p certgate-pki --bench patternset -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use certgate_pki::{Dn, PatternSet};
use criterion::{criterion_group, criterion_main, Criterion};

const DN: &str = "CN=user-0999,OU=Payments,OU=Engineering,O=Acme Corp,L=Bengaluru,ST=KA,C=IN";

/// 999 realistic patterns that do not match `DN`: a mix of exact full DNs for other users
/// (same shape, so the RDN-count and attribute filters pass), prefix wildcards, `**`
/// patterns on other organisations, and multi-wildcard values.
fn non_matching(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 4 {
            0 => format!(
                "CN=user-{i:04}x,OU=Payments,OU=Engineering,O=Acme Corp,L=Bengaluru,ST=KA,C=IN"
            ),
            1 => format!("CN=svc-{i}-*,OU=*,OU=*,O=Acme Corp,L=*,ST=*,C=IN"),
            2 => format!("**,O=Other Corp {i},**"),
            _ => format!("CN=*-{i:04}-*,**,C=IN"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dn = Dn::parse(DN).unwrap();

    let misses = PatternSet::compile(non_matching(1000)).unwrap();
    assert_eq!(misses.first_match(&dn), None);
    c.bench_function("patternset/1000_non_matching", |b| {
        b.iter(|| misses.first_match(black_box(&dn)))
    });

    let mut last = non_matching(999);
    // The full DN in another RDN order and case: found by the bipartite matcher.
    last.push("c=IN,st=KA,l=bengaluru,o=acme corp,ou=engineering,ou=payments,cn=USER-0999".into());
    let last_hits = PatternSet::compile(&last).unwrap();
    assert_eq!(last_hits.first_match(&dn), Some(999));
    c.bench_function("patternset/1000_match_last", |b| {
        b.iter(|| last_hits.first_match(black_box(&dn)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
