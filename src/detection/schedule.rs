//! Declared schedules: "this account works Monday to Friday, 07:00-19:00 Europe/Berlin".
//!
//! A declared schedule overrides the learned one for the accounts it names, so an operator
//! can state a known schedule instead of waiting for the warm-up. Days and hours are local to
//! the schedule's IANA time zone, so daylight-saving changes are handled. A range whose end is
//! before its start runs overnight (`"22:00-06:00"`).

use chrono::{Datelike, TimeZone, Timelike};
use serde::{Deserialize, Serialize};

use crate::detection::definition::glob_match;
use crate::detection::time::Millis;

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Account names or prefixes ending in `*`.
    pub accounts: Vec<String>,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// `mon-fri`, `sat,sun`, `mon-sun`.
    pub days: String,
    /// `07:00-19:00`, or overnight `22:00-06:00`.
    pub hours: String,
}

#[derive(Clone, Debug)]
pub struct Schedule {
    accounts: Vec<String>,
    tz: chrono_tz::Tz,
    /// Bit 0 = Monday.
    days: u8,
    start_minute: u32,
    end_minute: u32,
    pub description: String,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Schedule {
    /// Validate a config; errors name the field.
    pub fn new(config: &ScheduleConfig) -> Result<Schedule, (String, String)> {
        if config.accounts.is_empty() {
            return Err(("accounts".into(), "must name at least one account".into()));
        }
        let tz: chrono_tz::Tz = config.timezone.parse().map_err(|_| {
            ("timezone".to_string(), format!("`{}` is not an IANA time zone such as Europe/Berlin", config.timezone))
        })?;
        let days = parse_days(&config.days).map_err(|m| ("days".to_string(), m))?;
        let (start_minute, end_minute) = parse_hours(&config.hours).map_err(|m| ("hours".to_string(), m))?;
        Ok(Schedule {
            accounts: config.accounts.clone(),
            tz,
            days,
            start_minute,
            end_minute,
            description: format!("{} {} {}", config.days, config.hours, config.timezone),
        })
    }

    pub fn applies_to(&self, account: &str) -> bool {
        self.accounts.iter().any(|p| glob_match(p, account))
    }

    /// Whether event time `t` falls inside the declared working time.
    pub fn contains(&self, t: Millis) -> bool {
        let Some(local) = self.tz.timestamp_millis_opt(t).single() else { return false };
        let minute = local.hour() * 60 + local.minute();
        let weekday = local.weekday().num_days_from_monday();
        let day_on = |d: u32| self.days >> (d % 7) & 1 == 1;
        if self.start_minute <= self.end_minute {
            day_on(weekday) && minute >= self.start_minute && minute < self.end_minute
        } else {
            // Overnight: the part after midnight belongs to the previous day's shift.
            (day_on(weekday) && minute >= self.start_minute) || (day_on(weekday + 6) && minute < self.end_minute)
        }
    }
}

fn parse_days(s: &str) -> Result<u8, String> {
    let index = |name: &str| {
        DAY_NAMES
            .iter()
            .position(|d| *d == name.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("`{name}` is not a day; use mon, tue, wed, thu, fri, sat, sun"))
    };
    let mut mask = 0u8;
    for part in s.split(',') {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (index(from)?, index(to)?);
                let mut d = from;
                loop {
                    mask |= 1 << d;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << index(part)?,
        }
    }
    Ok(mask)
}

fn parse_hours(s: &str) -> Result<(u32, u32), String> {
    let err = || format!("`{s}` is not an hour range; write e.g. \"07:00-19:00\"");
    let (from, to) = s.split_once('-').ok_or_else(err)?;
    let minute = |hm: &str| -> Result<u32, String> {
        let (h, m) = hm.trim().split_once(':').ok_or_else(err)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
        if m > 59 || h > 24 || (h == 24 && m > 0) {
            return Err(err());
        }
        Ok(h * 60 + m)
    };
    let (from, to) = (minute(from)?, minute(to)?);
    if from == to {
        return Err(format!("`{s}` is an empty range"));
    }
    Ok((from, to))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::parse_rfc3339;

    fn schedule(days: &str, hours: &str, tz: &str) -> Schedule {
        Schedule::new(&ScheduleConfig {
            accounts: vec!["svc-payroll*".into()],
            timezone: tz.into(),
            days: days.into(),
            hours: hours.into(),
        })
        .unwrap()
    }

    #[test]
    fn local_hours_follow_the_time_zone() {
        let s = schedule("mon-fri", "07:00-19:00", "Europe/Berlin");
        // 2026-01-05 is a Monday; Berlin is UTC+1 in January.
        assert!(s.contains(parse_rfc3339("2026-01-05T06:30:00Z").unwrap()));
        assert!(!s.contains(parse_rfc3339("2026-01-05T05:30:00Z").unwrap()));
        assert!(!s.contains(parse_rfc3339("2026-01-10T10:00:00Z").unwrap()), "Saturday");
        // July: UTC+2.
        assert!(s.contains(parse_rfc3339("2026-07-06T05:30:00Z").unwrap()));
        assert!(s.applies_to("svc-payroll-eu") && !s.applies_to("svc-crm"));
    }

    #[test]
    fn overnight_ranges_belong_to_the_starting_day() {
        let s = schedule("fri", "22:00-06:00", "UTC");
        assert!(s.contains(parse_rfc3339("2026-01-09T23:00:00Z").unwrap()), "Friday night");
        assert!(s.contains(parse_rfc3339("2026-01-10T05:00:00Z").unwrap()), "early Saturday");
        assert!(!s.contains(parse_rfc3339("2026-01-09T05:00:00Z").unwrap()), "early Friday belongs to Thursday");
    }

    #[test]
    fn errors_name_the_field() {
        let bad = |days: &str, hours: &str, tz: &str| {
            Schedule::new(&ScheduleConfig {
                accounts: vec!["a".into()],
                timezone: tz.into(),
                days: days.into(),
                hours: hours.into(),
            })
            .unwrap_err()
            .0
        };
        assert_eq!(bad("mon-fri", "07:00-19:00", "Mars/Olympus"), "timezone");
        assert_eq!(bad("mon-fry", "07:00-19:00", "UTC"), "days");
        assert_eq!(bad("mon-fri", "7am-7pm", "UTC"), "hours");
        assert_eq!(parse_days("sat-mon").unwrap(), 0b110_0001);
    }
}
