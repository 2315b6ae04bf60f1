use super::*;
use crate::synthetic::gen::BenignLabel;
use serde_json::json;

fn incident(
    id: &str,
    kind: &str,
    category: &str,
    accounts: &[&str],
    source_ip: Option<&str>,
    start: &str,
    end: &str,
) -> Incident {
    Incident {
        id: id.to_string(),
        kind: kind.to_string(),
        category: category.to_string(),
        accounts: accounts.iter().map(|a| a.to_string()).collect(),
        tenant: None,
        source_ip: source_ip.map(str::to_string),
        credential_id: None,
        start: start.to_string(),
        end: end.to_string(),
        description: format!("{kind} test"),
    }
}

/// 10 accounts × 20 days, warm-up 10: 100 account-days evaluated; warm-up ends 2026-01-15.
fn labels() -> Labels {
    Labels {
        seed: 9,
        accounts: 10,
        days: 20,
        start: "2026-01-05T00:00:00.000Z".to_string(),
        warmup_days: 10,
        incidents: vec![
            incident(
                "inc-001",
                "failed_auth_burst",
                "failed_auth",
                &["a"],
                Some("203.0.113.9"),
                "2026-01-16T10:00:00.000Z",
                "2026-01-16T10:05:00.000Z",
            ),
            incident(
                "inc-002",
                "bulk_export",
                "data_volume",
                &["b"],
                None,
                "2026-01-17T12:00:00.000Z",
                "2026-01-17T12:10:00.000Z",
            ),
            incident(
                "inc-003",
                "password_spray",
                "failed_auth",
                &["c", "d", "e"],
                Some("198.51.100.7"),
                "2026-01-18T01:00:00.000Z",
                "2026-01-18T01:20:00.000Z",
            ),
            incident(
                "inc-004",
                "off_hours",
                "off_hours",
                &["f"],
                None,
                "2026-01-19T03:00:00.000Z",
                "2026-01-19T03:30:00.000Z",
            ),
        ],
        benign: vec![
            BenignLabel {
                kind: "weekly_report".into(),
                account: "g".into(),
                time: "2026-01-19T06:05:00.000Z".into(),
                description: "Monday export".into(),
            },
            BenignLabel {
                kind: "auth_retry".into(),
                account: "g".into(),
                time: "2026-01-10T06:05:00.000Z".into(),
                description: "far away".into(),
            },
        ],
    }
}

fn alert(id: &str, category: &str, account: &str, time: &str) -> serde_json::Value {
    json!({"id": id, "detector": format!("det-{category}"), "category": category, "severity": "high", "account": account, "time": time})
}

#[test]
fn counts_matches_misses_and_false_alerts() {
    let alerts = vec![
        // inc-001: two distinct alerts, plus a re-emitted copy of the first (same id).
        alert("x1", "failed_auth", "a", "2026-01-16T10:01:00Z"),
        alert("x1", "failed_auth", "a", "2026-01-16T10:03:00Z"),
        alert("x2", "failed_auth", "a", "2026-01-16T11:00:00Z"),
        // inc-002: caught 4 minutes before its labelled start (inside the 5-minute lead).
        alert("x3", "data_volume", "b", "2026-01-17T11:56:00Z"),
        // inc-003 matched by source IP on an account outside the list.
        json!({"id": "x4", "detector": "spray", "category": "failed_auth", "account": "zz",
               "source_ip": "198.51.100.7", "time": "2026-01-18T01:10:00Z"}),
        // inc-004 alerted with the wrong category only: missed, and reported as such.
        alert("x5", "data_volume", "f", "2026-01-19T03:10:00Z"),
        // Right account and category, but 2 h 1 min after inc-001's end: false.
        alert("x6", "failed_auth", "a", "2026-01-16T12:06:00Z"),
        // False, next to a benign weekly report of the same account.
        alert("x7", "data_volume", "g", "2026-01-19T07:05:00Z"),
        // During warm-up: counted apart.
        alert("x8", "off_hours", "h", "2026-01-08T03:00:00Z"),
        // Unreadable.
        json!({"id": "x9", "category": "off_hours", "account": "h", "time": "yesterday"}),
        json!("not an object"),
    ];
    let report = evaluate(&alerts, &labels());

    assert_eq!(
        report.alerts,
        AlertCounts { received: 11, distinct: 8, matched: 4, during_warmup: 1, false_alerts: 3, unreadable: 2 }
    );
    assert_eq!(report.problems.len(), 2);
    assert_eq!(report.account_days_evaluated, 100);
    assert_eq!(report.false_alerts_per_100_account_days, Some(3.0));

    let result = |id: &str| report.incidents.iter().find(|r| r.id == id).cloned();
    let inc1 = result("inc-001").expect("inc-001 scored");
    assert!(inc1.caught);
    assert_eq!(inc1.alerts, 2);
    assert_eq!(inc1.latency_secs, Some(60.0));
    let inc2 = result("inc-002").expect("inc-002 scored");
    assert_eq!((inc2.caught, inc2.latency_secs, inc2.alerts), (true, Some(0.0), 1));
    assert!(result("inc-003").is_some_and(|r| r.caught && r.latency_secs == Some(600.0)));
    let inc4 = result("inc-004").expect("inc-004 scored");
    assert!(!inc4.caught);
    assert_eq!(inc4.other_category_alerts, vec!["data_volume".to_string()]);

    assert_eq!(report.missed.len(), 1);
    assert_eq!(report.missed[0].id, "inc-004");
    assert_eq!(report.missed[0].alerted_as, vec!["data_volume".to_string()]);

    // x5 fits no incident with its category, so it is false too.
    let false_ids: Vec<&str> = report.false_alerts.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(false_ids, vec!["x6", "x5", "x7"]);
    let x7 = report.false_alerts.iter().find(|a| a.id == "x7").expect("x7 listed");
    let near = x7.nearest_benign.as_ref().expect("x7 has a nearby benign label");
    assert_eq!((near.kind.as_str(), near.offset_secs), ("weekly_report", 3600.0));
    assert!(report.false_alerts.iter().find(|a| a.id == "x6").is_some_and(|a| a.nearest_benign.is_none()));

    let failed_auth = &report.by_category[0];
    assert_eq!((failed_auth.name.as_str(), failed_auth.incidents, failed_auth.caught), ("failed_auth", 2, 2));
    assert_eq!(failed_auth.alerts_per_incident_median, Some(1.5));
    assert_eq!(failed_auth.alerts_per_incident_max, Some(2));
    assert_eq!(failed_auth.latency_median_secs, Some(330.0));
    assert_eq!(failed_auth.latency_max_secs, Some(600.0));
    let off_hours = report.by_category.iter().find(|g| g.name == "off_hours").expect("off_hours row");
    assert_eq!((off_hours.caught, off_hours.recall), (0, Some(0.0)));
    assert_eq!(
        report.by_kind.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(),
        vec!["failed_auth_burst", "password_spray", "bulk_export", "off_hours"]
    );
    assert_eq!((report.overall.incidents, report.overall.caught), (4, 3));
    assert_eq!(report.overall.alerts_per_incident_median, Some(1.0));

    assert_eq!(
        report.pass,
        PassCriteria {
            all_incidents_caught: false,
            false_alerts_within_budget: false,
            alerts_per_incident_within_budget: true,
            all: false
        }
    );
    let table = report.to_string();
    assert!(table.contains("inc-004") && table.contains("alerted as data_volume"), "{table}");
    assert!(table.contains("near benign weekly_report"), "{table}");
}

#[test]
fn perfect_alerts_pass_every_criterion() {
    let alerts = vec![
        alert("a1", "failed_auth", "a", "2026-01-16T10:00:30Z"),
        alert("a2", "data_volume", "b", "2026-01-17T12:09:00Z"),
        alert("a3", "failed_auth", "d", "2026-01-18T01:05:00Z"),
        alert("a4", "off_hours", "f", "2026-01-19T03:01:00Z"),
        // One false alert in 100 account-days is exactly the budget.
        alert("a5", "off_hours", "h", "2026-01-20T03:01:00Z"),
    ];
    let report = evaluate(&alerts, &labels());
    assert_eq!(report.false_alerts_per_100_account_days, Some(1.0));
    assert!(report.pass.all, "{report}");
    assert!(report.missed.is_empty());
}

#[test]
fn no_alerts_misses_everything_without_dividing_by_zero() {
    let mut empty = labels();
    empty.days = 10; // nothing after warm-up
    let report = evaluate(&[], &empty);
    assert_eq!(report.account_days_evaluated, 0);
    assert_eq!(report.false_alerts_per_100_account_days, None);
    assert_eq!(report.overall.caught, 0);
    assert_eq!(report.missed.len(), 4);
    assert!(report.pass.false_alerts_within_budget && report.pass.alerts_per_incident_within_budget);
    assert!(!report.pass.all);
}

#[test]
fn duration_text_reads_well() {
    assert_eq!(duration_text(Some(45.0)), "45s");
    assert_eq!(duration_text(Some(185.0)), "3m05s");
    assert_eq!(duration_text(Some(7800.0)), "2h10m");
    assert_eq!(duration_text(None), "-");
}
