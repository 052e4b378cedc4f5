//! Fuzzes the DN renderer: certificate DER → subject/issuer rendered canonically and as
//! ASCII; and the input as a DN string → parsed → rendered, which must parse back to the
//! same canonical string.
#![no_main]

use certgate_pki::{CertificateInfo, Dn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = CertificateInfo::from_der(data) {
        for dn in [&info.subject, &info.issuer] {
            let _ = dn.to_string();
            let ascii = dn.to_ascii_string();
            assert!(ascii.is_ascii(), "to_ascii_string gave non-ASCII {ascii:?}");
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(dn) = Dn::parse(text) {
            let canonical = dn.to_string();
            let ascii = dn.to_ascii_string();
            assert!(ascii.is_ascii(), "to_ascii_string gave non-ASCII {ascii:?}");
            // The canonical form is a fixed point: parsing it renders it unchanged.
            match Dn::parse(&canonical) {
                Ok(again) => assert_eq!(again.to_string(), canonical, "from {text:?}"),
                Err(e) => panic!("canonical {canonical:?} (from {text:?}) does not parse: {e}"),
            }
        }
    }
});
