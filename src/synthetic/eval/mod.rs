//! Scores alerts against the labels of a generated run (`gen::Labels`).
//!
//! Input: alerts as JSON objects in the alert contract (`schemas/alert.schema.json`); read here are `id`,
//! `detector`, `category`, `account`, `source_ip` and `time` (RFC 3339, or epoch
//! milliseconds). Output: an [`EvalReport`], serializable to JSON and printable as a
//! plain-text table.
//!
//! Rules:
//! - An alert matches an incident when the categories are equal, the alert's `account` is one
//!   of the incident's accounts or its `source_ip` is the incident's, and its `time` lies in
//!   `[incident.start - 5 min, incident.end + 2 h]`.
//! - Alerts are counted by distinct `id` (a pipeline may re-emit an alert as it folds in
//!   repeats); an id matches if any of its copies does. An alert without `id` counts alone.
//! - An alert that matches nothing is a false alert if its (earliest) time is after the
//!   warm-up, and a warm-up alert otherwise. False alerts are also given per 100
//!   account-days, with account-days = accounts × (days - warm-up days).
//! - Latency is first matching alert time - incident start, floored at 0 (an alert inside the
//!   5-minute lead tolerance counts as immediate).
//! - Alerts that cannot be read (no category, no time) are listed as problems, never dropped
//!   silently.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Serialize;

use crate::synthetic::gen::{Incident, Labels};

const MS_PER_SECOND: i64 = 1_000;
const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;
/// How early before the labelled start an alert may fire and still count.
const LEAD_TOLERANCE_MS: i64 = 5 * MS_PER_MINUTE;
/// How long after the labelled end an alert still counts.
const LAG_TOLERANCE_MS: i64 = 2 * MS_PER_HOUR;
/// How far a benign label may be from a false alert to be offered as its likely cause.
const BENIGN_NEIGHBOURHOOD_MS: i64 = MS_PER_DAY;
pub const MAX_FALSE_ALERTS_PER_100_ACCOUNT_DAYS: f64 = 1.0;
pub const MAX_MEDIAN_ALERTS_PER_INCIDENT: f64 = 2.0;

/// Categories and incident kinds in the order reports list them; others follow alphabetically.
const CATEGORY_ORDER: [&str; 4] = ["failed_auth", "data_volume", "off_hours", "credential_misuse"];
const KIND_ORDER: [&str; 13] = [
    "failed_auth_burst",
    "denied_burst",
    "password_spray",
    "bulk_export",
    "slow_exfil",
    "off_hours",
    "revoked_key_use",
    "foreign_key",
    "new_network",
    "low_slow_spray",
    "slow_probing",
    "sustained_exfil",
    "night_session",
];

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub seed: u64,
    pub accounts: usize,
    pub days: u32,
    pub warmup_days: u32,
    pub account_days_evaluated: u64,
    pub alerts: AlertCounts,
    pub false_alerts_per_100_account_days: Option<f64>,
    pub by_category: Vec<GroupStats>,
    pub by_kind: Vec<GroupStats>,
    pub overall: GroupStats,
    pub incidents: Vec<IncidentResult>,
    pub missed: Vec<MissedIncident>,
    pub false_alerts: Vec<FalseAlert>,
    /// Alerts or labels that could not be read, one sentence each.
    pub problems: Vec<String>,
    pub pass: PassCriteria,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AlertCounts {
    /// JSON values given.
    pub received: usize,
    /// Distinct alert ids among the readable ones.
    pub distinct: usize,
    pub matched: usize,
    pub during_warmup: usize,
    pub false_alerts: usize,
    pub unreadable: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct GroupStats {
    /// Category, incident kind, or `overall`.
    pub name: String,
    pub incidents: usize,
    pub caught: usize,
    /// caught / incidents; None without incidents.
    pub recall: Option<f64>,
    pub latency_median_secs: Option<f64>,
    pub latency_max_secs: Option<f64>,
    /// Over caught incidents, counting distinct alert ids.
    pub alerts_per_incident_median: Option<f64>,
    pub alerts_per_incident_max: Option<usize>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IncidentResult {
    pub id: String,
    pub kind: String,
    pub category: String,
    pub accounts: Vec<String>,
    pub start: String,
    pub caught: bool,
    pub latency_secs: Option<f64>,
    /// Distinct matching alert ids.
    pub alerts: usize,
    /// Categories of alerts that fit the incident's accounts and time but not its category.
    pub other_category_alerts: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissedIncident {
    pub id: String,
    pub kind: String,
    pub category: String,
    pub accounts: Vec<String>,
    pub start: String,
    pub description: String,
    /// Categories it was alerted as instead, if any: a detector that fired with the wrong category.
    pub alerted_as: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FalseAlert {
    pub id: String,
    pub detector: String,
    pub category: String,
    pub account: String,
    pub time: String,
    /// The benign label of this account nearest in time, within 24 h: the likely cause.
    pub nearest_benign: Option<NearbyBenign>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NearbyBenign {
    pub kind: String,
    pub time: String,
    pub description: String,
    /// Alert time minus label time.
    pub offset_secs: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PassCriteria {
    /// Every incident caught by an alert of the right category.
    pub all_incidents_caught: bool,
    /// False alerts ≤ 1 per 100 account-days after warm-up.
    pub false_alerts_within_budget: bool,
    /// Median alerts per caught incident ≤ 2.
    pub alerts_per_incident_within_budget: bool,
    pub all: bool,
}

/// The fields of an alert that scoring reads.
struct AlertView<'a> {
    detector: &'a str,
    category: &'a str,
    account: &'a str,
    source_ip: Option<&'a str>,
    time_ms: i64,
}

/// An incident with its window parsed.
struct IncidentView<'a> {
    label: &'a Incident,
    start_ms: i64,
    end_ms: i64,
}

fn parse_time(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::String(text) => {
            chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
        }
        serde_json::Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

fn parse_time_text(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn read_alert(value: &serde_json::Value) -> Result<(Option<&str>, AlertView<'_>), String> {
    let text = |field: &str| value.get(field).and_then(serde_json::Value::as_str);
    if !value.is_object() {
        return Err("is not a JSON object".to_string());
    }
    let category = text("category").ok_or("has no string `category`")?;
    let time_ms = match value.get("time") {
        None => return Err("has no `time`".to_string()),
        Some(time) => parse_time(time).ok_or("has a `time` that is neither RFC 3339 nor epoch milliseconds")?,
    };
    let view = AlertView {
        detector: text("detector").unwrap_or(""),
        category,
        account: text("account").unwrap_or(""),
        source_ip: text("source_ip"),
        time_ms,
    };
    Ok((text("id"), view))
}

impl IncidentView<'_> {
    /// Same accounts or source and inside the time window, whatever the category.
    fn fits(&self, alert: &AlertView<'_>) -> bool {
        let same_subject = self.label.accounts.iter().any(|a| a == alert.account)
            || matches!((&self.label.source_ip, alert.source_ip), (Some(ours), Some(theirs)) if ours == theirs);
        same_subject
            && alert.time_ms >= self.start_ms - LEAD_TOLERANCE_MS
            && alert.time_ms <= self.end_ms + LAG_TOLERANCE_MS
    }

    fn matches(&self, alert: &AlertView<'_>) -> bool {
        alert.category == self.label.category && self.fits(alert)
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] })
}

fn group_stats(name: &str, results: &[&IncidentResult]) -> GroupStats {
    let caught: Vec<&&IncidentResult> = results.iter().filter(|r| r.caught).collect();
    let mut latencies: Vec<f64> = caught.iter().filter_map(|r| r.latency_secs).collect();
    let mut alert_counts: Vec<f64> = caught.iter().map(|r| r.alerts as f64).collect();
    GroupStats {
        name: name.to_string(),
        incidents: results.len(),
        caught: caught.len(),
        recall: (!results.is_empty()).then(|| caught.len() as f64 / results.len() as f64),
        latency_max_secs: latencies.iter().copied().reduce(f64::max),
        latency_median_secs: median(&mut latencies),
        alerts_per_incident_max: caught.iter().map(|r| r.alerts).max(),
        alerts_per_incident_median: median(&mut alert_counts),
    }
}

/// Names in the preferred order first, then any others alphabetically.
fn ordered_names<'a>(preferred: &[&'a str], present: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let present: BTreeSet<&str> = present.collect();
    let mut names: Vec<&str> = preferred.iter().copied().filter(|n| present.contains(n)).collect();
    names.extend(present.iter().copied().filter(|n| !preferred.contains(n)));
    names
}

pub fn evaluate(alerts: &[serde_json::Value], labels: &Labels) -> EvalReport {
    let mut problems = Vec::new();

    // Alerts grouped by id; an alert without id is its own group.
    let mut by_id: BTreeMap<String, Vec<AlertView<'_>>> = BTreeMap::new();
    let mut unreadable = 0;
    for (index, value) in alerts.iter().enumerate() {
        match read_alert(value) {
            Ok((id, view)) => {
                let key = id.map(str::to_string).unwrap_or_else(|| format!("#{index} (no id)"));
                by_id.entry(key).or_default().push(view);
            }
            Err(reason) => {
                unreadable += 1;
                problems.push(format!("alert #{index} {reason}"));
            }
        }
    }

    let mut incidents = Vec::with_capacity(labels.incidents.len());
    let mut unusable_incidents = Vec::new();
    for label in &labels.incidents {
        match (parse_time_text(&label.start), parse_time_text(&label.end)) {
            (Some(start_ms), Some(end_ms)) => incidents.push(IncidentView { label, start_ms, end_ms }),
            _ => {
                problems.push(format!("incident {} has an unreadable start or end; it cannot be matched", label.id));
                unusable_incidents.push(label);
            }
        }
    }

    let warmup_end_ms = match parse_time_text(&labels.start) {
        Some(start) => start.saturating_add(i64::from(labels.warmup_days) * MS_PER_DAY),
        None => {
            problems.push(format!(
                "labels start `{}` is not RFC 3339; every alert is treated as after warm-up",
                labels.start
            ));
            i64::MIN
        }
    };

    // Per incident: matching alert ids and the first matching time; other categories seen.
    let mut matched_ids: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); incidents.len()];
    let mut first_match_ms: Vec<Option<i64>> = vec![None; incidents.len()];
    let mut other_categories: Vec<BTreeSet<&str>> = vec![BTreeSet::new(); incidents.len()];
    let mut false_alerts = Vec::new();
    let (mut matched, mut during_warmup) = (0, 0);
    for (id, copies) in &by_id {
        let mut matched_any = false;
        for (i, incident) in incidents.iter().enumerate() {
            for alert in copies {
                if incident.matches(alert) {
                    matched_any = true;
                    matched_ids[i].insert(id.as_str());
                    first_match_ms[i] = Some(first_match_ms[i].map_or(alert.time_ms, |t| t.min(alert.time_ms)));
                } else if incident.fits(alert) {
                    other_categories[i].insert(alert.category);
                }
            }
        }
        let Some(earliest) = copies.iter().min_by_key(|a| a.time_ms) else {
            continue;
        };
        if matched_any {
            matched += 1;
        } else if earliest.time_ms < warmup_end_ms {
            during_warmup += 1;
        } else {
            false_alerts.push(FalseAlert {
                id: id.clone(),
                detector: earliest.detector.to_string(),
                category: earliest.category.to_string(),
                account: earliest.account.to_string(),
                time: format_time(earliest.time_ms),
                nearest_benign: nearest_benign(labels, earliest),
            });
        }
    }
    false_alerts.sort_by(|a, b| (&a.time, &a.account, &a.id).cmp(&(&b.time, &b.account, &b.id)));

    let mut results: Vec<IncidentResult> = incidents
        .iter()
        .enumerate()
        .map(|(i, incident)| IncidentResult {
            id: incident.label.id.clone(),
            kind: incident.label.kind.clone(),
            category: incident.label.category.clone(),
            accounts: incident.label.accounts.clone(),
            start: incident.label.start.clone(),
            caught: !matched_ids[i].is_empty(),
            latency_secs: first_match_ms[i].map(|t| (t - incident.start_ms).max(0) as f64 / MS_PER_SECOND as f64),
            alerts: matched_ids[i].len(),
            other_category_alerts: other_categories[i].iter().map(|c| c.to_string()).collect(),
        })
        .collect();
    results.extend(unusable_incidents.iter().map(|label| IncidentResult {
        id: label.id.clone(),
        kind: label.kind.clone(),
        category: label.category.clone(),
        accounts: label.accounts.clone(),
        start: label.start.clone(),
        caught: false,
        latency_secs: None,
        alerts: 0,
        other_category_alerts: Vec::new(),
    }));

    let grouped = |names: Vec<&str>, key: fn(&IncidentResult) -> &str| -> Vec<GroupStats> {
        names
            .into_iter()
            .map(|name| group_stats(name, &results.iter().filter(|r| key(r) == name).collect::<Vec<_>>()))
            .collect()
    };
    let by_category =
        grouped(ordered_names(&CATEGORY_ORDER, results.iter().map(|r| r.category.as_str())), |r| &r.category);
    let by_kind = grouped(ordered_names(&KIND_ORDER, results.iter().map(|r| r.kind.as_str())), |r| &r.kind);
    let overall = group_stats("overall", &results.iter().collect::<Vec<_>>());

    let missed: Vec<MissedIncident> = results
        .iter()
        .filter(|r| !r.caught)
        .map(|r| MissedIncident {
            id: r.id.clone(),
            kind: r.kind.clone(),
            category: r.category.clone(),
            accounts: r.accounts.clone(),
            start: r.start.clone(),
            description: labels
                .incidents
                .iter()
                .find(|l| l.id == r.id)
                .map(|l| l.description.clone())
                .unwrap_or_default(),
            alerted_as: r.other_category_alerts.clone(),
        })
        .collect();

    let account_days_evaluated = labels.accounts as u64 * u64::from(labels.days.saturating_sub(labels.warmup_days));
    let false_alerts_per_100_account_days =
        (account_days_evaluated > 0).then(|| false_alerts.len() as f64 * 100.0 / account_days_evaluated as f64);
    let all_incidents_caught = missed.is_empty();
    let false_alerts_within_budget = match false_alerts_per_100_account_days {
        Some(rate) => rate <= MAX_FALSE_ALERTS_PER_100_ACCOUNT_DAYS,
        None => false_alerts.is_empty(),
    };
    let alerts_per_incident_within_budget =
        overall.alerts_per_incident_median.is_none_or(|m| m <= MAX_MEDIAN_ALERTS_PER_INCIDENT);

    EvalReport {
        seed: labels.seed,
        accounts: labels.accounts,
        days: labels.days,
        warmup_days: labels.warmup_days,
        account_days_evaluated,
        alerts: AlertCounts {
            received: alerts.len(),
            distinct: by_id.len(),
            matched,
            during_warmup,
            false_alerts: false_alerts.len(),
            unreadable,
        },
        false_alerts_per_100_account_days,
        by_category,
        by_kind,
        overall,
        incidents: results,
        missed,
        false_alerts,
        problems,
        pass: PassCriteria {
            all_incidents_caught,
            false_alerts_within_budget,
            alerts_per_incident_within_budget,
            all: all_incidents_caught && false_alerts_within_budget && alerts_per_incident_within_budget,
        },
    }
}

fn nearest_benign(labels: &Labels, alert: &AlertView<'_>) -> Option<NearbyBenign> {
    labels
        .benign
        .iter()
        .filter(|b| b.account == alert.account)
        .filter_map(|b| parse_time_text(&b.time).map(|t| (b, alert.time_ms - t)))
        .filter(|(_, offset)| offset.abs() <= BENIGN_NEIGHBOURHOOD_MS)
        .min_by_key(|(_, offset)| offset.abs())
        .map(|(b, offset)| NearbyBenign {
            kind: b.kind.clone(),
            time: b.time.clone(),
            description: b.description.clone(),
            offset_secs: offset as f64 / MS_PER_SECOND as f64,
        })
}

/// `45s`, `3m05s`, `2h10m`, `-` when absent.
fn duration_text(seconds: Option<f64>) -> String {
    let Some(seconds) = seconds else {
        return "-".to_string();
    };
    let total = seconds.round() as i64;
    let sign = if total < 0 { "-" } else { "" };
    let total = total.abs();
    if total < 60 {
        format!("{sign}{total}s")
    } else if total < 3600 {
        format!("{sign}{}m{:02}s", total / 60, total % 60)
    } else {
        format!("{sign}{}h{:02}m", total / 3600, total % 3600 / 60)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn write_group(f: &mut fmt::Formatter<'_>, indent: &str, group: &GroupStats) -> fmt::Result {
    let recall = group.recall.map_or("-".to_string(), |r| format!("{:.1}%", r * 100.0));
    let alerts_median = group.alerts_per_incident_median.map_or("-".to_string(), |m| format!("{m:.1}"));
    let alerts_max = group.alerts_per_incident_max.map_or("-".to_string(), |m| m.to_string());
    writeln!(
        f,
        "{indent}{:<22} {:>9} {:>7} {:>7} {:>10} {:>10} {:>7} {:>5}",
        group.name,
        group.incidents,
        group.caught,
        recall,
        duration_text(group.latency_median_secs),
        duration_text(group.latency_max_secs),
        alerts_median,
        alerts_max
    )
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {}: {} accounts x {} days, warm-up {} days, {} account-days evaluated",
            self.seed, self.accounts, self.days, self.warmup_days, self.account_days_evaluated
        )?;
        let a = &self.alerts;
        writeln!(
            f,
            "alerts: {} received, {} distinct ids: {} matched an incident, {} during warm-up, {} false, {} unreadable",
            a.received, a.distinct, a.matched, a.during_warmup, a.false_alerts, a.unreadable
        )?;
        writeln!(f)?;
        let header = |f: &mut fmt::Formatter<'_>, cells: [&str; 8]| {
            let [name, incidents, caught, recall, latency_median, latency_max, alerts_median, alerts_max] = cells;
            writeln!(
                f,
                "  {name:<22} {incidents:>9} {caught:>7} {recall:>7} {latency_median:>10} {latency_max:>10} {alerts_median:>7} {alerts_max:>5}"
            )
        };
        header(f, ["", "incidents", "caught", "recall", "latency", "latency", "alerts", "alerts"])?;
        header(f, ["", "", "", "", "median", "max", "/inc md", "max"])?;
        writeln!(f, "by category")?;
        for group in &self.by_category {
            write_group(f, "  ", group)?;
        }
        writeln!(f, "by incident kind")?;
        for group in &self.by_kind {
            write_group(f, "  ", group)?;
        }
        write_group(f, "  ", &self.overall)?;
        writeln!(f)?;

        let rate = self.false_alerts_per_100_account_days.map_or("-".to_string(), |r| format!("{r:.2}"));
        writeln!(
            f,
            "{}  false alerts: {} = {rate} per 100 account-days (budget {MAX_FALSE_ALERTS_PER_100_ACCOUNT_DAYS:.2})",
            verdict(self.pass.false_alerts_within_budget),
            a.false_alerts
        )?;
        let median = self.overall.alerts_per_incident_median.map_or("-".to_string(), |m| format!("{m:.1}"));
        writeln!(
            f,
            "{}  median alerts per caught incident: {median} (budget {MAX_MEDIAN_ALERTS_PER_INCIDENT})",
            verdict(self.pass.alerts_per_incident_within_budget)
        )?;
        writeln!(
            f,
            "{}  incidents caught with the right category: {} of {}",
            verdict(self.pass.all_incidents_caught),
            self.overall.caught,
            self.overall.incidents
        )?;
        writeln!(f, "{}  overall", verdict(self.pass.all))?;

        if !self.missed.is_empty() {
            writeln!(f, "\nmissed incidents:")?;
            for m in &self.missed {
                let alerted_as = if m.alerted_as.is_empty() {
                    String::new()
                } else {
                    format!("  (alerted as {})", m.alerted_as.join(", "))
                };
                let mut accounts = m.accounts.iter().take(3).cloned().collect::<Vec<_>>().join(",");
                if m.accounts.len() > 3 {
                    accounts.push_str(&format!(" +{} more", m.accounts.len() - 3));
                }
                writeln!(f, "  {} {} {} {} {}{alerted_as}", m.id, m.start, m.kind, m.category, accounts)?;
                writeln!(f, "      {}", m.description)?;
            }
        }
        if !self.false_alerts.is_empty() {
            writeln!(f, "\nfalse alerts:")?;
            for alert in &self.false_alerts {
                writeln!(f, "  {} {} {} {} ({})", alert.time, alert.category, alert.detector, alert.account, alert.id)?;
                if let Some(benign) = &alert.nearest_benign {
                    writeln!(
                        f,
                        "      near benign {} at {} ({} from it): {}",
                        benign.kind,
                        benign.time,
                        duration_text(Some(benign.offset_secs)),
                        benign.description
                    )?;
                }
            }
        }
        if !self.problems.is_empty() {
            writeln!(f, "\nproblems:")?;
            for problem in &self.problems {
                writeln!(f, "  {problem}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
