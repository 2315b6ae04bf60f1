//! `call_rate` (like CloudTrail Insights): an account making far more calls of one action class
//! in a short sliding window than it does at this time of its week. It is for logs that carry
//! no bytes or records: a key that reads one secret an hour suddenly reading twenty in seconds.
//!
//! A definition is one action class: the calls matching any of `params.classes` (and its
//! `select`, if any) that got past authentication (a failed authentication was not the
//! account). Per account it keeps a [`CallRate`], made on its first call of the class, so
//! accounts that never make such calls cost nothing:
//! - the sliding `window` ending at the call, as [`SLOTS`] sub-windows (so the count is exact
//!   to a twelfth of the window);
//! - the busiest window of each clock hour it made such calls in, learned per hour of the week
//!   (log-scale levels with an EWMA, as the volume baseline keeps bytes), and over all of its
//!   active hours (its typical busiest window).
//!
//! The usual count is the most of this hour of the week, its two neighbours (a job that runs
//! a little early or late) and the typical busiest window. The detector fires when the window
//! holds `min_calls` or more and `min_ratio` times the usual count (at least 1), once the
//! account is past the definition's warm-up. Score is log2 of the ratio.

use serde_json::json;

use super::{facts, human_duration, Context, Finding};
use crate::detection::alert::sql_literal;
use crate::detection::baseline::{level_volume, volume_level};
use crate::detection::definition::{glob_match, CallRateParams};
use crate::detection::time::{self, Millis, HOUR, HOURS_PER_WEEK};
use crate::input::event::{AuditEvent, Outcome};
use crate::state::codec::{CodecError, Reader, Writer};

/// Sub-windows of the sliding window.
pub const SLOTS: usize = 12;
/// Weight of a new busiest window in the level of its hour of the week.
const HOUR_ALPHA: f64 = 0.25;
/// Weight of a new busiest window in the typical level.
const TYPICAL_ALPHA: f64 = 0.1;

/// One account's calls of one class: the sliding window and what is usual.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRate {
    /// Index of the newest sub-window (time / (window / SLOTS)); `slots[i]` counts `part - i`.
    part: i64,
    slots: [u16; SLOTS],
    /// Clock hour of `busiest`, the most calls in one window during it.
    hour: i32,
    busiest: u16,
    /// Level (see [`volume_level`]) of the busiest window, per hour of the week.
    levels: [u8; HOURS_PER_WEEK],
    typical: f32,
    /// Clock hours with calls learned.
    hours: u16,
}

impl Default for CallRate {
    fn default() -> Self {
        CallRate {
            part: i64::MIN,
            slots: [0; SLOTS],
            hour: i32::MIN,
            busiest: 0,
            levels: [0; HOURS_PER_WEEK],
            typical: 0.0,
            hours: 0,
        }
    }
}

/// Whether `event` is a call of the detector's class.
pub fn counts(event: &AuditEvent, params: &CallRateParams) -> bool {
    event.outcome != Outcome::Failure && params.classes.iter().any(|c| glob_match(c, &event.action))
}

impl CallRate {
    /// Count a call at `t`, learning the hours that closed before it; returns the calls in the
    /// window ending at `t`, this one included.
    pub fn add(&mut self, t: Millis, window: Millis) -> u32 {
        let hour = time::hour_index(t) as i32;
        if hour > self.hour {
            self.close_hour();
            self.hour = hour;
        }
        let part = t.div_euclid((window / SLOTS as i64).max(1));
        if part > self.part {
            let shift = (part.saturating_sub(self.part)).min(SLOTS as i64) as usize;
            self.slots.rotate_right(shift);
            self.slots[..shift].fill(0);
            self.part = part;
        }
        // A late call (never later than the allowed lateness) counts in the newest slot.
        self.slots[0] = self.slots[0].saturating_add(1);
        let calls = self.slots.iter().map(|&n| u32::from(n)).sum::<u32>();
        self.busiest = self.busiest.max(calls.min(u32::from(u16::MAX)) as u16);
        calls
    }

    /// Learn the busiest window of the hour that closed.
    fn close_hour(&mut self) {
        if self.busiest == 0 {
            return;
        }
        let level = f64::from(volume_level(u64::from(self.busiest)));
        let how = time::hour_of_week(i64::from(self.hour) * HOUR);
        let old = &mut self.levels[how];
        *old = if *old == 0 { level } else { f64::from(*old) + HOUR_ALPHA * (level - f64::from(*old)) }.round() as u8;
        let alpha = if self.hours == 0 { 1.0 } else { TYPICAL_ALPHA.max(1.0 / f64::from(self.hours + 1)) };
        self.typical += (alpha * (level - f64::from(self.typical))) as f32;
        self.hours = self.hours.saturating_add(1);
        self.busiest = 0;
    }

    /// Clock hours with calls learned.
    pub fn hours(&self) -> u16 {
        self.hours
    }

    /// The usual most calls in one window at `t`'s hour of the week.
    pub fn usual(&self, t: Millis) -> f64 {
        let how = time::hour_of_week(t);
        let around = [HOURS_PER_WEEK - 1, 0, 1].map(|d| self.levels[(how + d) % HOURS_PER_WEEK]);
        let level = around.into_iter().map(f64::from).fold(f64::from(self.typical), f64::max);
        level_volume(level)
    }

    pub fn save(&self, w: &mut Writer) {
        w.i64(self.part);
        for n in self.slots {
            w.u16(n);
        }
        w.i32(self.hour);
        w.u16(self.busiest);
        for level in self.levels {
            w.u8(level);
        }
        w.f32(self.typical);
        w.u16(self.hours);
    }

    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let mut rate = CallRate { part: r.i64()?, ..Default::default() };
        for n in &mut rate.slots {
            *n = r.u16()?;
        }
        rate.hour = r.i32()?;
        rate.busiest = r.u16()?;
        for level in &mut rate.levels {
            *level = r.u8()?;
        }
        rate.typical = r.f32()?;
        rate.hours = r.u16()?;
        Ok(rate)
    }
}

/// Judge the window ending at the event: `calls` in it, against `rate` as it was before.
pub fn check(ctx: &Context, params: &CallRateParams, calls: u32, usual: f64, hours: u16) -> Option<Finding> {
    if !ctx.warmed_up || calls < params.min_calls {
        return None;
    }
    let ratio = f64::from(calls) / usual.max(1.0);
    if ratio < params.min_ratio {
        return None;
    }
    let account = ctx.event.account.as_ref();
    let action = ctx.event.action.as_ref();
    let window = human_duration(params.window.millis());
    let class = params.classes.iter().find(|c| glob_match(c, action)).map(String::as_str).unwrap_or(action);
    let latest = if class == action { String::new() } else { format!(" (the latest {action})") };
    let when = time::describe_hour_of_week(time::hour_of_week(ctx.t));
    let usual_text = match hours {
        0 => format!("it never made such calls in its {} of history", human_duration(ctx.t - ctx.account.first_seen)),
        _ => format!("at most {} in {window} is usual for it on {when}", usual.round()),
    };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: f64::from(calls),
        expected: usual.round(),
        score: ratio.log2(),
        window_start: ctx.t - params.window.millis(),
        window_end: ctx.t,
        summary: format!(
            "{account} made {calls} calls of class {class}{latest} in {window}; {usual_text}. Find what it read or changed (evidence.sql) and ask its owner; if it was not planned, treat its credentials as stolen."
        ),
        baseline: facts([
            ("class", json!(class)),
            ("window", json!(window)),
            ("usual_per_window", json!(usual.round())),
            ("ratio", json!((ratio * 10.0).round() / 10.0)),
            ("hours_with_calls", json!(hours)),
            ("hour_of_week", json!(when)),
        ]),
        new: Vec::new(),
        event_ids: Vec::new(),
        sql_filter: format!("{} AND ({})", ctx.account_filter(), class_filter(&params.classes)),
    })
}

/// SQL condition for the class: a pattern ending in `*` is a prefix (`LIKE`, with `%`, `_` and
/// `\` escaped), anything else is exact.
fn class_filter(classes: &[String]) -> String {
    let terms: Vec<String> = classes
        .iter()
        .map(|c| match c.strip_suffix('*') {
            Some(prefix) => {
                let escaped: String = prefix
                    .chars()
                    .flat_map(|ch| match ch {
                        '%' | '_' | '\\' => vec!['\\', ch],
                        ch => vec![ch],
                    })
                    .collect();
                format!("action LIKE {} ESCAPE '\\'", sql_literal(&format!("{escaped}%")))
            }
            None => format!("action = {}", sql_literal(c)),
        })
        .collect();
    terms.join(" OR ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::baseline::AccountBaseline;
    use crate::detection::time::{Duration, DAY, MINUTE, SECOND};
    use crate::input::event::decode;

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    fn params() -> CallRateParams {
        CallRateParams {
            classes: vec!["secretsmanager.GetSecretValue".into(), "ssm.GetParameter*".into()],
            window: Duration(5 * MINUTE),
            min_calls: 10,
            min_ratio: 5.0,
        }
    }

    /// A rate after `weeks` of one call of the class per hour, 09:00 to 17:00 on weekdays, and
    /// on Mondays at 02:00 a rotation job reading 40 in a minute.
    fn history(weeks: i64) -> CallRate {
        let mut rate = CallRate::default();
        let window = params().window.millis();
        for hour in 0..weeks * 168 {
            let start = MONDAY + hour * HOUR;
            let (day, h) = (hour / 24 % 7, hour % 24);
            if day < 5 && (9..17).contains(&h) {
                rate.add(start + 20 * MINUTE, window);
            }
            if day == 0 && h == 2 {
                for i in 0..40 {
                    rate.add(start + i * SECOND, window);
                }
            }
        }
        rate
    }

    fn judge(rate: &mut CallRate, t: Millis, n: u32) -> Option<Finding> {
        let p = params();
        let text = format!(
            r#"{{"id":"x","time":"{}","account":"svc-reporting","action":"secretsmanager.GetSecretValue","outcome":"success"}}"#,
            time::Rfc3339(t)
        );
        let event = decode(text.as_bytes(), 1 << 20).unwrap();
        let account = AccountBaseline::new(MONDAY);
        let mut found = None;
        for i in 0..n {
            let at = t + i64::from(i) * SECOND;
            let calls = rate.add(at, p.window.millis());
            let (usual, hours) = (rate.usual(at), rate.hours());
            let ctx = Context { event: &event, t: at, account: &account, warmed_up: at - MONDAY >= 7 * DAY };
            found = found.or(check(&ctx, &p, calls, usual, hours));
        }
        found
    }

    #[test]
    fn twenty_reads_in_seconds_after_one_an_hour_fire() {
        let mut rate = history(3);
        let tuesday_noon = MONDAY + 3 * 7 * DAY + DAY + 12 * HOUR + 30 * MINUTE;
        let found = judge(&mut rate, tuesday_noon, 20).expect("a burst of reads");
        assert_eq!(found.observed, 10.0, "fires as soon as the window holds min_calls");
        assert!(
            found.summary.contains("made 10 calls of class secretsmanager.GetSecretValue in 5 min"),
            "{}",
            found.summary
        );
        assert!(found.summary.contains("at most 1 in 5 min is usual for it on Tuesday 12:00 UTC"), "{}", found.summary);
        assert!(found
            .sql_filter
            .contains("action = 'secretsmanager.GetSecretValue' OR action LIKE 'ssm.GetParameter%'"));
    }

    #[test]
    fn the_usual_batch_at_its_usual_hour_and_a_few_calls_stay_quiet() {
        let mut rate = history(3);
        let monday = MONDAY + 3 * 7 * DAY;
        assert!(judge(&mut rate, monday + 2 * HOUR + 5 * MINUTE, 40).is_none(), "the weekly rotation job");
        assert!(judge(&mut rate, monday + 3 * HOUR, 40).is_none(), "an hour late: a neighbour of its hour");
        assert!(judge(&mut rate, monday + 2 * DAY + 14 * HOUR, 4).is_none(), "below min_calls");
        // The same batch on a Thursday night is far above anything usual then.
        assert!(judge(&mut rate, monday + 3 * DAY + 2 * HOUR, 40).is_some());
    }

    #[test]
    fn the_warm_up_holds_it_and_the_window_slides() {
        let mut young = CallRate::default();
        assert!(judge(&mut young, MONDAY + 2 * DAY, 30).is_none(), "in the warm-up");
        let mut rate = history(2);
        let later = MONDAY + 2 * 7 * DAY + DAY + 12 * HOUR;
        // Nine calls, then six more after the first ones left the window: never ten at once.
        assert!(judge(&mut rate, later, 9).is_none());
        assert!(judge(&mut rate, later + 6 * MINUTE, 6).is_none());
    }

    #[test]
    fn the_rate_survives_a_round_trip() {
        let rate = history(1);
        let mut w = Writer::default();
        rate.save(&mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(CallRate::load(&mut r).unwrap(), rate);
        assert!(r.is_empty());
    }
}
