//! Test support shared by the tests of every certgate crate (a dev-dependency only).
//!
//! It owns what must be the same in every test that starts a real program: today the
//! isolation of child processes from the developer's environment. Tests talk to loopback
//! only, so a proxy from the environment (`HTTP_PROXY`, …) would send curl's, reqwest's
//! or certgate's own CLI requests elsewhere and make a test pass or fail for reasons of
//! the machine, not of the code.

use std::ffi::OsStr;

/// The environment variables through which curl, reqwest and the certgate CLI pick a
/// proxy, in both spellings; every child a test starts has them removed.
pub const PROXY_VARS: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
];

/// A [`std::process::Command`] for `program` without the [`PROXY_VARS`].
pub fn command(program: impl AsRef<OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// A [`tokio::process::Command`] for `program` without the [`PROXY_VARS`].
pub fn tokio_command(program: impl AsRef<OsStr>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

#[cfg(test)]
mod tests {
    #[test]
    fn children_do_not_see_the_proxy_of_the_test_process() {
        // The only test of this crate, so no other thread reads the environment.
        for var in super::PROXY_VARS {
            std::env::set_var(var, "http://192.0.2.1:3128");
        }
        std::env::set_var("CERTGATE_TESTKIT_KEPT", "yes");
        for out in [
            super::command("env").output().expect("run env"),
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(async { super::tokio_command("env").output().await })
                .expect("run env"),
        ] {
            let env = String::from_utf8_lossy(&out.stdout);
            assert!(
                env.lines().any(|l| l == "CERTGATE_TESTKIT_KEPT=yes"),
                "{env}"
            );
            for var in super::PROXY_VARS {
                let leaked = env.lines().any(|l| l.starts_with(&format!("{var}=")));
                assert!(!leaked, "{var} reached the child: {env}");
            }
        }
    }
}
