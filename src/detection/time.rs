//! Event time: epoch milliseconds, RFC 3339 parsing and formatting, civil dates and weekdays
//! (the one calendar arithmetic of the crate; the generator uses it too), positions in the
//! week, and human durations (`"10m"`).
//!
//! Everything here is pure arithmetic on event time; nothing reads the wall clock. Weeks start
//! on Monday 00:00 UTC, so `hour_of_week` 0 is Monday 00:00-01:00 UTC and 167 is Sunday 23:00.
//! The RFC 3339 parser is hand-written because it sits on the hot path of every event and
//! must say precisely what is wrong with a timestamp.

use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;
pub const WEEK: Millis = 7 * DAY;
pub const HOURS_PER_WEEK: usize = 168;

/// Earliest and latest event times we accept (years 1970 to 9999).
pub const MIN_TIME: Millis = 0;
pub const MAX_TIME: Millis = 253_402_300_799_999;

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Hour index since the epoch (used to roll hourly buckets).
pub fn hour_index(t: Millis) -> i64 {
    t.div_euclid(HOUR)
}

/// Week index since the epoch, with weeks starting on Monday (1970-01-01 was a Thursday).
pub fn week_index(t: Millis) -> i64 {
    (t + 3 * DAY).div_euclid(WEEK)
}

/// Position of `t` in its week, 0 = Monday 00:00 UTC .. 167 = Sunday 23:00 UTC.
pub fn hour_of_week(t: Millis) -> usize {
    ((t + 3 * DAY).rem_euclid(WEEK) / HOUR) as usize
}

/// "Tuesday 14:00 UTC" for an hour of the week.
pub fn describe_hour_of_week(hour: usize) -> String {
    format!("{} {:02}:00 UTC", WEEKDAYS[(hour / 24) % 7], hour % 24)
}

/// Parse an RFC 3339 timestamp such as `2026-01-19T03:12:45.123Z` or `...+02:00`.
/// Fractions beyond milliseconds are truncated.
pub fn parse_rfc3339(s: &str) -> Result<Millis, &'static str> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err("too short for an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SSZ)");
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, &'static str> {
        let mut v = 0i64;
        for &c in &b[range] {
            if !c.is_ascii_digit() {
                return Err("expected digits in date or time (YYYY-MM-DDTHH:MM:SS)");
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Ok(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return Err("expected the layout YYYY-MM-DDTHH:MM:SS");
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("date does not exist");
    }
    // Second 60 is a leap second; we fold it into the next second like most systems do.
    if hour > 23 || minute > 59 || second > 60 {
        return Err("time of day out of range");
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 3 {
                millis = millis * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return Err("expected digits after the decimal point");
        }
        for _ in (i - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return Err("UTC offset out of range");
            }
            let minutes = h * 60 + m;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        None => return Err("missing UTC offset (Z or +HH:MM)"),
        _ => return Err("expected a UTC offset (Z or +HH:MM) at the end"),
    };
    // Two digits each, range-checked above.
    let days = days_from_civil(year, month as u32, day as u32);
    let t = days * DAY + hour * HOUR + minute * MINUTE + second * SECOND + millis - offset_minutes * MINUTE;
    if !(MIN_TIME..=MAX_TIME).contains(&t) {
        return Err("out of range (before 1970 or after 9999)");
    }
    Ok(t)
}

/// Format as RFC 3339 UTC with milliseconds: `2026-01-19T03:12:45.123Z`.
pub fn format_rfc3339(t: Millis) -> String {
    Rfc3339(t).to_string()
}

/// Display adapter writing RFC 3339 without an intermediate allocation.
pub struct Rfc3339(pub Millis);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.0;
        let (days, ms) = (t.div_euclid(DAY), t.rem_euclid(DAY));
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            ms / HOUR,
            (ms % HOUR) / MINUTE,
            (ms % MINUTE) / SECOND,
            ms % SECOND
        )
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31), by Howard
/// Hinnant's `days_from_civil`.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month 1-12, day 1-31) of a day number since 1970-01-01, the inverse of
/// [`days_from_civil`].
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Day of the week of a day number since 1970-01-01 (a Thursday): 0 = Monday .. 6 = Sunday.
pub fn weekday(days: i64) -> u32 {
    (days + 3).rem_euclid(7) as u32
}

/// `Monday` .. `Sunday` of a day number since 1970-01-01.
pub fn weekday_name(days: i64) -> &'static str {
    WEEKDAYS[weekday(days) as usize]
}

/// A span of time written as a human string in config and detector files: `"500ms"`, `"30s"`,
/// `"10m"`, `"1h30m"`, `"14d"`, `"2w"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Duration(pub Millis);

impl Duration {
    pub fn millis(self) -> Millis {
        self.0
    }
}

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty duration; write e.g. \"10m\"".into());
        }
        let mut total: Millis = 0;
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            if digits == 0 {
                return Err(format!("`{s}` is not a duration; write e.g. \"10m\", \"1h30m\", \"14d\""));
            }
            let value: Millis = rest[..digits].parse().map_err(|_| format!("`{s}`: number too large"))?;
            rest = &rest[digits..];
            let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
            let unit = match &rest[..unit_len] {
                "ms" => 1,
                "s" => SECOND,
                "m" => MINUTE,
                "h" => HOUR,
                "d" => DAY,
                "w" => WEEK,
                "" => return Err(format!("`{s}` needs a unit (ms, s, m, h, d, w)")),
                other => return Err(format!("`{s}`: unknown unit `{other}` (use ms, s, m, h, d, w)")),
            };
            rest = &rest[unit_len..];
            total = value
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(|| format!("`{s}` is too long"))?;
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0;
        for (unit, name) in [(WEEK, "w"), (DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s")] {
            if ms != 0 && ms % unit == 0 {
                return write!(f, "{}{name}", ms / unit);
            }
        }
        write!(f, "{ms}ms")
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_utc_and_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Ok(1500));
        assert_eq!(parse_rfc3339("1970-01-01T02:00:00+02:00"), Ok(0));
        assert_eq!(parse_rfc3339("1969-12-31T23:00:00-01:00"), Ok(0));
        assert_eq!(parse_rfc3339("2026-01-19T03:12:45.123456Z"), parse_rfc3339("2026-01-19T03:12:45.123Z"));
    }

    #[test]
    fn rejects_bad_timestamps_with_reasons() {
        assert_eq!(parse_rfc3339("2026-02-30T00:00:00Z"), Err("date does not exist"));
        assert_eq!(parse_rfc3339("2026-01-19T25:00:00Z"), Err("time of day out of range"));
        assert_eq!(
            parse_rfc3339("2026-01-19T03:12:45"),
            Err("too short for an RFC 3339 timestamp (YYYY-MM-DDTHH:MM:SSZ)")
        );
        assert_eq!(parse_rfc3339("2026-01-19T03:12:45.1"), Err("missing UTC offset (Z or +HH:MM)"));
        assert_eq!(parse_rfc3339("yesterday at noon, ok?"), Err("expected the layout YYYY-MM-DDTHH:MM:SS"));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Err("out of range (before 1970 or after 9999)"));
    }

    #[test]
    fn week_positions() {
        // 2026-01-05 is a Monday.
        let monday = parse_rfc3339("2026-01-05T00:30:00Z").unwrap();
        assert_eq!(hour_of_week(monday), 0);
        assert_eq!(hour_of_week(monday + 6 * DAY + 23 * HOUR), 167);
        assert_eq!(week_index(monday + WEEK), week_index(monday) + 1);
        assert_eq!(describe_hour_of_week(24 + 14), "Tuesday 14:00 UTC");
    }

    #[test]
    fn civil_dates_and_weekdays() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 1, 5), 20_458);
        assert_eq!(weekday(days_from_civil(2026, 1, 5)), 0, "2026-01-05 is a Monday");
        assert_eq!(weekday(days_from_civil(2026, 1, 11)), 6);
        assert_eq!(weekday_name(days_from_civil(2026, 1, 11)), "Sunday");
        assert_eq!(weekday(-1), 2, "1969-12-31 was a Wednesday");
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn formats_like_chrono() {
        for ms in [0i64, 1_767_571_200_000, 1_768_792_365_123, 951_782_400_999, -1] {
            let theirs = chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
            assert_eq!(format_rfc3339(ms), theirs.to_string());
        }
        assert_eq!(format_rfc3339(1_768_792_365_123), "2026-01-19T03:12:45.123Z");
    }

    #[test]
    fn durations() {
        assert_eq!("10m".parse::<Duration>(), Ok(Duration(10 * MINUTE)));
        assert_eq!("1h30m".parse::<Duration>(), Ok(Duration(90 * MINUTE)));
        assert_eq!("2w".parse::<Duration>().unwrap().to_string(), "2w");
        assert!("10".parse::<Duration>().unwrap_err().contains("needs a unit"));
        assert!("10y".parse::<Duration>().unwrap_err().contains("unknown unit `y`"));
    }

    proptest! {
        #[test]
        fn format_then_parse_roundtrips(t in MIN_TIME..MAX_TIME) {
            prop_assert_eq!(parse_rfc3339(&format_rfc3339(t)), Ok(t));
        }

        #[test]
        fn hour_of_week_matches_calendar(t in MIN_TIME..4_000_000_000_000i64) {
            let dt = chrono::DateTime::from_timestamp_millis(t).unwrap();
            use chrono::{Datelike, Timelike};
            let expected = dt.weekday().num_days_from_monday() as usize * 24 + dt.hour() as usize;
            prop_assert_eq!(hour_of_week(t), expected);
        }
    }
}
