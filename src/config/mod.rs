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

use crate::detection::time::{Duration, DAY, HOUR, MINUTE, SECOND};
pub use crate::input::formats::InputFormat;
pub use crate::problem::Problem;

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
    /// Retention: every event, dead letter and alert as Parquet files. Absent `dir`: none kept.
    #[serde(default)]
    pub store: StoreConfig,
    /// Bounds and timing of the detection engine.
    #[serde(default)]
    pub engine: EngineConfig,
    /// IP enrichment: ASN, organisation and country from MaxMind-format databases, and cloud
    /// provider ranges. Nothing configured: events go to the engine as decoded.
    #[serde(default)]
    pub enrichment: EnrichmentConfig,
    /// Where input that cannot be decoded goes, with its original bytes.
    pub dead_letter: DeadLetterConfig,
    /// Where alerts go. Default: one stdout output in JSON.
    #[serde(default = "default_outputs")]
    pub outputs: Vec<OutputConfig>,
    /// Which alerts go to which outputs. None: every alert to every output.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Silences and maintenance windows.
    #[serde(default)]
    pub silences: SilencesConfig,
    /// The admin HTTP server (health and metrics).
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
    /// Most messages handled per poll batch. A batch is what is already fetched, up to this
    /// many: it never waits for more, so a quiet topic is handled at once.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1, max = 100_000))]
    pub batch_size: usize,
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
    /// Directory for checkpoints, the alert and dead-letter outboxes, and the sinks' cursors.
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

/// Retention of events, dead letters and alerts as Parquet files (see `auditwatch::store`).
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Directory of the store (`events/dt=YYYY-MM-DD/*.parquet`, `dead_letters/...`,
    /// `alerts/...`). Absent: nothing is retained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// A file holds at most about this many bytes of input; the store also checkpoints early
    /// when it holds this much in memory, and intake waits while it holds this much and a
    /// checkpoint is in flight. Files are cut at every checkpoint in any case.
    #[schemars(range(min = 1024))]
    pub roll_bytes: usize,
    /// The longest an event waits in memory before it is in a file (an early checkpoint).
    pub roll_age: Duration,
    /// Delete whole days older than this (`"400d"`), at start and then hourly; each deletion is
    /// logged and counted (`auditwatch_store_partitions_expired_total`). Absent: keep all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Duration>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { dir: None, roll_bytes: 128 << 20, roll_age: Duration(5 * MINUTE), retention: None }
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

impl EngineConfig {
    /// The engine's options as configured.
    pub fn options(&self) -> crate::detection::engine::EngineOptions {
        crate::detection::engine::EngineOptions {
            max_accounts: self.max_accounts,
            max_credentials: self.max_credentials,
            idle_expiry: self.idle_expiry,
            allowed_lateness: self.allowed_lateness,
            ..crate::detection::engine::EngineOptions::default()
        }
    }
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

/// The admin HTTP server.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Listen address. Loopback by default: the admin server should not face the network.
    pub listen: SocketAddr,
    /// `POST /query`: read-only SQL over the store for holders of a bearer token. Absent: the
    /// endpoint does not exist. Needs `[store] dir`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<AdminQueryConfig>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig { listen: SocketAddr::from(([127, 0, 0, 1], 9187)), query: None }
    }
}

/// Bounds of `POST /query`, one request at a time each.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminQueryConfig {
    /// The token clients send as `Authorization: Bearer <token>`, from an env var or a file.
    pub token: SecretRef,
    /// At most this many rows are returned; a cut answer says so (`X-Auditwatch-Truncated`).
    #[serde(default = "default_query_rows")]
    #[schemars(range(min = 1))]
    pub max_rows: usize,
    /// A query running longer is stopped (the admin server gives any request 10 s).
    #[serde(default = "default_query_timeout")]
    pub timeout: Duration,
    /// Memory for the query's operators, in bytes; beyond it a query fails.
    #[serde(default = "default_query_memory")]
    #[schemars(range(min = 1048576))]
    pub memory_bytes: usize,
}

fn default_query_rows() -> usize {
    10_000
}

fn default_query_timeout() -> Duration {
    Duration(8 * SECOND)
}

fn default_query_memory() -> usize {
    256 << 20
}

fn default_group_id() -> String {
    "auditwatch".to_string()
}

fn default_batch_size() -> usize {
    5000
}

fn default_outputs() -> Vec<OutputConfig> {
    vec![OutputConfig::Stdout(StdoutOutput { name: None, mask: None, format: StdoutFormat::Json })]
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
        "auditwatch::detection::time::Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A span of time: a number and a unit (ms, s, m, h, d, w), repeated: \"500ms\", \"30s\", \"1h30m\", \"14d\".",
            "type": "string",
            "pattern": "^([0-9]+(ms|s|m|h|d|w))+$"
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

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
    if let Some(query) = &config.admin.query {
        if let Err(message) = query.token.resolve(&env_lookup) {
            problems.push(Problem::new("admin.query.token", message));
        }
    }
    for (i, output) in config.outputs.iter().enumerate() {
        for (field, reference) in output.secret_refs() {
            if let Err(message) = reference.resolve(&env_lookup) {
                problems.push(Problem::new(format!("outputs[{i}].{field}"), message));
            }
        }
    }
    if let Err(ConfigError::Invalid(enrichment_problems)) = config.enrichment.open() {
        problems.extend(enrichment_problems);
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
        let names = self.output_names();
        let outputs: Vec<String> = self
            .outputs
            .iter()
            .zip(&names)
            .map(|(o, name)| {
                let target = match o {
                    OutputConfig::Stdout(o) => format!("stdout ({})", o.format.as_str()),
                    OutputConfig::File(o) => format!("file {}", o.path.display()),
                    OutputConfig::Kafka(o) => format!("kafka topic {}", o.topic),
                    OutputConfig::Email(o) => format!("email via {}:{} ({:?})", o.host, o.port(), o.tls),
                    OutputConfig::Webhook(o) => format!("webhook {}", o.url),
                    OutputConfig::Slack(_) => "slack".to_string(),
                    OutputConfig::Pagerduty(o) => format!("pagerduty {}", o.url),
                };
                format!("{name} = {target}")
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
            "  kafka:       brokers {}, group {}, batches of up to {}",
            k.brokers, k.group_id, k.batch_size
        );
        if !k.client.is_empty() {
            let keys: Vec<&str> = k.client.keys().map(String::as_str).collect();
            let _ = writeln!(r, "  client:      {}", keys.join(", "));
        }
        let _ = writeln!(r, "  topics:      {}", topics.join(", "));
        let _ = writeln!(r, "  dead letter: {}", self.dead_letter.topic);
        let _ = writeln!(r, "  outputs:     {}", outputs.join(", "));
        for route in &self.routes {
            let _ = writeln!(
                r,
                "  route:       {} -> {}{}",
                route.name,
                route.outputs.join(", "),
                if route.continue_matching { " (continue)" } else { "" }
            );
        }
        let _ = writeln!(r, "  detectors:   {detectors}");
        let _ = writeln!(
            r,
            "  state:       {} (checkpoint every {}, shutdown within {})",
            self.state.dir.display(),
            self.state.checkpoint_interval,
            self.state.shutdown_timeout
        );
        match &self.store.dir {
            Some(dir) => {
                let _ = writeln!(
                    r,
                    "  store:       {} (files of up to {} bytes, events in a file within {})",
                    dir.display(),
                    self.store.roll_bytes,
                    self.store.roll_age
                );
            }
            None => {
                let _ = writeln!(r, "  store:       none (no retention)");
            }
        }
        let _ = writeln!(
            r,
            "  engine:      {} accounts, {} credentials, idle expiry {}, lateness {}, events up to {} bytes",
            self.engine.max_accounts,
            self.engine.max_credentials,
            self.engine.idle_expiry,
            self.engine.allowed_lateness,
            self.engine.max_event_bytes
        );
        if !self.enrichment.is_empty() {
            let e = &self.enrichment;
            let files: Vec<String> = e
                .databases
                .iter()
                .chain(&e.aws_ranges)
                .chain(&e.gcp_ranges)
                .chain(&e.azure_ranges)
                .map(|p| p.display().to_string())
                .collect();
            let _ = writeln!(r, "  enrichment:  {}", files.join(", "));
        }
        let _ = writeln!(r, "  admin:       {}", self.admin.listen);
        if let Some(query) = &self.admin.query {
            let _ = writeln!(
                r,
                "  query:       POST /query, up to {} rows, {} per query, {} bytes of memory",
                query.max_rows, query.timeout, query.memory_bytes
            );
            let _ = writeln!(r, "  secret:      admin.query.token <- {}: resolved", query.token);
        }
        if k.secrets.is_empty() && self.outputs.iter().all(|o| o.secret_refs().is_empty()) && self.admin.query.is_none()
        {
            let _ = writeln!(r, "  secrets:     none");
        }
        for (key, reference) in &k.secrets {
            let _ = writeln!(r, "  secret:      {key} <- {reference}: resolved");
        }
        for (name, output) in names.iter().zip(&self.outputs) {
            for (field, reference) in output.secret_refs() {
                let _ = writeln!(r, "  secret:      {name}.{field} <- {reference}: resolved");
            }
        }
        if !overrides.is_empty() {
            let _ = writeln!(r, "  env:         {}", overrides.join(", "));
        }
        r
    }
}

impl Config {
    /// The silences file: as configured, or `silences.json` in the state directory.
    pub fn silences_file(&self) -> PathBuf {
        self.silences.file.clone().unwrap_or_else(|| self.state.dir.join("silences.json"))
    }

    /// The name of every output, in config order: as configured, or derived from its type and
    /// target (`stdout`, `file-alerts.jsonl`, `kafka-alerts`), made unique with `-2`, `-3`.
    pub fn output_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for output in &self.outputs {
            if let Some(name) = output.configured_name() {
                names.push(name.to_string());
                continue;
            }
            let base = output.default_name();
            let mut name = base.clone();
            let mut n = 2;
            while names.contains(&name) || self.outputs.iter().any(|o| o.configured_name() == Some(name.as_str())) {
                name = format!("{base}-{n}");
                n += 1;
            }
            names.push(name);
        }
        names
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
    let (problems, applied) = env::apply_env(document.get_mut(), text.len(), env);
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

// ---------------------------------------------------------------------------------------------

pub mod detectors;
mod enrichment;
mod env;
mod outputs;
mod secrets;
mod validate;

pub use enrichment::EnrichmentConfig;
pub use outputs::*;
use secrets::{is_secret_property, may_hold_secret};
pub use secrets::{PropertyValue, Secret};
#[cfg(test)]
mod tests;
