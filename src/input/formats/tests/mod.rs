//! Tests of the CloudTrail, OCSF and Okta mappings, and of `auto`, on hand-written records that
//! follow the AWS CloudTrail record reference, the OCSF examples and Okta's System Log reference
//! (`tests/fixtures/{native,cloudtrail,ocsf,okta}/`).

use std::borrow::Cow;

use serde_json::{json, Value};

use super::*;
use crate::detection::time::parse_rfc3339;
use crate::input::event::{
    Credential, DecodeErrorKind, Lifecycle, Outcome, Session, Source, Target, DEFAULT_MAX_EVENT_BYTES,
};

const CT_IAM_USER_GET_OBJECT: &str = include_str!("../../../../tests/fixtures/cloudtrail/iam-user-get-object.json");
const CT_ASSUMED_ROLE: &str =
    include_str!("../../../../tests/fixtures/cloudtrail/assumed-role-describe-instances.json");
const CT_CONSOLE_LOGIN_FAILURE: &str = include_str!("../../../../tests/fixtures/cloudtrail/console-login-failure.json");
const CT_ACCESS_DENIED: &str = include_str!("../../../../tests/fixtures/cloudtrail/access-denied.json");
const CT_CREATE_ACCESS_KEY: &str = include_str!("../../../../tests/fixtures/cloudtrail/create-access-key.json");
const CT_DELETE_ACCESS_KEY: &str = include_str!("../../../../tests/fixtures/cloudtrail/delete-access-key.json");
const CT_CREATE_LOGIN_PROFILE: &str = include_str!("../../../../tests/fixtures/cloudtrail/create-login-profile.json");
const CT_AWS_SERVICE_EVENT: &str = include_str!("../../../../tests/fixtures/cloudtrail/aws-service-event.json");
const CT_EVENTBRIDGE: &str = include_str!("../../../../tests/fixtures/cloudtrail/eventbridge-api-call.json");
const OCSF_API_ACTIVITY: &str = include_str!("../../../../tests/fixtures/ocsf/api-activity-success.json");
const OCSF_AUTHENTICATION_FAILURE: &str = include_str!("../../../../tests/fixtures/ocsf/authentication-failure.json");
const OCSF_ACCOUNT_CHANGE_KEY_DISABLE: &str =
    include_str!("../../../../tests/fixtures/ocsf/account-change-key-disable.json");
const OKTA_API_TOKEN_USE: &str = include_str!("../../../../tests/fixtures/okta/api-token-user-deactivate.json");
const OKTA_LOGIN_FAILURE: &str = include_str!("../../../../tests/fixtures/okta/login-failure.json");
const OKTA_SIGN_ON_DENIED: &str = include_str!("../../../../tests/fixtures/okta/sign-on-denied.json");
const OKTA_TOKEN_GRANT: &str = include_str!("../../../../tests/fixtures/okta/client-credentials-token-grant.json");
const OKTA_API_TOKEN_CREATE: &str = include_str!("../../../../tests/fixtures/okta/api-token-create.json");
const OKTA_API_TOKEN_REVOKE: &str = include_str!("../../../../tests/fixtures/okta/api-token-revoke.json");
const OKTA_CLIENT_SECRET_DEACTIVATE: &str =
    include_str!("../../../../tests/fixtures/okta/client-secret-deactivate.json");

const SVC_REPORTING: &str = "arn:aws:iam::111122223333:user/svc-reporting";
const CI_DEPLOYER: &str = "arn:aws:iam::111122223333:role/ci-deployer";

fn cloudtrail(text: &str) -> AuditEvent<'_> {
    match decode_as(InputFormat::Cloudtrail, text.as_bytes(), DEFAULT_MAX_EVENT_BYTES) {
        Ok(event) => event,
        Err(error) => panic!("{error}"),
    }
}

fn ocsf(text: &str) -> AuditEvent<'_> {
    match decode_as(InputFormat::Ocsf, text.as_bytes(), DEFAULT_MAX_EVENT_BYTES) {
        Ok(event) => event,
        Err(error) => panic!("{error}"),
    }
}

fn okta(text: &str) -> AuditEvent<'_> {
    match decode_as(InputFormat::Okta, text.as_bytes(), DEFAULT_MAX_EVENT_BYTES) {
        Ok(event) => event,
        Err(error) => panic!("{error}"),
    }
}

fn error(format: InputFormat, text: &str) -> DecodeError {
    decode_as(format, text.as_bytes(), DEFAULT_MAX_EVENT_BYTES).expect_err("should be rejected")
}

/// `text` parsed, changed by `change`, serialized again.
fn edit(text: &str, change: impl FnOnce(&mut Value)) -> String {
    let mut value: Value = serde_json::from_str(text).expect("fixture is JSON");
    change(&mut value);
    value.to_string()
}

fn time(s: &str) -> i64 {
    parse_rfc3339(s).expect("valid time")
}

fn key<'a>(id: &'a str, kind: Option<&'a str>, owner: Option<&'a str>) -> Option<Credential<'a>> {
    Some(Credential { id: id.into(), kind: kind.map(Cow::Borrowed), owner: owner.map(Cow::Borrowed) })
}

fn assert_rejects(format: InputFormat, text: &str, kind: DecodeErrorKind, field: Option<&str>, problem: &str) {
    let e = error(format, text);
    assert_eq!((e.kind, e.field.as_deref()), (kind, field), "{e}");
    assert!(e.problem.contains(problem), "problem `{}` lacks `{problem}`", e.problem);
}

mod auto;
mod cloudtrail;
mod fuzz_corpus;
mod no_panic;
mod ocsf;
mod okta;

#[test]
fn whole_message_checks_are_those_of_native() {
    for format in [InputFormat::Cloudtrail, InputFormat::Ocsf, InputFormat::Okta, InputFormat::Auto] {
        let e = decode_as(format, CT_IAM_USER_GET_OBJECT.as_bytes(), 100).unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TooLarge);
        assert_eq!(e.problem, format!("message is {} bytes, over the limit of 100", CT_IAM_USER_GET_OBJECT.len()));
        let e = decode_as(format, b"{\"eventTime\":\"\xff\"}", 1024).unwrap_err();
        assert_eq!(
            (e.kind, e.problem.as_str()),
            (DecodeErrorKind::InvalidUtf8, "message is not valid UTF-8 (at byte 14)")
        );
        assert_eq!(error(format, "[1, 2]").kind, DecodeErrorKind::NotAnObject);
        assert_eq!(error(format, "{\"eventTime\": ").kind, DecodeErrorKind::Syntax);
        assert_eq!(error(format, "{} trailing").kind, DecodeErrorKind::Syntax);
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch, and the mapped events through the engine

#[test]
fn decode_as_dispatches_on_the_format() {
    let native = br#"{"time":0,"account":"svc-a","action":"auth.login","outcome":"success"}"#;
    assert_eq!(decode_as(InputFormat::Native, native, 1024), crate::input::event::decode(native, 1024));
    let as_cloudtrail = decode_as(InputFormat::Cloudtrail, native, 1024).unwrap_err();
    assert_eq!(as_cloudtrail.field.as_deref(), Some("eventTime"));
    let as_ocsf = decode_as(InputFormat::Ocsf, native, 1024).unwrap_err();
    assert_eq!(as_ocsf.field.as_deref(), Some("actor.user"), "`time` 0 is a valid OCSF time: {as_ocsf}");
    let as_okta = decode_as(InputFormat::Okta, native, 1024).unwrap_err();
    assert_eq!(as_okta.field.as_deref(), Some("published"));
    assert_eq!(decode_as(InputFormat::Auto, native, 1024), crate::input::event::decode(native, 1024));
    assert!(decode_as(InputFormat::Native, CT_IAM_USER_GET_OBJECT.as_bytes(), DEFAULT_MAX_EVENT_BYTES).is_err());
}

#[test]
fn a_key_used_after_delete_access_key_raises_revoked_key_use() {
    use crate::detection::engine::{Engine, EngineOptions};
    let detectors = crate::detection::pack::load().expect("built-in pack");
    let mut engine = Engine::new(detectors, EngineOptions::default());
    let late_use = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v["eventTime"] = json!("2026-01-19T12:00:00Z");
        v["eventID"] = json!("late-use");
        v["sourceIPAddress"] = json!("192.0.2.99");
    });
    let mut alerts = Vec::new();
    for record in [CT_CREATE_ACCESS_KEY, CT_DELETE_ACCESS_KEY, &late_use] {
        engine.process(&cloudtrail(record), &mut alerts).expect("in time");
    }
    let fired: Vec<(&str, Option<&str>, &str)> =
        alerts.iter().map(|a| (a.detector.as_str(), a.credential_id.as_deref(), a.account.as_str())).collect();
    // The admin created the key for another user, who used it after its deletion.
    assert_eq!(
        fired,
        vec![
            ("credential-for-other", Some("AKIAI44QH8DHBEXAMPLE"), "arn:aws:iam::111122223333:user/ops-admin"),
            ("revoked-key-use", Some("AKIAIOSFODNN7EXAMPLE"), SVC_REPORTING)
        ]
    );
}
