//! Per-account and per-credential baselines, learned online from event time.
//!
//! An [`AccountBaseline`] answers "is this normal for this account at this time of its week?":
//! - *presence*: for each of the 168 hours of the week, the share of observed weeks in which the
//!   account was active then (a running mean for the first 4 weeks, then an EWMA, so it follows
//!   slow change). Weeks with no activity at all (holidays) are skipped, not learned as silence.
//! - *volume*: for each hour of the week, the typical bytes and records moved in an active hour,
//!   kept as log-scale levels (6 steps per doubling, ≈12% resolution) with an EWMA, plus the
//!   account's dispersion around that baseline and the last 8 hours' deviations.
//! - *failures*: EWMA of failed and denied calls per active hour.
//!
//! A key's [`CredentialProfile`] (owner, users, networks, lifecycle) lives in
//! `credential_profile.rs` and is re-exported here.
//!
//! Both are fixed-size: no per-event growth, so memory per account is bounded (about 650 bytes)
//! whatever the traffic. Scoring reads the baseline as it was before the event; the engine calls
//! the learning methods only after the detectors ran.

pub use crate::detection::credential_profile::{
    country_code, country_name, CredentialProfile, Network, RecentSet, UseSource,
};
pub use crate::detection::key_users::{KeyUser, KeyUsers, DEFAULT_MIN_USER_HOURS, MAX_KEY_USERS};
use crate::detection::time::{self, Millis, HOUR, HOURS_PER_WEEK};
use crate::state::codec::{CodecError, Reader, Writer};

/// Log-scale volume levels: level = round(6·log2(1+v)), so 255 ≈ 6 TB.
const LEVELS_PER_DOUBLING: f64 = 6.0;
/// Deviations in `recent_*` are stored as 16·log2(observed/expected).
const RATIO_SCALE: f64 = 16.0;
/// Marks an hour in which the account did nothing.
pub const IDLE_HOUR: i8 = i8::MIN;
const RECENT_HOURS: usize = 8;

pub fn volume_level(v: u64) -> u8 {
    (LEVELS_PER_DOUBLING * (1.0 + v as f64).log2()).round().min(255.0) as u8
}

pub fn level_volume(level: f64) -> f64 {
    (level / LEVELS_PER_DOUBLING).exp2() - 1.0
}

/// Counts within one clock hour.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct HourTotals {
    pub bytes: u64,
    pub records: u64,
    pub events: u32,
    pub failures: u16,
    pub denied: u16,
}

/// Bytes and records, the two volume measures.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Volume {
    pub bytes: f64,
    pub records: f64,
}

#[derive(Clone, Debug)]
pub struct AccountBaseline {
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub events: u64,
    presence: [u8; HOURS_PER_WEEK],
    bytes_level: [u8; HOURS_PER_WEEK],
    records_level: [u8; HOURS_PER_WEEK],
    weeks_observed: u16,
    /// Active hours folded into the volume and failure baselines.
    hours_observed: u16,
    week: i32,
    active_this_week: [u64; 3],
    hour: i32,
    current: HourTotals,
    /// Bytes and records of the previous clock hour (zero if the account was idle then).
    previous: [u64; 2],
    /// Events of the previous clock hour (zero if the account was idle then).
    previous_events: u32,
    /// Newest first: 16·log2(observed/expected) of the last completed hours, or IDLE_HOUR.
    recent_bytes: [i8; RECENT_HOURS],
    recent_records: [i8; RECENT_HOURS],
    typical_bytes_level: f32,
    typical_records_level: f32,
    /// Variance of log2(observed/expected) over completed hours.
    dispersion: f32,
    failure_rate: f32,
    denied_rate: f32,
}

impl AccountBaseline {
    pub fn new(t: Millis) -> Self {
        AccountBaseline {
            first_seen: t,
            last_seen: t,
            events: 0,
            presence: [0; HOURS_PER_WEEK],
            bytes_level: [0; HOURS_PER_WEEK],
            records_level: [0; HOURS_PER_WEEK],
            weeks_observed: 0,
            hours_observed: 0,
            week: time::week_index(t) as i32,
            active_this_week: [0; 3],
            hour: time::hour_index(t) as i32,
            current: HourTotals::default(),
            previous: [0; 2],
            previous_events: 0,
            recent_bytes: [IDLE_HOUR; RECENT_HOURS],
            recent_records: [IDLE_HOUR; RECENT_HOURS],
            typical_bytes_level: 0.0,
            typical_records_level: 0.0,
            dispersion: 0.25,
            failure_rate: 0.0,
            denied_rate: 0.0,
        }
    }

    /// Roll hour and week buckets forward to `t` (never backwards), learning from what closed.
    pub fn advance(&mut self, t: Millis) {
        let hour = time::hour_index(t) as i32;
        if hour > self.hour {
            self.close_hour();
            let idle_hours = (hour - self.hour - 1) as usize;
            for _ in 0..idle_hours.min(RECENT_HOURS) {
                push_recent(&mut self.recent_bytes, IDLE_HOUR);
                push_recent(&mut self.recent_records, IDLE_HOUR);
            }
            self.previous = if idle_hours == 0 { [self.current.bytes, self.current.records] } else { [0; 2] };
            self.previous_events = if idle_hours == 0 { self.current.events } else { 0 };
            self.current = HourTotals::default();
            self.hour = hour;
        }
        let week = time::week_index(t) as i32;
        if week > self.week {
            self.close_week();
            self.week = week;
        }
    }

    /// Count an event into the open hour (before scoring, so windows include it).
    pub fn count(&mut self, bytes: u64, records: u64, failure: bool, denied: bool) {
        let c = &mut self.current;
        c.bytes = c.bytes.saturating_add(bytes);
        c.records = c.records.saturating_add(records);
        c.events = c.events.saturating_add(1);
        c.failures = c.failures.saturating_add(u16::from(failure));
        c.denied = c.denied.saturating_add(u16::from(denied));
    }

    /// Learn that the account was active at `t` (after scoring).
    pub fn learn_activity(&mut self, t: Millis) {
        let how = time::hour_of_week(t);
        self.active_this_week[how / 64] |= 1 << (how % 64);
        self.last_seen = self.last_seen.max(t);
        self.events += 1;
    }

    fn close_hour(&mut self) {
        let totals = self.current;
        if totals.events == 0 {
            return;
        }
        let how = time::hour_of_week(i64::from(self.hour) * HOUR);
        let (bytes_level, records_level) = (volume_level(totals.bytes), volume_level(totals.records));
        let first = self.hours_observed == 0;
        // The very first hour has nothing to be compared with but itself.
        let expected =
            if first { (f64::from(bytes_level), f64::from(records_level)) } else { self.expected_levels(how) };
        push_recent(&mut self.recent_bytes, deviation(bytes_level, expected.0));
        push_recent(&mut self.recent_records, deviation(records_level, expected.1));
        if self.bytes_level[how] > 0 {
            // Capped like the levels, so one attack does not inflate the spread for weeks.
            let residual =
                ((f64::from(bytes_level) - f64::from(self.bytes_level[how])) / LEVELS_PER_DOUBLING).clamp(-2.0, 1.0);
            self.dispersion = (0.95 * f64::from(self.dispersion) + 0.05 * residual * residual) as f32;
        }
        learn_level(&mut self.bytes_level[how], bytes_level);
        learn_level(&mut self.records_level[how], records_level);
        self.hours_observed = self.hours_observed.saturating_add(1);
        let alpha = if first { 1.0 } else { 0.05 };
        self.typical_bytes_level += alpha * (f32::from(bytes_level) - self.typical_bytes_level);
        self.typical_records_level += alpha * (f32::from(records_level) - self.typical_records_level);
        // A running mean over the first day of activity, then an EWMA whose input is capped, so
        // a burst of failures does not teach the baseline to expect bursts.
        let n = self.hours_observed;
        let alpha = 1.0 / f32::from(n.min(20));
        let learn = |rate: &mut f32, count: u16| {
            let count = if n > 20 { (count as f32).min(2.0 * *rate + 5.0) } else { count as f32 };
            *rate += alpha * (count - *rate);
        };
        learn(&mut self.failure_rate, totals.failures);
        learn(&mut self.denied_rate, totals.denied);
    }

    fn close_week(&mut self) {
        if self.active_this_week == [0; 3] {
            return;
        }
        self.weeks_observed = self.weeks_observed.saturating_add(1);
        // Running mean for the first weeks, then an EWMA that forgets old schedules.
        let alpha = 1.0 / f64::from(self.weeks_observed.min(4));
        for (how, presence) in self.presence.iter_mut().enumerate() {
            let active = self.active_this_week[how / 64] >> (how % 64) & 1 == 1;
            let target = if active { 255.0 } else { 0.0 };
            let p = f64::from(*presence);
            *presence = (p + alpha * (target - p)).round() as u8;
        }
        self.active_this_week = [0; 3];
    }

    /// Whole weeks of history folded into `presence`.
    pub fn weeks_observed(&self) -> u16 {
        self.weeks_observed
    }

    /// How often (0..1) the account was active in this very hour of the week.
    pub fn presence(&self, how: usize) -> f64 {
        f64::from(self.presence[how]) / 255.0
    }

    /// Highest presence (0..1) in the hour of the week and its two neighbours, which absorbs
    /// jitter and daylight-saving shifts.
    pub fn presence_near(&self, how: usize) -> f64 {
        neighbours(how).map(|h| f64::from(self.presence[h]) / 255.0).fold(0.0, f64::max)
    }

    /// How many observed weeks had activity near this hour of the week.
    pub fn weeks_active_near(&self, how: usize) -> f64 {
        self.presence_near(how) * f64::from(self.weeks_observed)
    }

    /// Typical volume of an active hour at this time of the week (the largest of the hour and
    /// its neighbours), or the account-wide typical hour when this time has no history.
    pub fn expected_hour(&self, how: usize) -> Volume {
        let (bytes, records) = self.expected_levels(how);
        Volume { bytes: level_volume(bytes), records: level_volume(records) }
    }

    /// Typical volume of an active hour in this very hour of the week (no neighbours), or the
    /// account-wide typical hour when it has no history: what an excess spanning several hours
    /// is measured against, since the neighbour an hour earlier has just learned from it.
    pub fn usual_hour(&self, how: usize) -> Volume {
        let own = |level: u8, typical: f32| if level == 0 { f64::from(typical) } else { f64::from(level) };
        Volume {
            bytes: level_volume(own(self.bytes_level[how], self.typical_bytes_level)),
            records: level_volume(own(self.records_level[how], self.typical_records_level)),
        }
    }

    /// Typical volume of any active hour of this account, whatever the time of week.
    pub fn typical_active_hour(&self) -> Volume {
        Volume {
            bytes: level_volume(f64::from(self.typical_bytes_level)),
            records: level_volume(f64::from(self.typical_records_level)),
        }
    }

    fn expected_levels(&self, how: usize) -> (f64, f64) {
        let near = |levels: &[u8; HOURS_PER_WEEK]| neighbours(how).map(|h| levels[h]).max().unwrap_or(0);
        let (bytes, records) = (near(&self.bytes_level), near(&self.records_level));
        let fallback = |level: u8, typical: f32| if level == 0 { f64::from(typical) } else { f64::from(level) };
        (fallback(bytes, self.typical_bytes_level), fallback(records, self.typical_records_level))
    }

    /// Volume in the sliding hour ending at `t`: this clock hour plus the part of the previous
    /// one still inside the window (the sliding-window-counter estimate).
    pub fn sliding_hour(&self, t: Millis) -> Volume {
        let elapsed = t.rem_euclid(HOUR) as f64 / HOUR as f64;
        let carry = 1.0 - elapsed;
        Volume {
            bytes: self.current.bytes as f64 + carry * self.previous[0] as f64,
            records: self.current.records as f64 + carry * self.previous[1] as f64,
        }
    }

    /// Events in the sliding hour ending at `t`, estimated like [`Self::sliding_hour`]: this
    /// clock hour's events plus the previous hour's, weighted by the share of it still inside
    /// the window.
    pub fn sliding_events(&self, t: Millis) -> f64 {
        let carry = 1.0 - t.rem_euclid(HOUR) as f64 / HOUR as f64;
        f64::from(self.current.events) + carry * f64::from(self.previous_events)
    }

    /// Events of the previous clock hour (zero if the account was idle then).
    pub fn previous_hour_events(&self) -> u32 {
        self.previous_events
    }

    pub fn current_hour(&self) -> HourTotals {
        self.current
    }

    /// Deviations of the last completed hours, newest first, as observed/expected ratios
    /// (`None` for an idle hour).
    pub fn recent_ratios(&self) -> impl Iterator<Item = (Option<f64>, Option<f64>)> + '_ {
        let ratio = |d: i8| (d != IDLE_HOUR).then(|| (f64::from(d) / RATIO_SCALE).exp2());
        self.recent_bytes.iter().zip(&self.recent_records).map(move |(&b, &r)| (ratio(b), ratio(r)))
    }

    /// Standard deviation of log2(observed/expected) for this account's hours.
    pub fn dispersion_log2(&self) -> f64 {
        f64::from(self.dispersion).sqrt()
    }

    /// Failed and denied calls per active hour.
    pub fn failure_rates(&self) -> (f64, f64) {
        (f64::from(self.failure_rate), f64::from(self.denied_rate))
    }
}

fn neighbours(how: usize) -> impl Iterator<Item = usize> {
    [how + HOURS_PER_WEEK - 1, how, how + 1].into_iter().map(|h| h % HOURS_PER_WEEK)
}

fn push_recent(recent: &mut [i8; RECENT_HOURS], value: i8) {
    recent.copy_within(0..RECENT_HOURS - 1, 1);
    recent[0] = value;
}

fn deviation(observed_level: u8, expected_level: f64) -> i8 {
    let log2_ratio = (f64::from(observed_level) - expected_level) / LEVELS_PER_DOUBLING;
    (log2_ratio * RATIO_SCALE).round().clamp(-127.0, 127.0) as i8
}

/// EWMA on the quantized level that always moves at least one step toward the observation, so
/// slow growth is followed rather than lost to rounding. An observation is capped at one
/// doubling above the level, so an attack moves the baseline by at most √2 per week.
fn learn_level(level: &mut u8, observed: u8) {
    if *level == 0 {
        *level = observed;
        return;
    }
    let capped = observed.min(level.saturating_add(LEVELS_PER_DOUBLING as u8));
    let diff = f64::from(capped) - f64::from(*level);
    let step = (0.5 * diff).round();
    let step = if step == 0.0 && diff != 0.0 { diff.signum() } else { step };
    *level = (f64::from(*level) + step).clamp(0.0, 255.0) as u8;
}

impl HourTotals {
    fn save(&self, w: &mut Writer) {
        w.u64(self.bytes);
        w.u64(self.records);
        w.u32(self.events);
        w.u16(self.failures);
        w.u16(self.denied);
    }
    fn load(r: &mut Reader) -> Result<Self, CodecError> {
        Ok(HourTotals { bytes: r.u64()?, records: r.u64()?, events: r.u32()?, failures: r.u16()?, denied: r.u16()? })
    }
}

impl AccountBaseline {
    /// Checkpoint encoding; the field order is the format (see `checkpoint`).
    pub fn save(&self, w: &mut Writer) {
        self.save_format(w, 3);
    }

    /// The encoding of an engine snapshot format (`load` reads it back).
    pub(crate) fn save_format(&self, w: &mut Writer, format: u32) {
        w.i64(self.first_seen);
        w.i64(self.last_seen);
        w.u64(self.events);
        w.sparse(&self.presence);
        w.sparse(&self.bytes_level);
        w.sparse(&self.records_level);
        w.u16(self.weeks_observed);
        w.u16(self.hours_observed);
        w.i32(self.week);
        for word in self.active_this_week {
            w.u64(word);
        }
        w.i32(self.hour);
        self.current.save(w);
        w.u64(self.previous[0]);
        w.u64(self.previous[1]);
        if format >= 3 {
            w.u32(self.previous_events);
        }
        for (b, r) in self.recent_bytes.iter().zip(&self.recent_records) {
            w.i8(*b);
            w.i8(*r);
        }
        for v in
            [self.typical_bytes_level, self.typical_records_level, self.dispersion, self.failure_rate, self.denied_rate]
        {
            w.f32(v);
        }
    }

    /// `format` is the engine snapshot format: 3 added the previous hour's event count.
    pub fn load(r: &mut Reader, format: u32) -> Result<Self, CodecError> {
        let mut b = AccountBaseline::new(0);
        b.first_seen = r.i64()?;
        b.last_seen = r.i64()?;
        b.events = r.u64()?;
        b.presence = r.sparse()?;
        b.bytes_level = r.sparse()?;
        b.records_level = r.sparse()?;
        b.weeks_observed = r.u16()?;
        b.hours_observed = r.u16()?;
        b.week = r.i32()?;
        for word in &mut b.active_this_week {
            *word = r.u64()?;
        }
        b.hour = r.i32()?;
        b.current = HourTotals::load(r)?;
        b.previous = [r.u64()?, r.u64()?];
        b.previous_events = if format >= 3 { r.u32()? } else { 0 };
        for i in 0..RECENT_HOURS {
            b.recent_bytes[i] = r.i8()?;
            b.recent_records[i] = r.i8()?;
        }
        for v in [
            &mut b.typical_bytes_level,
            &mut b.typical_records_level,
            &mut b.dispersion,
            &mut b.failure_rate,
            &mut b.denied_rate,
        ] {
            *v = r.f32()?;
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::{DAY, WEEK};
    use proptest::prelude::*;

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    /// An account active weekdays 09:00-17:00 UTC, one event every 10 minutes of `bytes`.
    fn business_account(weeks: i64, bytes: u64) -> AccountBaseline {
        let mut b = AccountBaseline::new(MONDAY + 9 * HOUR);
        for day in 0..weeks * 7 {
            if day % 7 >= 5 {
                continue;
            }
            for minute in (9 * 60..17 * 60).step_by(10) {
                let t = MONDAY + day * DAY + minute * 60_000;
                b.advance(t);
                b.count(bytes, bytes / 100, false, false);
                b.learn_activity(t);
            }
        }
        b
    }

    #[test]
    fn presence_learns_the_weekly_schedule() {
        let b = business_account(3, 10_000);
        assert_eq!(b.weeks_observed(), 2, "the third week is still open");
        assert_eq!(b.presence_near(10), 1.0, "Monday 10:00");
        assert_eq!(b.presence_near(24 * 6 + 3), 0.0, "Sunday 03:00");
        assert_eq!(b.presence_near(17), 1.0, "17:00 is next to 16:00, the last active hour");
        assert_eq!(b.presence_near(18), 0.0);
    }

    #[test]
    fn holiday_weeks_are_skipped_not_learned() {
        let mut b = business_account(2, 10_000);
        let later = MONDAY + 5 * WEEK + 10 * HOUR;
        b.advance(later);
        assert_eq!(b.weeks_observed(), 2);
        assert_eq!(b.presence_near(10), 1.0);
    }

    #[test]
    fn volume_baseline_and_sliding_hour() {
        let mut b = business_account(2, 1_000_000);
        let expected = b.expected_hour(10);
        // 6 events of 1 MB an hour, within the 12% level resolution.
        assert!((expected.bytes / 6e6 - 1.0).abs() < 0.12, "{expected:?}");
        let t = MONDAY + 2 * WEEK + 10 * HOUR + 30 * 60_000;
        b.advance(t);
        b.count(500_000_000, 0, false, false);
        let window = b.sliding_hour(t);
        assert!(window.bytes >= 500_000_000.0);
    }

    #[test]
    fn recent_ratios_mark_idle_hours() {
        let mut b = AccountBaseline::new(MONDAY);
        b.advance(MONDAY);
        b.count(1000, 10, false, false);
        b.advance(MONDAY + 3 * HOUR);
        let ratios: Vec<_> = b.recent_ratios().take(3).collect();
        assert_eq!(ratios[0], (None, None));
        assert_eq!(ratios[1], (None, None));
        assert_eq!(ratios[2], (Some(1.0), Some(1.0)), "first hour is compared with itself");
    }

    #[test]
    fn sliding_events_carry_the_previous_hour_and_older_formats_load() {
        let mut b = AccountBaseline::new(MONDAY);
        for minute in [55, 57, 65] {
            let t = MONDAY + 2 * HOUR + minute * 60_000;
            b.advance(t);
            b.count(0, 0, false, false);
            b.learn_activity(t);
        }
        let t = MONDAY + 3 * HOUR + 5 * 60_000;
        assert_eq!(b.previous_hour_events(), 2);
        assert!((b.sliding_events(t) - (1.0 + 2.0 * 55.0 / 60.0)).abs() < 1e-9);
        // An idle hour between: nothing carries.
        let mut idle = b.clone();
        idle.advance(MONDAY + 5 * HOUR);
        assert_eq!(idle.sliding_events(MONDAY + 5 * HOUR), 0.0);
        for format in [2, 3] {
            let mut w = Writer::default();
            b.save_format(&mut w, format);
            let mut r = Reader::new(&w.buf);
            let back = AccountBaseline::load(&mut r, format).unwrap();
            assert!(r.is_empty());
            assert_eq!(back.previous_hour_events(), if format >= 3 { 2 } else { 0 });
            assert_eq!(back.current_hour(), b.current_hour());
        }
    }

    proptest! {
        #[test]
        fn level_roundtrip_is_within_resolution(v in 1u64..(1u64 << 40)) {
            let back = level_volume(f64::from(volume_level(v)));
            let ratio = (back + 1.0) / (v as f64 + 1.0);
            prop_assert!((0.94..=1.06).contains(&ratio), "v={} back={}", v, back);
        }

        #[test]
        fn learned_level_moves_toward_observation(start in 1u8..=255, obs in 0u8..=255) {
            let mut level = start;
            learn_level(&mut level, obs);
            let (lo, hi) = (start.min(obs), start.max(obs));
            prop_assert!(level >= lo && level <= hi);
            prop_assert!(level <= start.saturating_add(3), "moves at most half a doubling up");
            if start != obs { prop_assert_ne!(level, start); }
        }

        #[test]
        fn presence_stays_a_share(pattern in proptest::collection::vec(any::<bool>(), 1..12)) {
            // Week by week, the account is active (or not) on Monday 10:00; always on Tuesday.
            let mut b = AccountBaseline::new(MONDAY);
            for (week, &monday) in pattern.iter().enumerate() {
                let base = MONDAY + week as i64 * WEEK;
                if monday { b.advance(base + 10 * HOUR); b.learn_activity(base + 10 * HOUR); }
                b.advance(base + DAY + 10 * HOUR);
                b.learn_activity(base + DAY + 10 * HOUR);
            }
            b.advance(MONDAY + pattern.len() as i64 * WEEK);
            let share = b.presence_near(10);
            prop_assert!((0.0..=1.0).contains(&share));
            prop_assert_eq!(b.presence_near(24 + 10), 1.0);
            if pattern.iter().all(|&m| !m) { prop_assert_eq!(share, 0.0); }
            if pattern.iter().all(|&m| m) { prop_assert_eq!(share, 1.0); }
        }

        #[test]
        fn sliding_hour_never_exceeds_two_hours(a in 0u64..1_000_000, b in 0u64..1_000_000, minute in 0i64..60) {
            let mut base = AccountBaseline::new(MONDAY);
            base.count(a, 0, false, false);
            base.advance(MONDAY + HOUR + minute * 60_000);
            base.count(b, 0, false, false);
            let w = base.sliding_hour(MONDAY + HOUR + minute * 60_000);
            prop_assert!(w.bytes >= b as f64 && w.bytes <= (a + b) as f64);
        }
    }
}
