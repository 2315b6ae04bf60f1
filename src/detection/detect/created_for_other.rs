//! `credential_created_for_other`: a principal creates a key or a login for another principal
//! (CloudTrail's `CreateAccessKey` with a `userName` that is not the caller, `CreateLoginProfile`
//! for another user; in the native contract any `credential.create` whose `credential.owner` is
//! not the account). Whoever holds the new secret can act as that principal, so this fires
//! from the first such call, unless it is what the account usually does: it created
//! credentials for at least `usual_after` distinct other principals before (an identity
//! automation, a help desk). A principal it created credentials for before is not new either
//! (a rotation service renewing the keys it manages). Only successful calls count.
//!
//! The principals it created credentials for are kept as hashes in its [`AccountTerms`], at
//! most [`crate::detection::terms::MAX_TARGETS`].

use serde_json::json;

use super::{facts, Context, Finding};
use crate::detection::definition::{glob_match, CredentialCreatedForOtherParams};
use crate::detection::time::HOUR;
use crate::input::event::{AuditEvent, Lifecycle, Outcome};

/// The other principal a call gave a credential to.
pub struct Target<'a> {
    pub principal: &'a str,
    /// The key created, when the event names it.
    pub key: Option<&'a str>,
}

/// The principal `event` created a credential for, when it is not the caller.
pub fn target<'a>(event: &'a AuditEvent<'_>, params: &CredentialCreatedForOtherParams) -> Option<Target<'a>> {
    if event.outcome != Outcome::Success {
        return None;
    }
    let target = match event.lifecycle() {
        Some(Lifecycle::Create) => {
            let credential = event.credential.as_ref()?;
            Target { principal: credential.owner.as_deref()?, key: Some(credential.id.as_ref()) }
        }
        None if params.target_actions.iter().any(|a| glob_match(a, &event.action)) => {
            Target { principal: event.target.resource.as_deref()?, key: None }
        }
        _ => return None,
    };
    (!same_principal(&event.account, target.principal)).then_some(target)
}

/// Whether two names are the same principal: equal, or a bare name and an ARN (or path) that
/// ends in it, as a decoder may name the target by its user name and the caller by its ARN.
/// Two ARNs must be equal: a role and a user of the same name are two principals.
fn same_principal(a: &str, b: &str) -> bool {
    fn bare(s: &str) -> bool {
        !s.contains(['/', ':'])
    }
    fn last(s: &str) -> &str {
        s.rsplit(['/', ':']).next().unwrap_or(s)
    }
    a == b || (bare(a) && !bare(b) && last(b) == a) || (bare(b) && !bare(a) && last(a) == b)
}

/// `known`: the account created credentials for this principal before; `others_before`: for
/// how many distinct other principals it did.
pub fn check(
    ctx: &Context,
    params: &CredentialCreatedForOtherParams,
    target: &Target,
    known: bool,
    others_before: usize,
) -> Option<Finding> {
    if known || others_before >= usize::from(params.usual_after) {
        return None;
    }
    let account = ctx.event.account.as_ref();
    let action = ctx.event.action.as_ref();
    let principal = target.principal;
    let what = match target.key {
        Some(key) => format!("key {key}"),
        None => format!("a credential ({action})"),
    };
    let before = match others_before {
        0 => "it never created credentials for another principal before".to_string(),
        n => format!(
            "it did so for {n} other principal(s) before, fewer than the {} that make it usual",
            params.usual_after
        ),
    };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: 1.0,
        expected: 0.0,
        score: 1.0,
        window_start: ctx.event.time - HOUR,
        window_end: ctx.event.time,
        summary: format!(
            "{account} created {what} for {principal}; {before}. Whoever holds it can act as {principal}: confirm with both owners that it was planned; if not, delete it and treat {account}'s credentials as stolen."
        ),
        baseline: facts([
            ("created_for", json!(principal)),
            ("action", json!(action)),
            ("others_before", json!(others_before)),
            ("usual_after", json!(params.usual_after)),
        ]),
        new: vec![format!("credential for {principal}")],
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::baseline::AccountBaseline;
    use crate::input::event::decode;

    fn params() -> CredentialCreatedForOtherParams {
        CredentialCreatedForOtherParams { target_actions: vec!["iam.CreateLoginProfile".into()], usual_after: 3 }
    }

    fn event(account: &str, action: &str, outcome: &str, rest: &str) -> String {
        format!(
            r#"{{"id":"c1","time":"2026-01-20T10:00:00Z","account":"{account}","action":"{action}","outcome":"{outcome}"{rest}}}"#
        )
    }

    fn judge(line: &str, known: bool, others_before: usize) -> Option<Finding> {
        let e = decode(line.as_bytes(), 1 << 20).unwrap();
        let account = AccountBaseline::new(e.time);
        let ctx = Context { event: &e, t: e.time, account: &account, warmed_up: true };
        let p = params();
        let target = target(&e, &p)?;
        check(&ctx, &p, &target, known, others_before)
    }

    const ADMIN: &str = "arn:aws:iam::111122223333:user/ops-admin";
    const KEY_FOR_BOB: &str = r#","credential":{"id":"AKIAEXAMPLEBOB","owner":"arn:aws:iam::111122223333:user/bob"}"#;

    #[test]
    fn a_key_for_another_principal_fires_from_the_first() {
        let found = judge(&event(ADMIN, "credential.create", "success", KEY_FOR_BOB), false, 0).expect("fires");
        assert!(
            found.summary.starts_with(
                "arn:aws:iam::111122223333:user/ops-admin created key AKIAEXAMPLEBOB for arn:aws:iam::111122223333:user/bob; it never"
            ),
            "{}",
            found.summary
        );
        assert_eq!(found.baseline["created_for"], "arn:aws:iam::111122223333:user/bob");
        let found = judge(&event(ADMIN, "credential.create", "success", KEY_FOR_BOB), false, 2).expect("2 < 3");
        assert!(found.summary.contains("for 2 other principal(s) before, fewer than the 3"), "{}", found.summary);
    }

    #[test]
    fn its_own_key_a_usual_creator_a_known_target_and_failed_calls_stay_quiet() {
        let own = r#","credential":{"id":"AKIAEXAMPLEOWN","owner":"arn:aws:iam::111122223333:user/ops-admin"}"#;
        assert!(judge(&event(ADMIN, "credential.create", "success", own), false, 0).is_none());
        assert!(judge(&event("ops-admin", "credential.create", "success", own), false, 0).is_none(), "bare name");
        assert!(judge(&event(ADMIN, "credential.create", "success", r#","credential":{"id":"K"}"#), false, 0).is_none());
        assert!(judge(&event(ADMIN, "credential.create", "success", KEY_FOR_BOB), false, 3).is_none(), "usual");
        assert!(judge(&event(ADMIN, "credential.create", "success", KEY_FOR_BOB), true, 1).is_none(), "known");
        assert!(judge(&event(ADMIN, "credential.create", "denied", KEY_FOR_BOB), false, 0).is_none());
    }

    #[test]
    fn a_login_profile_for_another_user_fires_through_its_target() {
        let bob = r#","target":{"system":"iam.amazonaws.com","resource":"arn:aws:iam::111122223333:user/bob"}"#;
        let found = judge(&event(ADMIN, "iam.CreateLoginProfile", "success", bob), false, 0).expect("fires");
        assert!(found
            .summary
            .contains("created a credential (iam.CreateLoginProfile) for arn:aws:iam::111122223333:user/bob"));
        let own = r#","target":{"resource":"arn:aws:iam::111122223333:user/ops-admin"}"#;
        assert!(judge(&event(ADMIN, "iam.CreateLoginProfile", "success", own), false, 0).is_none());
        assert!(judge(&event(ADMIN, "iam.CreateLoginProfile", "success", ""), false, 0).is_none(), "no target");
        assert!(judge(&event(ADMIN, "iam.UpdateLoginProfile", "success", bob), false, 0).is_none(), "not listed");
    }

    #[test]
    fn principals_are_compared_by_name_only_against_a_bare_name() {
        assert!(same_principal("arn:aws:iam::1:user/dev/alice", "alice"));
        assert!(same_principal("alice", "arn:aws:iam::1:user/alice"));
        assert!(!same_principal("arn:aws:iam::1:role/deploy", "arn:aws:iam::1:user/deploy"));
        assert!(!same_principal("alice", "bob"));
    }
}
