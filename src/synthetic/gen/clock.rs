//! Time arithmetic for the generator: epoch milliseconds, civil dates, local time zones, and
//! the RFC 3339 form events carry (`2026-01-19T03:12:45.123Z`: UTC, milliseconds, `Z`).
//!
//! Zones use the daylight-saving rules written out here (US since 2007, EU since 1996, or
//! none) instead of the tz database: a future tzdata release that changes 2026 rules must not
//! change the events an old seed produced. A test checks the rules against chrono-tz today.
//!
//! "Local milliseconds" below means a wall-clock time counted as if it were UTC, so that
//! `local_ms.div_euclid(MS_PER_DAY)` is the local day number.

use std::fmt::Write as _;

pub(crate) const MS_PER_SECOND: i64 = 1_000;
pub(crate) const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
pub(crate) const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
pub(crate) const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// (year, month 1-12, day 1-31) of a day number.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day of the week of a day number, Monday = 0 .. Sunday = 6.
pub(crate) fn weekday(days: i64) -> u32 {
    (days + 3).rem_euclid(7) as u32
}

pub(crate) fn is_weekend(days: i64) -> bool {
    weekday(days) >= 5
}

/// Appends `ms` as RFC 3339 UTC with milliseconds, e.g. `2026-01-19T03:12:45.123Z`.
pub(crate) fn write_rfc3339_millis(ms: i64, out: &mut String) {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let hour = in_day / MS_PER_HOUR;
    let minute = in_day % MS_PER_HOUR / MS_PER_MINUTE;
    let second = in_day % MS_PER_MINUTE / MS_PER_SECOND;
    let milli = in_day % MS_PER_SECOND;
    // Writing into a String cannot fail.
    let _ = write!(out, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z");
}

pub(crate) fn rfc3339_millis(ms: i64) -> String {
    let mut text = String::with_capacity(24);
    write_rfc3339_millis(ms, &mut text);
    text
}

/// Local wall-clock "HH:MM" of local milliseconds, for label descriptions.
pub(crate) fn local_hhmm(local_ms: i64) -> String {
    let in_day = local_ms.rem_euclid(MS_PER_DAY);
    format!("{:02}:{:02}", in_day / MS_PER_HOUR, in_day % MS_PER_HOUR / MS_PER_MINUTE)
}

pub(crate) fn weekday_name(days: i64) -> &'static str {
    ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"][weekday(days) as usize]
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
    Zone { name, standard_offset_ms: standard_offset_minutes * MS_PER_MINUTE, rule }
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
        let (year, _, _) = civil_from_days((utc_ms + standard).div_euclid(MS_PER_DAY));
        let (dst_start, dst_end) = match self.rule {
            DaylightRule::None => return standard,
            DaylightRule::UnitedStates => {
                let start_day = first_sunday_on_or_after(days_from_civil(year, 3, 1)) + 7;
                let end_day = first_sunday_on_or_after(days_from_civil(year, 11, 1));
                (
                    start_day * MS_PER_DAY + 2 * MS_PER_HOUR - standard,
                    end_day * MS_PER_DAY + 2 * MS_PER_HOUR - (standard + MS_PER_HOUR),
                )
            }
            DaylightRule::EuropeanUnion => (
                last_sunday_of_month(year, 3) * MS_PER_DAY + MS_PER_HOUR,
                last_sunday_of_month(year, 10) * MS_PER_DAY + MS_PER_HOUR,
            ),
        };
        if (dst_start..dst_end).contains(&utc_ms) {
            standard + MS_PER_HOUR
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
            let daylight = standard - MS_PER_HOUR;
            if self.to_local(daylight) == local_ms {
                return daylight;
            }
        }
        standard
    }

    /// Local day number at a UTC instant.
    pub(crate) fn local_day(&self, utc_ms: i64) -> i64 {
        self.to_local(utc_ms).div_euclid(MS_PER_DAY)
    }

    /// UTC instant of `local_ms_in_day` after local midnight of `local_day`.
    pub(crate) fn at(&self, local_day: i64, local_ms_in_day: i64) -> i64 {
        self.to_utc(local_day * MS_PER_DAY + local_ms_in_day)
    }

    /// Local hour of day as a fraction (13.5 = 13:30).
    pub(crate) fn local_hour(&self, utc_ms: i64) -> f64 {
        self.to_local(utc_ms).rem_euclid(MS_PER_DAY) as f64 / MS_PER_HOUR as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Offset, TimeZone};

    #[test]
    fn civil_round_trip_and_weekday() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 1, 5), 20_458);
        assert_eq!(weekday(days_from_civil(2026, 1, 5)), 0, "2026-01-05 is a Monday");
        assert_eq!(weekday(days_from_civil(2026, 1, 11)), 6);
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn formats_like_chrono() {
        for ms in [0i64, 1_767_571_200_000, 1_768_792_365_123, 951_782_400_999, -1] {
            let ours = rfc3339_millis(ms);
            let theirs = chrono::DateTime::from_timestamp_millis(ms)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                .unwrap_or_default();
            assert_eq!(ours, theirs);
        }
        assert_eq!(rfc3339_millis(1_768_792_365_123), "2026-01-19T03:12:45.123Z");
    }

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
        let from = days_from_civil(2024, 1, 1) * MS_PER_DAY;
        let to = days_from_civil(2028, 1, 1) * MS_PER_DAY;
        for (ours, tz) in zones {
            let mut t = from;
            while t < to {
                let Some(utc) = chrono::DateTime::from_timestamp_millis(t) else { panic!("bad instant {t}") };
                let expected = tz.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc() as i64 * 1000;
                assert_eq!(ours.offset_at(t), expected, "{} at {}", ours.name, rfc3339_millis(t));
                // Local -> UTC -> local is the identity outside the skipped spring-forward hour.
                let local = ours.to_local(t);
                assert_eq!(ours.to_local(ours.to_utc(local)), local, "{} at {}", ours.name, rfc3339_millis(t));
                t += 30 * MS_PER_MINUTE;
            }
        }
    }
}
