//! The native decoder on arbitrary bytes: an event or a precise error, never a panic.
#![no_main]
use auditwatch::input::event::{decode, DEFAULT_MAX_EVENT_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode(data, DEFAULT_MAX_EVENT_BYTES);
});
