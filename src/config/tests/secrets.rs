//! Secrets: never inline, resolved from the environment or a file, never printed.

use super::*;

#[test]
fn inline_secret_in_client_is_rejected_without_echoing_it() {
    let text = format!("{MINIMAL}\n[kafka.client]\n\"sasl.password\" = \"hunter2\"\n");
    let found = invalid(load_from(&text, "t.toml", &[]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].field, "kafka.client.sasl.password");
    assert!(found[0].message.contains("{ env = \"VAR\" }"), "{}", found[0].message);
    assert!(!found[0].message.contains("hunter2"));
    let mut config = minimal();
    config.kafka.client.insert("sasl.password".into(), "hunter2".into());
    assert!(!format!("{config:?}").contains("hunter2"), "Debug must mask secret-like client values");
}

#[test]
fn unquoted_dotted_client_key_gets_a_hint_and_no_echo() {
    let text = format!("{MINIMAL}\n[kafka.client]\nsasl.password = \"hunter2\"\n");
    let error = load_from(&text, "t.toml", &[]).expect_err("nested table");
    let text = error.to_string();
    assert!(text.contains("quote librdkafka property names"), "{text}");
    assert!(text.contains("line 12"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[test]
fn inline_secret_in_secrets_is_rejected_without_echoing_it() {
    let text = format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = \"hunter2\"\n");
    let error = load_from(&text, "t.toml", &[]).expect_err("inline secret");
    let text = error.to_string();
    assert!(text.contains("cannot be written inline"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let both = format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = {{ env = \"A\", file = \"/b\" }}\n");
    let error = load_from(&both, "t.toml", &[]).expect_err("two sources");
    assert!(error.to_string().contains("not both"), "{error}");
    let typo = format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = {{ envv = \"A\" }}\n");
    let error = load_from(&typo, "t.toml", &[]).expect_err("unknown key");
    assert!(error.to_string().contains("unknown field `envv`"), "{error}");
}

fn with_secret(reference: SecretRef) -> KafkaConfig {
    let mut kafka = minimal().kafka;
    kafka.client.insert("security.protocol".into(), "SASL_SSL".into());
    kafka.secrets.insert("sasl.password".into(), reference);
    kafka
}

#[test]
fn secret_from_env_resolves() {
    let kafka = with_secret(SecretRef::Env { env: "AUDITWATCH_KAFKA_PASSWORD".into() });
    let lookup = |name: &str| (name == "AUDITWATCH_KAFKA_PASSWORD").then(|| "hunter2".to_string());
    let properties = kafka.client_properties(&lookup).expect("resolves");
    let flat: Vec<(&str, &str)> = properties.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(
        flat,
        [("bootstrap.servers", "localhost:9092"), ("security.protocol", "SASL_SSL"), ("sasl.password", "hunter2")]
    );
    assert!(!format!("{properties:?}").contains("hunter2"), "{properties:?}");
}

#[test]
fn missing_env_secret_is_reported_without_any_value() {
    let kafka = with_secret(SecretRef::Env { env: "AUDITWATCH_KAFKA_PASSWORD".into() });
    let found = kafka.client_properties(&|_| None).expect_err("missing");
    assert_eq!(
        found,
        [Problem::new("kafka.secrets.sasl.password", "MISSING: env AUDITWATCH_KAFKA_PASSWORD is not set")]
    );
    let found = kafka.client_properties(&|_| Some(String::new())).expect_err("empty");
    assert_eq!(found[0].message, "MISSING: env AUDITWATCH_KAFKA_PASSWORD is set but empty");
}

#[test]
fn secret_from_file_resolves_without_trailing_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kafka_password");
    std::fs::write(&path, "s3cret with spaces \n").expect("write");
    let kafka = with_secret(SecretRef::File { file: path.clone() });
    let properties = kafka.client_properties(&|_| None).expect("resolves");
    assert_eq!(
        properties.last().map(|(k, v)| (k.as_str(), v.expose())),
        Some(("sasl.password", "s3cret with spaces "))
    );

    let missing = with_secret(SecretRef::File { file: dir.path().join("absent") });
    let found = missing.client_properties(&|_| None).expect_err("missing file");
    assert_eq!(found[0].field, "kafka.secrets.sasl.password");
    assert!(found[0].message.contains("absent"), "{:?}", found[0]);

    std::fs::write(&path, "\n").expect("write");
    let found = kafka.client_properties(&|_| None).expect_err("empty file");
    assert!(found[0].message.contains("is empty"), "{:?}", found[0]);
}

#[test]
fn secret_prints_as_stars() {
    let secret = Secret::new("hunter2".into());
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{:?}", PropertyValue::Secret(secret.clone())), "Secret(***)");
    assert_eq!(secret.expose(), "hunter2");
}

#[test]
fn check_report_summarizes_and_reports_unresolved_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("pw");
    std::fs::write(&secret_file, "hunter2\n").expect("write");
    let config_path = dir.path().join("auditwatch.toml");
    let text = format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = {{ file = \"{}\" }}\n", secret_file.display());
    std::fs::write(&config_path, &text).expect("write");
    let report = check_report(&config_path).expect("valid");
    assert!(report.contains("brokers localhost:9092, group auditwatch"), "{report}");
    assert!(report.contains("audit.events (native)"), "{report}");
    assert!(report.contains("stdout (json)"), "{report}");
    assert!(report.contains("127.0.0.1:9187"), "{report}");
    assert!(report.contains("sasl.password <- file") && report.contains("resolved"), "{report}");
    assert!(!report.contains("hunter2"), "{report}");

    // An unresolvable secret is reported together with the other problems.
    let broken = text.replace(&secret_file.display().to_string(), "/nonexistent/pw") + "[engine]\nmax_accounts = 0\n";
    std::fs::write(&config_path, broken).expect("write");
    let found = match check_report(&config_path) {
        Err(ConfigError::Invalid(found)) => found,
        other => panic!("expected Invalid, got {other:?}"),
    };
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["engine.max_accounts", "kafka.secrets.sasl.password"]);
    assert!(found[1].message.starts_with("MISSING: cannot read file /nonexistent/pw"), "{:?}", found[1]);

    assert!(matches!(check_report(&dir.path().join("nope.toml")), Err(ConfigError::Read { .. })));
}
