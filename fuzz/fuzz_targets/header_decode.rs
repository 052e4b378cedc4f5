//! Fuzzes `decode_header` with every `header_format`: it must never panic, and what it
//! returns must keep the decoder's promises.
#![no_main]

use certgate_pki::header::{MAX_HEADER_CERTIFICATES, MAX_HEADER_VALUE_LEN};
use certgate_pki::{decode_header, HeaderError, HeaderFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for format in HeaderFormat::ALL {
        match decode_header(data, format) {
            Ok(chain) => {
                assert!(!chain.leaf.is_empty(), "{format}: empty leaf");
                assert!(
                    chain.intermediates.len() < MAX_HEADER_CERTIFICATES,
                    "{format}: {} intermediates",
                    chain.intermediates.len()
                );
                assert!(
                    chain.intermediates.iter().all(|c| *c != chain.leaf),
                    "{format}: the leaf repeats among the intermediates"
                );
            }
            Err(HeaderError::TooLong(len)) => {
                assert_eq!(len, data.len());
                assert!(len > MAX_HEADER_VALUE_LEN);
            }
            Err(HeaderError::Empty) => assert!(data.trim_ascii().is_empty()),
            Err(HeaderError::UnknownFormat) => {
                assert_eq!(format, HeaderFormat::Auto, "only auto may not recognise")
            }
            Err(e @ HeaderError::Malformed { .. }) => {
                // Error messages go to logs: they must render.
                let _ = e.to_string();
            }
        }
    }
});
