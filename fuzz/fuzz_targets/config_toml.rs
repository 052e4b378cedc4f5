//! Fuzzes the configuration file parser (SPEC §10) of the `certgate` binary: any text must be
//! refused with a message or accepted, never panic. The binary crate has no library, so its
//! `config.rs` is compiled into this target as a module.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../crates/certgate/src/config.rs"]
mod config;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cfg) = config::Config::parse(text) {
            // What parsed must yield a store URL without panicking.
            let _ = cfg.store_url();
        }
    }
});
