//! Validation: every problem with a parsed configuration at once, each with its dotted field.

use super::secrets::is_secret_property;
use super::*;

/// Properties auditwatch sets itself, with the reason a user may not override them.
const RESERVED_PROPERTIES: [(&str, &str); 4] = [
    ("bootstrap.servers", "set `kafka.brokers` instead"),
    ("group.id", "set `kafka.group_id` instead"),
    ("enable.auto.commit", "auditwatch commits offsets itself, only after a checkpoint holds them"),
    ("enable.auto.offset.store", "auditwatch stores offsets itself, only after a checkpoint holds them"),
];

impl KafkaConfig {
    fn validate(&self, out: &mut Vec<Problem>) {
        if self.brokers.trim().is_empty() {
            out.push(Problem::new("kafka.brokers", "must not be empty; write \"host:port,host:port\""));
        } else if self.brokers.split(',').any(|broker| broker.trim().is_empty()) {
            out.push(Problem::new("kafka.brokers", "has an empty entry; write \"host:port,host:port\""));
        }
        if self.group_id.trim().is_empty() {
            out.push(Problem::new("kafka.group_id", "must not be empty"));
        }
        if !(1..=100_000).contains(&self.batch_size) {
            out.push(Problem::new("kafka.batch_size", format!("is {}; must be between 1 and 100000", self.batch_size)));
        }
        for key in self.client.keys() {
            let field = format!("kafka.client.{key}");
            if key.trim().is_empty() {
                out.push(Problem::new(field, "property name must not be empty"));
            } else if is_secret_property(key) {
                out.push(Problem::new(
                    field,
                    format!(
                        "holds a secret, which must not be written in the config; remove it and add \
                         `\"{key}\" = {{ env = \"VAR\" }}` or `\"{key}\" = {{ file = \"/path\" }}` under [kafka.secrets]"
                    ),
                ));
            } else if let Some((_, why)) = RESERVED_PROPERTIES.iter().find(|(name, _)| name == key) {
                out.push(Problem::new(field, format!("is managed by auditwatch: {why}")));
            }
        }
        for (key, reference) in &self.secrets {
            let field = format!("kafka.secrets.{key}");
            if key.trim().is_empty() {
                out.push(Problem::new(field.clone(), "property name must not be empty"));
            }
            if self.client.contains_key(key) {
                out.push(Problem::new(
                    field.clone(),
                    "is also set in [kafka.client]; keep only this [kafka.secrets] entry",
                ));
            }
            if let Some((_, why)) = RESERVED_PROPERTIES.iter().find(|(name, _)| name == key) {
                out.push(Problem::new(field.clone(), format!("is managed by auditwatch: {why}")));
            }
            match reference {
                SecretRef::Env { env } if env.trim().is_empty() => {
                    out.push(Problem::new(format!("{field}.env"), "must name an environment variable"));
                }
                SecretRef::Env { env } if env.contains(['=', '\0']) => {
                    out.push(Problem::new(format!("{field}.env"), "is not a valid environment variable name"));
                }
                SecretRef::File { file } if file.as_os_str().is_empty() => {
                    out.push(Problem::new(format!("{field}.file"), "must name a file"));
                }
                _ => {}
            }
        }
    }
}

impl Config {
    /// Every problem with this configuration, in file order; empty when it is valid.
    pub fn validate(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        self.kafka.validate(&mut out);

        if self.topics.is_empty() {
            out.push(Problem::new("topics", "at least one input topic is required: [[topics]] name = \"...\""));
        }
        let mut inputs: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, topic) in self.topics.iter().enumerate() {
            let field = format!("topics[{i}].name");
            if let Some(message) = topic_name_problem(&topic.name) {
                out.push(Problem::new(field, message));
            } else if let Some(first) = inputs.get(topic.name.as_str()) {
                out.push(Problem::new(field, format!("`{}` is already listed as topics[{first}]", topic.name)));
            } else {
                inputs.insert(&topic.name, i);
            }
        }

        let dead_letter = self.dead_letter.topic.as_str();
        if let Some(message) = topic_name_problem(dead_letter) {
            out.push(Problem::new("dead_letter.topic", message));
        } else if inputs.contains_key(dead_letter) {
            out.push(Problem::new(
                "dead_letter.topic",
                format!("`{dead_letter}` is also an input topic; dead letters would be read back as events"),
            ));
        }

        self.validate_outputs(&inputs, &mut out);

        if let Some(dir) = &self.detectors.dir {
            if dir.as_os_str().is_empty() {
                out.push(Problem::new("detectors.dir", "must not be empty; leave it out to use the built-in pack"));
            }
        }

        if self.state.dir.as_os_str().is_empty() {
            out.push(Problem::new("state.dir", "must not be empty"));
        }
        positive(&mut out, "state.checkpoint_interval", self.state.checkpoint_interval);
        positive(&mut out, "state.shutdown_timeout", self.state.shutdown_timeout);

        if self.engine.max_accounts == 0 {
            out.push(Problem::new("engine.max_accounts", "must be greater than 0"));
        }
        if self.engine.max_credentials == 0 {
            out.push(Problem::new("engine.max_credentials", "must be greater than 0"));
        }
        positive(&mut out, "engine.idle_expiry", self.engine.idle_expiry);
        const MIN_EVENT_BYTES: usize = 1024;
        const MAX_EVENT_BYTES: usize = 64 * 1024 * 1024;
        if !(MIN_EVENT_BYTES..=MAX_EVENT_BYTES).contains(&self.engine.max_event_bytes) {
            out.push(Problem::new(
                "engine.max_event_bytes",
                format!(
                    "is {}; must be between {MIN_EVENT_BYTES} (1 KiB) and {MAX_EVENT_BYTES} (64 MiB)",
                    self.engine.max_event_bytes
                ),
            ));
        }
        out
    }

    fn validate_outputs(&self, inputs: &BTreeMap<&str, usize>, out: &mut Vec<Problem>) {
        if self.outputs.is_empty() {
            out.push(Problem::new("outputs", "at least one output is required, e.g. [[outputs]] type = \"stdout\""));
        }
        let mut stdout: Option<usize> = None;
        let mut files: BTreeMap<&Path, usize> = BTreeMap::new();
        let mut topics: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, output) in self.outputs.iter().enumerate() {
            match output {
                OutputConfig::Stdout { .. } => match stdout {
                    Some(first) => out.push(Problem::new(
                        format!("outputs[{i}]"),
                        format!("only one stdout output is allowed; outputs[{first}] is one already"),
                    )),
                    None => stdout = Some(i),
                },
                OutputConfig::File { path } => {
                    let field = format!("outputs[{i}].path");
                    if path.as_os_str().is_empty() {
                        out.push(Problem::new(field, "must not be empty"));
                    } else if let Some(first) = files.get(path.as_path()) {
                        out.push(Problem::new(
                            field,
                            format!("`{}` is already written by outputs[{first}]", path.display()),
                        ));
                    } else {
                        files.insert(path, i);
                    }
                }
                OutputConfig::Kafka { topic } => {
                    let field = format!("outputs[{i}].topic");
                    if let Some(message) = topic_name_problem(topic) {
                        out.push(Problem::new(field, message));
                    } else if inputs.contains_key(topic.as_str()) {
                        out.push(Problem::new(
                            field,
                            format!("`{topic}` is also an input topic; alerts would be read back as events"),
                        ));
                    } else if *topic == self.dead_letter.topic {
                        out.push(Problem::new(field, format!("`{topic}` is also the dead-letter topic")));
                    } else if let Some(first) = topics.get(topic.as_str()) {
                        out.push(Problem::new(
                            field,
                            format!("`{topic}` already receives alerts from outputs[{first}]"),
                        ));
                    } else {
                        topics.insert(topic, i);
                    }
                }
            }
        }
    }
}

fn positive(out: &mut Vec<Problem>, field: &str, duration: Duration) {
    if duration.0 <= 0 {
        out.push(Problem::new(field, "must be longer than 0, e.g. \"30s\""));
    }
}

/// Kafka's rules for topic names, so a typo fails at startup rather than at the broker.
fn topic_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name == "." || name == ".." {
        Some(format!("`{name}` is not allowed as a Kafka topic name"))
    } else if name.len() > 249 {
        Some("is longer than 249 characters, Kafka's limit".into())
    } else if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        Some(format!("`{name}` is not a Kafka topic name: use only ASCII letters, digits, '.', '_' and '-'"))
    } else {
        None
    }
}
