//! Fuzzes the admin API's JSON request bodies (SPEC §8): each body type is deserialized from
//! the input and, when it parses, run through the same validators the store applies before a
//! write. Nothing may panic; a validator either accepts or answers a typed error.
#![no_main]

use certgate_store::validate;
use certgate_store::views::{ApiBody, ApiOverrideBody, ClientCertAuthPatch, NewComponentBody, TrustBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = serde_json::from_slice::<ClientCertAuthPatch>(data) {
        if let Some(list) = &p.trusted_dns {
            let _ = validate::patterns(list);
        }
        if let Some(list) = &p.trusted_proxies {
            let _ = validate::cidrs(list);
        }
        if let Some(Some(name)) = &p.header_name {
            let _ = validate::header_name(name);
        }
        if let Some(crls) = &p.crls {
            let _ = validate::crls(crls);
        }
    }
    if let Ok(b) = serde_json::from_slice::<ApiBody>(data) {
        let _ = validate::name("API", &b.name);
        let _ = validate::base_path(&b.base_path);
        let _ = validate::upstream(&b.upstream);
    }
    if let Ok(b) = serde_json::from_slice::<ApiOverrideBody>(data) {
        if let Some(list) = &b.trusted_dns {
            let _ = validate::patterns(list);
        }
    }
    if let Ok(b) = serde_json::from_slice::<NewComponentBody>(data) {
        let _ = validate::name("certificate", &b.name);
        let _ = validate::certificate(&b.pem);
    }
    let _ = serde_json::from_slice::<TrustBody>(data);
});
