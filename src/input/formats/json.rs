//! Reading foreign JSON so that every problem names its field.
//!
//! The foreign formats are read into derived structs whose fields never fail to deserialize: a
//! leaf is a [`Scalar`] (whatever JSON value was there, strings borrowed from the message), a
//! nested object is an [`Obj`], an array a [`List`]. A value of the wrong type is kept as its
//! kind ("an array"), and the mapping code, which knows the dotted path, turns it into a
//! [`DecodeError`] only if it needs that field. So serde only ever fails on broken JSON (or a
//! duplicated key), and unknown fields are skipped without allocating.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, value::MapAccessDeserializer, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::detection::time::{self, Millis};
use crate::input::event::{self, DecodeError, DecodeErrorKind};

/// A JSON value where the mapping expects a string or a number.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar<'a> {
    Str(Cow<'a, str>),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    /// An object or an array, skipped; the str says which.
    Compound(&'static str),
}

impl Scalar<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::U64(_) | Scalar::I64(_) | Scalar::F64(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Compound(kind) => kind,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Scalar<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Scalar::Str(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Scalar::U64(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Scalar::I64(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Scalar::F64(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Scalar::Bool(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(Scalar::Compound("an object"))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(Scalar::Compound("an array"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON object read into `T`, or the kind of value found instead.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Obj<T> {
    Ok(T),
    Wrong(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj::Ok)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq)?;
                Ok(Obj::Wrong("an array"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Obj::Wrong("a string"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Obj::Wrong("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Obj::Wrong("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Obj::Wrong("a number"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Obj::Wrong("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Obj::Wrong("null"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// A JSON array of `T`, or the kind of value found instead.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum List<T> {
    Ok(Vec<T>),
    Wrong(&'static str),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(List::Ok(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map)?;
                Ok(List::Wrong("an object"))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(List::Wrong("a string"))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(List::Wrong("a number"))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(List::Wrong("a number"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(List::Wrong("a number"))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(List::Wrong("a boolean"))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(List::Wrong("null"))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Where a record sits in the message: `""` at the top, `"detail."` inside an envelope. Field
/// names in errors are built from it only when there is an error.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Path<'p>(pub &'p str);

impl Path<'_> {
    pub fn name(self, field: &str) -> String {
        format!("{}{field}", self.0)
    }
    pub fn missing(self, field: &str) -> DecodeError {
        DecodeError::missing(&self.name(field))
    }
    pub fn invalid(self, field: &str, problem: impl Into<String>) -> DecodeError {
        DecodeError::invalid(&self.name(field), problem)
    }
    pub fn wrong_type(self, field: &str, expected: &str, found: &str) -> DecodeError {
        self.invalid(field, format!("expected {expected}, found {found}"))
    }

    /// An optional string; absent, `null` and `""` are all `None` (CloudTrail writes `""` for
    /// "no access key").
    pub fn text<'a>(self, value: Option<Scalar<'a>>, field: &str) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match value {
            None => Ok(None),
            Some(Scalar::Str(s)) if s.is_empty() => Ok(None),
            Some(Scalar::Str(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(field, "a string", other.kind())),
        }
    }

    /// [`Path::text`] for a field whose name must be built (an array index): built only when
    /// the value is wrong, not for every record.
    pub fn text_named<'a>(
        self,
        value: Option<Scalar<'a>>,
        field: impl FnOnce() -> String,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        match value {
            None | Some(Scalar::Str(_)) => self.text(value, ""),
            Some(other) => Err(self.wrong_type(&field(), "a string", other.kind())),
        }
    }

    /// An account or action name: at most [`event::MAX_NAME_CHARS`] characters, like native.
    pub fn name_value<'a>(self, value: Cow<'a, str>, field: &str) -> Result<Cow<'a, str>, DecodeError> {
        if value.len() > event::MAX_NAME_CHARS && value.chars().count() > event::MAX_NAME_CHARS {
            return Err(self.invalid(field, format!("longer than {} characters", event::MAX_NAME_CHARS)));
        }
        Ok(value)
    }

    /// An optional integer (class, activity and status ids).
    pub fn integer(self, value: Option<Scalar>, field: &str) -> Result<Option<i64>, DecodeError> {
        match value {
            None => Ok(None),
            Some(Scalar::U64(v)) => {
                i64::try_from(v).map(Some).map_err(|_| self.invalid(field, format!("{v} is out of range")))
            }
            Some(Scalar::I64(v)) => Ok(Some(v)),
            Some(other) => Err(self.wrong_type(field, "an integer", other.kind())),
        }
    }

    /// An optional IP address, as text.
    pub fn ip(self, value: Option<Scalar>, field: &str) -> Result<Option<std::net::IpAddr>, DecodeError> {
        match self.text(value, field)? {
            Some(ip) => ip
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(field, format!("`{}` is not an IP address", event::truncate(&ip, 64)))),
            None => Ok(None),
        }
    }

    /// An optional autonomous system number.
    pub fn asn(self, value: Option<Scalar>, field: &str) -> Result<Option<u32>, DecodeError> {
        match self.integer(value, field)? {
            Some(n) => u32::try_from(n).map(Some).map_err(|_| self.invalid(field, format!("{n} is not an AS number"))),
            None => Ok(None),
        }
    }

    /// An optional count of bytes or records: a non-negative number. Fractions are dropped
    /// (CloudTrail writes `bytesTransferredOut` as `1500.0`).
    pub fn count(self, value: Option<Scalar>, field: &str) -> Result<Option<u64>, DecodeError> {
        match value {
            None => Ok(None),
            Some(Scalar::U64(v)) => Ok(Some(v)),
            Some(Scalar::F64(v)) if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 => Ok(Some(v as u64)),
            Some(Scalar::I64(v)) => Err(self.invalid(field, format!("{v} is negative"))),
            Some(Scalar::F64(v)) => Err(self.invalid(field, format!("{v} is not a count"))),
            Some(other) => Err(self.wrong_type(field, "a number", other.kind())),
        }
    }

    /// A required event time as an RFC 3339 string.
    pub fn rfc3339(self, value: Option<Scalar>, field: &str) -> Result<Millis, DecodeError> {
        match self.text(value, field)? {
            None => Err(self.missing(field)),
            Some(s) => time::parse_rfc3339(&s).map_err(|why| {
                self.invalid(field, format!("`{}` is not a valid time: {why}", event::truncate(&s, 64)))
            }),
        }
    }

    /// A required event time as integer epoch milliseconds.
    pub fn epoch_millis(self, value: Option<Scalar>, field: &str) -> Result<Millis, DecodeError> {
        match value {
            None => Err(self.missing(field)),
            Some(Scalar::U64(v)) => match i64::try_from(v) {
                Ok(ms) if ms <= time::MAX_TIME => Ok(ms),
                _ => Err(self.invalid(field, format!("{v} is out of range for epoch milliseconds"))),
            },
            Some(Scalar::I64(v)) => Err(self.invalid(field, format!("{v} is before 1970"))),
            Some(other) => Err(self.wrong_type(field, "integer epoch milliseconds", other.kind())),
        }
    }

    /// An optional nested object.
    pub fn object<T>(self, value: Option<Obj<T>>, field: &str) -> Result<Option<T>, DecodeError> {
        match value {
            None => Ok(None),
            Some(Obj::Ok(t)) => Ok(Some(t)),
            Some(Obj::Wrong(kind)) => Err(self.wrong_type(field, "an object", kind)),
        }
    }

    /// The first non-empty string that `pick` finds in the objects of array `field`, such as
    /// `resources[].ARN` (`key` names what `pick` reads, for errors).
    pub fn first_text<'a, T>(
        self,
        value: Option<List<Obj<T>>>,
        field: &str,
        key: &str,
        pick: impl Fn(T) -> Option<Scalar<'a>>,
    ) -> Result<Option<Cow<'a, str>>, DecodeError> {
        for (i, item) in self.list(value, field)?.into_iter().enumerate() {
            let found = match item {
                Obj::Ok(item) => pick(item),
                Obj::Wrong(kind) => return Err(self.wrong_type(&format!("{field}[{i}]"), "an object", kind)),
            };
            match found {
                Some(Scalar::Str(s)) if !s.is_empty() => return Ok(Some(s)),
                None | Some(Scalar::Str(_)) => {}
                Some(other) => return Err(self.wrong_type(&format!("{field}[{i}].{key}"), "a string", other.kind())),
            }
        }
        Ok(None)
    }

    /// An optional array (absent is empty).
    pub fn list<T>(self, value: Option<List<T>>, field: &str) -> Result<Vec<T>, DecodeError> {
        match value {
            None => Ok(Vec::new()),
            Some(List::Ok(items)) => Ok(items),
            Some(List::Wrong(kind)) => Err(self.wrong_type(field, "an array", kind)),
        }
    }
}

/// Parses one message that must be a JSON object into `T` (a struct of lenient fields).
/// A whole message of a foreign format: checked as text, parsed into the format's record,
/// mapped onto the event, and given an id derived from its bytes when the log has none.
pub(crate) fn decode_record<'a, T: Deserialize<'a>>(
    bytes: &'a [u8],
    max_bytes: usize,
    map: impl FnOnce(T) -> Result<event::AuditEvent<'a>, DecodeError>,
) -> Result<event::AuditEvent<'a>, DecodeError> {
    let text = event::checked_text(bytes, max_bytes)?;
    let mut mapped = map(parse_object(text)?)?;
    if mapped.id.is_empty() {
        mapped.id = Cow::Owned(event::derived_id(bytes));
    }
    Ok(mapped)
}

pub(crate) fn parse_object<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T, DecodeError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = Obj::<T>::deserialize(&mut de).and_then(|value| de.end().map(|()| value));
    match parsed {
        Ok(Obj::Ok(value)) => Ok(value),
        Ok(Obj::Wrong(kind)) => {
            Err(DecodeError::new(DecodeErrorKind::NotAnObject, format!("expected a JSON object, found {kind}")))
        }
        Err(e) if e.is_data() => {
            // Lenient fields only fail on a duplicated key; broken JSON later in the message
            // still wins, as in the native decoder.
            if let Err(syntax) = serde_json::from_str::<IgnoredAny>(text) {
                return Err(DecodeError::new(DecodeErrorKind::Syntax, format!("malformed JSON: {syntax}")));
            }
            Err(duplicate_key(&e))
        }
        Err(e) => Err(DecodeError::new(DecodeErrorKind::Syntax, format!("malformed JSON: {e}"))),
    }
}

/// serde reports "duplicate field `eventTime` at line 1 column 80": name the key.
fn duplicate_key(e: &serde_json::Error) -> DecodeError {
    let message = e.to_string();
    let key = message.split('`').nth(1).filter(|_| message.starts_with("duplicate field"));
    match key {
        Some(key) => DecodeError::invalid(key, "appears twice"),
        None => DecodeError::new(DecodeErrorKind::InvalidField, message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Sample<'a> {
        #[serde(borrow)]
        s: Option<Scalar<'a>>,
        #[serde(borrow)]
        o: Option<Obj<Inner<'a>>>,
        #[serde(borrow)]
        l: Option<List<Obj<Inner<'a>>>>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Inner<'a> {
        #[serde(borrow)]
        x: Option<Scalar<'a>>,
    }

    #[test]
    fn wrong_types_are_kept_not_failed() {
        let v: Sample = parse_object(r#"{"s":[1,{"a":2}],"o":"str","l":{"x":1},"other":{"deep":[1,2]}}"#).unwrap();
        assert_eq!(v.s, Some(Scalar::Compound("an array")));
        assert!(matches!(v.o, Some(Obj::Wrong("a string"))));
        assert!(matches!(v.l, Some(List::Wrong("an object"))));
        let v: Sample = parse_object(r#"{"s":"plain","o":{"x":"y"},"l":[{"x":null},7]}"#).unwrap();
        assert!(matches!(v.s, Some(Scalar::Str(Cow::Borrowed("plain")))));
        assert_eq!(v.o, Some(Obj::Ok(Inner { x: Some(Scalar::Str("y".into())) })));
        assert_eq!(v.l, Some(List::Ok(vec![Obj::Ok(Inner { x: None }), Obj::Wrong("a number")])));
    }

    #[test]
    fn whole_message_problems() {
        let kind = |text: &str| parse_object::<Sample>(text).unwrap_err().kind;
        assert_eq!(kind("[1]"), DecodeErrorKind::NotAnObject);
        assert_eq!(kind("\"x\""), DecodeErrorKind::NotAnObject);
        assert_eq!(kind("{\"s\":"), DecodeErrorKind::Syntax);
        assert_eq!(kind("{} {}"), DecodeErrorKind::Syntax);
        let e = parse_object::<Sample>(r#"{"s":1,"s":2}"#).unwrap_err();
        assert_eq!(
            (e.kind, e.field.as_deref(), e.problem.as_str()),
            (DecodeErrorKind::InvalidField, Some("s"), "appears twice")
        );
        assert_eq!(kind(r#"{"s":1,"s":2,"#), DecodeErrorKind::Syntax, "broken JSON wins over a duplicate");
    }

    #[test]
    fn typed_accessors_name_the_field() {
        let at = Path("detail.");
        assert_eq!(at.text(Some(Scalar::Str("".into())), "a").unwrap(), None);
        let e = at.text(Some(Scalar::U64(1)), "userIdentity.arn").unwrap_err();
        assert_eq!(e.to_string(), "field `detail.userIdentity.arn`: expected a string, found a number");
        assert_eq!(at.count(Some(Scalar::F64(1500.0)), "b").unwrap(), Some(1500));
        assert!(at.count(Some(Scalar::I64(-1)), "b").unwrap_err().problem.contains("negative"));
        assert_eq!(at.epoch_millis(Some(Scalar::U64(1_700_000_000_000)), "time").unwrap(), 1_700_000_000_000);
        assert_eq!(at.epoch_millis(None, "time").unwrap_err().kind, DecodeErrorKind::MissingField);
        assert!(at
            .rfc3339(Some(Scalar::Str("soon".into())), "eventTime")
            .unwrap_err()
            .problem
            .contains("not a valid time"));
        let long = Cow::Owned("a".repeat(300));
        assert!(at.name_value(long, "account").unwrap_err().problem.contains("longer than 256"));
    }
}
