//! The audit record parser on arbitrary lines: never a panic, and every record it reads turns
//! into an access (or none) without one either.
#![no_main]

use addon_sandbox::learn::{Access, parse_line};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    if let Some(record) = parse_line(&line) {
        if let Some(access) = Access::of(&record) {
            let _ = access.probe();
            let _ = access.describe();
        }
    }
});
