//! `format = "ocsf"`: one OCSF (Open Cybersecurity Schema Framework) 1.x event per message.
//!
//! Three classes are mapped on purpose: API Activity ([`API_ACTIVITY`], 6003), Authentication
//! ([`AUTHENTICATION`], 3002) and Account Change ([`ACCOUNT_CHANGE`], 3001). Events of other
//! classes are accepted through the same field paths as API Activity (they need `actor.user` and
//! `api.operation`), which covers the classes that carry an API call (Entity Management, ...).
//!
//! The mapping (README.md, "Input formats", has the table):
//! - `account`: for Authentication the subject that authenticates, `user.uid` or `user.name`
//!   (the class makes `user` required and `actor` optional: on a Windows logon the actor is the
//!   process that asked), falling back to `actor.user`; for other classes `actor.user.uid` or
//!   `actor.user.name`, except that an assumed AWS role (`actor.user.type` `AssumedRole`) is its
//!   role, `actor.session.issuer`, as in the CloudTrail format. An Account Change without an
//!   actor (a change the account made to itself) falls back to the changed account, `user`.
//! - `action`: Authentication is `auth.logout` for activity 2 (Logoff) and `auth.login` for any
//!   other activity (a logon, a Kerberos ticket: an attempt to authenticate). Other classes:
//!   `api.operation`, prefixed by `api.service.name` and a dot when present; an AWS endpoint
//!   name loses `.amazonaws.com` so that actions read as in the CloudTrail format (`s3.GetObject`).
//!   An Account Change without `api.operation` is `account.<activity>` (`account.disable`).
//! - Credential lifecycle: an Account Change that names the changed account's key
//!   (`user.credential_uid`) and did not fail is `credential.create` for activity 1 (Create) and
//!   `credential.revoke` for 5 (Disable) and 6 (Delete); `credential` is then that key, owned by
//!   the changed account (`user.uid`, else `user.name`), as CloudTrail's `CreateAccessKey` names
//!   the user the key is for.
//! - `outcome` from `status_id` (or `status` when there is no id): 1 Success is `success`; 2
//!   Failure is `failure` for Authentication. For other classes a failure is `denied`, or
//!   `failure` when `api.response.error` is an AWS authentication error code
//!   ([`super::cloudtrail::is_authentication_error`], e.g. `InvalidClientTokenId`: the caller
//!   never got in). 0 Unknown, 99 Other or no status are `success`: only a definite failure
//!   counts against an account. Unlike CloudTrail, other error codes are not told apart: OCSF
//!   producers are not all AWS, and an unknown code may well be a denial.
//! - `credential.id`: the key the actor presented, `credential_uid` of the acting user, else
//!   `actor.session.credential_uid`, else the session itself (`actor.session.uid`, type
//!   `session`). The key comes first because lifecycle events (CloudTrail's `CreateAccessKey`)
//!   and revocations name keys, not sessions.

use std::borrow::Cow;

use serde::Deserialize;

use super::cloudtrail::is_authentication_error;
use super::json::{decode_record, List, Obj, Path, Scalar};
use super::{aws_key_kind, aws_service};
use crate::input::event::{AuditEvent, Credential, DecodeError, DecodeErrorKind, Outcome, Source, Target};

/// `class_uid` of API Activity (category 6, Application Activity).
pub const API_ACTIVITY: i64 = 6003;
/// `class_uid` of Authentication (category 3, Identity & Access Management).
pub const AUTHENTICATION: i64 = 3002;
/// `class_uid` of Account Change (category 3, Identity & Access Management).
pub const ACCOUNT_CHANGE: i64 = 3001;

/// The `activity_id`s of Account Change, named for `account.<activity>` actions.
fn account_activity(activity: Option<i64>) -> &'static str {
    match activity {
        Some(1) => "create",
        Some(2) => "enable",
        Some(3) => "password_change",
        Some(4) => "password_reset",
        Some(5) => "disable",
        Some(6) => "delete",
        Some(7) => "attach_policy",
        Some(8) => "detach_policy",
        Some(9) => "lock",
        Some(10) => "mfa_factor_enable",
        Some(11) => "mfa_factor_disable",
        _ => "change",
    }
}

/// Decodes one OCSF event.
pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    decode_record(bytes, max_bytes, map_event)
}

/// The fields of an OCSF event that the mapping reads; everything else is skipped.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow)]
    class_uid: Option<Scalar<'a>>,
    #[serde(borrow)]
    activity_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    time: Option<Scalar<'a>>,
    #[serde(borrow)]
    status_id: Option<Scalar<'a>>,
    #[serde(borrow)]
    status: Option<Scalar<'a>>,
    #[serde(borrow)]
    status_detail: Option<Scalar<'a>>,
    #[serde(borrow)]
    metadata: Option<Obj<Metadata<'a>>>,
    #[serde(borrow)]
    actor: Option<Obj<Actor<'a>>>,
    #[serde(borrow)]
    user: Option<Obj<User<'a>>>,
    #[serde(borrow)]
    api: Option<Obj<Api<'a>>>,
    #[serde(borrow)]
    service: Option<Obj<Service<'a>>>,
    #[serde(borrow)]
    src_endpoint: Option<Obj<Endpoint<'a>>>,
    #[serde(borrow)]
    dst_endpoint: Option<Obj<Endpoint<'a>>>,
    #[serde(borrow)]
    http_request: Option<Obj<HttpRequest<'a>>>,
    #[serde(borrow)]
    resources: Option<List<Obj<ResourceDetails<'a>>>>,
    #[serde(borrow)]
    cloud: Option<Obj<Cloud<'a>>>,
    #[serde(borrow)]
    traffic: Option<Obj<Traffic<'a>>>,
    /// Authentication: whether a second factor was used.
    #[serde(borrow)]
    is_mfa: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Metadata<'a> {
    #[serde(borrow)]
    uid: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Actor<'a> {
    #[serde(borrow)]
    user: Option<Obj<User<'a>>>,
    #[serde(borrow)]
    session: Option<Obj<Session<'a>>>,
}

#[derive(Deserialize)]
struct User<'a> {
    #[serde(borrow)]
    uid: Option<Scalar<'a>>,
    #[serde(borrow)]
    name: Option<Scalar<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Scalar<'a>>,
    #[serde(borrow)]
    credential_uid: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Session<'a> {
    #[serde(borrow)]
    uid: Option<Scalar<'a>>,
    #[serde(borrow)]
    issuer: Option<Scalar<'a>>,
    #[serde(borrow)]
    credential_uid: Option<Scalar<'a>>,
    #[serde(borrow)]
    is_mfa: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Api<'a> {
    #[serde(borrow)]
    operation: Option<Scalar<'a>>,
    #[serde(borrow)]
    service: Option<Obj<Service<'a>>>,
    #[serde(borrow)]
    response: Option<Obj<Response<'a>>>,
}

#[derive(Deserialize)]
struct Service<'a> {
    #[serde(borrow)]
    name: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow)]
    error: Option<Scalar<'a>>,
    #[serde(borrow)]
    error_message: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Endpoint<'a> {
    #[serde(borrow)]
    ip: Option<Scalar<'a>>,
    #[serde(borrow)]
    svc_name: Option<Scalar<'a>>,
    #[serde(borrow)]
    location: Option<Obj<Location<'a>>>,
    #[serde(borrow)]
    autonomous_system: Option<Obj<AutonomousSystem<'a>>>,
}

#[derive(Deserialize)]
struct Location<'a> {
    #[serde(borrow)]
    country: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct AutonomousSystem<'a> {
    #[serde(borrow)]
    number: Option<Scalar<'a>>,
    #[serde(borrow)]
    name: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct HttpRequest<'a> {
    #[serde(borrow)]
    user_agent: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct ResourceDetails<'a> {
    #[serde(borrow)]
    uid: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Cloud<'a> {
    #[serde(borrow)]
    account: Option<Obj<Account<'a>>>,
}

#[derive(Deserialize)]
struct Account<'a> {
    #[serde(borrow)]
    uid: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Traffic<'a> {
    #[serde(borrow)]
    bytes_out: Option<Scalar<'a>>,
}

/// A user object's strings, read with their paths.
struct UserFields<'a> {
    uid: Option<Cow<'a, str>>,
    name: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
    credential_uid: Option<Cow<'a, str>>,
}

/// The paths of a user object's fields (`uid`, `name`, `type`, `credential_uid`), written out so
/// that reading a user builds no names.
const ACTOR_USER: [&str; 4] = ["actor.user.uid", "actor.user.name", "actor.user.type", "actor.user.credential_uid"];
const USER: [&str; 4] = ["user.uid", "user.name", "user.type", "user.credential_uid"];

fn user_fields<'a>(user: User<'a>, at: Path, paths: &[&str; 4]) -> Result<UserFields<'a>, DecodeError> {
    Ok(UserFields {
        uid: at.text(user.uid, paths[0])?,
        name: at.text(user.name, paths[1])?,
        kind: at.text(user.kind, paths[2])?,
        credential_uid: at.text(user.credential_uid, paths[3])?,
    })
}

fn map_event(e: Event<'_>) -> Result<AuditEvent<'_>, DecodeError> {
    let at = Path("");
    let class = at.integer(e.class_uid, "class_uid")?;
    let is_authentication = class == Some(AUTHENTICATION);
    let is_account_change = class == Some(ACCOUNT_CHANGE);
    let activity = match is_authentication || is_account_change {
        true => at.integer(e.activity_id, "activity_id")?,
        false => None,
    };
    let time = at.epoch_millis(e.time, "time")?;
    let id = match at.object(e.metadata, "metadata")? {
        Some(metadata) => at.text(metadata.uid, "metadata.uid")?,
        None => None,
    };

    // Who: the actor, and for Authentication the subject `user`.
    let (actor_user, session) = match at.object(e.actor, "actor")? {
        Some(actor) => (
            match at.object(actor.user, "actor.user")? {
                Some(user) => Some(user_fields(user, at, &ACTOR_USER)?),
                None => None,
            },
            at.object(actor.session, "actor.session")?,
        ),
        None => (None, None),
    };
    let (session_uid, session_issuer, session_credential, session_mfa) = match session {
        Some(s) => (
            at.text(s.uid, "actor.session.uid")?,
            at.text(s.issuer, "actor.session.issuer")?,
            at.text(s.credential_uid, "actor.session.credential_uid")?,
            boolean(s.is_mfa, at, "actor.session.is_mfa")?,
        ),
        None => (None, None, None, None),
    };
    // An Authentication says whether it used MFA; another call, whether its session did.
    let mfa = match is_authentication {
        true => boolean(e.is_mfa, at, "is_mfa")?,
        false => session_mfa,
    };
    let subject = match is_authentication || is_account_change {
        true => match at.object(e.user, "user")? {
            Some(user) => Some(user_fields(user, at, &USER)?),
            None => None,
        },
        false => None,
    };
    let named = |user: &UserFields| user.uid.is_some() || user.name.is_some();
    // The changed account of an Account Change, and the key of it that changed.
    let (changed_account, changed_key) = match &subject {
        Some(subject) if is_account_change => {
            (subject.uid.clone().or(subject.name.clone()), subject.credential_uid.clone())
        }
        _ => (None, None),
    };
    let subject_field = |user: &UserFields| if user.uid.is_some() { "user.uid" } else { "user.name" };
    let (account, account_field, principal) = match (subject, actor_user) {
        (Some(subject), _) if is_authentication && named(&subject) => {
            (subject.uid.clone().or(subject.name.clone()), subject_field(&subject), Some(subject))
        }
        (_, Some(user)) => {
            let assumed_role = user.kind.as_deref() == Some("AssumedRole");
            let (account, field) = match (&session_issuer, &user.uid, &user.name) {
                (Some(issuer), _, _) if assumed_role => (Some(issuer.clone()), "actor.session.issuer"),
                (_, Some(uid), _) => (Some(uid.clone()), "actor.user.uid"),
                (_, None, name) => (name.clone(), "actor.user.name"),
            };
            (account, field, Some(user))
        }
        (Some(subject), None) if named(&subject) => {
            (subject.uid.clone().or(subject.name.clone()), subject_field(&subject), Some(subject))
        }
        (_, None) => (None, "actor.user", None),
    };
    let Some(account) = account else {
        let (field, problem) = match (is_authentication, &principal) {
            (true, _) => ("user", "is required but missing: an Authentication event names the account in `user.uid` or `user.name` (or `actor.user`)"),
            (false, Some(_)) => ("actor.user", "has neither `uid` nor `name`"),
            (false, None) if is_account_change => ("actor.user", "is required but missing: the acting account is `actor.user.uid` or `actor.user.name`, or for an Account Change the changed account, `user.uid` or `user.name`"),
            (false, None) => ("actor.user", "is required but missing: the acting account is `actor.user.uid` or `actor.user.name`"),
        };
        return Err(DecodeError::field(DecodeErrorKind::MissingField, field, problem));
    };
    let account = at.name_value(account, account_field)?;
    // An assumed role's session, told apart by its uid (OCSF names no instance).
    let session = match (account_field == "actor.session.issuer", &session_uid) {
        (true, Some(uid)) => Some(crate::input::event::Session {
            name: at.name_value(uid.clone(), "actor.session.uid")?,
            instance: None,
        }),
        _ => None,
    };

    // What.
    let (operation, service_name, api_error, api_error_message) = match at.object(e.api, "api")? {
        Some(api) => {
            let service = match at.object(api.service, "api.service")? {
                Some(service) => at.text(service.name, "api.service.name")?,
                None => None,
            };
            let (error, message) = match at.object(api.response, "api.response")? {
                Some(r) => {
                    (at.text(r.error, "api.response.error")?, at.text(r.error_message, "api.response.error_message")?)
                }
                None => (None, None),
            };
            (at.text(api.operation, "api.operation")?, service, error, message)
        }
        None => (None, None, None, None),
    };
    let action: Cow<'_, str> = match (is_authentication, operation) {
        (true, _) => match activity {
            Some(2) => Cow::Borrowed("auth.logout"),
            _ => Cow::Borrowed("auth.login"),
        },
        (false, Some(operation)) => match &service_name {
            Some(service) => Cow::Owned(format!("{}.{operation}", aws_service(service))),
            None => operation,
        },
        (false, None) if is_account_change => Cow::Owned(format!("account.{}", account_activity(activity))),
        (false, None) => return Err(at.missing("api.operation")),
    };

    // How it went.
    let status_id = match at.integer(e.status_id, "status_id")? {
        Some(id) => Some(id),
        None => match at.text(e.status, "status")?.as_deref() {
            Some("Success") => Some(1),
            Some("Failure") => Some(2),
            _ => None,
        },
    };
    let outcome = match status_id {
        Some(2) if is_authentication => Outcome::Failure,
        Some(2) if api_error.as_deref().is_some_and(is_authentication_error) => Outcome::Failure,
        Some(2) => Outcome::Denied,
        _ => Outcome::Success,
    };
    let reason = at.text(e.status_detail, "status_detail")?.or(api_error_message).or(api_error);

    // With which key; for the lifecycle, the key acted on.
    let lifecycle = match (activity, changed_key) {
        (Some(1), Some(key)) if outcome == Outcome::Success => Some(("credential.create", key)),
        (Some(5 | 6), Some(key)) if outcome == Outcome::Success => Some(("credential.revoke", key)),
        _ => None,
    };
    let (action, credential) = match lifecycle {
        Some((lifecycle_action, key)) => (
            Cow::Borrowed(lifecycle_action),
            Some(Credential { kind: aws_key_kind(&key).map(Cow::Borrowed), owner: changed_account, id: key }),
        ),
        None => match principal.and_then(|p| p.credential_uid).or(session_credential) {
            Some(key) => {
                (action, Some(Credential { kind: aws_key_kind(&key).map(Cow::Borrowed), owner: None, id: key }))
            }
            None => (
                action,
                session_uid.map(|uid| Credential { id: uid, kind: Some(Cow::Borrowed("session")), owner: None }),
            ),
        },
    };
    let action = at.name_value(action, "api.operation")?;

    // From where, on what.
    let source = source_of(e.src_endpoint, e.http_request, at)?;
    let dst_service = match at.object(e.dst_endpoint, "dst_endpoint")? {
        Some(dst) => at.text(dst.svc_name, "dst_endpoint.svc_name")?,
        None => None,
    };
    let auth_service = match at.object(e.service, "service")? {
        Some(service) => at.text(service.name, "service.name")?,
        None => None,
    };
    let resource = at.first_text(e.resources, "resources", "uid", |r| r.uid)?;
    let tenant = match at.object(e.cloud, "cloud")? {
        Some(cloud) => match at.object(cloud.account, "cloud.account")? {
            Some(account) => at.text(account.uid, "cloud.account.uid")?,
            None => None,
        },
        None => None,
    };
    let bytes = match at.object(e.traffic, "traffic")? {
        Some(traffic) => at.count(traffic.bytes_out, "traffic.bytes_out")?,
        None => None,
    };

    Ok(AuditEvent {
        id: id.unwrap_or(Cow::Borrowed("")),
        time,
        account,
        action,
        outcome,
        credential,
        source,
        target: Target { system: dst_service.or(service_name).or(auth_service), resource },
        bytes,
        records: None,
        reason,
        tenant,
        session,
        invoked_by: None,
        mfa,
        attributes: None,
    })
}

/// An optional boolean, strictly: a string or a number there is a mistake of the producer.
fn boolean(value: Option<Scalar>, at: Path, field: &str) -> Result<Option<bool>, DecodeError> {
    match value {
        None => Ok(None),
        Some(Scalar::Bool(b)) => Ok(Some(b)),
        Some(other) => Err(at.wrong_type(field, "a boolean", other.kind())),
    }
}

fn source_of<'a>(
    src_endpoint: Option<Obj<Endpoint<'a>>>,
    http_request: Option<Obj<HttpRequest<'a>>>,
    at: Path,
) -> Result<Source<'a>, DecodeError> {
    let mut source = Source::default();
    if let Some(src) = at.object(src_endpoint, "src_endpoint")? {
        source.ip = at.ip(src.ip, "src_endpoint.ip")?;
        if let Some(location) = at.object(src.location, "src_endpoint.location")? {
            source.country = at.text(location.country, "src_endpoint.location.country")?;
        }
        if let Some(asn) = at.object(src.autonomous_system, "src_endpoint.autonomous_system")? {
            source.asn = at.asn(asn.number, "src_endpoint.autonomous_system.number")?;
            source.as_org = at.text(asn.name, "src_endpoint.autonomous_system.name")?;
        }
    }
    if let Some(http) = at.object(http_request, "http_request")? {
        source.user_agent = at.text(http.user_agent, "http_request.user_agent")?;
    }
    Ok(source)
}
