//! The synthetic world: accounts with their behaviour profile, credentials and home networks,
//! and the lasting changes benign behaviours and incidents put on them (key rotations, new
//! hosts, holidays, growth).
//!
//! Everything here is decided once, up front, from the seed; traffic generation only reads it.

use std::collections::BTreeSet;

use super::catalog::{
    self, ActionSpec, ProfileKind, Region, SystemCatalog, EXTERNAL_PROVIDERS, NAME_STEMS, PROFILE_MIX, REGIONS,
    SYSTEMS, USER_AGENTS,
};
use super::clock::Zone;
use super::rng::{self, Rng, Stream};
use super::GenOptions;
use crate::detection::time::{DAY, MINUTE};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CredentialType {
    ApiKey,
    OauthToken,
}

impl CredentialType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CredentialType::ApiKey => "api_key",
            CredentialType::OauthToken => "oauth_token",
        }
    }

    /// How a client holding this credential authenticates.
    pub(crate) fn auth_action(self) -> &'static str {
        match self {
            CredentialType::ApiKey => catalog::AUTH_LOGIN,
            CredentialType::OauthToken => catalog::AUTH_TOKEN,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Credential {
    pub(crate) id: String,
    pub(crate) kind: CredentialType,
    /// Account the credential was issued to.
    pub(crate) owner: usize,
}

#[derive(Debug)]
pub(crate) struct Network {
    pub(crate) prefix: [u8; 3],
    pub(crate) asn: u32,
    pub(crate) country: &'static str,
}

impl Network {
    pub(crate) fn ip(&self, host: u8) -> String {
        format!("{}.{}.{}.{}", self.prefix[0], self.prefix[1], self.prefix[2], host)
    }
}

/// One of an account's home /24s and the hosts it usually calls from.
#[derive(Debug)]
pub(crate) struct HomeNetwork {
    pub(crate) network: usize,
    pub(crate) hosts: Vec<u8>,
}

/// A host the account starts using inside a home /24 from `since_ms` on (benign).
#[derive(Debug)]
pub(crate) struct ExtraHost {
    pub(crate) since_ms: i64,
    pub(crate) slot: usize,
    pub(crate) host: u8,
}

#[derive(Debug)]
pub(crate) enum Schedule {
    /// Weekdays ~09:00-17:30 local, lunch dip, Poisson arrivals; optionally a Monday export.
    BusinessHours { mean_gap_minutes: f64, weekly_export_factor: Option<f64> },
    /// Every hour at `minute`, a burst of events within about a minute.
    HourlyCron { minute: i64, burst_events: f64 },
    /// Every night at a fixed local time, a large batch.
    NightlyJob { local_start_ms: i64, batch_events: f64, duration_minutes: f64 },
    /// Around the clock, rate following a smooth daily curve (events per minute).
    AlwaysOn { night_rate: f64, peak_rate: f64, peak_hour: f64, token_minute: i64 },
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum RotationEnding {
    /// The old key is revoked about an hour after its last use.
    Revoke { at_ms: i64 },
    /// The old key is marked rotated and fades out over the following minutes.
    Rotate { at_ms: i64 },
    /// Hard set: the old key is marked rotated, fades out over hours while the next rotation
    /// has already begun, and is revoked after its last use.
    Overlap { rotated_ms: i64, revoked_ms: i64 },
}

#[derive(Debug)]
pub(crate) struct Rotation {
    pub(crate) old: usize,
    pub(crate) new: usize,
    pub(crate) created_ms: i64,
    /// Traffic starts moving to the new key here...
    pub(crate) switch_ms: i64,
    /// ...and has fully moved here (== `switch_ms` for a hard switch).
    pub(crate) fade_end_ms: i64,
    pub(crate) ending: RotationEnding,
}

#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) name: String,
    pub(crate) tenant: &'static str,
    pub(crate) profile: ProfileKind,
    pub(crate) schedule: Schedule,
    pub(crate) zone: &'static Zone,
    pub(crate) system: &'static SystemCatalog,
    action_weights: Vec<u32>,
    pub(crate) user_agent: &'static str,
    /// Whether this account's log source fills `credential.owner`.
    pub(crate) logs_owner: bool,
    pub(crate) credential_type: CredentialType,
    pub(crate) initial_credential: usize,
    /// Sorted by time.
    pub(crate) rotations: Vec<Rotation>,
    pub(crate) networks: Vec<HomeNetwork>,
    network_weights: Vec<u32>,
    pub(crate) extra_hosts: Vec<ExtraHost>,
    pub(crate) median_bytes: f64,
    pub(crate) bytes_sigma: f64,
    pub(crate) record_size: f64,
    /// Daily growth of rate and volume (0.02 = 2%/day), 0 for most accounts.
    pub(crate) growth_per_day: f64,
    /// Idle local days, inclusive ranges of local day numbers.
    pub(crate) holidays: Vec<(i64, i64)>,
    /// A monthly export (hard set).
    pub(crate) monthly_job: Option<MonthlyJob>,
    /// The account whose key this one presents from the start (hard set: a shared CI key).
    pub(crate) shares_key_of: Option<usize>,
    /// The backlog worked off on the first working day after a holiday (hard set).
    pub(crate) catch_up: Option<CatchUp>,
}

/// The first working hours after a holiday run at `factor` times the usual rate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CatchUp {
    pub(crate) factor: f64,
    pub(crate) duration_ms: i64,
}

/// An export on the first or the last local day of every month.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MonthlyJob {
    pub(crate) last_day: bool,
    pub(crate) local_start_ms: i64,
    /// Times the account's usual hourly volume.
    pub(crate) factor: f64,
}

impl Account {
    pub(crate) fn is_business(&self) -> bool {
        matches!(self.schedule, Schedule::BusinessHours { .. })
    }

    pub(crate) fn is_holiday(&self, local_day: i64) -> bool {
        self.holidays.iter().any(|&(first, last)| (first..=last).contains(&local_day))
    }

    /// The first working day after each holiday.
    pub(crate) fn holiday_returns(&self) -> impl Iterator<Item = i64> + '_ {
        self.holidays.iter().map(|&(_, last)| {
            let mut day = last + 1;
            while super::clock::is_weekend(day) {
                day += 1;
            }
            day
        })
    }

    pub(crate) fn countries<'w>(&self, world: &'w World) -> Vec<&'w str> {
        self.networks.iter().map(|n| world.networks[n.network].country).collect()
    }

    pub(crate) fn asns(&self, world: &World) -> Vec<u32> {
        self.networks.iter().map(|n| world.networks[n.network].asn).collect()
    }

    /// Expected size of an ordinary event.
    pub(crate) fn mean_event_bytes(&self) -> f64 {
        self.median_bytes * rng::exp(self.bytes_sigma * self.bytes_sigma / 2.0) * self.system.mean_size_factor()
    }

    fn always_on_rate(&self, local_hour: f64) -> f64 {
        match self.schedule {
            Schedule::AlwaysOn { night_rate, peak_rate, peak_hour, .. } => {
                let phase = std::f64::consts::TAU * (local_hour - peak_hour) / 24.0;
                night_rate + (peak_rate - night_rate) * (1.0 + rng::cos(phase)) / 2.0
            }
            _ => 0.0,
        }
    }

    /// Ordinary events per minute at this local hour when active (before growth).
    pub(crate) fn base_rate_per_minute(&self, local_hour: f64) -> f64 {
        match self.schedule {
            Schedule::BusinessHours { mean_gap_minutes, .. } => 1.0 / mean_gap_minutes,
            Schedule::HourlyCron { burst_events, .. } => burst_events / 60.0,
            Schedule::NightlyJob { batch_events, duration_minutes, .. } => batch_events / duration_minutes,
            Schedule::AlwaysOn { .. } => self.always_on_rate(local_hour),
        }
    }

    pub(crate) fn pick_action(&self, rng: &mut Rng) -> &'static ActionSpec {
        let actions = self.system.actions;
        actions.get(rng.pick_weighted(&self.action_weights)).unwrap_or(&actions[0])
    }

    pub(crate) fn sample_bytes(&self, size: f64, rng: &mut Rng) -> u64 {
        rng.lognormal(self.median_bytes * size, self.bytes_sigma).round().max(1.0) as u64
    }

    pub(crate) fn records_for(&self, bytes: u64, rng: &mut Rng) -> u64 {
        let per_record = self.record_size * rng.uniform_range(0.8, 1.25);
        ((bytes as f64 / per_record).round() as u64).max(1)
    }

    /// The key the account's own traffic presents at `time_ms`.
    pub(crate) fn credential_at(&self, time_ms: i64, rng: &mut Rng) -> usize {
        let mut current = self.initial_credential;
        for rotation in &self.rotations {
            if time_ms < rotation.switch_ms {
                break;
            }
            if time_ms < rotation.fade_end_ms {
                // Workers pick up the new key one by one: the old one fades out linearly. A
                // worker that moved may already be on the next rotation's key.
                let moved = (time_ms - rotation.switch_ms) as f64 / (rotation.fade_end_ms - rotation.switch_ms) as f64;
                if !rng.chance(moved) {
                    return rotation.old;
                }
            }
            current = rotation.new;
        }
        current
    }

    /// (network index, host) the account calls from at `time_ms`.
    pub(crate) fn pick_source(&self, time_ms: i64, rng: &mut Rng) -> (usize, u8) {
        let slot = rng.pick_weighted(&self.network_weights);
        let Some(home) = self.networks.get(slot) else {
            return (0, 1);
        };
        let extras = self.extra_hosts.iter().filter(|e| e.slot == slot && e.since_ms <= time_ms);
        let choice = rng.index(home.hosts.len() + extras.clone().count());
        match home.hosts.get(choice) {
            Some(&host) => (home.network, host),
            None => (home.network, extras.map(|e| e.host).nth(choice - home.hosts.len()).unwrap_or(1)),
        }
    }
}

#[derive(Debug)]
pub(crate) struct World {
    pub(crate) seed: u64,
    pub(crate) start_ms: i64,
    pub(crate) end_ms: i64,
    pub(crate) warmup_end_ms: i64,
    pub(crate) days: u32,
    pub(crate) warmup_days: u32,
    pub(crate) accounts: Vec<Account>,
    pub(crate) networks: Vec<Network>,
    /// Indices into `networks` that no account calls home.
    pub(crate) external_networks: Vec<usize>,
    pub(crate) credentials: Vec<Credential>,
    credential_ids: BTreeSet<String>,
}

/// Home /24s generated per region; accounts of a region share them, as they share NAT gateways.
const NETWORKS_PER_REGION: usize = 6;
const NETWORKS_PER_EXTERNAL_PROVIDER: usize = 3;

/// Splits `total` by percentage shares (largest remainder), so a run has the intended mix
/// rather than whatever independent draws give.
fn apportion<T: Copy>(total: usize, shares: &[(T, u32)]) -> Vec<T> {
    let share_sum: u64 = shares.iter().map(|s| u64::from(s.1)).sum::<u64>().max(1);
    let mut counts: Vec<(usize, u64, usize)> = shares
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let exact = total as u64 * u64::from(s.1);
            (i, exact % share_sum, (exact / share_sum) as usize)
        })
        .collect();
    let assigned: usize = counts.iter().map(|c| c.2).sum();
    let mut by_remainder: Vec<usize> = (0..counts.len()).collect();
    by_remainder.sort_by_key(|&i| (std::cmp::Reverse(counts[i].1), i));
    for &i in by_remainder.iter().take(total.saturating_sub(assigned)) {
        counts[i].2 += 1;
    }
    counts.iter().flat_map(|&(i, _, n)| std::iter::repeat_n(shares[i].0, n)).collect()
}

impl World {
    pub(crate) fn build(opts: &GenOptions) -> World {
        let mut rng = Rng::stream(opts.seed, Stream::World, 0, 0);
        let start_ms = opts.start.timestamp_millis();
        let mut world = World {
            seed: opts.seed,
            start_ms,
            end_ms: start_ms.saturating_add(i64::from(opts.days) * DAY),
            warmup_end_ms: start_ms.saturating_add(i64::from(opts.warmup_days.min(opts.days)) * DAY),
            days: opts.days,
            warmup_days: opts.warmup_days.min(opts.days),
            accounts: Vec::with_capacity(opts.accounts),
            networks: Vec::new(),
            external_networks: Vec::new(),
            credentials: Vec::with_capacity(opts.accounts * 2),
            credential_ids: BTreeSet::new(),
        };

        let mut used_prefixes = BTreeSet::new();
        let mut unique_prefix = |rng: &mut Rng, first_octets: &[u8]| loop {
            let prefix = [*rng.pick(first_octets).unwrap_or(&198), rng.range(0, 255) as u8, rng.range(0, 255) as u8];
            if used_prefixes.insert(prefix) {
                return prefix;
            }
        };
        let mut region_networks: Vec<Vec<usize>> = Vec::with_capacity(REGIONS.len());
        for region in REGIONS {
            let weights: Vec<u32> = region.providers.iter().map(|p| p.2).collect();
            let mut pool = Vec::with_capacity(NETWORKS_PER_REGION);
            for _ in 0..NETWORKS_PER_REGION {
                let (asn, octets, _) = region.providers[rng.pick_weighted(&weights)];
                let prefix = unique_prefix(&mut rng, octets);
                pool.push(world.networks.len());
                world.networks.push(Network { prefix, asn, country: region.country });
            }
            region_networks.push(pool);
        }
        for &(asn, country, octets) in EXTERNAL_PROVIDERS {
            for _ in 0..NETWORKS_PER_EXTERNAL_PROVIDER {
                let prefix = unique_prefix(&mut rng, octets);
                world.external_networks.push(world.networks.len());
                world.networks.push(Network { prefix, asn, country });
            }
        }

        let mut profiles = apportion(opts.accounts, PROFILE_MIX);
        rng.shuffle(&mut profiles);
        let small_tenant = (opts.accounts * catalog::TENANT_SMALL_PERCENT + 50) / 100;
        let mut in_small_tenant: Vec<bool> = (0..opts.accounts).map(|i| i < small_tenant).collect();
        rng.shuffle(&mut in_small_tenant);
        let region_weights: Vec<u32> = REGIONS.iter().map(|r| r.weight).collect();

        for (index, (&profile, &small)) in profiles.iter().zip(&in_small_tenant).enumerate() {
            let region_index = rng.pick_weighted(&region_weights);
            let account = world.new_account(
                index,
                profile,
                small,
                &REGIONS[region_index],
                &region_networks[region_index],
                &mut rng,
            );
            world.accounts.push(account);
        }
        world
    }

    fn new_account(
        &mut self,
        index: usize,
        profile: ProfileKind,
        small_tenant: bool,
        region: &'static Region,
        region_networks: &[usize],
        rng: &mut Rng,
    ) -> Account {
        let stems: Vec<_> = NAME_STEMS.iter().filter(|s| s.profiles.contains(&profile)).collect();
        let stem = stems.get(rng.index(stems.len())).copied().unwrap_or(&NAME_STEMS[0]);
        let system = &SYSTEMS[stem.system];
        let user_agent = if stem.stem.starts_with("zap-") {
            catalog::ZAPIER_USER_AGENT
        } else {
            USER_AGENTS[rng.index(USER_AGENTS.len())]
        };

        let mut home_slots: Vec<usize> = region_networks.to_vec();
        rng.shuffle(&mut home_slots);
        home_slots.truncate(if rng.chance(0.4) { 2 } else { 1 });
        let networks: Vec<HomeNetwork> = home_slots
            .into_iter()
            .map(|network| {
                let mut hosts = Vec::new();
                let wanted = rng.range(1, 4) as usize;
                while hosts.len() < wanted {
                    let host = rng.range(2, 254) as u8;
                    if !hosts.contains(&host) {
                        hosts.push(host);
                    }
                }
                HomeNetwork { network, hosts }
            })
            .collect();
        let network_weights = if networks.len() == 1 { vec![1] } else { vec![4, 1] };

        let (schedule, median_low, median_high) = match profile {
            ProfileKind::BusinessHours | ProfileKind::WeeklyReport => (
                Schedule::BusinessHours {
                    mean_gap_minutes: rng.uniform_range(1.0, 5.0),
                    weekly_export_factor: (profile == ProfileKind::WeeklyReport).then(|| rng.uniform_range(10.0, 50.0)),
                },
                1e3,
                2e5,
            ),
            ProfileKind::HourlyCron => (
                Schedule::HourlyCron { minute: rng.range(0, 59) as i64, burst_events: rng.uniform_range(5.0, 30.0) },
                2e3,
                5e5,
            ),
            ProfileKind::NightlyJob => (
                Schedule::NightlyJob {
                    local_start_ms: rng.range(60, 240) as i64 * MINUTE,
                    batch_events: rng.uniform_range(50.0, 500.0),
                    duration_minutes: rng.uniform_range(5.0, 30.0),
                },
                1e5,
                2e6,
            ),
            ProfileKind::AlwaysOn => (
                Schedule::AlwaysOn {
                    night_rate: rng.uniform_range(0.1, 0.3),
                    peak_rate: rng.uniform_range(0.8, 3.0),
                    peak_hour: rng.uniform_range(10.0, 16.0),
                    token_minute: rng.range(0, 59) as i64,
                },
                1e3,
                5e4,
            ),
        };
        let credential_type = if rng.chance(0.55) { CredentialType::ApiKey } else { CredentialType::OauthToken };
        let initial_credential = self.new_credential(credential_type, index, rng);
        Account {
            name: format!("{}-{:03}", stem.stem, index + 1),
            tenant: if small_tenant { catalog::TENANT_SMALL } else { catalog::TENANT_MAIN },
            profile,
            schedule,
            zone: region.zone,
            system,
            action_weights: system.weights().collect(),
            user_agent,
            logs_owner: rng.chance(0.7),
            credential_type,
            initial_credential,
            rotations: Vec::new(),
            networks,
            network_weights,
            extra_hosts: Vec::new(),
            median_bytes: rng.log_uniform(median_low, median_high),
            bytes_sigma: rng.uniform_range(0.5, 1.0),
            record_size: rng.uniform_range(200.0, 2000.0),
            growth_per_day: 0.0,
            holidays: Vec::new(),
            monthly_job: None,
            shares_key_of: None,
            catch_up: None,
        }
    }

    /// Issues a key: `AKIA` + 16 base32 characters, or `tok_` + 24 alphanumerics.
    pub(crate) fn new_credential(&mut self, kind: CredentialType, owner: usize, rng: &mut Rng) -> usize {
        const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let id = loop {
            let (prefix, alphabet, length) = match kind {
                CredentialType::ApiKey => ("AKIA", BASE32, 16),
                CredentialType::OauthToken => ("tok_", ALNUM, 24),
            };
            let mut id = String::with_capacity(prefix.len() + length);
            id.push_str(prefix);
            for _ in 0..length {
                id.push(char::from(alphabet[rng.index(alphabet.len())]));
            }
            if self.credential_ids.insert(id.clone()) {
                break id;
            }
        };
        self.credentials.push(Credential { id, kind, owner });
        self.credentials.len() - 1
    }

    pub(crate) fn day_start(&self, day: u32) -> i64 {
        self.start_ms + i64::from(day) * DAY
    }

    /// Index of the UTC day of the run that contains `time_ms` (0 before the start).
    pub(crate) fn day_index(&self, time_ms: i64) -> u32 {
        u32::try_from((time_ms - self.start_ms).max(0) / DAY).unwrap_or(u32::MAX)
    }

    /// Days after warm-up, where incidents live.
    pub(crate) fn evaluated_days(&self) -> std::ops::Range<u32> {
        self.warmup_days..self.days
    }

    pub(crate) fn growth(&self, account: &Account, time_ms: i64) -> f64 {
        if account.growth_per_day == 0.0 {
            return 1.0;
        }
        rng::powf(1.0 + account.growth_per_day, (time_ms - self.start_ms) as f64 / DAY as f64)
    }

    /// Bytes an account usually moves in an hour of activity around `time_ms`.
    pub(crate) fn typical_hourly_bytes(&self, account: usize, time_ms: i64) -> f64 {
        let acct = &self.accounts[account];
        let per_hour = match acct.schedule {
            Schedule::HourlyCron { burst_events, .. } => burst_events,
            _ => 60.0 * acct.base_rate_per_minute(acct.zone.local_hour(time_ms)),
        };
        per_hour * self.growth(acct, time_ms) * acct.mean_event_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apportion_hits_the_mix_exactly() {
        let kinds = apportion(100, PROFILE_MIX);
        assert_eq!(kinds.len(), 100);
        for &(kind, percent) in PROFILE_MIX {
            assert_eq!(kinds.iter().filter(|&&k| k == kind).count(), percent as usize, "{kind:?}");
        }
        assert_eq!(apportion(7, PROFILE_MIX).len(), 7);
        assert!(apportion(0, PROFILE_MIX).is_empty());
    }

    #[test]
    fn world_has_unique_names_keys_and_tenant_mix() {
        let world = World::build(&GenOptions { accounts: 100, ..GenOptions::default() });
        let names: BTreeSet<&str> = world.accounts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names.len(), 100);
        let keys: BTreeSet<&str> = world.credentials.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(keys.len(), world.credentials.len());
        let small = world.accounts.iter().filter(|a| a.tenant == catalog::TENANT_SMALL).count();
        assert_eq!(small, 15);
        let owners_logged = world.accounts.iter().filter(|a| a.logs_owner).count();
        assert!((55..=85).contains(&owners_logged), "{owners_logged} accounts log the owner");
    }
}
