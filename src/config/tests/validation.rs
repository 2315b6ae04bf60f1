//! Every validation rule, and several problems reported at once.

use super::*;

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
