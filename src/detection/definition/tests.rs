use super::*;

const VALID: &str = r#"
name = "failed-auth-burst"
category = "failed_auth"
type = "failure_burst"
severity = "high"
description = "A burst of failed logins."
runbook = "Check the secret."
cooldown = "1h"
[select]
actions = ["auth.*"]
[params]
outcome = "failure"
window = "10m"
min_count = 10
max_p_value = 1e-6
"#;

fn problems(text: &str) -> Vec<String> {
    parse(Path::new("x.toml"), text).unwrap_err().into_iter().map(|p| p.to_string()).collect()
}

#[test]
fn parses_a_valid_definition() {
    let d = parse(Path::new("x.toml"), VALID).unwrap();
    assert_eq!(d.name, "failed-auth-burst");
    assert!(matches!(d.kind, DetectorKind::FailureBurst(ref p) if p.min_count == 10 && p.window.millis() == 600_000));
}

#[test]
fn reports_every_problem_with_its_field() {
    let text = VALID
        .replace("category = \"failed_auth\"", "category = \"off_hours\"")
        .replace("min_count = 10", "min_count = 1")
        .replace("max_p_value = 1e-6", "max_p_value = 2.0")
        .replace("actions = [\"auth.*\"]", "actions = [\"a*b\"]");
    let found = problems(&text);
    assert_eq!(found.len(), 4, "{found:#?}");
    assert!(found.iter().any(|p| p.starts_with("x.toml: category:")));
    assert!(found.iter().any(|p| p.starts_with("x.toml: params.min_count:")));
    assert!(found.iter().any(|p| p.starts_with("x.toml: params.max_p_value:")));
    assert!(found.iter().any(|p| p.starts_with("x.toml: select.actions:")));
}

#[test]
fn unknown_fields_and_bad_durations_are_named() {
    let found = problems(&VALID.replace("cooldown = \"1h\"", "cooldown = \"1h\"\ncooldwn = \"2h\""));
    assert!(found[0].contains("unknown field `cooldwn`"), "{found:?}");
    assert!(found[0].contains("line 9"), "{found:?}");
    let found = problems(&VALID.replace("window = \"10m\"", "window = \"10x\""));
    assert!(found[0].contains("params") && found[0].contains("unknown unit `x`"), "{found:?}");
    let found = problems(&VALID.replace("min_count = 10", "min_count = 10\nmin_cnt = 3"));
    assert!(found[0].contains("unknown field `min_cnt`"), "{found:?}");
}

#[test]
fn sustained_excess_keeps_bursts_below_the_threshold_and_one_slot_per_set() {
    let text = r#"
name = "excess"
category = "data_volume"
type = "sustained_excess"
severity = "high"
description = "d"
runbook = "r"
cooldown = "12h"
[params]
allowance = 1.0
threshold = 4.0
hour_cap = 2.5
min_bytes_per_hour = "200KB"
"#;
    assert!(parse(Path::new("x.toml"), text).is_ok());
    let found = problems(&text.replace("hour_cap = 2.5", "hour_cap = 3.0"));
    assert!(found.len() == 1 && found[0].contains("params.hour_cap"), "{found:?}");
    let found = problems(&text.replace("[params]", "[select]\nactions = [\"export.*\"]\n[params]"));
    assert!(found.len() == 1 && found[0].contains("select"), "{found:?}");
    let second = text.replace("name = \"excess\"", "name = \"excess-2\"");
    let both = load_sources([(Path::new("a.toml"), text), (Path::new("b.toml"), second.as_str())]);
    let problems = both.unwrap_err().0;
    assert!(problems.len() == 1 && problems[0].to_string().contains("only one `sustained_excess`"), "{problems:?}");
}

const RARE: &str = r#"
name = "audit-log-tampering"
category = "defense_evasion"
type = "rare_action"
severity = "high"
description = "d"
runbook = "r"
warmup = "7d"
cooldown = "6h"
[params]
classes = ["cloudtrail.Stop*", "ec2.DeleteFlowLogs"]
term = "action"
min_events = 100
"#;

#[test]
fn rare_action_definitions_name_every_bad_field() {
    let d = parse(Path::new("x.toml"), RARE).unwrap();
    assert!(matches!(d.kind, DetectorKind::RareAction(ref p) if p.term == NewTerm::Action && p.classes.len() == 2));
    assert!(parse(Path::new("x.toml"), &RARE.replace("defense_evasion", "secret_access")).is_ok());
    let text = RARE
        .replace("category = \"defense_evasion\"", "category = \"failed_auth\"")
        .replace("warmup = \"7d\"", "warmup = \"0s\"")
        .replace("\"cloudtrail.Stop*\", \"ec2.DeleteFlowLogs\"", "\"*\", \"ec2.*Flow*\"")
        .replace("min_events = 100", "min_events = 0")
        .replace("[params]", "[select]\noutcomes = [\"success\"]\n[params]");
    let found = problems(&text);
    for field in ["category", "warmup", "select", "params.classes[0]", "params.classes[1]", "params.min_events"] {
        assert!(found.iter().any(|p| p.starts_with(&format!("x.toml: {field}:"))), "{field}: {found:#?}");
    }
    assert_eq!(found.len(), 6, "{found:#?}");
    let found = problems(&RARE.replace("term = \"action\"", "term = \"verb\""));
    assert!(found.len() == 1 && found[0].contains("unknown variant `verb`"), "{found:?}");
    let found = problems(&RARE.replace("classes = [\"cloudtrail.Stop*\", \"ec2.DeleteFlowLogs\"]", "classes = []"));
    assert!(found.len() == 1 && found[0].starts_with("x.toml: params.classes:"), "{found:?}");
}

#[test]
fn credential_created_for_other_definitions_name_every_bad_field() {
    let text = r#"
name = "credential-for-other"
category = "privilege_change"
type = "credential_created_for_other"
severity = "medium"
description = "d"
runbook = "r"
cooldown = "24h"
[params]
target_actions = ["iam.CreateLoginProfile"]
usual_after = 3
"#;
    assert!(parse(Path::new("x.toml"), text).is_ok());
    assert!(parse(Path::new("x.toml"), &text.replace("target_actions = [\"iam.CreateLoginProfile\"]\n", "")).is_ok());
    let bad = text
        .replace("privilege_change", "persistence")
        .replace("usual_after = 3", "usual_after = 17")
        .replace("\"iam.CreateLoginProfile\"", "\"iam.*LoginProfile\"");
    let found = problems(&bad);
    for field in ["category", "params.usual_after", "params.target_actions[0]"] {
        assert!(found.iter().any(|p| p.starts_with(&format!("x.toml: {field}:"))), "{field}: {found:#?}");
    }
    assert_eq!(found.len(), 3, "{found:#?}");
    let found = problems(&text.replace("[params]", "[select]\nactions = [\"iam.*\"]\n[params]"));
    assert!(found.len() == 1 && found[0].contains("`credential_created_for_other` judges"), "{found:?}");
}

#[test]
fn category_indexes_follow_the_list() {
    for (i, category) in Category::ALL.into_iter().enumerate() {
        assert_eq!(category.index(), i, "{category:?}");
    }
}

#[test]
fn names_are_the_serde_names() {
    for severity in Severity::ALL {
        assert_eq!(serde_json::to_value(severity).unwrap(), severity.as_str());
    }
    for category in Category::ALL {
        assert_eq!(serde_json::to_value(category).unwrap(), category.as_str());
    }
}

#[test]
fn selection_globs() {
    assert!(glob_match("auth.*", "auth.login"));
    assert!(!glob_match("auth.*", "contacts.export"));
    assert!(glob_match("*", "anything"));
    assert!(glob_match("auth.login", "auth.login") && !glob_match("auth.login", "auth.login2"));
}

#[test]
fn call_rate_definitions_name_every_bad_field() {
    let text = r#"
name = "secret-read-rate"
category = "secret_access"
type = "call_rate"
severity = "high"
description = "d"
runbook = "r"
warmup = "7d"
cooldown = "1h"
[params]
classes = ["secretsmanager.GetSecretValue", "ssm.GetParameter*"]
window = "5m"
min_calls = 10
min_ratio = 5.0
"#;
    let d = parse(Path::new("x.toml"), text).unwrap();
    assert!(matches!(d.kind, DetectorKind::CallRate(ref p) if p.classes.len() == 2 && p.min_calls == 10));
    assert!(parse(Path::new("x.toml"), &text.replace("secret_access", "impact")).is_ok());
    let bad = text
        .replace("category = \"secret_access\"", "category = \"off_hours\"")
        .replace("\"ssm.GetParameter*\"", "\"ssm.*Parameter\"")
        .replace("window = \"5m\"", "window = \"2h\"")
        .replace("min_calls = 10", "min_calls = 1")
        .replace("min_ratio = 5.0", "min_ratio = 1.0");
    let found = problems(&bad);
    for field in ["category", "params.classes[1]", "params.window", "params.min_calls", "params.min_ratio"] {
        assert!(found.iter().any(|p| p.starts_with(&format!("x.toml: {field}:"))), "{field}: {found:#?}");
    }
    assert_eq!(found.len(), 5, "{found:#?}");
    let found =
        problems(&text.replace("classes = [\"secretsmanager.GetSecretValue\", \"ssm.GetParameter*\"]", "classes = []"));
    assert!(found.len() == 1 && found[0].starts_with("x.toml: params.classes:"), "{found:?}");
}
