//! `failed_auth`: bursts of failed or denied calls for one account (password sprays, one source
//! failing across many accounts, are in [`super::spray`]).
//!
//! Counts use a sliding window estimated from two fixed buckets (the current one plus the part
//! of the previous one still inside the window), which needs constant memory per account. A
//! burst fires when the count reaches an absolute floor *and* is improbable under the account's
//! own failure rate: P(X ≥ count) for X ~ Poisson(rate × window) is at most `max_p_value`.
//! Score is -log10 of that probability. Isolated failures (token expiry and retry) never reach
//! the floor. Longer windows (whole hours up to 6) are counted from the counter's last seven
//! clock hours and judged the same way, each with its own floor, so a long run at a low rate
//! is as improbable as a short burst; the most improbable window that passes is reported.

use std::collections::VecDeque;

use serde_json::json;
use statrs::distribution::{DiscreteCDF, Poisson};

use super::{facts, human_duration, Context, Finding};
use crate::detection::alert::MAX_EVIDENCE_EVENTS;
use crate::detection::definition::FailureBurstParams;
use crate::detection::time::{Millis, HOUR, MINUTE};
use crate::input::event::Outcome;
use crate::state::codec::{CodecError, Reader, Writer};

/// Lowest expected count: even an account that never failed may fail now and then.
const MIN_EXPECTED: f64 = 0.05;

/// Clock hours of counts kept for the longer windows: the open hour and six before it, so a
/// sliding window of up to 6 hours is estimated like the short one (the oldest hour weighted
/// by the share of it still inside the window).
pub const LONG_HOURS: usize = 6;

/// Per-account state of one burst detector; only exists for accounts that had such calls.
#[derive(Clone, Debug, Default)]
pub struct BurstCounter {
    bucket: i64,
    current: u32,
    previous: u32,
    started: Millis,
    /// Clock hour of `hours[0]`; `hours[i]` counts the hour `hour - i`.
    hour: i64,
    hours: [u16; LONG_HOURS + 1],
    /// First event since the hourly counts were last all zero.
    run_started: Millis,
    event_ids: VecDeque<String>,
}

impl BurstCounter {
    /// Count one event at `t`; returns the sliding-window estimate including it.
    fn add(&mut self, t: Millis, window: Millis, event_id: &str) -> f64 {
        let bucket = t.div_euclid(window);
        if bucket != self.bucket {
            self.previous = if bucket == self.bucket + 1 { self.current } else { 0 };
            self.current = 0;
            self.bucket = bucket;
        }
        if self.current == 0 && self.previous == 0 {
            self.started = t;
            self.event_ids.clear();
        }
        self.current += 1;
        self.add_hourly(t);
        if self.event_ids.len() == MAX_EVIDENCE_EVENTS {
            self.event_ids.pop_front();
        }
        self.event_ids.push_back(event_id.to_string());
        let carry = 1.0 - t.rem_euclid(window) as f64 / window as f64;
        f64::from(self.current) + carry * f64::from(self.previous)
    }

    fn add_hourly(&mut self, t: Millis) {
        let hour = t.div_euclid(HOUR);
        if hour > self.hour {
            let shift = (hour - self.hour).min(LONG_HOURS as i64 + 1) as usize;
            self.hours.rotate_right(shift);
            self.hours[..shift].fill(0);
            self.hour = hour;
        }
        if self.hours.iter().all(|&n| n == 0) {
            self.run_started = t;
        }
        self.hours[0] = self.hours[0].saturating_add(1);
    }

    /// Events in the sliding `hours`-hour window ending at `t` (after `add` at `t`): the open
    /// hour, the `hours - 1` before it, and the share of the oldest still inside the window.
    fn sliding_hours(&self, t: Millis, hours: usize) -> f64 {
        let hours = hours.clamp(1, LONG_HOURS);
        let carry = 1.0 - t.rem_euclid(HOUR) as f64 / HOUR as f64;
        let whole: u32 = self.hours[..hours].iter().map(|&n| u32::from(n)).sum();
        f64::from(whole) + carry * f64::from(self.hours[hours])
    }
}

pub(super) fn save_strings<'a>(w: &mut Writer, items: impl ExactSizeIterator<Item = &'a String>) {
    w.u32(items.len() as u32);
    for s in items {
        w.str(s);
    }
}

pub(super) fn load_strings(r: &mut Reader) -> Result<VecDeque<String>, CodecError> {
    let n = r.count(4)?;
    (0..n).map(|_| r.string()).collect()
}

impl BurstCounter {
    /// Checkpoint encoding of engine snapshot `format` (5 added the hourly counts).
    pub fn save(&self, w: &mut Writer, format: u32) {
        w.i64(self.bucket);
        w.u32(self.current);
        w.u32(self.previous);
        w.i64(self.started);
        if format >= 5 {
            w.i64(self.hour);
            for n in self.hours {
                w.u16(n);
            }
            w.i64(self.run_started);
        }
        save_strings(w, self.event_ids.iter());
    }
    pub fn load(r: &mut Reader, format: u32) -> Result<Self, CodecError> {
        let mut counter = BurstCounter {
            bucket: r.i64()?,
            current: r.u32()?,
            previous: r.u32()?,
            started: r.i64()?,
            ..Default::default()
        };
        if format >= 5 {
            counter.hour = r.i64()?;
            for n in &mut counter.hours {
                *n = r.u16()?;
            }
            counter.run_started = r.i64()?;
        }
        counter.event_ids = load_strings(r)?;
        Ok(counter)
    }
}

/// P(X ≥ k) for X ~ Poisson(λ).
pub fn poisson_tail(lambda: f64, k: u64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    match Poisson::new(lambda.max(1e-9)) {
        Ok(p) => p.sf(k - 1),
        Err(_) => 1.0,
    }
}

/// Expected events in `window` at `rate_per_hour`, never below the floor of
/// [`MIN_EXPECTED`] per 10 minutes (an account that never failed may fail now and then).
fn expected_in(rate_per_hour: f64, window: Millis, short: bool) -> f64 {
    let floor = if short { MIN_EXPECTED } else { MIN_EXPECTED * window as f64 / (10 * MINUTE) as f64 };
    (rate_per_hour * window as f64 / HOUR as f64).max(floor)
}

/// The most improbable of the windows that reach their floor: (window, count, expected, p),
/// or `None` when no window is both over its floor and at most `max_p_value`.
/// `windows` holds (window, count in it, floor, is the short window).
pub fn judge_windows(
    rate_per_hour: f64,
    windows: &[(Millis, f64, u32, bool)],
    max_p_value: f64,
) -> Option<(Millis, f64, f64, f64)> {
    let mut best: Option<(Millis, f64, f64, f64)> = None;
    for &(window, count, floor, short) in windows {
        if count < f64::from(floor) {
            continue;
        }
        let expected = expected_in(rate_per_hour, window, short);
        let p = poisson_tail(expected, count.floor() as u64);
        if p <= max_p_value && best.is_none_or(|(_, _, _, best_p)| p < best_p) {
            best = Some((window, count, expected, p));
        }
    }
    best
}

pub fn burst(ctx: &Context, params: &FailureBurstParams, counter: &mut BurstCounter) -> Option<Finding> {
    if ctx.event.outcome != params.outcome {
        return None;
    }
    let short_window = params.window.millis();
    let short_count = counter.add(ctx.t, short_window, &ctx.event.id);
    let mut windows = vec![(short_window, short_count, params.min_count, true)];
    for longer in &params.longer_windows {
        let window = longer.window.millis();
        let count = counter.sliding_hours(ctx.t, (window / HOUR) as usize);
        windows.push((window, count, longer.min_count, false));
    }
    let (failure_rate, denied_rate) = ctx.account.failure_rates();
    let rate = if params.outcome == Outcome::Denied { denied_rate } else { failure_rate };
    let (window, count, expected, p) = judge_windows(rate, &windows, params.max_p_value)?;
    let (verb, what) = match params.outcome {
        Outcome::Denied => {
            ("was denied", "its key may be probing for permissions it does not have; check what it tried to reach")
        }
        _ => (
            "failed to authenticate",
            "its secret may be under attack or broken; check the sources and rotate it if it leaked",
        ),
    };
    let from = ctx.event.source.ip.map(|ip| format!(" (latest from {ip})")).unwrap_or_default();
    let started = if window == short_window { counter.started } else { counter.run_started };
    let window_name = if window == short_window {
        params.window.to_string()
    } else {
        params
            .longer_windows
            .iter()
            .find(|l| l.window.millis() == window)
            .map(|l| l.window.to_string())
            .unwrap_or_default()
    };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: count.round(),
        expected,
        score: -p.max(1e-300).log10(),
        window_start: started.max(ctx.t - window),
        window_end: ctx.t,
        summary: format!(
            "{} {verb} {} times in {}{from}; it usually has {:.1} in that time. {}.",
            ctx.event.account,
            count.round(),
            human_duration(window),
            expected,
            capitalize(what)
        ),
        baseline: facts([
            ("rate_per_hour", json!(round3(rate))),
            ("expected_in_window", json!(round3(expected))),
            ("p_value", json!(p)),
            ("window", json!(window_name)),
        ]),
        new: Vec::new(),
        event_ids: counter.event_ids.iter().cloned().collect(),
        sql_filter: format!("{} AND outcome = '{}'", ctx.account_filter(), params.outcome.as_str()),
    })
}

pub(super) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn poisson_tail_values() {
        assert_eq!(poisson_tail(1.0, 0), 1.0);
        // P(X >= 1) = 1 - e^-1
        assert!((poisson_tail(1.0, 1) - (1.0 - (-1.0f64).exp())).abs() < 1e-12);
        assert!(poisson_tail(0.05, 10) < 1e-14);
    }

    #[test]
    fn burst_counter_slides() {
        let mut c = BurstCounter::default();
        let w = 600_000;
        for i in 0..5 {
            c.add(i * 1000, w, "e");
        }
        // Halfway through the next window, half of the previous five still count.
        let est = c.add(w + w / 2, w, "e");
        assert!((est - 3.5).abs() < 1e-9, "{est}");
        // Two windows later nothing remains.
        assert_eq!(c.add(4 * w, w, "e"), 1.0);
    }

    /// The pack's windows for failed authentications: 10 min ≥ 10, 1 h ≥ 20, 6 h ≥ 40.
    fn pack_params() -> FailureBurstParams {
        use crate::detection::definition::LongerWindow;
        use crate::detection::time::Duration;
        FailureBurstParams {
            outcome: Outcome::Failure,
            window: Duration(10 * MINUTE),
            min_count: 10,
            max_p_value: 1e-6,
            longer_windows: vec![
                LongerWindow { window: Duration(HOUR), min_count: 20 },
                LongerWindow { window: Duration(6 * HOUR), min_count: 40 },
            ],
        }
    }

    /// Tiny deterministic generator for the simulations (xorshift64*).
    struct Noise(u64);
    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Alarms of the pack's failed-auth windows over `hours` of stationary traffic: a call every
    /// 10 minutes and failures at Poisson times, `rate` an hour, judged against a real account
    /// baseline learning as the engine does (the first day is learning and not counted).
    fn stationary_alarms(rate: f64, hours: i64, seed: u64) -> usize {
        use crate::detection::baseline::AccountBaseline;
        use crate::input::event::decode;
        let params = pack_params();
        let start = 1_767_571_200_000; // 2026-01-05T00:00:00Z
        let mut noise = Noise(seed | 1);
        let mut baseline = AccountBaseline::new(start);
        let mut counter = BurstCounter::default();
        let line =
            r#"{"id":"f","time":"2026-01-05T00:00:00Z","account":"svc","action":"auth.token","outcome":"failure"}"#;
        let event = decode(line.as_bytes(), 1 << 20).unwrap();
        let (mut next_failure, mut next_call, mut alarms) = (start, start, 0);
        while next_failure.min(next_call) < start + hours * HOUR {
            let failure = next_failure <= next_call;
            let t = next_failure.min(next_call);
            baseline.advance(t);
            baseline.count(0, 0, failure, false);
            if failure {
                let ctx = Context { event: &event, t, account: &baseline, warmed_up: true };
                if burst(&ctx, &params, &mut counter).is_some() && t >= start + 24 * HOUR {
                    alarms += 1;
                }
                next_failure += (-(1.0 - noise.uniform()).ln() / rate * HOUR as f64) as i64 + 1;
            } else {
                next_call += 10 * MINUTE;
            }
            baseline.learn_activity(t);
        }
        alarms
    }

    /// The false-alarm budget of `failure_burst` with the pack's windows: no more than 1 alarm
    /// per 10,000 account-hours of stationary failures, at any rate from rare to 30 an hour.
    #[test]
    fn stationary_failures_stay_within_the_false_alarm_budget() {
        let mut hours = 0;
        let mut alarms = 0;
        for (i, rate) in [0.05, 0.5, 2.0, 5.0, 10.0, 20.0, 30.0].into_iter().enumerate() {
            alarms += stationary_alarms(rate, 2_000, 7 + i as u64);
            hours += 2_000 - 24;
        }
        assert!(alarms as f64 / hours as f64 <= 1e-4, "{alarms} alarms in {hours} account-hours");
    }

    #[test]
    fn slow_probing_at_one_a_minute_fires_within_the_hour() {
        // The pack's denied-burst windows: 10 min ≥ 15, 1 h ≥ 30, 6 h ≥ 60.
        let mut counter = BurstCounter::default();
        let start = 1_767_571_200_000 + 10 * MINUTE;
        let fired = (0..50).position(|minute| {
            let t = start + minute * MINUTE;
            let count = counter.add(t, 10 * MINUTE, "e");
            let windows = [
                (10 * MINUTE, count, 15, true),
                (HOUR, counter.sliding_hours(t, 1), 30, false),
                (6 * HOUR, counter.sliding_hours(t, 6), 60, false),
            ];
            judge_windows(0.2, &windows, 1e-6).is_some()
        });
        // The 10-minute window never holds more than 10, under its floor; the hour fires at 30.
        assert_eq!(fired, Some(29));
    }

    #[test]
    fn hourly_counts_roll_and_slide() {
        let mut c = BurstCounter::default();
        c.add_hourly(HOUR / 2);
        c.add_hourly(HOUR + HOUR / 2);
        assert_eq!(c.sliding_hours(HOUR + HOUR / 2, 1), 1.5, "half of the previous hour still counts");
        assert_eq!(c.sliding_hours(HOUR + HOUR / 2, 6), 2.0);
        c.add_hourly(20 * HOUR);
        assert_eq!(c.sliding_hours(20 * HOUR, 6), 1.0, "a long gap clears every hour");
        for format in [4, 5] {
            let mut w = Writer::default();
            c.save(&mut w, format);
            let back = BurstCounter::load(&mut Reader::new(&w.buf), format).unwrap();
            assert_eq!(back.sliding_hours(20 * HOUR, 6), if format >= 5 { 1.0 } else { 0.0 });
        }
    }

    proptest! {
        #[test]
        fn more_failures_never_make_a_window_less_suspicious(
            rate in 0.0f64..40.0,
            counts in proptest::collection::vec(0.0f64..120.0, 3),
            extra in 0.0f64..50.0,
            which in 0usize..3,
            more_rate in 0.0f64..20.0,
        ) {
            let windows = |c: &[f64]| [
                (10 * MINUTE, c[0], 10, true),
                (HOUR, c[1], 20, false),
                (6 * HOUR, c[2], 40, false),
            ];
            let p_of = |r: f64, c: &[f64]| judge_windows(r, &windows(c), 1e-6).map(|(_, _, _, p)| p);
            let base = p_of(rate, &counts);
            let mut more = counts.clone();
            more[which] += extra;
            let with_more = p_of(rate, &more);
            // Monotone in the counts: what fired still fires, at a p no larger.
            if let Some(p) = base {
                prop_assert!(with_more.is_some_and(|q| q <= p + 1e-18));
            }
            // Monotone in the account's own rate: a noisier account is never more suspicious.
            if let Some(p) = p_of(rate + more_rate, &counts) {
                prop_assert!(base.is_some_and(|q| q <= p + 1e-18));
            }
        }

        #[test]
        fn poisson_tail_is_monotonic(lambda in 0.01f64..50.0, k in 1u64..200) {
            let a = poisson_tail(lambda, k);
            let b = poisson_tail(lambda, k + 1);
            prop_assert!((0.0..=1.0).contains(&a));
            prop_assert!(b <= a + 1e-15);
            prop_assert!(poisson_tail(lambda * 1.5, k) + 1e-15 >= a);
        }

        #[test]
        fn sliding_estimate_is_bounded_by_two_buckets(times in proptest::collection::vec(0i64..3_600_000, 1..200)) {
            let mut times = times;
            times.sort();
            let mut c = BurstCounter::default();
            let w = 600_000;
            for (i, &t) in times.iter().enumerate() {
                let est = c.add(t, w, "e");
                let two_buckets = times[..=i].iter().filter(|&&s| s >= (t / w - 1) * w).count() as f64;
                prop_assert!(est >= 1.0 && est <= two_buckets + 1e-9);
                // The estimate never drops below what is in the current bucket.
                prop_assert!(est + 1e-9 >= times[..=i].iter().filter(|&&s| s >= (t / w) * w).count() as f64);
            }
        }
    }
}
