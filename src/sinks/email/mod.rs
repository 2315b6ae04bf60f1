//! Notifications as email, for people: one message per notification, through an SMTP relay
//! (lettre's blocking client over rustls), or into a directory of `.eml` files for the demo.
//!
//! The connection is protected as configured: STARTTLS that must succeed, TLS from the first
//! byte, or (for a relay on the same host) nothing, warned about at start. The relay's
//! certificate is checked against the system's roots plus an optional private CA. The
//! Message-ID comes from the notification id, so a notification sent again after a lost reply
//! is recognisably the same message. Errors follow SMTP's own split: a 5xx reply about this
//! message (a recipient refused) cannot succeed on retry and is permanent; 4xx replies, broken
//! connections, timeouts and TLS failures are transient.

mod render;

use std::fmt;
use std::path::PathBuf;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{FileTransport, Message, SmtpTransport, Transport as _};

use crate::alerting::notification::Notification;
use crate::config::{EmailOutput, Secret, SmtpTls};
use crate::sinks::DeliveryError;

pub struct EmailSink {
    transport: Transport,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// The password, only to scrub it from error reasons should a relay ever echo it.
    password: Option<Secret>,
}

enum Transport {
    /// Boxed: lettre's client is large, and every sink lives in one enum.
    Smtp(Box<Smtp>),
    Directory(PathBuf),
}

struct Smtp {
    client: SmtpTransport,
    /// `host:port`, for errors.
    relay: String,
    tls: SmtpTls,
    username: Option<String>,
    timeout: std::time::Duration,
}

impl EmailSink {
    pub fn new(config: &EmailOutput, env: &dyn Fn(&str) -> Option<String>) -> Result<EmailSink, String> {
        let (from, to) = addresses(&config.from, &config.to)?;
        let relay = format!("{}:{}", config.host, config.port());
        let tls = match config.tls {
            SmtpTls::Starttls => Tls::Required(tls_parameters(config)?),
            SmtpTls::Tls => Tls::Wrapper(tls_parameters(config)?),
            SmtpTls::None => Tls::None,
        };
        let password = match (&config.username, &config.password) {
            (Some(_), Some(secret)) => Some(secret.resolve(env).map_err(|e| format!("password: {e}"))?),
            (None, None) => None,
            (Some(_), None) => return Err("password: required when username is set".to_string()),
            (None, Some(_)) => return Err("username: required when password is set".to_string()),
        };
        if config.tls == SmtpTls::None {
            let what = if password.is_some() { "mail and the SMTP password" } else { "mail" };
            tracing::warn!("email via {relay}: tls = \"none\": {what} travel unencrypted");
        }
        // lettre cannot set a zero socket timeout.
        let timeout = std::time::Duration::from_millis(config.timeout.0.max(1).unsigned_abs());
        let mut builder =
            SmtpTransport::builder_dangerous(&config.host).port(config.port()).tls(tls).timeout(Some(timeout));
        if let (Some(username), Some(password)) = (&config.username, &password) {
            builder = builder.credentials(Credentials::new(username.clone(), password.expose().to_string()));
        }
        let transport = Transport::Smtp(Box::new(Smtp {
            client: builder.build(),
            relay,
            tls: config.tls,
            username: config.username.clone(),
            timeout,
        }));
        Ok(EmailSink { transport, from, to, password })
    }

    /// Messages written as `.eml` files into `dir` instead of sent: `auditwatch demo` needs no
    /// mail server.
    pub fn to_directory(dir: PathBuf, from: &str, to: &[String]) -> Result<EmailSink, String> {
        let (from, to) = addresses(from, to)?;
        if !dir.is_dir() {
            return Err(format!("{}: not a directory", dir.display()));
        }
        Ok(EmailSink { transport: Transport::Directory(dir), from, to, password: None })
    }

    pub fn notify(&mut self, notification: &Notification) -> Result<(), DeliveryError> {
        let message =
            self.message(notification).map_err(|e| DeliveryError::permanent(0, format!("building the email: {e}")))?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .client
                .send(&message)
                .map(drop)
                .map_err(|e| self.scrubbed(smtp_error(&e, &smtp.relay, smtp.timeout))),
            Transport::Directory(dir) => FileTransport::new(dir)
                .send(&message)
                .map(drop)
                .map_err(|e| DeliveryError::transient(0, format!("writing an email into {}: {e}", dir.display()))),
        }
    }

    fn message(&self, notification: &Notification) -> Result<Message, lettre::error::Error> {
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(render::subject(notification))
            .message_id(Some(message_id(&notification.id, self.from.email.domain())));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let body = render::Body::of(notification);
        builder.multipart(MultiPart::alternative_plain_html(body.text(), body.html()))
    }

    fn scrubbed(&self, mut error: DeliveryError) -> DeliveryError {
        if let Some(password) = self.password.as_ref().map(Secret::expose).filter(|p| !p.is_empty()) {
            error.reason = error.reason.replace(password, "***");
        }
        error
    }
}

impl fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("EmailSink");
        match &self.transport {
            Transport::Smtp(smtp) => s
                .field("relay", &smtp.relay)
                .field("tls", &smtp.tls)
                .field("username", &smtp.username)
                .field("password", &self.password),
            Transport::Directory(dir) => s.field("directory", dir),
        };
        s.field("from", &self.from.to_string())
            .field("to", &self.to.iter().map(Mailbox::to_string).collect::<Vec<_>>());
        s.finish()
    }
}

fn addresses(from: &str, to: &[String]) -> Result<(Mailbox, Vec<Mailbox>), String> {
    let from = from.parse::<Mailbox>().map_err(|e| format!("from: `{from}` is not an email address: {e}"))?;
    if to.is_empty() {
        return Err("to: at least one recipient is required".to_string());
    }
    let to = to
        .iter()
        .map(|t| t.parse::<Mailbox>().map_err(|e| format!("to: `{t}` is not an email address: {e}")))
        .collect::<Result<_, _>>()?;
    Ok((from, to))
}

/// rustls with the system's roots, plus the configured CA for a private relay.
fn tls_parameters(config: &EmailOutput) -> Result<TlsParameters, String> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let ca_error = |e: &dyn fmt::Display| format!("ca_file {}: {e}", path.display());
        let pem = std::fs::read(path).map_err(|e| ca_error(&e))?;
        // lettre reads text without any PEM block as zero certificates, not as an error.
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            return Err(ca_error(&"no PEM certificate in the file"));
        }
        builder = builder.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| ca_error(&e))?);
        return builder.build_rustls().map_err(|e| ca_error(&e));
    }
    builder.build_rustls().map_err(|e| format!("TLS setup for {}: {e}", config.host))
}

/// `<id@domain>`: stable for a notification sent again. Anything but letters, digits and `-_+=`
/// is percent-encoded (`%` too, and dots, which a Message-ID may not lead, end or double), so
/// distinct ids stay distinct.
fn message_id(id: &str, domain: &str) -> String {
    let mut local = String::with_capacity(id.len());
    for byte in id.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'+' | b'=' => local.push(char::from(byte)),
            _ => local.push_str(&format!("%{byte:02X}")),
        }
    }
    format!("<{local}@{domain}>")
}

/// Classify a failed SMTP exchange. lettre's message carries the relay's reply text, never the
/// credentials it sent.
fn smtp_error(error: &lettre::transport::smtp::Error, relay: &str, timeout: std::time::Duration) -> DeliveryError {
    // A blocking socket past its read timeout reports `WouldBlock`, which reads as nonsense.
    let timed_out = std::iter::successors(std::error::Error::source(error), |e| e.source())
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .any(|e| matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    if timed_out {
        return DeliveryError::transient(0, format!("email via {relay}: no answer within {timeout:?}"));
    }
    let reason = format!("email via {relay}: {error}");
    match error.status().map(u16::from) {
        // A refused login is about the relay account, not this message: once the credentials
        // are fixed the same message goes through, so it waits instead of being dead-lettered.
        Some(530 | 534 | 535 | 538) => DeliveryError::transient(0, reason),
        Some(_) if error.is_permanent() => DeliveryError::permanent(0, reason),
        _ => DeliveryError::transient(0, reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_is_stable_and_a_valid_msg_id() {
        assert_eq!(message_id("abc-1", "example.com"), "<abc-1@example.com>");
        assert_eq!(message_id("group key/2", "example.com"), "<group%20key%2F2@example.com>");
        assert_ne!(message_id("a b", "x"), message_id("a%20b", "x"));
        assert_eq!(message_id(".a..b", "x"), "<%2Ea%2E%2Eb@x>");
    }

    #[test]
    fn an_echoed_password_is_scrubbed_from_reasons() {
        let dir = std::env::temp_dir();
        let mut sink = EmailSink::to_directory(dir, "a@example.com", &["b@example.com".to_string()]).unwrap();
        sink.password = Some(Secret::new("pw-123".to_string()));
        let error = sink.scrubbed(DeliveryError::transient(0, "535 pw-123 is wrong"));
        assert_eq!(error.reason, "535 *** is wrong");
    }
}
