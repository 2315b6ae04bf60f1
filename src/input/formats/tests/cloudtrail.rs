//! CloudTrail records mapped onto the event, and rejected.

use super::*;

// ---------------------------------------------------------------------------------------------
// CloudTrail: records mapped

#[test]
fn cloudtrail_iam_user_call_with_an_access_key() {
    let event = cloudtrail(CT_IAM_USER_GET_OBJECT);
    let expected = AuditEvent {
        id: "0c5b8e6f-7a51-4c7e-9c38-1f9b1f0e5a01".into(),
        time: time("2026-01-19T03:12:45Z"),
        account: SVC_REPORTING.into(),
        action: "s3.GetObject".into(),
        outcome: Outcome::Success,
        credential: key("AKIAIOSFODNN7EXAMPLE", Some("api_key"), Some(SVC_REPORTING)),
        source: Source {
            ip: Some("203.0.113.7".parse().unwrap()),
            country: None,
            asn: None,
            as_org: None,
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
        mfa: None,
        attributes: None,
    };
    assert_eq!(event, expected);
    assert!(matches!(event.account, Cow::Borrowed(_)), "strings borrow from the message");
}

#[test]
fn cloudtrail_assumed_role_is_its_role_for_every_session() {
    let event = cloudtrail(CT_ASSUMED_ROLE);
    let expected = AuditEvent {
        id: "7f3c2a9e-1b5d-4c8a-a2e4-6d0f9b3c8e21".into(),
        time: time("2026-01-19T03:14:02Z"),
        account: CI_DEPLOYER.into(),
        action: "ec2.DescribeInstances".into(),
        outcome: Outcome::Success,
        credential: key("ASIA5EXAMPLETEMPKEY1", Some("session_token"), Some(CI_DEPLOYER)),
        source: Source {
            ip: Some("2001:db8:4006:812::200e".parse().unwrap()),
            country: None,
            asn: None,
            as_org: None,
            provider: None,
            user_agent: Some("aws-cli/2.17.20 md/awscrt#0.20.11 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.9 cfg/retry-mode#standard md/installer#exe md/distrib#amzn.2023 command/ec2.describe-instances".into()),
        },
        target: Target { system: Some("ec2.amazonaws.com".into()), resource: None },
        bytes: None,
        records: None,
        reason: None,
        tenant: Some("111122223333".into()),
        // EC2 delivered the credentials (`ec2RoleDelivery`): the session is the instance's.
        session: Some(Session { name: "i-0a1b2c3d4e5f67890".into(), instance: Some("i-0a1b2c3d4e5f67890".into()) }),
        invoked_by: None,
        mfa: Some(false),
        attributes: None,
    };
    assert_eq!(event, expected);
    let other_session = edit(CT_ASSUMED_ROLE, |v| {
        v["userIdentity"]["arn"] = json!("arn:aws:sts::111122223333:assumed-role/ci-deployer/build-9001");
    });
    let other_session = cloudtrail(&other_session);
    assert_eq!(other_session.account, CI_DEPLOYER);
    assert_eq!(other_session.session.unwrap().name, "build-9001");
    // Without a session issuer the session ARN is all there is.
    let no_issuer = edit(CT_ASSUMED_ROLE, |v| {
        v["userIdentity"]["sessionContext"].as_object_mut().unwrap().remove("sessionIssuer");
    });
    assert_eq!(
        cloudtrail(&no_issuer).account,
        "arn:aws:sts::111122223333:assumed-role/ci-deployer/i-0a1b2c3d4e5f67890"
    );
}

#[test]
fn cloudtrail_aws_service_is_the_invoker_not_an_account() {
    let own = cloudtrail(CT_AWS_SERVICE_EVENT);
    assert_eq!(own.account, "secretsmanager.amazonaws.com");
    assert_eq!(own.invoked_by.as_deref(), Some("secretsmanager.amazonaws.com"));
    assert_eq!(
        (own.action.as_ref(), own.source.ip, own.source.provider.as_deref()),
        ("secretsmanager.RotationSucceeded", None, Some("aws"))
    );
    assert!(own.by_provider_service(), "a service acting on its own is not judged");
    // A role's call made through a service stays the role's.
    let through = edit(CT_ASSUMED_ROLE, |v| {
        v["userIdentity"]["invokedBy"] = json!("cloudformation.amazonaws.com");
    });
    let through = cloudtrail(&through);
    assert_eq!(through.account, CI_DEPLOYER);
    assert_eq!(through.invoked_by.as_deref(), Some("cloudformation.amazonaws.com"));
    assert!(!through.by_provider_service());
}

#[test]
fn cloudtrail_mfa_of_a_sign_in_and_of_a_session() {
    let with_mfa = include_str!("../../../../tests/fixtures/cloudtrail/console-login-with-mfa.json");
    let without = include_str!("../../../../tests/fixtures/cloudtrail/console-login-without-mfa.json");
    let (with_mfa, without) = (cloudtrail(with_mfa), cloudtrail(without));
    assert_eq!(
        (with_mfa.action.as_ref(), with_mfa.outcome, with_mfa.mfa),
        ("auth.login", Outcome::Success, Some(true))
    );
    assert_eq!((without.account.as_ref(), without.mfa), ("arn:aws:iam::111122223333:user/ops-admin", Some(false)));
    // A call says whether its session was issued after MFA; a sign-in's own answer wins.
    let session = |value: Value| {
        cloudtrail(&edit(CT_ASSUMED_ROLE, |v| {
            v["userIdentity"]["sessionContext"]["attributes"]["mfaAuthenticated"] = value.clone()
        }))
        .mfa
    };
    assert_eq!(
        (session(json!("true")), session(json!("false")), session(json!("maybe")), session(json!(7))),
        (Some(true), Some(false), None, None)
    );
    // An IAM user's session credentials (GetSessionToken) have a context without an issuer.
    let user_session = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v["userIdentity"]["sessionContext"] = json!({"attributes": {"mfaAuthenticated": "true"}});
    });
    let user_session = cloudtrail(&user_session);
    assert_eq!(
        (user_session.account.as_ref(), user_session.mfa),
        ("arn:aws:iam::111122223333:user/svc-reporting", Some(true))
    );
}

#[test]
fn cloudtrail_failed_console_login_lands_on_the_users_arn() {
    let event = cloudtrail(CT_CONSOLE_LOGIN_FAILURE);
    let expected = AuditEvent {
        id: "2a7e4c1d-8b3f-4e6a-9c0d-5f1b7a3e9d42".into(),
        time: time("2026-01-19T03:20:11Z"),
        // The record has no ARN; it is rebuilt so failures and successes are one account.
        account: "arn:aws:iam::111122223333:user/svc-backup".into(),
        action: "auth.login".into(),
        outcome: Outcome::Failure,
        // `"accessKeyId": ""`: a console sign-in presents no key.
        credential: None,
        source: Source {
            ip: Some("198.51.100.23".parse().unwrap()),
            country: None,
            asn: None,
            as_org: None,
            provider: None,
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0".into()),
        },
        target: Target { system: Some("signin.amazonaws.com".into()), resource: None },
        bytes: None,
        records: None,
        reason: Some("Failed authentication".into()),
        tenant: Some("111122223333".into()),
        session: None,
        invoked_by: None,
        mfa: Some(false),
        attributes: None,
    };
    assert_eq!(event, expected);

    let success = edit(CT_CONSOLE_LOGIN_FAILURE, |v| {
        v["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/svc-backup");
        v["responseElements"]["ConsoleLogin"] = json!("Success");
        v.as_object_mut().unwrap().remove("errorMessage");
    });
    let success = cloudtrail(&success);
    assert_eq!((success.account.as_ref(), success.outcome), (expected.account.as_ref(), Outcome::Success));

    let gov_cloud = edit(CT_CONSOLE_LOGIN_FAILURE, |v| v["awsRegion"] = json!("us-gov-west-1"));
    assert_eq!(cloudtrail(&gov_cloud).account, "arn:aws-us-gov:iam::111122223333:user/svc-backup");
    let no_account_id = edit(CT_CONSOLE_LOGIN_FAILURE, |v| {
        v["userIdentity"].as_object_mut().unwrap().remove("accountId");
    });
    assert_eq!(cloudtrail(&no_account_id).account, "AIDA6ON6E4XEP7EXAMPLE", "then principalId");
}

#[test]
fn cloudtrail_access_denied_is_denied_with_the_message_as_reason() {
    let event = cloudtrail(CT_ACCESS_DENIED);
    assert_eq!(event.action, "secretsmanager.GetSecretValue");
    assert_eq!(event.outcome, Outcome::Denied);
    assert_eq!(
        event.reason.as_deref(),
        Some("User: arn:aws:iam::111122223333:user/svc-reporting is not authorized to perform: secretsmanager:GetSecretValue on resource: prod/db/root because no identity-based policy allows the secretsmanager:GetSecretValue action")
    );
    assert_eq!(event.credential, key("AKIAIOSFODNN7EXAMPLE", Some("api_key"), Some(SVC_REPORTING)));
    assert_eq!(event.source.ip, Some("192.0.2.66".parse().unwrap()));
    assert_eq!(event.target, Target { system: Some("secretsmanager.amazonaws.com".into()), resource: None });

    let code_only = edit(CT_ACCESS_DENIED, |v| {
        v.as_object_mut().unwrap().remove("errorMessage");
    });
    assert_eq!(cloudtrail(&code_only).reason.as_deref(), Some("AccessDenied"));
}

#[test]
fn cloudtrail_error_codes_sorted_into_outcomes() {
    for (code, outcome) in [
        ("AccessDenied", Outcome::Denied),
        ("AccessDeniedException", Outcome::Denied),
        ("Client.UnauthorizedOperation", Outcome::Denied),
        ("UnauthorizedOperation", Outcome::Denied),
        ("UnauthorizedAccess", Outcome::Denied),
        ("InvalidClientTokenId", Outcome::Failure),
        ("SignatureDoesNotMatch", Outcome::Failure),
        ("AuthFailure", Outcome::Failure),
        ("Client.AuthFailure", Outcome::Failure),
        ("ExpiredToken", Outcome::Failure),
        ("InvalidAccessKeyId", Outcome::Failure),
        ("ThrottlingException", Outcome::Success),
        ("NoSuchKey", Outcome::Success),
        ("ValidationException", Outcome::Success),
        ("InternalError", Outcome::Success),
    ] {
        assert_eq!(crate::input::formats::cloudtrail::error_outcome(code), outcome, "{code}");
        let record = edit(CT_IAM_USER_GET_OBJECT, |v| v["errorCode"] = json!(code));
        let event = cloudtrail(&record);
        assert_eq!((event.outcome, event.reason.as_deref()), (outcome, Some(code)), "{code}");
    }
}

#[test]
fn cloudtrail_access_key_lifecycle() {
    let created = cloudtrail(CT_CREATE_ACCESS_KEY);
    let expected = AuditEvent {
        id: "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d".into(),
        time: time("2026-01-19T09:02:17Z"),
        account: "arn:aws:iam::111122223333:user/ops-admin".into(),
        action: "credential.create".into(),
        outcome: Outcome::Success,
        // The key created, issued to the user named in the response (not the admin's own key).
        credential: key("AKIAI44QH8DHBEXAMPLE", Some("api_key"), Some(SVC_REPORTING)),
        source: Source {
            ip: Some("203.0.113.50".parse().unwrap()),
            country: None,
            asn: None,
            as_org: None,
            provider: None,
            user_agent: Some("AWS Internal".into()),
        },
        target: Target { system: Some("iam.amazonaws.com".into()), resource: None },
        bytes: None,
        records: None,
        reason: None,
        tenant: Some("111122223333".into()),
        session: None,
        invoked_by: None,
        // The admin's console session was issued after MFA.
        mfa: Some(true),
        attributes: None,
    };
    assert_eq!(created, expected);
    assert_eq!(created.lifecycle(), Some(Lifecycle::Create));

    let deleted = cloudtrail(CT_DELETE_ACCESS_KEY);
    assert_eq!((deleted.action.as_ref(), deleted.lifecycle()), ("credential.revoke", Some(Lifecycle::Revoke)));
    assert_eq!(deleted.credential, key("AKIAIOSFODNN7EXAMPLE", Some("api_key"), Some(SVC_REPORTING)));
    assert_eq!(deleted.account, "arn:aws:iam::111122223333:user/ops-admin");

    let deactivated = edit(CT_DELETE_ACCESS_KEY, |v| {
        v["eventName"] = json!("UpdateAccessKey");
        v["requestParameters"]["status"] = json!("Inactive");
    });
    let deactivated = cloudtrail(&deactivated);
    assert_eq!(deactivated.action, "credential.revoke");
    assert_eq!(deactivated.credential, key("AKIAIOSFODNN7EXAMPLE", Some("api_key"), Some(SVC_REPORTING)));

    let reactivated = edit(CT_DELETE_ACCESS_KEY, |v| {
        v["eventName"] = json!("UpdateAccessKey");
        v["requestParameters"]["status"] = json!("Active");
    });
    let reactivated = cloudtrail(&reactivated);
    assert_eq!((reactivated.action.as_ref(), reactivated.lifecycle()), ("iam.UpdateAccessKey", None));
    assert_eq!(
        reactivated.credential,
        key("ASIA6ON6E4XEADMINSESS", Some("session_token"), Some("arn:aws:iam::111122223333:user/ops-admin")),
        "an ordinary call: the key the admin signed with"
    );

    // A user creating their own key: the owner is the caller, path and all.
    let own_key = edit(CT_CREATE_ACCESS_KEY, |v| {
        v["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/automation/svc-reporting");
        v["userIdentity"]["userName"] = json!("svc-reporting");
        v["requestParameters"] = Value::Null;
    });
    assert_eq!(
        cloudtrail(&own_key).credential.and_then(|c| c.owner).as_deref(),
        Some("arn:aws:iam::111122223333:user/automation/svc-reporting")
    );
}

#[test]
fn cloudtrail_login_profile_names_the_user_it_is_for() {
    const PROVISIONER: &str = "arn:aws:iam::444455556666:role/provisioner";
    let created = cloudtrail(CT_CREATE_LOGIN_PROFILE);
    assert_eq!((created.account.as_ref(), created.action.as_ref()), (PROVISIONER, "iam.CreateLoginProfile"));
    assert_eq!(created.lifecycle(), None, "a console password is not a key the engine follows");
    assert_eq!(
        created.target,
        Target {
            system: Some("iam.amazonaws.com".into()),
            resource: Some("arn:aws:iam::444455556666:user/mira.okafor".into())
        }
    );
    assert_eq!(created.credential, key("ASIA3XFRBF23PROVSESS", Some("session_token"), Some(PROVISIONER)));
    // Without a user name the call sets the caller's own password; a resource ARN, when the
    // record has one, still comes first; an odd value is as good as absent.
    let own = edit(CT_CREATE_LOGIN_PROFILE, |v| {
        v["eventName"] = json!("UpdateLoginProfile");
        v["requestParameters"].as_object_mut().unwrap().remove("userName");
    });
    assert_eq!(cloudtrail(&own).target.resource.as_deref(), Some(PROVISIONER));
    let with_resource = edit(CT_CREATE_LOGIN_PROFILE, |v| {
        v["resources"] = json!([{"ARN": "arn:aws:iam::444455556666:user/ops/mira.okafor"}]);
    });
    assert_eq!(
        cloudtrail(&with_resource).target.resource.as_deref(),
        Some("arn:aws:iam::444455556666:user/ops/mira.okafor")
    );
    let odd = edit(CT_CREATE_LOGIN_PROFILE, |v| v["requestParameters"]["userName"] = json!(17));
    assert_eq!(cloudtrail(&odd).target.resource.as_deref(), Some(PROVISIONER));
    // Other calls naming a user keep the resource they had.
    let other = edit(CT_CREATE_LOGIN_PROFILE, |v| v["eventName"] = json!("GetUser"));
    assert_eq!(cloudtrail(&other).target.resource, None);
    // A key created for a user the response does not name: the request's user.
    let key_for = edit(CT_CREATE_ACCESS_KEY, |v| {
        v["responseElements"]["accessKey"].as_object_mut().unwrap().remove("userName");
    });
    assert_eq!(cloudtrail(&key_for).credential.and_then(|c| c.owner).as_deref(), Some(SVC_REPORTING));
}

#[test]
fn cloudtrail_failed_lifecycle_calls_are_not_lifecycle_events() {
    let denied_delete = edit(CT_DELETE_ACCESS_KEY, |v| {
        v["errorCode"] = json!("AccessDenied");
        v["errorMessage"] =
            json!("User: arn:aws:iam::111122223333:user/ops-admin is not authorized to perform: iam:DeleteAccessKey");
    });
    let event = cloudtrail(&denied_delete);
    assert_eq!(
        (event.action.as_ref(), event.outcome, event.lifecycle()),
        ("iam.DeleteAccessKey", Outcome::Denied, None)
    );
    assert_eq!(event.credential.map(|c| c.id).as_deref(), Some("ASIA6ON6E4XEADMINSESS"));

    let denied_create = edit(CT_CREATE_ACCESS_KEY, |v| {
        v["errorCode"] = json!("AccessDenied");
        v["responseElements"] = Value::Null;
    });
    assert_eq!(cloudtrail(&denied_create).action, "iam.CreateAccessKey");
}

#[test]
fn cloudtrail_eventbridge_envelope_maps_its_detail() {
    let event = cloudtrail(CT_EVENTBRIDGE);
    let expected = AuditEvent {
        id: "c3d4e5f6-a7b8-4c9d-8e0f-2a3b4c5d6e7f".into(),
        // The record's own time and id, not the envelope's.
        time: time("2026-01-19T03:39:58Z"),
        account: CI_DEPLOYER.into(),
        action: "kms.Decrypt".into(),
        // Throttled: authenticated and authorized, so not a failure of the credential.
        outcome: Outcome::Success,
        credential: key("ASIA5EXAMPLETEMPKEY2", Some("session_token"), Some(CI_DEPLOYER)),
        source: Source {
            ip: Some("198.51.100.77".parse().unwrap()),
            country: None,
            asn: None,
            as_org: None,
            provider: None,
            user_agent: Some("aws-sdk-java/2.25.60 Linux/6.1.0 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS".into()),
        },
        target: Target {
            system: Some("kms.amazonaws.com".into()),
            resource: Some("arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab".into()),
        },
        bytes: None,
        records: None,
        reason: Some("Rate exceeded".into()),
        tenant: Some("111122223333".into()),
        session: Some(Session { name: "build-8812".into(), instance: None }),
        invoked_by: None,
        mfa: Some(false),
        attributes: None,
    };
    assert_eq!(event, expected);

    let sign_in = edit(CT_EVENTBRIDGE, |v| {
        v["detail-type"] = json!("AWS Console Sign In via CloudTrail");
        v["detail"] = serde_json::from_str(CT_CONSOLE_LOGIN_FAILURE).unwrap();
    });
    assert_eq!(cloudtrail(&sign_in), cloudtrail(CT_CONSOLE_LOGIN_FAILURE));
}

#[test]
fn cloudtrail_other_sources_and_resources() {
    // An AWS service calling on the caller's behalf names itself instead of an address.
    // An AWS service calling on the caller's behalf names itself instead of an address: no IP,
    // and the call is marked as AWS's.
    let via_service = edit(CT_IAM_USER_GET_OBJECT, |v| v["sourceIPAddress"] = json!("athena.amazonaws.com"));
    let source = cloudtrail(&via_service).source;
    assert_eq!((source.ip, source.provider.as_deref()), (None, Some("aws")));
    let internal = edit(CT_IAM_USER_GET_OBJECT, |v| v["sourceIPAddress"] = json!("AWS Internal"));
    assert_eq!(cloudtrail(&internal).source.provider.as_deref(), Some("aws"));
    let address = cloudtrail(CT_IAM_USER_GET_OBJECT).source;
    assert_eq!((address.ip.is_some(), address.provider), (true, None), "an address is left to enrichment");
    let lookalike = edit(CT_IAM_USER_GET_OBJECT, |v| v["sourceIPAddress"] = json!("evil.example.com"));
    assert_eq!(cloudtrail(&lookalike).source.provider, None);
    // No `resources`: the bucket named in the request.
    let no_resources = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v.as_object_mut().unwrap().remove("resources");
    });
    assert_eq!(cloudtrail(&no_resources).target.resource.as_deref(), Some("acme-exports"));
    // API-specific objects of an unexpected shape are ignored, not rejected.
    let odd = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v["requestParameters"] = json!("bucketName=acme-exports");
        v["additionalEventData"]["bytesTransferredOut"] = json!("48213");
        v.as_object_mut().unwrap().remove("resources");
    });
    let odd = cloudtrail(&odd);
    assert_eq!((odd.target.resource, odd.bytes), (None, None));
    // An AWS service event has only `invokedBy`.
    let service_event = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v["userIdentity"] = json!({"type": "AWSService", "invokedBy": "backup.amazonaws.com"});
    });
    let service_event = cloudtrail(&service_event);
    assert_eq!((service_event.account.as_ref(), service_event.credential), ("backup.amazonaws.com", None));
    // No eventID: the id derived from the bytes, as native.
    let no_id = edit(CT_IAM_USER_GET_OBJECT, |v| {
        v.as_object_mut().unwrap().remove("eventID");
    });
    let id = cloudtrail(&no_id).id.into_owned();
    assert!(id.starts_with("h-") && id.len() == 34, "{id}");
    assert_eq!(cloudtrail(&no_id).id, id, "stable");
}

// ---------------------------------------------------------------------------------------------
// CloudTrail: rejections

#[test]
fn cloudtrail_whole_log_file_is_rejected_with_a_hint_to_split_it() {
    let record: Value = serde_json::from_str(CT_IAM_USER_GET_OBJECT).unwrap();
    let log_file = json!({"Records": [record.clone(), record]}).to_string();
    let e = error(InputFormat::Cloudtrail, &log_file);
    assert_eq!((e.kind, e.field.as_deref()), (DecodeErrorKind::InvalidField, Some("Records")));
    assert_eq!(
        e.problem,
        "the message is a whole CloudTrail log file of 2 records; split it so that each message holds one record \
         (the objects of `Records`)"
    );
}

#[test]
fn cloudtrail_missing_and_bad_fields_name_their_path() {
    let c = InputFormat::Cloudtrail;
    let without = |field: &'static str| {
        edit(CT_IAM_USER_GET_OBJECT, |v| {
            v.as_object_mut().unwrap().remove(field);
        })
    };
    assert_rejects(
        c,
        &without("eventTime"),
        DecodeErrorKind::MissingField,
        Some("eventTime"),
        "is required but missing",
    );
    assert_rejects(c, &without("eventSource"), DecodeErrorKind::MissingField, Some("eventSource"), "required");
    assert_rejects(c, &without("eventName"), DecodeErrorKind::MissingField, Some("eventName"), "required");
    assert_rejects(c, &without("userIdentity"), DecodeErrorKind::MissingField, Some("userIdentity.arn"), "required");
    let cases = [
        ("eventTime", json!("19/01/2026 03:12:45"), "eventTime", "`19/01/2026 03:12:45` is not a valid time"),
        ("eventTime", json!(1768792365000u64), "eventTime", "expected a string, found a number"),
        ("eventName", json!(["GetObject"]), "eventName", "expected a string, found an array"),
        ("userIdentity", json!("svc-reporting"), "userIdentity", "expected an object, found a string"),
        ("resources", json!([{"ARN": 5}]), "resources[0].ARN", "expected a string, found a number"),
        ("resources", json!(["arn:aws:s3:::acme-exports"]), "resources[0]", "expected an object, found a string"),
        ("recipientAccountId", json!(111122223333u64), "recipientAccountId", "expected a string"),
    ];
    for (key, value, field, problem) in cases {
        let record = edit(CT_IAM_USER_GET_OBJECT, |v| v[key] = value);
        assert_rejects(c, &record, DecodeErrorKind::InvalidField, Some(field), problem);
    }
    let nobody = edit(CT_IAM_USER_GET_OBJECT, |v| v["userIdentity"] = json!({"type": "Unknown", "accessKeyId": ""}));
    assert_rejects(c, &nobody, DecodeErrorKind::MissingField, Some("userIdentity.arn"), "and so are `principalId`");
    let bad_arn = edit(CT_IAM_USER_GET_OBJECT, |v| v["userIdentity"]["arn"] = json!({"partition": "aws"}));
    assert_rejects(c, &bad_arn, DecodeErrorKind::InvalidField, Some("userIdentity.arn"), "found an object");
    let created_without_key = edit(CT_CREATE_ACCESS_KEY, |v| v["responseElements"] = Value::Null);
    assert_rejects(
        c,
        &created_without_key,
        DecodeErrorKind::MissingField,
        Some("responseElements.accessKey.accessKeyId"),
        "required",
    );
    let deleted_without_key = edit(CT_DELETE_ACCESS_KEY, |v| {
        v["requestParameters"].as_object_mut().unwrap().remove("accessKeyId");
    });
    assert_rejects(c, &deleted_without_key, DecodeErrorKind::MissingField, Some("requestParameters.accessKeyId"), "");
}

#[test]
fn cloudtrail_envelope_errors_name_the_detail_path() {
    let c = InputFormat::Cloudtrail;
    let no_time = edit(CT_EVENTBRIDGE, |v| {
        v["detail"].as_object_mut().unwrap().remove("eventTime");
    });
    assert_rejects(c, &no_time, DecodeErrorKind::MissingField, Some("detail.eventTime"), "required");
    let bad_time = edit(CT_EVENTBRIDGE, |v| v["detail"]["eventTime"] = json!("2026-01-19 03:39:58"));
    assert_rejects(c, &bad_time, DecodeErrorKind::InvalidField, Some("detail.eventTime"), "not a valid time");
    let other_event = edit(CT_EVENTBRIDGE, |v| v["detail-type"] = json!("EC2 Instance State-change Notification"));
    assert_rejects(
        c,
        &other_event,
        DecodeErrorKind::InvalidField,
        Some("detail-type"),
        "`EC2 Instance State-change Notification` is not a CloudTrail record; expected one of: AWS API Call via CloudTrail",
    );
    let no_detail = edit(CT_EVENTBRIDGE, |v| {
        v.as_object_mut().unwrap().remove("detail");
    });
    assert_rejects(c, &no_detail, DecodeErrorKind::MissingField, Some("detail"), "required");
    let detail_text = edit(CT_EVENTBRIDGE, |v| v["detail"] = json!("{}"));
    assert_rejects(
        c,
        &detail_text,
        DecodeErrorKind::InvalidField,
        Some("detail"),
        "expected an object, found a string",
    );
}
