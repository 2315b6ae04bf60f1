//! No decoder panics, whatever JSON it is given: arbitrary trees whose keys are mostly the
//! field names the formats read (so that the values reach deep into each mapping), and the
//! fixtures with one subtree replaced by an arbitrary value.

use proptest::prelude::*;

use super::*;
use crate::input::formats::auto::detect;

/// Field names of every format, at any depth: arbitrary trees built from them reach the
/// mapping code instead of being skipped as unknown fields.
const KEYS: &[&str] = &[
    // native
    "id",
    "time",
    "account",
    "action",
    "outcome",
    "credential",
    "type",
    "owner",
    "source",
    "ip",
    "country",
    "asn",
    "user_agent",
    "target",
    "system",
    "resource",
    "bytes",
    "records",
    "reason",
    "tenant",
    "attributes",
    "session",
    "instance",
    "invoked_by",
    "mfa",
    // CloudTrail
    "Records",
    "detail-type",
    "detail",
    "eventVersion",
    "eventTime",
    "eventID",
    "eventSource",
    "eventName",
    "awsRegion",
    "userIdentity",
    "principalId",
    "arn",
    "accountId",
    "accessKeyId",
    "userName",
    "invokedBy",
    "sessionContext",
    "sessionIssuer",
    "ec2RoleDelivery",
    "mfaAuthenticated",
    "MFAUsed",
    "is_mfa",
    "errorCode",
    "errorMessage",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "accessKey",
    "status",
    "ConsoleLogin",
    "additionalEventData",
    "bytesTransferredOut",
    "resources",
    "ARN",
    "recipientAccountId",
    "bucketName",
    // OCSF
    "class_uid",
    "activity_id",
    "status_id",
    "status_detail",
    "metadata",
    "uid",
    "actor",
    "user",
    "name",
    "credential_uid",
    "session",
    "issuer",
    "api",
    "operation",
    "service",
    "response",
    "error",
    "error_message",
    "src_endpoint",
    "dst_endpoint",
    "svc_name",
    "location",
    "autonomous_system",
    "number",
    "http_request",
    "cloud",
    "traffic",
    "bytes_out",
    // Okta
    "uuid",
    "published",
    "eventType",
    "alternateId",
    "client",
    "ipAddress",
    "rawUserAgent",
    "geographicalContext",
    "result",
    "securityContext",
    "asNumber",
    "transaction",
    "requestApiTokenId",
    "debugContext",
    "debugData",
];

/// Values that are meaningful somewhere: times, addresses, key ids, event types, outcomes.
const STRINGS: &[&str] = &[
    "",
    "2026-01-19T03:20:11.402Z",
    "2026-01-19T03:20:11+02:00",
    "not a time",
    "198.51.100.23",
    "2001:db8::1",
    "AKIAIOSFODNN7EXAMPLE",
    "ASIA5EXAMPLETEMPKEY1",
    "00T7hrsyncEXAMPLE4k2",
    "ocs5etlEXAMPLEsec01",
    "iam.amazonaws.com",
    "CreateAccessKey",
    "DeleteAccessKey",
    "UpdateAccessKey",
    "Inactive",
    "ConsoleLogin",
    "Failure",
    "AssumedRole",
    "IAMUser",
    "AWS API Call via CloudTrail",
    "system.api_token.create",
    "system.api_token.revoke",
    "app.oauth2.credentials.lifecycle.delete",
    "Token",
    "AppInstance",
    "SUCCESS",
    "FAILURE",
    "DENY",
    "success",
    "denied",
    "AS64500",
    "é\u{1F600}\\\"",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(3001i64), Just(3002), Just(6003), Just(1), Just(2), Just(5), Just(6), Just(99)]
            .prop_map(Value::from),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        "a{300}".prop_map(Value::from),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(String::from), 1 => "[a-zA-Z_-]{0,8}"]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(5, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..8)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// `value` with the node that `path` leads to replaced by `by`: each step picks a child of an
/// object or array (modulo its size) and stops at a leaf.
fn replace_at(value: &mut Value, path: &[usize], by: Value) {
    let child = match (value, path.split_first()) {
        (Value::Object(map), Some((&step, rest))) if !map.is_empty() => {
            let index = step % map.len();
            map.values_mut().nth(index).map(|v| (v, rest))
        }
        (Value::Array(items), Some((&step, rest))) if !items.is_empty() => {
            let index = step % items.len();
            items.get_mut(index).map(|v| (v, rest))
        }
        (value, _) => {
            *value = by;
            return;
        }
    };
    if let Some((child, rest)) = child {
        replace_at(child, rest, by);
    }
}

/// Every decoder over `bytes`; a panic fails the test. Under `auto` the result is that of the
/// format it detects.
fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    for format in InputFormat::ALL {
        let _ = decode_as(format, bytes, DEFAULT_MAX_EVENT_BYTES);
    }
    let detected = detect(bytes, DEFAULT_MAX_EVENT_BYTES).and_then(|f| decode_as(f, bytes, DEFAULT_MAX_EVENT_BYTES));
    prop_assert_eq!(decode_as(InputFormat::Auto, bytes, DEFAULT_MAX_EVENT_BYTES), detected);
    Ok(())
}

fn fixtures() -> Vec<Value> {
    [
        CT_IAM_USER_GET_OBJECT,
        CT_ASSUMED_ROLE,
        CT_CONSOLE_LOGIN_FAILURE,
        CT_CREATE_ACCESS_KEY,
        CT_DELETE_ACCESS_KEY,
        CT_EVENTBRIDGE,
        OCSF_API_ACTIVITY,
        OCSF_AUTHENTICATION_FAILURE,
        OCSF_ACCOUNT_CHANGE_KEY_DISABLE,
        OKTA_API_TOKEN_USE,
        OKTA_TOKEN_GRANT,
        OKTA_API_TOKEN_CREATE,
        OKTA_CLIENT_SECRET_DEACTIVATE,
    ]
    .iter()
    .map(|text| serde_json::from_str(text).expect("fixture is JSON"))
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_decoder_panics_on_arbitrary_json(value in json_value()) {
        decode_all(value.to_string().as_bytes())?;
    }

    #[test]
    fn no_decoder_panics_on_a_fixture_with_a_subtree_replaced(
        which in any::<prop::sample::Index>(),
        path in prop::collection::vec(any::<usize>(), 0..6),
        by in json_value(),
    ) {
        let fixtures = fixtures();
        let mut value = which.get(&fixtures).clone();
        replace_at(&mut value, &path, by);
        decode_all(value.to_string().as_bytes())?;
    }
}
