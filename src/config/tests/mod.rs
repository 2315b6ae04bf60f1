//! The config file's tests, by concern: parsing and defaults here, then environment overrides,
//! validation rules and secrets in their own files.

use super::*;

mod env;
mod secrets;
mod validation;

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
    let text = include_str!("../../../docker/auditwatch.example.toml");
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
