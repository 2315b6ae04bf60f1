//! The audit-event contract (input) and its decoder.
//!
//! One JSON object per message or line; the fields are those of `schemas/audit-event.schema.json`
//! (see DESIGN.md). Decoding is zero-copy where the input allows it: strings without escapes
//! are borrowed from the message bytes. Every rejection is a [`DecodeError`] that names the field
//! and the problem, so a dead-letter entry tells the producer exactly what to fix.
//!
//! Unknown top-level fields are ignored (producers add fields over time); `attributes` must be an
//! object and is kept in the raw message only, never interpreted.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::time::{self, Millis};

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
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Credential<'a> {
    pub id: Cow<'a, str>,
    pub kind: Option<Cow<'a, str>>,
    pub owner: Option<Cow<'a, str>>,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Source<'a> {
    pub ip: Option<IpAddr>,
    pub country: Option<Cow<'a, str>>,
    pub asn: Option<u32>,
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

/// An event whose `id` may still be missing; `finish` derives it from the message bytes.
struct Partial<'a> {
    event: AuditEvent<'a>,
    has_id: bool,
}

impl<'a> Partial<'a> {
    fn finish(mut self, bytes: &[u8]) -> AuditEvent<'a> {
        if !self.has_id {
            self.event.id = Cow::Owned(derived_id(bytes));
        }
        self.event
    }
}

/// Carries a precise error out of serde, which only lets visitors return strings.
struct EventSeed<'e> {
    error: &'e mut Option<DecodeError>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Partial<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EventVisitor { error: self.error })
    }
}

struct EventVisitor<'e> {
    error: &'e mut Option<DecodeError>,
}

impl EventVisitor<'_> {
    fn fail<E: de::Error>(&mut self, err: DecodeError) -> E {
        let message = err.to_string();
        *self.error = Some(err);
        E::custom(message)
    }
}

macro_rules! field_value {
    ($self:ident, $map:ident, $name:expr, $ty:ty) => {
        match $map.next_value::<$ty>() {
            Ok(v) => v,
            Err(e) => return Err($self.fail(field_error($name, e))),
        }
    };
}

fn field_error<E: fmt::Display>(field: &str, e: E) -> DecodeError {
    let s = e.to_string();
    let s = match s.rfind(" at line ") {
        Some(i) => &s[..i],
        None => &s,
    };
    // Errors from nested objects already carry their own dotted path.
    match s.strip_prefix("field `") {
        Some(rest) => match rest.split_once("`: ") {
            Some((inner, problem)) => {
                DecodeError::field(DecodeErrorKind::InvalidField, &format!("{field}.{inner}"), problem)
            }
            None => DecodeError::field(DecodeErrorKind::InvalidField, field, s),
        },
        None => DecodeError::field(DecodeErrorKind::InvalidField, field, s),
    }
}

impl<'de> Visitor<'de> for EventVisitor<'_> {
    type Value = Partial<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object (one audit event)")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        let mut time = None;
        let mut account = None;
        let mut action = None;
        let mut outcome = None;
        let mut credential = None;
        let mut source = None;
        let mut target = None;
        let mut bytes = None;
        let mut records = None;
        let mut reason = None;
        let mut tenant = None;
        let mut seen = 0u32;
        while let Some(key) = map.next_key::<Str<'de>>()? {
            let key = key.0;
            let bit = match key.as_ref() {
                "id" => 0,
                "time" => 1,
                "account" => 2,
                "action" => 3,
                "outcome" => 4,
                "credential" => 5,
                "source" => 6,
                "target" => 7,
                "bytes" => 8,
                "records" => 9,
                "reason" => 10,
                "tenant" => 11,
                "attributes" => 12,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if seen & (1 << bit) != 0 {
                return Err(self.fail(DecodeError::field(DecodeErrorKind::InvalidField, &key, "appears twice")));
            }
            seen |= 1 << bit;
            match bit {
                0 => id = Some(field_value!(self, map, "id", Str<'de>).0),
                1 => time = Some(field_value!(self, map, "time", EventTime).0),
                2 => account = Some(field_value!(self, map, "account", Name<'de>).0),
                3 => action = Some(field_value!(self, map, "action", Name<'de>).0),
                4 => outcome = Some(field_value!(self, map, "outcome", Outcome)),
                5 => credential = field_value!(self, map, "credential", Option<Credential<'de>>),
                6 => source = field_value!(self, map, "source", Option<Source<'de>>),
                7 => target = field_value!(self, map, "target", Option<Target<'de>>),
                8 => bytes = field_value!(self, map, "bytes", Option<u64>),
                9 => records = field_value!(self, map, "records", Option<u64>),
                10 => reason = field_value!(self, map, "reason", Option<Str<'de>>).map(|s| s.0),
                11 => tenant = field_value!(self, map, "tenant", Option<Str<'de>>).map(|s| s.0),
                _ => {
                    field_value!(self, map, "attributes", Option<ObjectOnly>);
                }
            }
        }
        let missing = |name: &str| DecodeError::field(DecodeErrorKind::MissingField, name, "is required but missing");
        let Some(time) = time else { return Err(self.fail(missing("time"))) };
        let Some(account) = account else { return Err(self.fail(missing("account"))) };
        let Some(action) = action else { return Err(self.fail(missing("action"))) };
        let Some(outcome) = outcome else { return Err(self.fail(missing("outcome"))) };
        Ok(Partial {
            has_id: id.is_some(),
            event: AuditEvent {
                id: id.unwrap_or(Cow::Borrowed("")),
                time,
                account,
                action,
                outcome,
                credential,
                source: source.unwrap_or_default(),
                target: target.unwrap_or_default(),
                bytes,
                records,
                reason,
                tenant,
            },
        })
    }
}

/// A string borrowed from the input when it has no escapes.
struct Str<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A non-empty string of at most 256 characters (account and action names).
struct Name<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Str::deserialize(d)?.0;
        if s.is_empty() {
            return Err(de::Error::custom("must not be empty"));
        }
        if s.len() > MAX_NAME_CHARS && s.chars().count() > MAX_NAME_CHARS {
            return Err(de::Error::custom(format!("longer than {MAX_NAME_CHARS} characters")));
        }
        Ok(Name(s))
    }
}

/// `time`: an RFC 3339 string with offset, or integer epoch milliseconds.
struct EventTime(Millis);

impl<'de> serde::Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or integer epoch milliseconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                time::parse_rfc3339(v)
                    .map(EventTime)
                    .map_err(|why| E::custom(format!("`{}` is not a valid time: {why}", truncate(v, 64))))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                match i64::try_from(v) {
                    Ok(ms) if ms <= time::MAX_TIME => Ok(EventTime(ms)),
                    _ => Err(E::custom(format!("{v} is out of range for epoch milliseconds"))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Err(E::custom(format!("{v} is before 1970")))
            }
        }
        d.deserialize_any(V)
    }
}

/// At most `max` characters of `s`, for quoting input in error messages.
pub(crate) fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `attributes`: any JSON object, skipped without allocating.
struct ObjectOnly;

impl<'de> serde::Deserialize<'de> for ObjectOnly {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ObjectOnly;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ObjectOnly)
            }
        }
        d.deserialize_map(V)
    }
}

/// Visits a nested object whose fields are all optional strings (or handled by `on_field`),
/// reporting errors as `field `inner`: problem` so the parent can build a dotted path.
fn visit_object<'de, A: MapAccess<'de>>(
    mut map: A,
    mut on_field: impl FnMut(&str, &mut A) -> Result<bool, A::Error>,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key::<Str<'de>>()? {
        if !on_field(&key.0, &mut map)? {
            map.next_value::<IgnoredAny>()?;
        }
    }
    Ok(())
}

fn nested<'de, T: serde::Deserialize<'de>, A: MapAccess<'de>>(map: &mut A, name: &str) -> Result<T, A::Error> {
    map.next_value::<T>().map_err(|e| {
        let problem = e.to_string();
        let problem = problem.rfind(" at line ").map_or(problem.as_str(), |i| &problem[..i]).to_string();
        de::Error::custom(format!("field `{name}`: {problem}"))
    })
}

impl<'de> serde::Deserialize<'de> for Credential<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Credential<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {id, type, owner}")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut c = Credential::default();
                let mut id = None;
                visit_object(map, |key, map| {
                    match key {
                        "id" => id = Some(nested::<Name, _>(map, "id")?.0),
                        "type" => c.kind = nested::<Option<Str>, _>(map, "type")?.map(|s| s.0),
                        "owner" => c.owner = nested::<Option<Str>, _>(map, "owner")?.map(|s| s.0),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                c.id = id.ok_or_else(|| de::Error::custom("field `id`: is required when `credential` is present"))?;
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> serde::Deserialize<'de> for Source<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Source<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {ip, country, asn, user_agent}")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut s = Source::default();
                visit_object(map, |key, map| {
                    match key {
                        "ip" => s.ip = nested::<Option<Ip>, _>(map, "ip")?.map(|ip| ip.0),
                        "country" => s.country = nested::<Option<Str>, _>(map, "country")?.map(|s| s.0),
                        "asn" => s.asn = nested::<Option<Asn>, _>(map, "asn")?.map(|a| a.0),
                        "user_agent" => s.user_agent = nested::<Option<Str>, _>(map, "user_agent")?.map(|s| s.0),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> serde::Deserialize<'de> for Target<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Target<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {system, resource}")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut t = Target::default();
                visit_object(map, |key, map| {
                    match key {
                        "system" => t.system = nested::<Option<Str>, _>(map, "system")?.map(|s| s.0),
                        "resource" => t.resource = nested::<Option<Str>, _>(map, "resource")?.map(|s| s.0),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                Ok(t)
            }
        }
        d.deserialize_map(V)
    }
}

struct Ip(IpAddr);

impl<'de> serde::Deserialize<'de> for Ip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Str::deserialize(d)?.0;
        s.parse().map(Ip).map_err(|_| de::Error::custom(format!("`{}` is not an IP address", truncate(&s, 64))))
    }
}

/// `asn`: 64500, "64500" or "AS64500".
struct Asn(u32);

impl<'de> serde::Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Asn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number (64500 or \"AS64500\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Asn, E> {
                u32::try_from(v).map(Asn).map_err(|_| E::custom(format!("{v} is not a 32-bit AS number")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Asn, E> {
                Err(E::custom(format!("{v} is not an AS number")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Asn, E> {
                let digits = v.strip_prefix("AS").or_else(|| v.strip_prefix("as")).unwrap_or(v);
                digits.parse().map(Asn).map_err(|_| E::custom(format!("`{}` is not an AS number", truncate(v, 32))))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"id":"e1","time":"2026-01-19T03:12:45.123Z","account":"svc-crm","action":"contacts.export","outcome":"success",
        "credential":{"id":"AKIA1","type":"api_key","owner":"svc-crm"},"source":{"ip":"203.0.113.7","country":"DE","asn":"AS64500","user_agent":"crm/1.0"},
        "target":{"system":"crm","resource":"contacts"},"bytes":1200,"records":3,"tenant":"acme","attributes":{"k":[1,2]},"extra":true}"#;

    fn err(input: &str) -> DecodeError {
        decode(input.as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap_err()
    }

    fn field_err(input: &str) -> (String, String) {
        let e = err(input);
        (e.field.clone().unwrap_or_default(), e.problem)
    }

    #[test]
    fn decodes_every_field_zero_copy() {
        let e = decode(GOOD.as_bytes(), DEFAULT_MAX_EVENT_BYTES).unwrap();
        assert_eq!(e.id, "e1");
        assert!(matches!(e.account, Cow::Borrowed(_)));
        assert_eq!(e.time, time::parse_rfc3339("2026-01-19T03:12:45.123Z").unwrap());
        assert_eq!(e.outcome, Outcome::Success);
        let c = e.credential.unwrap();
        assert_eq!((c.id.as_ref(), c.kind.as_deref(), c.owner.as_deref()), ("AKIA1", Some("api_key"), Some("svc-crm")));
        assert_eq!(e.source.ip, Some("203.0.113.7".parse().unwrap()));
        assert_eq!(e.source.asn, Some(64500));
        assert_eq!(e.target.resource.as_deref(), Some("contacts"));
        assert_eq!((e.bytes, e.records, e.tenant.as_deref()), (Some(1200), Some(3), Some("acme")));
    }

    #[test]
    fn epoch_millis_and_derived_id() {
        let line = r#"{"time":1768792365123,"account":"a","action":"x","outcome":"failure"}"#;
        let e = decode(line.as_bytes(), 1024).unwrap();
        assert_eq!(e.time, 1_768_792_365_123);
        assert!(e.id.starts_with("h-") && e.id.len() == 34);
        assert_eq!(decode(line.as_bytes(), 1024).unwrap().id, e.id, "derived id is stable");
        let other = r#"{"time":1768792365124,"account":"a","action":"x","outcome":"failure"}"#;
        assert_ne!(decode(other.as_bytes(), 1024).unwrap().id, e.id);
    }

    #[test]
    fn escaped_strings_are_owned_and_unescaped() {
        let e = decode(br#"{"time":0,"account":"svc-\u0041","action":"x","outcome":"denied"}"#, 1024).unwrap();
        assert_eq!(e.account, "svc-A");
    }

    #[test]
    fn missing_required_fields() {
        for field in ["time", "account", "action", "outcome"] {
            let mut v: serde_json::Value = serde_json::from_str(GOOD).unwrap();
            v.as_object_mut().unwrap().remove(field);
            let e = err(&v.to_string());
            assert_eq!((e.kind, e.field.as_deref()), (DecodeErrorKind::MissingField, Some(field)));
            assert_eq!(e.to_string(), format!("field `{field}`: is required but missing"));
        }
        assert_eq!(err("{}").field.as_deref(), Some("time"));
    }

    #[test]
    fn mistyped_fields_name_the_field() {
        let base = r#""time":0,"account":"a","action":"x","outcome":"success""#;
        let cases = [
            (r#"{"time":true,"account":"a","action":"x","outcome":"success"}"#.to_string(), "time", "boolean"),
            (r#"{"time":-5,"account":"a","action":"x","outcome":"success"}"#.to_string(), "time", "before 1970"),
            (
                r#"{"time":"last tuesday","account":"a","action":"x","outcome":"success"}"#.to_string(),
                "time",
                "not a valid time",
            ),
            (r#"{"time":0,"account":7,"action":"x","outcome":"success"}"#.to_string(), "account", "expected a string"),
            (r#"{"time":0,"account":"","action":"x","outcome":"success"}"#.to_string(), "account", "must not be empty"),
            (
                format!(r#"{{"time":0,"account":"{}","action":"x","outcome":"success"}}"#, "a".repeat(300)),
                "account",
                "longer than 256",
            ),
            (r#"{"time":0,"account":"a","action":"x","outcome":"ok"}"#.to_string(), "outcome", "unknown variant `ok`"),
            (format!(r#"{{{base},"bytes":-1}}"#), "bytes", "invalid value"),
            (format!(r#"{{{base},"bytes":"12"}}"#), "bytes", "invalid type"),
            (format!(r#"{{{base},"source":{{"ip":"999.1.1.1"}}}}"#), "source.ip", "not an IP address"),
            (format!(r#"{{{base},"source":{{"asn":"ASX"}}}}"#), "source.asn", "not an AS number"),
            (
                format!(r#"{{{base},"credential":{{"type":"api_key"}}}}"#),
                "credential.id",
                "required when `credential` is present",
            ),
            (format!(r#"{{{base},"credential":{{"id":5}}}}"#), "credential.id", "expected a string"),
            (format!(r#"{{{base},"credential":"AKIA"}}"#), "credential", "expected an object"),
            (format!(r#"{{{base},"attributes":[1]}}"#), "attributes", "expected an object"),
            (format!(r#"{{{base},"account":"b"}}"#), "account", "appears twice"),
        ];
        for (input, field, problem) in cases {
            let (f, p) = field_err(&input);
            assert_eq!(f, field, "input {input}: {p}");
            assert!(p.contains(problem), "input {input}: problem `{p}` lacks `{problem}`");
        }
    }

    #[test]
    fn whole_message_errors() {
        let e = err("{\"time\":0,");
        assert_eq!(e.kind, DecodeErrorKind::Syntax);
        assert!(e.problem.starts_with("malformed JSON"));
        assert_eq!(err("[1,2]").kind, DecodeErrorKind::NotAnObject);
        assert_eq!(err("\"hello\"").kind, DecodeErrorKind::NotAnObject);
        assert_eq!(
            err(r#"{"time":0,"account":"a","action":"x","outcome":"success"} trailing"#).kind,
            DecodeErrorKind::Syntax
        );
        let inside = err(r#"{"time": oops}"#);
        assert_eq!((inside.kind, inside.field.as_deref()), (DecodeErrorKind::Syntax, Some("time")));
        assert!(inside.problem.starts_with("malformed JSON: expected value"), "{}", inside.problem);
        let bad_utf8 = b"{\"time\":0,\"account\":\"\xff\xfe\",\"action\":\"x\",\"outcome\":\"success\"}";
        let e = decode(bad_utf8, 1024).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidUtf8);
        assert_eq!(e.problem, "message is not valid UTF-8 (at byte 21)");
        let big = vec![b' '; 2048];
        assert_eq!(decode(&big, 1024).unwrap_err().kind, DecodeErrorKind::TooLarge);
    }
}
