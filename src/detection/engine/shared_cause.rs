//! Incidents across accounts: many accounts failing at once for one shared cause.
//!
//! When a token service or an upstream system goes down, every account that uses it fails with
//! the same reason at about the same moment, and each would raise its own burst. The engine
//! keeps, per *cause* (tenant, `target.system`, outcome, reason), the distinct accounts that
//! failed with it in the last [`CAUSE_WINDOW`] of event time. A per-account finding on a
//! failed or denied event whose cause holds at least [`MIN_SHARED_ACCOUNTS`] accounts is one
//! incident of that cause: it raises one alert naming the accounts (the first
//! [`MAX_LISTED_ACCOUNTS`] and a count) and saying what they share (system, reason, and the
//! source when they all came from one), and the findings of other accounts that follow within
//! the detector's cooldown fold into it.
//!
//! Latency: nothing is held back. An account failing alone (no other account of its system
//! failing with its reason) alerts at once, as before. In an outage the first account to cross
//! its threshold may alert on its own before the others have failed; the next one raises the
//! shared alert and the rest fold, so an outage raises at most two alerts per detector. The
//! price: an attack on one account that happens *during* such an incident, with the same
//! reason, folds into it; its account is listed if it failed in the window when the shared
//! alert was raised, and counted in the incident either way.
//!
//! Only failed and denied events have a cause (a reason is what they share); detectors that
//! fire on successful calls (volume, off-hours, keys) are not grouped. Deterministic: event
//! time only. Bounded: [`MAX_CAUSE_ACCOUNTS`] accounts per cause, [`MAX_CAUSES`] causes, idle
//! causes swept hourly; saved in the checkpoint.

use std::net::IpAddr;

use crate::detection::time::{Millis, MINUTE};
use crate::input::event::{AuditEvent, Outcome};
use crate::state::codec::{CodecError, Reader, Writer};

/// How close in event time the accounts' failures must be to share a cause.
pub const CAUSE_WINDOW: Millis = 10 * MINUTE;
/// Distinct accounts failing with one cause in the window that make it shared: the account of
/// the finding and at least three others (two strangers failing with a common reason such as
/// "invalid secret" beside an attack are a coincidence a large tenant sees every day).
pub const MIN_SHARED_ACCOUNTS: usize = 4;
/// Accounts named in a shared alert.
pub const MAX_LISTED_ACCOUNTS: usize = 20;
/// Accounts remembered per cause (the oldest goes first).
pub const MAX_CAUSE_ACCOUNTS: usize = 64;
/// Causes tracked at once; beyond it new causes are not tracked (their findings stay per account).
pub const MAX_CAUSES: usize = 10_000;

/// One failing account of a cause.
#[derive(Clone, Debug, PartialEq)]
struct CauseAccount {
    key: u64,
    seen: Millis,
    name: String,
    source: Option<IpAddr>,
}

/// The accounts that failed recently with one cause.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CauseWindow {
    accounts: Vec<CauseAccount>,
    pub last: Millis,
}

/// What a shared alert says the accounts have in common.
#[derive(Clone, Debug, PartialEq)]
pub struct SharedCause {
    pub system: Option<String>,
    pub reason: Option<String>,
    pub outcome: Outcome,
    /// The one source address all of them failed from, if it is one.
    pub source: Option<IpAddr>,
    /// Names, oldest failure first, at most [`MAX_LISTED_ACCOUNTS`].
    pub accounts: Vec<String>,
    pub account_count: usize,
}

/// The cause of a failed or denied event; `None` for anything else.
pub fn cause_key(event: &AuditEvent, key_of: impl Fn(&[&[u8]]) -> u64) -> Option<u64> {
    if !matches!(event.outcome, Outcome::Failure | Outcome::Denied) {
        return None;
    }
    Some(key_of(&[
        b"shared-cause",
        event.tenant().as_bytes(),
        event.target.system.as_deref().unwrap_or("").as_bytes(),
        event.outcome.as_str().as_bytes(),
        event.reason.as_deref().unwrap_or("").as_bytes(),
    ]))
}

impl CauseWindow {
    /// Count a failure of `account` at `t`; old entries leave the window.
    pub fn add(&mut self, t: Millis, account: u64, name: &str, source: Option<IpAddr>) {
        self.accounts.retain(|a| t - a.seen < CAUSE_WINDOW);
        self.last = self.last.max(t);
        match self.accounts.iter_mut().find(|a| a.key == account) {
            Some(entry) => {
                entry.seen = t;
                entry.source = source;
            }
            None => {
                if self.accounts.len() == MAX_CAUSE_ACCOUNTS {
                    self.accounts.remove(0);
                }
                self.accounts.push(CauseAccount { key: account, seen: t, name: name.to_string(), source });
            }
        }
    }

    /// Distinct accounts in the window ending at `t`.
    pub fn accounts_at(&self, t: Millis) -> usize {
        self.accounts.iter().filter(|a| t - a.seen < CAUSE_WINDOW).count()
    }

    /// What is shared, if the cause holds enough accounts at `t`.
    pub fn shared(&self, t: Millis, event: &AuditEvent) -> Option<SharedCause> {
        let recent: Vec<&CauseAccount> = self.accounts.iter().filter(|a| t - a.seen < CAUSE_WINDOW).collect();
        if recent.len() < MIN_SHARED_ACCOUNTS {
            return None;
        }
        let first_source = recent[0].source;
        let source = first_source.filter(|_| recent.iter().all(|a| a.source == first_source));
        Some(SharedCause {
            system: event.target.system.as_deref().map(str::to_string),
            reason: event.reason.as_deref().map(str::to_string),
            outcome: event.outcome,
            source,
            accounts: recent.iter().take(MAX_LISTED_ACCOUNTS).map(|a| a.name.clone()).collect(),
            account_count: recent.len(),
        })
    }

    /// Forget one account (erasure); how many entries went.
    pub(crate) fn forget(&mut self, account: u64) -> usize {
        let before = self.accounts.len();
        self.accounts.retain(|a| a.key != account);
        before - self.accounts.len()
    }

    pub fn save(&self, w: &mut Writer) {
        w.u32(self.accounts.len() as u32);
        for a in &self.accounts {
            w.u64(a.key);
            w.i64(a.seen);
            w.str(&a.name);
            match a.source {
                Some(ip) => w.str(&ip.to_string()),
                None => w.str(""),
            }
        }
        w.i64(self.last);
    }

    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let n = r.count(24)?;
        let mut accounts = Vec::with_capacity(n.min(MAX_CAUSE_ACCOUNTS));
        for _ in 0..n {
            let (key, seen, name, source) = (r.u64()?, r.i64()?, r.string()?, r.string()?);
            let source = if source.is_empty() {
                None
            } else {
                Some(source.parse().map_err(|_| r.invalid("source address of a shared cause"))?)
            };
            accounts.push(CauseAccount { key, seen, name, source });
        }
        Ok(CauseWindow { accounts, last: r.i64()? })
    }
}

impl SharedCause {
    /// "crm: 'token expired'" — the dedup subject and the name of the cause in summaries.
    pub fn describe(&self) -> String {
        let system = self.system.as_deref().unwrap_or("(no system)");
        match &self.reason {
            Some(reason) => format!("{system}, {} with '{reason}'", self.outcome.as_str()),
            None => format!("{system}, {} with no reason given", self.outcome.as_str()),
        }
    }

    /// The summary line of the shared alert, before the triggering finding's own summary.
    pub fn summary(&self) -> String {
        let verb = if self.outcome == Outcome::Denied { "were denied" } else { "failed to authenticate" };
        let system = self.system.as_deref().map(|s| format!(" of {s}")).unwrap_or_default();
        let reason = self.reason.as_deref().map(|r| format!(" with the same reason ('{r}')")).unwrap_or_default();
        let more = self.account_count.saturating_sub(self.accounts.len());
        let more = if more > 0 { format!(" and {more} more") } else { String::new() };
        let advice = match self.source {
            Some(ip) => format!(
                "All from {ip}: one source against many accounts, treat it as an attack from that source and block it"
            ),
            None => "One shared cause, not separate attacks: check the system and its token service (an outage, a \
                     rotated or expired shared secret, a changed policy) before the accounts"
                .to_string(),
        };
        format!(
            "{} accounts{system} {verb}{reason} within {} min: {}{more}. {advice}. Later accounts with this cause fold \
             into this alert.",
            self.account_count,
            CAUSE_WINDOW / MINUTE,
            self.accounts.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_leave_the_window_and_are_bounded() {
        let mut w = CauseWindow::default();
        for i in 0..100u64 {
            w.add(i as i64 * 1000, i, &format!("a{i}"), None);
        }
        assert_eq!(w.accounts.len(), MAX_CAUSE_ACCOUNTS);
        assert_eq!(w.accounts_at(99_000), MAX_CAUSE_ACCOUNTS);
        assert_eq!(w.accounts_at(99_000 + CAUSE_WINDOW), 0);
        w.add(10 * CAUSE_WINDOW, 7, "a7", None);
        assert_eq!(w.accounts.len(), 1, "a new failure drops what left the window");
        assert_eq!(w.forget(7), 1);
    }

    #[test]
    fn save_and_load_round_trip() {
        let mut w = CauseWindow::default();
        w.add(5, 1, "svc-a", Some("192.0.2.1".parse().unwrap()));
        w.add(6, 2, "svc-b", None);
        let mut out = Writer::default();
        w.save(&mut out);
        let mut r = Reader::new(&out.buf);
        assert_eq!(CauseWindow::load(&mut r).unwrap(), w);
        assert!(r.is_empty());
    }
}
