//! The `cloudtrail` decoder on arbitrary bytes: an event or a precise error, never a panic.
#![no_main]
use auditwatch::input::event::DEFAULT_MAX_EVENT_BYTES;
use auditwatch::input::formats::{decode_as, InputFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_as(InputFormat::Cloudtrail, data, DEFAULT_MAX_EVENT_BYTES);
});
