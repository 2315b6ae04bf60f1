//! `format = "cloudtrail"`: one AWS CloudTrail record per message.
//!
//! A message is either a bare record (as a Lambda that splits log files writes them) or an
//! EventBridge envelope whose `detail` is the record (`"detail-type"` one of
//! [`EVENTBRIDGE_DETAIL_TYPES`]); errors inside an envelope name the field as `detail.<path>`.
//! A whole log file (`{"Records": [...]}`) as one message is rejected: it must be split, one
//! record per message, so that offsets, dead letters and event ids stay per record. (`replay`
//! splits log files itself, see `crate::input::documents`.)
//!
//! The mapping (README.md, "Input formats", has the table):
//! - `account` is the principal, and all sessions of a role are one account: an assumed role
//!   maps to its role ARN (`userIdentity.sessionContext.sessionIssuer.arn`), anything else to
//!   `userIdentity.arn`. Without an ARN: an IAM user's ARN is rebuilt from `accountId` and
//!   `userName` (failed console sign-ins carry no ARN, and must land on the same account as the
//!   successful ones; users with an IAM path other than `/` cannot be rebuilt exactly), then
//!   `principalId`, `userName`, and `invokedBy` (AWS service events).
//! - `action` is `<service>.<eventName>` (`s3.GetObject`), except the credential lifecycle
//!   (`iam.CreateAccessKey` → `credential.create`; `iam.DeleteAccessKey`, and
//!   `iam.UpdateAccessKey` to `Inactive` → `credential.revoke`; only when they succeeded) and
//!   `signin.ConsoleLogin` → `auth.login`. For the lifecycle, `credential` is the key acted on,
//!   owned by the user the call names (`responseElements.accessKey.userName`, else
//!   `requestParameters.userName`, else the caller).
//! - `target.resource` is the first `resources[].ARN`, else `requestParameters.bucketName`; for
//!   `iam.CreateLoginProfile` and `iam.UpdateLoginProfile`, else the user whose console password
//!   it sets (`requestParameters.userName` as a user ARN, else the caller).
//! - `outcome` comes from `errorCode`, see [`error_outcome`].
//! - `source.ip` is `sourceIPAddress` when it is an address. When it names AWS instead (a
//!   service endpoint such as `secretsmanager.amazonaws.com`, or `AWS Internal`) there is no IP
//!   and `source.provider` is `aws`.
//! - `session` is an assumed role's session: its name is the last part of `userIdentity.arn`
//!   (`…:assumed-role/<role>/<name>`), and when `sessionContext.ec2RoleDelivery` is present
//!   (EC2 handed the credentials to an instance) `session.instance` is that name, the instance
//!   id. The session's temporary key is `credential.id` (`ASIA…`), as for any key.
//! - `mfa` is `additionalEventData.MFAUsed` (`Yes`/`No`) on a console sign-in, else
//!   `userIdentity.sessionContext.attributes.mfaAuthenticated` (`true`/`false`).
//! - `invoked_by` is `userIdentity.invokedBy`, the AWS service that made the call. When it is
//!   also the account (an `AWSService` identity, with no principal of the customer's), the
//!   engine retains the event but does not judge it: a provider's service is not an account.
//! - `credential.owner` is the account itself: AWS resolves the principal from the key, so a key
//!   is never presented by anyone but its owner, and an assumed role's session keys belong to the
//!   role (stating the session ARN would make every session look like a foreign key).
//!
//! Strictness: the fields every record has (`eventTime`, `userIdentity`, `eventSource`, ...) are
//! checked like native fields. `requestParameters`, `responseElements` and `additionalEventData`
//! differ per API and are read leniently: a value of an unexpected type there is ignored, except
//! the key ids the lifecycle mapping needs.

use std::borrow::Cow;
use std::net::IpAddr;

use serde::de::IgnoredAny;
use serde::Deserialize;

use super::json::{decode_record, List, Obj, Path, Scalar};
use super::{aws_key_kind, aws_service};
use crate::input::event::{
    self, AuditEvent, Credential, DecodeError, DecodeErrorKind, Outcome, Session, Source, Target,
};

/// EventBridge `detail-type`s whose `detail` is one CloudTrail record.
pub const EVENTBRIDGE_DETAIL_TYPES: [&str; 3] =
    ["AWS API Call via CloudTrail", "AWS Console Sign In via CloudTrail", "AWS Service Event via CloudTrail"];

/// `errorCode`s that mean the caller could not be authenticated (bad, expired or unknown key,
/// bad signature): `failure`.
const AUTHENTICATION_ERRORS: [&str; 13] = [
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidAccessKeyId",
    "IncompleteSignature",
    "InvalidSignatureException",
    "MissingAuthenticationToken",
    "MissingAuthenticationTokenException",
    "UnrecognizedClientException",
    "InvalidToken",
    "TokenRefreshRequired",
];

/// `errorCode`s that mean the caller was authenticated but not allowed: `denied` (so are codes
/// ending in `UnauthorizedOperation`, as EC2's `Client.UnauthorizedOperation`).
const AUTHORIZATION_ERRORS: [&str; 9] = [
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedAccess",
    "UnauthorizedException",
    "AuthorizationError",
    "AuthorizationErrorException",
    "Forbidden",
    "ForbiddenException",
    "AllAccessDisabled",
];

/// The outcome of a call that failed with AWS error code `code`.
///
/// Authentication errors are `failure` and authorization errors `denied`. Any other error
/// (throttling, validation, a missing resource, a conflict, a server error) is `success`: the
/// caller proved who it was and was allowed to ask, so the call says nothing about misuse of the
/// credential, and counting it as `denied` would make a throttling storm or a retry loop on a
/// missing object look like permission probing. The code stays in `reason` (when there is no
/// `errorMessage`) and in the raw record, so such calls can still be found.
pub fn error_outcome(code: &str) -> Outcome {
    let code = code.strip_prefix("Client.").unwrap_or(code);
    if is_authentication_error(code) {
        Outcome::Failure
    } else if AUTHORIZATION_ERRORS.contains(&code) || code.ends_with("UnauthorizedOperation") {
        Outcome::Denied
    } else {
        Outcome::Success
    }
}

/// Whether AWS error code `code` means the caller could not be authenticated.
pub fn is_authentication_error(code: &str) -> bool {
    AUTHENTICATION_ERRORS.contains(&code.strip_prefix("Client.").unwrap_or(code))
}

/// Decodes one CloudTrail record (bare or in an EventBridge envelope).
pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    decode_record(bytes, max_bytes, |message: Record<'_>| {
        let (record, at) = unwrap_envelope(message)?;
        map_record(record, at)
    })
}

/// The fields of a record that the mapping reads, plus those of the two wrappers (a log file's
/// `Records`, EventBridge's `detail-type` and `detail`) so one pass reads any message.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "Records")]
    records: Option<List<IgnoredAny>>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<Scalar<'a>>,
    #[serde(borrow)]
    detail: Option<Obj<Box<Record<'a>>>>,
    #[serde(rename = "eventTime", borrow)]
    event_time: Option<Scalar<'a>>,
    #[serde(rename = "eventID", borrow)]
    event_id: Option<Scalar<'a>>,
    #[serde(rename = "eventSource", borrow)]
    event_source: Option<Scalar<'a>>,
    #[serde(rename = "eventName", borrow)]
    event_name: Option<Scalar<'a>>,
    #[serde(rename = "awsRegion", borrow)]
    aws_region: Option<Scalar<'a>>,
    #[serde(rename = "userIdentity", borrow)]
    user_identity: Option<Obj<UserIdentity<'a>>>,
    #[serde(rename = "errorCode", borrow)]
    error_code: Option<Scalar<'a>>,
    #[serde(rename = "errorMessage", borrow)]
    error_message: Option<Scalar<'a>>,
    #[serde(rename = "sourceIPAddress", borrow)]
    source_ip_address: Option<Scalar<'a>>,
    #[serde(rename = "userAgent", borrow)]
    user_agent: Option<Scalar<'a>>,
    #[serde(rename = "requestParameters", borrow)]
    request_parameters: Option<Obj<RequestParameters<'a>>>,
    #[serde(rename = "responseElements", borrow)]
    response_elements: Option<Obj<ResponseElements<'a>>>,
    #[serde(rename = "additionalEventData", borrow)]
    additional_event_data: Option<Obj<AdditionalEventData<'a>>>,
    #[serde(borrow)]
    resources: Option<List<Obj<Resource<'a>>>>,
    #[serde(rename = "recipientAccountId", borrow)]
    recipient_account_id: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct UserIdentity<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Scalar<'a>>,
    #[serde(rename = "principalId", borrow)]
    principal_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    arn: Option<Scalar<'a>>,
    #[serde(rename = "accountId", borrow)]
    account_id: Option<Scalar<'a>>,
    #[serde(rename = "accessKeyId", borrow)]
    access_key_id: Option<Scalar<'a>>,
    #[serde(rename = "userName", borrow)]
    user_name: Option<Scalar<'a>>,
    #[serde(rename = "invokedBy", borrow)]
    invoked_by: Option<Scalar<'a>>,
    #[serde(rename = "sessionContext", borrow)]
    session_context: Option<Obj<SessionContext<'a>>>,
}

#[derive(Deserialize)]
struct SessionContext<'a> {
    #[serde(rename = "sessionIssuer", borrow)]
    session_issuer: Option<Obj<SessionIssuer<'a>>>,
    /// Present (`"1.0"`, `"2.0"`) when EC2 delivered the credentials to an instance.
    #[serde(rename = "ec2RoleDelivery", borrow)]
    ec2_role_delivery: Option<Scalar<'a>>,
    #[serde(borrow)]
    attributes: Option<Obj<SessionAttributes<'a>>>,
}

#[derive(Deserialize)]
struct SessionAttributes<'a> {
    /// `"true"` or `"false"`: the session's credentials were issued after an MFA check.
    #[serde(rename = "mfaAuthenticated", borrow)]
    mfa_authenticated: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct SessionIssuer<'a> {
    #[serde(borrow)]
    arn: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct RequestParameters<'a> {
    #[serde(rename = "bucketName", borrow)]
    bucket_name: Option<Scalar<'a>>,
    #[serde(rename = "accessKeyId", borrow)]
    access_key_id: Option<Scalar<'a>>,
    #[serde(rename = "userName", borrow)]
    user_name: Option<Scalar<'a>>,
    #[serde(borrow)]
    status: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct ResponseElements<'a> {
    #[serde(rename = "accessKey", borrow)]
    access_key: Option<Obj<AccessKey<'a>>>,
    #[serde(rename = "ConsoleLogin", borrow)]
    console_login: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct AccessKey<'a> {
    #[serde(rename = "accessKeyId", borrow)]
    access_key_id: Option<Scalar<'a>>,
    #[serde(rename = "userName", borrow)]
    user_name: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct AdditionalEventData<'a> {
    #[serde(rename = "bytesTransferredOut", borrow)]
    bytes_transferred_out: Option<Scalar<'a>>,
    /// `"Yes"` or `"No"` on a console sign-in.
    #[serde(rename = "MFAUsed", borrow)]
    mfa_used: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Resource<'a> {
    #[serde(rename = "ARN", borrow)]
    arn: Option<Scalar<'a>>,
}

/// Rejects a log file, and opens an EventBridge envelope.
fn unwrap_envelope(mut message: Record<'_>) -> Result<(Record<'_>, Path<'static>), DecodeError> {
    if let Some(records) = message.records.take() {
        let count = match records {
            List::Ok(items) => format!(" of {} records", items.len()),
            List::Wrong(_) => String::new(),
        };
        return Err(DecodeError::invalid(
            "Records",
            format!(
                "the message is a whole CloudTrail log file{count}; split it so that each message holds one record \
                 (the objects of `Records`)"
            ),
        ));
    }
    let top = Path("");
    let Some(detail_type) = top.text(message.detail_type.take(), "detail-type")? else {
        return Ok((message, top));
    };
    if !EVENTBRIDGE_DETAIL_TYPES.contains(&detail_type.as_ref()) {
        return Err(top.invalid(
            "detail-type",
            format!(
                "`{}` is not a CloudTrail record; expected one of: {}",
                event::truncate(&detail_type, 64),
                EVENTBRIDGE_DETAIL_TYPES.join(", ")
            ),
        ));
    }
    match top.object(message.detail.take(), "detail")? {
        Some(record) => Ok((*record, Path("detail."))),
        None => Err(top.missing("detail")),
    }
}

/// Who made the call.
struct Principal<'a> {
    /// The account (see the module docs).
    account: Cow<'a, str>,
    access_key_id: Option<Cow<'a, str>>,
    /// An IAM user's own name, when the caller is one.
    iam_user_name: Option<Cow<'a, str>>,
    account_id: Option<Cow<'a, str>>,
    /// An assumed role's session.
    session: Option<Session<'a>>,
    /// The AWS service that made the call (`userIdentity.invokedBy`).
    invoked_by: Option<Cow<'a, str>>,
    /// `sessionContext.attributes.mfaAuthenticated`.
    mfa: Option<bool>,
}

fn principal<'a>(identity: Option<UserIdentity<'a>>, at: Path, partition: &str) -> Result<Principal<'a>, DecodeError> {
    let Some(identity) = identity else {
        return Err(at.missing("userIdentity.arn"));
    };
    let kind = at.text(identity.kind, "userIdentity.type")?;
    let arn = at.text(identity.arn, "userIdentity.arn")?;
    let principal_id = at.text(identity.principal_id, "userIdentity.principalId")?;
    let user_name = at.text(identity.user_name, "userIdentity.userName")?;
    let account_id = at.text(identity.account_id, "userIdentity.accountId")?;
    let invoked_by = at.text(identity.invoked_by, "userIdentity.invokedBy")?;
    let invoked_by = invoked_by.map(|service| at.name_value(service, "userIdentity.invokedBy")).transpose()?;
    let access_key_id = at.text(identity.access_key_id, "userIdentity.accessKeyId")?;
    let is_assumed_role =
        kind.as_deref() == Some("AssumedRole") || arn.as_deref().is_some_and(|a| a.contains(":assumed-role/"));
    let is_iam_user = kind.as_deref() == Some("IAMUser");

    let context = at.object(identity.session_context, "userIdentity.sessionContext")?;
    let (issuer, delivery, attributes) = match context {
        Some(c) => (c.session_issuer, c.ec2_role_delivery, c.attributes),
        None => (None, None, None),
    };
    // Temporary credentials of an IAM user (GetSessionToken) have a context but no issuer.
    let mfa = match attributes {
        Some(Obj::Ok(a)) => yes_or_no(a.mfa_authenticated),
        _ => None,
    };
    let (issuer, instance_role) = match is_assumed_role {
        true => {
            let issuer = at.object(issuer, "userIdentity.sessionContext.sessionIssuer")?;
            let delivery = at.text(delivery, "userIdentity.sessionContext.ec2RoleDelivery")?;
            (at.text(issuer.and_then(|i| i.arn), "userIdentity.sessionContext.sessionIssuer.arn")?, delivery.is_some())
        }
        false => (None, false),
    };
    // `arn:aws:sts::<account>:assumed-role/<role>/<session name>`
    let session = arn.as_ref().filter(|_| is_assumed_role).and_then(|arn| {
        let start = arn.find(":assumed-role/")? + ":assumed-role/".len();
        let name_at = start + arn[start..].find('/')? + 1;
        let name = suffix(arn, name_at).filter(|n| !n.is_empty())?;
        let instance = instance_role.then(|| name.clone());
        Some(Session { name, instance })
    });
    let (account, field) = if let Some(issuer) = issuer {
        (issuer, "userIdentity.sessionContext.sessionIssuer.arn")
    } else if let Some(arn) = arn {
        (arn, "userIdentity.arn")
    } else if let (true, Some(id), Some(name)) = (is_iam_user, &account_id, &user_name) {
        (Cow::Owned(format!("arn:{partition}:iam::{id}:user/{name}")), "userIdentity.userName")
    } else if let Some(principal_id) = principal_id {
        (principal_id, "userIdentity.principalId")
    } else if let Some(name) = user_name.clone() {
        (name, "userIdentity.userName")
    } else if let Some(service) = invoked_by.clone() {
        // An AWS service acting on its own (`AWSService`): its events are not judged.
        (service, "userIdentity.invokedBy")
    } else {
        return Err(DecodeError::field(
            DecodeErrorKind::MissingField,
            &at.name("userIdentity.arn"),
            "is required but missing (and so are `principalId`, `userName` and `invokedBy`)",
        ));
    };
    Ok(Principal {
        account: at.name_value(account, field)?,
        access_key_id,
        iam_user_name: user_name.filter(|_| is_iam_user),
        account_id,
        session,
        invoked_by,
        mfa,
    })
}

/// CloudTrail's `"true"`/`"Yes"` and `"false"`/`"No"` (read leniently: anything else is unknown).
fn yes_or_no(value: Option<Scalar>) -> Option<bool> {
    match value? {
        Scalar::Bool(b) => Some(b),
        Scalar::Str(s) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") => Some(true),
        Scalar::Str(s) if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") => Some(false),
        _ => None,
    }
}

/// `text[from..]`, still borrowed when `text` is.
fn suffix<'a>(text: &Cow<'a, str>, from: usize) -> Option<Cow<'a, str>> {
    match text {
        Cow::Borrowed(s) => s.get(from..).map(Cow::Borrowed),
        Cow::Owned(s) => s.get(from..).map(|s| Cow::Owned(s.to_string())),
    }
}

fn map_record<'a>(record: Record<'a>, at: Path) -> Result<AuditEvent<'a>, DecodeError> {
    let time = at.rfc3339(record.event_time, "eventTime")?;
    let id = at.text(record.event_id, "eventID")?;
    let event_source = at.text(record.event_source, "eventSource")?.ok_or_else(|| at.missing("eventSource"))?;
    let event_name = at.text(record.event_name, "eventName")?.ok_or_else(|| at.missing("eventName"))?;
    let region = at.text(record.aws_region, "awsRegion")?;
    let tenant = at.text(record.recipient_account_id, "recipientAccountId")?;
    let partition = match region.as_deref() {
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        _ => "aws",
    };
    let mut caller = principal(at.object(record.user_identity, "userIdentity")?, at, partition)?;
    let (session, invoked_by) = (caller.session.take(), caller.invoked_by.take());
    let error_code = at.text(record.error_code, "errorCode")?;
    let error_message = at.text(record.error_message, "errorMessage")?;
    let source_ip = at.text(record.source_ip_address, "sourceIPAddress")?;
    let user_agent = at.text(record.user_agent, "userAgent")?;
    let first_resource = at.first_text(record.resources, "resources", "ARN", |r| r.arn)?;
    // API-specific objects: a value of another type is as good as absent (see module docs).
    let mut request = match record.request_parameters {
        Some(Obj::Ok(request)) => Some(request),
        _ => None,
    };
    let mut response = match record.response_elements {
        Some(Obj::Ok(response)) => Some(response),
        _ => None,
    };
    let (bytes, mfa_used) = match record.additional_event_data {
        Some(Obj::Ok(data)) => (
            at.count(data.bytes_transferred_out, "additionalEventData.bytesTransferredOut").ok().flatten(),
            yes_or_no(data.mfa_used),
        ),
        _ => (None, None),
    };
    let bucket_name = match request.as_mut().and_then(|r| r.bucket_name.take()) {
        Some(Scalar::Str(name)) if !name.is_empty() => Some(name),
        _ => None,
    };
    let console_failed = matches!(
        response.as_mut().and_then(|r| r.console_login.take()),
        Some(Scalar::Str(s)) if s == "Failure"
    );

    let service = aws_service(&event_source);
    let succeeded = error_code.is_none();
    let key_owner = |user_name: Option<Cow<'a, str>>| -> Cow<'a, str> {
        match user_name {
            None => caller.account.clone(),
            Some(name) if caller.iam_user_name.as_deref() == Some(name.as_ref()) => caller.account.clone(),
            Some(name) => match caller.account_id.as_deref().or(tenant.as_deref()) {
                Some(account_id) => Cow::Owned(format!("arn:{partition}:iam::{account_id}:user/{name}")),
                None => name,
            },
        }
    };
    let lifecycle_key = |id: Cow<'a, str>, user_name| Credential {
        kind: aws_key_kind(&id).map(Cow::Borrowed),
        owner: Some(key_owner(user_name)),
        id,
    };
    let is_iam = service == "iam";
    // The user named in the call (lenient, as request parameters are): whose key a
    // `CreateAccessKey` makes when the response does not say, and whose console password a
    // login-profile call sets.
    let mut requested_user = || match request.as_mut().and_then(|r| r.user_name.take()) {
        Some(Scalar::Str(name)) if !name.is_empty() => Some(name),
        _ => None,
    };
    let login_profile_of = match event_name.as_ref() {
        "CreateLoginProfile" | "UpdateLoginProfile" if is_iam => Some(requested_user()),
        _ => None,
    };
    let (action, credential): (Cow<'a, str>, Option<Credential<'a>>) = match event_name.as_ref() {
        "CreateAccessKey" if is_iam && succeeded => {
            let key = at.object(response.and_then(|r| r.access_key), "responseElements.accessKey")?;
            let (key_id, user_name) = match key {
                Some(key) => (
                    at.text(key.access_key_id, "responseElements.accessKey.accessKeyId")?,
                    at.text(key.user_name, "responseElements.accessKey.userName")?,
                ),
                None => (None, None),
            };
            let key_id = key_id.ok_or_else(|| at.missing("responseElements.accessKey.accessKeyId"))?;
            let user_name = user_name.or_else(requested_user);
            (Cow::Borrowed("credential.create"), Some(lifecycle_key(key_id, user_name)))
        }
        "DeleteAccessKey" | "UpdateAccessKey" if is_iam && succeeded => {
            let (key_id, user_name, status) = match request {
                Some(r) => (
                    at.text(r.access_key_id, "requestParameters.accessKeyId")?,
                    at.text(r.user_name, "requestParameters.userName")?,
                    at.text(r.status, "requestParameters.status")?,
                ),
                None => (None, None, None),
            };
            let revokes = event_name == "DeleteAccessKey" || status.as_deref() == Some("Inactive");
            if revokes {
                let key_id = key_id.ok_or_else(|| at.missing("requestParameters.accessKeyId"))?;
                (Cow::Borrowed("credential.revoke"), Some(lifecycle_key(key_id, user_name)))
            } else {
                // Reactivating a key: an ordinary IAM call (the engine has no "unrevoke").
                (Cow::Owned(format!("{service}.{event_name}")), presented_key(&caller))
            }
        }
        "ConsoleLogin" if service == "signin" => (Cow::Borrowed("auth.login"), presented_key(&caller)),
        _ => (Cow::Owned(format!("{service}.{event_name}")), presented_key(&caller)),
    };
    let action = at.name_value(action, "eventName")?;
    let outcome = match &error_code {
        _ if console_failed => Outcome::Failure,
        None => Outcome::Success,
        Some(code) => error_outcome(code),
    };
    // A login profile is the named user's (the caller's own without a name).
    let resource = first_resource.or(bucket_name).or_else(|| login_profile_of.map(key_owner));
    Ok(AuditEvent {
        id: id.unwrap_or(Cow::Borrowed("")),
        time,
        account: caller.account,
        action,
        outcome,
        credential,
        source: Source {
            // A call made by an AWS service on the caller's behalf names the service here.
            ip: source_ip.as_deref().and_then(|s| s.parse::<IpAddr>().ok()),
            country: None,
            asn: None,
            as_org: None,
            provider: source_ip.as_deref().filter(|s| is_aws_service_source(s)).map(|_| Cow::Borrowed("aws")),
            user_agent,
        },
        target: Target { system: Some(event_source), resource },
        bytes,
        records: None,
        reason: error_message.or(error_code),
        tenant,
        session,
        invoked_by,
        // A sign-in says whether it used MFA; a call, whether its session was issued after MFA.
        mfa: mfa_used.or(caller.mfa),
        attributes: None,
    })
}

/// A `sourceIPAddress` that names AWS rather than an address: a service endpoint calling on
/// the caller's behalf (`secretsmanager.amazonaws.com`) or `AWS Internal`.
fn is_aws_service_source(source: &str) -> bool {
    source.ends_with(".amazonaws.com") || source == "AWS Internal"
}

/// The key the caller signed with, if any (console sessions have none).
fn presented_key<'a>(caller: &Principal<'a>) -> Option<Credential<'a>> {
    caller.access_key_id.clone().map(|id| Credential {
        kind: aws_key_kind(&id).map(Cow::Borrowed),
        owner: Some(caller.account.clone()),
        id,
    })
}
