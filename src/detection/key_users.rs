//! The accounts that present one key, learned over the key's life: who its established users
//! are decides whether another account presenting it is `foreign-key-use`. Part of every
//! [`super::credential_profile::CredentialProfile`], so it is small and fixed-size.

use super::credential_profile::RecentSet;
use crate::detection::time::{self, Millis};
use crate::state::codec::{CodecError, Reader, Writer};

/// Most accounts a key's user set follows; when full, the stalest is evicted.
pub const MAX_KEY_USERS: usize = 4;
/// A user's count of distinct hours halves for every week it does not use the key.
const USER_HALF_LIFE_HOURS: i64 = 7 * 24;
/// Distinct hours of use that make an account an established user of a key.
pub const DEFAULT_MIN_USER_HOURS: u8 = 3;
/// A user from the key's first hours stays established this long after its last use.
const USER_HORIZON_HOURS: i64 = 4 * USER_HALF_LIFE_HOURS;
/// The distinct-hours count saturates here: it lives in the low 7 bits of a byte.
const MAX_USER_HOURS: u8 = 0x7f;
const FROM_START: u8 = 0x80;

/// One account that presented a key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyUser {
    /// Short id of the account (non-zero; 0 marks an empty slot).
    pub account: u32,
    /// Hour index (hours since the epoch) of its last use.
    pub last_hour: i32,
    /// Distinct clock hours it used the key in, decayed (see `USER_HALF_LIFE_HOURS`).
    pub hours: u8,
    /// Seen in the key's first hours (`learn_users_for`).
    pub from_start: bool,
}

impl KeyUser {
    /// Distinct hours of use as they count at hour index `now`.
    fn decayed_hours(&self, now: i64) -> u8 {
        let halvings = (now - i64::from(self.last_hour)).max(0) / USER_HALF_LIFE_HOURS;
        self.hours.checked_shr(halvings.min(8) as u32).unwrap_or(0)
    }
}

/// The accounts that use a key, learned over its whole life: a bounded set with last-seen
/// times and a decaying count of distinct hours of use, so an account that stopped using the
/// key fades out and the stalest one makes room for a newcomer. Stored as columns (9 bytes a
/// user instead of a padded 12): every key of every account carries one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUsers {
    accounts: [u32; MAX_KEY_USERS],
    last_hours: [i32; MAX_KEY_USERS],
    /// Distinct hours in the low 7 bits, [`FROM_START`] in the top one.
    hours: [u8; MAX_KEY_USERS],
}

impl KeyUsers {
    fn at(&self, i: usize) -> KeyUser {
        KeyUser {
            account: self.accounts[i],
            last_hour: self.last_hours[i],
            hours: self.hours[i] & MAX_USER_HOURS,
            from_start: self.hours[i] & FROM_START != 0,
        }
    }

    fn set(&mut self, i: usize, user: KeyUser) {
        self.accounts[i] = user.account;
        self.last_hours[i] = user.last_hour;
        self.hours[i] = user.hours.min(MAX_USER_HOURS) | if user.from_start { FROM_START } else { 0 };
    }

    pub fn get(&self, account: u32) -> Option<KeyUser> {
        let i = self.accounts.iter().position(|&a| a == account && account != 0)?;
        Some(self.at(i))
    }

    pub fn contains(&self, account: u32) -> bool {
        self.get(account).is_some()
    }

    pub fn len(&self) -> usize {
        self.accounts.iter().filter(|&&a| a != 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = KeyUser> + '_ {
        (0..MAX_KEY_USERS).filter(|&i| self.accounts[i] != 0).map(|i| self.at(i))
    }

    /// Forget `account` as a user (erasure); true if it was one.
    pub fn remove(&mut self, account: u32) -> bool {
        match self.accounts.iter().position(|&a| a == account && account != 0) {
            Some(i) => {
                self.set(i, KeyUser { account: 0, last_hour: 0, hours: 0, from_start: false });
                true
            }
            None => false,
        }
    }

    /// Learn one use at `t` by `account`; `from_start` when the key is in its first hours.
    pub fn learn(&mut self, t: Millis, account: u32, from_start: bool) {
        if account == 0 {
            return;
        }
        let now = time::hour_index(t);
        let hour = now.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        if let Some(i) = self.accounts.iter().position(|&a| a == account) {
            let mut user = self.at(i);
            if hour > user.last_hour {
                user.hours = user.decayed_hours(now).saturating_add(1);
                user.last_hour = hour;
            }
            user.from_start |= from_start;
            self.set(i, user);
            return;
        }
        // An empty slot, else the stalest: one no longer established first, then the one
        // unseen for longest.
        let slot = (0..MAX_KEY_USERS)
            .min_by_key(|&i| {
                let u = self.at(i);
                (u.account != 0, u.account != 0 && u.established(now, DEFAULT_MIN_USER_HOURS, true), u.last_hour)
            })
            .expect("MAX_KEY_USERS > 0");
        self.set(slot, KeyUser { account, last_hour: hour, hours: 1, from_start });
    }

    /// Whether `account` is an established user at `t`: it used the key in at least
    /// `min_hours` distinct hours (decayed), or it used it from the key's first hours
    /// (counted only when `count_from_start`) and not longer ago than the horizon.
    pub fn is_established(&self, account: u32, t: Millis, min_hours: u8, count_from_start: bool) -> bool {
        self.get(account).is_some_and(|u| u.established(time::hour_index(t), min_hours, count_from_start))
    }

    /// Established users at `t` other than `except`.
    pub fn established_others(&self, except: u32, t: Millis, min_hours: u8, count_from_start: bool) -> usize {
        let now = time::hour_index(t);
        self.iter().filter(|u| u.account != except && u.established(now, min_hours, count_from_start)).count()
    }
}

impl KeyUser {
    fn established(&self, now: i64, min_hours: u8, count_from_start: bool) -> bool {
        let recent = now - i64::from(self.last_hour) <= USER_HORIZON_HOURS;
        self.decayed_hours(now) >= min_hours.max(1) || (count_from_start && self.from_start && recent)
    }
}

impl KeyUsers {
    pub(super) fn save(&self, w: &mut Writer) {
        w.u8(self.len() as u8);
        for u in self.iter() {
            w.u32(u.account);
            w.i32(u.last_hour);
            w.u8(u.hours);
            w.bool(u.from_start);
        }
    }

    pub(super) fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let n = usize::from(r.u8()?);
        if n > MAX_KEY_USERS {
            return Err(r.invalid("key user count"));
        }
        let mut s = KeyUsers::default();
        for i in 0..n {
            let user = KeyUser { account: r.u32()?, last_hour: r.i32()?, hours: r.u8()?, from_start: r.bool()? };
            if user.account == 0 {
                return Err(r.invalid("key user id"));
            }
            s.set(i, user);
        }
        Ok(s)
    }

    /// Format 1 kept at most two users, learned in the key's first hour only: they are users
    /// from the start, last seen when the key was.
    pub(super) fn from_legacy(legacy: &RecentSet<2>, last_seen: Millis) -> Self {
        let mut s = KeyUsers::default();
        let hour = time::hour_index(last_seen).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        for (i, account) in legacy.iter().enumerate() {
            s.set(i, KeyUser { account, last_hour: hour, hours: 1, from_start: true });
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::{DAY, HOUR, WEEK};

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn key_users_are_bounded_and_evict_the_stalest() {
        let mut users = KeyUsers::default();
        // Account 1 uses the key every hour for a day: established.
        for h in 0..24 {
            users.learn(MONDAY + h * HOUR, 1, h == 0);
        }
        // Then 10 one-off accounts, an hour apart.
        for a in 2..12u32 {
            users.learn(MONDAY + DAY + i64::from(a) * HOUR, a, false);
        }
        assert_eq!(users.len(), MAX_KEY_USERS);
        let t = MONDAY + DAY + 12 * HOUR;
        assert!(users.is_established(1, t, 3, false), "the established user is not evicted by one-off users");
        let kept = 12 - (MAX_KEY_USERS as u32 - 1);
        assert!(
            (kept..12).all(|a| users.contains(a)) && !users.contains(kept - 1),
            "the stalest one-off users went first"
        );
        assert!(!users.is_established(11, t, 3, false), "one use is not enough");
        users.learn(MONDAY + DAY + 20 * HOUR, 0, false);
        assert_eq!(users.len(), MAX_KEY_USERS, "0 is not an account");
    }

    #[test]
    fn key_users_need_distinct_hours_and_decay() {
        let mut users = KeyUsers::default();
        // Three uses within one hour count once.
        for m in 0..3 {
            users.learn(MONDAY + 10 * HOUR + m * 60_000, 5, false);
        }
        assert_eq!(users.get(5).unwrap().hours, 1);
        assert!(!users.is_established(5, MONDAY + 11 * HOUR, 3, true));
        // Daily at 10:00 for three more days: four distinct hours.
        for d in 1..4 {
            users.learn(MONDAY + d * DAY + 10 * HOUR, 5, false);
        }
        assert_eq!(users.get(5).unwrap().hours, 4);
        assert!(users.is_established(5, MONDAY + 4 * DAY, 3, true));
        // Unused for a week the count halves (4 -> 2): no longer established.
        assert!(!users.is_established(5, MONDAY + 3 * DAY + 10 * HOUR + WEEK, 3, true));
        // Coming back after two weeks starts from the decayed count: 4 >> 2 = 1, plus this hour.
        users.learn(MONDAY + 3 * DAY + 10 * HOUR + 2 * WEEK, 5, false);
        assert_eq!(users.get(5).unwrap().hours, 2);
    }
}
