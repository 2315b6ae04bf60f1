//! `data_volume`: an account moving far more data than it usually does at this time of its
//! week.
//!
//! - `volume_burst` compares the bytes and records of the sliding hour ending at the event with
//!   the account's typical active hour at this time of week. It fires while the burst is under
//!   way, as soon as the window crosses the threshold, not when a bucket closes.
//! - `sustained_volume` catches slow exfiltration: every one of the last `hours` hours (the open
//!   one included) ran at `min_ratio` times the usual rate or more.
//!
//! A ratio must also be large against the account's own variability: z = log2(ratio) / σ, with σ
//! the standard deviation of its log2 deviations (at least 0.5), must reach `min_z`. Score is z.

use serde_json::{json, Value};

use super::{facts, Context, Finding};
use crate::detection::alert::{human_bytes, human_count};
use crate::detection::baseline::Volume;
use crate::detection::definition::{SustainedVolumeParams, VolumeBurstParams};
use crate::detection::time::{self, Millis, HOUR};

const MIN_DISPERSION: f64 = 0.5;

struct Measured {
    name: &'static str,
    observed: f64,
    expected: f64,
    ratio: f64,
    z: f64,
}

fn measure(name: &'static str, observed: f64, expected: f64, dispersion: f64) -> Measured {
    let ratio = observed / expected.max(1.0);
    Measured { name, observed, expected, ratio, z: ratio.max(1e-9).log2() / dispersion.max(MIN_DISPERSION) }
}

fn amount(m: &Measured, v: f64) -> String {
    if m.name == "bytes" {
        human_bytes(v)
    } else {
        format!("{} records", human_count(v))
    }
}

/// The measure (bytes or records) that ran hottest of those over their floor and thresholds;
/// `eligible` rules a measure out beforehand.
fn worst(
    window: Volume,
    expected: Volume,
    dispersion: f64,
    floors: [f64; 2],
    eligible: [bool; 2],
    (min_ratio, min_z): (f64, f64),
) -> Option<Measured> {
    [
        measure("bytes", window.bytes, expected.bytes, dispersion),
        measure("records", window.records, expected.records, dispersion),
    ]
    .into_iter()
    .zip(floors)
    .zip(eligible)
    .filter(|((m, floor), eligible)| *eligible && m.observed >= *floor && m.ratio >= min_ratio && m.z >= min_z)
    .map(|((m, _), _)| m)
    .max_by(|a, b| a.ratio.total_cmp(&b.ratio))
}

/// The finding both detectors raise: the sliding hour ending at the event against the usual
/// hour at this time of week, with the facts particular to the detector in `extra`.
fn volume_finding<const N: usize>(
    ctx: &Context,
    worst: &Measured,
    expected: Volume,
    window_start: Millis,
    summary: String,
    extra: [(&str, Value); N],
) -> Finding {
    let mut baseline = facts([
        ("measure", json!(worst.name)),
        ("expected_bytes_per_hour", json!(expected.bytes.round())),
        ("expected_records_per_hour", json!(expected.records.round())),
        ("hour_of_week", json!(time::describe_hour_of_week(time::hour_of_week(ctx.t)))),
        ("weeks_observed", json!(ctx.account.weeks_observed())),
    ]);
    baseline.extend(facts(extra));
    Finding {
        subject: ctx.account_subject(),
        observed: worst.observed.round(),
        expected: worst.expected.round(),
        score: worst.z,
        window_start,
        window_end: ctx.t,
        summary,
        baseline,
        new: Vec::new(),
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    }
}

pub fn burst(ctx: &Context, params: &VolumeBurstParams) -> Option<Finding> {
    if !ctx.warmed_up || ctx.account.weeks_observed() < 1 {
        return None;
    }
    // Cheap test first: below both absolute floors nothing can fire.
    let window = ctx.account.sliding_hour(ctx.t);
    let floors = [params.min_bytes.0 as f64, params.min_records as f64];
    if window.bytes < floors[0] && window.records < floors[1] {
        return None;
    }
    let how = time::hour_of_week(ctx.t);
    let expected = ctx.account.expected_hour(how);
    let dispersion = ctx.account.dispersion_log2();
    let worst = worst(window, expected, dispersion, floors, [true, true], (params.min_ratio, params.min_z))?;
    // Far above this hour of the week but not above an ordinary active hour of the account is
    // a schedule that moved (a clock change, an early start), not an export.
    let typical = ctx.account.typical_active_hour();
    if worst.observed < if worst.name == "bytes" { typical.bytes } else { typical.records } {
        return None;
    }
    let when = time::describe_hour_of_week(how);
    let summary = format!(
        "{} moved {} in the last hour; it usually moves {} in an hour on {when}. Check what it exported and where it went.",
        ctx.event.account,
        amount(&worst, worst.observed),
        amount(&worst, worst.expected),
    );
    Some(volume_finding(
        ctx,
        &worst,
        expected,
        ctx.t - HOUR,
        summary,
        [
            ("ratio", json!((worst.ratio * 10.0).round() / 10.0)),
            ("dispersion_log2", json!((dispersion * 100.0).round() / 100.0)),
        ],
    ))
}

pub fn sustained(ctx: &Context, params: &SustainedVolumeParams) -> Option<Finding> {
    if !ctx.warmed_up || ctx.account.weeks_observed() < 1 {
        return None;
    }
    // Cheap test first: the completed hours must all have run hot already.
    let completed = usize::from(params.hours - 1);
    let held = |bytes: bool| {
        ctx.account.recent_ratios().take(completed).all(|(by_bytes, by_records)| {
            if bytes { by_bytes } else { by_records }.is_some_and(|r| r >= params.min_ratio)
        })
    };
    let holds = [held(true), held(false)];
    if holds == [false, false] {
        return None;
    }
    let how = time::hour_of_week(ctx.t);
    let expected = ctx.account.expected_hour(how);
    let window = ctx.account.sliding_hour(ctx.t);
    let dispersion = ctx.account.dispersion_log2();
    let floors = [params.min_bytes_per_hour.0 as f64, params.min_records_per_hour as f64];
    let worst = worst(window, expected, dispersion, floors, holds, (params.min_ratio, params.min_z))?;
    let when = time::describe_hour_of_week(how);
    let summary = format!(
        "{} has moved data at {:.1}x its usual rate for {} hours ({} in the last hour; it usually moves {} an hour on {when}). Look for a slow export to an unfamiliar destination.",
        ctx.event.account,
        worst.ratio,
        params.hours,
        amount(&worst, worst.observed),
        amount(&worst, worst.expected),
    );
    Some(volume_finding(
        ctx,
        &worst,
        expected,
        ctx.t - i64::from(params.hours) * HOUR,
        summary,
        [("hours_above", json!(params.hours))],
    ))
}
