//! `auto`: each message in the format its fields show.

use std::collections::BTreeSet;

use super::*;
use crate::input::formats::auto::detect;

/// Every fixture, as (the format its directory is named after, file name, compact JSON).
fn all_fixtures() -> Vec<(InputFormat, String, String)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut found = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/fixtures") {
        let dir = dir.expect("entry").path();
        let name = dir.file_name().and_then(|n| n.to_str()).expect("a UTF-8 name").to_string();
        let format: InputFormat = name.parse().unwrap_or_else(|e| panic!("tests/fixtures/{name}: {e}"));
        for file in std::fs::read_dir(&dir).expect("fixture directory") {
            let path = file.expect("entry").path();
            let value: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
            found.push((format, path.display().to_string(), value.to_string()));
        }
    }
    found
}

#[test]
fn auto_finds_the_format_of_every_fixture() {
    let fixtures = all_fixtures();
    let formats: BTreeSet<&str> = fixtures.iter().map(|(f, _, _)| f.as_str()).collect();
    assert_eq!(formats, BTreeSet::from(["cloudtrail", "native", "ocsf", "okta"]), "a directory per format");
    for (format, path, text) in &fixtures {
        let bytes = text.as_bytes();
        assert_eq!(detect(bytes, DEFAULT_MAX_EVENT_BYTES), Ok(*format), "{path}");
        let own = decode_as(*format, bytes, DEFAULT_MAX_EVENT_BYTES);
        assert!(own.is_ok(), "{path}: {own:?}");
        assert_eq!(decode_as(InputFormat::Auto, bytes, DEFAULT_MAX_EVENT_BYTES), own, "{path}");
    }
}

#[test]
fn auto_rejects_what_fits_no_format_saying_what_each_lacks() {
    let almost_native = r#"{"time":"2026-01-19T02:14:09Z","account":"svc-a","action":"contacts.export"}"#;
    let e = error(InputFormat::Auto, almost_native);
    assert_eq!((e.kind, e.field.as_deref()), (DecodeErrorKind::MissingField, None));
    assert_eq!(
        e.problem,
        "the message is in no known input format: cloudtrail lacks `eventVersion`, `eventSource` (at the top, or \
         in the `detail` of an EventBridge event); ocsf lacks `class_uid`; okta lacks `eventType`, `published`, \
         `actor`; native lacks `outcome`"
    );
    let okta_without_time = edit(OKTA_LOGIN_FAILURE, |v| {
        v.as_object_mut().unwrap().remove("published");
    });
    assert!(error(InputFormat::Auto, &okta_without_time).problem.contains("okta lacks `published`;"));
    // An envelope that holds no CloudTrail record is not CloudTrail.
    let other_envelope = r#"{"detail-type":"Scheduled Event","detail":{"eventSource":"aws.events"}}"#;
    assert!(error(InputFormat::Auto, other_envelope).problem.contains("cloudtrail lacks `eventVersion`"));
}

#[test]
fn auto_gives_the_errors_of_the_format_it_finds() {
    // Found by its distinguishing fields, then rejected by that format's decoder, exactly.
    let no_event_name = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v.as_object_mut().unwrap().remove("eventName");
    });
    assert_eq!(error(InputFormat::Auto, &no_event_name), error(InputFormat::Cloudtrail, &no_event_name));
    let bad_actor = edit(OKTA_API_TOKEN_USE, |v| v["actor"]["id"] = json!(1));
    assert_eq!(error(InputFormat::Auto, &bad_actor), error(InputFormat::Okta, &bad_actor));
    let bad_native = r#"{"time":"yesterday","account":"svc-a","action":"x","outcome":"success"}"#;
    assert_eq!(error(InputFormat::Auto, bad_native), error(InputFormat::Native, bad_native));
    // A whole CloudTrail log file is CloudTrail, whose decoder says to split it.
    let log_file = format!("{{\"Records\":[{CT_IAM_USER_GET_OBJECT}]}}");
    assert_rejects(InputFormat::Auto, &log_file, DecodeErrorKind::InvalidField, Some("Records"), "split it");
}

#[test]
fn auto_prefers_the_format_that_names_itself() {
    // A native event may carry any extra top-level field; the foreign formats name themselves.
    let native_with_extras = edit(OCSF_API_ACTIVITY, |v| {
        v["account"] = json!("svc-a");
        v["action"] = json!("x");
        v["outcome"] = json!("success");
    });
    assert_eq!(detect(native_with_extras.as_bytes(), DEFAULT_MAX_EVENT_BYTES), Ok(InputFormat::Ocsf));
    let both = edit(CT_IAM_USER_GET_OBJECT, |v| v["class_uid"] = json!(6003));
    assert_eq!(detect(both.as_bytes(), DEFAULT_MAX_EVENT_BYTES), Ok(InputFormat::Cloudtrail));
    // Presence is what counts: null is absent, as everywhere in the decoders.
    let null_class = edit(OCSF_API_ACTIVITY, |v| v["class_uid"] = Value::Null);
    assert!(detect(null_class.as_bytes(), DEFAULT_MAX_EVENT_BYTES).is_err());
}
