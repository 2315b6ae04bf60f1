//! auditwatch: a streaming anomaly detector for the audit logs of automation (service accounts,
//! API keys, OAuth tokens of integrations).
//!
//! ```text
//!  JSON lines / Kafka ──► formats::decode_as ──► engine::Engine ──► alert::Alert ──► sinks
//!                         (native, CloudTrail,       │  per-account baselines    (stdout,
//!                          OCSF)  │ bad input        │  (baseline), detectors    JSON lines,
//!                                 ▼                  │  (detect/*), incidents    Kafka)
//!                           dead letter              ▼
//!                           (reason, source, raw)  EngineStats (metrics, summaries)
//! ```
//!
//! Invariants:
//! - **One way through.** Bytes are decoded once into a validated [`event::AuditEvent`]; the
//!   [`engine::Engine`] is the only place that holds state; alerts leave as [`alert::Alert`].
//! - **Pure core.** `event`, `baseline`, `detect`, `engine` and `definition` never read the
//!   clock, the network or the disk. Event time drives every window and baseline, so a replay
//!   of history gives the alerts live processing would have given.
//! - **Score, then learn.** Each event is judged against the baseline as it was before it.
//! - **Bounded.** Per-account state is fixed-size, the number of accounts, keys and spray
//!   sources has a ceiling, and evidence lists are capped.
//! - **Nothing lost.** Input that cannot be decoded gets a precise [`event::DecodeError`] and
//!   goes to the dead-letter destination; the stream goes on.
//!
//! Layout, in the order data flows: [`time`] (event time, weeks, durations), [`event`] (the
//! input contract), [`formats`] (CloudTrail and OCSF messages mapped onto it, chosen per topic
//! by [`formats::decode_as`]), [`definition`] and [`schedule`] (detector files), [`baseline`]
//! (what is normal per account and key), [`detect`] (the detector logic per category), [`engine`] (state,
//! dedup, cooldown), [`alert`] (the output contract), [`replay`] (JSON lines in, alerts out),
//! [`pack`] (the shipped detectors), [`inline_test`] (tests inside detector files),
//! [`gen`]/[`eval`] (synthetic traffic with labelled incidents, and scoring against it).
//!
//! The service around the engine (`auditwatch run`, `auditwatch demo`): [`config`] (the TOML
//! file, env layering, secrets), [`service`] (the pipeline: Kafka in, engine, outputs,
//! checkpoints, offset commits), [`kafka`] (client settings and callbacks), [`outputs`]
//! (stdout, file, Kafka), [`checkpoint`] + [`codec`] (the durable state format), [`ledger`]
//! (alerts already delivered), [`metrics`] + [`admin`] (Prometheus and health over HTTP),
//! [`demo`] (all of it on an in-process broker). Both the config and the detector files report
//! what is wrong with them as [`problem::Problem`]s.

pub mod admin;
pub mod config;
pub mod detection;
pub mod input;
pub mod pipeline;
pub mod problem;
pub mod replay;
pub mod sinks;
pub mod state;
pub mod synthetic;
