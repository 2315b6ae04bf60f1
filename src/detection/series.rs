//! The volume model on a bare time series: `auditwatch series` scores `timestamp,value` rows
//! (the Numenta Anomaly Benchmark's form) with the statistics the volume detectors use, so the
//! model can be judged on public data apart from audit events.
//!
//! Each value is counted, like an event's bytes, into an [`AccountBaseline`] (as thousandths,
//! so fractional values keep their resolution). A row is scored on the sliding hour ending at
//! it against the usual active hour at this hour of the week, *before* the row is learned:
//!
//! - z = log2(observed / expected) / max(σ, 0.5), σ the series' own spread of log2 deviations;
//! - score = erf(z / √2) for z > 0 (the share of a normal distribution within ±z), else 0.
//!
//! So the score is in [0, 1], 0 at or below the usual level and rising with the excess: 0.68
//! at one σ, 0.95 at two. Only excess scores (the detectors look for more data, not less).
//! Until a whole calendar week (Monday 00:00 UTC) of data has closed every score is 0.

use crate::detection::baseline::AccountBaseline;
use crate::detection::time::{self, Millis};

/// Values are counted as thousandths of a unit.
pub const VALUE_SCALE: f64 = 1000.0;
/// Below this spread every series is treated as this noisy (as `data_volume` does).
pub const MIN_DISPERSION_LOG2: f64 = 0.5;

/// The model of one series; rows must come in time order.
#[derive(Default)]
pub struct SeriesModel {
    baseline: Option<AccountBaseline>,
}

impl SeriesModel {
    /// Score the value at `t` against what came before, then learn it.
    pub fn score(&mut self, t: Millis, value: f64) -> f64 {
        let baseline = self.baseline.get_or_insert_with(|| AccountBaseline::new(t));
        baseline.advance(t);
        baseline.count((value.max(0.0) * VALUE_SCALE).round() as u64, 0, false, false);
        let score = if baseline.weeks_observed() >= 1 {
            let expected = baseline.expected_hour(time::hour_of_week(t));
            excess_score(baseline.sliding_hour(t).bytes, expected.bytes, baseline.dispersion_log2())
        } else {
            0.0
        };
        baseline.learn_activity(t);
        score
    }
}

/// erf(z/√2) of the one-sided excess z = log2(observed/expected) / max(σ, 0.5), 0 if z ≤ 0.
pub fn excess_score(observed: f64, expected: f64, dispersion_log2: f64) -> f64 {
    let ratio = observed.max(0.0) / expected.max(1.0);
    if ratio <= 1.0 {
        return 0.0;
    }
    let z = ratio.log2() / dispersion_log2.max(MIN_DISPERSION_LOG2);
    statrs::function::erf::erf(z / std::f64::consts::SQRT_2).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::{HOUR, MINUTE, WEEK};
    use proptest::prelude::*;

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn one_sigma_and_two_sigma_read_as_the_normal_shares() {
        // σ = 0.5: a ratio of √2 is one σ, a ratio of 2 is two.
        assert!((excess_score(2f64.sqrt() * 100.0, 100.0, 0.5) - 0.6827).abs() < 1e-3);
        assert!((excess_score(200.0, 100.0, 0.5) - 0.9545).abs() < 1e-3);
        assert_eq!(excess_score(50.0, 100.0, 0.5), 0.0, "less than usual is not an excess");
        assert_eq!(excess_score(100.0, 100.0, 0.5), 0.0);
    }

    #[test]
    fn a_spike_scores_high_after_warm_up_and_the_daily_shape_low() {
        let mut model = SeriesModel::default();
        let mut scores = Vec::new();
        // Three weeks of 5-minute rows with a daily shape, then a spike of ten times.
        for step in 0..3 * WEEK / (5 * MINUTE) {
            let t = MONDAY + step * 5 * MINUTE;
            let hour = (t / HOUR) % 24;
            let value = if (8..18).contains(&hour) { 40.0 } else { 10.0 };
            scores.push((t, model.score(t, value)));
        }
        let spike_at = MONDAY + 3 * WEEK + 10 * HOUR;
        let spike = model.score(spike_at, 4000.0);
        assert!(scores.iter().filter(|(t, _)| *t < MONDAY + WEEK).all(|(_, s)| *s == 0.0), "warm-up");
        let periodic = scores.iter().filter(|(t, _)| *t >= MONDAY + 2 * WEEK).map(|(_, s)| *s).fold(0.0, f64::max);
        assert!(periodic < 0.5, "periodic part scored {periodic}");
        assert!(spike > 0.99 && spike > periodic, "spike {spike}");
    }

    proptest! {
        #[test]
        fn score_is_a_share_and_monotone_in_the_excess(
            expected in 1.0f64..1e9,
            ratio in 0.0f64..1000.0,
            more in 0.0f64..1000.0,
            sigma in 0.0f64..3.0,
        ) {
            let low = excess_score(expected * ratio, expected, sigma);
            let high = excess_score(expected * (ratio + more), expected, sigma);
            prop_assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high));
            prop_assert!(high >= low, "{high} < {low}");
            // A noisier series finds the same excess less surprising.
            prop_assert!(excess_score(expected * ratio, expected, sigma + 0.5) <= low);
        }
    }
}
