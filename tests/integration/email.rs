//! The email sink against a real SMTP server (`tests/peers/smtp_server.py`, aiosmtpd): STARTTLS
//! with a private CA and a login, implicit TLS, a plain relay, a refused or deferred recipient, a
//! relay that is down or silent, bad CA files, and the `.eml` directory of the demo. The server
//! reports each message with its parts decoded by Python's email package; the `.eml` file is
//! decoded here.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auditwatch::alerting::notification::{Notification, Status};
use auditwatch::config::{EmailOutput, SecretRef, SmtpTls};
use auditwatch::sinks::email::EmailSink;
use serde_json::{json, Value};

use crate::support::{certificates, Peer};

const PASSWORD: &str = "s3cret-Pa55word";
const SQL: &str = "SELECT * FROM events WHERE account = 'ci-deploy' AND time >= '2024-05-01T09:00:00Z'";

fn server(args: &[&str]) -> (Peer, u16) {
    let peer = Peer::start("smtp_server.py", args);
    let port = peer.records()[0]["port"].as_u64().expect("the server's first line is its port") as u16;
    (peer, port)
}

/// The messages the server accepted (its first record is the port).
fn messages(peer: &Peer, n: usize) -> Vec<Value> {
    peer.wait_records(n + 1, Duration::from_secs(30))[1..].to_vec()
}

fn output(port: u16, tls: SmtpTls) -> EmailOutput {
    EmailOutput {
        name: None,
        mask: None,
        host: "localhost".to_string(),
        port: Some(port),
        tls,
        ca_file: None,
        username: None,
        password: None,
        from: "auditwatch@alerts.example.com".to_string(),
        to: vec!["oncall@example.com".to_string(), "security@example.org".to_string()],
        timeout: auditwatch::detection::time::Duration(10_000),
        save_to: None,
    }
}

fn with_login(mut config: EmailOutput) -> EmailOutput {
    config.username = Some("mailer".to_string());
    config.password = Some(SecretRef::Env { env: "SMTP_PASSWORD".to_string() });
    config
}

fn env(var: &str) -> Option<String> {
    (var == "SMTP_PASSWORD").then(|| PASSWORD.to_string())
}

fn alert(id: &str, severity: &str, summary: &str, runbook: &str) -> Value {
    json!({
        "id": id,
        "detector": "credential_new_network",
        "category": "credential_misuse",
        "severity": severity,
        "account": "ci-deploy",
        "credential_id": "AKIA****",
        "source_ip": "203.0.113.*",
        "time": "2024-05-01T09:14:00Z",
        "window_start": "2024-05-01T09:00:00Z",
        "window_end": "2024-05-01T09:15:00Z",
        "observed": 14.0,
        "expected": 2.5,
        "score": 5.1,
        "summary": summary,
        "evidence": {
            "event_ids": [format!("{id}-e1"), format!("{id}-e2")],
            "baseline": {"networks_seen": 3},
            "new": ["203.0.113.0/24"],
            "sql": SQL,
            "runbook": runbook
        }
    })
}

fn notification() -> Notification {
    let alerts = vec![
        alert("a1", "medium", "ci-deploy called from a new network", "Check the pipeline's runners."),
        alert("a2", "high", "ci-deploy created an access key from a new network", "Rotate the key now."),
    ];
    Notification {
        id: "route-default/credential_new_network/ci-deploy#1".to_string(),
        group_key: "route-default/credential_new_network/ci-deploy".to_string(),
        route: "default".to_string(),
        status: Status::Firing,
        sequence: 1,
        labels: vec![
            ("detector".to_string(), "credential_new_network".to_string()),
            ("account".to_string(), "ci-deploy".to_string()),
        ],
        latest: alerts[1].clone(),
        alerts,
        new_alerts: 2,
        total_alerts: 7,
    }
}

/// Logs written while `f` runs on this thread.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (out, logs)
}

/// A header of a raw message (first occurrence, folded lines joined).
fn header(raw: &str, name: &str) -> Option<String> {
    let head = raw.split("\r\n\r\n").next().unwrap_or(raw);
    let mut value: Option<String> = None;
    for line in head.split("\r\n") {
        match &mut value {
            Some(v) if line.starts_with([' ', '\t']) => v.push_str(line),
            Some(_) => break,
            None => {
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case(name) {
                        value = Some(v.trim().to_string());
                    }
                }
            }
        }
    }
    value
}

/// What every delivered notification must show, in both parts.
fn assert_body(content_type: &str, parts: &[(String, String)]) {
    assert!(content_type.starts_with("multipart/alternative"), "{content_type}");
    let types: Vec<&str> = parts.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    let (text, html) = (&parts[0].1, &parts[1].1);
    for body in [text, html] {
        for needle in [
            "ci-deploy called from a new network",
            "ci-deploy created an access key from a new network",
            "Check the pipeline",
            "Rotate the key now.",
            "2 new alerts, 7 in this group.",
            "2024-05-01T09:00:00Z – 2024-05-01T09:15:00Z",
            "14.0 (expected 2.5, score 5.1)",
            "a2-e1, a2-e2",
            "203.0.113.0/24",
            "credential_new_network",
        ] {
            assert!(body.contains(needle), "missing {needle:?} in\n{body}");
        }
    }
    assert!(text.contains(SQL), "{text}");
    assert!(html.contains(&SQL.replace('\'', "&#39;").replace('>', "&gt;")), "the SQL, escaped, in\n{html}");
    assert!(!html.contains("'ci-deploy'"), "an unescaped quote in\n{html}");
}

fn server_parts(message: &Value) -> Vec<(String, String)> {
    message["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["content_type"].as_str().unwrap().to_string(), p["text"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn starttls_with_a_private_ca_and_a_login_delivers_text_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let args = ["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()];
    let (peer, port) = server(&[&args[..], &["--auth-user", "mailer", "--auth-password", PASSWORD]].concat());
    let mut config = with_login(output(port, SmtpTls::Starttls));
    config.ca_file = Some(ca);

    let (sink, logs) = capture_logs(|| {
        let mut sink = EmailSink::new(&config, &env).unwrap();
        sink.notify(&notification()).unwrap();
        // Sent again (a lost reply): the same Message-ID.
        sink.notify(&notification()).unwrap();
        sink
    });

    let sent = messages(&peer, 2);
    let m = &sent[0];
    assert_eq!(m["tls"], true, "STARTTLS was used");
    assert_eq!(m["auth_user"], "mailer");
    assert_eq!(m["mail_from"], "auditwatch@alerts.example.com");
    assert_eq!(m["rcpt_tos"], json!(["oncall@example.com", "security@example.org"]));
    let raw = m["data"].as_str().unwrap();
    assert_eq!(header(raw, "From").unwrap(), "auditwatch@alerts.example.com");
    assert_eq!(header(raw, "To").unwrap(), "oncall@example.com, security@example.org");
    assert_eq!(m["subject"], "[auditwatch] HIGH credential_misuse: ci-deploy (2 alerts)");
    let message_id = header(raw, "Message-ID").unwrap();
    assert!(
        message_id.starts_with("<route-default%2F") && message_id.ends_with("@alerts.example.com>"),
        "{message_id}"
    );
    assert_eq!(header(sent[1]["data"].as_str().unwrap(), "Message-ID").unwrap(), message_id);
    assert_body(m["content_type"].as_str().unwrap(), &server_parts(m));

    for (what, text) in [("Debug", format!("{sink:?}")), ("logs", logs), ("the message", raw.to_string())] {
        assert!(!text.contains(PASSWORD), "the password in {what}: {text}");
    }
    assert!(format!("{sink:?}").contains("mailer"), "{sink:?}");
}

#[test]
fn a_refused_login_is_transient_and_its_error_holds_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let (peer, port) = server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--auth-user",
        "mailer",
        "--auth-password",
        "another-password",
    ]);
    let mut config = with_login(output(port, SmtpTls::Starttls));
    config.ca_file = Some(ca);
    let mut sink = EmailSink::new(&config, &env).unwrap();
    let error = sink.notify(&notification()).unwrap_err();
    assert!(!error.permanent, "{}", error.reason);
    assert!(error.reason.contains("535"), "{}", error.reason);
    assert!(!error.reason.contains(PASSWORD) && !format!("{error:?}").contains(PASSWORD), "{error:?}");
    assert_eq!(peer.records().len(), 1, "nothing delivered");
}

#[test]
fn implicit_tls_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let (peer, port) = server(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
        "--implicit-tls",
        "--auth-user",
        "mailer",
        "--auth-password",
        PASSWORD,
    ]);
    let mut config = with_login(output(port, SmtpTls::Tls));
    config.ca_file = Some(ca);
    EmailSink::new(&config, &env).unwrap().notify(&notification()).unwrap();
    let m = &messages(&peer, 1)[0];
    assert_eq!(m["tls"], true);
    assert_eq!(m["auth_user"], "mailer");
    assert_body(m["content_type"].as_str().unwrap(), &server_parts(m));
}

#[test]
fn a_certificate_from_an_unknown_ca_is_refused_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = certificates(dir.path());
    let (peer, port) = server(&["--cert", cert.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    let mut sink = EmailSink::new(&output(port, SmtpTls::Starttls), &env).unwrap();
    let error = sink.notify(&notification()).unwrap_err();
    assert!(!error.permanent, "{}", error.reason);
    assert!(error.reason.contains("invalid peer certificate"), "{}", error.reason);
    assert_eq!(peer.records().len(), 1, "nothing delivered");
}

#[test]
fn starttls_is_required_not_attempted() {
    let (peer, port) = server(&[]);
    let mut sink = EmailSink::new(&output(port, SmtpTls::Starttls), &env).unwrap();
    let error = sink.notify(&notification()).unwrap_err();
    assert!(!error.permanent, "{}", error.reason);
    assert!(error.reason.contains("STARTTLS is not supported"), "{}", error.reason);
    assert_eq!(peer.records().len(), 1, "nothing sent in the clear");
}

#[test]
fn a_plain_relay_works_and_is_warned_about() {
    let (peer, port) = server(&["--auth-user", "mailer", "--auth-password", PASSWORD]);
    let config = with_login(output(port, SmtpTls::None));
    let ((), logs) = capture_logs(|| {
        EmailSink::new(&config, &env).unwrap().notify(&notification()).unwrap();
    });
    assert!(logs.contains("WARN") && logs.contains("mail and the SMTP password travel unencrypted"), "{logs}");
    assert!(!logs.contains(PASSWORD), "{logs}");
    let m = &messages(&peer, 1)[0];
    assert_eq!(m["tls"], false);
    assert_eq!(m["auth_user"], "mailer");
    assert_body(m["content_type"].as_str().unwrap(), &server_parts(m));
}

#[test]
fn a_refused_recipient_is_permanent() {
    let (peer, port) = server(&["--reject-rcpt", "security@example.org"]);
    let mut sink = EmailSink::new(&output(port, SmtpTls::None), &env).unwrap();
    let error = sink.notify(&notification()).unwrap_err();
    assert!(error.permanent, "{}", error.reason);
    assert!(error.reason.contains("550") && error.reason.contains("security@example.org"), "{}", error.reason);
    assert_eq!(peer.records().len(), 1, "nothing delivered");
}

#[test]
fn a_deferred_recipient_is_transient() {
    let (peer, port) = server(&["--defer-rcpt", "security@example.org"]);
    let mut sink = EmailSink::new(&output(port, SmtpTls::None), &env).unwrap();
    let error = sink.notify(&notification()).unwrap_err();
    assert!(!error.permanent, "{}", error.reason);
    assert!(error.reason.contains("451"), "{}", error.reason);
    assert_eq!(peer.records().len(), 1, "nothing delivered");
}

#[test]
fn a_relay_that_is_down_is_transient() {
    let port = crate::support::free_port();
    let mut sink = EmailSink::new(&output(port, SmtpTls::Starttls), &env).unwrap();
    let error = sink.notify(&notification()).unwrap_err();
    assert!(!error.permanent, "{}", error.reason);
    assert!(error.reason.contains(&format!("localhost:{port}")), "{}", error.reason);
}

#[test]
fn a_silent_relay_times_out_transiently() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = output(listener.local_addr().unwrap().port(), SmtpTls::None);
    config.host = "127.0.0.1".to_string();
    config.timeout = auditwatch::detection::time::Duration(300);
    // Accepts, never greets.
    let holder = std::thread::spawn(move || listener.accept().map(|(stream, _)| stream));
    let error = EmailSink::new(&config, &env).unwrap().notify(&notification()).unwrap_err();
    assert!(!error.permanent, "{}", error.reason);
    assert!(error.reason.contains("no answer within 300ms"), "{}", error.reason);
    drop(holder.join());
}

#[test]
fn a_bad_ca_file_or_a_missing_password_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let garbage = crate::support::write_file(&dir.path().join("garbage.pem"), "not a certificate\n");
    let broken = crate::support::write_file(
        &dir.path().join("broken.pem"),
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    for path in [&missing, &garbage, &broken] {
        let mut config = output(25, SmtpTls::Starttls);
        config.ca_file = Some(path.clone());
        let error = EmailSink::new(&config, &env).unwrap_err();
        assert!(error.starts_with("ca_file ") && error.contains(&path.display().to_string()), "{error}");
    }
    let mut config = with_login(output(25, SmtpTls::Starttls));
    config.password = Some(SecretRef::Env { env: "UNSET_SMTP_PASSWORD".to_string() });
    let error = EmailSink::new(&config, &env).unwrap_err();
    assert!(error.starts_with("password: ") && error.contains("UNSET_SMTP_PASSWORD"), "{error}");
}

#[test]
fn the_demo_directory_gets_a_parseable_eml() {
    let dir = tempfile::tempdir().unwrap();
    let to = ["oncall@example.com".to_string()];
    let mut sink = EmailSink::to_directory(dir.path().to_path_buf(), "auditwatch@demo.example", &to).unwrap();
    sink.notify(&notification()).unwrap();
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().unwrap(), "eml");
    let raw = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(header(&raw, "From").unwrap(), "auditwatch@demo.example");
    assert_eq!(header(&raw, "To").unwrap(), "oncall@example.com");
    assert_eq!(header(&raw, "Subject").unwrap(), "[auditwatch] HIGH credential_misuse: ci-deploy (2 alerts)");
    assert!(header(&raw, "Message-ID").unwrap().ends_with("@demo.example>"));
    let content_type = header(&raw, "Content-Type").unwrap();
    assert_body(&content_type, &mime_parts(&raw, &content_type));

    let error = EmailSink::to_directory(dir.path().join("nope"), "auditwatch@demo.example", &to).unwrap_err();
    assert!(error.contains("nope"), "{error}");
}

/// The leaf parts of a one-level multipart message: (content type, decoded text).
fn mime_parts(raw: &str, content_type: &str) -> Vec<(String, String)> {
    let boundary = content_type.split("boundary=").nth(1).expect("a boundary").trim_matches('"');
    let body = raw.split_once("\r\n\r\n").unwrap().1;
    body.split(&format!("--{boundary}"))
        .skip(1)
        .filter(|part| !part.starts_with("--"))
        .map(|part| {
            let (head, content) = part.trim_start_matches("\r\n").split_once("\r\n\r\n").unwrap();
            let part_type = header(head, "Content-Type").unwrap();
            let text = match header(head, "Content-Transfer-Encoding").as_deref() {
                Some("quoted-printable") => quoted_printable(content),
                Some("base64") => {
                    use base64::Engine as _;
                    let compact: String = content.split_whitespace().collect();
                    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(compact).unwrap()).unwrap()
                }
                _ => content.to_string(),
            };
            (part_type.split(';').next().unwrap().to_string(), text)
        })
        .collect()
}

fn quoted_printable(encoded: &str) -> String {
    let bytes = encoded.replace("=\r\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}
