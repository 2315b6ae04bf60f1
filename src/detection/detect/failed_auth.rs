//! `failed_auth`: bursts of failed or denied calls for one account, and password sprays (one
//! source failing across many accounts).
//!
//! Counts use a sliding window estimated from two fixed buckets (the current one plus the part
//! of the previous one still inside the window), which needs constant memory per account. A
//! burst fires when the count reaches an absolute floor *and* is improbable under the account's
//! own failure rate: P(X ≥ count) for X ~ Poisson(rate × window) is at most `max_p_value`.
//! Score is -log10 of that probability. Isolated failures (token expiry and retry) never reach
//! the floor.

use std::collections::VecDeque;

use serde_json::json;
use statrs::distribution::{DiscreteCDF, Poisson};

use super::{facts, human_duration, Context, Finding};
use crate::detection::alert::{sql_literal, MAX_EVIDENCE_EVENTS};
use crate::detection::definition::{FailureBurstParams, PasswordSprayParams};
use crate::detection::time::{Millis, HOUR};
use crate::input::event::Outcome;
use crate::state::codec::{CodecError, Reader, Writer};

/// Lowest expected count: even an account that never failed may fail now and then.
const MIN_EXPECTED: f64 = 0.05;

/// Per-account state of one burst detector; only exists for accounts that had such calls.
#[derive(Clone, Debug, Default)]
pub struct BurstCounter {
    bucket: i64,
    current: u32,
    previous: u32,
    started: Millis,
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
        if self.event_ids.len() == MAX_EVIDENCE_EVENTS {
            self.event_ids.pop_front();
        }
        self.event_ids.push_back(event_id.to_string());
        let carry = 1.0 - t.rem_euclid(window) as f64 / window as f64;
        f64::from(self.current) + carry * f64::from(self.previous)
    }
}

fn save_strings<'a>(w: &mut Writer, items: impl ExactSizeIterator<Item = &'a String>) {
    w.u32(items.len() as u32);
    for s in items {
        w.str(s);
    }
}

fn load_strings(r: &mut Reader) -> Result<VecDeque<String>, CodecError> {
    let n = r.count(4)?;
    (0..n).map(|_| r.string()).collect()
}

impl BurstCounter {
    pub fn save(&self, w: &mut Writer) {
        w.i64(self.bucket);
        w.u32(self.current);
        w.u32(self.previous);
        w.i64(self.started);
        save_strings(w, self.event_ids.iter());
    }
    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        Ok(BurstCounter {
            bucket: r.i64()?,
            current: r.u32()?,
            previous: r.u32()?,
            started: r.i64()?,
            event_ids: load_strings(r)?,
        })
    }
}

impl SprayCounter {
    /// Forget one target account (erasure); how many entries went.
    pub(crate) fn forget(&mut self, account: u64, name: &str) -> usize {
        let before = self.accounts.len() + self.names.len();
        self.accounts.retain(|&(a, _)| a != account);
        self.names.retain(|n| n != name);
        before - self.accounts.len() - self.names.len()
    }

    pub fn save(&self, w: &mut Writer) {
        w.u32(self.accounts.len() as u32);
        for (account, t) in &self.accounts {
            w.u64(*account);
            w.i64(*t);
        }
        save_strings(w, self.names.iter());
        save_strings(w, self.event_ids.iter());
        w.i64(self.last);
    }
    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let n = r.count(16)?;
        let accounts = (0..n).map(|_| Ok((r.u64()?, r.i64()?))).collect::<Result<_, CodecError>>()?;
        Ok(SprayCounter { accounts, names: load_strings(r)?, event_ids: load_strings(r)?, last: r.i64()? })
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

pub fn burst(ctx: &Context, params: &FailureBurstParams, counter: &mut BurstCounter) -> Option<Finding> {
    if ctx.event.outcome != params.outcome {
        return None;
    }
    let window = params.window.millis();
    let count = counter.add(ctx.t, window, &ctx.event.id);
    if count < f64::from(params.min_count) {
        return None;
    }
    let (failure_rate, denied_rate) = ctx.account.failure_rates();
    let rate = if params.outcome == Outcome::Denied { denied_rate } else { failure_rate };
    let expected = (rate * window as f64 / HOUR as f64).max(MIN_EXPECTED);
    let p = poisson_tail(expected, count.floor() as u64);
    if p > params.max_p_value {
        return None;
    }
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
    Some(Finding {
        subject: ctx.account_subject(),
        observed: count.round(),
        expected,
        score: -p.max(1e-300).log10(),
        window_start: counter.started.max(ctx.t - window),
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
            ("window", json!(params.window.to_string())),
        ]),
        new: Vec::new(),
        event_ids: counter.event_ids.iter().cloned().collect(),
        sql_filter: format!("{} AND outcome = '{}'", ctx.account_filter(), params.outcome.as_str()),
    })
}

/// Failures from one source address across accounts; lives in the engine, keyed by source.
#[derive(Clone, Debug, Default)]
pub struct SprayCounter {
    /// (account hash, time of its latest failure), one entry per account, bounded.
    accounts: Vec<(u64, Millis)>,
    names: VecDeque<String>,
    event_ids: VecDeque<String>,
    pub last: Millis,
}

const MAX_SPRAY_ACCOUNTS: usize = 64;

impl SprayCounter {
    fn add(&mut self, t: Millis, window: Millis, account: u64, name: &str, event_id: &str) -> usize {
        self.accounts.retain(|&(_, seen)| t - seen < window);
        self.last = t;
        match self.accounts.iter_mut().find(|(a, _)| *a == account) {
            Some(entry) => entry.1 = t,
            None => {
                if self.accounts.len() == MAX_SPRAY_ACCOUNTS {
                    self.accounts.remove(0);
                }
                self.accounts.push((account, t));
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
        self.accounts.len()
    }

    fn first(&self) -> Millis {
        self.accounts.iter().map(|&(_, t)| t).min().unwrap_or(self.last)
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
    let accounts = counter.add(ctx.event.time, window, account_key, &ctx.event.account, &ctx.event.id);
    if accounts < params.min_accounts as usize {
        return None;
    }
    Some(Finding {
        subject: format!("source {ip}"),
        observed: accounts as f64,
        expected: 1.0,
        score: accounts as f64,
        window_start: counter.first(),
        window_end: ctx.event.time,
        summary: format!(
            "{ip} failed to authenticate against {accounts} different accounts in {} (latest {}); likely a password spray: block the source and check for a success from it.",
            human_duration(window),
            ctx.event.account
        ),
        baseline: facts([("accounts_failed", json!(accounts)), ("accounts", json!(counter.names)), ("window", json!(params.window.to_string()))]),
        new: Vec::new(),
        event_ids: counter.event_ids.iter().cloned().collect(),
        sql_filter: format!("source_ip = {}", sql_literal(&ip.to_string())),
    })
}

fn round3(v: f64) -> f64 {
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

    proptest! {
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
