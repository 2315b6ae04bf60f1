//! Calendar gaps: an account back from an absence (a holiday, a paused integration) works off
//! its backlog, so its first hours back move more than that time of the week usually does.
//! The weekly baseline cannot know that, and alerts on the return.
//!
//! An account works in a clock hour once it has moved a quarter of its usual volume for that
//! hour of the week ([`working_hour`]); failed calls, a login or a health check are no work.
//! When an account starts working after a day or more without a working hour, the engine
//! reckons what it missed: over the silent hours (at most the last [`MAX_GAP_HOURS`]), the volume of a
//! usual active hour at each hour of the week, times how often the account is active then. If
//! that is at least [`MIN_MISSED_HOURS`] typical hours of work, then for [`WINDOW_HOURS`] from
//! the return a volume finding is taken for catch-up, and not alerted, while everything the
//! account has moved since its return stays within what it missed plus its usual volume for
//! the hours since. More than that is alerted as usual.
//!
//! The cost: a thief on a key that was idle may move up to the missed volume (at most a week of
//! the account's usual work) in the first hours without a volume alert. Key misuse, new
//! networks, rare actions and off-hours use are judged as always.
//!
//! State: boxed, only while a catch-up window is open (12 bytes of data).

use crate::detection::baseline::AccountBaseline;
use crate::detection::time::{self, Millis, DAY, HOUR};
use crate::state::codec::{CodecError, Reader, Writer};

/// A silence at least this long is an absence.
pub const MIN_GAP: Millis = DAY;
/// The missed work is reckoned over at most the last week of the silence.
pub const MAX_GAP_HOURS: i64 = 7 * 24;
/// An absence that missed less than this many typical hours of work leaves no backlog.
pub const MIN_MISSED_HOURS: f64 = 3.0;
/// How long after the return the backlog may be worked off.
pub const WINDOW_HOURS: i64 = 12;
/// The share of its usual hour an account must have moved in the open hour to be at work.
const WORKING_SHARE: f64 = 0.25;

/// Whether the open clock hour at `t` (its counts include the event being judged) is a working
/// hour of the account: it has moved at least a quarter of its usual volume at this time.
pub fn working_hour(baseline: &AccountBaseline, t: Millis) -> bool {
    let moved = baseline.current_hour().bytes as f64;
    moved > 0.0 && moved >= WORKING_SHARE * baseline.usual_hour(time::hour_of_week(t)).bytes
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CatchUp {
    /// Clock hour (since 1970) of the return.
    since_hour: u32,
    /// Bytes the account would usually have moved while it was away.
    missed_bytes: f32,
    /// Bytes moved since the return.
    moved_bytes: f32,
}

impl CatchUp {
    /// On a working hour at `t`, the account's last one at `last_worked`: the backlog of the
    /// absence, if it was one and missed enough work. What the open hour moved so far counts as
    /// moved since the return.
    pub fn after_absence(baseline: &AccountBaseline, last_worked: Millis, t: Millis) -> Option<CatchUp> {
        if t - last_worked < MIN_GAP || baseline.weeks_observed() < 1 {
            return None;
        }
        let (from, to) = (time::hour_index(last_worked) + 1, time::hour_index(t));
        let missed: f64 = (from.max(to - MAX_GAP_HOURS)..to)
            .map(|hour| {
                let how = time::hour_of_week(hour * HOUR);
                baseline.presence(how) * baseline.usual_hour(how).bytes
            })
            .sum();
        (missed >= MIN_MISSED_HOURS * baseline.typical_active_hour().bytes).then_some(CatchUp {
            since_hour: to as u32,
            missed_bytes: missed as f32,
            moved_bytes: baseline.current_hour().bytes as f32,
        })
    }

    /// Whether the window is still open at `t`.
    pub fn open(&self, t: Millis) -> bool {
        time::hour_index(t) < i64::from(self.since_hour) + WINDOW_HOURS
    }

    /// Count an event's bytes (before judging it).
    pub fn count(&mut self, bytes: u64) {
        self.moved_bytes += bytes as f32;
    }

    /// Whether what the account moved since its return, up to `t`, is within its backlog plus
    /// its usual volume for the hours since.
    pub fn explains(&self, baseline: &AccountBaseline, t: Millis) -> bool {
        if !self.open(t) {
            return false;
        }
        let usual: f64 = (i64::from(self.since_hour)..=time::hour_index(t))
            .map(|hour| baseline.usual_hour(time::hour_of_week(hour * HOUR)).bytes)
            .sum();
        f64::from(self.moved_bytes) <= f64::from(self.missed_bytes) + usual
    }

    pub fn save(state: Option<&CatchUp>, w: &mut Writer) {
        w.bool(state.is_some());
        if let Some(c) = state {
            w.u32(c.since_hour);
            w.f32(c.missed_bytes);
            w.f32(c.moved_bytes);
        }
    }

    pub fn load(r: &mut Reader) -> Result<Option<CatchUp>, CodecError> {
        if !r.bool()? {
            return Ok(None);
        }
        let c = CatchUp { since_hour: r.u32()?, missed_bytes: r.f32()?, moved_bytes: r.f32()? };
        if !(c.missed_bytes.is_finite() && c.moved_bytes.is_finite()) {
            return Err(r.invalid("catch-up bytes"));
        }
        Ok(Some(c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::days_from_civil;

    /// An account that works 09:00-17:00 UTC on weekdays, moving `bytes` an hour, for `weeks`
    /// weeks from Monday 2026-01-05; returns its baseline and the end of its last working day.
    fn office_account(weeks: i64, bytes: u64) -> (AccountBaseline, Millis) {
        let monday = days_from_civil(2026, 1, 5) * DAY;
        let mut b = AccountBaseline::new(monday + 9 * HOUR);
        let mut last = monday;
        for day in 0..weeks * 7 {
            if day % 7 >= 5 {
                continue;
            }
            for hour in 9..17 {
                for minute in [5, 35] {
                    let t = monday + day * DAY + hour * HOUR + minute * 60_000;
                    b.advance(t);
                    b.count(bytes / 2, 10, false, false);
                    b.learn_activity(t);
                    last = t;
                }
            }
        }
        (b, last)
    }

    #[test]
    fn a_holiday_leaves_a_backlog_that_explains_a_catch_up_and_no_more() {
        let (b, last) = office_account(4, 1_000_000);
        // Friday evening; away for the whole next week; back on the Monday after at 09:00.
        let back = last - 16 * HOUR + 10 * DAY + 9 * HOUR;
        let mut c = CatchUp::after_absence(&b, b.last_seen, back).expect("a week away misses work");
        // About 5 days x 8 hours of 1 MB.
        assert!((30e6..50e6).contains(&c.missed_bytes), "{c:?}");
        // Twice the usual rate for 5 hours is explained...
        c.count(10_000_000);
        assert!(c.explains(&b, back + 5 * HOUR));
        // ...and so is much more, up to the missed work...
        c.count(30_000_000);
        assert!(c.explains(&b, back + 5 * HOUR));
        // ...but not beyond it.
        c.count(20_000_000);
        assert!(!c.explains(&b, back + 5 * HOUR));
        // Nor after the window, whatever was moved.
        let mut late = CatchUp::after_absence(&b, b.last_seen, back).unwrap();
        late.count(1);
        assert!(!late.explains(&b, back + WINDOW_HOURS * HOUR));
    }

    #[test]
    fn an_ordinary_night_or_weekend_is_no_absence() {
        let (b, last) = office_account(4, 1_000_000);
        // Monday 09:00 after a weekend: the weekend hours have no presence, nothing was missed.
        let monday = last - 16 * HOUR + 3 * DAY + 9 * HOUR;
        assert_eq!(CatchUp::after_absence(&b, b.last_seen, monday), None);
        // The next morning: a gap of less than a day.
        let (b, last) = office_account(3, 1_000_000);
        assert_eq!(CatchUp::after_absence(&b, b.last_seen, last + 16 * HOUR), None);
        // No week of history: nothing is known to have been missed.
        let (b, last) = office_account(0, 1_000_000);
        assert_eq!(CatchUp::after_absence(&b, b.last_seen, last + 10 * DAY), None);
    }

    #[test]
    fn survives_a_checkpoint() {
        let (b, last) = office_account(4, 1_000_000);
        let mut c = CatchUp::after_absence(&b, b.last_seen, last + 10 * DAY).unwrap();
        c.count(123);
        for state in [Some(c), None] {
            let mut w = Writer::with_capacity(16);
            CatchUp::save(state.as_ref(), &mut w);
            assert_eq!(CatchUp::load(&mut Reader::new(&w.buf)).unwrap(), state);
        }
    }
}
