//! Replay throughput: decode + engine + alert formatting, against plain zero-copy serde_json
//! deserialization of the same lines, in the same run. Fed by `auditwatch gen`.
//!
//! `cargo bench --bench replay` (one thread). The target: replay ≥ 0.6 × serde, and
//! ≥ 600k events/s. The `formats` group measures decoding alone for each input format, on the
//! sample records in `tests/fixtures/` (CloudTrail, OCSF and Okta records are 1-3 kB, native
//! lines about 400 bytes), and `auto` on a mix of native lines and the fixtures of each foreign
//! format (detection is a second pass over each message). `formats/json_floor/<format>` is
//! serde_json checking the same records' syntax and reading nothing: no decoder of serde_json
//! can be faster, so it shows what a format's record size alone costs.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde::Deserialize;

use auditwatch::detection::engine::{Engine, EngineOptions};
use auditwatch::input::event::{decode, DEFAULT_MAX_EVENT_BYTES};
use auditwatch::input::formats::{decode_as, InputFormat};
use auditwatch::synthetic::gen::{generate, GenOptions};

/// The contract's fields, strings borrowed from the input: the fastest honest serde baseline.
#[allow(dead_code)]
#[derive(Deserialize)]
struct PlainEvent<'a> {
    id: Option<&'a str>,
    time: &'a str,
    account: &'a str,
    action: &'a str,
    outcome: &'a str,
    #[serde(borrow)]
    credential: Option<PlainCredential<'a>>,
    #[serde(borrow)]
    source: Option<PlainSource<'a>>,
    #[serde(borrow)]
    target: Option<PlainTarget<'a>>,
    bytes: Option<u64>,
    records: Option<u64>,
    reason: Option<&'a str>,
    tenant: Option<&'a str>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct PlainCredential<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: Option<&'a str>,
    owner: Option<&'a str>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct PlainSource<'a> {
    ip: Option<&'a str>,
    country: Option<&'a str>,
    asn: Option<u64>,
    user_agent: Option<&'a str>,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct PlainTarget<'a> {
    system: Option<&'a str>,
    resource: Option<&'a str>,
}

const LINES: usize = 200_000;

/// Generated traffic split into the history that warms the engine up and the lines measured,
/// so every detector is live while measuring.
fn lines() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut out = Vec::new();
    generate(&GenOptions { seed: 7, accounts: 100, days: 21, ..GenOptions::default() }, &mut out).expect("generate");
    let mut all: Vec<Vec<u8>> = out.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect();
    let start = all.len().saturating_sub(LINES);
    let measured = all.split_off(start);
    (all, measured)
}

fn bench(c: &mut Criterion) {
    let (history, lines) = lines();
    let mean = lines.iter().map(Vec::len).sum::<usize>() / lines.len();
    eprintln!("{} lines measured after {} of history, {mean} bytes per line on average", lines.len(), history.len());
    let mut warm = Engine::new(auditwatch::detection::pack::load().expect("pack"), EngineOptions::default());
    let mut alerts = Vec::new();
    for line in &history {
        if let Ok(event) = decode(line, DEFAULT_MAX_EVENT_BYTES) {
            let _ = warm.process(&event, &mut alerts);
        }
    }
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);
    group.bench_function("serde_zero_copy_baseline", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for line in &lines {
                let e: PlainEvent = serde_json::from_slice(line).expect("valid");
                n += e.bytes.unwrap_or(0) & 1;
            }
            n
        })
    });
    group.bench_function("decode_engine_alerts", |b| {
        b.iter_batched(
            || warm.clone(),
            |mut engine| {
                let mut alerts = Vec::new();
                let mut out = Vec::new();
                for line in &lines {
                    if let Ok(event) = decode(line, DEFAULT_MAX_EVENT_BYTES) {
                        let _ = engine.process(&event, &mut alerts);
                    }
                    for alert in alerts.drain(..) {
                        serde_json::to_writer(&mut out, &alert).expect("serialize");
                    }
                }
                (engine, out)
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

/// The fixture records of one format, each as one compact JSON message.
fn fixtures(dir: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(dir);
    let mut paths: Vec<_> = std::fs::read_dir(&dir).expect("fixtures").map(|e| e.expect("entry").path()).collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let value: serde_json::Value = serde_json::from_slice(&std::fs::read(p).expect("read")).expect("json");
            serde_json::to_vec(&value).expect("compact")
        })
        .collect()
}

fn formats(c: &mut Criterion) {
    let (_, native) = lines();
    let native: Vec<Vec<u8>> = native.into_iter().take(1000).collect();
    let mut group = c.benchmark_group("formats");
    let (cloudtrail, ocsf, okta) = (fixtures("cloudtrail"), fixtures("ocsf"), fixtures("okta"));
    // `auto` on a mix: as many native events as foreign ones, each foreign format alike.
    let foreign: Vec<Vec<u8>> = cloudtrail.iter().chain(&ocsf).chain(&okta).cloned().collect();
    let mix: Vec<Vec<u8>> = native.iter().take(foreign.len()).cloned().chain(foreign).collect();
    for (format, records) in [
        (InputFormat::Native, native),
        (InputFormat::Cloudtrail, cloudtrail),
        (InputFormat::Ocsf, ocsf),
        (InputFormat::Okta, okta),
        (InputFormat::Auto, mix),
    ] {
        group.throughput(Throughput::Elements(records.len() as u64));
        group.bench_function(format.to_string(), |b| {
            b.iter(|| records.iter().filter(|r| decode_as(format, r, DEFAULT_MAX_EVENT_BYTES).is_ok()).count())
        });
        // The floor: serde_json only checking the same records' syntax, reading nothing.
        group.bench_function(format!("json_floor/{format}"), |b| {
            b.iter(|| records.iter().filter(|r| serde_json::from_slice::<serde::de::IgnoredAny>(r).is_ok()).count())
        });
    }
    group.finish();
}

criterion_group!(benches, bench, formats);
criterion_main!(benches);
