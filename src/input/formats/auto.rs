//! `format = "auto"`: each message is decoded in the format its fields show, so one topic or
//! one replay can mix native events, CloudTrail records, OCSF and Okta events.
//!
//! [`detect`] reads only the top-level keys (and, for an EventBridge envelope, those of
//! `detail`) and picks the first format whose distinguishing fields are all there:
//! 1. CloudTrail: `eventVersion` and `eventSource`, at the top or in `detail`; a whole log file
//!    (`Records`) too, so that its rejection says to split it.
//! 2. OCSF: `class_uid`.
//! 3. Okta: `eventType`, `published` and `actor`.
//! 4. native: `time`, `account`, `action` and `outcome` (the contract's required fields).
//!
//! The more specific formats come first: a native event may carry any extra top-level field,
//! the others name themselves. Once chosen, the message is decoded by that format's decoder
//! exactly as under its own name, so errors, ids and events are the same. A message that shows
//! no format is rejected with what each format lacks. Detection costs a second pass over the
//! message; the benchmark `formats/auto` measures it.

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::json::{parse_object, Obj};
use super::{decode_as, InputFormat};
use crate::input::event::{self, AuditEvent, DecodeError, DecodeErrorKind};

/// Decodes one message in the format [`detect`] finds.
pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    let format = detect(bytes, max_bytes)?;
    decode_as(format, bytes, max_bytes)
}

/// The format of one message (never [`InputFormat::Auto`]), or why none fits.
pub fn detect(bytes: &[u8], max_bytes: usize) -> Result<InputFormat, DecodeError> {
    let text = event::checked_text(bytes, max_bytes)?;
    let keys: Keys = parse_object(text)?;
    keys.format()
}

/// Whether each distinguishing key is present, whatever its value.
#[derive(Deserialize)]
struct Keys {
    #[serde(rename = "Records")]
    records: Option<IgnoredAny>,
    #[serde(rename = "detail-type")]
    detail_type: Option<IgnoredAny>,
    detail: Option<Obj<CloudTrailKeys>>,
    #[serde(rename = "eventVersion")]
    event_version: Option<IgnoredAny>,
    #[serde(rename = "eventSource")]
    event_source: Option<IgnoredAny>,
    class_uid: Option<IgnoredAny>,
    #[serde(rename = "eventType")]
    event_type: Option<IgnoredAny>,
    published: Option<IgnoredAny>,
    actor: Option<IgnoredAny>,
    time: Option<IgnoredAny>,
    account: Option<IgnoredAny>,
    action: Option<IgnoredAny>,
    outcome: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CloudTrailKeys {
    #[serde(rename = "eventVersion")]
    event_version: Option<IgnoredAny>,
    #[serde(rename = "eventSource")]
    event_source: Option<IgnoredAny>,
}

/// The names in `fields` whose flag is false, as "`a`, `b`".
fn absent(fields: &[(&str, bool)]) -> Vec<String> {
    fields.iter().filter(|(_, present)| !present).map(|(name, _)| format!("`{name}`")).collect()
}

impl Keys {
    fn format(self) -> Result<InputFormat, DecodeError> {
        let in_envelope = match &self.detail {
            Some(Obj::Ok(d)) => self.detail_type.is_some() && d.event_version.is_some() && d.event_source.is_some(),
            _ => false,
        };
        let cloudtrail = [("eventVersion", self.event_version.is_some()), ("eventSource", self.event_source.is_some())];
        let ocsf = [("class_uid", self.class_uid.is_some())];
        let okta = [
            ("eventType", self.event_type.is_some()),
            ("published", self.published.is_some()),
            ("actor", self.actor.is_some()),
        ];
        let native = [
            ("time", self.time.is_some()),
            ("account", self.account.is_some()),
            ("action", self.action.is_some()),
            ("outcome", self.outcome.is_some()),
        ];
        let candidates: [(InputFormat, &[(&str, bool)]); 4] = [
            (InputFormat::Cloudtrail, &cloudtrail),
            (InputFormat::Ocsf, &ocsf),
            (InputFormat::Okta, &okta),
            (InputFormat::Native, &native),
        ];
        if self.records.is_some() || in_envelope {
            return Ok(InputFormat::Cloudtrail);
        }
        if let Some((format, _)) = candidates.iter().find(|(_, fields)| fields.iter().all(|(_, present)| *present)) {
            return Ok(*format);
        }
        // None fits: say what each lacks (built only now, off the common path).
        let mut lacks = Vec::with_capacity(candidates.len());
        for (format, fields) in candidates {
            let missing = absent(fields);
            let envelope = match format {
                InputFormat::Cloudtrail => " (at the top, or in the `detail` of an EventBridge event)",
                _ => "",
            };
            lacks.push(format!("{format} lacks {}{envelope}", missing.join(", ")));
        }
        Err(DecodeError::new(
            DecodeErrorKind::MissingField,
            format!("the message is in no known input format: {}", lacks.join("; ")),
        ))
    }
}
