//! Secrets: `[kafka.secrets]` holds references ([`SecretRef`], an env var or a file), resolved
//! only when a Kafka client is built ([`KafkaConfig::client_properties`]) into a [`Secret`] whose
//! `Debug` and `Display` print `***`. Error messages name the env var or the file, never a value.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{KafkaConfig, Problem, SecretRef};

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
pub(super) fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || matches!(key.as_str(), "ssl.key.pem" | "sasl.oauthbearer.client.secret" | "sasl.jaas.config")
}

/// Whether a line of the file may show a secret, so an error must not quote it.
pub(super) fn may_hold_secret(line: &str) -> bool {
    let line = line.to_ascii_lowercase();
    ["password", "secret", "ssl.key.pem", "jaas"].iter().any(|word| line.contains(word))
}

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
}
