//! The service configuration read by `auditwatch run --config FILE` (TOML).
//!
//! Layers, later wins: serde defaults, then the file, then environment variables
//! `AUDITWATCH_<SECTION>__<KEY>` (see [`load_from`]). The merged document goes through serde
//! with `deny_unknown_fields`, then [`Config::validate`] reports every problem at once, each with
//! its dotted field (`kafka.batch_size`, `topics[1].name`). The rest of the program only sees a
//! validated [`Config`].
//!
//! Secrets never live in the file or in a [`Config`]: `[kafka.secrets]` holds references
//! ([`SecretRef`], an env var or a file), resolved only when a Kafka client is built
//! ([`KafkaConfig::client_properties`]) into a [`Secret`] whose `Debug` and `Display` print
//! `***`. Error messages name the env var or the file, never the value.
//!
//! `schemas/config.schema.json` is the JSON Schema of this format ([`schema_json`]); a unit test
//! keeps it current. `docker/auditwatch.example.toml` documents every field.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::time::{Duration, DAY, HOUR, SECOND};

// ---------------------------------------------------------------------------------------------
// The format

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Kafka cluster events are read from (and alerts and dead letters written to).
    pub kafka: KafkaConfig,
    /// Input topics carrying audit events. At least one.
    #[schemars(length(min = 1))]
    pub topics: Vec<TopicConfig>,
    /// Where detector definitions come from.
    #[serde(default)]
    pub detectors: DetectorsConfig,
    /// Checkpoints of engine state and offsets.
    #[serde(default)]
    pub state: StateConfig,
    /// Bounds and timing of the detection engine.
    #[serde(default)]
    pub engine: EngineConfig,
    /// Where input that cannot be decoded goes, with its original bytes.
    pub dead_letter: DeadLetterConfig,
    /// Where alerts go. Default: one stdout output in JSON.
    #[serde(default = "default_outputs")]
    pub outputs: Vec<OutputConfig>,
    /// The admin HTTP server (health, metrics, SQL).
    #[serde(default)]
    pub admin: AdminConfig,
}

/// Connection to the Kafka cluster and the consumer's batching.
#[derive(Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap servers, `"host:port,host:port"`.
    #[schemars(length(min = 1))]
    pub brokers: String,
    /// Consumer group; instances in one group share the partitions.
    #[serde(default = "default_group_id")]
    #[schemars(length(min = 1))]
    pub group_id: String,
    /// Most messages handled per poll batch.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 100_000))]
    pub batch_size: usize,
    /// Longest wait to fill a batch before handling what arrived.
    #[serde(default = "default_batch_timeout")]
    pub batch_timeout: Duration,
    /// Extra librdkafka properties, passed as-is (`security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `ssl.ca.location`, fetch and queue tuning). Never secrets: see `secrets`.
    #[serde(default)]
    pub client: BTreeMap<String, String>,
    /// librdkafka properties whose values are secrets, and where each comes from:
    /// `"sasl.password" = { env = "AUDITWATCH_KAFKA_PASSWORD" }` or `{ file = "/run/secrets/kafka" }`.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
}

/// One input topic.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Kafka topic name.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub name: String,
    /// How its messages are encoded.
    #[serde(default)]
    pub format: InputFormat,
}

/// Encoding of input messages. A closed set: each format has its own decoder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// One auditwatch audit event as a JSON object per message (`schemas/audit-event.schema.json`).
    #[default]
    Native,
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputFormat::Native => f.write_str("native"),
        }
    }
}

/// Where a secret value comes from. Written `{ env = "VAR" }` or `{ file = "/path" }`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    /// The value of an environment variable (must be set and non-empty).
    Env {
        /// Name of the environment variable.
        env: String,
    },
    /// The contents of a file, trailing newlines removed (docker/Kubernetes secrets).
    File {
        /// Path of the file.
        file: PathBuf,
    },
}

/// Detector definitions.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorsConfig {
    /// Directory of detector files; absent means the built-in pack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

/// Checkpointing of engine state together with the Kafka offsets.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Directory for checkpoints and the alert outbox.
    pub dir: PathBuf,
    /// How often state is checkpointed and offsets committed; bounds re-reading after a crash.
    pub checkpoint_interval: Duration,
    /// How long a graceful shutdown may take to drain, checkpoint and commit.
    pub shutdown_timeout: Duration,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: PathBuf::from("state"),
            checkpoint_interval: Duration(30 * SECOND),
            shutdown_timeout: Duration(10 * SECOND),
        }
    }
}

/// Bounds and timing of the engine.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Most accounts tracked at once; bounds memory.
    #[schemars(range(min = 1))]
    pub max_accounts: usize,
    /// Most credentials (keys, tokens) tracked at once; bounds memory.
    #[schemars(range(min = 1))]
    pub max_credentials: usize,
    /// An account or credential not seen for this long is forgotten.
    pub idle_expiry: Duration,
    /// How late (in event time) an event may arrive and still be scored.
    pub allowed_lateness: Duration,
    /// Larger messages go to the dead letter instead of being decoded (1 KiB to 64 MiB).
    #[schemars(range(min = 1024, max = 67_108_864))]
    pub max_event_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_accounts: 1_000_000,
            max_credentials: 2_000_000,
            idle_expiry: Duration(35 * DAY),
            allowed_lateness: Duration(HOUR),
            max_event_bytes: 1024 * 1024,
        }
    }
}

/// Destination of input that cannot be decoded.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// Kafka topic for dead letters (error, source, original bytes).
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub topic: String,
}

/// One alert destination. A closed set matched exhaustively; email and webhook come later.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputConfig {
    /// Alerts on standard output.
    Stdout {
        /// `json` (one object per line) or `pretty` (for people).
        #[serde(default)]
        format: StdoutFormat,
    },
    /// Alerts appended to a JSON-lines file.
    File {
        /// Path of the file.
        path: PathBuf,
    },
    /// Alerts produced to a Kafka topic of the same cluster.
    Kafka {
        /// Kafka topic name.
        #[schemars(length(min = 1, max = 249), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
        topic: String,
    },
}

/// How alerts are printed on standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// One JSON object per line, the alert contract.
    #[default]
    Json,
    /// A readable multi-line rendering.
    Pretty,
}

/// The admin HTTP server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address. Loopback by default: the SQL endpoint should not face the network.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: SocketAddr::from(([127, 0, 0, 1], 9187)) }
    }
}

fn default_group_id() -> String {
    "auditwatch".to_string()
}

fn default_batch_size() -> usize {
    5000
}

fn default_batch_timeout() -> Duration {
    Duration(20)
}

fn default_outputs() -> Vec<OutputConfig> {
    vec![OutputConfig::Stdout { format: StdoutFormat::Json }]
}

/// `Debug` masks `client` values whose key looks like a secret: validation rejects them, but a
/// config may be printed before it is validated.
impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let client: BTreeMap<&str, &str> = self
            .client
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_property(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("brokers", &self.brokers)
            .field("group_id", &self.group_id)
            .field("batch_size", &self.batch_size)
            .field("batch_timeout", &self.batch_timeout)
            .field("client", &client)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// `Duration` is written as a human string in config files.
impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "auditwatch::time::Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A span of time: a number and a unit (ms, s, m, h, d, w), repeated: \"500ms\", \"30s\", \"1h30m\", \"14d\".",
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d|w))+$"
        })
    }
}

/// Hand-written so that a mistaken inline secret (`"sasl.password" = "hunter2"`) is rejected
/// without the value appearing in the error, and so that `{ env, file }` mistakes read clearly.
impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RefVisitor;
        const EXPECTED: &str = "a table `{ env = \"VAR\" }` or `{ file = \"/path\" }`";

        fn inline<E: serde::de::Error>() -> E {
            E::custom(format!("a secret cannot be written inline; write {EXPECTED}"))
        }

        impl<'de> serde::de::Visitor<'de> for RefVisitor {
            type Value = SecretRef;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(inline())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<SecretRef, E> {
                Err(inline())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<SecretRef, E> {
                Err(inline())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<SecretRef, E> {
                Err(inline())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<SecretRef, E> {
                Err(inline())
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<SecretRef, A::Error> {
                Err(inline())
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<SecretRef, A::Error> {
                use serde::de::Error;
                let mut env: Option<String> = None;
                let mut file: Option<PathBuf> = None;
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "env" if env.is_none() => env = Some(map.next_value()?),
                        "file" if file.is_none() => file = Some(map.next_value()?),
                        "env" | "file" => return Err(A::Error::duplicate_field("env or file")),
                        other => return Err(A::Error::unknown_field(other, &["env", "file"])),
                    }
                }
                match (env, file) {
                    (Some(env), None) => Ok(SecretRef::Env { env }),
                    (None, Some(file)) => Ok(SecretRef::File { file }),
                    (Some(_), Some(_)) => Err(A::Error::custom("set either `env` or `file`, not both")),
                    (None, None) => Err(A::Error::custom(format!("empty secret reference; write {EXPECTED}"))),
                }
            }
        }

        d.deserialize_any(RefVisitor)
    }
}

/// Says where the value comes from, never the value: `env AUDITWATCH_KAFKA_PASSWORD`.
impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Env { env } => write!(f, "env {env}"),
            SecretRef::File { file } => write!(f, "file {}", file.display()),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// One thing wrong with the configuration, with the dotted path of the field at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `kafka.batch_size`, `topics[1].name`, `kafka.client.sasl.password`, or an env var name.
    pub field: String,
    /// What is wrong, as a sentence the user can act on.
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{source_name} is not a valid configuration:\n{message}")]
    Parse { source_name: String, message: String },
    #[error("invalid configuration ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, render_problems(.0))]
    Invalid(Vec<Problem>),
}

fn render_problems(problems: &[Problem]) -> String {
    problems.iter().map(Problem::to_string).collect::<Vec<_>>().join("\n")
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// A resolved secret. Prints as `***` in `Debug` and `Display`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret value, for handing to the client that needs it. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A librdkafka property value: plain, or a secret that must not be printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropertyValue {
    Plain(String),
    Secret(Secret),
}

impl PropertyValue {
    /// The value to hand to librdkafka.
    pub fn expose(&self) -> &str {
        match self {
            PropertyValue::Plain(value) => value,
            PropertyValue::Secret(secret) => secret.expose(),
        }
    }
}

impl SecretRef {
    /// Reads the secret. The error names the env var or file, never a value.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Secret, String> {
        match self {
            SecretRef::Env { env: name } => match env(name) {
                None => Err(format!("MISSING: env {name} is not set")),
                Some(value) if value.is_empty() => Err(format!("MISSING: env {name} is set but empty")),
                Some(value) => Ok(Secret(value)),
            },
            SecretRef::File { file } => match std::fs::read_to_string(file) {
                Err(error) => Err(format!("MISSING: cannot read file {}: {error}", file.display())),
                Ok(text) => {
                    // Secret files usually end with a newline that is not part of the secret.
                    let value = text.trim_end_matches(['\n', '\r']);
                    if value.is_empty() {
                        Err(format!("MISSING: file {} is empty", file.display()))
                    } else {
                        Ok(Secret(value.to_string()))
                    }
                }
            },
        }
    }
}

/// librdkafka properties whose values are secrets: they belong in `[kafka.secrets]`.
fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || matches!(key.as_str(), "ssl.key.pem" | "sasl.oauthbearer.client.secret" | "sasl.jaas.config")
}

/// Whether a line of the file may show a secret, so an error must not quote it.
fn may_hold_secret(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    ["password", "secret", "ssl.key.pem", "jaas"].iter().any(|word| line.contains(word))
}

/// Properties auditwatch sets itself, with the reason a user may not override them.
const RESERVED_PROPERTIES: [(&str, &str); 4] = [
    ("bootstrap.servers", "set `kafka.brokers` instead"),
    ("group.id", "set `kafka.group_id` instead"),
    ("enable.auto.commit", "auditwatch commits offsets itself, only after a checkpoint holds them"),
    ("enable.auto.offset.store", "auditwatch stores offsets itself, only after a checkpoint holds them"),
];

impl KafkaConfig {
    /// The librdkafka properties every client of this cluster gets: `bootstrap.servers`, then
    /// `client`, then `secrets` resolved through `env` (files are read from disk). The consumer
    /// adds `group.id` from [`KafkaConfig::group_id`] itself. Each secret that cannot be resolved
    /// is a [`Problem`] on `kafka.secrets.<key>`.
    pub fn client_properties(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<(String, PropertyValue)>, Vec<Problem>> {
        let mut properties = vec![("bootstrap.servers".to_string(), PropertyValue::Plain(self.brokers.clone()))];
        properties.extend(self.client.iter().map(|(k, v)| (k.clone(), PropertyValue::Plain(v.clone()))));
        let mut problems = Vec::new();
        for (key, reference) in &self.secrets {
            match reference.resolve(env) {
                Ok(secret) => properties.push((key.clone(), PropertyValue::Secret(secret))),
                Err(message) => problems.push(Problem::new(format!("kafka.secrets.{key}"), message)),
            }
        }
        if problems.is_empty() {
            Ok(properties)
        } else {
            Err(problems)
        }
    }

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
        positive(out, "kafka.batch_timeout", self.batch_timeout);
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

// ---------------------------------------------------------------------------------------------
// Validation

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

// ---------------------------------------------------------------------------------------------
// Loading: file + environment

const ENV_PREFIX: &str = "AUDITWATCH_";
const ENV_SEPARATOR: &str = "__";

/// Reads `path`, applies the process environment, validates.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read(path)?;
    load_from(&text, &path.display().to_string(), &process_env())
}

/// Parses `text` (named `source_name` in errors), applies `env`, validates.
///
/// Environment overrides are the variables named `AUDITWATCH_<SECTION>__<KEY>`: a double
/// underscore separates levels, and the path is lowercased (`AUDITWATCH_KAFKA__BROKERS`,
/// `AUDITWATCH_STATE__DIR`, `AUDITWATCH_ENGINE__MAX_ACCOUNTS`). Any scalar field of a table
/// section can be set, including required ones absent from the file; the lists `topics` and
/// `outputs` cannot. Keys of `[kafka.client]` are written with `_` for `.`
/// (`AUDITWATCH_KAFKA__CLIENT__SECURITY_PROTOCOL=SASL_SSL` sets `security.protocol`).
/// The value is taken as the field's type: integers and booleans are parsed, strings (also
/// durations, paths, addresses) are taken verbatim. Variables without `__` (like
/// `AUDITWATCH_KAFKA_PASSWORD`) are not overrides, nor are those `[kafka.secrets]` names; an
/// override that names no field is a [`Problem`] so typos surface.
pub fn load_from(text: &str, source_name: &str, env: &[(String, String)]) -> Result<Config, ConfigError> {
    let (config, mut problems, _) = parse_layers(text, source_name, env)?;
    problems.extend(config.validate());
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// What `auditwatch config check FILE` prints for a valid configuration: its shape, which env
/// overrides applied, and which secrets are referenced (all resolved, or it is an error).
pub fn check_report(path: &Path) -> Result<String, ConfigError> {
    let text = read(path)?;
    let (config, mut problems, overrides) = parse_layers(&text, &path.display().to_string(), &process_env())?;
    problems.extend(config.validate());
    let env_lookup = |name: &str| std::env::var(name).ok();
    if let Err(secret_problems) = config.kafka.client_properties(&env_lookup) {
        problems.extend(secret_problems);
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid(problems));
    }
    Ok(config.report(&path.display().to_string(), &overrides))
}

/// The JSON Schema of the config file, pretty-printed, ending with a newline.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(Config);
    // Serializing a `serde_json::Value` cannot fail.
    let mut json = serde_json::to_string_pretty(&schema).unwrap_or_default();
    json.push('\n');
    json
}

impl Config {
    fn report(&self, source_name: &str, overrides: &[String]) -> String {
        use fmt::Write;
        let mut r = String::new();
        let k = &self.kafka;
        let topics: Vec<String> = self.topics.iter().map(|t| format!("{} ({})", t.name, t.format)).collect();
        let outputs: Vec<String> = self
            .outputs
            .iter()
            .map(|o| match o {
                OutputConfig::Stdout { format: StdoutFormat::Json } => "stdout (json)".to_string(),
                OutputConfig::Stdout { format: StdoutFormat::Pretty } => "stdout (pretty)".to_string(),
                OutputConfig::File { path } => format!("file {}", path.display()),
                OutputConfig::Kafka { topic } => format!("kafka topic {topic}"),
            })
            .collect();
        let detectors = match &self.detectors.dir {
            Some(dir) => dir.display().to_string(),
            None => "built-in pack".to_string(),
        };
        // Writing to a String cannot fail.
        let _ = writeln!(r, "{source_name}: configuration is valid");
        let _ = writeln!(
            r,
            "  kafka:       brokers {}, group {}, batches of {} within {}",
            k.brokers, k.group_id, k.batch_size, k.batch_timeout
        );
        if !k.client.is_empty() {
            let keys: Vec<&str> = k.client.keys().map(String::as_str).collect();
            let _ = writeln!(r, "  client:      {}", keys.join(", "));
        }
        let _ = writeln!(r, "  topics:      {}", topics.join(", "));
        let _ = writeln!(r, "  dead letter: {}", self.dead_letter.topic);
        let _ = writeln!(r, "  outputs:     {}", outputs.join(", "));
        let _ = writeln!(r, "  detectors:   {detectors}");
        let _ = writeln!(
            r,
            "  state:       {} (checkpoint every {}, shutdown within {})",
            self.state.dir.display(),
            self.state.checkpoint_interval,
            self.state.shutdown_timeout
        );
        let _ = writeln!(
            r,
            "  engine:      {} accounts, {} credentials, idle expiry {}, lateness {}, events up to {} bytes",
            self.engine.max_accounts,
            self.engine.max_credentials,
            self.engine.idle_expiry,
            self.engine.allowed_lateness,
            self.engine.max_event_bytes
        );
        let _ = writeln!(r, "  admin:       {}", self.admin.listen);
        if k.secrets.is_empty() {
            let _ = writeln!(r, "  secrets:     none");
        }
        for (key, reference) in &k.secrets {
            let _ = writeln!(r, "  secret:      {key} <- {reference}: resolved");
        }
        if !overrides.is_empty() {
            let _ = writeln!(r, "  env:         {}", overrides.join(", "));
        }
        r
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

/// The process environment; variables that are not UTF-8 cannot be overrides and are skipped.
fn process_env() -> Vec<(String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect()
}

/// Parses the file, applies env overrides and deserializes. Returns the config, the problems
/// found in the environment and the names of the overrides applied.
fn parse_layers(
    text: &str,
    source_name: &str,
    env: &[(String, String)],
) -> Result<(Config, Vec<Problem>, Vec<String>), ConfigError> {
    let parse_error = |error: toml::de::Error| ConfigError::Parse {
        source_name: source_name.to_string(),
        message: render_toml_error(error, text),
    };
    let mut document = DeTable::parse(text).map_err(parse_error)?;
    let (problems, applied) = apply_env(document.get_mut(), text.len(), env);
    match Config::deserialize(toml::de::Deserializer::from(document)) {
        Ok(config) => Ok((config, problems, applied)),
        Err(error) if problems.is_empty() => Err(parse_error(error)),
        // A broken override can be the cause of a deserialization error: report both.
        Err(error) => {
            let mut problems = problems;
            problems.push(Problem::new(source_name, render_toml_error(error, text)));
            Err(ConfigError::Invalid(problems))
        }
    }
}

/// Renders a toml error with the offending line, unless that line may hold a secret or the
/// error is about a value that came from the environment (which has no line).
fn render_toml_error(mut error: toml::de::Error, text: &str) -> String {
    let rendered = render_toml_error_at(&mut error, text);
    // An unquoted dotted key (`sasl.mechanism = "..."`) makes a nested table in TOML.
    if error.message().starts_with("invalid type: map, expected a string") {
        return format!("{rendered}\n(quote librdkafka property names: \"sasl.mechanism\" = \"...\")");
    }
    rendered
}

fn render_toml_error_at(error: &mut toml::de::Error, text: &str) -> String {
    if let Some(span) = error.span() {
        let (Some(before), Some(after)) = (text.get(..span.start), text.get(span.start..)) else {
            return format!("in a value from the environment: {}", error.to_string().trim_end());
        };
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line = &text[line_start..span.start + after.find('\n').unwrap_or(after.len())];
        if may_hold_secret(line) {
            let line_number = before.matches('\n').count() + 1;
            return format!("line {line_number}: {}", error.to_string().trim_end());
        }
        error.set_input(Some(text));
    }
    error.to_string().trim_end().to_string()
}

/// The kind of scalar an env override sets, taken from the config's JSON Schema.
enum ScalarKind {
    Integer,
    Float,
    Boolean,
    String,
}

/// Applies `AUDITWATCH_*__*` variables to the parsed document. Their values get a span past the
/// end of the file, so errors about them are recognizable (they have no line to show).
fn apply_env<'i>(root: &mut DeTable<'i>, past_end: usize, env: &'i [(String, String)]) -> (Vec<Problem>, Vec<String>) {
    let secret_vars = secret_env_vars(root);
    let overrides: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with(ENV_PREFIX) && name.contains(ENV_SEPARATOR))
        .filter(|(name, _)| !secret_vars.contains(name))
        .collect();
    if overrides.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let schema = schemars::schema_for!(Config).to_value();
    let span = past_end + 1..past_end + 1;
    let mut problems = Vec::new();
    let mut applied = Vec::new();
    for (name, value) in overrides {
        let segments: Vec<String> =
            name[ENV_PREFIX.len()..].split(ENV_SEPARATOR).map(str::to_ascii_lowercase).collect();
        let result = env_target(&schema, &segments)
            .and_then(|(keys, kind)| Ok((keys, env_value(kind, value)?)))
            .and_then(|(keys, value)| insert_at(root, &keys, value, span.clone()));
        match result {
            Ok(()) => applied.push(name.clone()),
            Err(message) => problems.push(Problem::new(name.clone(), message)),
        }
    }
    (problems, applied)
}

/// Env var names referenced as `{ env = "..." }` under `[kafka.secrets]` in the file.
fn secret_env_vars(root: &DeTable<'_>) -> Vec<String> {
    let Some(DeValue::Table(secrets)) =
        root.get("kafka").and_then(|kafka| kafka.get_ref().get("secrets")).map(Spanned::get_ref)
    else {
        return Vec::new();
    };
    secrets
        .values()
        .filter_map(|reference| reference.get_ref().get("env")?.get_ref().as_str().map(str::to_string))
        .collect()
}

/// Walks the JSON Schema of [`Config`] along `segments`: the document keys to set and the kind
/// of value expected there. Using the schema keeps env overrides in step with the structs.
fn env_target(schema: &serde_json::Value, segments: &[String]) -> Result<(Vec<String>, ScalarKind), String> {
    let mut node = resolve_ref(schema, schema);
    let mut keys: Vec<String> = Vec::new();
    for segment in segments {
        let here = if keys.is_empty() { "the configuration".to_string() } else { format!("`{}`", keys.join(".")) };
        if schema_types(node).contains(&"array") {
            return Err(format!("{here} is a list; set it in the config file"));
        }
        if let Some(child) = node.get("properties").and_then(|p| p.get(segment.as_str())) {
            keys.push(segment.clone());
            node = resolve_ref(schema, child);
        } else if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
            if segment.is_empty() {
                return Err(format!("names an empty key in {here}"));
            }
            // librdkafka property names use dots, which env var names cannot hold.
            keys.push(segment.replace('_', "."));
            node = resolve_ref(schema, values);
        } else if let Some(properties) = node.get("properties").and_then(|p| p.as_object()) {
            let known: Vec<&str> = properties.keys().map(String::as_str).collect();
            return Err(format!(
                "names no configuration field: {here} has no `{segment}` (it has {})",
                known.join(", ")
            ));
        } else {
            return Err(format!("names no configuration field: {here} is not a table"));
        }
    }
    let types = schema_types(node);
    let path = keys.join(".");
    let kind = if types.contains(&"integer") {
        ScalarKind::Integer
    } else if types.contains(&"number") {
        ScalarKind::Float
    } else if types.contains(&"boolean") {
        ScalarKind::Boolean
    } else if types.contains(&"string") {
        ScalarKind::String
    } else if types.contains(&"array") {
        return Err(format!("`{path}` is a list; set it in the config file"));
    } else if !types.contains(&"object") {
        return Err(format!("`{path}` cannot be set from the environment; set it in the config file"));
    } else {
        return Err(format!(
            "`{path}` is a table; set its fields one by one (`{ENV_PREFIX}{}{ENV_SEPARATOR}<FIELD>`)",
            path.replace('.', ENV_SEPARATOR).to_ascii_uppercase()
        ));
    };
    Ok((keys, kind))
}

fn resolve_ref<'s>(root: &'s serde_json::Value, mut node: &'s serde_json::Value) -> &'s serde_json::Value {
    // Bounded: a reference cycle in a generated schema would be a bug, not an endless loop.
    for _ in 0..8 {
        let Some(target) = node
            .get("$ref")
            .and_then(|r| r.as_str())
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|name| root.get("$defs")?.get(name))
        else {
            break;
        };
        node = target;
    }
    node
}

fn schema_types(node: &serde_json::Value) -> Vec<&str> {
    match node.get("type") {
        Some(serde_json::Value::String(t)) => vec![t.as_str()],
        Some(serde_json::Value::Array(ts)) => ts.iter().filter_map(|t| t.as_str()).collect(),
        _ => Vec::new(),
    }
}

fn env_value(kind: ScalarKind, value: &str) -> Result<DeValue<'_>, String> {
    let parsed = || DeValue::parse(value.trim()).map(Spanned::into_inner).ok();
    match kind {
        ScalarKind::String => Ok(DeValue::String(Cow::Borrowed(value))),
        ScalarKind::Boolean => match value.trim() {
            "true" => Ok(DeValue::Boolean(true)),
            "false" => Ok(DeValue::Boolean(false)),
            _ => Err(format!("`{value}` is not a boolean (true or false)")),
        },
        ScalarKind::Integer => {
            parsed().filter(DeValue::is_integer).ok_or_else(|| format!("`{value}` is not an integer"))
        }
        ScalarKind::Float => {
            parsed().filter(|v| v.is_integer() || v.is_float()).ok_or_else(|| format!("`{value}` is not a number"))
        }
    }
}

fn insert_at<'i>(
    root: &mut DeTable<'i>,
    keys: &[String],
    value: DeValue<'i>,
    span: Range<usize>,
) -> Result<(), String> {
    let Some((last, parents)) = keys.split_last() else {
        return Err("names no configuration field".to_string());
    };
    let mut table = root;
    for (depth, key) in parents.iter().enumerate() {
        let entry = table
            .entry(Spanned::new(span.clone(), Cow::Owned(key.clone())))
            .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
        match entry.get_mut() {
            DeValue::Table(inner) => table = inner,
            _ => return Err(format!("`{}` in the file is not a table", keys[..=depth].join("."))),
        }
    }
    table.insert(Spanned::new(span.clone(), Cow::Owned(last.clone())), Spanned::new(span, value));
    Ok(())
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
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
        assert_eq!(config.kafka.batch_timeout, Duration(20));
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
        assert_eq!(config.outputs, vec![OutputConfig::Stdout { format: StdoutFormat::Json }]);
        assert_eq!(config.admin.listen.to_string(), "127.0.0.1:9187");
    }

    #[test]
    fn partial_sections_keep_defaults_for_missing_fields() {
        let text = format!("{MINIMAL}\n[state]\ndir = \"/var/lib/x\"\n[engine]\nidle_expiry = \"7d\"\n");
        let config = load_from(&text, "t.toml", &[]).expect("valid");
        assert_eq!(config.state.dir, PathBuf::from("/var/lib/x"));
        assert_eq!(config.state.checkpoint_interval, Duration(30 * SECOND));
        assert_eq!(config.engine.idle_expiry, Duration(7 * DAY));
        assert_eq!(config.engine.max_accounts, 1_000_000);
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
                OutputConfig::Stdout { format: StdoutFormat::Pretty },
                OutputConfig::File { path: "/tmp/a.jsonl".into() },
                OutputConfig::Kafka { topic: "alerts".into() },
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
    fn unknown_input_format_is_rejected() {
        let text = MINIMAL.replace("name = \"audit.events\"", "name = \"audit.events\"\nformat = \"ocsf\"");
        let error = load_from(&text, "t.toml", &[]).expect_err("unknown format");
        assert!(error.to_string().contains("unknown variant `ocsf`"), "{error}");
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
        let text =
            format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = {{ env = \"AUDITWATCH_KAFKA__PASSWORD\" }}\n");
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
            (
                "outputs[1].topic",
                Box::new(|c| c.outputs.push(OutputConfig::Kafka { topic: "audit.events".into() })),
                "also an input topic",
            ),
            (
                "outputs[1].topic",
                Box::new(|c| c.outputs.push(OutputConfig::Kafka { topic: "audit.deadletter".into() })),
                "dead-letter topic",
            ),
            (
                "outputs[2].topic",
                Box::new(|c| {
                    c.outputs.push(OutputConfig::Kafka { topic: "alerts".into() });
                    c.outputs.push(OutputConfig::Kafka { topic: "alerts".into() });
                }),
                "already receives alerts from outputs[1]",
            ),
            ("kafka.brokers", Box::new(|c| c.kafka.brokers = " ".into()), "must not be empty"),
            ("kafka.brokers", Box::new(|c| c.kafka.brokers = "a:1,,b:2".into()), "empty entry"),
            ("kafka.group_id", Box::new(|c| c.kafka.group_id.clear()), "must not be empty"),
            ("kafka.batch_size", Box::new(|c| c.kafka.batch_size = 0), "between 1 and 100000"),
            ("kafka.batch_size", Box::new(|c| c.kafka.batch_size = 100_001), "between 1 and 100000"),
            ("kafka.batch_timeout", Box::new(|c| c.kafka.batch_timeout = Duration(0)), "longer than 0"),
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
                    c.outputs.push(OutputConfig::File { path: "/x/alerts.jsonl".into() });
                    c.outputs.push(OutputConfig::File { path: "/x/alerts.jsonl".into() });
                }),
                "already written by outputs[1]",
            ),
            (
                "outputs[1]",
                Box::new(|c| c.outputs.push(OutputConfig::Stdout { format: StdoutFormat::Pretty })),
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
        let text =
            format!("{MINIMAL}\n[kafka.secrets]\n\"sasl.password\" = {{ file = \"{}\" }}\n", secret_file.display());
        std::fs::write(&config_path, &text).expect("write");
        let report = check_report(&config_path).expect("valid");
        assert!(report.contains("brokers localhost:9092, group auditwatch"), "{report}");
        assert!(report.contains("audit.events (native)"), "{report}");
        assert!(report.contains("stdout (json)"), "{report}");
        assert!(report.contains("127.0.0.1:9187"), "{report}");
        assert!(report.contains("sasl.password <- file") && report.contains("resolved"), "{report}");
        assert!(!report.contains("hunter2"), "{report}");

        // An unresolvable secret is reported together with the other problems.
        let broken =
            text.replace(&secret_file.display().to_string(), "/nonexistent/pw") + "[engine]\nmax_accounts = 0\n";
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
        for name in ["\"native\"", "\"stdout\"", "\"pretty\"", "\"kafka\"", "\"file\""] {
            assert!(text.contains(name), "schema lacks {name}");
        }
    }

    #[test]
    fn example_config_validates() {
        let text = include_str!("../docker/auditwatch.example.toml");
        let config = match load_from(text, "docker/auditwatch.example.toml", &[]) {
            Ok(config) => config,
            Err(error) => panic!("{error}"),
        };
        assert_eq!(config.kafka.brokers, "kafka:9092");
        assert_eq!(config.topics[0].name, "audit.events");
        assert_eq!(config.dead_letter.topic, "audit.deadletter");
        assert_eq!(config.state.dir, PathBuf::from("/var/lib/auditwatch"));
        assert_eq!(config.admin.listen.to_string(), "0.0.0.0:9187");
        assert_eq!(config.outputs.len(), 3);
    }
}
