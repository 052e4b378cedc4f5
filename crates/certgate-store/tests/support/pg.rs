//! A real PostgreSQL for tests: `initdb` + `postgres` from PATH or
//! `/usr/lib/postgresql/*/bin`, in a temp dir, on a free loopback port, as an
//! unprivileged user when the tests run as root (the server refuses root), with its unix
//! socket inside the temp dir. [`shared`] starts one server per test binary, lazily, and
//! [`database`] makes a fresh database on it for each test; [`PgServer::start`] gives a
//! test its own server (to stop and restart it).
//!
//! Cleanup does not rely on destructors of statics: each server runs under a small
//! watchdog shell whose stdin is a pipe from the test process; when the test process
//! exits (however it exits) the pipe closes and the watchdog stops the server and removes
//! its directory. [`PgServer`]'s `Drop` does the same at once.
//!
//! Included by path from the tests of several crates
//! (`#[path = "…/certgate-store/tests/support/pg.rs"] mod pg;`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const INSTALL_HINT: &str = "install postgresql (scripts/test.sh does)";
const SUPERUSER: &str = "certgate";

/// Ports held by this process's servers.
static RESERVED: std::sync::Mutex<std::collections::BTreeSet<u16>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// A running PostgreSQL server owned by the test.
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    /// The loopback TCP port.
    pub port: u16,
    run_as: Option<String>,
    watchdog: Option<Child>,
}

fn bin_dir() -> PathBuf {
    if let Ok(out) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
    {
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // Follow symlinks (/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb): the
        // other tools live next to the real one.
        let real = std::fs::canonicalize(&p).unwrap_or_else(|_| PathBuf::from(&p));
        if let Some(d) = real.parent().filter(|d| d.join("createdb").is_file()) {
            return d.to_path_buf();
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file() && b.join("postgres").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("PostgreSQL not found: {INSTALL_HINT}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl PgServer {
    /// Starts a new server (initdb, then the server on a free port, retrying another
    /// port when the chosen one is taken).
    pub fn start() -> PgServer {
        let bin = bin_dir();
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "certgate-pg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sock")).unwrap();
        let run_as = is_root().then(|| "nobody".to_string());
        if let Some(user) = &run_as {
            let ok = Command::new("chown")
                .args(["-R", user])
                .arg(&dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "chown {} to {user}", dir.display());
        }
        let mut server = PgServer {
            bin,
            dir,
            port: 0,
            run_as,
            watchdog: None,
        };
        let out = server
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(server.dir.join("data"))
            .output()
            .unwrap_or_else(|e| panic!("initdb: {e}: {INSTALL_HINT}"));
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.spawn_on_free_port();
        server
    }

    /// A command run as the server's user.
    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    "--regid=nogroup",
                    "--clear-groups",
                    "--",
                ]);
                c.arg(exe);
                c.current_dir(&self.dir);
                c
            }
            None => Command::new(exe),
        }
    }

    fn spawn_on_free_port(&mut self) {
        // Ports of this process's servers stay reserved while they live (a stopped
        // server must get its port back on restart); other processes start elsewhere
        // (the pid picks the first port) and a taken port is retried with the next.
        let base = (std::process::id() % 40000) as u32;
        for attempt in 0..200u32 {
            let port = ((base + attempt * 997) % 40000 + 20000) as u16;
            {
                let mut taken = RESERVED.lock().unwrap_or_else(|p| p.into_inner());
                if !taken.insert(port) {
                    continue;
                }
            }
            if self.try_start(port) {
                self.port = port;
                return;
            }
            RESERVED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&port);
        }
        panic!(
            "could not start PostgreSQL on any port; see {}",
            self.log().display()
        );
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Starts the server (under its watchdog) on `port`; false when the port is taken.
    fn try_start(&mut self, port: u16) -> bool {
        let _ = std::fs::remove_file(self.log());
        let bin = self.bin.display().to_string();
        let data = self.data().display().to_string();
        let sock = self.dir.join("sock").display().to_string();
        let log = self.log().display().to_string();
        // The watchdog: run the server, and stop it (and remove the directory) when
        // stdin closes or the server exits.
        let script = format!(
            "exec 3<&0; {postgres} -D {data} -p {port} -k {sock} -h 127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
             </dev/null >>{log} 2>&1 & pid=$!; \
             (read _ <&3; kill -INT $pid 2>/dev/null) & \
             wait $pid",
            postgres = sh_quote(&format!("{bin}/postgres")),
            data = sh_quote(&data),
            sock = sh_quote(&sock),
            log = sh_quote(&log),
        );
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("setpriv");
                c.args([
                    &format!("--reuid={user}"),
                    "--regid=nogroup",
                    "--clear-groups",
                    "--",
                    "sh",
                    "-c",
                    &script,
                ]);
                c
            }
            None => {
                let mut c = Command::new("sh");
                c.args(["-c", &script]);
                c
            }
        };
        let child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start postgres: {e}: {INSTALL_HINT}"));
        self.watchdog = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            if log.contains("ready to accept connections") {
                return true;
            }
            let exited = self
                .watchdog
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited || log.contains("could not bind") || log.contains("in use") {
                self.stop_watchdog();
                if log.contains("could not bind") || log.contains("in use") {
                    return false;
                }
                panic!("PostgreSQL did not start:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL start timed out:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop_watchdog(&mut self) {
        if let Some(mut child) = self.watchdog.take() {
            drop(child.stdin.take()); // the watchdog stops the server
            let _ = child.wait();
        }
    }

    /// Stops the server (fast shutdown); [`restart`](Self::restart) brings it back on the
    /// same port with the same data.
    pub fn stop(&mut self) {
        self.stop_watchdog();
        // The server may still be finishing its shutdown: wait for the pid file to go.
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.data().join("postmaster.pid").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the stopped server again on its port.
    pub fn restart(&mut self) {
        let port = self.port;
        assert!(
            self.try_start(port),
            "port {port} taken while PostgreSQL was down"
        );
    }

    /// `postgres://` URL of database `db` over TCP.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `db` (through the unix socket).
    pub fn create_database(&self, db: &str) {
        let out = self
            .command("createdb")
            .args(["-h"])
            .arg(self.dir.join("sock"))
            .args(["-p", &self.port.to_string(), "-U", SUPERUSER, db])
            .output()
            .expect("createdb");
        assert!(
            out.status.success(),
            "createdb {db}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Creates a fresh uniquely named database; answers its URL.
    pub fn fresh_database(&self) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let db = format!(
            "t{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        self.create_database(&db);
        self.url(&db)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
        RESERVED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.port);
    }
}

/// The server shared by every test of this binary (started on first use, stopped when
/// the test process exits).
pub fn shared() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let s = PgServer::start();
        // Make sure the directory goes with the process: the watchdog stops the server
        // when the pipe closes; the directory is removed by a second watchdog.
        let dir = s.dir.display().to_string();
        let data = s.data().display().to_string();
        if let Ok(mut c) = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "read _; i=0; while [ -e {pid} ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; rm -rf {dir}",
                    pid = sh_quote(&format!("{data}/postmaster.pid")),
                    dir = sh_quote(&dir)
                ),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            // Keep the pipe open for the life of the process.
            if let Some(stdin) = c.stdin.take() {
                std::mem::forget(stdin);
            }
            std::mem::forget(c);
        }
        s
    })
}

/// A fresh database on the shared server; answers its `postgres://` URL.
pub fn database() -> String {
    shared().fresh_database()
}
