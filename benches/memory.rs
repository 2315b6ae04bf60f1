//! Steady-state memory per active account, measured with 100k accounts, and engine speed with
//! that many accounts live. A counting global allocator reports the bytes the engine holds.
//!
//! `cargo bench --bench memory`. The issue's target: 1 KiB or less per active account.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use auditwatch::detection::engine::{Engine, EngineOptions};
use auditwatch::detection::time::{format_rfc3339, parse_rfc3339, DAY, HOUR, MINUTE};
use auditwatch::input::event::{decode, DEFAULT_MAX_EVENT_BYTES};

struct Counting;

static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ALLOCATED.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ACCOUNTS: usize = 100_000;

/// Two weeks of traffic for each account: a daily active hour, its own key and network, a few
/// failures for one account in ten, so every structure an account can own is populated.
fn events(days: i64) -> Vec<String> {
    let start = parse_rfc3339("2026-01-05T00:00:00Z").unwrap();
    let mut out = Vec::with_capacity(ACCOUNTS * days as usize);
    for day in 0..days {
        for slot in 0..24 {
            for a in (slot..ACCOUNTS).step_by(24) {
                let t = start + day * DAY + slot as i64 * HOUR + (a % 60) as i64 * MINUTE;
                let outcome = if a % 10 == 0 && day % 3 == 0 { "failure" } else { "success" };
                out.push(format!(
                    r#"{{"id":"e{day}-{a}","time":"{}","account":"svc-account-{a:06}","action":"crm.contacts.read","outcome":"{outcome}","credential":{{"id":"AKIA{a:012}","type":"api_key","owner":"svc-account-{a:06}"}},"source":{{"ip":"10.{}.{}.{}","asn":{},"country":"US","user_agent":"sync/2.1"}},"target":{{"system":"crm","resource":"contacts"}},"bytes":{},"records":{},"tenant":"acme"}}"#,
                    format_rfc3339(t),
                    a % 250,
                    a / 250 % 250,
                    day % 200,
                    64500 + a % 50,
                    1000 + a * 7 % 100_000,
                    10 + a % 100
                ));
            }
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let warm = events(14);
    let detectors = auditwatch::detection::pack::load().expect("pack");
    let before = ALLOCATED.load(Ordering::Relaxed);
    let mut engine = Engine::new(detectors, EngineOptions::default());
    let mut alerts = Vec::new();
    for line in &warm {
        let event = decode(line.as_bytes(), DEFAULT_MAX_EVENT_BYTES).expect("valid");
        engine.process(&event, &mut alerts).expect("in order");
        alerts.clear();
    }
    let held = ALLOCATED.load(Ordering::Relaxed) - before;
    eprintln!(
        "memory: {} accounts, {} credentials, {} bytes held by the engine = {} bytes per active account",
        engine.accounts_tracked(),
        engine.credentials_tracked(),
        held,
        held / engine.accounts_tracked() as isize
    );
    // One more day, judged by the warm engine, for the per-event speed with 100k accounts live.
    let next: Vec<String> = events(15).split_off(warm.len());
    let mut group = c.benchmark_group("engine_100k_accounts");
    group.throughput(Throughput::Elements(next.len() as u64));
    group.sample_size(10);
    group.bench_function("decode_and_process_one_day", |b| {
        b.iter_batched(
            || engine.clone(),
            |mut engine| {
                let mut alerts = Vec::new();
                for line in &next {
                    if let Ok(event) = decode(line.as_bytes(), DEFAULT_MAX_EVENT_BYTES) {
                        let _ = engine.process(&event, &mut alerts);
                    }
                    alerts.clear();
                }
                engine
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
