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
        if let Some(retention) = self.store.retention {
            if retention.millis() < DAY {
                out.push(Problem::new("store.retention", "must be at least a day (\"400d\"): whole days are deleted"));
            }
        }
        if let Some(query) = &self.admin.query {
            if self.store.dir.is_none() {
                out.push(Problem::new("admin.query", "queries need a store: set [store] dir"));
            }
            positive(&mut out, "admin.query.timeout", query.timeout);
            if query.max_rows == 0 {
                out.push(Problem::new("admin.query.max_rows", "must be at least 1"));
            }
        }
        positive(&mut out, "state.checkpoint_interval", self.state.checkpoint_interval);
        positive(&mut out, "state.shutdown_timeout", self.state.shutdown_timeout);

        if self.store.dir.as_ref().is_some_and(|dir| dir.as_os_str().is_empty()) {
            out.push(Problem::new("store.dir", "must not be empty; leave it out to retain nothing"));
        }
        if self.store.roll_bytes < 1024 {
            out.push(Problem::new("store.roll_bytes", "must be at least 1024"));
        }
        positive(&mut out, "store.roll_age", self.store.roll_age);

        // Whether the files exist and are usable is checked when they are read, at start.
        let enrichment = &self.enrichment;
        for (i, path) in enrichment.databases.iter().enumerate() {
            if path.as_os_str().is_empty() {
                out.push(Problem::new(format!("enrichment.databases[{i}]"), "must name a file"));
            }
        }
        let ranges = [
            ("aws_ranges", &enrichment.aws_ranges),
            ("gcp_ranges", &enrichment.gcp_ranges),
            ("azure_ranges", &enrichment.azure_ranges),
        ];
        for (key, path) in ranges {
            if path.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                out.push(Problem::new(
                    format!("enrichment.{key}"),
                    "must name a file; leave it out to mark no provider",
                ));
            }
        }

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
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, output) in self.outputs.iter().enumerate() {
            if let Some(name) = output.configured_name() {
                let field = format!("outputs[{i}].name");
                if let Some(message) = name_problem(name) {
                    out.push(Problem::new(field, message));
                } else if let Some(first) = names.insert(name, i) {
                    out.push(Problem::new(field, format!("`{name}` is already the name of outputs[{first}]")));
                }
            }
            match output {
                OutputConfig::Stdout(_) => match stdout {
                    Some(first) => out.push(Problem::new(
                        format!("outputs[{i}]"),
                        format!("only one stdout output is allowed; outputs[{first}] is one already"),
                    )),
                    None => stdout = Some(i),
                },
                OutputConfig::File(o) => {
                    let field = format!("outputs[{i}].path");
                    if o.path.as_os_str().is_empty() {
                        out.push(Problem::new(field, "must not be empty"));
                    } else if let Some(first) = files.get(o.path.as_path()) {
                        out.push(Problem::new(
                            field,
                            format!("`{}` is already written by outputs[{first}]", o.path.display()),
                        ));
                    } else {
                        files.insert(&o.path, i);
                    }
                }
                OutputConfig::Kafka(o) => {
                    let (field, topic) = (format!("outputs[{i}].topic"), &o.topic);
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
                OutputConfig::Email(o) => {
                    if o.host.trim().is_empty() {
                        out.push(Problem::new(format!("outputs[{i}].host"), "must not be empty"));
                    }
                    if let Err(e) = o.from.parse::<lettre::message::Mailbox>() {
                        out.push(Problem::new(format!("outputs[{i}].from"), format!("is not an email address: {e}")));
                    }
                    if o.to.is_empty() {
                        out.push(Problem::new(format!("outputs[{i}].to"), "needs at least one recipient"));
                    }
                    for (j, to) in o.to.iter().enumerate() {
                        if let Err(e) = to.parse::<lettre::message::Mailbox>() {
                            out.push(Problem::new(
                                format!("outputs[{i}].to[{j}]"),
                                format!("is not an email address: {e}"),
                            ));
                        }
                    }
                    if o.password.is_some() && o.username.is_none() {
                        out.push(Problem::new(format!("outputs[{i}].username"), "is required when a password is set"));
                    }
                    positive(out, &format!("outputs[{i}].timeout"), o.timeout);
                }
                OutputConfig::Webhook(o) => {
                    url_problems(out, &format!("outputs[{i}].url"), &o.url, o.allow_http);
                    for key in o.headers.keys() {
                        if reqwest::header::HeaderName::from_bytes(key.as_bytes()).is_err() {
                            out.push(Problem::new(format!("outputs[{i}].headers.{key}"), "is not a valid header name"));
                        } else if key.to_ascii_lowercase().starts_with("webhook-") {
                            out.push(Problem::new(
                                format!("outputs[{i}].headers.{key}"),
                                "`webhook-` headers are set by the signature scheme",
                            ));
                        }
                    }
                    positive(out, &format!("outputs[{i}].timeout"), o.timeout);
                }
                OutputConfig::Slack(o) => positive(out, &format!("outputs[{i}].timeout"), o.timeout),
                OutputConfig::Pagerduty(o) => {
                    url_problems(out, &format!("outputs[{i}].url"), &o.url, o.allow_http);
                    positive(out, &format!("outputs[{i}].timeout"), o.timeout);
                }
            }
        }
        self.validate_routes(out);
    }

    fn validate_routes(&self, out: &mut Vec<Problem>) {
        let outputs = self.output_names();
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, route) in self.routes.iter().enumerate() {
            if let Some(message) = name_problem(&route.name) {
                out.push(Problem::new(format!("routes[{i}].name"), message));
            } else if let Some(first) = names.insert(&route.name, i) {
                out.push(Problem::new(
                    format!("routes[{i}].name"),
                    format!("`{}` is already the name of routes[{first}]", route.name),
                ));
            }
            if route.outputs.is_empty() {
                out.push(Problem::new(format!("routes[{i}].outputs"), "needs at least one output name"));
            }
            for (j, output) in route.outputs.iter().enumerate() {
                if !outputs.contains(output) {
                    out.push(Problem::new(
                        format!("routes[{i}].outputs[{j}]"),
                        format!("no output is named `{output}`; the outputs are: {}", outputs.join(", ")),
                    ));
                }
            }
            matcher_problems(out, &format!("routes[{i}].match"), &route.matcher);
            for (field, value) in [
                ("group_wait", route.group_wait),
                ("group_interval", route.group_interval),
                ("repeat_interval", route.repeat_interval),
                ("resolve_timeout", route.resolve_timeout),
            ] {
                if let Some(d) = value {
                    if field != "group_wait" || d.0 < 0 {
                        positive(out, &format!("routes[{i}].{field}"), d);
                    }
                }
            }
        }
    }
}

/// Problems with a matcher: account globs must compile.
pub(crate) fn matcher_problems(out: &mut Vec<Problem>, field: &str, matcher: &AlertMatcher) {
    for (j, pattern) in matcher.account.iter().enumerate() {
        if let Err(e) = glob::Pattern::new(pattern) {
            out.push(Problem::new(format!("{field}.account[{j}]"), format!("is not a glob: {e}")));
        }
    }
}

/// Output and route names appear in file names and metric labels.
fn name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("must not be empty".into())
    } else if name.len() > 100 || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
        Some(format!("`{name}` is not a name: use up to 100 ASCII letters, digits, '.', '_' and '-'"))
    } else {
        None
    }
}

fn url_problems(out: &mut Vec<Problem>, field: &str, url: &str, allow_http: bool) {
    match reqwest::Url::parse(url) {
        Err(e) => out.push(Problem::new(field, format!("is not a URL: {e}"))),
        Ok(u) if u.scheme() == "https" => {}
        Ok(u) if u.scheme() == "http" && allow_http => {}
        Ok(u) if u.scheme() == "http" => {
            out.push(Problem::new(field, "is plain http; use https, or set `allow_http = true` for a local receiver"))
        }
        Ok(u) => out
            .push(Problem::new(field, format!("has scheme `{}`; only https (and http when allowed) work", u.scheme()))),
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
