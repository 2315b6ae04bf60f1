//! Deterministic randomness for the generator.
//!
//! A xoshiro256** generator seeded through SplitMix64, independent streams derived from
//! `(seed, purpose, key, key)`, and the few transcendental functions that sampling needs
//! (`ln`, `exp`, `cos`) built from IEEE-exact operations only.
//!
//! Why our own `ln`/`exp`/`cos`: `f64::ln` and friends call the platform libm, whose last bit
//! may differ between platforms and versions. `+ - * /`, `sqrt`, `floor` and `round` are
//! exactly specified by IEEE 754, so everything here gives the same bits everywhere, and a
//! seed gives the same events forever. The discriminants of [`Stream`] are part of that
//! promise: never renumber them.

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a random stream is used for. Each unit of generated traffic (an account's business
/// day, a cron run, an incident...) draws from its own stream, so changing one part of the
/// generator does not shift the numbers of every other part.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    World = 1,
    BusinessDay = 2,
    WeeklyExport = 3,
    CronRun = 4,
    NightlyRun = 5,
    AlwaysOnHour = 6,
    IncidentPlan = 7,
    IncidentEvents = 8,
    BenignPlan = 9,
    BenignEvents = 10,
    MonthlyJob = 11,
}

/// xoshiro256** (Blackman and Vigna): small, fast, good statistical quality.
#[derive(Clone, Debug)]
pub(crate) struct Rng {
    state: [u64; 4],
}

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        let mut splitmix = seed;
        let mut next = || {
            splitmix = splitmix.wrapping_add(GOLDEN_GAMMA);
            mix64(splitmix)
        };
        let mut state = [next(), next(), next(), next()];
        // The all-zero state is a fixed point of xoshiro; unreachable in practice, but cheap to rule out.
        if state == [0; 4] {
            state[0] = GOLDEN_GAMMA;
        }
        Rng { state }
    }

    /// An independent stream for one purpose and unit, e.g. (`CronRun`, account 17, hour 493_000).
    pub(crate) fn stream(seed: u64, purpose: Stream, key_a: u64, key_b: i64) -> Self {
        let mut h = mix64(seed ^ GOLDEN_GAMMA);
        h = mix64(h ^ (purpose as u64).wrapping_mul(GOLDEN_GAMMA));
        h = mix64(h ^ mix64(key_a.wrapping_add(0x632B_E59B_D9B4_E019)));
        h = mix64(h ^ mix64((key_b as u64).wrapping_add(0x8CB9_2BA7_2F3D_8DD7)));
        Rng::new(h)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1), 53 bits.
    pub(crate) fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Uniform in [low, high).
    pub(crate) fn uniform_range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Log-uniform in [low, high): for scales spanning orders of magnitude (1 KB .. 5 MB).
    pub(crate) fn log_uniform(&mut self, low: f64, high: f64) -> f64 {
        exp(self.uniform_range(ln(low), ln(high)))
    }

    /// Uniform integer in [low, high], both inclusive; `low` when the range is empty.
    pub(crate) fn range(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        match (high - low).checked_add(1) {
            Some(span) => low + self.below(span),
            None => self.next_u64(),
        }
    }

    /// Uniform integer in [low, high] for signed bounds (millisecond offsets).
    pub(crate) fn range_i64(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            return low;
        }
        let span = high.abs_diff(low);
        low.wrapping_add(self.range(0, span) as i64)
    }

    /// Uniform integer in [0, n), n > 0 (Lemire's multiply-and-reject, unbiased).
    fn below(&mut self, n: u64) -> u64 {
        let mut product = u128::from(self.next_u64()) * u128::from(n);
        let mut low = product as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                product = u128::from(self.next_u64()) * u128::from(n);
                low = product as u64;
            }
        }
        (product >> 64) as u64
    }

    /// Uniform index into a collection of `len` items; 0 when `len` is 0.
    pub(crate) fn index(&mut self, len: usize) -> usize {
        if len == 0 {
            return 0;
        }
        self.below(len as u64) as usize
    }

    pub(crate) fn chance(&mut self, probability: f64) -> bool {
        self.uniform() < probability
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.index(items.len()))
        }
    }

    /// Index drawn with probability proportional to its weight; 0 when all weights are 0.
    pub(crate) fn pick_weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        if total == 0 {
            return 0;
        }
        let mut ticket = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if ticket < u64::from(w) {
                return i;
            }
            ticket -= u64::from(w);
        }
        weights.len() - 1
    }

    /// Fisher-Yates.
    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    /// Standard normal, Box-Muller in Marsaglia's polar form (needs `ln` and `sqrt`, no trig).
    pub(crate) fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * ln(s) / s).sqrt();
            }
        }
    }

    /// Log-normal with the given median and log-space standard deviation.
    pub(crate) fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }

    /// Exponential gap for a Poisson process with `rate` events per unit of time.
    pub(crate) fn exponential(&mut self, rate: f64) -> f64 {
        if rate <= 0.0 {
            return f64::INFINITY;
        }
        // 1 - u is in (0, 1], so ln never sees 0.
        -ln(1.0 - self.uniform()) / rate
    }
}

pub(crate) const LN_2: f64 = std::f64::consts::LN_2;
const TAU: f64 = std::f64::consts::TAU;

/// Natural logarithm from IEEE-exact operations (relative error ~1e-16 for normal inputs).
pub(crate) fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return x;
    }
    let bits = x.to_bits();
    let biased_exponent = ((bits >> 52) & 0x7ff) as i64;
    if biased_exponent == 0 {
        // Subnormal: scale into the normal range first.
        return ln(x * 18_014_398_509_481_984.0) - 54.0 * LN_2; // 2^54
    }
    let mut exponent = biased_exponent - 1023;
    let mut mantissa = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52)); // [1, 2)
    if mantissa > std::f64::consts::SQRT_2 {
        mantissa *= 0.5;
        exponent += 1;
    }
    // ln(m) = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.172: the odd series converges fast.
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 24.0 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    2.0 * sum + exponent as f64 * LN_2
}

/// 2^k as an exact power of two for k in the normal range.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// Exponential function from IEEE-exact operations (relative error ~1e-15).
pub(crate) fn exp(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    if x < -708.0 {
        return 0.0;
    }
    let k = (x / LN_2).round();
    let r = x - k * LN_2; // |r| <= ln2/2
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut i = 1.0;
    while i < 15.0 {
        term *= r / i;
        sum += term;
        i += 1.0;
    }
    sum * pow2(k as i64)
}

/// Cosine from IEEE-exact operations (absolute error ~1e-12: plenty for a daily rate curve).
pub(crate) fn cos(x: f64) -> f64 {
    if !x.is_finite() {
        return f64::NAN;
    }
    let reduced = x - TAU * (x / TAU).round(); // [-pi, pi]
    let r2 = reduced * reduced;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 0.0;
    while n < 26.0 {
        term *= -r2 / ((n + 1.0) * (n + 2.0));
        sum += term;
        n += 2.0;
    }
    sum
}

/// base^exponent for base > 0.
pub(crate) fn powf(base: f64, exponent: f64) -> f64 {
    exp(exponent * ln(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_streams_differ() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let first: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let second: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        assert_eq!(first, second);
        let mut c = Rng::stream(7, Stream::CronRun, 1, 2);
        let mut d = Rng::stream(7, Stream::CronRun, 1, 3);
        let mut e = Rng::stream(7, Stream::NightlyRun, 1, 2);
        let (x, y, z) = (c.next_u64(), d.next_u64(), e.next_u64());
        assert!(x != y && y != z && x != z);
    }

    #[test]
    fn sequences_are_pinned() {
        // Pins the exact bits: if this changes, every generated dataset changes.
        let mut rng = Rng::new(42);
        let values: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(values, vec![1546998764402558742, 6990951692964543102, 12544586762248559009]);
        assert_eq!(Rng::stream(1, Stream::World, 0, 0).next_u64(), 16977605506344361899);
        let mut sampler = Rng::new(7);
        let samples = [sampler.normal(), sampler.exponential(2.0), sampler.lognormal(1000.0, 0.5)];
        assert_eq!(samples.map(f64::to_bits), [4606861418906446347, 4606417958915284585, 4648873565504042772]);
    }

    #[test]
    fn math_matches_std_closely() {
        let mut x = 1e-300;
        while x < 1e300 {
            let ours = ln(x);
            let theirs = x.ln();
            assert!((ours - theirs).abs() <= 1e-14 * theirs.abs().max(1.0), "ln({x}) = {ours} vs {theirs}");
            x *= 1.37;
        }
        let mut y = -700.0;
        while y < 700.0 {
            let ours = exp(y);
            let theirs = y.exp();
            assert!((ours - theirs).abs() <= 1e-13 * theirs, "exp({y}) = {ours} vs {theirs}");
            y += 0.731;
        }
        let mut z = -50.0;
        while z < 50.0 {
            assert!((cos(z) - z.cos()).abs() < 1e-10, "cos({z})");
            z += 0.0917;
        }
        assert!(ln(0.0).is_infinite() && ln(-1.0).is_nan());
    }

    #[test]
    fn samplers_have_the_right_moments() {
        let mut rng = Rng::new(3);
        let n = 200_000;
        let normals: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let mean = normals.iter().sum::<f64>() / n as f64;
        let var = normals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.01 && (var - 1.0).abs() < 0.02, "mean {mean} var {var}");
        let gaps = (0..n).map(|_| rng.exponential(2.0)).sum::<f64>() / n as f64;
        assert!((gaps - 0.5).abs() < 0.01, "mean gap {gaps}");
        let mut counts = [0u32; 3];
        for _ in 0..30_000 {
            counts[rng.pick_weighted(&[1, 0, 2])] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((counts[2] as f64 / counts[0] as f64 - 2.0).abs() < 0.15, "{counts:?}");
        for _ in 0..1000 {
            let v = rng.range(5, 9);
            assert!((5..=9).contains(&v));
            let w = rng.range_i64(-3, 3);
            assert!((-3..=3).contains(&w));
        }
        assert_eq!(rng.range(4, 4), 4);
        assert_eq!(rng.pick::<u8>(&[]), None);
    }
}
