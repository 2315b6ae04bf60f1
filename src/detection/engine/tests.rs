use super::*;
use crate::detection::time::format_rfc3339;
use crate::input::event::decode;
use crate::state::codec::{Reader, Writer};

const MONDAY: Millis = 1_767_571_200_000; // 2026-01-05T00:00:00Z

fn event(t: Millis, account: &str, outcome: &str, extra: &str) -> String {
    format!(
        r#"{{"id":"{account}-{t}-{outcome}","time":"{}","account":"{account}","action":"auth.login","outcome":"{outcome}"{extra}}}"#,
        format_rfc3339(t)
    )
}

fn run(engine: &mut Engine, lines: &[String]) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for line in lines {
        let e = decode(line.as_bytes(), 1 << 20).unwrap();
        let _ = engine.process(&e, &mut alerts);
    }
    alerts
}

fn failure_burst(at: Millis, account: &str, n: i64) -> Vec<String> {
    (0..n).map(|i| event(at + i * 1000, account, "failure", r#","source":{"ip":"203.0.113.9"}"#)).collect()
}

fn pack() -> Vec<Detector> {
    crate::detection::pack::load().unwrap()
}

#[test]
fn one_alert_per_incident_and_a_new_one_after_the_cooldown() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    let alerts = run(&mut engine, &failure_burst(MONDAY, "svc-a", 60));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].detector, "failed-auth-burst");
    assert!(engine.stats().folded_repeats > 0);
    // Still inside the 1h cooldown of the last repeat: folded.
    assert!(run(&mut engine, &failure_burst(MONDAY + 30 * 60_000, "svc-a", 30)).is_empty());
    // Quiet for longer than the cooldown: a new incident.
    let again = run(&mut engine, &failure_burst(MONDAY + 5 * HOUR, "svc-a", 40));
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].id, alerts[0].id);
}

#[test]
fn the_same_events_give_the_same_alert_ids() {
    let lines = failure_burst(MONDAY, "svc-a", 30);
    let first = run(&mut Engine::new(pack(), EngineOptions::default()), &lines);
    let second = run(&mut Engine::new(pack(), EngineOptions::default()), &lines);
    assert_eq!(first, second);
    assert!(!first.is_empty());
}

#[test]
fn late_events_are_judged_per_account() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    let mut alerts = Vec::new();
    let now = event(MONDAY + 5 * HOUR, "svc-a", "success", "");
    engine.process(&decode(now.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
    // Another account may be hours behind (another partition): accepted.
    let other = event(MONDAY, "svc-b", "success", "");
    engine.process(&decode(other.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
    // svc-a two hours back: rejected; 30 minutes back: accepted.
    let late = event(MONDAY + 3 * HOUR, "svc-a", "success", "");
    let err = engine.process(&decode(late.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap_err();
    assert_eq!(err.behind_ms, 2 * HOUR);
    let ok = event(MONDAY + 5 * HOUR - 30 * 60_000, "svc-a", "success", "");
    engine.process(&decode(ok.as_bytes(), 1 << 20).unwrap(), &mut alerts).unwrap();
    assert_eq!(engine.stats().late_events, 1);
}

#[test]
fn account_ceiling_is_counted_and_rules_still_fire() {
    let options = EngineOptions { max_accounts: 1, ..EngineOptions::default() };
    let mut engine = Engine::new(pack(), options);
    run(&mut engine, &[event(MONDAY, "svc-a", "success", "")]);
    let alerts =
        run(&mut engine, &[event(MONDAY + 1000, "svc-b", "success", r#","credential":{"id":"K","owner":"svc-a"}"#)]);
    assert_eq!(engine.accounts_tracked(), 1);
    assert_eq!(engine.stats().untracked_account_events, 1);
    assert_eq!(alerts.len(), 1, "the foreign-key rule needs no account history");
}

#[test]
fn a_provider_service_acting_on_its_own_is_no_account() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    let service = r#","invoked_by":"secretsmanager.amazonaws.com""#;
    // A burst of the service's own failures: no account, no alert.
    let extra = format!(r#","source":{{"ip":"203.0.113.9"}}{service}"#);
    let own: Vec<String> =
        (0..30).map(|i| event(MONDAY + i * 1000, "secretsmanager.amazonaws.com", "failure", &extra)).collect();
    assert_eq!(run(&mut engine, &own), Vec::new());
    assert_eq!((engine.accounts_tracked(), engine.stats().provider_service_events), (0, 30));
    assert_eq!(engine.stats().events, 0);
    // A role's call made through the service is the role's.
    run(&mut engine, &[event(MONDAY, "svc-a", "success", service)]);
    assert_eq!((engine.accounts_tracked(), engine.stats().provider_service_events), (1, 30));
}

#[test]
fn partition_moves_are_counted() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    let mut alerts = Vec::new();
    for (i, partition) in [0u32, 0, 3].into_iter().enumerate() {
        let line = event(MONDAY + i as i64, "svc-a", "success", "");
        engine.process_from(&decode(line.as_bytes(), 1 << 20).unwrap(), Some(partition), &mut alerts).unwrap();
    }
    assert_eq!(engine.stats().account_partition_changes, 1);
}

#[test]
fn declared_schedule_overrides_learning() {
    let mut detectors = pack();
    let off_hours = detectors.iter_mut().find(|d| d.name == "off-hours").unwrap();
    let config = crate::detection::schedule::ScheduleConfig {
        accounts: vec!["svc-payroll-*".into()],
        timezone: "Europe/Berlin".into(),
        days: "mon-fri".into(),
        hours: "07:00-19:00".into(),
    };
    if let DetectorKind::OffHours { schedules, .. } = &mut off_hours.kind {
        schedules.push(crate::detection::schedule::Schedule::new(&config).unwrap());
    }
    let mut engine = Engine::new(detectors, EngineOptions::default());
    // Saturday 2026-01-10 03:00 UTC, no history at all: outside the declared hours.
    let saturday = MONDAY + 5 * DAY + 3 * HOUR;
    let lines: Vec<String> = (0..3).map(|i| event(saturday + i * 60_000, "svc-payroll-eu", "success", "")).collect();
    let alerts = run(&mut engine, &lines);
    assert_eq!(alerts.len(), 1);
    assert!(alerts[0].summary.contains("outside its declared schedule"), "{}", alerts[0].summary);
    // Monday 10:00 Berlin is inside: quiet.
    let monday: Vec<String> =
        (0..3).map(|i| event(MONDAY + 7 * DAY + 9 * HOUR + i * 60_000, "svc-payroll-eu", "success", "")).collect();
    assert!(run(&mut engine, &monday).is_empty());
}

#[test]
fn save_and_restore_continue_identically() {
    let history: Vec<String> = (0..24 * 20)
        .map(|h| {
            event(
                MONDAY + h * HOUR,
                "svc-a",
                if h % 7 == 0 { "failure" } else { "success" },
                r#","credential":{"id":"K1"},"source":{"ip":"198.51.100.4","asn":64500,"country":"US"},"bytes":100000"#,
            )
        })
        .collect();
    let later: Vec<String> = failure_burst(MONDAY + 20 * DAY + 3 * HOUR, "svc-a", 30)
        .into_iter()
        .chain([event(
            MONDAY + 20 * DAY + 4 * HOUR,
            "svc-a",
            "success",
            r#","credential":{"id":"K1"},"source":{"ip":"203.0.113.4","asn":64511,"country":"RU"}"#,
        )])
        .collect();
    let mut straight = Engine::new(pack(), EngineOptions::default());
    run(&mut straight, &history);
    let mut w = Writer::default();
    straight.save(&mut w);
    let mut restored = Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf)).unwrap();
    assert_eq!(restored.accounts_tracked(), straight.accounts_tracked());
    assert_eq!(restored.stats(), straight.stats());
    let a = run(&mut straight, &later);
    let b = run(&mut restored, &later);
    assert_eq!(a, b);
    assert_eq!(a.len(), 2, "{a:#?}");
    // A corrupt state is an error, not a panic.
    assert!(Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf[..w.buf.len() / 2])).is_err());
}

fn key_use(t: Millis, account: &str, key: &str) -> String {
    format!(
        r#"{{"id":"{account}-{t}","time":"{}","account":"{account}","action":"api.call","outcome":"success","credential":{{"id":"{key}"}}}}"#,
        format_rfc3339(t)
    )
}

fn foreign_key_only() -> Vec<Detector> {
    pack().into_iter().filter(|d| d.name == "foreign-key-use").collect()
}

/// The defect of the issue: the first user was evicted from a two-slot set by two more users of
/// the key's first hour, and its own next use was reported as "which until now only <itself>".
#[test]
fn a_key_shared_from_the_start_is_not_foreign_to_any_of_its_users() {
    let mut engine = Engine::new(foreign_key_only(), EngineOptions::default());
    let start: Vec<String> =
        ["ci-a", "ci-b", "ci-c"].iter().enumerate().map(|(i, a)| key_use(MONDAY + i as i64 * 60_000, a, "K")).collect();
    assert!(run(&mut engine, &start).is_empty());
    let later: Vec<String> =
        (1..10).flat_map(|d| ["ci-a", "ci-b", "ci-c"].map(|a| key_use(MONDAY + d * DAY + 10 * HOUR, a, "K"))).collect();
    let alerts = run(&mut engine, &later);
    assert!(alerts.is_empty(), "{:#?}", alerts.iter().map(|a| &a.summary).collect::<Vec<_>>());
    let alerts = run(&mut engine, &[key_use(MONDAY + 10 * DAY, "svc-stranger", "K")]);
    assert_eq!(alerts.len(), 1);
    assert!(
        alerts[0].summary.contains("which until now only ci-a and 2 other account(s) used"),
        "{}",
        alerts[0].summary
    );
}

#[test]
fn a_user_established_later_in_the_life_of_a_key_is_not_foreign() {
    let mut engine = Engine::new(foreign_key_only(), EngineOptions::default());
    let owner: Vec<String> = (0..48).map(|h| key_use(MONDAY + h * HOUR, "svc-a", "K")).collect();
    assert!(run(&mut engine, &owner).is_empty());
    // A second integration adopts the key on day 3, every 8 hours: one alert (the repeats fold
    // into it), then it is learned.
    let adopted: Vec<String> = (0..5).map(|i| key_use(MONDAY + 2 * DAY + (9 + 8 * i) * HOUR, "svc-b", "K")).collect();
    let alerts = run(&mut engine, &adopted);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(alerts[0].summary.contains("which until now only svc-a used"), "{}", alerts[0].summary);
    assert!(
        run(&mut engine, &[key_use(MONDAY + 9 * DAY, "svc-b", "K")]).is_empty(),
        "established after 3 distinct hours"
    );
}

proptest::proptest! {
    /// However a key passes between accounts, an alert never names the presenting account as
    /// the key's owner or other user.
    #[test]
    fn a_foreign_key_alert_never_names_the_presenting_account(
        uses in proptest::collection::vec((0usize..9, 0i64..400), 1..80)
    ) {
        let mut engine = Engine::new(foreign_key_only(), EngineOptions::default());
        let mut uses = uses;
        uses.sort_by_key(|&(_, hour)| hour);
        for (account, hour) in uses {
            let account = format!("svc-{account}");
            let alerts = run(&mut engine, &[key_use(MONDAY + hour * HOUR, &account, "K")]);
            for alert in alerts {
                proptest::prop_assert_eq!(&alert.account, &account);
                let named = alert.summary.split(", which ").nth(1).unwrap_or("");
                proptest::prop_assert!(
                    !named.split([' ', '.']).any(|w| w == account),
                    "{}", alert.summary
                );
            }
        }
    }
}

#[test]
fn a_format_1_engine_state_is_restored() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    run(&mut engine, &[event(MONDAY, "svc-a", "success", "")]);
    engine.accounts.clear();
    let mut w = Writer::default();
    engine.save_format(&mut w, 5);
    // Without accounts and credentials, format 1 is format 5's without the tag and format number
    // (the per-account and per-key formats are tested in `baseline`; format 6 counts more
    // categories).
    let legacy = &w.buf[8..];
    let restored = Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(legacy)).unwrap();
    assert_eq!(restored.stats(), engine.stats());
    assert_eq!(restored.watermark, engine.watermark);
    let mut future = w.buf.clone();
    future[4] = 9;
    assert!(Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&future)).is_err());
}

#[test]
fn an_accounts_cusum_survives_a_checkpoint_and_format_3_state_still_loads() {
    use crate::detection::detect::sustained_excess::{Cusum, ExcessCusum};
    let mut engine = Engine::new(pack(), EngineOptions::default());
    run(&mut engine, &[event(MONDAY, "svc-a", "success", "")]);
    let mut under_way = ExcessCusum::default();
    assert!(!under_way.step(&Cusum { allowance: 1.0, threshold: 4.0, cap: 2.5 }, 2.0));
    assert_ne!(under_way, ExcessCusum::default());
    engine.accounts.values_mut().for_each(|a| a.excess = under_way);
    let restore = |format: u32| {
        let mut w = Writer::default();
        engine.save_format(&mut w, format);
        let mut r = Reader::new(&w.buf);
        let restored = Engine::restore(pack(), EngineOptions::default(), &mut r).unwrap();
        assert!(r.is_empty(), "format {format} read to its end");
        let account = restored.accounts.values().next().expect("the account is restored").clone();
        (account.baseline.events, account.excess)
    };
    assert_eq!(restore(super::snapshot::FORMAT), (1, under_way));
    // Written before the CUSUM existed: the baseline is kept, the CUSUM starts at 0.
    assert_eq!(restore(3), (1, ExcessCusum::default()));
}

/// A token-service outage: `accounts` accounts of `crm` failing every 20 s each with the same
/// reason, interleaved, each from its own address.
fn outage(at: Millis, accounts: usize, minutes: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for step in 0..minutes * 3 {
        for a in 0..accounts {
            let t = at + step * 20_000 + a as i64 * 500;
            let extra = format!(
                r#","reason":"token service unavailable","target":{{"system":"crm"}},"source":{{"ip":"10.0.{a}.5"}}"#
            );
            lines.push(event(t, &format!("svc-{a:02}"), "failure", &extra));
        }
    }
    lines
}

#[test]
fn an_outage_across_accounts_is_one_incident_naming_them() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    let alerts = run(&mut engine, &outage(MONDAY, 7, 15));
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.detector, "failed-auth-burst");
    assert!(alert.summary.starts_with("7 accounts of crm failed to authenticate"), "{}", alert.summary);
    assert!(alert.summary.contains("token service unavailable"));
    let listed = alert.evidence.baseline["accounts"].as_array().unwrap();
    assert_eq!(listed.len(), 7);
    assert_eq!(alert.evidence.baseline["shared"]["system"], "crm");
    assert_eq!(alert.evidence.baseline["shared"]["source"], serde_json::Value::Null, "each from its own address");
    assert!(alert.evidence.sql.contains("target_system = 'crm'"), "{}", alert.evidence.sql);
    assert!(engine.stats().folded_repeats >= 6);
}

#[test]
fn one_account_failing_alone_alerts_at_once_even_beside_other_failures() {
    // Two other accounts of the system fail with the same reason: not yet a shared cause.
    let mut lines = outage(MONDAY, 2, 2);
    lines.truncate(4);
    let attack: Vec<String> = (0..12)
        .map(|i| {
            let extra =
                r#","reason":"token service unavailable","target":{"system":"crm"},"source":{"ip":"203.0.113.9"}"#;
            event(MONDAY + 60_000 + i * 1000, "svc-victim", "failure", extra)
        })
        .collect();
    lines.extend(attack);
    let mut engine = Engine::new(pack(), EngineOptions::default());
    let alerts = run(&mut engine, &lines);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].account, "svc-victim");
    assert!(alerts[0].summary.starts_with("svc-victim failed to authenticate 10 times"), "{}", alerts[0].summary);
    assert!(!alerts[0].evidence.baseline.contains_key("shared"));
}

#[test]
fn many_accounts_failing_from_one_source_say_so() {
    let mut lines = Vec::new();
    for step in 0..40 {
        for a in 0..4 {
            let extra = r#","reason":"invalid secret","target":{"system":"vault"},"source":{"ip":"198.51.100.66"}"#;
            lines.push(event(MONDAY + step * 5_000 + a * 100, &format!("svc-{a}"), "failure", extra));
        }
    }
    let alerts = run(&mut Engine::new(pack(), EngineOptions::default()), &lines);
    let shared: Vec<_> = alerts.iter().filter(|a| a.evidence.baseline.contains_key("shared")).collect();
    assert_eq!(shared.len(), 1, "{alerts:#?}");
    assert_eq!(shared[0].evidence.baseline["shared"]["source"], "198.51.100.66");
    assert!(shared[0].summary.contains("All from 198.51.100.66"));
    assert!(alerts.iter().filter(|a| a.detector == "failed-auth-burst").count() <= 2);
}

#[test]
fn shared_causes_survive_a_checkpoint() {
    let lines = outage(MONDAY, 5, 15);
    let (head, tail) = lines.split_at(12);
    let mut whole = Engine::new(pack(), EngineOptions::default());
    let expected = run(&mut whole, &lines);
    let mut first = Engine::new(pack(), EngineOptions::default());
    let mut got = run(&mut first, head);
    let mut w = Writer::default();
    first.save(&mut w);
    let mut restored = Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf)).unwrap();
    got.extend(run(&mut restored, tail));
    assert_eq!(got, expected);
    assert_eq!(expected.len(), 1);
}

fn call(t: Millis, account: &str, action: &str) -> String {
    format!(
        r#"{{"id":"{account}-{t}-{action}","time":"{}","account":"{account}","action":"{action}","outcome":"success"}}"#,
        format_rfc3339(t)
    )
}

fn only(name: &str) -> Vec<Detector> {
    pack().into_iter().filter(|d| d.name == name).collect()
}

/// `days` of hourly trail reads by `account`, with a daily `cloudtrail.UpdateTrail` from the
/// first day on (in its warm-up).
fn trail_keeper(account: &str, days: i64) -> Vec<String> {
    let mut lines = Vec::new();
    for h in 0..days * 24 {
        lines.push(call(MONDAY + h * HOUR, account, "cloudtrail.DescribeTrails"));
        if h % 24 == 6 {
            lines.push(call(MONDAY + h * HOUR + 60_000, account, "cloudtrail.UpdateTrail"));
        }
    }
    lines
}

#[test]
fn a_new_term_fires_after_the_warm_up_and_an_established_one_never() {
    let mut engine = Engine::new(only("audit-log-tampering"), EngineOptions::default());
    assert!(run(&mut engine, &trail_keeper("svc-trails", 10)).is_empty(), "learned during its warm-up");
    let later = MONDAY + 10 * DAY + HOUR;
    assert!(run(&mut engine, &[call(later, "svc-trails", "cloudtrail.UpdateTrail")]).is_empty());
    let alerts = run(&mut engine, &[call(later + 60_000, "svc-trails", "cloudtrail.StopLogging")]);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(
        (alerts[0].category, alerts[0].severity),
        (Category::DefenseEvasion, crate::detection::definition::Severity::High)
    );
    assert_eq!(alerts[0].evidence.baseline["terms_known"], 1, "UpdateTrail");
    assert_eq!(engine.stats().alerts_by_category[Category::DefenseEvasion.index()], 1);
    // Used once, it is in the history: after the cooldown it is not new any more.
    assert!(run(&mut engine, &[call(later + DAY, "svc-trails", "cloudtrail.StopLogging")]).is_empty());
    // Another account's history is its own.
    let young: Vec<String> = (0..200).map(|m| call(MONDAY + 9 * DAY + m * 60_000, "svc-new", "s3.GetObject")).collect();
    run(&mut engine, &young);
    assert!(
        run(&mut engine, &[call(later, "svc-new", "cloudtrail.StopLogging")]).is_empty(),
        "a day old: in its warm-up"
    );
}

#[test]
fn terms_survive_a_checkpoint_and_format_5_state_loads_without_them() {
    let mut engine = Engine::new(only("audit-log-tampering"), EngineOptions::default());
    run(&mut engine, &trail_keeper("svc-trails", 9));
    let restore = |format: u32| {
        let mut w = Writer::default();
        engine.save_format(&mut w, format);
        let mut r = Reader::new(&w.buf);
        let restored = Engine::restore(only("audit-log-tampering"), EngineOptions::default(), &mut r).unwrap();
        assert!(r.is_empty(), "format {format} read to its end");
        restored
    };
    let update = [call(MONDAY + 9 * DAY + HOUR, "svc-trails", "cloudtrail.UpdateTrail")];
    let mut current = restore(super::snapshot::FORMAT);
    assert_eq!(current.accounts.values().next().unwrap().terms, engine.accounts.values().next().unwrap().terms);
    assert!(run(&mut current, &update).is_empty(), "the term is kept");
    // Written before terms existed: the account keeps its baseline, its terms start empty.
    let mut before = restore(5);
    assert_eq!(
        before.accounts.values().next().unwrap().baseline.events,
        engine.accounts.values().next().unwrap().baseline.events
    );
    assert_eq!(run(&mut before, &update).len(), 1, "nothing remembered, so UpdateTrail is new");
}

#[test]
fn alert_counts_of_every_category_survive_a_checkpoint() {
    let mut engine = Engine::new(pack(), EngineOptions::default());
    engine.stats.alerts_by_category = std::array::from_fn(|i| i as u64 + 1);
    let mut w = Writer::default();
    engine.save(&mut w);
    let restored = Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf)).unwrap();
    assert_eq!(restored.stats(), engine.stats());
    let mut w = Writer::default();
    engine.save_format(&mut w, 5);
    let restored = Engine::restore(pack(), EngineOptions::default(), &mut Reader::new(&w.buf)).unwrap();
    assert_eq!(restored.stats().alerts_by_category[..4], [1, 2, 3, 4], "format 5 counted four");
    assert_eq!(restored.stats().alerts_by_category[4..], [0; Category::ALL.len() - 4]);
}

fn key_made(t: Millis, creator: &str, owner: &str, key: &str) -> String {
    format!(
        r#"{{"id":"{key}","time":"{}","account":"{creator}","action":"credential.create","outcome":"success","credential":{{"id":"{key}","owner":"{owner}"}}}}"#,
        format_rfc3339(t)
    )
}

#[test]
fn credentials_made_for_others_become_usual_and_erasure_forgets_the_principal() {
    let mut engine = Engine::new(only("credential-for-other"), EngineOptions::default());
    // Three new hires two days apart (longer than the cooldown): each fires.
    for i in 0..3 {
        let line = key_made(MONDAY + i * 2 * DAY, "svc-onboarding", &format!("user-{i}"), &format!("K{i}"));
        let alerts = run(&mut engine, &[line]);
        assert_eq!(alerts.len(), 1, "user-{i}: {alerts:#?}");
        assert_eq!(alerts[0].evidence.baseline["others_before"], i);
        assert_eq!(alerts[0].category, Category::PrivilegeChange);
    }
    // From the fourth it is what the account does; another creator has its own history.
    assert!(run(&mut engine, &[key_made(MONDAY + 7 * DAY, "svc-onboarding", "user-3", "K3")]).is_empty());
    assert_eq!(run(&mut engine, &[key_made(MONDAY + 7 * DAY, "svc-other", "user-3", "K4")]).len(), 1);
    // Its own key is nobody else's.
    assert!(run(&mut engine, &[key_made(MONDAY + 9 * DAY, "svc-solo", "svc-solo", "K5")]).is_empty());
    let forgotten = engine.forget("", "user-3", &[]);
    assert_eq!(forgotten.creator_references, 2, "both creators remembered user-3");
    assert_eq!(engine.forget("", "user-3", &[]).creator_references, 0);
}

/// An account at work 09:00-17:00 UTC on weekdays, a call every 10 minutes of 50 KB
/// (`factor` times that from `surge_from` for `surge_hours`), over `days` days from MONDAY,
/// skipping the days in `away`.
fn office_days(days: i64, away: std::ops::Range<i64>, surge: Option<(Millis, i64, u64)>) -> Vec<String> {
    let mut lines = Vec::new();
    for day in (0..days).filter(|d| d % 7 < 5 && !away.contains(d)) {
        for minute in (9 * 60..17 * 60).step_by(10) {
            let t = MONDAY + day * DAY + minute * 60_000;
            let factor = match surge {
                Some((from, hours, factor)) if (from..from + hours * HOUR).contains(&t) => factor,
                _ => 1,
            };
            // A surge is more calls of the usual size, as a backlog would be.
            for i in 0..factor {
                let t = t + i as i64 * 60_000 / factor as i64;
                lines.push(event(t, "svc-office", "success", r#","bytes":50000"#).replace("auth.login", "files.read"));
            }
        }
    }
    lines
}

#[test]
fn a_backlog_after_an_absence_is_not_a_volume_alert_but_more_than_the_backlog_is() {
    let volume = |alerts: Vec<Alert>| alerts.into_iter().filter(|a| a.category == Category::DataVolume).count();
    // Four weeks of work, a week away (days 28-32), back on day 35 at 2.5x for 5 hours.
    let back = MONDAY + 35 * DAY + 9 * HOUR;
    let mut catch_up = office_days(40, 28..33, Some((back, 5, 3)));
    // Someone guessing at the account, or a login with no work, while it is away does not end
    // the absence.
    let guesses = [MONDAY + 32 * DAY + 14 * HOUR, MONDAY + 34 * DAY + 20 * HOUR];
    catch_up.extend(guesses.map(|t| event(t, "svc-office", "failure", r#","reason":"invalid secret""#)));
    catch_up.push(event(MONDAY + 33 * DAY + 11 * HOUR, "svc-office", "success", ""));
    catch_up.sort_by_cached_key(|line| decode(line.as_bytes(), 1 << 20).unwrap().time);
    assert_eq!(volume(run(&mut Engine::new(pack(), EngineOptions::default()), &catch_up)), 0);

    // The same surge without the absence is alerted...
    let no_absence = office_days(40, 0..0, Some((back, 5, 3)));
    assert!(volume(run(&mut Engine::new(pack(), EngineOptions::default()), &no_absence)) > 0);
    // ...and so is a return that moves far more than the week it missed.
    let too_much = office_days(40, 28..33, Some((back, 8, 12)));
    assert!(volume(run(&mut Engine::new(pack(), EngineOptions::default()), &too_much)) > 0);
}

#[test]
fn call_rates_survive_a_checkpoint_and_format_7_state_still_loads() {
    // An hourly secret read for 9 days, then twenty in 40 seconds: `secret-read-rate` fires on
    // the restored engine as on the straight one.
    let read = |t: Millis| {
        format!(
            r#"{{"id":"r{t}","time":"{}","account":"svc-reports","action":"secretsmanager.GetSecretValue","outcome":"success"}}"#,
            format_rfc3339(t)
        )
    };
    let history: Vec<String> = (0..9 * 24).map(|h| read(MONDAY + h * HOUR + 600_000)).collect();
    let burst: Vec<String> = (0..20).map(|i| read(MONDAY + 9 * DAY + 11 * HOUR + i * 2000)).collect();
    let mut straight = Engine::new(pack(), EngineOptions::default());
    run(&mut straight, &history);
    let state = |format: u32| {
        let mut w = Writer::default();
        straight.save_format(&mut w, format);
        let mut r = Reader::new(&w.buf);
        let restored = Engine::restore(pack(), EngineOptions::default(), &mut r).unwrap();
        assert!(r.is_empty(), "format {format} read to its end");
        restored
    };
    let mut restored = state(super::snapshot::FORMAT);
    let mut old = state(7);
    let a = run(&mut straight, &burst);
    assert_eq!(run(&mut restored, &burst), a);
    assert!(a.iter().any(|alert| alert.detector == "secret-read-rate"), "{a:#?}");
    // Written before call rates existed: the rate starts afresh, with nothing usual yet, so
    // the burst still fires (a class the account never called fires on min_calls at once).
    assert!(run(&mut old, &burst).iter().any(|alert| alert.detector == "secret-read-rate"));
}
