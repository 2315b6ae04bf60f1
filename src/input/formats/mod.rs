//! Input formats: each Kafka topic declares how its messages are encoded ([`InputFormat`]), and
//! [`decode_as`] turns one message of that format into the same [`AuditEvent`] the native
//! decoder gives, or a [`DecodeError`].
//!
//! - `native` ([`event::decode`]): the auditwatch contract, `schemas/audit-event.schema.json`.
//! - `cloudtrail` ([`cloudtrail`]): one AWS CloudTrail record per message, bare or in an
//!   EventBridge envelope.
//! - `ocsf` ([`ocsf`]): one OCSF 1.x event per message (API Activity, Authentication, Account
//!   Change, and other classes through the same fields).
//! - `okta` ([`okta`]): one Okta System Log event per message.
//! - `auto` ([`auto`]): each message in whichever of those its fields show.
//!
//! Invariants, the same for every format: pure functions (no I/O, no clock); the size ceiling
//! and the UTF-8 check come first; every rejection names the field by its path *in the source
//! format* (`userIdentity.arn`, `actor.user`) with the same [`DecodeErrorKind`]s as native, so
//! metrics and dead letters read alike; an event without an id of its own gets the id derived
//! from its bytes. The field mappings are tabled in README.md ("Input formats").
//!
//! [`DecodeErrorKind`]: crate::input::event::DecodeErrorKind

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::input::event::{self, AuditEvent, DecodeError};

pub mod auto;
pub mod cloudtrail;
pub mod ocsf;
pub mod okta;

mod json;

/// Encoding of input messages. A closed set: each format has its own decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// One auditwatch audit event as a JSON object per message (`schemas/audit-event.schema.json`).
    #[default]
    Native,
    /// One AWS CloudTrail record per message, bare or in an EventBridge envelope (`detail`). A
    /// Kafka message must hold one record; `replay` splits whole log files (`{"Records": [...]}`,
    /// gzip too) into their records.
    Cloudtrail,
    /// One OCSF 1.x event per message: API Activity (6003), Authentication (3002), Account
    /// Change (3001), and other classes that carry `actor.user` and `api.operation`.
    Ocsf,
    /// One Okta System Log event (`LogEvent`) per message.
    Okta,
    /// Each message in the format its fields show: CloudTrail (`eventVersion` and `eventSource`,
    /// bare or in an EventBridge envelope), OCSF (`class_uid`), Okta (`eventType`, `published`
    /// and `actor`) or native (`time`, `account`, `action` and `outcome`); a message that shows
    /// none is rejected, saying what each format lacks.
    Auto,
}

impl InputFormat {
    pub const ALL: [InputFormat; 5] =
        [InputFormat::Native, InputFormat::Cloudtrail, InputFormat::Ocsf, InputFormat::Okta, InputFormat::Auto];

    /// The name used in the config file and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            InputFormat::Native => "native",
            InputFormat::Cloudtrail => "cloudtrail",
            InputFormat::Ocsf => "ocsf",
            InputFormat::Okta => "okta",
            InputFormat::Auto => "auto",
        }
    }
}

/// Parses the names of [`InputFormat::as_str`] (for the command line).
impl std::str::FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        InputFormat::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| {
            let names: Vec<&str> = InputFormat::ALL.iter().map(|f| f.as_str()).collect();
            format!("unknown input format `{s}`; expected one of: {}", names.join(", "))
        })
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes one message of `format`; `max_bytes` is the size ceiling, as for [`event::decode`].
pub fn decode_as(format: InputFormat, bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    match format {
        InputFormat::Native => event::decode(bytes, max_bytes),
        InputFormat::Cloudtrail => cloudtrail::decode(bytes, max_bytes),
        InputFormat::Ocsf => ocsf::decode(bytes, max_bytes),
        InputFormat::Okta => okta::decode(bytes, max_bytes),
        InputFormat::Auto => auto::decode(bytes, max_bytes),
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
