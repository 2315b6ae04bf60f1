//! OCSF events mapped onto the event, and rejected.

use super::*;

// ---------------------------------------------------------------------------------------------
// OCSF

#[test]
fn ocsf_successful_api_activity() {
    let event = ocsf(OCSF_API_ACTIVITY);
    let expected = AuditEvent {
        id: "0c5b8e6f-7a51-4c7e-9c38-1f9b1f0e5a01".into(),
        time: 1_768_792_365_123,
        account: SVC_REPORTING.into(),
        action: "s3.GetObject".into(),
        outcome: Outcome::Success,
        credential: key("AKIAIOSFODNN7EXAMPLE", Some("api_key"), None),
        source: Source {
            ip: Some("203.0.113.7".parse().unwrap()),
            country: Some("DE".into()),
            asn: Some(64500),
            as_org: Some("EXAMPLE-NET".into()),
            provider: None,
            user_agent: Some(
                "[aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64 api/s3#1.58.2]".into(),
            ),
        },
        target: Target {
            system: Some("s3.amazonaws.com".into()),
            resource: Some("arn:aws:s3:::acme-exports/contacts/2026-01-18.csv.gz".into()),
        },
        bytes: Some(48213),
        records: None,
        reason: None,
        tenant: Some("111122223333".into()),
        session: None,
        invoked_by: None,
        // `actor.session.is_mfa`.
        mfa: Some(false),
        attributes: None,
    };
    assert_eq!(event, expected);
    // The same call through the CloudTrail format is the same account doing the same action.
    let from_cloudtrail = cloudtrail(CT_IAM_USER_GET_OBJECT);
    assert_eq!((&from_cloudtrail.account, &from_cloudtrail.action), (&event.account, &event.action));
}

#[test]
fn ocsf_failed_authentication() {
    let event = ocsf(OCSF_AUTHENTICATION_FAILURE);
    let expected = AuditEvent {
        id: "evt-2a7e4c1d8b3f".into(),
        time: 1_768_792_811_000,
        // The subject that authenticates, `user`.
        account: "00u8f2kq1vEXAMPLE697".into(),
        action: "auth.login".into(),
        outcome: Outcome::Failure,
        credential: None,
        source: Source {
            ip: Some("198.51.100.23".parse().unwrap()),
            country: Some("NL".into()),
            asn: None,
            as_org: None,
            provider: None,
            user_agent: Some("backup-agent/4.2 (linux; amd64)".into()),
        },
        target: Target { system: Some("acme.okta.com".into()), resource: None },
        bytes: None,
        records: None,
        reason: Some("INVALID_CREDENTIALS".into()),
        tenant: Some("acme".into()),
        session: None,
        invoked_by: None,
        mfa: Some(false),
        attributes: None,
    };
    assert_eq!(event, expected);
    let with_mfa = edit(OCSF_AUTHENTICATION_FAILURE, |v| v["is_mfa"] = json!(true));
    assert_eq!(ocsf(&with_mfa).mfa, Some(true));
    let not_a_bool = edit(OCSF_AUTHENTICATION_FAILURE, |v| v["is_mfa"] = json!("yes"));
    let e = error(InputFormat::Ocsf, &not_a_bool);
    assert_eq!((e.field.as_deref(), e.problem.as_str()), (Some("is_mfa"), "expected a boolean, found a string"));

    let logoff = edit(OCSF_AUTHENTICATION_FAILURE, |v| {
        v["activity_id"] = json!(2);
        v["status_id"] = json!(1);
    });
    let logoff = ocsf(&logoff);
    assert_eq!((logoff.action.as_ref(), logoff.outcome), ("auth.logout", Outcome::Success));
    let by_name = edit(OCSF_AUTHENTICATION_FAILURE, |v| {
        v["user"].as_object_mut().unwrap().remove("uid");
        v.as_object_mut().unwrap().remove("dst_endpoint");
    });
    let by_name = ocsf(&by_name);
    assert_eq!(by_name.account, "svc-backup@acme.example");
    assert_eq!(by_name.target.system.as_deref(), Some("Okta"), "then the authentication `service`");
    let status_text_only = edit(OCSF_AUTHENTICATION_FAILURE, |v| {
        v.as_object_mut().unwrap().remove("status_id");
    });
    assert_eq!(ocsf(&status_text_only).outcome, Outcome::Failure);
}

#[test]
fn ocsf_outcomes_of_other_classes() {
    let with_status = |status_id: i64, error: Option<&str>| {
        let text = edit(OCSF_API_ACTIVITY, |v| {
            v["status_id"] = json!(status_id);
            if let Some(code) = error {
                v["api"]["response"]["error"] = json!(code);
            }
        });
        let event = ocsf(&text);
        (event.outcome, event.reason.map(Cow::into_owned))
    };
    assert_eq!(with_status(2, None), (Outcome::Denied, None));
    assert_eq!(with_status(2, Some("AccessDenied")), (Outcome::Denied, Some("AccessDenied".into())));
    assert_eq!(with_status(2, Some("InvalidClientTokenId")), (Outcome::Failure, Some("InvalidClientTokenId".into())));
    assert_eq!(with_status(0, None), (Outcome::Success, None));
    assert_eq!(with_status(99, None), (Outcome::Success, None));
}

#[test]
fn ocsf_assumed_role_session_and_credentials() {
    let assumed = edit(OCSF_API_ACTIVITY, |v| {
        v["actor"] = json!({
            "user": {
                "type": "AssumedRole",
                "uid": "AROA5EXAMPLEROLEID:build-8812",
                "uid_alt": "arn:aws:sts::111122223333:assumed-role/ci-deployer/build-8812",
                "credential_uid": "ASIA5EXAMPLETEMPKEY2"
            },
            "session": {"issuer": CI_DEPLOYER, "created_time": 1768792752000u64, "uid": "sess-1"}
        });
    });
    let event = ocsf(&assumed);
    assert_eq!(event.account, CI_DEPLOYER);
    assert_eq!(event.credential, key("ASIA5EXAMPLETEMPKEY2", Some("session_token"), None));
    assert_eq!(event.session, Some(Session { name: "sess-1".into(), instance: None }));
    let mfa_session = edit(&assumed, |v| v["actor"]["session"]["is_mfa"] = json!(true));
    assert_eq!(ocsf(&mfa_session).mfa, Some(true));
    let bad_mfa = edit(&assumed, |v| v["actor"]["session"]["is_mfa"] = json!(1));
    assert_eq!(error(InputFormat::Ocsf, &bad_mfa).field.as_deref(), Some("actor.session.is_mfa"));
    let session_only = edit(&assumed, |v| {
        v["actor"]["user"].as_object_mut().unwrap().remove("credential_uid");
    });
    assert_eq!(ocsf(&session_only).credential, key("sess-1", Some("session"), None));
    let no_service = edit(OCSF_API_ACTIVITY, |v| {
        v["api"].as_object_mut().unwrap().remove("service");
        v.as_object_mut().unwrap().remove("dst_endpoint");
    });
    let no_service = ocsf(&no_service);
    assert_eq!((no_service.action.as_ref(), no_service.target.system), ("GetObject", None));
    let other_class = edit(OCSF_API_ACTIVITY, |v| {
        v["class_uid"] = json!(3001);
        v["api"]["operation"] = json!("CreateUser");
        v["api"]["service"]["name"] = json!("iam.amazonaws.com");
    });
    assert_eq!(ocsf(&other_class).action, "iam.CreateUser");
}

#[test]
fn ocsf_rejections_name_their_path() {
    let o = InputFormat::Ocsf;
    let no_actor = edit(OCSF_API_ACTIVITY, |v| {
        v.as_object_mut().unwrap().remove("actor");
    });
    assert_rejects(o, &no_actor, DecodeErrorKind::MissingField, Some("actor.user"), "is required but missing");
    let nameless = edit(OCSF_API_ACTIVITY, |v| v["actor"]["user"] = json!({"type": "IAMUser"}));
    assert_rejects(o, &nameless, DecodeErrorKind::MissingField, Some("actor.user"), "has neither `uid` nor `name`");
    let no_subject = edit(OCSF_AUTHENTICATION_FAILURE, |v| {
        v.as_object_mut().unwrap().remove("user");
    });
    assert_rejects(o, &no_subject, DecodeErrorKind::MissingField, Some("user"), "Authentication event");
    let no_operation = edit(OCSF_API_ACTIVITY, |v| {
        v["api"].as_object_mut().unwrap().remove("operation");
    });
    assert_rejects(o, &no_operation, DecodeErrorKind::MissingField, Some("api.operation"), "required");
    let no_time = edit(OCSF_API_ACTIVITY, |v| {
        v.as_object_mut().unwrap().remove("time");
    });
    assert_rejects(o, &no_time, DecodeErrorKind::MissingField, Some("time"), "required");
    let cases = [
        ("/time", json!("2026-01-19T03:12:45Z"), "time", "expected integer epoch milliseconds, found a string"),
        ("/time", json!(-5), "time", "-5 is before 1970"),
        ("/actor", json!("svc-reporting"), "actor", "expected an object, found a string"),
        ("/actor/user/uid", json!(42), "actor.user.uid", "expected a string, found a number"),
        ("/src_endpoint/ip", json!("not-an-ip"), "src_endpoint.ip", "`not-an-ip` is not an IP address"),
        ("/status_id", json!("1"), "status_id", "expected an integer, found a string"),
        ("/traffic/bytes_out", json!(-1), "traffic.bytes_out", "-1 is negative"),
        ("/resources", json!({"uid": "x"}), "resources", "expected an array, found an object"),
        ("/cloud/account", json!(["111122223333"]), "cloud.account", "expected an object, found an array"),
    ];
    for (pointer, value, field, problem) in cases {
        let text = edit(OCSF_API_ACTIVITY, |v| *v.pointer_mut(pointer).unwrap() = value);
        assert_rejects(o, &text, DecodeErrorKind::InvalidField, Some(field), problem);
    }
}

#[test]
fn ocsf_account_change_of_a_key_is_its_lifecycle() {
    let disable = ocsf(OCSF_ACCOUNT_CHANGE_KEY_DISABLE);
    let expected = AuditEvent {
        id: "acct-chg-5d21b7e0".into(),
        time: 1_768_817_400_000,
        // Who made the change; the key belongs to the changed account, `user`.
        account: "arn:aws:iam::111122223333:user/ops-admin".into(),
        action: "credential.revoke".into(),
        outcome: Outcome::Success,
        credential: key("AKIAIOSFODNN7EXAMPLE", Some("api_key"), Some(SVC_REPORTING)),
        source: Source {
            ip: Some("203.0.113.50".parse().unwrap()),
            country: None,
            asn: None,
            as_org: None,
            provider: None,
            user_agent: Some("key-rotator/1.8".into()),
        },
        target: Target::default(),
        bytes: None,
        records: None,
        reason: None,
        tenant: Some("111122223333".into()),
        session: None,
        invoked_by: None,
        mfa: None,
        attributes: None,
    };
    assert_eq!(disable, expected);

    let with_activity = |activity: i64, status: i64| {
        let text = edit(OCSF_ACCOUNT_CHANGE_KEY_DISABLE, |v| {
            v["activity_id"] = json!(activity);
            v["status_id"] = json!(status);
        });
        let event = ocsf(&text);
        (event.action.into_owned(), event.credential.and_then(|c| c.owner).map(Cow::into_owned))
    };
    let owner = Some(SVC_REPORTING.to_string());
    assert_eq!(with_activity(1, 1), ("credential.create".into(), owner.clone()));
    assert_eq!(with_activity(6, 1), ("credential.revoke".into(), owner.clone()));
    assert_eq!(with_activity(5, 0), ("credential.revoke".into(), owner), "an unknown status is no failure");
    // A change that failed, or that is not a create, disable or delete, changes no key: the key
    // stays the one presented (none here), and the action names the activity.
    assert_eq!(with_activity(5, 2), ("account.disable".into(), None));
    assert_eq!(with_activity(3, 1), ("account.password_change".into(), None));
    assert_eq!(with_activity(99, 1), ("account.change".into(), None));

    // An account change without a key is an ordinary account change; with `api.operation` the
    // action is the API call, as for API Activity.
    let no_key = edit(OCSF_ACCOUNT_CHANGE_KEY_DISABLE, |v| {
        v["user"].as_object_mut().unwrap().remove("credential_uid");
    });
    let no_key = ocsf(&no_key);
    assert_eq!((no_key.action.as_ref(), &no_key.credential), ("account.disable", &None));
    let api_call = edit(OCSF_ACCOUNT_CHANGE_KEY_DISABLE, |v| {
        v["activity_id"] = json!(3);
        v["api"] = json!({"operation": "UpdateLoginProfile", "service": {"name": "iam.amazonaws.com"}});
    });
    assert_eq!(ocsf(&api_call).action, "iam.UpdateLoginProfile");
    // A change an account made to itself has no actor: the account is the changed one.
    let self_service = edit(OCSF_ACCOUNT_CHANGE_KEY_DISABLE, |v| {
        v.as_object_mut().unwrap().remove("actor");
    });
    assert_eq!(ocsf(&self_service).account, SVC_REPORTING);
    let nobody = edit(&self_service, |v| v["user"] = json!({"credential_uid": "AKIAIOSFODNN7EXAMPLE"}));
    assert_rejects(
        InputFormat::Ocsf,
        &nobody,
        DecodeErrorKind::MissingField,
        Some("actor.user"),
        "the changed account",
    );
    let bad_activity = edit(OCSF_ACCOUNT_CHANGE_KEY_DISABLE, |v| v["activity_id"] = json!("Disable"));
    assert_rejects(
        InputFormat::Ocsf,
        &bad_activity,
        DecodeErrorKind::InvalidField,
        Some("activity_id"),
        "expected an integer",
    );
}

#[test]
fn a_key_used_after_an_ocsf_account_change_disabled_it_raises_revoked_key_use() {
    use crate::detection::engine::{Engine, EngineOptions};
    let detectors = crate::detection::pack::load().expect("built-in pack");
    let mut engine = Engine::new(detectors, EngineOptions::default());
    let late_use = edit(OCSF_API_ACTIVITY, |v| {
        v["time"] = json!(1_768_824_000_000u64);
        v["metadata"]["uid"] = json!("late-use");
    });
    let mut alerts = Vec::new();
    for event in [OCSF_API_ACTIVITY, OCSF_ACCOUNT_CHANGE_KEY_DISABLE, &late_use] {
        engine.process(&ocsf(event), &mut alerts).expect("in time");
    }
    let fired: Vec<(&str, Option<&str>)> =
        alerts.iter().map(|a| (a.detector.as_str(), a.credential_id.as_deref())).collect();
    assert_eq!(fired, vec![("revoked-key-use", Some("AKIAIOSFODNN7EXAMPLE"))]);
}
