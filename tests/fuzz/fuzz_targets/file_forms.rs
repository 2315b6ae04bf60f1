//! A whole input file through `replay`'s reader, with the shipped detectors: gzip, JSON lines,
//! `{"Records": [...]}` log files, arrays and pretty-printed documents, every record decoded
//! with `auto`. Bad input is an error or a dead letter, never a panic.
#![no_main]
use std::sync::LazyLock;

use auditwatch::detection::definition::Detector;
use auditwatch::detection::engine::{Engine, EngineOptions};
use auditwatch::detection::pack;
use auditwatch::input::event::DEFAULT_MAX_EVENT_BYTES;
use auditwatch::input::formats::InputFormat;
use auditwatch::replay::{replay_reader, CountOnly, Decoding};
use libfuzzer_sys::fuzz_target;

static PACK: LazyLock<Vec<Detector>> = LazyLock::new(|| pack::load().expect("the shipped pack loads"));

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(PACK.clone(), EngineOptions::default());
    let decoding = Decoding { format: InputFormat::Auto, max_event_bytes: DEFAULT_MAX_EVENT_BYTES, enricher: None };
    let mut input = data;
    let _ =
        replay_reader(&mut engine, "fuzz", &mut input, decoding, &mut CountOnly, None, &mut |_| Ok(()), &mut |_| {});
});
