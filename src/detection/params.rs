//! The parameters of each detector type, as a definition's `[params]` table writes them
//! (`deny_unknown_fields`: a misspelt parameter is an error). `definition` checks the values
//! that serde cannot (ranges, patterns) when it builds a [`DetectorKind`](super::definition::DetectorKind).

use serde::Deserialize;

use crate::detection::time::Duration;
use crate::input::event::Outcome;

/// Byte sizes written as `"20MB"`, `"1.5GiB"` or a plain integer.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct ByteSize(pub u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => parse_byte_size(&s).map(ByteSize).map_err(serde::de::Error::custom),
        }
    }
}

fn parse_byte_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let number: f64 = number.parse().map_err(|_| format!("`{s}` is not a size; write e.g. \"20MB\""))?;
    let scale = match unit.trim() {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("`{s}`: unknown unit `{other}` (B, KB, MB, GB, TB, KiB, MiB, GiB)")),
    };
    Ok((number * scale) as u64)
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureBurstParams {
    pub outcome: Outcome,
    pub window: Duration,
    pub min_count: u32,
    pub max_p_value: f64,
    /// Longer windows judged too (whole hours, up to 6h), each with its own floor, so a long
    /// run at a low rate is caught like a short burst.
    #[serde(default)]
    pub longer_windows: Vec<LongerWindow>,
}

/// One more window of a `failure_burst` detector: `{ window = "1h", min_count = 30 }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LongerWindow {
    pub window: Duration,
    pub min_count: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSprayParams {
    pub window: Duration,
    pub min_accounts: u32,
    /// A slow spray: distinct accounts over this longer window too, against a floor of
    /// `long_min_accounts` and of 4× the accounts the source usually fails against in it.
    pub long_window: Option<Duration>,
    pub long_min_accounts: Option<u32>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeBurstParams {
    pub min_ratio: f64,
    pub min_z: f64,
    pub min_bytes: ByteSize,
    pub min_records: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SustainedVolumeParams {
    pub hours: u8,
    pub min_ratio: f64,
    pub min_z: f64,
    pub min_bytes_per_hour: ByteSize,
    pub min_records_per_hour: u64,
}

/// A one-sided CUSUM of the hourly excess over the account's usual hour; `allowance` (k),
/// `threshold` (h) and `hour_cap` (cap) are in units of the account's σ.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SustainedExcessParams {
    pub allowance: f64,
    pub threshold: f64,
    pub hour_cap: f64,
    pub min_bytes_per_hour: ByteSize,
}

impl SustainedExcessParams {
    pub fn cusum(&self) -> crate::detection::detect::sustained_excess::Cusum {
        crate::detection::detect::sustained_excess::Cusum {
            allowance: self.allowance,
            threshold: self.threshold,
            cap: self.hour_cap,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffHoursParams {
    pub max_presence: f64,
    pub min_events: u32,
    #[serde(default)]
    pub schedules: Vec<crate::detection::schedule::ScheduleConfig>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokedCredentialParams {
    pub rotation_grace: Duration,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignCredentialParams {
    pub learn_users_for: Duration,
    /// Distinct hours of use (decaying by half each week unused) that make an account an
    /// established user of a key.
    #[serde(default = "default_min_user_hours")]
    pub min_user_hours: u8,
}

fn default_min_user_hours() -> u8 {
    crate::detection::baseline::DEFAULT_MIN_USER_HOURS
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewNetworkParams {
    pub min_uses: u32,
    pub min_age: Duration,
    pub require_new_asn_or_country: bool,
    /// With `require_new_asn_or_country`, an event that has neither ASN nor country is judged
    /// by network distance instead: it fires on a /16 (IPv6: /48) the key never used.
    #[serde(default = "default_true")]
    pub network_distance_fallback: bool,
}

/// `session_origin`: a temporary credential used away from where its session began.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionOriginParams {
    /// With provider ranges loaded, an instance role's key used from a public address outside
    /// every provider's ranges fires, even on the first use seen.
    #[serde(default = "default_true")]
    pub instance_outside_provider: bool,
}

/// `mfa_omitted`: a sign-in without MFA by an account that always used it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaOmittedParams {
    /// The sign-in actions, patterns as in `select.actions`.
    #[serde(default = "default_sign_in_actions")]
    pub actions: Vec<String>,
}

fn default_sign_in_actions() -> Vec<String> {
    vec!["auth.login".to_string()]
}

fn default_true() -> bool {
    true
}

/// What a `rare_action` detector counts as new for an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NewTerm {
    /// The exact action (`cloudtrail.StopLogging`).
    Action,
    /// The class that matched (`cloudtrail.Stop*`): another action of a class it used is not new.
    Class,
    /// The service, the action up to its first `.` (`cloudtrail`).
    Service,
}

impl NewTerm {
    pub fn as_str(self) -> &'static str {
        match self {
            NewTerm::Action => "action",
            NewTerm::Class => "class",
            NewTerm::Service => "service",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RareActionParams {
    /// Action classes, patterns as in `select.actions` (exact, or a prefix ending in `*`): the
    /// calls judged and remembered; the first that matches is the call's class.
    pub classes: Vec<String>,
    /// What counts as new: the exact action, its class, or its service.
    pub term: NewTerm,
    /// Events the account must have had before it may fire (besides the top-level `warmup`).
    pub min_events: u64,
    /// Whether a denied call counts too, in the history and as new: for calls whose attempt
    /// alone is the signal (a key that never launched an instance trying to launch GPUs).
    #[serde(default)]
    pub attempts: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRateParams {
    /// The action class, patterns as in `select.actions`: the calls counted.
    pub classes: Vec<String>,
    /// The sliding window (at most 1h: what is usual is learned per clock hour).
    pub window: Duration,
    /// Fewest calls in the window that may fire.
    pub min_calls: u32,
    /// Fewest times the usual count (at least 1) that may fire.
    pub min_ratio: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialCreatedForOtherParams {
    /// Calls that give the principal named in `target.resource` a credential
    /// (`iam.CreateLoginProfile`); `credential.create` of a key owned by another principal
    /// always counts.
    #[serde(default)]
    pub target_actions: Vec<String>,
    /// Distinct other principals the account must have created credentials for before, for it
    /// to be what the account usually does.
    pub usual_after: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("20MB"), Ok(20_000_000));
        assert_eq!(parse_byte_size("1.5GiB"), Ok(1_610_612_736));
        assert!(parse_byte_size("5 parsecs").is_err());
    }
}
