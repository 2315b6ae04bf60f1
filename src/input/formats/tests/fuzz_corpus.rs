//! The fuzz corpora (`tests/fuzz/corpus/<target>/`), replayed through the same calls as their
//! cargo-fuzz targets on every `cargo test`: the inputs that found new paths, and any that once
//! crashed a decoder, keep being checked without a fuzzer. Seeds (`seed-*`, the fixtures) must
//! decode; every other input must give an event or an error that names its problem.

use std::path::PathBuf;

use super::*;
use crate::detection::engine::{Engine, EngineOptions};
use crate::input::formats::auto::detect;
use crate::replay::{replay_reader, CountOnly, Decoding};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus").join(target);
    let mut inputs: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap())
        })
        .collect();
    inputs.sort();
    assert!(inputs.iter().any(|(name, _)| name.starts_with("seed-")), "{}: no seeds", dir.display());
    inputs
}

#[test]
fn every_decoders_fuzz_corpus_decodes_or_names_its_problem() {
    let targets = [
        ("native", InputFormat::Native),
        ("cloudtrail", InputFormat::Cloudtrail),
        ("ocsf", InputFormat::Ocsf),
        ("okta", InputFormat::Okta),
        ("auto", InputFormat::Auto),
    ];
    for (target, format) in targets {
        for (name, bytes) in corpus(target) {
            match decode_as(format, &bytes, DEFAULT_MAX_EVENT_BYTES) {
                Ok(event) => assert!(!event.account.is_empty() && !event.id.is_empty(), "{target}/{name}"),
                Err(e) => {
                    assert!(!name.starts_with("seed-"), "{target}/{name}: a seed must decode: {e}");
                    assert!(!e.problem.is_empty(), "{target}/{name}: an error without a problem");
                }
            }
            if target == "auto" && name.starts_with("seed-") {
                assert!(detect(&bytes, DEFAULT_MAX_EVENT_BYTES).is_ok(), "auto/{name}");
            }
        }
    }
}

#[test]
fn the_file_forms_fuzz_corpus_replays_without_losing_a_record() {
    let pack = crate::detection::pack::load().unwrap();
    for (name, bytes) in corpus("file_forms") {
        let mut engine = Engine::new(pack.clone(), EngineOptions::default());
        let decoding = Decoding { format: InputFormat::Auto, max_event_bytes: DEFAULT_MAX_EVENT_BYTES, enricher: None };
        let mut input = bytes.as_slice();
        let result =
            replay_reader(&mut engine, &name, &mut input, decoding, &mut CountOnly, None, &mut |_| Ok(()), &mut |_| {});
        match result {
            // Every line or record is an event or a dead letter.
            Ok(summary) => {
                assert!(summary.decoded + summary.rejected <= summary.lines + summary.records, "{name}: {summary:?}");
                if name.starts_with("seed-") {
                    assert!(summary.events > 0 && summary.rejected == 0, "{name}: {summary:?}");
                }
            }
            Err(e) => {
                assert!(!name.starts_with("seed-"), "{name}: a seed must replay: {e}");
                assert!(!e.to_string().is_empty(), "{name}");
            }
        }
    }
}
