//! The serde side of the decoder: a visitor over the event object that records the first
//! precise [`DecodeError`] (field and problem) beside the string error serde carries, and
//! strict deserializers for each field type.

use super::*;

/// An event whose `id` may still be missing; `finish` derives it from the message bytes.
pub(super) struct Partial<'a> {
    event: AuditEvent<'a>,
    has_id: bool,
}

impl<'a> Partial<'a> {
    pub(super) fn finish(mut self, bytes: &[u8]) -> AuditEvent<'a> {
        if !self.has_id {
            self.event.id = Cow::Owned(derived_id(bytes));
        }
        self.event
    }
}

/// Carries a precise error out of serde, which only lets visitors return strings.
pub(super) struct EventSeed<'e> {
    pub(super) error: &'e mut Option<DecodeError>,
}

impl<'de> DeserializeSeed<'de> for EventSeed<'_> {
    type Value = Partial<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(EventVisitor { error: self.error })
    }
}

struct EventVisitor<'e> {
    pub(super) error: &'e mut Option<DecodeError>,
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
        let mut attributes = None;
        let mut session = None;
        let mut invoked_by = None;
        let mut mfa = None;
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
                "session" => 13,
                "invoked_by" => 14,
                "mfa" => 15,
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
                12 => attributes = field_value!(self, map, "attributes", Option<Attributes<'de>>).map(|a| a.0),
                13 => session = field_value!(self, map, "session", Option<Session<'de>>),
                14 => invoked_by = field_value!(self, map, "invoked_by", Option<Name<'de>>).map(|n| n.0),
                _ => mfa = field_value!(self, map, "mfa", Option<bool>),
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
                session,
                invoked_by,
                mfa,
                attributes,
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

/// `attributes`: any JSON object, kept as its text in the message (no copy, not interpreted).
struct Attributes<'a>(&'a str);

impl<'de> serde::Deserialize<'de> for Attributes<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw: &'de serde_json::value::RawValue = serde::Deserialize::deserialize(d)?;
        let text = raw.get();
        let unexpected = match text.as_bytes().first() {
            Some(b'{') => return Ok(Attributes(text)),
            Some(b'[') => de::Unexpected::Seq,
            Some(b'"') => de::Unexpected::Other("string"),
            Some(b't' | b'f') => de::Unexpected::Other("boolean"),
            _ => de::Unexpected::Other("number"),
        };
        Err(de::Error::invalid_type(unexpected, &"an object"))
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

impl<'de> serde::Deserialize<'de> for Session<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Session<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {name, instance}")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut s = Session::default();
                let mut name = None;
                visit_object(map, |key, map| {
                    match key {
                        "name" => name = Some(nested::<Name, _>(map, "name")?.0),
                        "instance" => s.instance = nested::<Option<Str>, _>(map, "instance")?.map(|s| s.0),
                        _ => return Ok(false),
                    }
                    Ok(true)
                })?;
                s.name =
                    name.ok_or_else(|| de::Error::custom("field `name`: is required when `session` is present"))?;
                Ok(s)
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
                f.write_str("an object {ip, country, asn, as_org, provider, user_agent}")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let mut s = Source::default();
                visit_object(map, |key, map| {
                    match key {
                        "ip" => s.ip = nested::<Option<Ip>, _>(map, "ip")?.map(|ip| ip.0),
                        "country" => s.country = nested::<Option<Str>, _>(map, "country")?.map(|s| s.0),
                        "asn" => s.asn = nested::<Option<Asn>, _>(map, "asn")?.map(|a| a.0),
                        "as_org" => s.as_org = nested::<Option<Str>, _>(map, "as_org")?.map(|s| s.0),
                        "provider" => s.provider = nested::<Option<Str>, _>(map, "provider")?.map(|s| s.0),
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
