//! The public-key work of one full TLS 1.3 handshake, measured with the crypto provider
//! certgate's build uses (rustls on aws-lc-rs), so handshake rates can be reported as a
//! fraction of what this CPU can do at all (docs/BENCHMARKS.md, "handshake ceiling").
//!
//! Per full mTLS handshake with ECDSA P-256 certificates, certgate's server side does one
//! X25519 key generation + agreement, one ECDSA P-256 signature (its CertificateVerify), one
//! ECDSA verification of the client's CertificateVerify, and — for a never-seen client
//! certificate — one more verification, of the client certificate's signature by its CA
//! (a repeated certificate's chain verdict is cached). The RSA-2048 figures give the same for
//! the RSA scenario.
//!
//! `cargo bench -p certgate-loadgen --bench handshake_crypto -- --warm-up-time 1 --measurement-time 3`

use criterion::{criterion_group, criterion_main, Criterion};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_RSA_SHA256};
use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::SignatureScheme;

fn signer(
    provider: &CryptoProvider,
    key: &KeyPair,
    scheme: SignatureScheme,
) -> Box<dyn rustls::sign::Signer> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = provider
        .key_provider
        .load_private_key(der)
        .expect("load key");
    signing_key.choose_scheme(&[scheme]).expect("scheme")
}

fn verify_alg(
    provider: &CryptoProvider,
    scheme: SignatureScheme,
) -> &'static dyn rustls::pki_types::SignatureVerificationAlgorithm {
    provider
        .signature_verification_algorithms
        .mapping
        .iter()
        .find(|(s, _)| *s == scheme)
        .map(|(_, algs)| algs[0])
        .expect("verification algorithm")
}

fn bench(c: &mut Criterion) {
    let provider = default_provider();
    // A TLS 1.3 CertificateVerify signs 64 spaces, a context string and a transcript hash.
    let message = [0x20u8; 130];

    let mut g = c.benchmark_group("handshake_crypto");
    g.bench_function("x25519_keygen_and_agree", |b| {
        let peer = kx_group::X25519.start().expect("kx").pub_key().to_vec();
        b.iter(|| {
            let kx = kx_group::X25519.start().expect("kx");
            let _ = kx.pub_key().len();
            kx.complete(&peer).expect("agree")
        })
    });
    for (name, alg, scheme) in [
        (
            "ecdsa_p256",
            &PKCS_ECDSA_P256_SHA256,
            SignatureScheme::ECDSA_NISTP256_SHA256,
        ),
        ("rsa2048", &PKCS_RSA_SHA256, SignatureScheme::RSA_PSS_SHA256),
    ] {
        let key = if name == "rsa2048" {
            KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).expect("rsa key")
        } else {
            KeyPair::generate_for(alg).expect("key")
        };
        let s = signer(&provider, &key, scheme);
        let signature = s.sign(&message).expect("sign");
        // The raw public key (EC point or PKCS#1 RSAPublicKey): what webpki's algorithms take.
        let spki = key.public_key_raw().to_vec();
        let v = verify_alg(&provider, scheme);
        g.bench_function(format!("{name}_sign"), |b| {
            b.iter(|| s.sign(&message).expect("sign"))
        });
        g.bench_function(format!("{name}_verify"), |b| {
            b.iter(|| {
                v.verify_signature(&spki, &message, &signature)
                    .expect("verify")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
