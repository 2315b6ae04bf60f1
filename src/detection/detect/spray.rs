//! `spray`: one source address failing to authenticate across many accounts (password or key
//! spraying), counted in distinct target accounts per source over a short window and, for a
//! slow spray, over a long one judged against how many accounts the source usually fails
//! against. The counters live in the engine, keyed by source, bounded in accounts per source.

use std::collections::VecDeque;

use serde_json::json;

use super::failed_auth::{load_strings, round3, save_strings};
use super::{facts, human_duration, Context, Finding};
use crate::detection::alert::{sql_literal, MAX_EVIDENCE_EVENTS};
use crate::detection::definition::PasswordSprayParams;
use crate::detection::time::Millis;
use crate::input::event::Outcome;
use crate::state::codec::{CodecError, Reader, Writer};

/// Failures from one source address across accounts; lives in the engine, keyed by source.
#[derive(Clone, Debug, Default)]
pub struct SprayCounter {
    /// (account hash, time of its latest failure), one entry per account, bounded.
    accounts: Vec<(u64, Millis)>,
    names: VecDeque<String>,
    event_ids: VecDeque<String>,
    pub last: Millis,
    /// The long window's fixed bucket (`t / long_window`) and the accounts new to the
    /// source's list in it: what the source's usual count learns from when it closes.
    bucket: i64,
    bucket_new: u16,
    buckets_learned: u8,
    /// Distinct accounts this source usually fails against in a long window (EWMA).
    usual: f32,
}

const MAX_SPRAY_ACCOUNTS: usize = 64;

/// How fast a source's usual count follows its closed long windows.
const USUAL_ALPHA: f32 = 0.2;

impl SprayCounter {
    /// Count a failure against `account`; entries older than `keep` leave.
    fn add(&mut self, t: Millis, keep: Millis, account: u64, name: &str, event_id: &str) {
        self.accounts.retain(|&(_, seen)| t - seen < keep);
        self.last = t;
        match self.accounts.iter_mut().find(|(a, _)| *a == account) {
            Some(entry) => entry.1 = t,
            None => {
                if self.accounts.len() == MAX_SPRAY_ACCOUNTS {
                    self.accounts.remove(0);
                }
                self.accounts.push((account, t));
                self.bucket_new = self.bucket_new.saturating_add(1);
                if self.names.len() == MAX_EVIDENCE_EVENTS {
                    self.names.pop_front();
                }
                self.names.push_back(name.to_string());
            }
        }
        if self.event_ids.len() == MAX_EVIDENCE_EVENTS {
            self.event_ids.pop_front();
        }
        self.event_ids.push_back(event_id.to_string());
    }

    /// Roll the long window's bucket to `t`, learning the closed ones (idle ones as zero, up to
    /// four): a running mean over the first four, then an EWMA, each input capped at 2× the
    /// usual count + 3, so a spray does not teach a source to expect sprays (not even a fresh
    /// source whose slow spray outlasts the fixed window it started in).
    fn roll(&mut self, t: Millis, long_window: Millis) {
        let bucket = t.div_euclid(long_window);
        if bucket <= self.bucket {
            return;
        }
        if self.bucket != 0 || self.bucket_new != 0 {
            let closed = (bucket - self.bucket).min(4);
            let mut seen = f32::from(self.bucket_new);
            for _ in 0..closed {
                self.buckets_learned = self.buckets_learned.saturating_add(1);
                let alpha = match self.buckets_learned {
                    n @ 1..=4 => 1.0 / f32::from(n),
                    _ => USUAL_ALPHA,
                };
                self.usual += alpha * (seen.min(2.0 * self.usual + 3.0) - self.usual);
                seen = 0.0;
            }
        }
        self.bucket = bucket;
        self.bucket_new = 0;
    }

    /// Distinct accounts failed against in the `window` ending at `t`.
    fn accounts_within(&self, t: Millis, window: Millis) -> usize {
        self.accounts.iter().filter(|&&(_, seen)| t - seen < window).count()
    }

    fn first_within(&self, t: Millis, window: Millis) -> Millis {
        self.accounts.iter().map(|&(_, seen)| seen).filter(|&seen| t - seen < window).min().unwrap_or(self.last)
    }

    /// The count a long window must reach for this source: the floor, or 4× its usual count.
    pub fn long_threshold(&self, floor: u32) -> usize {
        (floor as usize).max((4.0 * f64::from(self.usual)).ceil() as usize)
    }
}

pub fn spray(
    ctx: &Context,
    params: &PasswordSprayParams,
    account_key: u64,
    counter: &mut SprayCounter,
) -> Option<Finding> {
    let ip = ctx.event.source.ip?;
    if ctx.event.outcome != Outcome::Failure {
        return None;
    }
    let window = params.window.millis();
    let t = ctx.event.time;
    let long = params.long_window.zip(params.long_min_accounts);
    let keep = long.map_or(window, |(long_window, _)| long_window.millis().max(window));
    if let Some((long_window, _)) = long {
        counter.roll(t, long_window.millis());
    }
    counter.add(t, keep, account_key, &ctx.event.account, &ctx.event.id);
    let short = counter.accounts_within(t, window);
    let (window, accounts, usual, name) = if short >= params.min_accounts as usize {
        (window, short, None, params.window.to_string())
    } else {
        let (long_window, floor) = long?;
        let accounts = counter.accounts_within(t, long_window.millis());
        if accounts < counter.long_threshold(floor) {
            return None;
        }
        (long_window.millis(), accounts, Some(f64::from(counter.usual)), long_window.to_string())
    };
    let mut baseline =
        facts([("accounts_failed", json!(accounts)), ("accounts", json!(counter.names)), ("window", json!(name))]);
    let usually = match usual {
        Some(usual) => {
            baseline.insert("usual_accounts_in_window".into(), json!(round3(usual)));
            format!(", where it usually fails against {usual:.1}")
        }
        None => String::new(),
    };
    Some(Finding {
        subject: format!("source {ip}"),
        observed: accounts as f64,
        expected: usual.unwrap_or(1.0).max(1.0),
        score: accounts as f64,
        window_start: counter.first_within(t, window),
        window_end: t,
        summary: format!(
            "{ip} failed to authenticate against {accounts} different accounts in {}{usually} (latest {}); likely a password spray: block the source and check for a success from it.",
            human_duration(window),
            ctx.event.account
        ),
        baseline,
        new: Vec::new(),
        event_ids: counter.event_ids.iter().cloned().collect(),
        sql_filter: format!("source_ip = {}", sql_literal(&ip.to_string())),
    })
}

impl SprayCounter {
    /// Forget one target account (erasure); how many entries went.
    pub(crate) fn forget(&mut self, account: u64, name: &str) -> usize {
        let before = self.accounts.len() + self.names.len();
        self.accounts.retain(|&(a, _)| a != account);
        self.names.retain(|n| n != name);
        before - self.accounts.len() - self.names.len()
    }

    /// Checkpoint encoding of engine snapshot `format` (5 added the long-window baseline).
    pub fn save(&self, w: &mut Writer, format: u32) {
        w.u32(self.accounts.len() as u32);
        for (account, t) in &self.accounts {
            w.u64(*account);
            w.i64(*t);
        }
        save_strings(w, self.names.iter());
        save_strings(w, self.event_ids.iter());
        w.i64(self.last);
        if format >= 5 {
            w.i64(self.bucket);
            w.u16(self.bucket_new);
            w.u8(self.buckets_learned);
            w.f32(self.usual);
        }
    }
    pub fn load(r: &mut Reader, format: u32) -> Result<Self, CodecError> {
        let n = r.count(16)?;
        let accounts = (0..n).map(|_| Ok((r.u64()?, r.i64()?))).collect::<Result<_, CodecError>>()?;
        let mut counter = SprayCounter {
            accounts,
            names: load_strings(r)?,
            event_ids: load_strings(r)?,
            last: r.i64()?,
            ..Default::default()
        };
        if format >= 5 {
            counter.bucket = r.i64()?;
            counter.bucket_new = r.u16()?;
            counter.buckets_learned = r.u8()?;
            counter.usual = r.f32()?;
        }
        Ok(counter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::{HOUR, MINUTE};

    #[test]
    fn a_slow_spray_is_judged_against_the_sources_usual_count() {
        let mut c = SprayCounter::default();
        let long = 6 * HOUR;
        // A gateway that fails against 12 accounts every 6 hours is learned within a few days.
        let windows = 16;
        for window in 0..windows {
            for a in 0..12u64 {
                let t = window * long + a as i64 * 20 * MINUTE;
                c.roll(t, long);
                c.add(t, long, a + window as u64 * 100, "svc", "e");
            }
        }
        c.roll(windows * long, long);
        assert!((f64::from(c.usual) - 12.0).abs() < 0.5, "{}", c.usual);
        assert!((46..=48).contains(&c.long_threshold(20)), "{}", c.long_threshold(20));
        assert_eq!(SprayCounter::default().long_threshold(20), 20, "a new source: the floor");
    }

    #[test]
    fn a_slow_spray_across_a_window_boundary_does_not_teach_itself() {
        let mut c = SprayCounter::default();
        let long = 6 * HOUR;
        // A fresh source fails against 16 accounts in the last 100 minutes of a fixed window...
        for a in 0..16u64 {
            let t = long - 100 * MINUTE + a as i64 * 6 * MINUTE;
            c.roll(t, long);
            c.add(t, long, a, "svc", "e");
        }
        // ...and goes on after it closed: the closed window teaches at most the cap.
        let t = long + 10 * MINUTE;
        c.roll(t, long);
        c.add(t, long, 99, "svc", "e");
        assert!(c.usual <= 3.0, "{}", c.usual);
        assert_eq!(c.long_threshold(20), 20);
        assert_eq!(c.accounts_within(t, long), 17);
    }
}
