//! Running the `certgate` binary as a process: its stdout and stderr as lines, signals, and
//! bounded waits (no sleeps for synchronisation: every wait is on an event with a deadline).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_certgate");

/// How long any single wait may take.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// A running `certgate`; killed on drop.
pub struct Proc {
    child: Child,
    stdout: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

/// A `Command` for the binary with no admin or recovery variables from the test's environment.
pub fn command(args: &[&str], cwd: &Path) -> Command {
    let mut cmd = certgate_testkit::command(BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_remove("CERTGATE_ADMIN_URL")
        .env_remove("CERTGATE_ADMIN_TOKEN")
        .env_remove("CERTGATE_TRUSTSTORE_FORCE_RECOVERY")
        .env_remove("RUST_LOG");
    cmd
}

impl Proc {
    /// Starts `certgate ARGS` in `cwd`.
    pub fn spawn(args: &[&str], cwd: &Path) -> Proc {
        let mut child = command(args, cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn certgate");
        let out = child.stdout.take().expect("stdout");
        let (tx, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().expect("stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Proc {
            child,
            stdout,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads stdout lines until one contains `marker`; returns every line read so far.
    pub fn read_until(&mut self, marker: &str) -> Vec<String> {
        let end = Instant::now() + DEADLINE;
        while !self.seen.iter().any(|l| l.contains(marker)) {
            let left = end.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => panic!(
                    "no {marker:?} on stdout within {DEADLINE:?}; stdout: {:#?}\nstderr: {}",
                    self.seen,
                    self.stderr()
                ),
            }
        }
        self.seen.clone()
    }

    /// Waits until stderr contains `marker` (bounded); returns all of stderr.
    pub fn wait_stderr(&self, marker: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let err = self.stderr();
            if err.contains(marker) {
                return err;
            }
            assert!(
                Instant::now() < end,
                "no {marker:?} on stderr within {DEADLINE:?}: {err}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a signal (`INT`, `TERM`) with kill(1).
    pub fn signal(&self, sig: &str) {
        let ok = certgate_testkit::command("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// Waits for the process to exit (bounded), then for its stderr to be read to the end.
    pub fn wait(&mut self) -> ExitStatus {
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                // stderr's reader ends at EOF, which follows the exit; wait for it briefly.
                let stop = Instant::now() + Duration::from_secs(5);
                while Arc::strong_count(&self.stderr) > 1 && Instant::now() < stop {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return st;
            }
            assert!(
                Instant::now() < end,
                "certgate did not exit within {DEADLINE:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a command to its end and returns its output; a command still running after
/// [`DEADLINE`] is killed and fails the test (e.g. a node that should have refused to start).
pub fn output(mut cmd: Command) -> std::process::Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_reader = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let end = Instant::now() + DEADLINE;
    let status = loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            break st;
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {DEADLINE:?}: it should have exited");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// Runs one printed shell command line (e.g. a curl command) with `sh -c` in `cwd`, with
/// `extra` appended, and returns its stdout.
pub fn sh(cmdline: &str, extra: &str, cwd: &Path) -> (bool, String) {
    let out = certgate_testkit::command("sh")
        .args(["-c", &format!("{cmdline} {extra}")])
        .current_dir(cwd)
        .env_remove("CERTGATE_ADMIN_URL")
        .env_remove("CERTGATE_ADMIN_TOKEN")
        .output()
        .expect("sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The HTTP status a printed curl command gets.
pub fn curl_status(cmdline: &str, cwd: &Path) -> String {
    sh(
        cmdline,
        "-s -o /dev/null -w '%{http_code}' --max-time 20",
        cwd,
    )
    .1
}
