//! `[[outputs]]`, `[[routes]]` and `[silences]`: where alerts go, which go where, how they are
//! grouped for people, and what is silenced.
//!
//! Every output has a `name` (routes refer to it; its outbox cursor and metrics are kept under
//! it) and a `mask` list. Outputs read by people (email, Slack, PagerDuty) mask by default;
//! outputs read by machines (stdout, file, Kafka, webhook) do not.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretRef;
use crate::detection::definition::{Category, Severity};
use crate::detection::time::{Duration, HOUR, MINUTE, SECOND};

/// One alert destination, chosen by `type`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutputConfig {
    /// Alerts on standard output.
    Stdout(StdoutOutput),
    /// Alerts appended to a JSON-lines file.
    File(FileOutput),
    /// Alerts produced to a Kafka topic of the same cluster.
    Kafka(KafkaOutput),
    /// Grouped notifications by email over SMTP.
    Email(EmailOutput),
    /// Each alert POSTed as JSON, signed the Standard Webhooks way.
    Webhook(WebhookOutput),
    /// Grouped notifications to a Slack incoming webhook.
    Slack(SlackOutput),
    /// Grouped incidents to PagerDuty's Events API v2.
    Pagerduty(PagerDutyOutput),
}

/// An alert field that an output can mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaskedField {
    /// Source addresses cut to their network: /24 for IPv4, /48 for IPv6.
    SourceIp,
    /// Email addresses (in the account, the summary, the evidence) as `j***@example.com`.
    Email,
    /// Credential ids cut to their first 8 characters.
    CredentialId,
}

/// What people-facing outputs mask unless told otherwise.
pub const PEOPLE_MASK: [MaskedField; 3] = [MaskedField::SourceIp, MaskedField::Email, MaskedField::CredentialId];

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutOutput {
    /// Name routes use. Default: `stdout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// `json` (one object per line) or `pretty` (for people).
    #[serde(default)]
    pub format: StdoutFormat,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOutput {
    /// Name routes use. Default: `file-<file name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// Path of the file.
    pub path: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KafkaOutput {
    /// Name routes use. Default: `kafka-<topic>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// Kafka topic name.
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[A-Za-z0-9._-]+$"))]
    pub topic: String,
}

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption at all; for a relay on the same host only. Warned about at start.
    None,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailOutput {
    /// Name routes use. Default: `email-<host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: source_ip, email, credential_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// SMTP relay host name (also the name its certificate must carry).
    #[schemars(length(min = 1))]
    pub host: String,
    /// Port. Default: 587 for `starttls`, 465 for `tls`, 25 for `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default)]
    pub tls: SmtpTls,
    /// PEM file of the CA that signed a private relay's certificate, trusted in addition to the
    /// system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// SMTP user, when the relay wants authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Where the SMTP password comes from: `{ env = "VAR" }` or `{ file = "/path" }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// The sender address.
    #[schemars(length(min = 3))]
    pub from: String,
    /// Recipients. At least one.
    #[schemars(length(min = 1))]
    pub to: Vec<String>,
    /// How long one SMTP exchange may take.
    #[serde(default = "default_email_timeout")]
    pub timeout: Duration,
    /// Write each message as an `.eml` file into this directory instead of sending it: to
    /// preview what on-call will get (`auditwatch demo` does this). The relay is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_to: Option<PathBuf>,
}

impl EmailOutput {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
            SmtpTls::None => 25,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookOutput {
    /// Name routes use. Default: `webhook-<host>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// Where alerts are POSTed. `https://` unless `allow_http = true`.
    #[schemars(length(min = 1))]
    pub url: String,
    /// Signing secrets in the `whsec_<base64>` form. Every one signs each message, so a
    /// receiver can move to a new secret while the old one is still listed.
    #[serde(default)]
    pub secrets: Vec<SecretRef>,
    /// Extra request headers (never secrets: put those behind a signing secret).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// How long one request may take, connecting included.
    #[serde(default = "default_http_timeout")]
    pub timeout: Duration,
    /// Allow a plain `http://` URL (a receiver on the same host or in a test).
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlackOutput {
    /// Name routes use. Default: `slack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: source_ip, email, credential_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// The incoming-webhook URL. It is a credential, so it is a secret reference.
    pub webhook_url: SecretRef,
    /// How long one request may take, connecting included.
    #[serde(default = "default_http_timeout")]
    pub timeout: Duration,
    /// Allow a plain `http://` URL (tests).
    #[serde(default)]
    pub allow_http: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyOutput {
    /// Name routes use. Default: `pagerduty`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Fields to mask. Default: source_ip, email, credential_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mask: Option<Vec<MaskedField>>,
    /// The integration's routing key (Events API v2).
    pub routing_key: SecretRef,
    /// The Events API endpoint.
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
    /// Send `resolve` when an incident's group closes.
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// How long one request may take, connecting included.
    #[serde(default = "default_http_timeout")]
    pub timeout: Duration,
    /// Allow a plain `http://` URL (tests).
    #[serde(default)]
    pub allow_http: bool,
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

impl StdoutFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            StdoutFormat::Json => "json",
            StdoutFormat::Pretty => "pretty",
        }
    }
}

impl OutputConfig {
    /// The name given in the config, if any.
    pub fn configured_name(&self) -> Option<&str> {
        match self {
            OutputConfig::Stdout(o) => o.name.as_deref(),
            OutputConfig::File(o) => o.name.as_deref(),
            OutputConfig::Kafka(o) => o.name.as_deref(),
            OutputConfig::Email(o) => o.name.as_deref(),
            OutputConfig::Webhook(o) => o.name.as_deref(),
            OutputConfig::Slack(o) => o.name.as_deref(),
            OutputConfig::Pagerduty(o) => o.name.as_deref(),
        }
    }

    /// The name used when none is configured.
    pub fn default_name(&self) -> String {
        let host = |url: &str| {
            url.split("://").nth(1).and_then(|rest| rest.split(['/', ':', '?']).next()).unwrap_or("").to_string()
        };
        match self {
            OutputConfig::Stdout(_) => "stdout".to_string(),
            OutputConfig::File(o) => {
                format!("file-{}", o.path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
            }
            OutputConfig::Kafka(o) => format!("kafka-{}", o.topic),
            OutputConfig::Email(o) => format!("email-{}", o.host),
            OutputConfig::Webhook(o) => format!("webhook-{}", host(&o.url)),
            OutputConfig::Slack(_) => "slack".to_string(),
            OutputConfig::Pagerduty(_) => "pagerduty".to_string(),
        }
    }

    /// The fields this output masks: as configured, or the default for its readers.
    pub fn masked(&self) -> Vec<MaskedField> {
        let (configured, people) = match self {
            OutputConfig::Stdout(o) => (&o.mask, false),
            OutputConfig::File(o) => (&o.mask, false),
            OutputConfig::Kafka(o) => (&o.mask, false),
            OutputConfig::Webhook(o) => (&o.mask, false),
            OutputConfig::Email(o) => (&o.mask, true),
            OutputConfig::Slack(o) => (&o.mask, true),
            OutputConfig::Pagerduty(o) => (&o.mask, true),
        };
        match configured {
            Some(fields) => fields.clone(),
            None if people => PEOPLE_MASK.to_vec(),
            None => Vec::new(),
        }
    }

    /// Outputs read by people get grouped notifications; the others get every alert as it is.
    pub fn is_grouped(&self) -> bool {
        matches!(self, OutputConfig::Email(_) | OutputConfig::Slack(_) | OutputConfig::Pagerduty(_))
    }

    /// The secret references this output holds, with the field each is under.
    pub fn secret_refs(&self) -> Vec<(String, &SecretRef)> {
        match self {
            OutputConfig::Email(o) => o.password.iter().map(|r| ("password".to_string(), r)).collect(),
            OutputConfig::Webhook(o) => {
                o.secrets.iter().enumerate().map(|(i, r)| (format!("secrets[{i}]"), r)).collect()
            }
            OutputConfig::Slack(o) => vec![("webhook_url".to_string(), &o.webhook_url)],
            OutputConfig::Pagerduty(o) => vec![("routing_key".to_string(), &o.routing_key)],
            OutputConfig::Stdout(_) | OutputConfig::File(_) | OutputConfig::Kafka(_) => Vec::new(),
        }
    }
}

/// Which alerts a route or a silence applies to. Every listed field must match; an empty list
/// matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AlertMatcher {
    /// Any of these categories.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<Category>,
    /// Any of these severities.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub severity: Vec<Severity>,
    /// Any of these detector names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detector: Vec<String>,
    /// Any of these account globs (`ci-*`, `svc-?-prod`, `*@example.com`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub account: Vec<String>,
    /// Any of these tenants.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tenant: Vec<String>,
}

/// An alert label grouping can key on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupField {
    Detector,
    Account,
    Tenant,
    Category,
    Severity,
    SourceIp,
    CredentialId,
}

/// One route: alerts it matches go to its outputs. Routes are tried in order and the first
/// match wins, unless it says `continue = true`. An alert no route matches goes to every
/// output (the default route); end with a route without `match` to choose otherwise.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name, for `alert test --route` and the logs.
    #[schemars(length(min = 1))]
    pub name: String,
    /// Which alerts it takes; absent matches every alert.
    #[serde(default, rename = "match")]
    pub matcher: AlertMatcher,
    /// Names of the outputs it sends to.
    #[schemars(length(min = 1))]
    pub outputs: Vec<String>,
    /// Go on trying the next routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    /// Alerts with equal values of these fields form one notification group (email, Slack,
    /// PagerDuty). Default: detector and account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Vec<GroupField>>,
    /// How long a new group waits for more alerts before its first notification. Default 30s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_wait: Option<Duration>,
    /// Least time between two notifications of one group; later alerts wait for the next.
    /// Default 5m.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_interval: Option<Duration>,
    /// A group still open with nothing new is notified again after this long. Default 4h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat_interval: Option<Duration>,
    /// A group with no new alert for this long is closed (and resolved in PagerDuty).
    /// Default 1h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_timeout: Option<Duration>,
}

impl RouteConfig {
    /// The route that applies when no configured route matches: every output, default grouping.
    pub fn default_route(outputs: Vec<String>) -> RouteConfig {
        RouteConfig {
            name: "default".to_string(),
            matcher: AlertMatcher::default(),
            outputs,
            continue_matching: false,
            group_by: None,
            group_wait: None,
            group_interval: None,
            repeat_interval: None,
            resolve_timeout: None,
        }
    }

    /// This route's grouping, defaults filled in.
    pub fn grouping(&self) -> Grouping {
        let d = Grouping::default();
        Grouping {
            group_by: self.group_by.clone().unwrap_or(d.group_by),
            group_wait: self.group_wait.unwrap_or(d.group_wait),
            group_interval: self.group_interval.unwrap_or(d.group_interval),
            repeat_interval: self.repeat_interval.unwrap_or(d.repeat_interval),
            resolve_timeout: self.resolve_timeout.unwrap_or(d.resolve_timeout),
        }
    }
}

/// Grouping of alerts into notifications for the outputs people read, as Alertmanager does it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grouping {
    pub group_by: Vec<GroupField>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub resolve_timeout: Duration,
}

impl Default for Grouping {
    fn default() -> Self {
        Grouping {
            group_by: vec![GroupField::Detector, GroupField::Account],
            group_wait: Duration(30 * SECOND),
            group_interval: Duration(5 * MINUTE),
            repeat_interval: Duration(4 * HOUR),
            resolve_timeout: Duration(HOUR),
        }
    }
}

/// Where silences are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SilencesConfig {
    /// The silences file (JSON, written by `auditwatch silence` or by hand, reloaded on change).
    /// Default: `silences.json` in the state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
}

fn default_email_timeout() -> Duration {
    Duration(30 * SECOND)
}

fn default_http_timeout() -> Duration {
    Duration(10 * SECOND)
}

fn default_pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_string()
}

fn yes() -> bool {
    true
}
