//! Tests of the generator as a whole: determinism, the event contract, ordering, and that
//! every label is backed by events (and nothing in the events contradicts the labels).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;

use serde::Deserialize;

use super::*;
use crate::detection::time::{DAY, HOUR, MINUTE};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line<'a> {
    id: &'a str,
    time: &'a str,
    account: &'a str,
    action: &'a str,
    outcome: &'a str,
    credential: Option<CredentialField<'a>>,
    #[serde(borrow)]
    source: SourceField<'a>,
    target: TargetField<'a>,
    bytes: u64,
    records: u64,
    reason: Option<&'a str>,
    tenant: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialField<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    owner: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceField<'a> {
    ip: &'a str,
    country: &'a str,
    #[allow(dead_code)]
    asn: u32,
    user_agent: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetField<'a> {
    system: &'a str,
    resource: &'a str,
}

/// What could give an incident away: if anything of this kind appears after warm-up but never
/// before, a detector could key on it.
#[derive(Default)]
struct Vocabulary {
    actions: BTreeSet<String>,
    outcome_reasons: BTreeSet<(String, Option<String>)>,
    user_agents: BTreeSet<String>,
    systems: BTreeSet<String>,
    countries: BTreeSet<String>,
}

impl Vocabulary {
    fn add(&mut self, line: &Line<'_>) {
        self.actions.insert(line.action.to_string());
        self.outcome_reasons.insert((line.outcome.to_string(), line.reason.map(str::to_string)));
        self.user_agents.insert(line.source.user_agent.to_string());
        self.systems.insert(line.target.system.to_string());
        self.countries.insert(line.source.country.to_string());
    }
}

/// Checks every line as it is written, keeping only what the label checks need, so a
/// million-event run does not sit in memory.
struct LineChecker {
    seed: u64,
    warmup_end_ms: i64,
    partial: Vec<u8>,
    lines: u64,
    last_time: String,
    bytes_written: u64,
    errors: Vec<String>,
    events_per_day: BTreeMap<String, u64>,
    warmup_vocabulary: Vocabulary,
    later_vocabulary: Vocabulary,
    ips_seen_in_warmup: HashSet<String>,
    /// After warm-up, events from IPs never seen in warm-up: ip -> (time, account, outcome).
    new_ip_events: HashMap<String, Vec<(i64, String, String)>>,
    revoked_at: HashMap<String, i64>,
    /// Events presenting a key after its revoke: (key, time, account).
    revoked_key_uses: Vec<(String, i64, String)>,
    /// Account that first presented each key.
    first_user: HashMap<String, String>,
    /// Events presenting a key another account presented first: (key, time, account, owner field).
    foreign_key_uses: Vec<(String, i64, String, Option<String>)>,
    owner_mismatches: u64,
    /// After warm-up, each account's events: (time, outcome).
    later_events: HashMap<String, Vec<(i64, String)>>,
    /// The keys each account presented in each clock hour.
    keys_by_hour: HashMap<(String, i64), BTreeSet<String>>,
}

impl LineChecker {
    fn new(opts: &GenOptions) -> Self {
        LineChecker {
            seed: opts.seed,
            warmup_end_ms: opts.start.timestamp_millis() + i64::from(opts.warmup_days) * DAY,
            partial: Vec::new(),
            lines: 0,
            last_time: String::new(),
            bytes_written: 0,
            errors: Vec::new(),
            events_per_day: BTreeMap::new(),
            warmup_vocabulary: Vocabulary::default(),
            later_vocabulary: Vocabulary::default(),
            ips_seen_in_warmup: HashSet::new(),
            new_ip_events: HashMap::new(),
            revoked_at: HashMap::new(),
            revoked_key_uses: Vec::new(),
            first_user: HashMap::new(),
            foreign_key_uses: Vec::new(),
            owner_mismatches: 0,
            later_events: HashMap::new(),
            keys_by_hour: HashMap::new(),
        }
    }

    fn error(&mut self, message: String) {
        if self.errors.len() < 20 {
            self.errors.push(message);
        }
    }

    fn check_line(&mut self, raw: &[u8]) {
        let line: Line<'_> = match serde_json::from_slice(raw) {
            Ok(line) => line,
            Err(e) => return self.error(format!("line {}: {e}: {}", self.lines, String::from_utf8_lossy(raw))),
        };
        let expected_id = format!("evt-{:x}-{:x}", self.seed, self.lines);
        if line.id != expected_id {
            self.error(format!("line {}: id {} instead of {expected_id}", self.lines, line.id));
        }
        let time_ms = match chrono::DateTime::parse_from_rfc3339(line.time) {
            Ok(t) if line.time.len() == 24 && line.time.ends_with('Z') && &line.time[19..20] == "." => {
                t.timestamp_millis()
            }
            _ => {
                return self
                    .error(format!("line {}: time {} is not RFC 3339 UTC with milliseconds", self.lines, line.time))
            }
        };
        if line.time < self.last_time.as_str() {
            self.error(format!("line {}: time {} before {}", self.lines, line.time, self.last_time));
        }
        self.last_time = line.time.to_string();
        *self.events_per_day.entry(line.time[..10].to_string()).or_default() += 1;

        let outcome_ok = matches!(line.outcome, "success" | "failure" | "denied");
        let fields_ok = !line.account.is_empty()
            && !line.action.is_empty()
            && outcome_ok
            && (line.outcome == "success") == line.reason.is_none()
            && matches!(line.tenant, "acme" | "globex")
            && line.source.ip.split('.').count() == 4
            && line.source.country.len() == 2
            && !line.target.system.is_empty()
            && !line.target.resource.is_empty()
            && (line.outcome == "success" || (line.bytes == 0 && line.records == 0));
        if !fields_ok {
            self.error(format!("line {}: bad fields: {}", self.lines, String::from_utf8_lossy(raw)));
        }

        let after_warmup = time_ms >= self.warmup_end_ms;
        if after_warmup {
            self.later_vocabulary.add(&line);
            self.later_events.entry(line.account.to_string()).or_default().push((time_ms, line.outcome.to_string()));
            if !self.ips_seen_in_warmup.contains(line.source.ip) {
                self.new_ip_events.entry(line.source.ip.to_string()).or_default().push((
                    time_ms,
                    line.account.to_string(),
                    line.outcome.to_string(),
                ));
            }
        } else {
            self.warmup_vocabulary.add(&line);
            self.ips_seen_in_warmup.insert(line.source.ip.to_string());
        }

        if let Some(credential) = &line.credential {
            if !matches!(credential.kind, "api_key" | "oauth_token") {
                self.error(format!("line {}: credential type {}", self.lines, credential.kind));
            }
            self.keys_by_hour
                .entry((line.account.to_string(), time_ms.div_euclid(HOUR)))
                .or_default()
                .insert(credential.id.to_string());
            if line.action == "credential.revoke" {
                self.revoked_at.insert(credential.id.to_string(), time_ms);
            } else if let Some(&revoked) = self.revoked_at.get(credential.id) {
                if time_ms > revoked {
                    self.revoked_key_uses.push((credential.id.to_string(), time_ms, line.account.to_string()));
                }
            }
            let first = self.first_user.entry(credential.id.to_string()).or_insert_with(|| line.account.to_string());
            if first != line.account {
                let owner = credential.owner.map(str::to_string);
                self.foreign_key_uses.push((credential.id.to_string(), time_ms, line.account.to_string(), owner));
            } else if credential.owner.is_some_and(|owner| owner != line.account) {
                self.owner_mismatches += 1;
            }
        }
        self.lines += 1;
    }
}

impl Write for LineChecker {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes_written += buf.len() as u64;
        let mut rest = buf;
        while let Some(newline) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.check_line(&rest[..newline]);
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&rest[..newline]);
                self.check_line(&line);
            }
            rest = &rest[newline + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn small_options(seed: u64) -> GenOptions {
    GenOptions { seed, accounts: 20, days: 16, warmup_days: 14, ..GenOptions::default() }
}

fn generate_bytes(opts: &GenOptions) -> (Vec<u8>, Labels) {
    let mut out = Vec::new();
    match generate(opts, &mut out) {
        Ok(labels) => (out, labels),
        Err(e) => panic!("generating into memory failed: {e}"),
    }
}

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).unwrap_or(i64::MIN)
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (first, first_labels) = generate_bytes(&small_options(7));
    let (second, second_labels) = generate_bytes(&small_options(7));
    assert!(!first.is_empty());
    assert!(first == second, "same seed gave different bytes");
    assert_eq!(first_labels, second_labels);
    let (other, other_labels) = generate_bytes(&small_options(8));
    assert!(first != other, "different seeds gave the same bytes");
    assert_ne!(first_labels, other_labels);
}

#[test]
fn output_is_pinned_for_a_seed() {
    // If this fails, a change altered what existing seeds generate: that breaks every stored
    // evaluation. Change the generator only on purpose, then update the pin.
    let opts = GenOptions { seed: 42, accounts: 12, days: 3, warmup_days: 1, ..GenOptions::default() };
    let (bytes, labels) = generate_bytes(&opts);
    let labels_json = serde_json::to_vec(&labels).unwrap_or_default();
    let digest = (xxhash_rust::xxh3::xxh3_64(&bytes), xxhash_rust::xxh3::xxh3_64(&labels_json), bytes.len());
    assert_eq!(digest, (6334293667536857054, 10991469704349972622, 8463674));
}

#[test]
fn small_run_events_follow_the_contract_in_time_order() {
    let (checker, labels) = run_checked(&small_options(3));
    assert!(checker.lines > 1000, "only {} events", checker.lines);
    assert_eq!(labels.start, "2026-01-05T00:00:00.000Z");
    assert_eq!(checker.events_per_day.keys().next().map(String::as_str), Some("2026-01-05"));
    assert_eq!(checker.events_per_day.keys().last().map(String::as_str), Some("2026-01-20"));
}

#[test]
fn degenerate_options_give_empty_or_small_runs_without_panicking() {
    for (accounts, days, warmup_days) in [(0, 5, 2), (1, 0, 0), (1, 3, 0), (3, 2, 5), (2, 4, 1)] {
        let opts = GenOptions { seed: 5, accounts, days, warmup_days, ..GenOptions::default() };
        let mut checker = LineChecker::new(&opts);
        let labels = match generate(&opts, &mut checker) {
            Ok(labels) => labels,
            Err(e) => panic!("generate failed for {opts:?}: {e}"),
        };
        assert!(checker.errors.is_empty(), "{opts:?}: {:#?}", checker.errors);
        if accounts == 0 || days == 0 {
            assert_eq!(checker.lines, 0, "{opts:?}");
        }
        if days <= warmup_days {
            assert!(labels.incidents.is_empty(), "{opts:?}: incidents without an evaluated period");
        }
        for incident in &labels.incidents {
            assert!(ms(&incident.start) >= checker.warmup_end_ms, "{opts:?}: {incident:?}");
        }
    }
}

const BENIGN_KINDS: [&str; 8] = [
    "auth_retry",
    "key_rotation_revoke",
    "key_rotation_rotate",
    "new_ip_known_network",
    "holiday_gap",
    "gradual_growth",
    "isolated_denied",
    "weekly_report",
];

/// Every incident kind at least twice, after warm-up; every benign kind, also after warm-up.
fn assert_label_coverage(labels: &Labels, warmup_end_ms: i64) {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for incident in &labels.incidents {
        *kinds.entry(incident.kind.as_str()).or_default() += 1;
        let (start, end) = (ms(&incident.start), ms(&incident.end));
        assert!(start >= warmup_end_ms && start <= end, "{incident:?}");
        assert!(!incident.accounts.is_empty(), "{incident:?}");
        let kind = incidents::IncidentKind::ALL.iter().find(|k| k.name() == incident.kind);
        assert_eq!(kind.map(|k| k.category()), Some(incident.category.as_str()), "{incident:?}");
    }
    for kind in incidents::IncidentKind::ALL {
        let count = kinds.get(kind.name()).copied().unwrap_or(0);
        assert!(count >= 2, "{} appears {count} times", kind.name());
    }
    let ids: Vec<String> = (1..=labels.incidents.len()).map(|i| format!("inc-{i:03}")).collect();
    assert_eq!(labels.incidents.iter().map(|i| i.id.clone()).collect::<Vec<_>>(), ids, "ids number incidents in order");
    for kind in BENIGN_KINDS {
        let after_warmup = labels.benign.iter().any(|b| b.kind == kind && ms(&b.time) >= warmup_end_ms);
        assert!(after_warmup, "benign kind {kind} never happens after warm-up");
    }
}

#[test]
fn reference_size_labels_cover_every_kind() {
    // Planning alone decides the labels, so this checks the 100 x 21 reference cheaply; the
    // events behind the labels are checked below on a smaller run.
    for seed in [1, 2, 3, 2026] {
        let opts = GenOptions { seed, ..GenOptions::default() };
        let plan = Plan::build(&opts);
        assert_label_coverage(&plan.labels, plan.world.warmup_end_ms);
    }
}

fn run_checked(opts: &GenOptions) -> (LineChecker, Labels) {
    let mut checker = LineChecker::new(opts);
    let labels = match generate(opts, &mut checker) {
        Ok(labels) => labels,
        Err(e) => panic!("generate failed for {opts:?}: {e}"),
    };
    assert!(checker.errors.is_empty(), "{:#?}", checker.errors);
    assert!(checker.partial.is_empty(), "output does not end with a newline");
    (checker, labels)
}

/// The events say what the labels say: incident traffic exists, carries no marker, and
/// nothing outside incidents looks like one of the credential incidents.
fn assert_labels_backed_by_events(checker: &LineChecker, labels: &Labels) {
    assert_eq!(checker.owner_mismatches, 0, "credential.owner differs from the account outside foreign-key incidents");

    // No marker: everything incidents use also shows up in warm-up traffic.
    let (before, after) = (&checker.warmup_vocabulary, &checker.later_vocabulary);
    fn only_later<T: Ord + Clone>(later: &BTreeSet<T>, before: &BTreeSet<T>) -> Vec<T> {
        later.difference(before).cloned().collect()
    }
    assert_eq!(only_later(&after.actions, &before.actions), Vec::<String>::new(), "actions first seen after warm-up");
    assert_eq!(
        only_later(&after.outcome_reasons, &before.outcome_reasons),
        vec![],
        "outcomes/reasons first seen after warm-up"
    );
    assert_eq!(
        only_later(&after.user_agents, &before.user_agents),
        Vec::<String>::new(),
        "agents first seen after warm-up"
    );
    assert_eq!(only_later(&after.systems, &before.systems), Vec::<String>::new(), "systems first seen after warm-up");

    let in_window = |t: i64, incident: &Incident| t >= ms(&incident.start) && t <= ms(&incident.end);
    let incidents_of = |kind: &'static str| labels.incidents.iter().filter(move |i| i.kind == kind);

    // Source-IP incidents: their events come from the labelled IP, never seen in warm-up.
    for incident in labels.incidents.iter().filter(|i| i.source_ip.is_some()) {
        let ip = incident.source_ip.as_deref().unwrap_or_default();
        let events: Vec<_> = checker
            .new_ip_events
            .get(ip)
            .map(|v| v.iter().filter(|e| in_window(e.0, incident)).collect())
            .unwrap_or_default();
        let accounts: BTreeSet<&str> = events.iter().map(|e| e.1.as_str()).collect();
        match incident.kind.as_str() {
            "failed_auth_burst" => {
                assert!(
                    events.len() >= 30 && events.iter().all(|e| e.2 == "failure"),
                    "{incident:?}: {} events",
                    events.len()
                )
            }
            "password_spray" => {
                assert_eq!(accounts.len(), incident.accounts.len(), "{incident:?}");
                assert!(events.iter().all(|e| e.2 == "failure"), "{incident:?}");
            }
            "new_network" => assert!(events.len() >= 5 && accounts.len() == 1, "{incident:?}"),
            other => panic!("unexpected source_ip on {other}"),
        }
    }

    // A revoked key is used again only in revoked_key_use incidents.
    let revoked_incidents: Vec<&Incident> = incidents_of("revoked_key_use").collect();
    for (key, time, account) in &checker.revoked_key_uses {
        let explained = revoked_incidents
            .iter()
            .any(|i| i.credential_id.as_deref() == Some(key) && i.accounts[0] == *account && in_window(*time, i));
        assert!(explained, "{account} used revoked key {key} at {time} outside any incident");
    }
    for incident in &revoked_incidents {
        assert!(checker.revoked_key_uses.iter().any(|u| in_window(u.1, incident)), "{incident:?} has no events");
    }

    // Another account's key appears only in foreign_key incidents, once with and once without owner.
    let foreign_incidents: Vec<&Incident> = incidents_of("foreign_key").collect();
    for (key, time, account, _) in &checker.foreign_key_uses {
        let explained = foreign_incidents
            .iter()
            .any(|i| i.credential_id.as_deref() == Some(key) && i.accounts[0] == *account && in_window(*time, i));
        assert!(explained, "{account} presented foreign key {key} at {time} outside any incident");
    }
    let mut owner_variants = BTreeSet::new();
    for incident in &foreign_incidents {
        let uses: Vec<_> = checker.foreign_key_uses.iter().filter(|u| in_window(u.1, incident)).collect();
        assert!(!uses.is_empty(), "{incident:?} has no events");
        for (_, _, _, owner) in uses {
            if let Some(owner) = owner {
                assert_eq!(owner, &incident.accounts[1], "owner field names the real owner");
            }
            owner_variants.insert(owner.is_some());
        }
    }
    assert_eq!(owner_variants.len(), 2, "foreign_key needs one incident with owner and one without");
}

#[test]
fn events_back_the_labels() {
    // Small enough for a debug build, large enough to hold every incident kind.
    let opts = GenOptions { seed: 11, accounts: 40, days: 17, warmup_days: 14, ..GenOptions::default() };
    let (checker, labels) = run_checked(&opts);
    assert_label_coverage(&labels, checker.warmup_end_ms);
    assert_labels_backed_by_events(&checker, &labels);

    // Volume: 30-60k events per 100 accounts per day, lines of a few hundred bytes.
    let per_100_accounts_per_day = checker.lines * 100 / (40 * u64::from(opts.days));
    assert!(
        (30_000..=60_000).contains(&per_100_accounts_per_day),
        "{per_100_accounts_per_day} events/day per 100 accounts"
    );
    let bytes_per_line = checker.bytes_written / checker.lines.max(1);
    assert!((250..=450).contains(&bytes_per_line), "{bytes_per_line} bytes/line");
    assert_eq!(checker.events_per_day.len(), 17);
}

/// The same checks on the 100 x 21 reference run: about a million events (some 40 s in a
/// debug build).
#[test]
fn reference_run_events_back_the_labels() {
    let opts = GenOptions::default();
    let (checker, labels) = run_checked(&opts);
    assert_label_coverage(&labels, checker.warmup_end_ms);
    assert_labels_backed_by_events(&checker, &labels);
    let per_day = checker.lines / u64::from(opts.days);
    assert!((30_000..=60_000).contains(&per_day), "{per_day} events/day");
    println!("{} events, {per_day}/day, {} bytes/line", checker.lines, checker.bytes_written / checker.lines.max(1));
}

const HARD_KINDS: [&str; 4] = ["low_slow_spray", "sustained_exfil", "night_session", "slow_probing"];
const TRAP_KINDS: [&str; 6] =
    ["outage", "monthly_job", "shared_key", "dst_change", "holiday_return", "key_rotation_overlap"];

#[test]
fn hard_set_labels_cover_every_hard_kind_and_trap() {
    for seed in [1, 2, 3] {
        let plan = Plan::build(&GenOptions::hard(seed));
        let labels = &plan.labels;
        assert_eq!((labels.accounts, labels.days, labels.warmup_days), (80, 52, 45));
        for kind in HARD_KINDS {
            let count = labels.incidents.iter().filter(|i| i.kind == kind).count();
            assert!(count >= 2, "seed {seed}: {kind} appears {count} times");
        }
        for incident in labels.incidents.iter().filter(|i| HARD_KINDS.contains(&i.kind.as_str())) {
            let kind = incidents::IncidentKind::HARD.iter().find(|k| k.name() == incident.kind);
            assert_eq!(kind.map(|k| k.category()), Some(incident.category.as_str()), "{incident:?}");
        }
        let judged = |b: &&BenignLabel| ms(&b.time) >= plan.world.warmup_end_ms;
        for kind in TRAP_KINDS {
            assert!(labels.benign.iter().filter(judged).any(|b| b.kind == kind), "seed {seed}: no {kind} judged");
        }
        // A monthly job's first run is in the history, so the judged one is its second.
        let monthly: BTreeSet<&str> =
            labels.benign.iter().filter(|b| b.kind == "monthly_job").map(|b| b.account.as_str()).collect();
        for account in monthly {
            let runs: Vec<&BenignLabel> =
                labels.benign.iter().filter(|b| b.kind == "monthly_job" && b.account == account).collect();
            assert!(runs.iter().any(|b| !judged(b)) && runs.iter().any(judged), "seed {seed}: {account}: {runs:?}");
        }
        let outage_accounts = labels.benign.iter().filter(judged).filter(|b| b.kind == "outage").count();
        assert!(outage_accounts >= 4, "seed {seed}: the judged outage hits {outage_accounts} accounts");
    }
    // The ordinary set has none of it.
    let plan = Plan::build(&GenOptions::default());
    assert!(plan.labels.incidents.iter().all(|i| !HARD_KINDS.contains(&i.kind.as_str())));
    assert!(plan.labels.benign.iter().all(|b| !TRAP_KINDS.contains(&b.kind.as_str())));
}

/// Most events in any window of `width` ending at an event.
fn densest(times: &[i64], width: i64) -> usize {
    (0..times.len()).map(|end| end + 1 - times.partition_point(|&t| t <= times[end] - width)).max().unwrap_or(0)
}

#[test]
fn hard_attacks_stay_under_the_short_window_thresholds() {
    let opts = GenOptions { accounts: 40, ..GenOptions::hard(4) };
    let (checker, labels) = run_checked(&opts);
    let of = |incident: &Incident, account: &str, outcome: &str| -> Vec<i64> {
        let (start, end) = (ms(&incident.start), ms(&incident.end));
        let mut times: Vec<i64> = checker.later_events[account]
            .iter()
            .filter(|(t, o)| (start..=end).contains(t) && o == outcome)
            .map(|e| e.0)
            .collect();
        times.sort_unstable();
        times
    };
    let mut seen = BTreeSet::new();
    for incident in &labels.incidents {
        let account = incident.accounts[0].as_str();
        match incident.kind.as_str() {
            "low_slow_spray" => {
                let ip = incident.source_ip.as_deref().unwrap_or_default();
                let mut by_time: Vec<(i64, &str)> =
                    checker.new_ip_events[ip].iter().map(|e| (e.0, e.1.as_str())).collect();
                by_time.sort_unstable();
                let most_in_30_min = (0..by_time.len())
                    .map(|i| {
                        let from = by_time[i].0;
                        by_time[i..]
                            .iter()
                            .take_while(|e| e.0 < from + 30 * MINUTE)
                            .map(|e| e.1)
                            .collect::<BTreeSet<_>>()
                            .len()
                    })
                    .max()
                    .unwrap_or(0);
                assert!(most_in_30_min < 10, "{incident:?}: {most_in_30_min} accounts in 30 min");
                assert!(incident.accounts.len() >= 20, "{incident:?}");
            }
            "slow_probing" => {
                let denied = of(incident, account, "denied");
                assert!(densest(&denied, 10 * MINUTE) < 15, "{incident:?}: {denied:?}");
                assert!(densest(&denied, HOUR) >= 30, "{incident:?}: {} denials", denied.len());
            }
            "night_session" => {
                let calls = of(incident, account, "success");
                let hours: BTreeSet<i64> = calls.iter().map(|t| t.div_euclid(HOUR)).collect();
                assert_eq!(hours.len(), 2, "{incident:?}: {calls:?}");
                for hour in hours {
                    let in_hour = calls.iter().filter(|t| t.div_euclid(HOUR) == hour).count();
                    assert!(in_hour < 3, "{incident:?}: {in_hour} calls in one clock hour");
                }
                assert!(calls.len() >= 3, "{incident:?}");
            }
            "sustained_exfil" => {
                assert!(ms(&incident.end) - ms(&incident.start) >= 6 * HOUR, "{incident:?}");
            }
            _ => continue,
        }
        seen.insert(incident.kind.as_str());
    }
    assert_eq!(seen.len(), HARD_KINDS.len(), "{seen:?}");

    // Overlapping rotations: three keys in use in one hour, none used after its revoke.
    let overlapping: BTreeSet<&str> =
        labels.benign.iter().filter(|b| b.kind == "key_rotation_overlap").map(|b| b.account.as_str()).collect();
    assert!(!overlapping.is_empty());
    for account in overlapping {
        let most = checker.keys_by_hour.iter().filter(|((a, _), _)| a == account).map(|(_, keys)| keys.len()).max();
        assert!(most >= Some(3), "{account}: at most {most:?} keys in an hour");
        let late: Vec<_> = checker.revoked_key_uses.iter().filter(|u| u.2 == account).collect();
        assert!(late.is_empty(), "{account}: {late:?}");
    }
}
