//! `mfa_omitted`: a sign-in without a second factor by an account that always used one. A
//! password that works without the second factor is one an attacker may hold: the owner set
//! MFA up, so signing in without it is the owner's habit broken, or someone else.
//!
//! The account's [`AccountTerms`](crate::detection::terms::AccountTerms) remember, as two terms
//! of kind `SignIn`, whether it ever signed in with MFA and whether it ever signed in without,
//! and the hour of the last of each. It fires on a successful sign-in (`params.actions`) with
//! `mfa` false by a warmed-up account that signed in with MFA before and never without. A
//! sign-in whose event does not say (`mfa` absent) is neither.

use serde_json::json;

use super::{facts, Context, Finding};
use crate::detection::definition::{glob_match, MfaOmittedParams};
use crate::detection::time::{Rfc3339, DAY};
use crate::input::event::{AuditEvent, Outcome};

/// The two `SignIn` terms.
pub const WITH_MFA: u64 = 0x6d66_615f_7573_6564; // "mfa_used"
pub const WITHOUT_MFA: u64 = 0x6e6f_5f6d_6661_0000; // "no_mfa"

/// The term a successful sign-in teaches: with or without MFA; `None` when it is not a
/// sign-in, failed, or does not say.
pub fn sign_in(event: &AuditEvent, params: &MfaOmittedParams) -> Option<u64> {
    let is_sign_in = event.outcome == Outcome::Success && params.actions.iter().any(|a| glob_match(a, &event.action));
    match event.mfa.filter(|_| is_sign_in)? {
        true => Some(WITH_MFA),
        false => Some(WITHOUT_MFA),
    }
}

/// `last_with_mfa`: when the account last signed in with MFA (the start of that hour), if it
/// ever did; `ever_without`: it signed in without MFA before.
pub fn check(ctx: &Context, term: u64, last_with_mfa: Option<i64>, ever_without: bool) -> Option<Finding> {
    let last_with_mfa = last_with_mfa.filter(|_| term == WITHOUT_MFA && !ever_without && ctx.warmed_up)?;
    let event = ctx.event;
    let account = event.account.as_ref();
    let from = match event.source.ip {
        Some(ip) => format!(" from {ip}"),
        None => String::new(),
    };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: 1.0,
        expected: 0.0,
        score: 1.0,
        window_start: event.time - DAY,
        window_end: event.time,
        summary: format!(
            "{account} signed in{from} without MFA; every sign-in of it seen before used MFA, the last in the hour of {}. \
             Confirm with the owner; if it was not them, reset the password, check the MFA devices and review what the session did.",
            Rfc3339(last_with_mfa)
        ),
        baseline: facts([
            ("last_sign_in_with_mfa", json!(Rfc3339(last_with_mfa).to_string())),
            ("signed_in_without_mfa_before", json!(false)),
            ("action", json!(event.action)),
        ]),
        new: vec!["sign-in without MFA".to_string()],
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    })
}
