//! The audit-event contract (input) and its decoder.
//!
//! One JSON object per message or line; the fields are those of `schemas/audit-event.schema.json`
//! (the README has the table). Decoding is zero-copy where the input allows it: strings without escapes
//! are borrowed from the message bytes. Every rejection is a [`DecodeError`] that names the field
//! and the problem, so a dead-letter entry tells the producer exactly what to fix.
//!
//! Unknown top-level fields are ignored (producers add fields over time); `attributes` must be an
//! object and is kept as its text for retention, never interpreted.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::detection::time::{self, Millis};

/// Default ceiling on the size of one message or line.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 1 << 20;
/// Longest `account` or `action`, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

/// One decoded audit event. Strings borrow from the message where possible.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent<'a> {
    pub id: Cow<'a, str>,
    pub time: Millis,
    pub account: Cow<'a, str>,
    pub action: Cow<'a, str>,
    pub outcome: Outcome,
    pub credential: Option<Credential<'a>>,
    pub source: Source<'a>,
    pub target: Target<'a>,
    pub bytes: Option<u64>,
    pub records: Option<u64>,
    pub reason: Option<Cow<'a, str>>,
    pub tenant: Option<Cow<'a, str>>,
    /// The temporary session the credential belongs to, when it is one (an assumed role's).
    pub session: Option<Session<'a>>,
    /// The provider service that made the call: on the account's behalf (a deployment
    /// service acting with a role), or on its own, when it is also the `account`.
    pub invoked_by: Option<Cow<'a, str>>,
    /// Whether the sign-in, or the session the call was made in, used a second factor.
    pub mfa: Option<bool>,
    /// The native contract's `attributes` object as the producer wrote it (the other formats
    /// have none); only retained, never interpreted.
    pub attributes: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Credential<'a> {
    pub id: Cow<'a, str>,
    pub kind: Option<Cow<'a, str>>,
    pub owner: Option<Cow<'a, str>>,
}

/// A temporary session: the account stays the role, the session is told apart by its key
/// (`credential.id`) and its name.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Session<'a> {
    /// The session name (`i-0abc…` for an EC2 instance role, a user or job name otherwise).
    pub name: Cow<'a, str>,
    /// The compute instance the credential was delivered to, for an instance role: the key
    /// belongs on that instance and nowhere else.
    pub instance: Option<Cow<'a, str>>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Source<'a> {
    pub ip: Option<IpAddr>,
    pub country: Option<Cow<'a, str>>,
    pub asn: Option<u32>,
    /// The organisation that holds the ASN (`autonomous_system_organization`).
    pub as_org: Option<Cow<'a, str>>,
    /// The cloud provider that owns the address (`aws`, `gcp`, `azure` when auditwatch marks
    /// it, see [`crate::input::enrich`]; any name when the producer says so).
    pub provider: Option<Cow<'a, str>>,
    pub user_agent: Option<Cow<'a, str>>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Target<'a> {
    pub system: Option<Cow<'a, str>>,
    pub resource: Option<Cow<'a, str>>,
}

/// Credential lifecycle carried in the stream as ordinary events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifecycle {
    Create,
    Rotate,
    Revoke,
}

impl<'a> AuditEvent<'a> {
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or("")
    }

    /// A provider's service acting on its own (`invoked_by` is the account): not an account of
    /// the customer's to baseline.
    pub fn by_provider_service(&self) -> bool {
        self.invoked_by.as_deref() == Some(self.account.as_ref())
    }

    /// `credential.create|rotate|revoke`: the credential object names the key acted on, not a
    /// key presented by the caller.
    pub fn lifecycle(&self) -> Option<Lifecycle> {
        match self.action.as_ref() {
            "credential.create" => Some(Lifecycle::Create),
            "credential.rotate" => Some(Lifecycle::Rotate),
            "credential.revoke" => Some(Lifecycle::Revoke),
            _ => None,
        }
    }
}

/// Why a message was rejected: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    /// Dotted field path, e.g. `source.ip`; `None` when the message as a whole is bad.
    pub field: Option<String>,
    pub problem: String,
}

/// Coarse reason, used as a metric label and in dead-letter entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    TooLarge,
    InvalidUtf8,
    Syntax,
    NotAnObject,
    MissingField,
    InvalidField,
}

impl DecodeErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::TooLarge => "too_large",
            DecodeErrorKind::InvalidUtf8 => "invalid_utf8",
            DecodeErrorKind::Syntax => "malformed_json",
            DecodeErrorKind::NotAnObject => "not_an_object",
            DecodeErrorKind::MissingField => "missing_field",
            DecodeErrorKind::InvalidField => "invalid_field",
        }
    }
}

impl DecodeError {
    pub(crate) fn new(kind: DecodeErrorKind, problem: impl Into<String>) -> Self {
        DecodeError { kind, field: None, problem: problem.into() }
    }
    pub fn too_large(len: usize, max_bytes: usize) -> Self {
        DecodeError::new(DecodeErrorKind::TooLarge, format!("message is {len} bytes, over the limit of {max_bytes}"))
    }
    pub(crate) fn field(kind: DecodeErrorKind, field: &str, problem: impl Into<String>) -> Self {
        DecodeError { kind, field: Some(field.to_string()), problem: problem.into() }
    }
    /// A required field is absent (`field `x`: is required but missing`).
    pub(crate) fn missing(field: &str) -> Self {
        DecodeError::field(DecodeErrorKind::MissingField, field, "is required but missing")
    }
    /// A field is present but unusable.
    pub(crate) fn invalid(field: &str, problem: impl Into<String>) -> Self {
        DecodeError::field(DecodeErrorKind::InvalidField, field, problem)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "field `{field}`: {}", self.problem),
            None => f.write_str(&self.problem),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decode one message. `max_bytes` is the size ceiling (see [`DEFAULT_MAX_EVENT_BYTES`]).
pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    let text = checked_text(bytes, max_bytes)?;
    let mut side = None;
    let mut de = serde_json::Deserializer::from_str(text);
    let result = EventSeed { error: &mut side }.deserialize(&mut de).and_then(|event| de.end().map(|()| event));
    match result {
        Ok(event) => Ok(event.finish(bytes)),
        Err(e) => {
            // Broken JSON inside a field is still broken JSON (the field helps find it); the
            // typed pass cannot tell, so a plain syntax pass decides, on this error path only.
            if let Err(syntax) = serde_json::from_str::<IgnoredAny>(text) {
                return Err(DecodeError {
                    kind: DecodeErrorKind::Syntax,
                    field: side.and_then(|s| s.field),
                    problem: format!("malformed JSON: {syntax}"),
                });
            }
            Err(side.unwrap_or_else(|| syntax_error(&e)))
        }
    }
}

/// The checks every input format makes first: the size ceiling, then UTF-8.
pub(crate) fn checked_text(bytes: &[u8], max_bytes: usize) -> Result<&str, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::too_large(bytes.len(), max_bytes));
    }
    // One vectorized UTF-8 pass up front is cheaper than serde_json checking string by string.
    std::str::from_utf8(bytes).map_err(|e| {
        DecodeError::new(
            DecodeErrorKind::InvalidUtf8,
            format!("message is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// The id of an event that carries none: stable across restarts and replays, because the same
/// bytes give the same id.
pub(crate) fn derived_id(bytes: &[u8]) -> String {
    format!("h-{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

fn syntax_error(e: &serde_json::Error) -> DecodeError {
    if e.is_data() {
        // The top level had the wrong type (array, string, number...).
        DecodeError::new(DecodeErrorKind::NotAnObject, format!("expected a JSON object: {}", strip_position(e)))
    } else {
        DecodeError::new(DecodeErrorKind::Syntax, format!("malformed JSON: {e}"))
    }
}

/// serde_json appends " at line L column C"; inside a field error the field name says more.
fn strip_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

mod visitor;

pub(crate) use visitor::truncate;
use visitor::EventSeed;

#[cfg(test)]
mod tests;
