//! Silences and maintenance windows. A silence has a matcher, a reason, a creator, a start and
//! an expiry. While it is active, the alerts it matches are still raised, kept in the outbox
//! and counted, but no output delivers them. An expired silence is kept in the file, for the
//! record, and silences nothing.
//!
//! They live in one JSON file (`silences.json` in the state directory by default), written by
//! `auditwatch silence add|list|expire` or by hand. Workers reload it when it changes, so a
//! silence takes effect within a second without a restart.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::warn;

use super::route::Matcher;
use crate::config::AlertMatcher;

/// How often a worker looks at the file's modification time.
const RELOAD_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    pub id: String,
    #[serde(rename = "match")]
    pub matcher: AlertMatcher,
    pub reason: String,
    pub created_by: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339: silencing starts here.
    pub starts_at: String,
    /// RFC 3339: and stops here.
    pub ends_at: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceFile {
    pub silences: Vec<Silence>,
}

impl Silence {
    pub fn window(&self) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let parse = |field: &str, text: &str| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("silence {}: `{field}` is not an RFC 3339 time ({text:?}): {e}", self.id))
        };
        Ok((parse("starts_at", &self.starts_at)?, parse("ends_at", &self.ends_at)?))
    }

    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.window().is_ok_and(|(start, end)| start <= now && now < end)
    }
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl SilenceFile {
    /// Reads the file; a missing file holds no silences.
    pub fn read(path: &Path) -> Result<SilenceFile, String> {
        match std::fs::read(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SilenceFile::default()),
            Err(e) => Err(format!("cannot read silences file {}: {e}", path.display())),
            Ok(bytes) => {
                let file: SilenceFile = serde_json::from_slice(&bytes)
                    .map_err(|e| format!("silences file {} is not valid: {e}", path.display()))?;
                for silence in &file.silences {
                    silence.window()?;
                    Matcher::new(&silence.matcher).map_err(|e| format!("silence {}: {e}", silence.id))?;
                }
                Ok(file)
            }
        }
    }

    /// Writes the file whole: a temporary file, synced, renamed over the old one.
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let fail = |e: std::io::Error| format!("cannot write silences file {}: {e}", path.display());
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        let tmp = path.with_extension("json.tmp");
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        std::fs::write(&tmp, text).map_err(fail)?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(fail)?;
        std::fs::rename(&tmp, path).map_err(fail)
    }

    /// A new silence, with an id made from its content and time.
    pub fn add(
        &mut self,
        matcher: AlertMatcher,
        reason: String,
        created_by: String,
        starts: DateTime<Utc>,
        ends: DateTime<Utc>,
    ) -> &Silence {
        let now = Utc::now();
        let seed =
            format!("{matcher:?}{reason}{created_by}{}{}", now.timestamp_nanos_opt().unwrap_or(0), self.silences.len());
        let id = format!("s-{:012x}", xxhash_rust::xxh3::xxh3_64(seed.as_bytes()) & 0xffff_ffff_ffff);
        self.silences.push(Silence {
            id,
            matcher,
            reason,
            created_by,
            created_at: rfc3339(now),
            starts_at: rfc3339(starts),
            ends_at: rfc3339(ends),
        });
        &self.silences[self.silences.len() - 1]
    }

    /// Ends a silence now. False when no silence has that id.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        match self.silences.iter_mut().find(|s| s.id == id) {
            Some(silence) => {
                if silence.is_active(now) || silence.window().is_ok_and(|(start, _)| start > now) {
                    silence.ends_at = rfc3339(now);
                }
                true
            }
            None => false,
        }
    }
}

/// The silences a worker checks alerts against, reloaded when the file changes.
pub struct Silences {
    path: PathBuf,
    loaded: Vec<(Silence, Matcher)>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl Silences {
    pub fn new(path: PathBuf) -> Silences {
        let mut silences = Silences { path, loaded: Vec::new(), modified: None, checked: None };
        silences.reload_if_changed();
        silences
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of an active silence that matches `alert`, if any.
    pub fn silencing(&mut self, alert: &Value, now: DateTime<Utc>) -> Option<&str> {
        self.reload_if_changed();
        self.loaded.iter().find(|(s, m)| s.is_active(now) && m.matches(alert)).map(|(s, _)| s.id.as_str())
    }

    fn reload_if_changed(&mut self) {
        if self.checked.is_some_and(|t| t.elapsed() < RELOAD_CHECK) {
            return;
        }
        let first = self.checked.is_none();
        self.checked = Some(Instant::now());
        let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
        if !first && modified == self.modified {
            return;
        }
        self.modified = modified;
        match SilenceFile::read(&self.path) {
            // The file was validated on read, so every matcher compiles.
            Ok(file) => {
                self.loaded =
                    file.silences.into_iter().filter_map(|s| Matcher::new(&s.matcher).ok().map(|m| (s, m))).collect();
            }
            // A broken edit keeps the silences in force until it is fixed.
            Err(error) => warn!(%error, "keeping the silences loaded before"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_silence_silences_only_while_active_and_expire_ends_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        let now = Utc::now();
        let mut file = SilenceFile::default();
        let matcher = AlertMatcher { account: vec!["ci-*".into()], ..Default::default() };
        let id = file
            .add(
                matcher.clone(),
                "deploy freeze".into(),
                "jane".into(),
                now - chrono::Duration::minutes(1),
                now + chrono::Duration::hours(1),
            )
            .id
            .clone();
        file.add(
            matcher,
            "later".into(),
            "jane".into(),
            now + chrono::Duration::hours(2),
            now + chrono::Duration::hours(3),
        );
        file.write(&path).unwrap();

        let mut silences = Silences::new(path.clone());
        let ci = json!({"account": "ci-deploy", "severity": "high"});
        assert_eq!(silences.silencing(&ci, now), Some(id.as_str()));
        assert_eq!(silences.silencing(&json!({"account": "billing"}), now), None);
        assert_eq!(silences.silencing(&ci, now + chrono::Duration::minutes(90)), None, "between the two windows");

        let mut file = SilenceFile::read(&path).unwrap();
        assert!(file.expire(&id, now));
        assert!(!file.expire("s-nope", now));
        file.write(&path).unwrap();
        let mut fresh = Silences::new(path);
        assert_eq!(
            fresh.silencing(&ci, now + chrono::Duration::seconds(1)),
            None,
            "an expired silence stops silencing"
        );
    }

    #[test]
    fn a_broken_file_names_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        std::fs::write(&path, r#"{"silences":[{"id":"s-1","match":{},"reason":"r","created_by":"me","created_at":"x","starts_at":"yesterday","ends_at":"2030-01-01T00:00:00Z"}]}"#).unwrap();
        let error = SilenceFile::read(&path).unwrap_err();
        assert!(error.contains("starts_at") && error.contains("s-1"), "{error}");
    }
}
