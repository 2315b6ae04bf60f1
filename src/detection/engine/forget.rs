//! Erasure of one account (`auditwatch forget`): its baseline, the keys it used, its place
//! among other keys' users and owners, its entries in spray and shared-cause windows, its place
//! among the principals other accounts created credentials for, and its open incidents.

use super::{key_of, short_key, Engine};
use crate::detection::terms::TermKind;

/// What [`Engine::forget`] removed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Forgotten {
    pub account: bool,
    pub keys: usize,
    /// Other keys that listed the account as a user or as their owner.
    pub key_references: usize,
    /// Entries in spray windows and in the windows of shared causes.
    pub spray_entries: usize,
    /// Other accounts that remembered creating a credential for it.
    pub creator_references: usize,
    pub incidents: usize,
}

impl Engine {
    /// Drop everything learned about `account` of `tenant` (`""` for none) and the state of
    /// `keys`, the keys it used.
    pub fn forget(&mut self, tenant: &str, account: &str, keys: &[String]) -> Forgotten {
        let account_key = key_of(&[tenant.as_bytes(), account.as_bytes()]);
        let short = short_key(account_key);
        let mut out = Forgotten { account: self.accounts.remove(&account_key).is_some(), ..Forgotten::default() };
        for key in keys {
            out.keys += usize::from(self.credentials.remove(&key_of(&[key.as_bytes()])).is_some());
        }
        for profile in self.credentials.values_mut() {
            let mut touched = profile.users.remove(short);
            if profile.owner == short || profile.owner_name.as_deref() == Some(account) {
                profile.owner = 0;
                profile.owner_name = None;
                profile.owner_stated = false;
                touched = true;
            }
            out.key_references += usize::from(touched);
        }
        for state in self.accounts.values_mut() {
            out.creator_references += usize::from(state.terms.remove(TermKind::CreatedFor, account_key));
        }
        for spray in self.sprays.values_mut() {
            out.spray_entries += spray.forget(account_key, account);
        }
        for cause in self.causes.values_mut() {
            out.spray_entries += cause.forget(account_key);
        }
        let subject = format!("{tenant}/{account}");
        for index in 0..self.detectors.len() as u64 {
            for subject in std::iter::once(&subject).chain(keys) {
                let incident = key_of(&[&index.to_le_bytes(), subject.as_bytes()]);
                out.incidents += usize::from(self.incidents.remove(&incident).is_some());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::engine::EngineOptions;
    use crate::input::event::decode;
    use crate::state::codec::Writer;

    fn event(minute: u32, account: &str, key: &str) -> String {
        format!(
            r#"{{"time":"2026-11-02T10:{minute:02}:00Z","account":"{account}","action":"crm.contacts.read","outcome":"success","credential":{{"id":"{key}","type":"api_key","owner":"{account}"}},"source":{{"ip":"203.0.113.7"}},"target":{{"system":"crm"}}}}"#
        )
    }

    fn saved(engine: &Engine) -> Vec<u8> {
        let mut w = Writer { buf: Vec::new() };
        engine.save(&mut w);
        w.buf
    }

    #[test]
    fn the_account_its_keys_and_its_names_leave_the_state() {
        let mut engine = Engine::new(crate::detection::pack::load().unwrap(), EngineOptions::default());
        let mut alerts = Vec::new();
        for (minute, account, key) in [
            (0, "svc-forget-me", "K-MINE"),
            (1, "svc-other", "K-OTHER"),
            (2, "svc-forget-me", "K-MINE"),
            (3, "svc-forget-me", "K-OTHER"),
        ] {
            engine.process(&decode(event(minute, account, key).as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
        }
        assert_eq!((engine.accounts_tracked(), engine.credentials_tracked()), (2, 2));
        let contains = |bytes: &[u8], name: &str| bytes.windows(name.len()).any(|w| w == name.as_bytes());
        assert!(contains(&saved(&engine), "svc-forget-me"), "the owner's name is in the state before");

        let forgotten = engine.forget("", "svc-forget-me", &["K-MINE".to_string()]);
        assert!(forgotten.account);
        assert_eq!(forgotten.keys, 1);
        assert_eq!(forgotten.key_references, 1, "K-OTHER listed it as a user");
        assert_eq!((engine.accounts_tracked(), engine.credentials_tracked()), (1, 1));
        assert!(!contains(&saved(&engine), "svc-forget-me"));
        assert_eq!(engine.forget("", "svc-forget-me", &["K-MINE".to_string()]), Forgotten::default(), "nothing twice");
    }
}
