//! `format = "okta"`: one Okta System Log event (a `LogEvent` of `/api/v1/logs`, or of a log
//! stream) per message.
//!
//! The mapping (README.md, "Input formats", has the table):
//! - `account` is the actor, `actor.id` (`actor.alternateId` when there is no id): a person
//!   (`User`), a service app acting through the client-credentials flow (`PublicClientApp`, its
//!   client id), or Okta itself (`SystemPrincipal`). A call made with an API token (SSWS) names
//!   the token's creator as the actor, since a token acts with its creator's rights.
//! - `action` is `eventType` (`user.session.start`), except the credential lifecycle, only when
//!   it succeeded: `system.api_token.create` → `credential.create`, `system.api_token.revoke` →
//!   `credential.revoke` (`credential` = the `target` of type `Token`), and an OAuth client's
//!   secret or key, `app.oauth2.credentials.lifecycle.create` → `credential.create`, `.deactivate`
//!   and `.delete` → `credential.revoke` (`credential` = the target that is not the
//!   `AppInstance`, owned by that app). `.activate` (a secret made active again) stays an ordinary
//!   action: the engine has no "unrevoke".
//! - `outcome` from `outcome.result`: `FAILURE` is `failure`, `DENY` is `denied`; `SUCCESS`,
//!   `ALLOW`, and anything else (`CHALLENGE`, `SKIPPED`, `RATE_LIMIT`, `UNKNOWN`...) or no outcome
//!   is `success`: only a definite failure counts against an account. `outcome.reason` is the
//!   reason.
//! - `credential`: the API token a call was made with, `transaction.detail.requestApiTokenId`
//!   (else `debugContext.debugData.requestApiTokenId`), owned by the actor. Okta never logs which
//!   password, client secret or key was presented, only its kind
//!   (`authenticationContext.credentialType`), so other calls carry no credential.
//! - `source`: `client.ipAddress`, `client.geographicalContext.country` (a country name, such as
//!   `United States`, not a code), `securityContext.asNumber` (and `asOrg`),
//!   `client.userAgent.rawUserAgent`.
//!
//! Strictness: the fields every event has are checked like native fields; `debugData` differs
//! per event type and is read leniently (a value of another type there is ignored).

use std::borrow::Cow;

use serde::Deserialize;

use super::json::{decode_record, List, Obj, Path, Scalar};
use crate::input::event::{AuditEvent, Credential, DecodeError, DecodeErrorKind, Outcome, Source, Target};

/// `target.system` of every Okta event: the log names no other system.
const SYSTEM: &str = "okta";

/// Decodes one Okta System Log event.
pub fn decode(bytes: &[u8], max_bytes: usize) -> Result<AuditEvent<'_>, DecodeError> {
    decode_record(bytes, max_bytes, map_event)
}

/// The fields of a `LogEvent` that the mapping reads; everything else is skipped.
#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow)]
    uuid: Option<Scalar<'a>>,
    #[serde(borrow)]
    published: Option<Scalar<'a>>,
    #[serde(rename = "eventType", borrow)]
    event_type: Option<Scalar<'a>>,
    #[serde(borrow)]
    actor: Option<Obj<Actor<'a>>>,
    #[serde(borrow)]
    client: Option<Obj<Client<'a>>>,
    #[serde(borrow)]
    outcome: Option<Obj<LogOutcome<'a>>>,
    #[serde(rename = "securityContext", borrow)]
    security_context: Option<Obj<SecurityContext<'a>>>,
    #[serde(borrow)]
    transaction: Option<Obj<Transaction<'a>>>,
    #[serde(rename = "debugContext", borrow)]
    debug_context: Option<Obj<DebugContext<'a>>>,
    #[serde(borrow)]
    target: Option<List<Obj<LogTarget<'a>>>>,
}

#[derive(Deserialize)]
struct Actor<'a> {
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(rename = "alternateId", borrow)]
    alternate_id: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Client<'a> {
    #[serde(rename = "ipAddress", borrow)]
    ip_address: Option<Scalar<'a>>,
    #[serde(rename = "userAgent", borrow)]
    user_agent: Option<Obj<UserAgent<'a>>>,
    #[serde(rename = "geographicalContext", borrow)]
    geographical_context: Option<Obj<GeographicalContext<'a>>>,
}

#[derive(Deserialize)]
struct UserAgent<'a> {
    #[serde(rename = "rawUserAgent", borrow)]
    raw_user_agent: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct GeographicalContext<'a> {
    #[serde(borrow)]
    country: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct LogOutcome<'a> {
    #[serde(borrow)]
    result: Option<Scalar<'a>>,
    #[serde(borrow)]
    reason: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct SecurityContext<'a> {
    #[serde(rename = "asNumber", borrow)]
    as_number: Option<Scalar<'a>>,
    #[serde(rename = "asOrg", borrow)]
    as_org: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct Transaction<'a> {
    #[serde(borrow)]
    detail: Option<Obj<ApiTokenDetail<'a>>>,
}

#[derive(Deserialize)]
struct DebugContext<'a> {
    #[serde(rename = "debugData", borrow)]
    debug_data: Option<Obj<ApiTokenDetail<'a>>>,
}

#[derive(Deserialize)]
struct ApiTokenDetail<'a> {
    #[serde(rename = "requestApiTokenId", borrow)]
    request_api_token_id: Option<Scalar<'a>>,
}

#[derive(Deserialize)]
struct LogTarget<'a> {
    #[serde(borrow)]
    id: Option<Scalar<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Scalar<'a>>,
}

/// The outcome of `outcome.result` (see the module docs).
pub fn result_outcome(result: &str) -> Outcome {
    match result {
        "FAILURE" => Outcome::Failure,
        "DENY" => Outcome::Denied,
        _ => Outcome::Success,
    }
}

/// What a successful lifecycle event does to the credential in its `target`.
#[derive(Clone, Copy)]
enum Change {
    ApiTokenCreate,
    ApiTokenRevoke,
    ClientCredentialCreate,
    ClientCredentialRevoke,
}

fn change_of(event_type: &str) -> Option<Change> {
    match event_type {
        "system.api_token.create" => Some(Change::ApiTokenCreate),
        "system.api_token.revoke" => Some(Change::ApiTokenRevoke),
        "app.oauth2.credentials.lifecycle.create" => Some(Change::ClientCredentialCreate),
        "app.oauth2.credentials.lifecycle.deactivate" | "app.oauth2.credentials.lifecycle.delete" => {
            Some(Change::ClientCredentialRevoke)
        }
        _ => None,
    }
}

/// One `target` entry's strings.
struct TargetFields<'a> {
    id: Option<Cow<'a, str>>,
    kind: Option<Cow<'a, str>>,
}

fn targets<'a>(value: Option<List<Obj<LogTarget<'a>>>>, at: Path) -> Result<Vec<TargetFields<'a>>, DecodeError> {
    let mut out = Vec::new();
    for (i, item) in at.list(value, "target")?.into_iter().enumerate() {
        let target = match item {
            Obj::Ok(target) => target,
            Obj::Wrong(kind) => {
                return Err(at.invalid(&format!("target[{i}]"), format!("expected an object, found {kind}")))
            }
        };
        out.push(TargetFields {
            id: at.text_named(target.id, || format!("target[{i}].id"))?,
            kind: at.text_named(target.kind, || format!("target[{i}].type"))?,
        });
    }
    Ok(out)
}

/// The kind of an OAuth client credential, from the id prefixes of Okta's credentials API
/// (`ocs…` a client secret, `pks…` a JSON Web Key).
fn client_credential_kind(id: &str) -> Option<&'static str> {
    if id.starts_with("ocs") {
        Some("client_secret")
    } else if id.starts_with("pks") {
        Some("jwk")
    } else {
        None
    }
}

fn map_event(e: LogEvent<'_>) -> Result<AuditEvent<'_>, DecodeError> {
    let at = Path("");
    let time = at.rfc3339(e.published, "published")?;
    let id = at.text(e.uuid, "uuid")?;
    let event_type = at.text(e.event_type, "eventType")?.ok_or_else(|| at.missing("eventType"))?;

    let (account, account_field) = match at.object(e.actor, "actor")? {
        Some(actor) => match (at.text(actor.id, "actor.id")?, at.text(actor.alternate_id, "actor.alternateId")?) {
            (Some(id), _) => (id, "actor.id"),
            (None, Some(alternate)) => (alternate, "actor.alternateId"),
            (None, None) => {
                return Err(DecodeError::field(
                    DecodeErrorKind::MissingField,
                    "actor.id",
                    "is required but missing (and so is `actor.alternateId`)",
                ))
            }
        },
        None => return Err(at.missing("actor.id")),
    };
    let account = at.name_value(account, account_field)?;

    let (outcome, reason) = match at.object(e.outcome, "outcome")? {
        Some(o) => {
            let result = at.text(o.result, "outcome.result")?;
            (result.as_deref().map_or(Outcome::Success, result_outcome), at.text(o.reason, "outcome.reason")?)
        }
        None => (Outcome::Success, None),
    };

    let mut source = Source::default();
    if let Some(client) = at.object(e.client, "client")? {
        source.ip = at.ip(client.ip_address, "client.ipAddress")?;
        if let Some(agent) = at.object(client.user_agent, "client.userAgent")? {
            source.user_agent = at.text(agent.raw_user_agent, "client.userAgent.rawUserAgent")?;
        }
        if let Some(geo) = at.object(client.geographical_context, "client.geographicalContext")? {
            source.country = at.text(geo.country, "client.geographicalContext.country")?;
        }
    }
    if let Some(security) = at.object(e.security_context, "securityContext")? {
        source.asn = at.asn(security.as_number, "securityContext.asNumber")?;
        source.as_org = at.text(security.as_org, "securityContext.asOrg")?;
    }

    // The API token the call was made with: `transaction.detail` is where Okta documents it;
    // `debugData` is free-form, so a value of another type there is ignored.
    let token_in_transaction = match at.object(e.transaction, "transaction")? {
        Some(transaction) => match at.object(transaction.detail, "transaction.detail")? {
            Some(detail) => at.text(detail.request_api_token_id, "transaction.detail.requestApiTokenId")?,
            None => None,
        },
        None => None,
    };
    let token_in_debug = || match e.debug_context {
        Some(Obj::Ok(DebugContext { debug_data: Some(Obj::Ok(data)) })) => match data.request_api_token_id {
            Some(Scalar::Str(id)) if !id.is_empty() => Some(id),
            _ => None,
        },
        _ => None,
    };
    let presented = token_in_transaction.or_else(token_in_debug).map(|id| Credential {
        id,
        kind: Some(Cow::Borrowed("api_token")),
        owner: Some(account.clone()),
    });

    let targets = targets(e.target, at)?;
    let resource = targets.iter().find_map(|t| t.id.clone());
    let change = change_of(&event_type).filter(|_| outcome == Outcome::Success);
    let (action, credential): (Cow<'_, str>, Option<Credential<'_>>) = match change {
        None => (event_type, presented),
        Some(change) => {
            let is_app = |t: &&TargetFields| t.kind.as_deref() == Some("AppInstance");
            let acted_on = match change {
                Change::ApiTokenCreate | Change::ApiTokenRevoke => {
                    targets.iter().find(|t| t.kind.as_deref() == Some("Token"))
                }
                Change::ClientCredentialCreate | Change::ClientCredentialRevoke => targets.iter().find(|t| !is_app(t)),
            };
            let Some(key_id) = acted_on.and_then(|t| t.id.clone()) else {
                let which = match change {
                    Change::ApiTokenCreate | Change::ApiTokenRevoke => "an entry of type `Token` with an `id`",
                    _ => "an entry other than the `AppInstance`, with an `id` (the secret or key)",
                };
                return Err(DecodeError::field(
                    DecodeErrorKind::MissingField,
                    "target[].id",
                    format!("is required for `{event_type}` but missing: the credential acted on is {which}"),
                ));
            };
            let credential = match change {
                // A token belongs to its creator; a revocation does not say whose it was.
                Change::ApiTokenCreate => {
                    Credential { id: key_id, kind: Some(Cow::Borrowed("api_token")), owner: Some(account.clone()) }
                }
                Change::ApiTokenRevoke => {
                    Credential { id: key_id, kind: Some(Cow::Borrowed("api_token")), owner: None }
                }
                // A client's secret or key is presented by the client, whoever made it.
                Change::ClientCredentialCreate | Change::ClientCredentialRevoke => Credential {
                    kind: client_credential_kind(&key_id).map(Cow::Borrowed),
                    owner: targets.iter().find(is_app).and_then(|t| t.id.clone()),
                    id: key_id,
                },
            };
            let action = match change {
                Change::ApiTokenCreate | Change::ClientCredentialCreate => "credential.create",
                Change::ApiTokenRevoke | Change::ClientCredentialRevoke => "credential.revoke",
            };
            (Cow::Borrowed(action), Some(credential))
        }
    };
    let action = at.name_value(action, "eventType")?;

    Ok(AuditEvent {
        id: id.unwrap_or(Cow::Borrowed("")),
        time,
        account,
        action,
        outcome,
        credential,
        source,
        target: Target { system: Some(Cow::Borrowed(SYSTEM)), resource },
        bytes: None,
        records: None,
        reason,
        tenant: None,
        session: None,
        invoked_by: None,
        mfa: None,
        attributes: None,
    })
}
