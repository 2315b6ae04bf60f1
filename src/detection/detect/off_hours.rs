//! `off_hours`: activity at a time of week when this account is (almost) never active.
//!
//! The learned schedule is the account's presence per hour of week (see `baseline`): the share
//! of observed weeks in which it was active in that hour or the hours beside it. A nightly job
//! or a 24/7 integration is present at those hours, so it is never off-hours there. An alert
//! needs `min_events` events in the clock hour, so one stray call does not page anyone.
//! A declared schedule for the account overrides the learned one and needs no warm-up.
//! Score: the number of observed weeks that contradict the activity.

use serde_json::json;

use super::{facts, Context, Finding};
use crate::detection::definition::OffHoursParams;
use crate::detection::schedule::Schedule;
use crate::detection::time::{self, HOUR};

pub fn check(ctx: &Context, params: &OffHoursParams, schedules: &[Schedule]) -> Option<Finding> {
    // Cheap tests first: this runs for every event.
    let events = ctx.account.current_hour().events;
    if events < params.min_events {
        return None;
    }
    let how = time::hour_of_week(ctx.t);
    let declared =
        if schedules.is_empty() { None } else { schedules.iter().find(|s| s.applies_to(&ctx.event.account)) };
    if let Some(schedule) = declared {
        if schedule.contains(ctx.t) {
            return None;
        }
        let when = time::describe_hour_of_week(how);
        let summary = format!(
            "{} was active on {when} ({events} events this hour), outside its declared schedule ({}). Confirm with its owner that this run was planned.",
            ctx.event.account, schedule.description
        );
        return Some(finding(
            ctx,
            events,
            &when,
            summary,
            0.0,
            1.0,
            facts([("declared_schedule", json!(schedule.description))]),
        ));
    }
    let weeks = ctx.account.weeks_observed();
    if !ctx.warmed_up || weeks < 2 {
        return None;
    }
    let presence = ctx.account.presence_near(how);
    if presence > params.max_presence {
        return None;
    }
    let when = time::describe_hour_of_week(how);
    let weeks_active = ctx.account.weeks_active_near(how).round();
    let summary = format!(
        "{} was active on {when} ({events} events this hour), a time it was active in {weeks_active} of its last {weeks} weeks. Confirm with its owner that this run was planned; if not, treat its key as stolen.",
        ctx.event.account
    );
    let baseline = facts([
        ("presence_near_this_hour", json!((presence * 1000.0).round() / 1000.0)),
        ("weeks_observed", json!(weeks)),
        ("hour_of_week", json!(when)),
    ]);
    Some(finding(ctx, events, &when, summary, presence, f64::from(weeks) * (1.0 - presence), baseline))
}

fn finding(
    ctx: &Context,
    events: u32,
    when: &str,
    summary: String,
    expected: f64,
    score: f64,
    baseline: serde_json::Map<String, serde_json::Value>,
) -> Finding {
    Finding {
        subject: ctx.account_subject(),
        observed: f64::from(events),
        expected,
        score,
        window_start: ctx.t - ctx.t.rem_euclid(HOUR),
        window_end: ctx.t,
        summary,
        baseline,
        new: vec![format!("activity on {when}")],
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    }
}
