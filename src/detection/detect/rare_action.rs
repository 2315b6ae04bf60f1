//! `rare_action` (new terms): an account makes a call of a sensitive class (stopping audit
//! logs, creating users, sharing a snapshot, reading a secret) that is new in its own history:
//! the exact action, the class that matched, or the service, as the definition says.
//!
//! The history is the account's own: every successful call that matches one of the classes
//! leaves its term in the account's [`AccountTerms`], during the warm-up too. So an automation
//! that does such things every day has them in its history and stays quiet, and a key stolen
//! from an integration that never touched CloudTrail fires the first time it stops a trail.
//! Only successful calls count: a denied attempt did not do the thing (and a run of denials is
//! `denied-burst`'s), and a failed authentication was not the account at all. A definition
//! with `attempts` counts denied calls too, for calls whose attempt alone is the signal.
//!
//! It waits until the account has been seen for the definition's `warmup` and has `min_events`
//! events, so a brand-new account does not fire on everything it does first. The terms are
//! hashes, bounded per account (see [`crate::detection::terms`]): a term unused for longest
//! leaves when the set is full, and comes back as new.

use serde_json::json;

use super::{facts, human_duration, Context, Finding};
use crate::detection::definition::{glob_match, NewTerm, RareActionParams};
use crate::detection::terms::{AccountTerms, TermKind};
use crate::detection::time::{Rfc3339, HOUR};
use crate::input::event::{AuditEvent, Outcome};

/// The term a call stands for, under one definition.
pub struct Term<'a> {
    /// The class (pattern of `params.classes`) the call matched.
    pub class: &'a str,
    /// The action, the class or the service, as the definition counts.
    pub value: &'a str,
    /// The value's hash, kept apart by what it is (an action and a service may share a name).
    pub hash: u64,
}

/// The term of `event`, when it is a successful call of one of the classes (or a denied one,
/// with `attempts`).
pub fn term<'a>(event: &'a AuditEvent<'_>, params: &'a RareActionParams) -> Option<Term<'a>> {
    let counted = match event.outcome {
        Outcome::Success => true,
        Outcome::Denied => params.attempts,
        Outcome::Failure => false,
    };
    if !counted {
        return None;
    }
    let action = event.action.as_ref();
    let class = params.classes.iter().find(|c| glob_match(c, action))?;
    let value = match params.term {
        NewTerm::Action => action,
        NewTerm::Class => class.as_str(),
        NewTerm::Service => action.split('.').next().unwrap_or(action),
    };
    let seed = match params.term {
        NewTerm::Action => 0x6163_7469_6f6e,
        NewTerm::Class => 0x0063_6c61_7373,
        NewTerm::Service => 0x0073_6572_7669_6365,
    };
    Some(Term { class, value, hash: xxhash_rust::xxh3::xxh3_64_with_seed(value.as_bytes(), seed) })
}

pub fn check(ctx: &Context, params: &RareActionParams, term: &Term, terms: &AccountTerms) -> Option<Finding> {
    // The baseline has already counted this event.
    let before = ctx.account.events.saturating_sub(1);
    if !ctx.warmed_up || before < params.min_events || terms.contains(TermKind::Used, term.hash) {
        return None;
    }
    let account = ctx.event.account.as_ref();
    let action = ctx.event.action.as_ref();
    let history =
        format!("its {} and {before} events of history", human_duration(ctx.event.time - ctx.account.first_seen));
    let first = match params.term {
        NewTerm::Action => format!("an action it never made in {history} (class {})", term.class),
        NewTerm::Class => format!("its first call of class {} in {history}", term.class),
        NewTerm::Service => format!("its first call to {} of class {} in {history}", term.value, term.class),
    };
    let on = ctx.event.target.resource.as_deref().map(|r| format!(" on {r}")).unwrap_or_default();
    let (called, denied) =
        if ctx.event.outcome == Outcome::Denied { ("tried to call", " and was denied") } else { ("called", "") };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: 1.0,
        expected: 0.0,
        score: (before as f64).log10(),
        window_start: ctx.event.time - HOUR,
        window_end: ctx.event.time,
        summary: format!(
            "{account} {called} {action}{on}{denied}, {first}. Confirm with its owner that the change was planned; if not, undo it and treat the account's credentials as stolen."
        ),
        baseline: facts([
            ("term", json!(params.term.as_str())),
            ("new_term", json!(term.value)),
            ("class", json!(term.class)),
            ("terms_known", json!(terms.count(TermKind::Used))),
            ("events_before", json!(before)),
            ("first_seen", json!(Rfc3339(ctx.account.first_seen).to_string())),
        ]),
        new: vec![format!("{} {}", params.term.as_str(), term.value)],
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::baseline::AccountBaseline;
    use crate::detection::time::{Millis, DAY};
    use crate::input::event::decode;

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    fn params(term: NewTerm) -> RareActionParams {
        RareActionParams {
            classes: vec!["cloudtrail.Stop*".into(), "cloudtrail.DeleteTrail".into(), "ec2.DeleteFlowLogs".into()],
            term,
            min_events: 10,
            attempts: false,
        }
    }

    fn line(action: &str, outcome: &str) -> String {
        format!(
            r#"{{"id":"e1","time":"2026-01-20T10:00:00Z","account":"arn:aws:iam::111122223333:role/ci-deploy","action":"{action}","outcome":"{outcome}","target":{{"resource":"arn:aws:cloudtrail:eu-west-1:111122223333:trail/main"}}}}"#
        )
    }

    /// Judge `action` for an account first seen `age` ago with `events` events and `known` terms.
    fn judge(p: &RareActionParams, action: &str, known: &[&str], age: Millis, events: u64) -> Option<Finding> {
        let text = line(action, "success");
        let event = decode(text.as_bytes(), 1 << 20).unwrap();
        let mut account = AccountBaseline::new(event.time - age);
        account.events = events;
        let mut terms = AccountTerms::default();
        for known in known {
            let text = line(known, "success");
            let e = decode(text.as_bytes(), 1 << 20).unwrap();
            terms.learn(TermKind::Used, super::term(&e, p).unwrap().hash, MONDAY);
        }
        let ctx = Context { event: &event, t: event.time, account: &account, warmed_up: age >= 7 * DAY };
        let term = super::term(&event, p)?;
        check(&ctx, p, &term, &terms)
    }

    #[test]
    fn a_new_action_fires_after_the_warm_up_and_a_known_one_does_not() {
        let p = params(NewTerm::Action);
        let found = judge(&p, "cloudtrail.StopLogging", &["ec2.DeleteFlowLogs"], 9 * DAY, 500).expect("new action");
        assert!(found.summary.contains("called cloudtrail.StopLogging on arn:aws:cloudtrail"), "{}", found.summary);
        assert!(found.summary.contains("never made in its 9 days and 499 events"), "{}", found.summary);
        assert_eq!(found.baseline["new_term"], "cloudtrail.StopLogging");
        assert_eq!(found.baseline["class"], "cloudtrail.Stop*");
        assert_eq!(found.new, vec!["action cloudtrail.StopLogging".to_string()]);
        // An automation that stops logging as part of its job: the term is in its history.
        assert!(judge(&p, "cloudtrail.StopLogging", &["cloudtrail.StopLogging"], 9 * DAY, 500).is_none());
        // Calls outside the classes are not judged at all.
        assert!(judge(&p, "cloudtrail.StartLogging", &[], 9 * DAY, 500).is_none());
    }

    #[test]
    fn a_young_or_quiet_account_does_not_fire() {
        let p = params(NewTerm::Action);
        assert!(judge(&p, "cloudtrail.StopLogging", &[], 2 * DAY, 500).is_none(), "in its warm-up");
        assert!(judge(&p, "cloudtrail.StopLogging", &[], 9 * DAY, 10).is_none(), "9 events before, 10 needed");
        assert!(judge(&p, "cloudtrail.StopLogging", &[], 9 * DAY, 11).is_some());
    }

    #[test]
    fn classes_and_services_count_as_the_definition_says() {
        let class = params(NewTerm::Class);
        assert!(judge(&class, "cloudtrail.StopLogging", &["cloudtrail.StopEventDataStoreIngestion"], 9 * DAY, 500)
            .is_none());
        let found = judge(&class, "cloudtrail.DeleteTrail", &["cloudtrail.StopLogging"], 9 * DAY, 500).unwrap();
        assert!(found.summary.contains("its first call of class cloudtrail.DeleteTrail"), "{}", found.summary);
        let service = params(NewTerm::Service);
        assert!(judge(&service, "cloudtrail.DeleteTrail", &["cloudtrail.StopLogging"], 9 * DAY, 500).is_none());
        let found = judge(&service, "ec2.DeleteFlowLogs", &["cloudtrail.StopLogging"], 9 * DAY, 500).unwrap();
        assert_eq!(found.baseline["new_term"], "ec2");
        assert!(found.summary.contains("its first call to ec2 of class ec2.DeleteFlowLogs"), "{}", found.summary);
    }

    #[test]
    fn only_successful_calls_are_terms_unless_attempts_count() {
        let mut p = params(NewTerm::Action);
        for outcome in ["denied", "failure"] {
            let text = line("cloudtrail.StopLogging", outcome);
            assert!(super::term(&decode(text.as_bytes(), 1 << 20).unwrap(), &p).is_none(), "{outcome}");
        }
        p.attempts = true;
        let text = line("cloudtrail.StopLogging", "denied");
        let denied = decode(text.as_bytes(), 1 << 20).unwrap();
        let term = super::term(&denied, &p).expect("a denied attempt is a term");
        let mut account = AccountBaseline::new(denied.time - 9 * DAY);
        account.events = 500;
        let ctx = Context { event: &denied, t: denied.time, account: &account, warmed_up: true };
        let found = check(&ctx, &p, &term, &AccountTerms::default()).expect("a new attempt fires");
        assert!(found.summary.contains("tried to call cloudtrail.StopLogging on arn:aws:cloudtrail:eu-west-1:111122223333:trail/main and was denied, an action it never made"), "{}", found.summary);
        // A failed authentication is not the account's attempt.
        let text = line("cloudtrail.StopLogging", "failure");
        assert!(super::term(&decode(text.as_bytes(), 1 << 20).unwrap(), &p).is_none());
    }
}
