//! Local time zones for the generator. Civil dates, weekdays and the RFC 3339 form events
//! carry come from [`crate::detection::time`], the crate's one calendar arithmetic.
//!
//! Zones use the daylight-saving rules written out here (US since 2007, EU since 1996, or
//! none) instead of the tz database: a future tzdata release that changes 2026 rules must not
//! change the events an old seed produced. A test checks the rules against chrono-tz today.
//!
//! "Local milliseconds" below means a wall-clock time counted as if it were UTC, so that
//! `local_ms.div_euclid(DAY)` is the local day number.

use crate::detection::time::{civil_from_days, days_from_civil, weekday, DAY, HOUR, MINUTE};

pub(crate) fn is_weekend(days: i64) -> bool {
    weekday(days) >= 5
}

/// Local wall-clock "HH:MM" of local milliseconds, for label descriptions.
pub(crate) fn local_hhmm(local_ms: i64) -> String {
    let in_day = local_ms.rem_euclid(DAY);
    format!("{:02}:{:02}", in_day / HOUR, in_day % HOUR / MINUTE)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DaylightRule {
    None,
    /// Second Sunday of March 02:00 local standard time to first Sunday of November 02:00 local daylight time.
    UnitedStates,
    /// Last Sunday of March 01:00 UTC to last Sunday of October 01:00 UTC.
    EuropeanUnion,
}

#[derive(Debug)]
pub(crate) struct Zone {
    pub(crate) name: &'static str,
    pub(crate) standard_offset_ms: i64,
    pub(crate) rule: DaylightRule,
}

const fn zone(name: &'static str, standard_offset_minutes: i64, rule: DaylightRule) -> Zone {
    Zone { name, standard_offset_ms: standard_offset_minutes * MINUTE, rule }
}

pub(crate) const NEW_YORK: Zone = zone("America/New_York", -300, DaylightRule::UnitedStates);
pub(crate) const CHICAGO: Zone = zone("America/Chicago", -360, DaylightRule::UnitedStates);
pub(crate) const LOS_ANGELES: Zone = zone("America/Los_Angeles", -480, DaylightRule::UnitedStates);
pub(crate) const BERLIN: Zone = zone("Europe/Berlin", 60, DaylightRule::EuropeanUnion);
pub(crate) const LONDON: Zone = zone("Europe/London", 0, DaylightRule::EuropeanUnion);
pub(crate) const TOKYO: Zone = zone("Asia/Tokyo", 540, DaylightRule::None);
pub(crate) const KOLKATA: Zone = zone("Asia/Kolkata", 330, DaylightRule::None);
pub(crate) const SINGAPORE: Zone = zone("Asia/Singapore", 480, DaylightRule::None);

fn first_sunday_on_or_after(days: i64) -> i64 {
    days + i64::from((6 + 7 - weekday(days)) % 7)
}

fn last_sunday_of_month(year: i64, month: u32) -> i64 {
    let last_day = if month == 12 { days_from_civil(year + 1, 1, 1) } else { days_from_civil(year, month + 1, 1) } - 1;
    last_day - i64::from((weekday(last_day) + 1) % 7)
}

impl Zone {
    /// UTC offset in effect at a UTC instant.
    pub(crate) fn offset_at(&self, utc_ms: i64) -> i64 {
        let standard = self.standard_offset_ms;
        let (year, _, _) = civil_from_days((utc_ms + standard).div_euclid(DAY));
        let (dst_start, dst_end) = match self.rule {
            DaylightRule::None => return standard,
            DaylightRule::UnitedStates => {
                let start_day = first_sunday_on_or_after(days_from_civil(year, 3, 1)) + 7;
                let end_day = first_sunday_on_or_after(days_from_civil(year, 11, 1));
                (start_day * DAY + 2 * HOUR - standard, end_day * DAY + 2 * HOUR - (standard + HOUR))
            }
            DaylightRule::EuropeanUnion => {
                (last_sunday_of_month(year, 3) * DAY + HOUR, last_sunday_of_month(year, 10) * DAY + HOUR)
            }
        };
        if (dst_start..dst_end).contains(&utc_ms) {
            standard + HOUR
        } else {
            standard
        }
    }

    pub(crate) fn to_local(&self, utc_ms: i64) -> i64 {
        utc_ms + self.offset_at(utc_ms)
    }

    /// The UTC instant of a local wall-clock time. Times skipped by a spring-forward shift map
    /// one hour later; repeated times map to their first occurrence.
    pub(crate) fn to_utc(&self, local_ms: i64) -> i64 {
        let standard = local_ms - self.standard_offset_ms;
        if self.rule != DaylightRule::None {
            // The daylight reading is the earlier instant, so it wins when both are valid.
            let daylight = standard - HOUR;
            if self.to_local(daylight) == local_ms {
                return daylight;
            }
        }
        standard
    }

    /// Local day number at a UTC instant.
    pub(crate) fn local_day(&self, utc_ms: i64) -> i64 {
        self.to_local(utc_ms).div_euclid(DAY)
    }

    /// UTC instant of `local_ms_in_day` after local midnight of `local_day`.
    pub(crate) fn at(&self, local_day: i64, local_ms_in_day: i64) -> i64 {
        self.to_utc(local_day * DAY + local_ms_in_day)
    }

    /// Local hour of day as a fraction (13.5 = 13:30).
    pub(crate) fn local_hour(&self, utc_ms: i64) -> f64 {
        self.to_local(utc_ms).rem_euclid(DAY) as f64 / HOUR as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::format_rfc3339;
    use chrono::{Offset, TimeZone};

    #[test]
    fn zone_rules_agree_with_tz_database() {
        let zones: [(&Zone, chrono_tz::Tz); 8] = [
            (&NEW_YORK, chrono_tz::America::New_York),
            (&CHICAGO, chrono_tz::America::Chicago),
            (&LOS_ANGELES, chrono_tz::America::Los_Angeles),
            (&BERLIN, chrono_tz::Europe::Berlin),
            (&LONDON, chrono_tz::Europe::London),
            (&TOKYO, chrono_tz::Asia::Tokyo),
            (&KOLKATA, chrono_tz::Asia::Kolkata),
            (&SINGAPORE, chrono_tz::Asia::Singapore),
        ];
        let from = days_from_civil(2024, 1, 1) * DAY;
        let to = days_from_civil(2028, 1, 1) * DAY;
        for (ours, tz) in zones {
            let mut t = from;
            while t < to {
                let Some(utc) = chrono::DateTime::from_timestamp_millis(t) else { panic!("bad instant {t}") };
                let expected = tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc() as i64 * 1000;
                assert_eq!(ours.offset_at(t), expected, "{} at {}", ours.name, format_rfc3339(t));
                // Local -> UTC -> local is the identity outside the skipped spring-forward hour.
                let local = ours.to_local(t);
                assert_eq!(ours.to_local(ours.to_utc(local)), local, "{} at {}", ours.name, format_rfc3339(t));
                t += 30 * MINUTE;
            }
        }
    }
}
