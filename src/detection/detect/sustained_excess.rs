//! `sustained_excess` (category `data_volume`): a modest excess of bytes, about twice the
//! account's usual volume at this time of its week, held for hours. Too small for
//! `volume_burst`, too short-lived per hour for `sustained_volume`'s ratio, it adds up.
//!
//! A one-sided CUSUM over clock hours of the standardized log ratio
//! z = log2(bytes / usual) / max(σ, 0.5), where *usual* is the account's own hour-of-week bucket
//! (not the largest of it and its neighbours: the neighbour an hour earlier has just learned
//! from the excess itself, and would hide it) and σ its spread of log2 deviations:
//!
//! S_t = max(0, S_{t-1} + min(max(z_t, -cap), cap) - k), alarm when S_t > h, then S = 0.
//!
//! - `k` (the allowance) absorbs what the baseline has not caught up with yet: slow growth
//!   leaves a lag far below one σ, so it never accumulates.
//! - `cap` bounds one hour's contribution: with cap - k < h / 2 a burst, even one spanning two
//!   clock hours, cannot cross h alone (bursts are `volume_burst`'s job).
//! - An hour in which the account did nothing ends a run (S = 0).
//! - The open hour counts as soon as it would cross h with what it moved so far: its total
//!   only grows, so this never fires on less than the closed hour would show.
//!
//! State per account: [`ExcessCusum`], 10 bytes of data. Score is S at the alarm.

use serde_json::json;

use super::{facts, Context, Finding};
use crate::detection::alert::human_bytes;
use crate::detection::definition::SustainedExcessParams;
use crate::detection::time::{self, HOUR};
use crate::state::codec::{CodecError, Reader, Writer};

const MIN_DISPERSION: f64 = 0.5;
/// `pending` holds 16·log2(ratio) of the open hour; this marks an hour with nothing to fold
/// (it raised the alarm, or was never seen).
const SPENT: i8 = i8::MIN;
const LOG2_SCALE: f64 = 16.0;

/// The CUSUM of one account. `hour` is the open clock hour (mod 2^16, far beyond the idle
/// expiry), `pending` what the open hour has shown so far, `run_*` the hours since S left 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExcessCusum {
    sum: f32,
    hour: u16,
    pending: i8,
    run_hours: u8,
    /// Sum over the run's closed hours of 16·log2(ratio).
    run_log2: i16,
}

impl Default for ExcessCusum {
    fn default() -> Self {
        ExcessCusum { sum: 0.0, hour: 0, pending: SPENT, run_hours: 0, run_log2: 0 }
    }
}

/// The statistic's parameters, in units of the account's σ.
#[derive(Clone, Copy, Debug)]
pub struct Cusum {
    pub allowance: f64,
    pub threshold: f64,
    pub cap: f64,
}

impl Cusum {
    /// S after an hour of standardized excess `z`, from `sum`.
    pub fn next(&self, sum: f64, z: f64) -> f64 {
        (sum + z.clamp(-self.cap, self.cap) - self.allowance).max(0.0)
    }
}

impl ExcessCusum {
    /// Fold one closed hour of standardized excess `z` (the pure statistic, without the
    /// bookkeeping of hours); true when S crossed the threshold, which resets it.
    pub fn step(&mut self, cusum: &Cusum, z: f64) -> bool {
        self.sum = cusum.next(f64::from(self.sum), z) as f32;
        if f64::from(self.sum) > cusum.threshold {
            self.reset();
            return true;
        }
        false
    }

    fn reset(&mut self) {
        self.sum = 0.0;
        self.run_hours = 0;
        self.run_log2 = 0;
    }

    pub fn save(&self, w: &mut Writer) {
        w.f32(self.sum);
        w.u16(self.hour);
        w.i8(self.pending);
        w.u8(self.run_hours);
        w.u16(self.run_log2 as u16);
    }

    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        Ok(ExcessCusum {
            sum: r.f32()?,
            hour: r.u16()?,
            pending: r.i8()?,
            run_hours: r.u8()?,
            run_log2: r.u16()? as i16,
        })
    }
}

pub fn check(ctx: &Context, params: &SustainedExcessParams, state: &mut ExcessCusum) -> Option<Finding> {
    if !ctx.warmed_up || ctx.account.weeks_observed() < 1 {
        return None;
    }
    let cusum = params.cusum();
    let sigma = ctx.account.dispersion_log2().max(MIN_DISPERSION);
    let open_hour = time::hour_index(ctx.t) as u16;
    if state.hour != open_hour {
        let next_hour = open_hour.wrapping_sub(state.hour) == 1;
        if state.pending == SPENT || !next_hour {
            state.reset();
        } else {
            let log2_ratio = f64::from(state.pending) / LOG2_SCALE;
            state.sum = cusum.next(f64::from(state.sum), log2_ratio / sigma) as f32;
            if state.sum > 0.0 {
                state.run_hours = state.run_hours.saturating_add(1);
                state.run_log2 = state.run_log2.saturating_add(i16::from(state.pending));
            } else {
                state.reset();
            }
        }
        state.hour = open_hour;
    } else if state.pending == SPENT {
        return None;
    }

    let how = time::hour_of_week(ctx.t);
    let usual = ctx.account.usual_hour(how).bytes;
    let bytes = ctx.account.current_hour().bytes as f64;
    let mut log2_ratio = (bytes / usual.max(1.0)).max(1e-9).log2();
    if bytes < params.min_bytes_per_hour.0 as f64 {
        log2_ratio = log2_ratio.min(0.0);
    }
    // SPENT is i8::MIN, so a real value stays above it.
    state.pending = (log2_ratio * LOG2_SCALE).round().clamp(-127.0, 127.0) as i8;
    let tentative = f64::from(state.sum) + (log2_ratio / sigma).clamp(-cusum.cap, cusum.cap) - cusum.allowance;
    if tentative <= cusum.threshold {
        return None;
    }
    let hours = u32::from(state.run_hours) + 1;
    let mean_ratio = ((f64::from(state.run_log2) / LOG2_SCALE + log2_ratio) / f64::from(hours)).exp2();
    let window_start = time::hour_index(ctx.t) * HOUR - i64::from(state.run_hours) * HOUR;
    state.reset();
    // The hour that fired is spent: the next run starts with the next hour.
    state.pending = SPENT;

    let expected = ctx.account.usual_hour(how);
    let window = ctx.account.sliding_hour(ctx.t);
    let when = time::describe_hour_of_week(how);
    let summary = format!(
        "{} has moved about {mean_ratio:.1}x its usual volume for {hours} hours ({} in the last hour; it usually moves {} an hour on {when}). A modest excess held this long is how a careful export hides: check what it read and where it went.",
        ctx.event.account,
        human_bytes(window.bytes),
        human_bytes(expected.bytes),
    );
    Some(Finding {
        subject: ctx.account_subject(),
        observed: window.bytes.round(),
        expected: expected.bytes.round(),
        score: tentative,
        window_start,
        window_end: ctx.t,
        summary,
        baseline: facts([
            ("measure", json!("bytes")),
            ("expected_bytes_per_hour", json!(expected.bytes.round())),
            ("hour_of_week", json!(when)),
            ("hours_in_excess", json!(hours)),
            ("mean_ratio", json!((mean_ratio * 10.0).round() / 10.0)),
            ("cusum", json!((tentative * 100.0).round() / 100.0)),
            ("threshold", json!(cusum.threshold)),
            ("dispersion_log2", json!((ctx.account.dispersion_log2() * 100.0).round() / 100.0)),
            ("weeks_observed", json!(ctx.account.weeks_observed())),
        ]),
        new: Vec::new(),
        event_ids: Vec::new(),
        sql_filter: ctx.account_filter(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The shipped definition's parameters (detectors/sustained-exfiltration.toml).
    fn shipped() -> Cusum {
        let pack = crate::detection::pack::load().unwrap();
        pack.iter()
            .find_map(|d| match &d.kind {
                crate::detection::definition::DetectorKind::SustainedExcess(p) => Some(p.cusum()),
                _ => None,
            })
            .expect("the pack ships a sustained_excess detector")
    }
    /// Its stated false-alarm budget: alarms per 1000 hours of stationary traffic.
    const BUDGET_PER_1000_HOURS: f64 = 0.1;

    /// splitmix64: a fixed, dependency-free stream for the deterministic checks.
    struct Noise(u64);

    impl Noise {
        fn uniform(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }

        fn normal(&mut self) -> f64 {
            loop {
                let (u, v) = (2.0 * self.uniform() - 1.0, 2.0 * self.uniform() - 1.0);
                let s = u * u + v * v;
                if s > 0.0 && s < 1.0 {
                    return u * (-2.0 * s.ln() / s).sqrt();
                }
            }
        }

        /// Laplace with unit variance: heavier tails than the normal.
        fn laplace(&mut self) -> f64 {
            let u = self.uniform() - 0.5;
            -u.signum() * (1.0 - 2.0 * u.abs()).max(1e-300).ln() / std::f64::consts::SQRT_2
        }
    }

    fn alarms(cusum: &Cusum, hours: impl Iterator<Item = f64>) -> (usize, usize) {
        let mut state = ExcessCusum::default();
        let mut n = 0;
        let alarms = hours.filter(|z| {
            n += 1;
            state.step(cusum, *z)
        });
        let count = alarms.count();
        (count, n)
    }

    fn first_alarm(cusum: &Cusum, hours: &[f64]) -> Option<usize> {
        let mut state = ExcessCusum::default();
        hours.iter().position(|z| state.step(cusum, *z))
    }

    #[test]
    fn stationary_noise_stays_within_the_false_alarm_budget() {
        // Zero-mean noise at the account's own σ (z has unit variance), 2 million hours.
        let mut noise = Noise(42);
        let (normal, n) = alarms(&shipped(), (0..2_000_000).map(|_| noise.normal()));
        let (heavy, _) = alarms(&shipped(), (0..2_000_000).map(|_| noise.laplace()));
        for (name, count) in [("normal", normal), ("laplace", heavy)] {
            let per_1000 = count as f64 * 1000.0 / n as f64;
            assert!(per_1000 < BUDGET_PER_1000_HOURS, "{name}: {per_1000} alarms per 1000 hours");
        }
        // The check can fail: without an allowance the same noise alarms all the time.
        let no_allowance = Cusum { allowance: 0.0, ..shipped() };
        let (count, n) = alarms(&no_allowance, (0..100_000).map(|_| noise.normal()));
        assert!(count as f64 * 1000.0 / n as f64 > BUDGET_PER_1000_HOURS);
    }

    #[test]
    fn twice_the_usual_volume_alarms_in_the_fifth_hour() {
        // σ at its floor of 0.5: 2x is z = 2, one σ above the allowance per hour.
        let hours = [0.1, -0.2, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0];
        assert_eq!(first_alarm(&shipped(), &hours), Some(6));
        // The same excess on a noisier account (σ = 1) is within its own variation.
        assert_eq!(first_alarm(&shipped(), &[1.0; 48]), None);
    }

    #[test]
    fn an_idle_or_spent_hour_starts_over() {
        let mut state = ExcessCusum::default();
        assert!(!state.step(&shipped(), 2.0) && !state.step(&shipped(), 2.0));
        assert_eq!(state.sum, 2.0);
        state.reset();
        assert_eq!((state.sum, state.run_hours), (0.0, 0));
        let mut w = Writer::default();
        let saved = ExcessCusum { sum: 3.25, hour: 513, pending: 16, run_hours: 3, run_log2: -40 };
        saved.save(&mut w);
        assert_eq!(w.buf.len(), 10);
        assert_eq!(ExcessCusum::load(&mut Reader::new(&w.buf)).unwrap(), saved);
    }

    proptest! {
        #[test]
        fn a_larger_excess_never_delays_the_alarm(
            hours in proptest::collection::vec(-6.0f64..6.0, 1..200),
            extra in proptest::collection::vec(0.0f64..3.0, 200),
        ) {
            let larger: Vec<f64> = hours.iter().zip(&extra).map(|(z, e)| z + e).collect();
            let (base, more) = (first_alarm(&shipped(), &hours), first_alarm(&shipped(), &larger));
            if let Some(base) = base {
                prop_assert!(more.is_some_and(|m| m <= base), "{more:?} after {base}");
            }
        }

        #[test]
        fn one_burst_alone_cannot_cross_the_threshold(
            quiet in proptest::collection::vec(-6.0f64..1.0, 0..50),
            burst in proptest::collection::vec(0.0f64..100.0, 1..=2),
        ) {
            // Hours at most at the allowance leave S at 0; then a burst over one or two clock hours.
            let hours: Vec<f64> = quiet.iter().chain(&burst).copied().collect();
            prop_assert_eq!(first_alarm(&shipped(), &hours), None);
        }
    }
}
