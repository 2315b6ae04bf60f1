//! What is known about one credential (API key, OAuth token, password): its owner, its users
//! ([`KeyUsers`]), the networks (/24 or /48), ASNs, countries and user agents it was used from,
//! and its lifecycle (created, rotated, revoked). Fixed-size, like the account baselines.

use std::net::IpAddr;

use crate::detection::key_users::KeyUsers;
use crate::detection::time::Millis;
use crate::state::codec::{CodecError, Reader, Writer};

/// A network a key is used from: the /24 of an IPv4 address, the /48 of an IPv6 address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network(u32);

impl Network {
    pub fn of(ip: IpAddr) -> Network {
        match ip {
            // The /24 prefix fits in 24 bits, shifted so 0 stays free for "empty".
            IpAddr::V4(v4) => Network((u32::from(v4) & 0xFFFF_FF00) | 1),
            IpAddr::V6(v6) => {
                let prefix = &v6.octets()[..6];
                Network((xxhash_rust::xxh3::xxh3_64(prefix) as u32) & !0xFF | 2)
            }
        }
    }

    /// The wider network used when nothing else places an address: the /16 of an IPv4
    /// address; for IPv6, the /48 (see [`CredentialProfile::knows_wide_network`]).
    pub fn describe_wide(ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.0.0/16", o[0], o[1])
            }
            IpAddr::V6(_) => Network::describe(ip),
        }
    }

    pub fn describe(ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                format!("{}.{}.{}.0/24", o[0], o[1], o[2])
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        }
    }
}

/// A small set of recently used values; when full, the oldest insert is replaced.
#[derive(Clone, Debug)]
pub struct RecentSet<const N: usize> {
    items: [u32; N],
    next: u8,
}

impl<const N: usize> Default for RecentSet<N> {
    fn default() -> Self {
        RecentSet { items: [0; N], next: 0 }
    }
}

impl<const N: usize> RecentSet<N> {
    /// Values are non-zero (0 marks an empty slot).
    pub fn contains(&self, value: u32) -> bool {
        self.items.contains(&value)
    }

    pub fn insert(&mut self, value: u32) {
        if value == 0 || self.contains(value) {
            return;
        }
        self.items[usize::from(self.next)] = value;
        self.next = ((usize::from(self.next) + 1) % N) as u8;
    }

    pub fn len(&self) -> usize {
        self.items.iter().filter(|&&v| v != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.items.iter().copied().filter(|&v| v != 0)
    }
}

pub fn country_code(country: &str) -> u32 {
    let b = country.as_bytes();
    match b {
        [a, c] => u32::from(a.to_ascii_uppercase()) << 8 | u32::from(c.to_ascii_uppercase()),
        _ => xxhash_rust::xxh3::xxh3_64(b) as u32 | 0x8000_0000,
    }
}

pub fn country_name(code: u32) -> String {
    if code < 0x10000 {
        String::from_utf8_lossy(&[(code >> 8) as u8, code as u8]).into_owned()
    } else {
        "?".into()
    }
}

/// A time that may not have happened, in 8 bytes where `Option<Millis>` takes 16: every key
/// has three of them. No parsed time is `i64::MIN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct When(Millis);

impl When {
    pub const NEVER: When = When(Millis::MIN);

    pub fn get(self) -> Option<Millis> {
        (self != When::NEVER).then_some(self.0)
    }

    pub fn set(&mut self, t: Millis) {
        self.0 = t;
    }
}

impl Default for When {
    fn default() -> Self {
        When::NEVER
    }
}

impl From<Option<Millis>> for When {
    fn from(t: Option<Millis>) -> Self {
        t.map_or(When::NEVER, When)
    }
}

/// What is known about one credential (API key, OAuth token, password).
#[derive(Clone, Debug, Default)]
pub struct CredentialProfile {
    /// Hash of the (tenant, account) the key was issued to; 0 when unknown.
    pub owner: u32,
    pub owner_name: Option<Box<str>>,
    /// Owner as stated by the log (`credential.owner` or the `credential.create` caller)
    /// rather than inferred from the first user.
    pub owner_stated: bool,
    /// Accounts seen presenting the key, over its life (bounded, decaying).
    pub users: KeyUsers,
    pub first_seen: Millis,
    pub last_seen: Millis,
    pub uses: u32,
    pub created_at: When,
    pub rotated_at: When,
    pub revoked_at: When,
    pub networks: RecentSet<8>,
    pub asns: RecentSet<4>,
    pub countries: RecentSet<4>,
    pub user_agents: RecentSet<4>,
}

/// Where one use of a key came from, reduced to what a profile keeps (country and user agent
/// as short hashes).
#[derive(Clone, Copy, Debug, Default)]
pub struct UseSource {
    pub ip: Option<IpAddr>,
    pub asn: Option<u32>,
    pub country: Option<u32>,
    pub user_agent: Option<u32>,
}

impl CredentialProfile {
    pub fn new(t: Millis) -> Self {
        CredentialProfile { first_seen: t, last_seen: t, ..Default::default() }
    }

    /// Learn from one use of the key (after scoring).
    pub fn learn_use(&mut self, t: Millis, user: u32, user_name: &str, from: &UseSource, learn_users: bool) {
        if self.owner == 0 {
            self.owner = user;
            self.owner_name = Some(user_name.into());
        }
        self.users.learn(t, user, learn_users || self.users.is_empty());
        self.last_seen = self.last_seen.max(t);
        self.uses = self.uses.saturating_add(1);
        if let Some(ip) = from.ip {
            self.networks.insert(Network::of(ip).0);
        }
        if let Some(asn) = from.asn {
            self.asns.insert(asn);
        }
        if let Some(country) = from.country {
            self.countries.insert(country);
        }
        if let Some(ua) = from.user_agent {
            self.user_agents.insert(ua);
        }
    }

    pub fn knows_network(&self, ip: IpAddr) -> bool {
        self.networks.contains(Network::of(ip).0)
    }

    /// Whether the key was used from the address's /16 (IPv4), read from the /24s it keeps.
    /// An IPv6 network is kept as a hash of its /48, so for IPv6 this is [`Self::knows_network`].
    pub fn knows_wide_network(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => {
                let wide = u32::from(v4) >> 16;
                // IPv4 networks are the /24 prefix with the low byte 1 (see `Network::of`).
                self.networks.iter().any(|n| n & 0xFF == 1 && n >> 16 == wide)
            }
            IpAddr::V6(_) => self.knows_network(ip),
        }
    }
}

impl<const N: usize> RecentSet<N> {
    fn save(&self, w: &mut Writer) {
        for v in self.items {
            w.u32(v);
        }
        w.u8(self.next);
    }
    fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let mut s = RecentSet::default();
        for v in &mut s.items {
            *v = r.u32()?;
        }
        s.next = r.u8()?;
        if usize::from(s.next) >= N {
            return Err(r.invalid("recent-set cursor"));
        }
        Ok(s)
    }
}

impl CredentialProfile {
    pub fn save(&self, w: &mut Writer) {
        w.u32(self.owner);
        w.str(self.owner_name.as_deref().unwrap_or(""));
        w.bool(self.owner_stated);
        self.users.save(w);
        w.i64(self.first_seen);
        w.i64(self.last_seen);
        w.u32(self.uses);
        w.opt_i64(self.created_at.get());
        w.opt_i64(self.rotated_at.get());
        w.opt_i64(self.revoked_at.get());
        self.networks.save(w);
        self.asns.save(w);
        self.countries.save(w);
        self.user_agents.save(w);
    }

    /// `format` is the engine snapshot format (see `engine::snapshot`): 1 stored the users as
    /// a `RecentSet<2>`, 2 and later as [`KeyUsers`].
    pub fn load(r: &mut Reader, format: u32) -> Result<Self, CodecError> {
        let owner = r.u32()?;
        let name = r.string()?;
        let owner_stated = r.bool()?;
        let (users, legacy_users) = if format >= 2 {
            (KeyUsers::load(r)?, None)
        } else {
            (KeyUsers::default(), Some(RecentSet::<2>::load(r)?))
        };
        let mut profile = CredentialProfile {
            owner,
            owner_name: (!name.is_empty()).then(|| name.into_boxed_str()),
            owner_stated,
            users,
            first_seen: r.i64()?,
            last_seen: r.i64()?,
            uses: r.u32()?,
            created_at: r.opt_i64()?.into(),
            rotated_at: r.opt_i64()?.into(),
            revoked_at: r.opt_i64()?.into(),
            networks: RecentSet::load(r)?,
            asns: RecentSet::load(r)?,
            countries: RecentSet::load(r)?,
            user_agents: RecentSet::load(r)?,
        };
        if let Some(legacy) = legacy_users {
            profile.users = KeyUsers::from_legacy(&legacy, profile.last_seen);
        }
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::{self, DAY, HOUR, WEEK};

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn networks_group_by_prefix() {
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        let b: IpAddr = "198.51.100.200".parse().unwrap();
        let c: IpAddr = "198.51.101.7".parse().unwrap();
        assert_eq!(Network::of(a), Network::of(b));
        assert_ne!(Network::of(a), Network::of(c));
        assert_eq!(Network::describe(c), "198.51.101.0/24");
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:ffff::1".parse().unwrap();
        assert_eq!(Network::of(v6a), Network::of(v6b));
    }

    #[test]
    fn recent_set_is_bounded() {
        let mut s = RecentSet::<2>::default();
        for v in 1..=5 {
            s.insert(v);
        }
        assert_eq!(s.len(), 2);
        assert!(s.contains(5) && s.contains(4) && !s.contains(1));
        assert_eq!(country_name(country_code("de")), "DE");
    }

    #[test]
    fn key_users_from_the_start_are_established_until_the_horizon() {
        let mut profile = CredentialProfile::new(MONDAY);
        let from = UseSource::default();
        for (i, user) in [11u32, 13, 15].into_iter().enumerate() {
            profile.learn_use(MONDAY + i as i64 * 60_000, user, "ci", &from, true);
        }
        let later = MONDAY + 3 * DAY;
        for user in [11, 13, 15] {
            assert!(profile.users.is_established(user, later, 3, true), "user {user} shares the key from the start");
            assert!(!profile.users.is_established(user, later, 3, false), "unless the log says who owns it");
        }
        assert_eq!(profile.users.established_others(11, later, 3, true), 2);
        // A user later in the key's life is not one from the start.
        profile.learn_use(later, 17, "other", &from, false);
        assert!(!profile.users.is_established(17, later + HOUR, 3, true));
        // Past the horizon, a user from the start that stopped using the key fades out.
        assert!(!profile.users.is_established(13, MONDAY + 5 * WEEK, 3, true));
    }

    #[test]
    fn key_users_survive_a_checkpoint_and_read_the_old_format() {
        let mut profile = CredentialProfile::new(MONDAY);
        profile.learn_use(MONDAY, 11, "a", &UseSource::default(), true);
        profile.learn_use(MONDAY + DAY, 13, "b", &UseSource::default(), false);
        let mut w = Writer::default();
        profile.save(&mut w);
        let back = CredentialProfile::load(&mut Reader::new(&w.buf), 2).unwrap();
        assert_eq!(back.users, profile.users);
        // Format 1 stored a RecentSet<2> of the users of the key's first hour.
        let mut legacy = RecentSet::<2>::default();
        legacy.insert(11);
        legacy.insert(13);
        let mut w = Writer::default();
        w.u32(11);
        w.str("a");
        w.bool(false);
        legacy.save(&mut w);
        w.i64(MONDAY);
        w.i64(MONDAY + DAY);
        w.u32(2);
        for _ in 0..3 {
            w.opt_i64(None);
        }
        for set in [RecentSet::<8>::default().items.len(), 4, 4, 4] {
            for _ in 0..set {
                w.u32(0);
            }
            w.u8(0);
        }
        let mut r = Reader::new(&w.buf);
        let old = CredentialProfile::load(&mut r, 1).unwrap();
        assert!(r.is_empty());
        assert_eq!(old.users.len(), 2);
        assert!(old.users.is_established(13, MONDAY + 2 * DAY, 3, true), "old users were users from the start");
        assert_eq!(old.users.get(11).unwrap().last_hour as i64, time::hour_index(MONDAY + DAY));
    }
}
