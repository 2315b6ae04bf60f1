//! Grouping alerts into notifications, as Alertmanager does, for the outputs people read.
//!
//! Alerts with equal `group_by` values (by default: detector and account) form a group. A new
//! group waits `group_wait` for more alerts, then sends one notification with all of them and
//! their count. Alerts arriving later wait at least `group_interval` after the previous
//! notification, and the next one carries only what is new. An open group with nothing new is
//! notified again after `repeat_interval`; with no new alert for `resolve_timeout` it closes,
//! and a notifier that wants it (PagerDuty) gets a resolution.
//!
//! The groups of one output are kept in `<output>.groups.json` next to its outbox cursor, with
//! the outbox position they have taken in. The file is written (temporary file, sync, rename)
//! before the cursor moves and after each notification is confirmed, so a restart neither
//! re-pages nor forgets an alert that was waiting in a group.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::notification::{Notification, Status, MAX_ALERTS_PER_NOTIFICATION};
use super::route::Route;
use crate::config::GroupField;
use crate::detection::time::Millis;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Group {
    route: String,
    labels: Vec<(String, String)>,
    /// Notifications sent so far.
    sequence: u64,
    total: u64,
    /// Alerts since the last notification: the count, and the newest of them.
    new_count: u64,
    new_alerts: Vec<Value>,
    latest: Value,
    last_alert_at: Millis,
    last_notified_at: Option<Millis>,
    /// When the next notification is due, if one is.
    due_at: Option<Millis>,
    group_interval: Millis,
    repeat_interval: Millis,
    resolve_timeout: Millis,
}

#[derive(Default, Serialize, Deserialize)]
struct GroupsFile {
    /// Outbox entries before this one are in the groups (or were not for this output).
    through: u64,
    groups: BTreeMap<String, Group>,
}

/// The open groups of one output.
pub struct Groups {
    path: PathBuf,
    state: GroupsFile,
}

/// What a due notification is, so it can be marked sent once the output confirmed it.
pub struct Due {
    pub key: String,
    pub notification: Notification,
}

impl Groups {
    /// Loads `<dir>/<output>.groups.json`, or starts empty.
    pub fn open(dir: &Path, output: &str) -> io::Result<Groups> {
        let path = dir.join(format!("{output}.groups.json"));
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(io::ErrorKind::InvalidData, format!("{} is not valid: {e}", path.display()))
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => GroupsFile::default(),
            Err(e) => return Err(e),
        };
        Ok(Groups { path, state })
    }

    /// The first outbox sequence number not yet taken into the groups.
    pub fn through(&self) -> u64 {
        self.state.through
    }

    pub fn set_through(&mut self, next: u64) {
        self.state.through = self.state.through.max(next);
    }

    pub fn open_groups(&self) -> usize {
        self.state.groups.len()
    }

    /// Put `alert` (already masked for this output) into its group under `route`.
    pub fn add(&mut self, route: &Route, alert: Value, now: Millis) {
        let labels: Vec<(String, String)> =
            route.grouping.group_by.iter().map(|f| (label_name(*f).to_string(), label_value(&alert, *f))).collect();
        let key = group_key(&route.name, &labels);
        let g = &route.grouping;
        let group = self.state.groups.entry(key).or_insert_with(|| Group {
            route: route.name.clone(),
            labels,
            sequence: 0,
            total: 0,
            new_count: 0,
            new_alerts: Vec::new(),
            latest: Value::Null,
            last_alert_at: now,
            last_notified_at: None,
            due_at: Some(now + g.group_wait.0),
            group_interval: g.group_interval.0,
            repeat_interval: g.repeat_interval.0,
            resolve_timeout: g.resolve_timeout.0,
        });
        group.total += 1;
        group.new_count += 1;
        group.last_alert_at = now;
        group.latest = alert.clone();
        group.new_alerts.push(alert);
        if group.new_alerts.len() > MAX_ALERTS_PER_NOTIFICATION {
            group.new_alerts.remove(0);
        }
        // A new group is due after group_wait; a notified one not before group_interval.
        if group.due_at.is_none() {
            group.due_at = Some(group.last_notified_at.map_or(now, |last| (last + group.group_interval).max(now)));
        }
    }

    /// The earliest notification due at `now`, if any. Groups past `resolve_timeout` close:
    /// with a resolution when `resolved` is wanted, silently otherwise.
    pub fn due(&mut self, now: Millis, resolved: bool) -> Option<Due> {
        let closing: Vec<String> = self
            .state
            .groups
            .iter()
            .filter(|(_, g)| g.new_count == 0 && now >= g.last_alert_at + g.resolve_timeout)
            .map(|(k, _)| k.clone())
            .collect();
        for key in closing {
            if resolved && self.state.groups[&key].sequence > 0 {
                return Some(self.notification(&key, Status::Resolved));
            }
            self.state.groups.remove(&key);
        }
        let mut earliest: Option<(&String, Millis)> = None;
        for (key, g) in &self.state.groups {
            let at = if g.new_count > 0 {
                g.due_at.unwrap_or(now)
            } else {
                g.last_notified_at.map_or(Millis::MAX, |t| t + g.repeat_interval)
            };
            if at <= now && earliest.is_none_or(|(_, e)| at < e) {
                earliest = Some((key, at));
            }
        }
        let key = earliest?.0.clone();
        Some(self.notification(&key, Status::Firing))
    }

    fn notification(&self, key: &str, status: Status) -> Due {
        let g = &self.state.groups[key];
        let sequence = g.sequence + 1;
        let alerts = if status == Status::Firing { g.new_alerts.clone() } else { Vec::new() };
        Due {
            key: key.to_string(),
            notification: Notification {
                id: format!("{key}-{sequence}"),
                group_key: key.to_string(),
                route: g.route.clone(),
                status,
                sequence,
                labels: g.labels.clone(),
                alerts,
                new_alerts: if status == Status::Firing { g.new_count } else { 0 },
                total_alerts: g.total,
                latest: g.latest.clone(),
            },
        }
    }

    /// The output confirmed `due` (or it was dead-lettered): the group moves on.
    pub fn sent(&mut self, due: &Due, now: Millis) {
        if due.notification.status == Status::Resolved {
            self.state.groups.remove(&due.key);
            return;
        }
        if let Some(g) = self.state.groups.get_mut(&due.key) {
            g.sequence = due.notification.sequence;
            g.last_notified_at = Some(now);
            // Alerts that came in while this one was being sent stay new.
            let sent = due.notification.new_alerts;
            g.new_count -= sent.min(g.new_count);
            let keep = g.new_count.min(g.new_alerts.len() as u64) as usize;
            g.new_alerts.drain(..g.new_alerts.len() - keep);
            g.due_at = (g.new_count > 0).then_some(now + g.group_interval);
        }
    }

    /// Writes the groups durably (temporary file, sync, rename).
    pub fn save(&self) -> io::Result<()> {
        let tmp = self.path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(&self.state).map_err(io::Error::other)?;
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }
}

fn label_name(field: GroupField) -> &'static str {
    match field {
        GroupField::Detector => "detector",
        GroupField::Account => "account",
        GroupField::Tenant => "tenant",
        GroupField::Category => "category",
        GroupField::Severity => "severity",
        GroupField::SourceIp => "source_ip",
        GroupField::CredentialId => "credential_id",
    }
}

fn label_value(alert: &Value, field: GroupField) -> String {
    alert[label_name(field)].as_str().unwrap_or("").to_string()
}

/// Stable across restarts and releases: a hash of the route and the label values.
fn group_key(route: &str, labels: &[(String, String)]) -> String {
    let mut buf = route.as_bytes().to_vec();
    for (k, v) in labels {
        buf.push(0);
        buf.extend_from_slice(k.as_bytes());
        buf.push(0);
        buf.extend_from_slice(v.as_bytes());
    }
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AlertMatcher, Grouping};
    use crate::detection::time::{Duration, MINUTE, SECOND};
    use serde_json::json;

    fn route() -> Route {
        Route {
            name: "oncall".into(),
            matcher: super::super::route::Matcher::new(&AlertMatcher::default()).unwrap(),
            outputs: vec!["email".into()],
            continue_matching: false,
            grouping: Grouping {
                group_wait: Duration(30 * SECOND),
                group_interval: Duration(5 * MINUTE),
                repeat_interval: Duration(60 * MINUTE),
                resolve_timeout: Duration(30 * MINUTE),
                ..Grouping::default()
            },
        }
    }

    fn alert(i: u64, account: &str) -> Value {
        json!({"id": format!("a{i}"), "detector": "failed-auth-burst", "account": account, "severity": "high"})
    }

    /// Drive the groups through `minutes` of time, a step a second; return what was sent.
    fn run(groups: &mut Groups, from: Millis, to: Millis, resolved: bool) -> Vec<Notification> {
        let mut sent = Vec::new();
        let mut now = from;
        while now <= to {
            while let Some(due) = groups.due(now, resolved) {
                groups.sent(&due, now);
                sent.push(due.notification);
            }
            now += SECOND;
        }
        sent
    }

    #[test]
    fn a_storm_is_one_notification_then_bounded_updates() {
        let dir = tempfile::tempdir().unwrap();
        let mut groups = Groups::open(dir.path(), "email").unwrap();
        let route = route();
        // 1000 alerts about one account within one minute, while the groups are driven.
        let mut sent = Vec::new();
        for i in 0..1000 {
            let now = i as Millis * 60;
            groups.add(&route, alert(i, "ci-deploy"), now);
            while let Some(due) = groups.due(now, false) {
                groups.sent(&due, now);
                sent.push(due.notification);
            }
        }
        assert_eq!(sent.len(), 1, "one notification at group_wait");
        sent.extend(run(&mut groups, 60 * SECOND, 10 * MINUTE, false));
        // The first notification at group_wait has the alerts so far; the rest come in one update.
        assert_eq!(sent.len(), 2, "{:?}", sent.iter().map(|n| n.new_alerts).collect::<Vec<_>>());
        assert_eq!(sent[0].sequence, 1);
        assert_eq!(sent.iter().map(|n| n.new_alerts).sum::<u64>(), 1000);
        assert!(sent.iter().all(|n| n.alerts.len() <= MAX_ALERTS_PER_NOTIFICATION));
        assert_eq!(sent[1].total_alerts, 1000);
    }

    #[test]
    fn updates_carry_only_what_is_new_and_wait_for_the_interval() {
        let dir = tempfile::tempdir().unwrap();
        let mut groups = Groups::open(dir.path(), "email").unwrap();
        let route = route();
        groups.add(&route, alert(1, "a"), 0);
        let first = run(&mut groups, 0, 40 * SECOND, false);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].alerts.len(), 1);
        groups.add(&route, alert(2, "a"), 60 * SECOND);
        groups.add(&route, alert(3, "b"), 60 * SECOND);
        let next = run(&mut groups, 60 * SECOND, 6 * MINUTE, false);
        // b's group is new: it waits group_wait; a's waits group_interval after its first.
        assert_eq!(next.len(), 2);
        let a = next.iter().find(|n| n.labels.contains(&("account".into(), "a".into()))).unwrap();
        assert_eq!(a.alerts.iter().map(|x| x["id"].clone()).collect::<Vec<_>>(), [json!("a2")]);
        assert_eq!(a.sequence, 2);
    }

    #[test]
    fn a_quiet_group_repeats_then_resolves_and_state_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let route =
            Route { grouping: Grouping { repeat_interval: Duration(10 * MINUTE), ..route().grouping }, ..route() };
        let mut groups = Groups::open(dir.path(), "pd").unwrap();
        groups.add(&route, alert(1, "a"), 0);
        groups.set_through(8);
        let sent = run(&mut groups, 0, MINUTE, true);
        assert_eq!(sent.len(), 1);
        groups.save().unwrap();

        // A restart: nothing is re-sent, and the reminder and resolution still come.
        let mut groups = Groups::open(dir.path(), "pd").unwrap();
        assert_eq!(groups.through(), 8);
        assert!(groups.due(MINUTE, true).is_none(), "a restart does not re-page");
        let later = run(&mut groups, MINUTE, 31 * MINUTE, true);
        let kinds: Vec<(Status, u64)> = later.iter().map(|n| (n.status, n.new_alerts)).collect();
        assert_eq!(kinds, [(Status::Firing, 0), (Status::Firing, 0), (Status::Resolved, 0)]);
        assert_eq!(later.last().unwrap().group_key, sent[0].group_key);
        assert_eq!(groups.open_groups(), 0);
    }
}
