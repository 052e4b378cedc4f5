//! Fuzzes the structured header formats (Envoy XFCC, RFC 9440 byte sequences, Traefik lists)
//! with the fuzz input placed where each format carries its certificate, so the fuzzer spends
//! its time inside those parsers rather than in format detection. Every format must still
//! never panic, and `auto` must agree with the explicit format whenever both decode.
#![no_main]

use certgate_pki::{decode_header, HeaderFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let wrapped: [(Vec<u8>, HeaderFormat); 5] = [
        (
            [b"By=spiffe://a;Hash=00;Cert=\"".as_slice(), data, b"\";Subject=\"CN=x\"".as_slice()].concat(),
            HeaderFormat::Xfcc,
        ),
        (
            [b"Hash=00;Chain=\"".as_slice(), data, b"\",By=x;Cert=\"y\"".as_slice()].concat(),
            HeaderFormat::Xfcc,
        ),
        ([b":".as_slice(), data, b":".as_slice()].concat(), HeaderFormat::Base64Der),
        ([b":".as_slice(), data, b":, :".as_slice(), data, b":".as_slice()].concat(), HeaderFormat::Base64Der),
        ([data, b",".as_slice(), data].concat(), HeaderFormat::Base64Der),
    ];
    for (value, format) in wrapped {
        let explicit = decode_header(&value, format);
        let auto = decode_header(&value, HeaderFormat::Auto);
        if let (Ok(a), Ok(b)) = (&explicit, &auto) {
            assert_eq!(a.leaf, b.leaf, "{format}: auto decoded another leaf");
        }
    }
});
