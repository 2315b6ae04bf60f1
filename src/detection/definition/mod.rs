//! Detector definitions: TOML files (`detectors/*.toml`) parsed into validated [`Detector`]s.
//!
//! A file names a detector, its category and severity, which events it looks at, the
//! parameters of its type, warm-up, cooldown, a runbook, and inline tests. Parsing uses
//! `deny_unknown_fields`; [`load_sources`] then validates every file and returns *all*
//! problems, each with its file and field, so `auditwatch detectors check` can list them in one
//! go. The rest of the program only sees validated values.
//!
//! This module works on texts and never reads the disk: [`crate::config::detectors`] reads a
//! directory of definition files, [`crate::detection::pack`] holds the shipped ones.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::detection::params::{
    ByteSize, CallRateParams, CredentialCreatedForOtherParams, FailureBurstParams, ForeignCredentialParams,
    LongerWindow, MfaOmittedParams, NewNetworkParams, NewTerm, OffHoursParams, PasswordSprayParams, RareActionParams,
    RevokedCredentialParams, SessionOriginParams, SustainedExcessParams, SustainedVolumeParams, VolumeBurstParams,
};
use crate::detection::schedule::Schedule;
use crate::detection::time::Duration;
use crate::input::event::{AuditEvent, Outcome};
use crate::problem::Problem;

// The order is that of `Category::ALL`; new categories go at the end, since counters indexed
// by it are kept in checkpoints. (Plain comments: the doc comment is the config schema's.)
/// What kind of threat a detector reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    FailedAuth,
    DataVolume,
    OffHours,
    CredentialMisuse,
    // Audit logging, flow logs or threat detection stopped, changed or deleted.
    DefenseEvasion,
    // A new way back in: users, keys, login profiles, roles, trust anchors, admin policies.
    Persistence,
    // Data made public or shared outside: snapshots, images, buckets, open security groups.
    Exfiltration,
    // Secrets read, parameters or data keys decrypted.
    SecretAccess,
    // A principal given another principal's credentials or rights.
    PrivilegeChange,
    // Commands run on instances: SSM commands and sessions, SSH keys pushed, user data changed.
    Execution,
    // Destruction or hijacking: objects or backups deleted in bulk, paid models run.
    Impact,
    // Mapping the account: bursts of listing and describing calls.
    Discovery,
}

impl Category {
    pub const ALL: [Category; 12] = [
        Category::FailedAuth,
        Category::DataVolume,
        Category::OffHours,
        Category::CredentialMisuse,
        Category::DefenseEvasion,
        Category::Persistence,
        Category::Exfiltration,
        Category::SecretAccess,
        Category::PrivilegeChange,
        Category::Execution,
        Category::Impact,
        Category::Discovery,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Category::FailedAuth => "failed_auth",
            Category::DataVolume => "data_volume",
            Category::OffHours => "off_hours",
            Category::CredentialMisuse => "credential_misuse",
            Category::DefenseEvasion => "defense_evasion",
            Category::Persistence => "persistence",
            Category::Exfiltration => "exfiltration",
            Category::SecretAccess => "secret_access",
            Category::PrivilegeChange => "privilege_change",
            Category::Execution => "execution",
            Category::Impact => "impact",
            Category::Discovery => "discovery",
        }
    }

    /// Position in [`Category::ALL`], for counters indexed by category.
    pub const fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];

    /// The name in detector files, alerts and metric labels: `low`, `medium`, `high`, `critical`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Category::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not a category; one of {}", Category::ALL.map(Category::as_str).join(", "))
        })
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            format!("`{s}` is not a severity; one of {}", Severity::ALL.map(Severity::as_str).join(", "))
        })
    }
}

/// The detector types implemented in `src/detect`. Each reports one category, except
/// `rare_action` and `call_rate`, whose definitions say what their class is a sign of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorType {
    FailureBurst,
    PasswordSpray,
    VolumeBurst,
    SustainedVolume,
    SustainedExcess,
    OffHours,
    RevokedCredential,
    ForeignCredential,
    NewNetwork,
    RareAction,
    CallRate,
    CredentialCreatedForOther,
    SessionOrigin,
    MfaOmitted,
}

impl DetectorType {
    /// The categories a definition of this type may report.
    pub fn categories(self) -> &'static [Category] {
        match self {
            DetectorType::FailureBurst | DetectorType::PasswordSpray => &[Category::FailedAuth],
            DetectorType::VolumeBurst | DetectorType::SustainedVolume | DetectorType::SustainedExcess => {
                &[Category::DataVolume]
            }
            DetectorType::OffHours => &[Category::OffHours],
            DetectorType::RevokedCredential
            | DetectorType::ForeignCredential
            | DetectorType::NewNetwork
            | DetectorType::SessionOrigin
            | DetectorType::MfaOmitted => &[Category::CredentialMisuse],
            DetectorType::RareAction | DetectorType::CallRate => &[
                Category::DefenseEvasion,
                Category::Persistence,
                Category::Exfiltration,
                Category::SecretAccess,
                Category::PrivilegeChange,
                Category::Execution,
                Category::Impact,
                Category::Discovery,
            ],
            DetectorType::CredentialCreatedForOther => &[Category::PrivilegeChange],
        }
    }
}

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionFile {
    name: String,
    category: Category,
    #[serde(rename = "type")]
    detector_type: DetectorType,
    severity: Severity,
    description: String,
    runbook: String,
    #[serde(default)]
    warmup: Duration,
    cooldown: Duration,
    #[serde(default)]
    select: Selection,
    #[serde(default)]
    params: Option<toml::Table>,
    #[serde(default)]
    tests: Vec<crate::detection::inline_test::InlineTest>,
}

/// Which events a detector looks at. Patterns are exact names or prefixes ending in `*`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
}

impl Selection {
    pub fn matches(&self, event: &AuditEvent) -> bool {
        (self.outcomes.is_empty() || self.outcomes.contains(&event.outcome))
            && (self.actions.is_empty() || self.actions.iter().any(|p| glob_match(p, &event.action)))
    }
}

/// What is wrong with an action pattern, if anything: `*` is only allowed at the end.
fn glob_problem(pattern: &str) -> Option<String> {
    (pattern.is_empty() || pattern.trim_end_matches('*').contains('*') || pattern.matches('*').count() > 1)
        .then(|| format!("`{pattern}`: `*` is only allowed at the end"))
}

/// `*` alone matches everything, `auth.*` matches a prefix, anything else is exact.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => pattern == value,
    }
}

/// Validated parameters, one variant per detector type.
#[derive(Clone, Debug)]
pub enum DetectorKind {
    FailureBurst(FailureBurstParams),
    PasswordSpray(PasswordSprayParams),
    VolumeBurst(VolumeBurstParams),
    SustainedVolume(SustainedVolumeParams),
    SustainedExcess(SustainedExcessParams),
    OffHours { params: OffHoursParams, schedules: Vec<Schedule> },
    RevokedCredential(RevokedCredentialParams),
    ForeignCredential(ForeignCredentialParams),
    NewNetwork(NewNetworkParams),
    RareAction(RareActionParams),
    CallRate(CallRateParams),
    CredentialCreatedForOther(CredentialCreatedForOtherParams),
    SessionOrigin(SessionOriginParams),
    MfaOmitted(MfaOmittedParams),
}

/// A validated detector definition.
#[derive(Clone, Debug)]
pub struct Detector {
    pub name: String,
    pub category: Category,
    pub severity: Severity,
    pub description: String,
    pub runbook: String,
    pub warmup: Duration,
    pub cooldown: Duration,
    pub select: Selection,
    pub kind: DetectorKind,
    pub tests: Vec<crate::detection::inline_test::InlineTest>,
    pub file: PathBuf,
}

/// Every problem found, so they can all be fixed at once.
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in detector definitions:\n{}", .0.len(), .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
pub struct Problems(pub Vec<Problem>);

/// Parse and validate one definition.
pub fn parse(file: &Path, text: &str) -> Result<Detector, Vec<Problem>> {
    let problem = |field: &str, message: String| Problem::new(field, message).in_file(file);
    let raw: DefinitionFile = toml::from_str(text).map_err(|e| {
        let message = e.message().to_string();
        let line = e.span().map(|span| text[..span.start].matches('\n').count() + 1);
        vec![problem(&line.map(|l| format!("line {l}")).unwrap_or_default(), message)]
    })?;
    let mut problems = Vec::new();
    if raw.name.trim().is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        problems.push(problem("name", "must be non-empty and use only letters, digits, `-` and `_`".into()));
    }
    let categories = raw.detector_type.categories();
    if !categories.contains(&raw.category) {
        let allowed: Vec<&str> = categories.iter().map(|c| c.as_str()).collect();
        problems.push(problem(
            "category",
            format!(
                "type `{:?}` reports category `{}`, not `{}`",
                raw.detector_type,
                allowed.join("`, `"),
                raw.category.as_str()
            ),
        ));
    }
    if raw.cooldown.millis() <= 0 {
        problems.push(problem("cooldown", "must be longer than 0s".into()));
    }
    if raw.runbook.trim().is_empty() {
        problems.push(problem("runbook", "must say what the responder should do".into()));
    }
    for pattern in &raw.select.actions {
        if let Some(message) = glob_problem(pattern) {
            problems.push(problem("select.actions", message));
        }
    }
    let selects = !(raw.select.actions.is_empty() && raw.select.outcomes.is_empty());
    let own_events = match raw.detector_type {
        // It follows the account's clock hours: an event it did not see would hide an hour.
        DetectorType::SustainedExcess => Some("looks at every event of an account"),
        // Their parameters pick the events; a `select` would also hide them from the history.
        DetectorType::RareAction => Some("judges the calls that match `params.classes`"),
        DetectorType::CredentialCreatedForOther => {
            Some("judges `credential.create` and the calls of `params.target_actions`")
        }
        _ => None,
    };
    if let Some(what) = own_events.filter(|_| selects) {
        let name = serde_json::to_value(raw.detector_type).ok().and_then(|v| v.as_str().map(str::to_string));
        problems.push(problem("select", format!("`{}` {what}; remove `select`", name.unwrap_or_default())));
    }
    if raw.detector_type == DetectorType::RareAction && raw.warmup.millis() <= 0 {
        // Without history every term is new: the warm-up is what makes a term rare.
        problems.push(problem(
            "warmup",
            "`rare_action` needs a warm-up longer than 0s (e.g. \"7d\"): without history every term is new".into(),
        ));
    }
    let params = toml::Value::Table(raw.params.clone().unwrap_or_default());
    let kind = match build_kind(raw.detector_type, params) {
        Ok(kind) => Some(kind),
        Err(messages) => {
            problems.extend(messages.into_iter().map(|(field, m)| problem(&field, m)));
            None
        }
    };
    for (i, test) in raw.tests.iter().enumerate() {
        for (field, message) in test.validate() {
            problems.push(problem(&format!("tests[{i}] ({}).{field}", test.name), message));
        }
    }
    match kind {
        Some(kind) if problems.is_empty() => Ok(Detector {
            name: raw.name,
            category: raw.category,
            severity: raw.severity,
            description: raw.description,
            runbook: raw.runbook,
            warmup: raw.warmup,
            cooldown: raw.cooldown,
            select: raw.select,
            kind,
            tests: raw.tests,
            file: file.to_path_buf(),
        }),
        _ => Err(problems),
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, Vec<(String, String)>> {
    T::deserialize(value).map_err(|e| vec![("params".to_string(), e.message().trim().to_string())])
}

fn check(problems: &mut Vec<(String, String)>, ok: bool, field: &str, message: &str) {
    if !ok {
        problems.push((format!("params.{field}"), message.to_string()));
    }
}

/// Each pattern of the list `field`, as in `select.actions`.
fn check_patterns(problems: &mut Vec<(String, String)>, field: &str, patterns: &[String]) {
    for (i, pattern) in patterns.iter().enumerate() {
        if let Some(message) = glob_problem(pattern) {
            problems.push((format!("params.{field}[{i}]"), message));
        }
    }
}

fn build_kind(detector_type: DetectorType, params: toml::Value) -> Result<DetectorKind, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let kind = match detector_type {
        DetectorType::FailureBurst => {
            let p: FailureBurstParams = typed(params)?;
            check(&mut problems, p.outcome != Outcome::Success, "outcome", "must be `failure` or `denied`");
            check(&mut problems, p.window.millis() > 0, "window", "must be longer than 0s");
            check(&mut problems, p.min_count >= 2, "min_count", "must be at least 2 (one failure is not a burst)");
            check(&mut problems, p.max_p_value > 0.0 && p.max_p_value < 1.0, "max_p_value", "must be between 0 and 1");
            for (i, longer) in p.longer_windows.iter().enumerate() {
                let hours = longer.window.millis();
                check(
                    &mut problems,
                    hours > 0 && hours % crate::detection::time::HOUR == 0 && hours <= 6 * crate::detection::time::HOUR,
                    &format!("longer_windows[{i}].window"),
                    "must be whole hours, from 1h to 6h (they are counted in clock hours)",
                );
                check(
                    &mut problems,
                    longer.min_count > p.min_count,
                    &format!("longer_windows[{i}].min_count"),
                    "must be above the short window's min_count",
                );
            }
            DetectorKind::FailureBurst(p)
        }
        DetectorType::PasswordSpray => {
            let p: PasswordSprayParams = typed(params)?;
            check(&mut problems, p.window.millis() > 0, "window", "must be longer than 0s");
            check(&mut problems, (2..=64).contains(&p.min_accounts), "min_accounts", "must be between 2 and 64");
            check(
                &mut problems,
                p.long_window.is_some() == p.long_min_accounts.is_some(),
                "long_window",
                "`long_window` and `long_min_accounts` go together",
            );
            if let (Some(long), Some(min)) = (p.long_window, p.long_min_accounts) {
                check(&mut problems, long.millis() > p.window.millis(), "long_window", "must be longer than `window`");
                check(
                    &mut problems,
                    min > p.min_accounts && min <= 64,
                    "long_min_accounts",
                    "must be above `min_accounts` and at most 64",
                );
            }
            DetectorKind::PasswordSpray(p)
        }
        DetectorType::VolumeBurst => {
            let p: VolumeBurstParams = typed(params)?;
            check(&mut problems, p.min_ratio > 1.0, "min_ratio", "must be above 1");
            check(&mut problems, p.min_z >= 0.0, "min_z", "must not be negative");
            DetectorKind::VolumeBurst(p)
        }
        DetectorType::SustainedVolume => {
            let p: SustainedVolumeParams = typed(params)?;
            check(&mut problems, (2..=8).contains(&p.hours), "hours", "must be between 2 and 8");
            check(&mut problems, p.min_ratio > 1.0, "min_ratio", "must be above 1");
            DetectorKind::SustainedVolume(p)
        }
        DetectorType::SustainedExcess => {
            let p: SustainedExcessParams = typed(params)?;
            check(&mut problems, p.allowance > 0.0, "allowance", "must be above 0 (without it, growth accumulates)");
            check(&mut problems, p.threshold > 0.0, "threshold", "must be above 0");
            check(&mut problems, p.hour_cap > p.allowance, "hour_cap", "must be above allowance");
            // A burst can span two clock hours: together they must stay below the threshold.
            check(
                &mut problems,
                2.0 * (p.hour_cap - p.allowance) < p.threshold,
                "hour_cap",
                "hour_cap - allowance must be below threshold / 2, so that one burst (two clock hours at most) cannot fire alone",
            );
            DetectorKind::SustainedExcess(p)
        }
        DetectorType::OffHours => {
            let p: OffHoursParams = typed(params)?;
            check(&mut problems, (0.0..1.0).contains(&p.max_presence), "max_presence", "must be in [0, 1)");
            check(&mut problems, p.min_events >= 1, "min_events", "must be at least 1");
            let mut schedules = Vec::new();
            for (i, config) in p.schedules.iter().enumerate() {
                match Schedule::new(config) {
                    Ok(s) => schedules.push(s),
                    Err((field, message)) => problems.push((format!("params.schedules[{i}].{field}"), message)),
                }
            }
            DetectorKind::OffHours { params: p, schedules }
        }
        DetectorType::RevokedCredential => DetectorKind::RevokedCredential(typed(params)?),
        DetectorType::ForeignCredential => {
            let p: ForeignCredentialParams = typed(params)?;
            check(&mut problems, p.min_user_hours >= 1, "min_user_hours", "must be at least 1");
            DetectorKind::ForeignCredential(p)
        }
        DetectorType::NewNetwork => {
            let p: NewNetworkParams = typed(params)?;
            check(&mut problems, p.min_uses >= 1, "min_uses", "must be at least 1");
            DetectorKind::NewNetwork(p)
        }
        DetectorType::RareAction => {
            let p: RareActionParams = typed(params)?;
            check(&mut problems, !p.classes.is_empty(), "classes", "must name at least one action class");
            check_patterns(&mut problems, "classes", &p.classes);
            for (i, class) in p.classes.iter().enumerate() {
                // Terms are kept per account: `*` would keep them for every account there is.
                check(
                    &mut problems,
                    class.as_str() != "*",
                    &format!("classes[{i}]"),
                    "`*` alone is not a class; name a service or an action prefix (`iam.Create*`)",
                );
            }
            check(&mut problems, p.min_events >= 1, "min_events", "must be at least 1");
            DetectorKind::RareAction(p)
        }
        DetectorType::CallRate => {
            let p: CallRateParams = typed(params)?;
            check(&mut problems, !p.classes.is_empty(), "classes", "must name at least one action class");
            check_patterns(&mut problems, "classes", &p.classes);
            let window = p.window.millis();
            check(
                &mut problems,
                (12 * crate::detection::time::SECOND..=crate::detection::time::HOUR).contains(&window),
                "window",
                "must be from 12s to 1h (what is usual is learned per clock hour)",
            );
            check(&mut problems, p.min_calls >= 2, "min_calls", "must be at least 2 (one call is not a rate)");
            check(&mut problems, p.min_ratio > 1.0, "min_ratio", "must be above 1");
            DetectorKind::CallRate(p)
        }
        DetectorType::CredentialCreatedForOther => {
            let p: CredentialCreatedForOtherParams = typed(params)?;
            check_patterns(&mut problems, "target_actions", &p.target_actions);
            check(
                &mut problems,
                (1..=crate::detection::terms::MAX_TARGETS as u8).contains(&p.usual_after),
                "usual_after",
                &format!("must be between 1 and {}", crate::detection::terms::MAX_TARGETS),
            );
            DetectorKind::CredentialCreatedForOther(p)
        }
        DetectorType::SessionOrigin => DetectorKind::SessionOrigin(typed(params)?),
        DetectorType::MfaOmitted => {
            let p: MfaOmittedParams = typed(params)?;
            check(&mut problems, !p.actions.is_empty(), "actions", "must name at least one sign-in action");
            check_patterns(&mut problems, "actions", &p.actions);
            DetectorKind::MfaOmitted(p)
        }
    };
    if problems.is_empty() {
        Ok(kind)
    } else {
        Err(problems)
    }
}

/// Parse a set of (path, text) definitions; names must be unique and the set non-empty.
pub fn load_sources<'a>(sources: impl IntoIterator<Item = (&'a Path, &'a str)>) -> Result<Vec<Detector>, Problems> {
    let mut detectors: Vec<Detector> = Vec::new();
    let mut problems = Vec::new();
    let mut last_path = PathBuf::new();
    for (path, text) in sources {
        last_path = path.to_path_buf();
        match parse(path, text) {
            Ok(d) => {
                let excess = |d: &Detector| matches!(d.kind, DetectorKind::SustainedExcess(_));
                if let Some(other) = detectors.iter().find(|o| excess(o) && excess(&d)) {
                    // Accounts keep one CUSUM slot (a few bytes), not one per detector.
                    problems.push(
                        Problem::new(
                            "type",
                            format!("only one `sustained_excess` detector per set; `{}` is one", other.name),
                        )
                        .in_file(path),
                    );
                } else if let Some(other) = detectors.iter().find(|o| o.name == d.name) {
                    problems.push(
                        Problem::new("name", format!("`{}` is also defined in {}", d.name, other.file.display()))
                            .in_file(path),
                    );
                } else {
                    detectors.push(d);
                }
            }
            Err(p) => problems.extend(p),
        }
    }
    if detectors.is_empty() && problems.is_empty() {
        problems.push(Problem::new("", "no detector definitions (*.toml) found").in_file(&last_path));
    }
    if problems.is_empty() {
        Ok(detectors)
    } else {
        Err(Problems(problems))
    }
}

#[cfg(test)]
mod tests;
