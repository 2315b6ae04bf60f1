use super::*;

const MINIMAL: &str = r#"
    [kafka]
    brokers = "localhost:9092"

    [[topics]]
    name = "audit.events"

    [dead_letter]
    topic = "audit.deadletter"
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn minimal() -> Config {
    match load_from(MINIMAL, "minimal.toml", &[]) {
        Ok(config) => config,
        Err(error) => panic!("minimal config should load: {error}"),
    }
}

fn problems(config: &Config) -> Vec<String> {
    config.validate().iter().map(Problem::to_string).collect()
}

/// Asserts that validating `config` reports exactly one problem, on `field`, containing `needle`.
#[track_caller]
fn assert_one_problem(config: &Config, field: &str, needle: &str) {
    let found = config.validate();
    assert_eq!(found.len(), 1, "expected one problem on {field}, got {found:?}");
    assert_eq!(found[0].field, field, "{found:?}");
    assert!(found[0].message.contains(needle), "{:?} should contain {needle:?}", found[0].message);
}

fn invalid(result: Result<Config, ConfigError>) -> Vec<Problem> {
    match result {
        Err(ConfigError::Invalid(problems)) => problems,
        other => panic!("expected ConfigError::Invalid, got {other:?}"),
    }
}

#[test]
fn minimal_config_gets_defaults() {
    let config = minimal();
    assert_eq!(config.kafka.group_id, "auditwatch");
    assert_eq!(config.kafka.batch_size, 5000);
    assert!(config.kafka.client.is_empty() && config.kafka.secrets.is_empty());
    assert_eq!(config.topics, vec![TopicConfig { name: "audit.events".into(), format: InputFormat::Native }]);
    assert_eq!(config.detectors.dir, None);
    assert_eq!(config.state.dir, PathBuf::from("state"));
    assert_eq!(config.state.checkpoint_interval, Duration(30 * SECOND));
    assert_eq!(config.state.shutdown_timeout, Duration(10 * SECOND));
    assert_eq!(config.engine.max_accounts, 1_000_000);
    assert_eq!(config.engine.max_credentials, 2_000_000);
    assert_eq!(config.engine.idle_expiry, Duration(35 * DAY));
    assert_eq!(config.engine.allowed_lateness, Duration(HOUR));
    assert_eq!(config.engine.max_event_bytes, 1_048_576);
    assert_eq!(
        config.outputs,
        vec![OutputConfig::Stdout(StdoutOutput { name: None, mask: None, format: StdoutFormat::Json })]
    );
    assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9187");
    assert_eq!(config.store.dir, None);
    assert_eq!((config.store.roll_bytes, config.store.roll_age), (128 << 20, Duration(300 * SECOND)));
}

#[test]
fn partial_sections_keep_defaults_for_missing_fields() {
    let text = format!("{MINIMAL}\n[state]\ndir = \"/var/lib/x\"\n[engine]\nidle_expiry = \"7d\"\n");
    let config = load_from(&text, "t.toml", &[]).expect("valid");
    assert_eq!(config.state.dir, PathBuf::from("/var/lib/x"));
    assert_eq!(config.state.checkpoint_interval, Duration(30 * SECOND));
    assert_eq!(config.engine.idle_expiry, Duration(7 * DAY));
    assert_eq!(config.engine.max_accounts, 1_000_000);
    let text = format!("{MINIMAL}\n[store]\ndir = \"/var/lib/store\"\nroll_age = \"1m\"\n");
    let config = load_from(&text, "t.toml", &[]).expect("valid");
    assert_eq!(config.store.dir, Some(PathBuf::from("/var/lib/store")));
    assert_eq!((config.store.roll_bytes, config.store.roll_age), (128 << 20, Duration(60 * SECOND)));
}

#[test]
fn unknown_field_is_rejected_with_its_name_and_line() {
    let text = MINIMAL.replace("brokers =", "brokerz = \"x\"\nbrokers =");
    match load_from(&text, "bad.toml", &[]) {
        Err(ConfigError::Parse { source_name, message }) => {
            assert_eq!(source_name, "bad.toml");
            assert!(message.contains("unknown field `brokerz`"), "{message}");
            assert!(message.contains("line 3"), "{message}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn toml_syntax_error_is_a_parse_error_with_its_line() {
    let error = load_from("[kafka\nbrokers = 1", "broken.toml", &[]).expect_err("syntax error");
    let text = error.to_string();
    assert!(matches!(error, ConfigError::Parse { .. }), "{error:?}");
    assert!(text.contains("broken.toml") && text.contains("line 1"), "{text}");
}

#[test]
fn outputs_are_tagged_by_type() {
    let text = format!(
        "{MINIMAL}\n[[outputs]]\ntype = \"stdout\"\nformat = \"pretty\"\n\
         [[outputs]]\ntype = \"file\"\npath = \"/tmp/a.jsonl\"\n\
         [[outputs]]\ntype = \"kafka\"\ntopic = \"alerts\"\n"
    );
    let config = load_from(&text, "t.toml", &[]).expect("valid");
    assert_eq!(
        config.outputs,
        vec![
            OutputConfig::Stdout(StdoutOutput { name: None, mask: None, format: StdoutFormat::Pretty }),
            OutputConfig::File(FileOutput { name: None, mask: None, path: "/tmp/a.jsonl".into() }),
            OutputConfig::Kafka(KafkaOutput { name: None, mask: None, topic: "alerts".into() }),
        ]
    );
    let unknown = format!("{MINIMAL}\n[[outputs]]\ntype = \"kafka\"\ntopic = \"alerts\"\nformat = \"json\"\n");
    let error = load_from(&unknown, "t.toml", &[]).expect_err("unknown field in output");
    assert!(error.to_string().contains("unknown field `format`"), "{error}");
    let unknown_type = format!("{MINIMAL}\n[[outputs]]\ntype = \"carrier_pigeon\"\n");
    let error = load_from(&unknown_type, "t.toml", &[]).expect_err("unknown output type");
    assert!(error.to_string().contains("carrier_pigeon"), "{error}");
}

#[test]
fn each_topic_declares_its_input_format() {
    for (name, format) in [
        ("native", InputFormat::Native),
        ("cloudtrail", InputFormat::Cloudtrail),
        ("ocsf", InputFormat::Ocsf),
        ("okta", InputFormat::Okta),
        ("auto", InputFormat::Auto),
    ] {
        let text = MINIMAL.replace("name = \"audit.events\"", &format!("name = \"audit.events\"\nformat = \"{name}\""));
        let config = load_from(&text, "t.toml", &[]).expect("valid format");
        assert_eq!(config.topics[0].format, format);
        assert_eq!(format.to_string(), name);
        assert_eq!(name.parse::<InputFormat>(), Ok(format));
    }
    assert_eq!(
        "cef".parse::<InputFormat>(),
        Err("unknown input format `cef`; expected one of: native, cloudtrail, ocsf, okta, auto".to_string())
    );
}

#[test]
fn unknown_input_format_is_rejected() {
    let text = MINIMAL.replace("name = \"audit.events\"", "name = \"audit.events\"\nformat = \"cef\"");
    let error = load_from(&text, "t.toml", &[]).expect_err("unknown format");
    assert!(error.to_string().contains("unknown variant `cef`"), "{error}");
}

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

#[test]
fn each_validation_rule_has_a_case() {
    type Mutation = Box<dyn Fn(&mut Config)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("topics", Box::new(|c| c.topics.clear()), "at least one"),
        ("topics[0].name", Box::new(|c| c.topics[0].name.clear()), "must not be empty"),
        ("topics[0].name", Box::new(|c| c.topics[0].name = "audit events".into()), "not a Kafka topic name"),
        (
            "topics[1].name",
            Box::new(|c| c.topics.push(TopicConfig { name: "audit.events".into(), format: InputFormat::Native })),
            "already listed as topics[0]",
        ),
        ("dead_letter.topic", Box::new(|c| c.dead_letter.topic = "audit.events".into()), "also an input topic"),
        ("dead_letter.topic", Box::new(|c| c.dead_letter.topic.clear()), "must not be empty"),
        ("store.dir", Box::new(|c| c.store.dir = Some(PathBuf::new())), "must not be empty"),
        ("store.roll_bytes", Box::new(|c| c.store.roll_bytes = 10), "at least 1024"),
        ("store.roll_age", Box::new(|c| c.store.roll_age = Duration(0)), "longer than 0"),
        (
            "outputs[1].topic",
            Box::new(|c| {
                c.outputs.push(OutputConfig::Kafka(KafkaOutput {
                    name: None,
                    mask: None,
                    topic: "audit.events".into(),
                }))
            }),
            "also an input topic",
        ),
        (
            "outputs[1].topic",
            Box::new(|c| {
                c.outputs.push(OutputConfig::Kafka(KafkaOutput {
                    name: None,
                    mask: None,
                    topic: "audit.deadletter".into(),
                }))
            }),
            "dead-letter topic",
        ),
        (
            "outputs[2].topic",
            Box::new(|c| {
                c.outputs.push(OutputConfig::Kafka(KafkaOutput { name: None, mask: None, topic: "alerts".into() }));
                c.outputs.push(OutputConfig::Kafka(KafkaOutput { name: None, mask: None, topic: "alerts".into() }));
            }),
            "already receives alerts from outputs[1]",
        ),
        ("kafka.brokers", Box::new(|c| c.kafka.brokers = " ".into()), "must not be empty"),
        ("kafka.brokers", Box::new(|c| c.kafka.brokers = "a:1,,b:2".into()), "empty entry"),
        ("kafka.group_id", Box::new(|c| c.kafka.group_id.clear()), "must not be empty"),
        ("kafka.batch_size", Box::new(|c| c.kafka.batch_size = 0), "between 1 and 100000"),
        ("kafka.batch_size", Box::new(|c| c.kafka.batch_size = 100_001), "between 1 and 100000"),
        ("state.checkpoint_interval", Box::new(|c| c.state.checkpoint_interval = Duration(0)), "longer than 0"),
        ("state.shutdown_timeout", Box::new(|c| c.state.shutdown_timeout = Duration(0)), "longer than 0"),
        ("state.dir", Box::new(|c| c.state.dir = PathBuf::new()), "must not be empty"),
        ("detectors.dir", Box::new(|c| c.detectors.dir = Some(PathBuf::new())), "built-in pack"),
        ("engine.idle_expiry", Box::new(|c| c.engine.idle_expiry = Duration(0)), "longer than 0"),
        ("engine.max_accounts", Box::new(|c| c.engine.max_accounts = 0), "greater than 0"),
        ("engine.max_credentials", Box::new(|c| c.engine.max_credentials = 0), "greater than 0"),
        ("engine.max_event_bytes", Box::new(|c| c.engine.max_event_bytes = 1023), "1 KiB"),
        ("engine.max_event_bytes", Box::new(|c| c.engine.max_event_bytes = 64 * 1024 * 1024 + 1), "64 MiB"),
        (
            "kafka.client.sasl.password",
            Box::new(|c| {
                c.kafka.client.insert("sasl.password".into(), "hunter2".into());
            }),
            "[kafka.secrets]",
        ),
        (
            "kafka.client.sasl.jaas.config",
            Box::new(|c| {
                c.kafka.client.insert("sasl.jaas.config".into(), "x".into());
            }),
            "holds a secret",
        ),
        (
            "kafka.client.ssl.key.pem",
            Box::new(|c| {
                c.kafka.client.insert("ssl.key.pem".into(), "x".into());
            }),
            "holds a secret",
        ),
        (
            "kafka.client.sasl.oauthbearer.client.secret",
            Box::new(|c| {
                c.kafka.client.insert("sasl.oauthbearer.client.secret".into(), "x".into());
            }),
            "holds a secret",
        ),
        (
            "kafka.client.group.id",
            Box::new(|c| {
                c.kafka.client.insert("group.id".into(), "x".into());
            }),
            "kafka.group_id",
        ),
        (
            "kafka.client.enable.auto.commit",
            Box::new(|c| {
                c.kafka.client.insert("enable.auto.commit".into(), "true".into());
            }),
            "managed by auditwatch",
        ),
        (
            "kafka.secrets.sasl.username",
            Box::new(|c| {
                c.kafka.client.insert("sasl.username".into(), "svc".into());
                c.kafka.secrets.insert("sasl.username".into(), SecretRef::Env { env: "U".into() });
            }),
            "also set in [kafka.client]",
        ),
        (
            "kafka.secrets.sasl.password.env",
            Box::new(|c| {
                c.kafka.secrets.insert("sasl.password".into(), SecretRef::Env { env: "".into() });
            }),
            "must name an environment variable",
        ),
        (
            "kafka.secrets.sasl.password.file",
            Box::new(|c| {
                c.kafka.secrets.insert("sasl.password".into(), SecretRef::File { file: PathBuf::new() });
            }),
            "must name a file",
        ),
        ("outputs", Box::new(|c| c.outputs.clear()), "at least one output"),
        (
            "outputs[2].path",
            Box::new(|c| {
                c.outputs.push(OutputConfig::File(FileOutput {
                    name: None,
                    mask: None,
                    path: "/x/alerts.jsonl".into(),
                }));
                c.outputs.push(OutputConfig::File(FileOutput {
                    name: None,
                    mask: None,
                    path: "/x/alerts.jsonl".into(),
                }));
            }),
            "already written by outputs[1]",
        ),
        (
            "outputs[1]",
            Box::new(|c| {
                c.outputs.push(OutputConfig::Stdout(StdoutOutput {
                    name: None,
                    mask: None,
                    format: StdoutFormat::Pretty,
                }))
            }),
            "only one stdout output",
        ),
    ];
    assert!(minimal().validate().is_empty(), "{:?}", problems(&minimal()));
    for (field, mutate, needle) in cases {
        let mut config = minimal();
        mutate(&mut config);
        assert_one_problem(&config, field, needle);
    }
}

#[test]
fn several_problems_are_reported_at_once() {
    let text = r#"
        [kafka]
        brokers = ""
        batch_size = 0

        [kafka.client]
        "sasl.password" = "hunter2"

        [[topics]]
        name = "audit.events"

        [[topics]]
        name = "audit.events"

        [dead_letter]
        topic = "audit.events"

        [engine]
        max_event_bytes = 10

        [state]
        checkpoint_interval = "0s"
    "#;
    let found = invalid(load_from(text, "t.toml", &[]));
    let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "kafka.brokers",
            "kafka.batch_size",
            "kafka.client.sasl.password",
            "topics[1].name",
            "dead_letter.topic",
            "state.checkpoint_interval",
            "engine.max_event_bytes",
        ]
    );
    let display = ConfigError::Invalid(found).to_string();
    assert!(display.starts_with("invalid configuration (7 problems):\n"), "{display}");
    assert!(display.contains("\nkafka.batch_size: is 0; must be between 1 and 100000\n"), "{display}");
    assert!(!display.contains("hunter2"), "a rejected inline secret must not be echoed: {display}");
}

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

#[test]
fn schema_file_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/config.schema.json");
    let expected = schema_json();
    if std::env::var_os("UPDATE_SCHEMAS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &expected).expect("write schema");
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is out of date; regenerate it with\n  cargo run -- config schema > schemas/config.schema.json\n\
         or\n  UPDATE_SCHEMAS=1 cargo test --lib config::tests::schema_file_is_current",
        path.display()
    );
}

#[test]
fn schema_describes_durations_and_closed_sets() {
    let schema: serde_json::Value = serde_json::from_str(&schema_json()).expect("json");
    assert_eq!(schema["$defs"]["Duration"]["pattern"], "^([0-9]+(ms|s|m|h|d|w))+$");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["$defs"]["KafkaConfig"]["additionalProperties"], false);
    let text = schema.to_string();
    for name in ["\"native\"", "\"cloudtrail\"", "\"ocsf\"", "\"stdout\"", "\"pretty\"", "\"kafka\"", "\"file\""] {
        assert!(text.contains(name), "schema lacks {name}");
    }
}

#[test]
fn example_config_validates() {
    let text = include_str!("../../docker/auditwatch.example.toml");
    let config = match load_from(text, "docker/auditwatch.example.toml", &[]) {
        Ok(config) => config,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(config.kafka.brokers, "kafka:9092");
    assert_eq!(config.topics[0].name, "audit.events");
    assert_eq!(config.dead_letter.topic, "audit.deadletter");
    assert_eq!(config.state.dir, PathBuf::from("/var/lib/auditwatch"));
    assert_eq!(config.admin.listen.to_string(), "0.0.0.0:9187");
    assert_eq!(config.output_names(), ["console", "siem", "archive", "oncall-email"]);
    assert_eq!(config.routes.len(), 2);
}

#[test]
fn enrichment_files_are_read_at_start_and_each_problem_names_its_key_and_path() {
    assert!(minimal().enrichment.open().unwrap().is_none(), "nothing configured, nothing to read");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("GeoLite2-ASN.mmdb");
    let not_mmdb = dir.path().join("country.mmdb");
    std::fs::write(&not_mmdb, "plain text").unwrap();
    let not_aws = dir.path().join("ip-ranges.json");
    std::fs::write(&not_aws, r#"{"values": []}"#).unwrap();
    let text = format!(
        "{MINIMAL}\n[enrichment]\ndatabases = [{:?}, {:?}]\naws_ranges = {:?}\n",
        missing.to_str().unwrap(),
        not_mmdb.to_str().unwrap(),
        not_aws.to_str().unwrap()
    );
    let config = load_from(&text, "enrich.toml", &[]).expect("the shape is valid; the files are read at start");
    let Err(ConfigError::Invalid(problems)) = config.enrichment.open() else { panic!("the files are unusable") };
    let problems: Vec<String> = problems.iter().map(Problem::to_string).collect();
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems[0].starts_with(&format!("enrichment.databases[0]: {}: cannot read it", missing.display())));
    assert!(problems[1].starts_with(&format!(
        "enrichment.databases[1]: {}: is not a MaxMind-format database (.mmdb)",
        not_mmdb.display()
    )));
    assert!(
        problems[2].starts_with(&format!("enrichment.aws_ranges: {}: is not an AWS ip-ranges.json", not_aws.display())),
        "{}",
        problems[2]
    );

    let text = format!("{MINIMAL}\n[enrichment]\ndatabases = [\"\"]\ngcp_ranges = \"\"\n");
    let Err(ConfigError::Invalid(problems)) = load_from(&text, "enrich.toml", &[]) else { panic!("empty paths") };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["enrichment.databases[0]", "enrichment.gcp_ranges"]);
    let text = format!("{MINIMAL}\n[enrichment]\ndatabase = \"x.mmdb\"\n");
    assert!(matches!(load_from(&text, "enrich.toml", &[]), Err(ConfigError::Parse { .. })), "unknown keys are refused");
}
