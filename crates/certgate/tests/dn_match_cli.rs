//! `certgate dn-match` (SPEC §9), run as the real binary: what it prints, its exit status
//! (0 match, 1 no match, 2 bad input) and the messages on stderr.

use std::path::Path;
use std::process::Output;

const SPEC_DN: &str = "CN=localhost,C=IND,ST=KA,L=BLR,O=Boomi,OU=Boomi,E=abc@test.com";

fn dn_match(args: &[&str]) -> Output {
    certgate_testkit::command(env!("CARGO_BIN_EXE_certgate"))
        .arg("dn-match")
        .args(args)
        .env_remove("CERTGATE_ADMIN_URL")
        .env_remove("CERTGATE_ADMIN_TOKEN")
        .output()
        .expect("run certgate")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

/// A self-signed certificate whose subject is `CN=Zoë Client,O=Acme\, Inc.,C=IN`, written
/// as PEM and as DER into `dir`.
fn write_cert(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["client.example".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CountryName, "IN");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Acme, Inc.");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Zoë Client");
    let cert = params.self_signed(&key).unwrap();
    let pem = dir.join("client.pem");
    let der = dir.join("client.der");
    std::fs::write(&pem, cert.pem()).unwrap();
    std::fs::write(&der, cert.der()).unwrap();
    (pem, der)
}

#[test]
fn dn_prints_canonical_form_and_first_match() {
    let out = dn_match(&[
        "--dn",
        SPEC_DN,
        "**,O=Other,**",
        "**,O=Boomi,**",
        "CN=localhost,**",
    ]);
    assert_eq!(
        stdout(&out),
        format!("dn: {SPEC_DN}\nmatch: **,O=Boomi,**\n")
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn dn_input_is_printed_canonically() {
    let out = dn_match(&[
        "--dn",
        "Email=abc@test.com, OU = Boomi , cn=Zo\\C3\\AB \\+ co",
        "Email=abc@test.com, OU=boomi, CN=zoë \\+ CO",
    ]);
    assert_eq!(
        stdout(&out),
        "dn: E=abc@test.com,OU=Boomi,CN=Zoë \\+ co\nmatch: Email=abc@test.com, OU=boomi, CN=zoë \\+ CO\n"
    );
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn no_match_exits_1() {
    let out = dn_match(&["--dn", SPEC_DN, "CN=*", "CN=localhost,O=Boomi"]);
    assert_eq!(stdout(&out), format!("dn: {SPEC_DN}\nno match\n"));
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn cert_pem_and_der_use_the_subject() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, der) = write_cert(dir.path());
    for file in [&pem, &der] {
        let out = dn_match(&[
            "--cert",
            file.to_str().unwrap(),
            "CN=other,**",
            "C=IN,O=acme\\, inc.,CN=zoë*",
        ]);
        assert_eq!(
            stdout(&out),
            "dn: CN=Zoë Client,O=Acme\\, Inc.,C=IN\nmatch: C=IN,O=acme\\, inc.,CN=zoë*\n",
            "file {}",
            file.display()
        );
        assert_eq!(out.status.code(), Some(0));
    }
}

#[test]
fn bad_pattern_exits_2_with_the_pattern_error() {
    let out = dn_match(&["--dn", SPEC_DN, "CN=localhost,**", "CN=a,,O=b"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("invalid DN pattern \"CN=a,,O=b\" at position 6: empty RDN"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn bad_dn_exits_2() {
    let out = dn_match(&["--dn", "FOO=x,CN=a", "**"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out)
            .contains("invalid DN \"FOO=x,CN=a\" at position 1: unknown attribute type \"FOO\""),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn unreadable_or_invalid_cert_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let out = dn_match(&["--cert", missing.to_str().unwrap(), "**"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains(&format!(
            "cannot read certificate file {}",
            missing.display()
        )),
        "stderr: {}",
        stderr(&out)
    );

    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let out = dn_match(&["--cert", garbage.to_str().unwrap(), "**"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("invalid certificate file {}", garbage.display())),
        "stderr: {}",
        stderr(&out)
    );

    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let out = dn_match(&["--cert", empty.to_str().unwrap(), "**"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no certificate found"),
        "stderr: {}",
        stderr(&out)
    );
}

#[test]
fn missing_input_exits_2() {
    let out = dn_match(&["CN=*"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stdout(&out), "");
    assert!(
        stderr(&out).contains("give the DN to test with --dn DN or --cert FILE"),
        "stderr: {}",
        stderr(&out)
    );

    // Both inputs, or no pattern: refused by the argument parser, also with 2.
    let out = dn_match(&["--dn", "CN=a", "--cert", "x.pem", "CN=*"]);
    assert_eq!(out.status.code(), Some(2));
    let out = dn_match(&["--dn", "CN=a"]);
    assert_eq!(out.status.code(), Some(2));
}
