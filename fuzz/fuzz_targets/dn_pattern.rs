//! Fuzzes the DN pattern parser, and the matcher against a fixed DN (SPEC §4's example
//! certificate) for every pattern that parses.
#![no_main]

use std::sync::LazyLock;

use certgate_pki::{Dn, Pattern};
use libfuzzer_sys::fuzz_target;

static DN: LazyLock<Dn> = LazyLock::new(|| {
    Dn::parse("CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com")
        .expect("the fixed DN parses")
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Pattern::parse(text) {
        Ok(pattern) => {
            let _ = pattern.matches(&DN);
            assert_eq!(pattern.as_str(), text);
        }
        Err(e) => {
            // SPEC §4: a 1-based character position inside the pattern (or just past it).
            let chars = text.chars().count();
            assert!(
                e.position >= 1 && e.position <= chars + 1,
                "position {} for a {chars}-character pattern",
                e.position
            );
            let _ = e.to_string();
        }
    }
});
