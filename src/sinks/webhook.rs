//! Each alert POSTed as JSON to a URL, signed the Standard Webhooks way
//! (<https://www.standardwebhooks.com/>), so any of that spec's libraries can verify it.
//!
//! One request per alert, in order; delivered means a 2xx answer. Headers: `webhook-id` (the
//! alert id, stable across retries and restarts, so receivers can deduplicate),
//! `webhook-timestamp` (unix seconds at sending) and `webhook-signature`: `v1,<base64 HMAC-SHA256
//! of "{id}.{timestamp}.{body}">` once per configured secret, space-separated, so a receiver
//! can rotate to a new secret while the old one is still listed. Without secrets, requests go
//! unsigned (warned about at start).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use tracing::warn;

use crate::config::WebhookOutput;
use crate::sinks::http::Endpoint;
use crate::sinks::DeliveryError;
use crate::state::outbox::Entry;

/// The prefix of a Standard Webhooks secret; the base64 key follows it.
const SECRET_PREFIX: &str = "whsec_";

/// A decoded signing key. Prints as `***`.
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl SigningKey {
    /// Parses `whsec_<base64>`; errors name `field` and never quote the value.
    pub fn parse(field: &str, value: &str) -> Result<SigningKey, String> {
        let Some(encoded) = value.strip_prefix(SECRET_PREFIX) else {
            return Err(format!(
                "`{field}` does not start with `{SECRET_PREFIX}`: signing secrets are `{SECRET_PREFIX}<base64 key>`"
            ));
        };
        // The decoder's message would quote a character of the secret, so it is not passed on.
        let key = BASE64
            .decode(encoded)
            .map_err(|_| format!("`{field}`: the part after `{SECRET_PREFIX}` is not valid base64"))?;
        if key.is_empty() {
            return Err(format!("`{field}`: the key after `{SECRET_PREFIX}` is empty"));
        }
        Ok(SigningKey(key))
    }
}

#[derive(Debug)]
pub struct WebhookSink {
    endpoint: Endpoint,
    keys: Vec<SigningKey>,
    /// The configured extra headers, checked once.
    headers: HeaderMap,
}

impl WebhookSink {
    pub fn new(config: &WebhookOutput, env: &dyn Fn(&str) -> Option<String>) -> Result<WebhookSink, String> {
        let endpoint = Endpoint::new("url", &config.url, config.allow_http, config.timeout)?;
        let keys = config
            .secrets
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                let field = format!("secrets[{i}]");
                let value = secret.resolve(env).map_err(|e| format!("`{field}`: {e}"))?;
                SigningKey::parse(&field, value.expose())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let field = format!("headers.{name}");
            let name =
                HeaderName::try_from(name.as_str()).map_err(|_| format!("`{field}` is not a valid header name"))?;
            if name.as_str().starts_with("webhook-") || name == reqwest::header::CONTENT_TYPE {
                return Err(format!("`{field}` is set by the sink itself"));
            }
            let value =
                HeaderValue::try_from(value.as_str()).map_err(|_| format!("`{field}` is not a valid header value"))?;
            headers.insert(name, value);
        }
        if keys.is_empty() {
            warn!(
                receiver = ?endpoint,
                "webhook output has no `secrets`: its requests are unsigned and a receiver cannot tell them from forgeries"
            );
        }
        Ok(WebhookSink { endpoint, keys, headers })
    }

    pub fn deliver(&mut self, entries: &[Entry]) -> Result<(), DeliveryError> {
        for (index, entry) in entries.iter().enumerate() {
            self.post(entry).map_err(|e| DeliveryError { confirmed: index, ..e })?;
        }
        Ok(())
    }

    fn post(&self, entry: &Entry) -> Result<(), DeliveryError> {
        let timestamp = chrono::Utc::now().timestamp();
        let mut headers = self.headers.clone();
        // An alert id is hex and a timestamp digits: both are valid header values.
        let id = HeaderValue::try_from(entry.id.as_str())
            .map_err(|_| DeliveryError::permanent(0, "the entry id is not a valid header value"))?;
        headers.insert("webhook-id", id);
        headers.insert("webhook-timestamp", HeaderValue::from(timestamp));
        if !self.keys.is_empty() {
            let signature = signature(&self.keys, &entry.id, timestamp, &entry.body);
            // Base64, commas and spaces only.
            headers
                .insert("webhook-signature", HeaderValue::try_from(signature).expect("base64 is a valid header value"));
        }
        self.endpoint.post_json(entry.body.clone(), headers)
    }
}

/// The `webhook-signature` value: `v1,<signature>` for each key, space-separated.
pub fn signature(keys: &[SigningKey], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| format!("v1,{}", BASE64.encode(mac(key, id, &timestamp.to_string(), body).finalize().into_bytes())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// HMAC-SHA256 of `{id}.{timestamp}.{body}`, the signed content.
fn mac(key: &SigningKey, id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC accepts any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    mac
}

/// What a receiver checks (the demo's receiver does): one of the space-separated `v1,`
/// signatures in `header` is `key`'s HMAC of `{id}.{timestamp}.{body}`, compared in constant
/// time. Receivers should also refuse a `timestamp` far from their clock (replays).
pub fn verify(key: &SigningKey, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|candidate| {
        BASE64.decode(candidate).is_ok_and(|candidate| mac(key, id, timestamp, body).verify_slice(&candidate).is_ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretRef;

    #[test]
    fn verify_accepts_the_reference_vector_and_refuses_changes() {
        let key = SigningKey::parse("secrets[0]", SECRET).unwrap();
        let ts = TIMESTAMP.to_string();
        assert!(verify(&key, ID, &ts, PAYLOAD.as_bytes(), &format!("v1,bm9wZQ== {EXPECTED}")));
        assert!(!verify(&key, ID, &ts, b"{\"test\": 1}", EXPECTED));
        assert!(!verify(&key, ID, "1614265331", PAYLOAD.as_bytes(), EXPECTED));
        assert!(!verify(&key, ID, &ts, PAYLOAD.as_bytes(), "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="));
    }

    /// The test vector of the Standard Webhooks reference libraries.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const PAYLOAD: &str = r#"{"test": 2432232314}"#;
    const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn signature_matches_the_reference_vector() {
        let key = SigningKey::parse("secrets[0]", SECRET).unwrap();
        assert_eq!(signature(&[key], ID, TIMESTAMP, PAYLOAD.as_bytes()), EXPECTED);
    }

    #[test]
    fn every_key_signs_in_order() {
        let other = SigningKey::parse("secrets[0]", &format!("{SECRET_PREFIX}{}", BASE64.encode([7u8; 32]))).unwrap();
        let keys = [other, SigningKey::parse("secrets[1]", SECRET).unwrap()];
        let header = signature(&keys, ID, TIMESTAMP, PAYLOAD.as_bytes());
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with("v1,") && parts[0] != EXPECTED);
        assert_eq!(parts[1], EXPECTED);
    }

    #[test]
    fn bad_secrets_are_named_by_field_never_quoted() {
        let e = SigningKey::parse("secrets[1]", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap_err();
        assert!(e.contains("`secrets[1]` does not start with `whsec_`") && !e.contains("MfKQ9"), "{e}");
        let e = SigningKey::parse("secrets[0]", "whsec_not-base64!").unwrap_err();
        assert!(e.contains("`secrets[0]`") && e.contains("not valid base64") && !e.contains("not-base64!"), "{e}");
        let e = SigningKey::parse("secrets[0]", "whsec_").unwrap_err();
        assert!(e.contains("empty"), "{e}");
        assert_eq!(format!("{:?}", SigningKey::parse("s", SECRET).unwrap()), "***");
    }

    fn config(secrets: Vec<SecretRef>) -> WebhookOutput {
        WebhookOutput {
            name: None,
            mask: None,
            url: "https://receiver.example/alerts".to_string(),
            secrets,
            headers: Default::default(),
            timeout: crate::detection::time::Duration(1000),
            allow_http: false,
        }
    }

    #[test]
    fn new_resolves_and_checks_each_secret() {
        let env = |var: &str| match var {
            "GOOD" => Some(SECRET.to_string()),
            "BAD" => Some("plain-password".to_string()),
            _ => None,
        };
        let good = SecretRef::Env { env: "GOOD".to_string() };
        let sink = WebhookSink::new(&config(vec![good.clone()]), &env).unwrap();
        let debug = format!("{sink:?}");
        assert!(!debug.contains("MfKQ9") && debug.contains("***"), "{debug}");
        let e =
            WebhookSink::new(&config(vec![good.clone(), SecretRef::Env { env: "BAD".to_string() }]), &env).unwrap_err();
        assert!(e.contains("`secrets[1]` does not start with `whsec_`") && !e.contains("plain-password"), "{e}");
        let e = WebhookSink::new(&config(vec![SecretRef::Env { env: "UNSET".to_string() }]), &env).unwrap_err();
        assert!(e.starts_with("`secrets[0]`: MISSING: env UNSET"), "{e}");
        let mut headers = config(vec![good]);
        headers.headers.insert("webhook-id".to_string(), "x".to_string());
        let e = WebhookSink::new(&headers, &env).unwrap_err();
        assert!(e.contains("`headers.webhook-id` is set by the sink itself"), "{e}");
    }
}
