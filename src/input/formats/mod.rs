//! Input formats: each Kafka topic declares how its messages are encoded ([`InputFormat`]), and
//! [`decode_as`] turns one message of that format into the same [`AuditEvent`] the native
//! decoder gives, or a [`DecodeError`].
//!
//! - `native` ([`event::decode`]): the auditwatch contract, `schemas/audit-event.schema.json`.
//! - `cloudtrail` ([`cloudtrail`]): one AWS CloudTrail record per message, bare or in an
//!   EventBridge envelope.
//! - `ocsf` ([`ocsf`]): one OCSF 1.x event per message (API Activity, Authentication, and other
//!   classes through the same fields).
//!
//! Invariants, the same for every format: pure functions (no I/O, no clock); the size ceiling
//! and the UTF-8 check come first; every rejection names the field by its path *in the source
//! format* (`userIdentity.arn`, `actor.user`) with the same [`DecodeErrorKind`]s as native, so
//! metrics and dead letters read alike; an event without an id of its own gets the id derived
//! from its bytes. The field mappings are tabled in README.md ("Input formats").
//!
//! [`DecodeErrorKind`]: crate::input::event::DecodeErrorKind

use crate::config::InputFormat;
use crate::input::event::{self, AuditEvent, DecodeError};

pub mod cloudtrail;
pub mod ocsf;

mod json;

/// Decodes one message of `format`; `max_bytes` is the size ceiling, as for [`event::decode`].
pub fn decode_as(format: InputFormat, bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    match format {
        InputFormat::Native => event::decode(bytes, max_bytes),
        InputFormat::Cloudtrail => cloudtrail::decode(bytes, max_bytes),
        InputFormat::Ocsf => ocsf::decode(bytes, max_bytes),
    }
}

/// The kind of credential an AWS access key id names, from its documented prefix.
fn aws_key_kind(key_id: &str) -> Option<&'static str> {
    if key_id.starts_with("AKIA") {
        Some("api_key")
    } else if key_id.starts_with("ASIA") {
        Some("session_token")
    } else {
        None
    }
}

/// The service part of an AWS endpoint name: `s3.amazonaws.com` → `s3`.
fn aws_service(endpoint: &str) -> &str {
    endpoint.strip_suffix(".amazonaws.com").unwrap_or(endpoint)
}

#[cfg(test)]
mod tests;
