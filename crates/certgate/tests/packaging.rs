//! The files in `packaging/`: the systemd unit passes `systemd-analyze verify` without a single
//! complaint, and the Containerfile's runtime stage runs as a non-root user with the data dir as a
//! volume and the shipped configuration file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// `systemd-analyze verify` on `unit` (with ExecStart pointed at the built binary, since verify
/// checks that the executable exists); returns what it printed about the unit.
fn verify(unit_text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("certgate.service");
    let text = unit_text.replace("/usr/local/bin/certgate", env!("CARGO_BIN_EXE_certgate"));
    std::fs::write(&unit, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("run systemd-analyze");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{printed}"
    );
    // verify exits 0 even for a value it ignores; every line naming the unit is a complaint.
    printed
        .lines()
        .filter(|l| l.contains("certgate.service"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn systemd_unit_verifies_cleanly() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        // The issue asks for this check where the tool exists; say loudly that it did not run.
        eprintln!("NOT CHECKED: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let unit = std::fs::read_to_string(repo_file("packaging/certgate.service")).unwrap();
    let complaints = verify(&unit);
    assert!(
        complaints.is_empty(),
        "systemd-analyze complained:\n{complaints}"
    );
    // The check can fail: a bad value in a copy is reported.
    let broken = unit.replace("ProtectSystem=strict", "ProtectSystem=bogus");
    assert!(
        verify(&broken).contains("ProtectSystem") || verify(&broken).contains("protect system"),
        "a broken unit went unnoticed"
    );
    for hardening in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "UMask=0077",
        "StateDirectoryMode=0700",
        "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
    ] {
        assert!(unit.contains(hardening), "unit lost {hardening}");
    }
}

#[test]
fn containerfile_runs_unprivileged_with_the_data_dir_as_a_volume() {
    let text = std::fs::read_to_string(repo_file("packaging/Containerfile")).unwrap();
    let runtime = text
        .rsplit_once("\nFROM ")
        .map(|(_, stage)| stage)
        .expect("a multi-stage Containerfile");
    let user = runtime
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap().trim();
    assert!(uid != "0" && uid != "root", "runs as root: USER {user}");
    assert!(runtime.contains("VOLUME [\"/var/lib/certgate\"]"));
    assert!(runtime.contains("COPY packaging/container.toml /etc/certgate/certgate.toml"));

    // The configuration it ships names the volume as the data dir and is valid TOML.
    let config = std::fs::read_to_string(repo_file("packaging/container.toml")).unwrap();
    let table: toml::Table = config.parse().expect("container.toml is TOML");
    assert_eq!(table["data_dir"].as_str(), Some("/var/lib/certgate"));
}
