//! Grouped notifications to a Slack incoming webhook, as a Block Kit message
//! (<https://api.slack.com/reference/block-kit/blocks>) with a plain `text` fallback for
//! notifications and clients that do not show blocks.
//!
//! The message: a header with the notification's title, then for each new alert (or the
//! latest, for a reminder) its severity, summary, observed against expected over the window,
//! the runbook and the investigation query in a code block. Slack answers 200 `ok`; other
//! answers are judged like any HTTP sink's. The webhook URL is a credential: it is resolved
//! from a secret reference and never appears in a reason or in `Debug`.

use serde_json::{json, Value};

use crate::alerting::notification::Notification;
use crate::config::{Secret, SlackOutput};
use crate::sinks::http::{cut, redact, Endpoint};
use crate::sinks::DeliveryError;

/// Alerts rendered in one message; Slack takes at most 50 blocks and each alert uses four.
const MAX_ALERTS_SHOWN: usize = 10;

/// Slack's limits: a header's text, a section's text.
const HEADER_CHARS: usize = 150;
const SECTION_CHARS: usize = 3000;

#[derive(Debug)]
pub struct SlackSink {
    endpoint: Endpoint,
    /// Kept only to scrub it from error reasons.
    url: Secret,
}

impl SlackSink {
    pub fn new(config: &SlackOutput, env: &dyn Fn(&str) -> Option<String>) -> Result<SlackSink, String> {
        let url = config.webhook_url.resolve(env).map_err(|e| format!("`webhook_url`: {e}"))?;
        let endpoint = Endpoint::new("webhook_url", url.expose(), config.allow_http, config.timeout)?;
        Ok(SlackSink { endpoint, url })
    }

    pub fn notify(&mut self, notification: &Notification) -> Result<(), DeliveryError> {
        // A JSON value always serializes.
        let body = serde_json::to_vec(&message(notification)).unwrap_or_default();
        self.endpoint.post_json(body, Default::default()).map_err(|mut e| {
            e.reason = redact(e.reason, &[self.url.expose()]);
            e
        })
    }
}

/// The Block Kit message for `n`.
pub fn message(n: &Notification) -> Value {
    let title = n.title();
    let shown: Vec<&Value> = if n.alerts.is_empty() { vec![&n.latest] } else { n.alerts.iter().collect() };
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": cut(&title, HEADER_CHARS), "emoji": false}
    })];
    for (i, alert) in shown.iter().take(MAX_ALERTS_SHOWN).enumerate() {
        if i > 0 {
            blocks.push(json!({"type": "divider"}));
        }
        blocks.extend(alert_blocks(alert));
    }
    let unshown = n.new_alerts.max(shown.len() as u64).saturating_sub(MAX_ALERTS_SHOWN.min(shown.len()) as u64);
    if unshown > 0 {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("and {unshown} more alerts in this group ({} in all)", n.total_alerts)}]
        }));
    }
    let headline = n.headline();
    json!({
        "text": format!("{title}\n{}", text(&headline["summary"])),
        "blocks": blocks,
    })
}

/// Severity, summary and numbers; runbook; query.
fn alert_blocks(a: &Value) -> Vec<Value> {
    let facts = format!(
        "*{}* · `{}` · {}\n{}\n*Observed* {} *vs expected* {} (window {} – {})",
        escape(&text(&a["severity"]).to_ascii_uppercase()),
        escape(&text(&a["detector"])),
        escape(&text(&a["account"])),
        escape(&text(&a["summary"])),
        text(&a["observed"]),
        text(&a["expected"]),
        escape(&text(&a["window_start"])),
        escape(&text(&a["window_end"])),
    );
    let runbook = format!("*Runbook:* {}", escape(&text(&a["evidence"]["runbook"])));
    // Inside a code block only the three HTML characters need escaping; backticks are cut so
    // the block cannot be closed early.
    let query = format!(
        "*Investigate* (`auditwatch query`):\n```{}```",
        cut(&escape(&text(&a["evidence"]["sql"]).replace("```", "'''")), SECTION_CHARS - 40)
    );
    [facts, runbook, query]
        .into_iter()
        .map(|t| json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&t, SECTION_CHARS)}}))
        .collect()
}

/// A field as text: strings as they are, numbers and others as JSON, absent as "".
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::notification::Status;
    use crate::config::SecretRef;

    fn alert(id: &str, severity: &str) -> Value {
        json!({
            "id": id, "detector": "failed_auth_burst", "category": "failed_auth", "severity": severity,
            "account": "ci-deploy", "time": "2024-05-01T10:00:00Z",
            "window_start": "2024-05-01T09:50:00Z", "window_end": "2024-05-01T10:00:00Z",
            "observed": 42.0, "expected": 3.5, "score": 9.1,
            "summary": "42 failed logins <from> 3 networks & more",
            "evidence": {"event_ids": ["e1"], "baseline": {}, "sql": "SELECT * FROM events WHERE account = 'ci-deploy'", "runbook": "Lock the account."}
        })
    }

    fn notification(alerts: Vec<Value>) -> Notification {
        Notification {
            id: "g1-1".to_string(),
            group_key: "g1".to_string(),
            route: "default".to_string(),
            status: Status::Firing,
            sequence: 1,
            labels: vec![("account".to_string(), "ci-deploy".to_string())],
            new_alerts: alerts.len() as u64,
            total_alerts: alerts.len() as u64,
            latest: alerts.last().cloned().unwrap_or(Value::Null),
            alerts,
        }
    }

    #[test]
    fn message_has_header_facts_runbook_and_query() {
        let m = message(&notification(vec![alert("a1", "low"), alert("a2", "high")]));
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "[auditwatch] HIGH failed_auth: ci-deploy (2 alerts)");
        // header, 3 sections, divider, 3 sections
        assert_eq!(blocks.len(), 8);
        let facts = blocks[1]["text"]["text"].as_str().unwrap();
        assert!(facts.starts_with("*LOW* · `failed_auth_burst` · ci-deploy\n"), "{facts}");
        assert!(facts.contains("42 failed logins &lt;from&gt; 3 networks &amp; more"), "{facts}");
        assert!(
            facts.contains("*Observed* 42.0 *vs expected* 3.5 (window 2024-05-01T09:50:00Z – 2024-05-01T10:00:00Z)"),
            "{facts}"
        );
        assert_eq!(blocks[2]["text"]["text"], "*Runbook:* Lock the account.");
        let query = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(query.ends_with("```SELECT * FROM events WHERE account = 'ci-deploy'```"), "{query}");
        assert_eq!(blocks[4]["type"], "divider");
        assert!(m["text"]
            .as_str()
            .unwrap()
            .starts_with("[auditwatch] HIGH failed_auth: ci-deploy (2 alerts)\n42 failed"));
    }

    #[test]
    fn long_groups_stay_within_slack_limits() {
        let mut n = notification((0..20).map(|i| alert(&format!("a{i}"), "medium")).collect());
        n.new_alerts = 35;
        n.total_alerts = 50;
        let m = message(&n);
        let blocks = m["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50, "{}", blocks.len());
        let last = blocks.last().unwrap();
        assert_eq!(last["elements"][0]["text"], "and 25 more alerts in this group (50 in all)");
        let mut big = alert("a", "critical");
        big["evidence"]["sql"] = json!("x".repeat(10_000));
        let m = message(&notification(vec![big]));
        for block in m["blocks"].as_array().unwrap() {
            assert!(block["text"]["text"].as_str().unwrap_or("").chars().count() <= SECTION_CHARS);
        }
    }

    #[test]
    fn reminder_shows_the_latest_alert() {
        let mut n = notification(vec![]);
        n.latest = alert("a9", "critical");
        n.new_alerts = 0;
        n.total_alerts = 4;
        let m = message(&n);
        assert_eq!(
            m["blocks"][0]["text"]["text"],
            "[auditwatch] CRITICAL failed_auth: ci-deploy still open (4 alerts)"
        );
        assert!(m["blocks"][1]["text"]["text"].as_str().unwrap().starts_with("*CRITICAL*"));
        assert_eq!(m["blocks"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn url_is_checked_and_never_shown() {
        let env = |_: &str| Some("http://hooks.slack.example/services/T0/B0/sekrit".to_string());
        let config = SlackOutput {
            name: None,
            mask: None,
            webhook_url: SecretRef::Env { env: "SLACK_URL".to_string() },
            timeout: crate::detection::time::Duration(1000),
            allow_http: false,
        };
        let e = SlackSink::new(&config, &env).unwrap_err();
        assert!(e.contains("`webhook_url` is plain http") && !e.contains("sekrit"), "{e}");
        let sink = SlackSink::new(&SlackOutput { allow_http: true, ..config }, &env).unwrap();
        let debug = format!("{sink:?}");
        assert!(!debug.contains("sekrit"), "{debug}");
    }
}
