//! `off_hours`: activity at a time of week when this account is (almost) never active.
//!
//! The learned schedule is the account's presence per hour of week (see `baseline`): the share
//! of observed weeks in which it was active in that hour or the hours beside it. A nightly job
//! or a 24/7 integration is present at those hours, so it is never off-hours there. An alert
//! needs `min_events` events in the clock hour, or in the sliding hour ending at the event
//! (this hour's events plus the previous hour's, weighted by the share of it still inside the
//! window), so one stray call does not page anyone and a short session across an hour boundary
//! is still seen. A sliding hour is judged against every clock hour it covers: both must be
//! off-hours (and outside a declared schedule).
//! A declared schedule for the account overrides the learned one and needs no warm-up.
//! Score: the number of observed weeks that contradict the activity.

use serde_json::json;

use super::{facts, Context, Finding};
use crate::detection::definition::OffHoursParams;
use crate::detection::schedule::Schedule;
use crate::detection::time::{self, HOUR, HOURS_PER_WEEK};
use crate::input::event::Outcome;

pub fn check(ctx: &Context, params: &OffHoursParams, schedules: &[Schedule]) -> Option<Finding> {
    // A failed authentication is someone trying the account, not the account acting: the
    // failure rules judge it. (It still counts towards the hour once the account gets in.)
    if ctx.event.outcome == Outcome::Failure {
        return None;
    }
    // Cheap tests first: this runs for every event.
    let events = ctx.account.current_hour().events;
    // The clock hour alone, or else the sliding hour ending now: a short session across an
    // hour boundary reaches the floor in neither clock hour.
    let sliding = if events >= params.min_events {
        None
    } else {
        let window = ctx.account.sliding_events(ctx.t);
        if window < f64::from(params.min_events) {
            return None;
        }
        Some(window)
    };
    let observed = sliding.unwrap_or(f64::from(events));
    let how = time::hour_of_week(ctx.t);
    let hour_start = ctx.t - ctx.t.rem_euclid(HOUR);
    // The hours the judged activity covers: this one, and the previous one for a sliding hour.
    let previous_how = (how + HOURS_PER_WEEK - 1) % HOURS_PER_WEEK;
    let count = match sliding {
        None => format!("{events} events this hour"),
        Some(_) => format!("{events} events this hour and {} in the hour before", ctx.account.previous_hour_events()),
    };
    let declared =
        if schedules.is_empty() { None } else { schedules.iter().find(|s| s.applies_to(&ctx.event.account)) };
    if let Some(schedule) = declared {
        if schedule.contains(ctx.t) || (sliding.is_some() && schedule.contains(hour_start - 1)) {
            return None;
        }
        let when = time::describe_hour_of_week(how);
        let summary = format!(
            "{} was active on {when} ({count}), outside its declared schedule ({}). Confirm with its owner that this run was planned.",
            ctx.event.account, schedule.description
        );
        return Some(finding(
            ctx,
            observed,
            sliding.is_some(),
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
    let covered = [Some(how), sliding.map(|_| previous_how)];
    let near = covered
        .into_iter()
        .flatten()
        .max_by(|&a, &b| ctx.account.presence_near(a).total_cmp(&ctx.account.presence_near(b)))?;
    let presence = ctx.account.presence_near(near);
    if presence > params.max_presence {
        return None;
    }
    let when = time::describe_hour_of_week(how);
    let weeks_active = ctx.account.weeks_active_near(near).round();
    let summary = format!(
        "{} was active on {when} ({count}), a time it was active in {weeks_active} of its last {weeks} weeks. Confirm with its owner that this run was planned; if not, treat its key as stolen.",
        ctx.event.account
    );
    let baseline = facts([
        ("presence_near_this_hour", json!((presence * 1000.0).round() / 1000.0)),
        ("weeks_observed", json!(weeks)),
        ("hour_of_week", json!(when)),
    ]);
    Some(finding(
        ctx,
        observed,
        sliding.is_some(),
        &when,
        summary,
        presence,
        f64::from(weeks) * (1.0 - presence),
        baseline,
    ))
}

#[allow(clippy::too_many_arguments)]
fn finding(
    ctx: &Context,
    observed: f64,
    sliding: bool,
    when: &str,
    summary: String,
    expected: f64,
    score: f64,
    baseline: serde_json::Map<String, serde_json::Value>,
) -> Finding {
    Finding {
        subject: ctx.account_subject(),
        observed,
        expected,
        score,
        // A sliding hour reaches back into the previous clock hour.
        window_start: ctx.t - ctx.t.rem_euclid(HOUR) - if sliding { HOUR } else { 0 },
        window_end: ctx.t,
        summary,
        baseline,
        new: vec![format!("activity on {when}")],
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    }
}
