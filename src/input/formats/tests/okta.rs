//! Okta System Log events mapped onto the event, and rejected.

use super::*;

const SVC_PROVISIONING: &str = "00u9prov1sEXAMPLE697";
const HR_SYNC_TOKEN: &str = "00T7hrsyncEXAMPLE4k2";
const ETL_APP: &str = "0oa6etlEXAMPLEjob42";

#[test]
fn okta_call_made_with_an_api_token() {
    let event = okta(OKTA_API_TOKEN_USE);
    let expected = AuditEvent {
        id: "5b1d3e7a-2c4f-11f1-9a6e-7f0c2d8e4b31".into(),
        time: time("2026-01-19T06:41:07.318Z"),
        account: SVC_PROVISIONING.into(),
        action: "user.lifecycle.deactivate".into(),
        outcome: Outcome::Success,
        // A token acts as its creator, so the actor is the token's owner.
        credential: key(HR_SYNC_TOKEN, Some("api_token"), Some(SVC_PROVISIONING)),
        source: Source {
            ip: Some("192.0.2.45".parse().unwrap()),
            country: Some("Ireland".into()),
            asn: Some(64496),
            as_org: Some("example transit".into()),
            provider: None,
            user_agent: Some("hr-sync/2.7.1 okta-sdk-python/2.9".into()),
        },
        target: Target { system: Some("okta".into()), resource: Some("00u4leaverEXAMPLE12".into()) },
        bytes: None,
        records: None,
        reason: None,
        tenant: None,
        session: None,
        invoked_by: None,
        mfa: None,
        attributes: None,
    };
    assert_eq!(event, expected);
    assert!(matches!(event.account, Cow::Borrowed(_)), "strings borrow from the message");

    // The token id where only `debugContext.debugData` has it; free-form there, so a value of
    // another type is ignored rather than rejected.
    let in_debug_data = edit(OKTA_API_TOKEN_USE, |v| {
        v["transaction"]["detail"] = json!({});
        v["debugContext"]["debugData"]["requestApiTokenId"] = json!("00TdebugEXAMPLE0001");
    });
    assert_eq!(okta(&in_debug_data).credential, key("00TdebugEXAMPLE0001", Some("api_token"), Some(SVC_PROVISIONING)));
    let odd_debug_data = edit(&in_debug_data, |v| v["debugContext"]["debugData"]["requestApiTokenId"] = json!(7));
    assert_eq!(okta(&odd_debug_data).credential, None);
    let no_debug_object = edit(&in_debug_data, |v| v["debugContext"] = json!("n/a"));
    assert_eq!(okta(&no_debug_object).credential, None);
}

#[test]
fn okta_failed_login_and_denied_sign_on() {
    let failed = okta(OKTA_LOGIN_FAILURE);
    let expected = AuditEvent {
        id: "8e02c4b6-2c51-11f1-b7d3-15a9e0f6c472".into(),
        time: time("2026-01-19T03:20:11.402Z"),
        account: "00u8f2kq1vEXAMPLE697".into(),
        action: "user.session.start".into(),
        outcome: Outcome::Failure,
        // The password is named by its kind only (`credentialType`), not by an id.
        credential: None,
        source: Source {
            ip: Some("198.51.100.23".parse().unwrap()),
            country: Some("Netherlands".into()),
            asn: Some(64511),
            as_org: Some("example hosting".into()),
            provider: None,
            user_agent: Some("backup-agent/4.2 (linux; amd64)".into()),
        },
        target: Target { system: Some("okta".into()), resource: None },
        bytes: None,
        records: None,
        reason: Some("INVALID_CREDENTIALS".into()),
        tenant: None,
        session: None,
        invoked_by: None,
        mfa: None,
        attributes: None,
    };
    assert_eq!(failed, expected);
    // The same failed login through OCSF (an Okta product) lands on the same account.
    assert_eq!(ocsf(OCSF_AUTHENTICATION_FAILURE).account, failed.account);

    let denied = okta(OKTA_SIGN_ON_DENIED);
    assert_eq!(
        (denied.account.as_ref(), denied.action.as_ref(), denied.outcome, denied.reason.as_deref()),
        (
            "00u3rptbotEXAMPLE18",
            "policy.evaluate_sign_on",
            Outcome::Denied,
            Some("Sign-on policy evaluation resulted in DENY")
        )
    );
    assert_eq!((denied.source.country.as_deref(), denied.source.asn), (Some("Brazil"), None));
    assert_eq!(denied.target.resource.as_deref(), Some("rul4dnyEXAMPLE0off1"));
}

#[test]
fn okta_outcome_results() {
    let with_result = |result: Value| okta(&edit(OKTA_LOGIN_FAILURE, |v| v["outcome"]["result"] = result)).outcome;
    assert_eq!(with_result(json!("SUCCESS")), Outcome::Success);
    assert_eq!(with_result(json!("FAILURE")), Outcome::Failure);
    assert_eq!(with_result(json!("DENY")), Outcome::Denied);
    for other in ["ALLOW", "CHALLENGE", "SKIPPED", "RATE_LIMIT", "UNKNOWN", "DEFERRED"] {
        assert_eq!(with_result(json!(other)), Outcome::Success, "{other}");
    }
    assert_eq!(with_result(Value::Null), Outcome::Success);
    let no_outcome = edit(OKTA_LOGIN_FAILURE, |v| {
        v.as_object_mut().unwrap().remove("outcome");
    });
    assert_eq!((okta(&no_outcome).outcome, okta(&no_outcome).reason), (Outcome::Success, None));
}

#[test]
fn okta_service_app_and_system_actors() {
    let grant = okta(OKTA_TOKEN_GRANT);
    assert_eq!(
        (grant.account.as_ref(), grant.action.as_ref(), grant.outcome, &grant.credential),
        (ETL_APP, "app.oauth2.as.token.grant.access_token", Outcome::Success, &None)
    );
    assert_eq!(grant.source.ip, Some("2001:db8:85a3::8a2e:370:7334".parse().unwrap()));
    assert_eq!(grant.target.resource.as_deref(), Some("aus2EXAMPLEas0001"));

    let revoke = okta(OKTA_API_TOKEN_REVOKE);
    assert_eq!(revoke.account, "system@okta.com");
    assert_eq!(revoke.source, Source::default(), "nulls throughout `client` are absent values");
    let by_alternate_id = edit(OKTA_API_TOKEN_REVOKE, |v| {
        v["actor"].as_object_mut().unwrap().remove("id");
        v["actor"]["alternateId"] = json!("okta-system");
    });
    assert_eq!(okta(&by_alternate_id).account, "okta-system");
}

#[test]
fn okta_api_token_lifecycle() {
    let create = okta(OKTA_API_TOKEN_CREATE);
    assert_eq!((create.account.as_ref(), create.action.as_ref()), (SVC_PROVISIONING, "credential.create"));
    assert_eq!(create.credential, key(HR_SYNC_TOKEN, Some("api_token"), Some(SVC_PROVISIONING)));
    assert_eq!(create.lifecycle(), Some(Lifecycle::Create));

    let revoke = okta(OKTA_API_TOKEN_REVOKE);
    assert_eq!(revoke.action, "credential.revoke");
    assert_eq!(revoke.credential, key(HR_SYNC_TOKEN, Some("api_token"), None), "a revocation names no owner");

    // Only a lifecycle that happened changes the credential.
    let failed = edit(OKTA_API_TOKEN_CREATE, |v| v["outcome"] = json!({"result": "FAILURE", "reason": "quota"}));
    let failed = okta(&failed);
    assert_eq!(
        (failed.action.as_ref(), failed.outcome, &failed.credential),
        ("system.api_token.create", Outcome::Failure, &None)
    );
    // The token is the target of type `Token`, wherever it is in the list.
    let more_targets = edit(OKTA_API_TOKEN_CREATE, |v| {
        v["target"] = json!([{"id": "00uOTHER", "type": "User"}, v["target"][0].clone()]);
    });
    assert_eq!(okta(&more_targets).credential.map(|c| c.id.into_owned()), Some(HR_SYNC_TOKEN.to_string()));
    let no_token = edit(OKTA_API_TOKEN_CREATE, |v| v["target"] = json!([{"id": "00uOTHER", "type": "User"}]));
    assert_rejects(InputFormat::Okta, &no_token, DecodeErrorKind::MissingField, Some("target[].id"), "of type `Token`");
}

#[test]
fn okta_client_credential_lifecycle() {
    let deactivate = okta(OKTA_CLIENT_SECRET_DEACTIVATE);
    assert_eq!((deactivate.account.as_ref(), deactivate.action.as_ref()), ("00u2secadmEXAMPLE33", "credential.revoke"));
    // The app presents its secret, so the app owns it, whoever made the change.
    assert_eq!(deactivate.credential, key("ocs5etlEXAMPLEsec01", Some("client_secret"), Some(ETL_APP)));

    let with_event_type = |event_type: &str| {
        let text = edit(OKTA_CLIENT_SECRET_DEACTIVATE, |v| v["eventType"] = json!(event_type));
        let event = okta(&text);
        (event.action.into_owned(), event.credential.map(|c| c.id.into_owned()))
    };
    let secret = Some("ocs5etlEXAMPLEsec01".to_string());
    assert_eq!(
        with_event_type("app.oauth2.credentials.lifecycle.create"),
        ("credential.create".into(), secret.clone())
    );
    assert_eq!(with_event_type("app.oauth2.credentials.lifecycle.delete"), ("credential.revoke".into(), secret));
    // Made active again: an ordinary action (the engine has no "unrevoke").
    assert_eq!(
        with_event_type("app.oauth2.credentials.lifecycle.activate"),
        ("app.oauth2.credentials.lifecycle.activate".into(), None)
    );
    let key_pair = edit(OKTA_CLIENT_SECRET_DEACTIVATE, |v| v["target"][1]["id"] = json!("pks2etlEXAMPLEjwk01"));
    assert_eq!(okta(&key_pair).credential.and_then(|c| c.kind).as_deref(), Some("jwk"));
    let app_only = edit(OKTA_CLIENT_SECRET_DEACTIVATE, |v| {
        v["target"].as_array_mut().unwrap().truncate(1);
    });
    assert_rejects(
        InputFormat::Okta,
        &app_only,
        DecodeErrorKind::MissingField,
        Some("target[].id"),
        "other than the `AppInstance`",
    );
}

#[test]
fn okta_rejections_name_their_path() {
    let o = InputFormat::Okta;
    let remove = |field: &'static str| {
        edit(OKTA_API_TOKEN_USE, move |v| {
            v.as_object_mut().unwrap().remove(field);
        })
    };
    assert_rejects(o, &remove("actor"), DecodeErrorKind::MissingField, Some("actor.id"), "is required but missing");
    assert_rejects(o, &remove("published"), DecodeErrorKind::MissingField, Some("published"), "required");
    assert_rejects(o, &remove("eventType"), DecodeErrorKind::MissingField, Some("eventType"), "required");
    let anonymous = edit(OKTA_API_TOKEN_USE, |v| v["actor"] = json!({"type": "User", "displayName": "?"}));
    assert_rejects(o, &anonymous, DecodeErrorKind::MissingField, Some("actor.id"), "and so is `actor.alternateId`");
    let cases = [
        ("/published", json!(1768804867318u64), "published", "expected a string, found a number"),
        ("/published", json!("2026-01-19 06:41:07"), "published", "is not a valid time"),
        ("/actor", json!(["00u9prov1sEXAMPLE697"]), "actor", "expected an object, found an array"),
        ("/actor/id", json!(42), "actor.id", "expected a string, found a number"),
        ("/eventType", json!({"name": "x"}), "eventType", "expected a string, found an object"),
        ("/outcome/result", json!(true), "outcome.result", "expected a string, found a boolean"),
        ("/client/ipAddress", json!("192.0.2.999"), "client.ipAddress", "`192.0.2.999` is not an IP address"),
        ("/client/geographicalContext", json!("Ireland"), "client.geographicalContext", "expected an object"),
        ("/securityContext/asNumber", json!("AS64496"), "securityContext.asNumber", "expected an integer"),
        ("/securityContext/asNumber", json!(5_000_000_000u64), "securityContext.asNumber", "is not an AS number"),
        (
            "/transaction/detail/requestApiTokenId",
            json!(7),
            "transaction.detail.requestApiTokenId",
            "expected a string",
        ),
        ("/target", json!({"id": "x"}), "target", "expected an array, found an object"),
        ("/target/0", json!("00u4leaverEXAMPLE12"), "target[0]", "expected an object, found a string"),
        ("/target/0/type", json!(1), "target[0].type", "expected a string, found a number"),
    ];
    for (pointer, value, field, problem) in cases {
        let text = edit(OKTA_API_TOKEN_USE, |v| *v.pointer_mut(pointer).unwrap() = value);
        assert_rejects(o, &text, DecodeErrorKind::InvalidField, Some(field), problem);
    }
    let long = edit(OKTA_API_TOKEN_USE, |v| v["actor"]["id"] = json!("u".repeat(300)));
    assert_rejects(o, &long, DecodeErrorKind::InvalidField, Some("actor.id"), "longer than 256 characters");
}

#[test]
fn an_okta_api_token_used_after_its_revocation_raises_revoked_key_use() {
    use crate::detection::engine::{Engine, EngineOptions};
    let detectors = crate::detection::pack::load().expect("built-in pack");
    let mut engine = Engine::new(detectors, EngineOptions::default());
    let late_use = edit(OKTA_API_TOKEN_USE, |v| {
        v["published"] = json!("2026-01-19T12:00:00.000Z");
        v["uuid"] = json!("late-use");
    });
    let mut alerts = Vec::new();
    for event in [OKTA_API_TOKEN_CREATE, OKTA_API_TOKEN_USE, OKTA_API_TOKEN_REVOKE, &late_use] {
        engine.process(&okta(event), &mut alerts).expect("in time");
    }
    let fired: Vec<(&str, Option<&str>, &str)> =
        alerts.iter().map(|a| (a.detector.as_str(), a.credential_id.as_deref(), a.account.as_str())).collect();
    assert_eq!(fired, vec![("revoked-key-use", Some(HR_SYNC_TOKEN), SVC_PROVISIONING)]);
}
