use super::*;

const GOOD: &str = r#"{"id":"e1","time":"2026-01-19T03:12:45.123Z","account":"svc-crm","action":"contacts.export","outcome":"success",
        "credential":{"id":"AKIA1","type":"api_key","owner":"svc-crm"},"source":{"ip":"203.0.113.7","country":"DE","asn":"AS64500","user_agent":"crm/1.0"},
        "target":{"system":"crm","resource":"contacts"},"bytes":1200,"records":3,"tenant":"acme","attributes":{"k":[1,2]},
        "session":{"name":"i-0a1b2c3d","instance":"i-0a1b2c3d"},"extra":true}"#;

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
    let session = e.session.unwrap();
    assert_eq!((session.name.as_ref(), session.instance.as_deref()), ("i-0a1b2c3d", Some("i-0a1b2c3d")));
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
        (format!(r#"{{{base},"session":{{"instance":"i-1"}}}}"#), "session.name", "required when `session` is present"),
        (format!(r#"{{{base},"session":{{"name":""}}}}"#), "session.name", "must not be empty"),
        (format!(r#"{{{base},"session":"s"}}"#), "session", "expected an object"),
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
