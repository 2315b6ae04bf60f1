//! auditwatch: a streaming anomaly detector for the audit logs of automation (service accounts,
//! API keys, OAuth tokens of integrations). This page is the architecture document: the data
//! flow, its invariants, and where each stage lives.
//!
//! ```text
//!  Kafka topics ──► pipeline ──► input::formats ──► detection::engine ──► alerts outbox ──► a worker per output
//!  (or JSON lines  (poll batch,   (native, CloudTrail,  (per-account        (state::outbox,    (alerting: route, silence,
//!   for replay)     offsets)       OCSF, Okta, auto;     baselines,          durable log)       mask, group; sinks: feeds
//!                      │           input::enrich)        detectors,                             and notifiers; retries with
//!                      │               │ bad input       incidents)                             backoff, own cursor)
//!                      │               ▼
//!                      │         dead-letter outbox ──► worker ──► dead-letter topic
//!                      │
//!                      ├──► store (retention: every event, dead letter and alert to Parquet
//!                      │     files by day, written at the checkpoint barrier) ──► query (SQL)
//!                      │
//!                      └──► checkpoint barrier (pipeline::barrier), at a batch boundary:
//!                           capture every participant (engine state, outboxes) ─► make the
//!                           epoch durable (fsync, state/checkpoint.bin) ─► commit its offsets
//!                           (pipeline::offsets, the one owner of offsets)
//! ```
//!
//! Invariants:
//! - **One way through.** Bytes are decoded once into a validated
//!   [`input::event::AuditEvent`]; the [`detection::engine::Engine`] is the only place that
//!   judges and learns; alerts leave as [`detection::alert::Alert`], through the outbox only.
//! - **Pure core.** [`input`] and [`detection`] never read the clock, the network or the disk
//!   (the one exception: [`input::enrich`] reads its databases once, when it is built at start;
//!   enriching an event is then pure).
//!   Event time drives every window and baseline, so a replay of history gives the alerts live
//!   processing would have given.
//! - **Score, then learn.** Each event is judged against the baseline as it was before it.
//! - **Bounded.** Per-account state is fixed-size; accounts, keys and spray sources have a
//!   ceiling; evidence lists are capped; the outbox has a size bound on disk.
//! - **Nothing lost.** Input that cannot be decoded gets a precise
//!   [`input::event::DecodeError`] and goes to the dead-letter destination. An offset is
//!   committed only once a checkpoint holds the state of its event and the alerts and dead
//!   letters it raised are durable in the outboxes (dead letters also confirmed by their topic).
//!   With a store, an offset is committed only once its event is in a durable Parquet file.
//!   A sink counts an alert delivered only once its destination confirmed it (a notifier: once
//!   its durable groups hold it); a slow or dead sink delays only itself.
//! - **Same ids.** Alert ids are deterministic: after a crash the engine replays from the
//!   checkpoint, raises the same ids, and the outbox does not take an id it holds twice.
//!
//! Layout, in the order data flows:
//! - [`input`]: the input contract ([`input::event`]), the formats mapped onto it
//!   ([`input::formats`]), IP enrichment right after decoding ([`input::enrich`]: ASN,
//!   organisation, country, cloud provider), and the one dead-letter record
//!   ([`input::dead_letter`]).
//! - [`detection`]: the pure core: event time, detector definitions and the shipped pack,
//!   baselines, detector logic, the engine (state, dedup, cooldown), the alert contract.
//! - [`replay`]: the engine over files, in order (`auditwatch replay`).
//! - [`series`]: the volume model over a `timestamp,value` CSV (`auditwatch series`).
//! - [`pipeline`]: the service loop (`auditwatch run`): Kafka source, batch decoding,
//!   [`pipeline::offsets`], [`pipeline::barrier`].
//! - [`state`]: what survives a restart: [`state::checkpoint`] (with [`state::codec`]),
//!   [`state::engine_state`], [`state::outbox`].
//! - [`store`]: retention, every event, dead letter and alert as Parquet files (by day, events
//!   sorted by account and time), a participant of the checkpoint barrier; `replay --store` too.
//! - [`query`]: SQL over the store on DataFusion (`auditwatch query`, `auditwatch review`),
//!   read-only.
//! - [`alerting`]: between the outbox and a sink: routes, silences, masking, and grouping into
//!   notifications for the outputs people read.
//! - [`sinks`]: where alerts go, one file per sink behind [`sinks::Sink`] (feeds for machines,
//!   notifiers for people), and the [`sinks::worker`] that drives each.
//! - [`admin`]: Prometheus [`admin::metrics`] and the admin HTTP server ([`admin::http`]).
//! - [`config`]: the TOML file, env layering, secrets, validation; detector files are read from
//!   disk here too ([`config::detectors`]). Config and detector files report what is wrong with
//!   them as [`problem::Problem`]s.
//! - [`synthetic`]: generated traffic with labelled incidents, scoring, and the demo, apart
//!   from the product.

pub mod admin;
pub mod alerting;
pub mod config;
pub mod detection;
pub mod input;
pub mod lock;
pub mod pipeline;
pub mod problem;
pub mod query;
pub mod replay;
pub mod series;
pub mod sinks;
pub mod state;
pub mod store;
pub mod synthetic;
