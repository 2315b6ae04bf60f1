//! The engine's state in a checkpoint (`Engine::save` / `Engine::restore`), and its size for
//! the `state_bytes` metric. Detectors and options are configuration, not state: per-detector
//! state is saved with the names of the detectors it belongs to.

use super::{AccountState, CauseWindow, Engine, EngineOptions, OpenIncident};
use crate::detection::baseline::{AccountBaseline, CredentialProfile};
use crate::detection::calendar::MonthlyCalendar;
use crate::detection::catch_up::CatchUp;
use crate::detection::definition::Detector;
use crate::detection::detect::call_rate::CallRate;
use crate::detection::detect::failed_auth::BurstCounter;
use crate::detection::detect::spray::SprayCounter;
use crate::detection::detect::sustained_excess::ExcessCusum;
use crate::detection::terms::AccountTerms;
use crate::detection::time;
use crate::state::codec::{CodecError, Reader, Writer};

/// The engine section starts with this tag and its format number. Format 1 had neither and
/// began with the detector count, which is never `u32::MAX`, so both are told apart.
const FORMAT_TAG: u32 = u32::MAX;
/// 2: a key's users as `KeyUsers` (up to 4, with last-seen hour and decaying hour counts)
/// instead of a `RecentSet<2>`. 3: an account's previous-hour event count (off-hours on a
/// sliding hour). 4: an account's `sustained_excess` CUSUM (10 bytes). 5: burst counters keep
/// hourly counts (the longer windows of `failure_burst`), spray windows a source's usual count
/// of accounts in a long window (`password_spray`), and the shared-cause windows follow
/// the open incidents. 6: an account's terms (`rare_action`, `credential_created_for_other`)
/// and monthly calendar marks (1 byte, plus 8 per mark), and the alert counters by category
/// with their count (there are more than four). 7: an account's open catch-up window after
/// an absence (1 byte, plus 12 when open) and the clock hour of its last successful call.
/// 8: an account's call rates (`call_rate`), by detector.
pub const FORMAT: u32 = 8;

/// Categories counted before format 6.
const CATEGORIES_BEFORE_6: usize = 4;

impl Engine {
    /// Rough bytes held by the state, for the `state_bytes` metric (the memory bench measures
    /// the real figure with a counting allocator).
    pub fn state_bytes(&self) -> u64 {
        let map_entry = 8 + 8 + 1;
        let accounts = self.accounts.capacity() * map_entry + self.accounts.len() * std::mem::size_of::<AccountState>();
        let bursts: usize = self
            .accounts
            .values()
            .map(|a| {
                a.bursts.len() * (std::mem::size_of::<(u16, BurstCounter)>() + 64)
                    + a.rates.len() * std::mem::size_of::<(u16, CallRate)>()
                    + a.terms.heap_bytes()
            })
            .sum();
        let credentials = self.credentials.capacity() * (8 + 8 + 1)
            + self.credentials.len() * (std::mem::size_of::<CredentialProfile>() + 24);
        let sprays = self.sprays.len() * 2048;
        let causes = self.causes.len() * 4096;
        (accounts + bursts + credentials + sprays + causes) as u64
    }

    /// Encode the engine's state for a checkpoint. Detectors and options are configuration and
    /// are not saved; per-detector state is saved with the detector names it belongs to.
    pub fn save(&self, w: &mut Writer) {
        self.save_format(w, FORMAT);
    }

    /// The encoding of an older format (from 2), for tests that an upgrade reads it.
    pub(crate) fn save_format(&self, w: &mut Writer, format: u32) {
        w.u32(FORMAT_TAG);
        w.u32(format);
        w.u32(self.detectors.len() as u32);
        for d in &self.detectors {
            w.str(&d.name);
        }
        w.i64(self.watermark);
        w.i64(self.swept_hour);
        let s = &self.stats;
        for v in [
            s.events,
            s.late_events,
            s.untracked_account_events,
            s.untracked_credential_events,
            s.alerts,
            s.folded_repeats,
            s.account_partition_changes,
        ] {
            w.u64(v);
        }
        let categories = if format >= 6 {
            w.u8(s.alerts_by_category.len() as u8);
            &s.alerts_by_category[..]
        } else {
            &s.alerts_by_category[..CATEGORIES_BEFORE_6]
        };
        for &v in categories {
            w.u64(v);
        }
        w.u32(self.accounts.len() as u32);
        for (key, state) in &self.accounts {
            w.u64(*key);
            state.baseline.save_format(w, format.max(2));
            w.u32(state.partition);
            w.u32(state.bursts.len() as u32);
            for (index, counter) in state.bursts.iter() {
                w.u16(*index);
                counter.save(w, format);
            }
            if format >= 4 {
                state.excess.save(w);
            }
            if format >= 6 {
                state.terms.save(w);
                state.calendar.save(w);
            }
            if format >= 7 {
                CatchUp::save(state.catch_up.as_deref(), w);
                w.u32(state.worked_hour);
            }
            if format >= 8 {
                w.u32(state.rates.len() as u32);
                for (index, rate) in state.rates.iter() {
                    w.u16(*index);
                    rate.save(w);
                }
            }
        }
        w.u32(self.credentials.len() as u32);
        for (key, profile) in &self.credentials {
            w.u64(*key);
            profile.save(w);
        }
        w.u32(self.sprays.len() as u32);
        for (key, spray) in &self.sprays {
            w.u64(*key);
            spray.save(w, format);
        }
        w.u32(self.incidents.len() as u32);
        for (key, incident) in &self.incidents {
            w.u64(*key);
            w.i64(incident.last);
            w.i64(incident.cooldown);
            w.u32(incident.count);
        }
        if format >= 5 {
            w.u32(self.causes.len() as u32);
            for (key, cause) in &self.causes {
                w.u64(*key);
                cause.save(w);
            }
        }
    }

    /// Rebuild an engine from `save` output. If the detector set changed since, baselines and
    /// credential profiles are kept, and per-detector state (burst counters, spray windows,
    /// open incidents) starts afresh, because it no longer means the same thing.
    pub fn restore(detectors: Vec<Detector>, options: EngineOptions, r: &mut Reader) -> Result<Engine, CodecError> {
        let mut engine = Engine::new(detectors, options);
        let first = r.u32()?;
        let (format, n) = if first == FORMAT_TAG {
            let format = r.u32()?;
            if !(1..=FORMAT).contains(&format) {
                return Err(r.invalid("engine state format (written by a newer build?)"));
            }
            (format, r.count(4)?)
        } else {
            (1, first as usize)
        };
        let names = (0..n).map(|_| r.string()).collect::<Result<Vec<_>, _>>()?;
        let same_detectors = names.iter().eq(engine.detectors.iter().map(|d| &d.name));
        engine.watermark = r.i64()?;
        engine.swept_hour = r.i64()?;
        let s = &mut engine.stats;
        for v in [
            &mut s.events,
            &mut s.late_events,
            &mut s.untracked_account_events,
            &mut s.untracked_credential_events,
            &mut s.alerts,
            &mut s.folded_repeats,
            &mut s.account_partition_changes,
        ] {
            *v = r.u64()?;
        }
        let categories = if format >= 6 { usize::from(r.u8()?) } else { CATEGORIES_BEFORE_6 };
        if categories > s.alerts_by_category.len() {
            return Err(r.invalid("alert category count (written by a newer build?)"));
        }
        for v in &mut s.alerts_by_category[..categories] {
            *v = r.u64()?;
        }
        let n = r.count(150)?;
        engine.accounts.reserve(n);
        for _ in 0..n {
            let key = r.u64()?;
            let baseline = AccountBaseline::load(r, format)?;
            let partition = r.u32()?;
            let bursts_n = r.count(30)?;
            let mut bursts = Vec::with_capacity(if same_detectors { bursts_n } else { 0 });
            for _ in 0..bursts_n {
                let index = r.u16()?;
                let counter = BurstCounter::load(r, format)?;
                if same_detectors {
                    bursts.push((index, counter));
                }
            }
            let excess = if format >= 4 { ExcessCusum::load(r)? } else { ExcessCusum::default() };
            let excess = if same_detectors { excess } else { ExcessCusum::default() };
            // Not per detector: what the account did stays true whatever the detector set.
            let terms = if format >= 6 { AccountTerms::load(r)? } else { AccountTerms::default() };
            let calendar = if format >= 6 { MonthlyCalendar::load(r)? } else { MonthlyCalendar::default() };
            let (catch_up, worked_hour) = match format >= 7 {
                true => (CatchUp::load(r)?.map(Box::new), r.u32()?),
                false => (None, time::hour_index(baseline.last_seen) as u32),
            };
            let mut rates = Vec::new();
            if format >= 8 {
                for _ in 0..r.count(200)? {
                    let index = r.u16()?;
                    let rate = CallRate::load(r)?;
                    if same_detectors {
                        rates.push((index, rate));
                    }
                }
            }
            let (bursts, rates) = (bursts.into_boxed_slice(), rates.into_boxed_slice());
            let state =
                AccountState { baseline, partition, bursts, rates, excess, terms, calendar, catch_up, worked_hour };
            engine.accounts.insert(key, Box::new(state));
        }
        let n = r.count(100)?;
        engine.credentials.reserve(n);
        for _ in 0..n {
            let key = r.u64()?;
            engine.credentials.insert(key, Box::new(CredentialProfile::load(r, format)?));
        }
        let n = r.count(24)?;
        for _ in 0..n {
            let key = r.u64()?;
            let spray = SprayCounter::load(r, format)?;
            if same_detectors {
                engine.sprays.insert(key, spray);
            }
        }
        let n = r.count(28)?;
        for _ in 0..n {
            let (key, last, cooldown, count) = (r.u64()?, r.i64()?, r.i64()?, r.u32()?);
            if same_detectors {
                engine.incidents.insert(key, OpenIncident { last, cooldown, count });
            }
        }
        if format >= 5 {
            // Not per detector: what failed recently stays true whatever the detector set.
            let n = r.count(12)?;
            for _ in 0..n {
                let key = r.u64()?;
                engine.causes.insert(key, CauseWindow::load(r)?);
            }
        }
        Ok(engine)
    }
}
