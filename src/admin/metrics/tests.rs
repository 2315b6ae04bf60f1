use super::*;
use std::collections::{HashMap, HashSet};

/// One parsed sample: metric name, label pairs (unescaped), value.
type Sample = (String, Vec<(String, String)>, f64);

/// A strict parser of what we write: fails the test on anything outside the format.
fn parse(text: &str) -> Vec<Sample> {
    assert!(text.ends_with('\n'), "exposition must end with a newline");
    let mut help = HashMap::<String, usize>::new();
    let mut kinds = HashMap::<String, String>::new();
    let mut finished = HashSet::<String>::new();
    let mut current: Option<String> = None;
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().expect("HELP has a name").to_owned();
            *help.entry(name).or_default() += 1;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let parts: Vec<&str> = rest.split(' ').collect();
            assert_eq!(parts.len(), 2, "TYPE line {line:?}");
            assert!(["counter", "gauge"].contains(&parts[1]), "type in {line:?}");
            assert!(kinds.insert(parts[0].to_owned(), parts[1].to_owned()).is_none(), "TYPE twice: {line:?}");
            if let Some(previous) = current.replace(parts[0].to_owned()) {
                finished.insert(previous);
            }
        } else {
            assert!(!line.starts_with('#'), "unexpected comment {line:?}");
            let sample = parse_sample(line);
            assert_eq!(current.as_deref(), Some(sample.0.as_str()), "sample outside its family: {line:?}");
            assert!(!finished.contains(&sample.0), "family split: {line:?}");
            if kinds[&sample.0] == "counter" {
                assert!(sample.0.ends_with("_total"), "counter without _total: {line:?}");
            }
            samples.push(sample);
        }
    }
    for name in kinds.keys() {
        assert_eq!(help.get(name), Some(&1), "HELP for {name}");
    }
    assert_eq!(help.len(), kinds.len(), "HELP without TYPE");
    let series: HashSet<String> = samples.iter().map(|(n, l, _)| format!("{n}{l:?}")).collect();
    assert_eq!(series.len(), samples.len(), "duplicate series");
    samples
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line.find(['{', ' ']).unwrap_or_else(|| panic!("no value in {line:?}"));
    let name = &line[..name_end];
    assert!(!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit()), "name in {line:?}");
    assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'), "name in {line:?}");
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let eq = inner.find("=\"").unwrap_or_else(|| panic!("label in {line:?}"));
            let label = &inner[..eq];
            assert!(!label.is_empty(), "empty label name in {line:?}");
            assert!(label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "label name in {line:?}");
            let mut value = String::new();
            let mut chars = inner[eq + 2..].char_indices();
            let close = loop {
                match chars.next() {
                    Some((i, '"')) => break eq + 2 + i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => panic!("bad escape {other:?} in {line:?}"),
                    },
                    None => panic!("unterminated label value in {line:?}"),
                    Some((_, c)) => value.push(c),
                }
            };
            labels.push((label.to_owned(), value));
            let after = &inner[close + 1..];
            if let Some(next) = after.strip_prefix(',') {
                inner = next;
            } else if let Some(end) = after.strip_prefix('}') {
                rest = end;
                break;
            } else {
                panic!("after label value in {line:?}");
            }
        }
    }
    let value = rest.strip_prefix(' ').unwrap_or_else(|| panic!("one space before value in {line:?}"));
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("value in {line:?}"));
    (name.to_owned(), labels, value)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name && l.len() == labels.len() && l.iter().zip(labels).all(|(a, b)| a.0 == b.0 && a.1 == b.1)
        })
        .map(|(_, _, v)| *v)
}

fn topics(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn render_is_parseable_and_complete() {
    let metrics = Metrics::new(&topics(&["audit.events", "audit.other"]));
    metrics.events(0, 5);
    metrics.event(1);
    metrics.decode_error("missing_field");
    metrics.dead_letter();
    metrics.alert("failed_auth", "high");
    metrics.alerts_folded(3);
    metrics.set_consumer_lag("audit.events", 7, 42);
    metrics.set_partitions_assigned(3);
    metrics.set_caught_up(true);
    metrics.checkpoint_done(Duration::from_millis(250), 1_000);
    metrics.checkpoint_failed();
    metrics.set_state(10, 20, 30);
    metrics.account_partition_change();
    metrics.untracked_account_events(4);
    metrics.provider_service_events(6);

    let samples = parse(&metrics.render(2_000));
    let expect = |name: &str, labels: &[(&str, &str)], expected: f64| {
        assert_eq!(value(&samples, name, labels), Some(expected), "{name}{labels:?}");
    };
    expect("auditwatch_up", &[], 1.0);
    expect("auditwatch_build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    expect("auditwatch_events_total", &[("topic", "audit.events")], 5.0);
    expect("auditwatch_events_total", &[("topic", "audit.other")], 1.0);
    expect("auditwatch_decode_errors_total", &[("reason", "missing_field")], 1.0);
    expect("auditwatch_decode_errors_total", &[("reason", "late")], 0.0);
    expect("auditwatch_dead_letters_total", &[], 1.0);
    expect("auditwatch_alerts_total", &[("category", "failed_auth"), ("severity", "high")], 1.0);
    expect("auditwatch_alerts_total", &[("category", "off_hours"), ("severity", "low")], 0.0);
    expect("auditwatch_alerts_folded_total", &[], 3.0);
    expect("auditwatch_consumer_lag", &[("topic", "audit.events"), ("partition", "7")], 42.0);
    expect("auditwatch_partitions_assigned", &[], 3.0);
    expect("auditwatch_caught_up", &[], 1.0);
    expect("auditwatch_checkpoints_total", &[], 1.0);
    expect("auditwatch_checkpoint_failures_total", &[], 1.0);
    expect("auditwatch_checkpoint_duration_seconds", &[], 0.25);
    expect("auditwatch_accounts_tracked", &[], 10.0);
    expect("auditwatch_credentials_tracked", &[], 20.0);
    expect("auditwatch_state_bytes", &[], 30.0);
    expect("auditwatch_account_partition_changes_total", &[], 1.0);
    expect("auditwatch_untracked_account_events_total", &[], 4.0);
    expect("auditwatch_provider_service_events_total", &[], 6.0);
    // The full label sets exist from the start: a cell per category and severity, 8 decode reasons.
    let cells = Category::ALL.len() * Severity::ALL.len();
    assert_eq!(cells, 48);
    assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_alerts_total").count(), cells);
    expect("auditwatch_alerts_total", &[("category", "discovery"), ("severity", "medium")], 0.0);
    assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_decode_errors_total").count(), 8);
}

#[test]
fn fresh_registry_renders_without_checkpoint_samples() {
    let samples = parse(&Metrics::new(&topics(&["audit.events"])).render(0));
    assert_eq!(value(&samples, "auditwatch_checkpoints_total", &[]), Some(0.0));
    assert_eq!(value(&samples, "auditwatch_checkpoint_age_seconds", &[]), None);
    assert_eq!(value(&samples, "auditwatch_checkpoint_duration_seconds", &[]), None);
    assert_eq!(value(&samples, "auditwatch_caught_up", &[]), Some(0.0));
}

#[test]
fn label_values_are_escaped() {
    let odd = "a\\b\"c\nd";
    let metrics = Metrics::new(&[odd.to_owned()]);
    metrics.event(0);
    metrics.set_consumer_lag(odd, 0, 1);
    let text = metrics.render(0);
    assert!(text.contains(r#"auditwatch_events_total{topic="a\\b\"c\nd"} 1"#), "{text}");
    let samples = parse(&text);
    assert_eq!(value(&samples, "auditwatch_events_total", &[("topic", odd)]), Some(1.0));
    assert_eq!(value(&samples, "auditwatch_consumer_lag", &[("topic", odd), ("partition", "0")]), Some(1.0));
}

#[test]
fn help_text_escapes_backslash_and_newline_but_not_quotes() {
    assert_eq!(escape("a\\b\n\"c\"", false), "a\\\\b\\n\"c\"");
    assert_eq!(escape("a\\b\n\"c\"", true), "a\\\\b\\n\\\"c\\\"");
    assert!(matches!(escape("plain", true), std::borrow::Cow::Borrowed(_)));
}

#[test]
fn checkpoint_age_comes_from_the_injected_now() {
    let metrics = Metrics::new(&[]);
    metrics.checkpoint_done(Duration::from_micros(1_500), 1_700_000_000_000);
    let at = |now| value(&parse(&metrics.render(now)), "auditwatch_checkpoint_age_seconds", &[]);
    assert_eq!(at(1_700_000_000_000), Some(0.0));
    assert_eq!(at(1_700_000_012_500), Some(12.5));
    // A clock that stepped back shows zero, not a negative age.
    assert_eq!(at(1_699_999_999_000), Some(0.0));
    let duration = value(&parse(&metrics.render(0)), "auditwatch_checkpoint_duration_seconds", &[]);
    assert_eq!(duration, Some(0.0015));
}

#[test]
fn unknown_decode_reason_counts_as_other() {
    let metrics = Metrics::new(&[]);
    metrics.decode_error("cosmic_rays");
    metrics.decode_error("too_large");
    let samples = parse(&metrics.render(0));
    assert_eq!(value(&samples, "auditwatch_decode_errors_total", &[("reason", "other")]), Some(1.0));
    assert_eq!(value(&samples, "auditwatch_decode_errors_total", &[("reason", "too_large")]), Some(1.0));
    assert_eq!(value(&samples, "auditwatch_decode_errors_total", &[("reason", "cosmic_rays")]), None);
}

#[test]
fn unknown_alert_labels_count_as_other_and_appear_only_when_used() {
    let metrics = Metrics::new(&[]);
    let before = parse(&metrics.render(0));
    assert!(!before.iter().any(|(_, labels, _)| labels.iter().any(|(_, v)| v == "other" && labels.len() == 2)));
    metrics.alert("lateral_movement", "high");
    let samples = parse(&metrics.render(0));
    let other = [("category", "other"), ("severity", "high")];
    assert_eq!(value(&samples, "auditwatch_alerts_total", &other), Some(1.0));
    assert_eq!(
        samples.iter().filter(|s| s.0 == "auditwatch_alerts_total").count(),
        Category::ALL.len() * Severity::ALL.len() + 1
    );
}

#[test]
fn lag_is_cleared_on_revoke() {
    let metrics = Metrics::new(&[]);
    metrics.set_consumer_lag("audit.events", 0, 10);
    metrics.set_consumer_lag("audit.events", 1, 20);
    metrics.set_consumer_lag("audit.events", 1, 5);
    metrics.clear_consumer_lag("audit.events", 0);
    let samples = parse(&metrics.render(0));
    assert_eq!(value(&samples, "auditwatch_consumer_lag", &[("topic", "audit.events"), ("partition", "0")]), None);
    assert_eq!(value(&samples, "auditwatch_consumer_lag", &[("topic", "audit.events"), ("partition", "1")]), Some(5.0));
}

#[test]
fn lag_series_are_bounded() {
    let metrics = Metrics::new(&[]);
    for partition in 0..(MAX_LAG_SERIES as i32 + 10) {
        metrics.set_consumer_lag("t", partition, 1);
    }
    let samples = parse(&metrics.render(0));
    assert_eq!(samples.iter().filter(|s| s.0 == "auditwatch_consumer_lag").count(), MAX_LAG_SERIES);
}

#[test]
fn duplicate_topics_share_one_series() {
    let metrics = Metrics::new(&topics(&["a", "b", "a"]));
    metrics.event(0);
    metrics.event(2);
    metrics.event(1);
    let samples = parse(&metrics.render(0));
    assert_eq!(value(&samples, "auditwatch_events_total", &[("topic", "a")]), Some(2.0));
    assert_eq!(value(&samples, "auditwatch_events_total", &[("topic", "b")]), Some(1.0));
}

#[test]
fn ready_needs_partitions_and_catch_up() {
    let metrics = Metrics::new(&[]);
    assert_eq!(metrics.ready(), Err("no partitions assigned".to_owned()));
    metrics.set_partitions_assigned(3);
    assert!(metrics.ready().unwrap_err().contains("caught up"));
    metrics.set_caught_up(true);
    assert_eq!(metrics.ready(), Ok(()));
    metrics.set_partitions_assigned(0);
    assert!(metrics.ready().is_err());
}
