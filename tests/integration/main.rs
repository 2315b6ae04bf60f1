//! The integration tests, one binary. Table of contents:
//!
//! - [`alerting`]: routes, silences (active and expired) and masking through the pipeline; a
//!   storm grouped into one notification; a restart in the middle of retries (each alert once
//!   per output, real webhook receiver and SMTP server); `alert test`; no secret printed.
//! - [`cli`]: the `auditwatch` binary on files: replay with bad input mixed in, golden alerts
//!   for a fixed generated scenario, detector checking and testing, detection quality on
//!   generated traffic, CloudTrail records replayed with `--format`.
//! - [`cloud_attacks`]: the cloud scenario (`tests/scenarios/cloud_attacks.py`) replayed as
//!   gzip CloudTrail log files, OCSF and Okta, each also with `--format auto`: every attack
//!   raises its alert, and the benign history at most one false alert per 100 account-days;
//!   41 AWS attack techniques, each alone in the benign history, raise their alerts.
//! - [`enrichment`]: IP enrichment through `replay`: MMDB files written by mmdb-writer at test
//!   time fill ASN, organisation and country into CloudTrail records (GeoLite2 and ip-to-asn
//!   layouts), AWS ranges mark the provider, `key-new-network` shows them (the service on the
//!   mock cluster with `[enrichment]` too); without a database it judges by network distance
//!   (a new /16); a missing or broken file names its option or key.
//! - [`email`]: the email sink against a real SMTP server (aiosmtpd): STARTTLS with a private
//!   CA and a login, implicit TLS, plain, refused and deferred recipients, a relay down or
//!   silent, and the `.eml` directory.
//! - [`forget`]: `auditwatch forget` over a replayed store: no value of any file names the
//!   account or its keys afterwards; the rest stays; a second run removes nothing.
//! - [`http_sinks`]: the webhook, Slack and PagerDuty sinks against a real HTTP receiver that
//!   verifies signatures with the `standardwebhooks` library: rotation, 500 then 200, 429 with
//!   `Retry-After`, a slow answer, 400, redirects, the APIs' documented fields.
//! - [`delivery`]: alerts and dead letters through the outbox on the mock cluster: a Kafka topic
//!   refusing every produce request (nothing lost, nothing committed past an undelivered dead
//!   letter), a sink blocked on a FIFO (intake and the other sinks go on; the backlog follows).
//! - [`pipeline`]: the service pipeline against librdkafka's in-process mock cluster (fast):
//!   dead letters, alerts topic, offsets, restart from a checkpoint, two instances in one
//!   group, a stale checkpoint behind the group, a format per topic.
//! - [`e2e`]: the `auditwatch run` binary against a real Kafka-protocol broker process (tansu):
//!   garbage, SIGTERM, kill -9 crash and restart compared with an uninterrupted run (Kafka and
//!   file sinks, and the store read back by duckdb and pyarrow: every good event once), two
//!   instances in one group stopped together, `POST /query` on the running service.
//! - [`store`]: the retention store read back by duckdb and pyarrow: `replay --store` (counts
//!   and `sum(bytes)` as computed from the input; a second replay gives the same files) and the
//!   service on the mock cluster (every good event and alert once after a clean run); each
//!   alert's `evidence.sql` run by duckdb over the store.
//! - [`query`]: SQL over a replayed store: golden results (`tests/golden/sql`), errors on one
//!   line, output formats, `review`, and `POST /query` over HTTP (token, read-only, row limit).
//! - [`schemas`]: the JSON Schemas in `schemas/` against the decoder, the alert struct and the
//!   detector loader: field lists both ways, enums, and the same documents fed to both.
//!
//! Shared helpers live in [`support`].

mod alerting;
mod cli;
mod cloud_attacks;
mod delivery;
mod e2e;
mod email;
mod enrichment;
mod forget;
mod http_sinks;
mod pipeline;
mod query;
mod schemas;
mod store;
mod support;
