//! What an account did before, as a small bounded set of 64-bit hashes: the terms of
//! `rare_action` (an action, a class or a service it used successfully), the principals it
//! created credentials for (`credential_created_for_other`), and whether it signed in with and
//! without a second factor (`mfa_omitted`).
//!
//! Part of every account's state, so it is empty (a `Vec`, 24 bytes) for the many accounts that
//! never make such calls, and holds at most [`MAX_TERMS`] terms and [`MAX_TARGETS`] principals
//! (16 bytes each). When full, the entry of that kind unused for longest makes room: a term
//! an account has not used for a long time is new again, which is what a rare term is.
//! Entries are hashes, never names; a principal's hash is its account key, so erasure can find it.

use crate::detection::time::{self, Millis};
use crate::state::codec::{CodecError, Reader, Writer};

/// Most terms one account keeps.
pub const MAX_TERMS: usize = 64;
/// Most principals one account keeps as ones it created credentials for.
pub const MAX_TARGETS: usize = 16;

/// What an entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermKind {
    /// A `rare_action` term the account used.
    Used,
    /// A principal the account created a credential for.
    CreatedFor,
    /// How the account signed in: with a second factor, or without (`mfa_omitted`).
    SignIn,
}

impl TermKind {
    fn cap(self) -> usize {
        match self {
            TermKind::Used => MAX_TERMS,
            TermKind::CreatedFor => MAX_TARGETS,
            TermKind::SignIn => 2,
        }
    }

    fn code(self) -> u8 {
        match self {
            TermKind::Used => 0,
            TermKind::CreatedFor => 1,
            TermKind::SignIn => 2,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    hash: u64,
    /// Hour index of its last use.
    last_hour: i32,
    kind: TermKind,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccountTerms {
    /// Exactly as long as it must be (a `Vec` would add 8 bytes to every account).
    entries: Box<[Entry]>,
}

impl AccountTerms {
    pub fn contains(&self, kind: TermKind, hash: u64) -> bool {
        self.entries.iter().any(|e| e.kind == kind && e.hash == hash)
    }

    /// The start of the hour `hash` was last used in, if it was.
    pub fn last_used(&self, kind: TermKind, hash: u64) -> Option<Millis> {
        let entry = self.entries.iter().find(|e| e.kind == kind && e.hash == hash)?;
        Some(i64::from(entry.last_hour) * time::HOUR)
    }

    pub fn count(&self, kind: TermKind) -> usize {
        self.entries.iter().filter(|e| e.kind == kind).count()
    }

    /// Bytes held on the heap, for the `state_bytes` metric.
    pub fn heap_bytes(&self) -> usize {
        self.entries.len() * std::mem::size_of::<Entry>()
    }

    /// Remember `hash` as used at `t`; when the kind is full, the stalest entry of it goes.
    pub fn learn(&mut self, kind: TermKind, hash: u64, t: Millis) {
        let hour = time::hour_index(t).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        if let Some(e) = self.entries.iter_mut().find(|e| e.kind == kind && e.hash == hash) {
            e.last_hour = e.last_hour.max(hour);
            return;
        }
        let entry = Entry { hash, last_hour: hour, kind };
        if self.count(kind) < kind.cap() {
            // One at a time: most accounts that have terms have a few.
            let mut entries = std::mem::take(&mut self.entries).into_vec();
            entries.reserve_exact(1);
            entries.push(entry);
            self.entries = entries.into_boxed_slice();
        } else if let Some(stalest) = self.entries.iter_mut().filter(|e| e.kind == kind).min_by_key(|e| e.last_hour) {
            *stalest = entry;
        }
    }

    /// Forget `hash` (erasure); true if it was there.
    pub fn remove(&mut self, kind: TermKind, hash: u64) -> bool {
        let before = self.entries.len();
        let mut entries = std::mem::take(&mut self.entries).into_vec();
        entries.retain(|e| !(e.kind == kind && e.hash == hash));
        self.entries = entries.into_boxed_slice();
        self.entries.len() != before
    }

    pub fn save(&self, w: &mut Writer) {
        w.u8(self.entries.len() as u8);
        for e in self.entries.iter() {
            w.u64(e.hash);
            w.i32(e.last_hour);
            w.u8(e.kind.code());
        }
    }

    pub fn load(r: &mut Reader) -> Result<Self, CodecError> {
        let n = usize::from(r.u8()?);
        if n > MAX_TERMS + MAX_TARGETS + 2 {
            return Err(r.invalid("account term count"));
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let (hash, last_hour) = (r.u64()?, r.i32()?);
            let kind = match r.u8()? {
                0 => TermKind::Used,
                1 => TermKind::CreatedFor,
                2 => TermKind::SignIn,
                _ => return Err(r.invalid("account term kind")),
            };
            if entries.iter().filter(|e: &&Entry| e.kind == kind).count() == kind.cap() {
                return Err(r.invalid("account term count"));
            }
            entries.push(Entry { hash, last_hour, kind });
        }
        Ok(AccountTerms { entries: entries.into_boxed_slice() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::time::HOUR;

    const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

    #[test]
    fn terms_are_bounded_per_kind_and_the_stalest_goes() {
        let mut terms = AccountTerms::default();
        for i in 0..(MAX_TERMS as u64 + 10) {
            terms.learn(TermKind::Used, i, MONDAY + i as i64 * HOUR);
        }
        assert_eq!(terms.count(TermKind::Used), MAX_TERMS);
        assert!(!terms.contains(TermKind::Used, 0) && !terms.contains(TermKind::Used, 9), "the oldest went");
        assert!(terms.contains(TermKind::Used, 10) && terms.contains(TermKind::Used, MAX_TERMS as u64 + 9));
        // A term used again is fresh: it survives the next eviction.
        terms.learn(TermKind::Used, 10, MONDAY + 1000 * HOUR);
        terms.learn(TermKind::Used, 5000, MONDAY + 1001 * HOUR);
        assert!(terms.contains(TermKind::Used, 10) && !terms.contains(TermKind::Used, 11));
        // The kinds do not crowd each other out, and the same hash is kept apart by kind.
        for i in 0..(MAX_TARGETS as u64 + 3) {
            terms.learn(TermKind::CreatedFor, i, MONDAY + 2000 * HOUR);
        }
        assert_eq!((terms.count(TermKind::Used), terms.count(TermKind::CreatedFor)), (MAX_TERMS, MAX_TARGETS));
        assert!(terms.contains(TermKind::Used, 10));
        assert!(terms.remove(TermKind::CreatedFor, MAX_TARGETS as u64 + 2));
        assert!(!terms.remove(TermKind::CreatedFor, MAX_TARGETS as u64 + 2));
        assert_eq!(terms.count(TermKind::CreatedFor), MAX_TARGETS - 1);
    }

    #[test]
    fn terms_survive_a_round_trip_and_bad_input_is_an_error() {
        let mut terms = AccountTerms::default();
        terms.learn(TermKind::Used, 7, MONDAY);
        terms.learn(TermKind::CreatedFor, 7, MONDAY + HOUR);
        let mut w = Writer::default();
        terms.save(&mut w);
        let mut r = Reader::new(&w.buf);
        assert_eq!(AccountTerms::load(&mut r).unwrap(), terms);
        assert!(r.is_empty());
        let mut bad = w.buf.clone();
        *bad.last_mut().unwrap() = 9;
        assert!(AccountTerms::load(&mut Reader::new(&bad)).is_err(), "unknown kind");
        assert!(AccountTerms::load(&mut Reader::new(&[200])).is_err(), "too many");
    }
}
