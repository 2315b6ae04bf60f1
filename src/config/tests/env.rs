//! Environment variables over the file.

use super::*;

#[test]
fn env_overrides_file_values_and_supplies_missing_ones() {
    let without_brokers = MINIMAL.replace("brokers = \"localhost:9092\"", "");
    assert!(matches!(load_from(&without_brokers, "t.toml", &[]), Err(ConfigError::Parse { .. })));
    let vars = env(&[
        ("AUDITWATCH_KAFKA__BROKERS", "b1:9092,b2:9092"),
        ("AUDITWATCH_KAFKA__BATCH_SIZE", "100"),
        ("AUDITWATCH_KAFKA__GROUP_ID", "1234"),
        ("AUDITWATCH_STATE__DIR", "/var/lib/x"),
        ("AUDITWATCH_STATE__CHECKPOINT_INTERVAL", "1m"),
        ("AUDITWATCH_ADMIN__LISTEN", "127.0.0.1:9000"),
        ("AUDITWATCH_DEAD_LETTER__TOPIC", "dlq"),
        ("AUDITWATCH_DETECTORS__DIR", "/etc/auditwatch/detectors"),
        ("AUDITWATCH_KAFKA__CLIENT__SECURITY_PROTOCOL", "SASL_SSL"),
        ("AUDITWATCH_KAFKA_PASSWORD", "not an override"),
        ("PATH", "/usr/bin"),
    ]);
    let config = load_from(&without_brokers, "t.toml", &vars).expect("env completes the config");
    assert_eq!(config.kafka.brokers, "b1:9092,b2:9092");
    assert_eq!(config.kafka.batch_size, 100);
    assert_eq!(config.kafka.group_id, "1234", "a numeric-looking value for a string field stays a string");
    assert_eq!(config.state.dir, PathBuf::from("/var/lib/x"));
    assert_eq!(config.state.checkpoint_interval, Duration(60 * SECOND));
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9000");
    assert_eq!(config.dead_letter.topic, "dlq");
    assert_eq!(config.detectors.dir, Some(PathBuf::from("/etc/auditwatch/detectors")));
    assert_eq!(config.kafka.client.get("security.protocol").map(String::as_str), Some("SASL_SSL"));
}

#[test]
fn unknown_and_unusable_env_overrides_are_all_reported() {
    let vars = env(&[
        ("AUDITWATCH_X__Y", "1"),
        ("AUDITWATCH_KAFKA__BROKERZ", "b:9092"),
        ("AUDITWATCH_TOPICS__0__NAME", "t"),
        ("AUDITWATCH_ENGINE", "no separator: ignored"),
        ("AUDITWATCH_ENGINE__MAX_ACCOUNTS", "lots"),
        ("AUDITWATCH_STATE", "ignored too"),
        ("AUDITWATCH_KAFKA__CLIENT", "x"),
        ("AUDITWATCH_KAFKA__SECRETS__SASL_PASSWORD", "hunter2"),
    ]);
    let found = invalid(load_from(MINIMAL, "t.toml", &vars));
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "AUDITWATCH_X__Y",
            "AUDITWATCH_KAFKA__BROKERZ",
            "AUDITWATCH_TOPICS__0__NAME",
            "AUDITWATCH_ENGINE__MAX_ACCOUNTS",
            "AUDITWATCH_KAFKA__CLIENT",
            "AUDITWATCH_KAFKA__SECRETS__SASL_PASSWORD",
        ]
    );
    assert!(found[0].message.contains("no `x`"), "{:?}", found[0]);
    assert!(found[1].message.contains("`kafka` has no `brokerz`"), "{:?}", found[1]);
    assert!(found[2].message.contains("is a list"), "{:?}", found[2]);
    assert!(found[3].message.contains("not an integer"), "{:?}", found[3]);
    assert!(found[4].message.contains("is a table"), "{:?}", found[4]);
    assert!(found[5].message.contains("cannot be set from the environment"), "{:?}", found[5]);
    assert!(!format!("{found:?}").contains("hunter2"));
}

#[test]
fn env_var_referenced_as_a_secret_is_not_an_override() {
    let text = format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = {{ env = \"AUDITWATCH_KAFKA__PASSWORD\" }}\n");
    let vars = env(&[("AUDITWATCH_KAFKA__PASSWORD", "hunter2")]);
    let config = load_from(&text, "t.toml", &vars).expect("the secret var is not an unknown override");
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn bad_env_value_for_a_typed_field_names_the_environment() {
    let vars = env(&[("AUDITWATCH_STATE__CHECKPOINT_INTERVAL", "soon")]);
    match load_from(MINIMAL, "t.toml", &vars) {
        Err(ConfigError::Parse { message, .. }) => {
            assert!(message.contains("from the environment"), "{message}");
            assert!(message.contains("`soon` is not a duration"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}
