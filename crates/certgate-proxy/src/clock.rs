//! The wall clock of the freshness rules: a verdict's end (`valid_until`, SPEC §5),
//! certificate dates and CRL nextUpdate are compared against [`Clock::now`], in whole
//! seconds as certificates keep them.
//!
//! Production uses [`SystemClock`] (one vDSO clock read, no system call); tests inject a
//! [`ManualClock`] through [`crate::Runtime::with_clock`] and move it across a notAfter
//! without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rustls_pki_types::UnixTime;

/// A source of "now" for the freshness rules.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, as Unix time.
    fn now(&self) -> UnixTime;
}

/// The system's real-time clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        UnixTime::now()
    }
}

/// A clock that stands still until it is set: for tests of expiry.
#[derive(Debug)]
pub struct ManualClock {
    secs: AtomicU64,
}

impl ManualClock {
    /// A clock reading `secs` seconds after the Unix epoch.
    pub fn at_secs(secs: u64) -> ManualClock {
        ManualClock {
            secs: AtomicU64::new(secs),
        }
    }

    /// Moves the clock to `secs` seconds after the Unix epoch.
    pub fn set_secs(&self, secs: u64) {
        self.secs.store(secs, Ordering::SeqCst);
    }

    /// What the clock reads, in Unix seconds.
    pub fn secs(&self) -> u64 {
        self.secs.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(self.secs()))
    }
}
