//! Day-of-month recurrence per account: a monthly job is unusual against the weekly baseline
//! every time it runs, so the weekly baseline alone alerts on it every month.
//!
//! The engine remembers where an account's volume and off-hours findings fell on the
//! calendar: the day of the month counted from its start and from its end (UTC) and the hour
//! of day. A later volume or off-hours finding, in a later month, on the same day of the month
//! (from either end, so a job on the 1st in Tokyo that falls on the last UTC day of the month
//! still matches) and within two hours of day, is a recurrence: it is not alerted, and the
//! mark moves to this month (so do the rest of that run's findings). The first run of a monthly job is alerted (one category may fire
//! in its first month and the other in its second: both say "unusual at this time"); from its
//! second month on it is normal.
//!
//! Bounded: at most [`MAX_MARKS`] marks per account (8 bytes each, boxed only for accounts that
//! have had such a finding). When they are full, a mark older than last month goes first; else
//! the newest mark of this month gives way, so that noise later in a month (a clock change
//! that shifts a schedule) cannot push out last month's job before it recurs.
//!
//! The cost of this: an attack that repeats a previous month's finding on the same day and
//! hour is not alerted again. A day-of-week pattern is the weekly baseline's job, not this.

use crate::detection::definition::Category;
use crate::detection::time::{civil_from_days, Millis, DAY, HOUR};
use crate::state::codec::{CodecError, Reader, Writer};

pub const MAX_MARKS: usize = 4;
/// How far apart in hour of day a recurrence may be (a job scheduled in local time moves by
/// an hour in UTC when daylight saving changes, and jobs start late).
const HOUR_TOLERANCE: i32 = 2;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mark {
    /// Months since 1970-01.
    month: i32,
    /// 1-31; 0 for an empty slot.
    day: u8,
    /// 0 for the last day of the month, 1 for the one before...
    from_end: u8,
    hour: u8,
    /// The mark of a recurrence: later findings of the same run are recurrences too.
    recurring: bool,
}

/// Where an account's volume and off-hours findings fell in the month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthlyCalendar {
    marks: Option<Box<[Mark; MAX_MARKS]>>,
}

fn mark_at(t: Millis) -> Mark {
    let days = t.div_euclid(DAY);
    let (year, month, day) = civil_from_days(days);
    let mut next_month_start = days + 1;
    while civil_from_days(next_month_start).2 != 1 {
        next_month_start += 1;
    }
    Mark {
        month: (year as i32 - 1970) * 12 + month as i32 - 1,
        day: day as u8,
        from_end: (next_month_start - days - 1) as u8,
        hour: (t.rem_euclid(DAY) / HOUR) as u8,
        recurring: false,
    }
}

/// Only volume and schedule findings recur with the calendar; failures and key misuse do not.
pub fn applies_to(category: Category) -> bool {
    matches!(category, Category::DataVolume | Category::OffHours)
}

impl MonthlyCalendar {
    /// Whether a volume or off-hours finding at `t` repeats one from an earlier month; either
    /// way `t` is remembered.
    pub fn recurs(&mut self, t: Millis) -> bool {
        let now = mark_at(t);
        let marks = self.marks.get_or_insert_with(Default::default);
        let matches = |m: &Mark| {
            m.day != 0
                && (m.day == now.day || m.from_end == now.from_end)
                && (i32::from(m.hour) - i32::from(now.hour)).abs() <= HOUR_TOLERANCE
        };
        if let Some(this_month) = marks.iter().find(|m| matches(m) && m.month == now.month) {
            return this_month.recurring;
        }
        if let Some(earlier) = marks.iter_mut().find(|m| matches(m) && m.month < now.month) {
            *earlier = Mark { recurring: true, ..now };
            return true;
        }
        let stale = marks.iter().position(|m| m.day == 0 || m.month < now.month - 1);
        let newest_this_month = (0..MAX_MARKS)
            .filter(|&i| marks[i].month == now.month && !marks[i].recurring)
            .max_by_key(|&i| (marks[i].day, marks[i].hour));
        let oldest = (0..MAX_MARKS).min_by_key(|&i| (marks[i].month, marks[i].day, marks[i].hour));
        if let Some(slot) = stale.or(newest_this_month).or(oldest) {
            marks[slot] = now;
        }
        false
    }

    pub fn save(&self, w: &mut Writer) {
        let marks = self.marks.as_deref().map(|m| &m[..]).unwrap_or(&[]);
        let used: Vec<&Mark> = marks.iter().filter(|m| m.day != 0).collect();
        w.u8(used.len() as u8);
        for m in used {
            w.i32(m.month);
            w.u8(m.day);
            w.u8(m.from_end);
            w.u8(m.hour);
            w.bool(m.recurring);
        }
    }

    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let n = usize::from(r.u8()?);
        if n > MAX_MARKS {
            return Err(r.invalid("monthly calendar marks"));
        }
        let mut calendar = MonthlyCalendar::default();
        if n > 0 {
            let marks = calendar.marks.get_or_insert_with(Default::default);
            for m in marks.iter_mut().take(n) {
                *m = Mark { month: r.i32()?, day: r.u8()?, from_end: r.u8()?, hour: r.u8()?, recurring: r.bool()? };
                if !(1..=31).contains(&m.day) || m.hour > 23 {
                    return Err(r.invalid("monthly calendar mark"));
                }
            }
        }
        Ok(calendar)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::{days_from_civil, MINUTE};

    fn at(year: i64, month: u32, day: u32, hour: i64) -> Millis {
        days_from_civil(year, month, day) * DAY + hour * HOUR + 7 * MINUTE
    }

    #[test]
    fn a_monthly_job_is_new_once_then_recurs_on_the_same_day_from_either_end() {
        let mut c = MonthlyCalendar::default();
        assert!(!c.recurs(at(2026, 3, 1, 2)));
        // Same month, later the same day: still the first run.
        assert!(!c.recurs(at(2026, 3, 1, 3)));
        assert!(c.recurs(at(2026, 4, 1, 3)), "next month, an hour later");
        assert!(c.recurs(at(2026, 4, 1, 4)), "and the rest of that run");
        assert!(c.recurs(at(2026, 5, 1, 1)));

        // The last day of the month is the same day counted from the end: Feb 28, Mar 31.
        let mut end = MonthlyCalendar::default();
        assert!(!end.recurs(at(2026, 2, 28, 12)));
        assert!(end.recurs(at(2026, 3, 31, 13)));
    }

    #[test]
    fn other_hours_and_days_are_not_recurrences() {
        let mut c = MonthlyCalendar::default();
        assert!(!c.recurs(at(2026, 3, 1, 2)));
        assert!(!c.recurs(at(2026, 4, 1, 9)), "seven hours later in the day");
        assert!(!c.recurs(at(2026, 4, 2, 2)), "the next day of the month");
    }

    #[test]
    fn later_noise_in_a_month_never_pushes_out_last_months_job() {
        let mut c = MonthlyCalendar::default();
        assert!(!c.recurs(at(2026, 2, 28, 21)));
        // A week of findings after a clock change, every day at 15:00.
        for day in 9..=20 {
            c.recurs(at(2026, 3, day, 15));
        }
        assert!(c.recurs(at(2026, 3, 31, 20)), "last month's last-day job");
        // Marks older than last month give way first.
        for day in 1..=6 {
            c.recurs(at(2026, 5, day, 8));
        }
        assert!(!c.clone().recurs(at(2026, 6, 9, 15)), "March is forgotten");
        assert!(c.recurs(at(2026, 6, 1, 8)));
    }

    #[test]
    fn state_stays_bounded_and_survives_a_checkpoint() {
        let mut c = MonthlyCalendar::default();
        for day in 1..=20 {
            c.recurs(at(2026, 3, day, 12));
        }
        let used = c.marks.as_ref().unwrap().iter().filter(|m| m.day != 0).count();
        assert_eq!(used, MAX_MARKS);
        // The first days of the month are kept.
        assert!(c.clone().recurs(at(2026, 4, 2, 12)));
        assert!(!c.clone().recurs(at(2026, 4, 18, 12)), "a middle day gave way");

        let mut w = Writer::with_capacity(64);
        c.save(&mut w);
        assert_eq!(w.buf.len(), 1 + MAX_MARKS * 8);
        let loaded = MonthlyCalendar::load(&mut Reader::new(&w.buf)).unwrap();
        assert_eq!(loaded, c);
        let empty = MonthlyCalendar::default();
        let mut w = Writer::with_capacity(1);
        empty.save(&mut w);
        assert_eq!(MonthlyCalendar::load(&mut Reader::new(&w.buf)).unwrap(), empty);
        assert!(MonthlyCalendar::load(&mut Reader::new(&[5])).is_err(), "more marks than fit");
    }
}
