//! The body of a notification email, written once as blocks and rendered twice: plain text and
//! HTML (every value escaped: alerts carry account names, summaries and SQL taken from event
//! data). Both parts hold the same facts, so a reader of either misses nothing.

use serde_json::Value;

use crate::alerting::notification::{Notification, Status};

/// The subject: the notification's title on one line.
pub fn subject(notification: &Notification) -> String {
    notification.title().chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

enum Block {
    /// An alert's heading.
    Heading(String),
    /// A heading within an alert.
    Subheading(String),
    Paragraph(String),
    /// Label and value pairs.
    Facts(Vec<(String, String)>),
    List(Vec<String>),
    /// Shown verbatim (the investigation SQL).
    Code(String),
}

pub struct Body {
    title: String,
    blocks: Vec<Block>,
}

impl Body {
    pub fn of(n: &Notification) -> Body {
        let mut blocks = vec![Block::Paragraph(group_line(n))];
        let mut group = n.labels.clone();
        group.push(("route".to_string(), n.route.clone()));
        blocks.push(Block::Facts(group));
        let shown: Vec<&Value> = if n.alerts.is_empty() { vec![&n.latest] } else { n.alerts.iter().collect() };
        for alert in shown {
            alert_blocks(alert, &mut blocks);
        }
        Body { title: subject(n), blocks }
    }

    pub fn text(&self) -> String {
        let mut out = format!("{}\n", self.title);
        for block in &self.blocks {
            out.push('\n');
            match block {
                Block::Heading(h) => out.push_str(&format!("{h}\n{}\n", "=".repeat(h.chars().count()))),
                Block::Subheading(h) => out.push_str(&format!("{h}:\n")),
                Block::Paragraph(p) => out.push_str(&format!("{p}\n")),
                Block::Facts(facts) => {
                    let width = facts.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
                    for (k, v) in facts {
                        out.push_str(&format!("  {k:width$}  {v}\n"));
                    }
                }
                Block::List(items) => items.iter().for_each(|i| out.push_str(&format!("  - {i}\n"))),
                Block::Code(code) => code.lines().for_each(|l| out.push_str(&format!("    {l}\n"))),
            }
        }
        out
    }

    pub fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{0}</title></head>\n\
             <body style=\"font-family: sans-serif\">\n<h1 style=\"font-size: 1.2em\">{0}</h1>\n",
            escape(&self.title)
        );
        for block in &self.blocks {
            match block {
                Block::Heading(h) => out.push_str(&format!("<h2 style=\"font-size: 1.1em\">{}</h2>\n", escape(h))),
                Block::Subheading(h) => out.push_str(&format!("<h3 style=\"font-size: 1em\">{}</h3>\n", escape(h))),
                Block::Paragraph(p) => out.push_str(&format!("<p>{}</p>\n", escape(p))),
                Block::Facts(facts) => {
                    out.push_str("<table>\n");
                    for (k, v) in facts {
                        out.push_str(&format!(
                            "<tr><th style=\"text-align: left; padding-right: 1em\">{}</th><td>{}</td></tr>\n",
                            escape(k),
                            escape(v)
                        ));
                    }
                    out.push_str("</table>\n");
                }
                Block::List(items) => {
                    out.push_str("<ul>\n");
                    items.iter().for_each(|i| out.push_str(&format!("<li>{}</li>\n", escape(i))));
                    out.push_str("</ul>\n");
                }
                Block::Code(code) => out.push_str(&format!("<pre><code>{}</code></pre>\n", escape(code))),
            }
        }
        out.push_str("</body></html>\n");
        out
    }
}

/// "2 new alerts, 5 in this group", or what a reminder or resolution says instead.
fn group_line(n: &Notification) -> String {
    let plural = |count: u64, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    match n.status {
        Status::Resolved => {
            format!(
                "Resolved: no new alert for a while, {} in this group. The latest:",
                plural(n.total_alerts, "alert")
            )
        }
        Status::Firing if n.alerts.is_empty() => {
            format!("Still open: no new alerts, {} in this group. The latest:", plural(n.total_alerts, "alert"))
        }
        Status::Firing => {
            let mut line = format!("{}, {} in this group.", plural(n.new_alerts, "new alert"), n.total_alerts);
            if (n.alerts.len() as u64) < n.new_alerts {
                line.push_str(&format!(" The newest {} are below.", n.alerts.len()));
            }
            line
        }
    }
}

fn alert_blocks(alert: &Value, blocks: &mut Vec<Block>) {
    let field = |key: &str| plain(&alert[key]);
    let evidence = &alert["evidence"];
    blocks.push(Block::Heading(format!(
        "{} {}: {}",
        field("severity").to_ascii_uppercase(),
        field("detector"),
        field("account")
    )));
    blocks.push(Block::Paragraph(field("summary")));
    let mut facts = vec![
        (
            "Observed".to_string(),
            format!("{} (expected {}, score {})", field("observed"), field("expected"), field("score")),
        ),
        ("Window".to_string(), format!("{} – {}", field("window_start"), field("window_end"))),
        ("Time".to_string(), field("time")),
        ("Category".to_string(), field("category")),
    ];
    for (label, key) in [("Tenant", "tenant"), ("Credential", "credential_id"), ("Source IP", "source_ip")] {
        if !alert[key].is_null() {
            facts.push((label.to_string(), field(key)));
        }
    }
    facts.push(("Alert id".to_string(), field("id")));
    blocks.push(Block::Facts(facts));

    blocks.push(Block::Subheading("Evidence".to_string()));
    let mut evidence_facts = vec![("Events".to_string(), joined(&evidence["event_ids"]))];
    if let Some(baseline) = evidence["baseline"].as_object() {
        evidence_facts.extend(baseline.iter().map(|(k, v)| (format!("Baseline {k}"), plain(v))));
    }
    blocks.push(Block::Facts(evidence_facts));
    if let Some(new) = evidence["new"].as_array().filter(|n| !n.is_empty()) {
        blocks.push(Block::Subheading("New".to_string()));
        blocks.push(Block::List(new.iter().map(plain).collect()));
    }
    blocks.push(Block::Subheading("Runbook".to_string()));
    blocks.push(Block::Paragraph(plain(&evidence["runbook"])));
    blocks.push(Block::Subheading("Investigate (auditwatch query)".to_string()));
    blocks.push(Block::Code(plain(&evidence["sql"])));
}

/// A JSON value as a reader wants it: strings bare, arrays comma-separated, nothing for null.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(_) => joined(value),
        other => other.to_string(),
    }
}

fn joined(value: &Value) -> String {
    value.as_array().map(|items| items.iter().map(plain).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn notification(alerts: Vec<Value>, status: Status) -> Notification {
        Notification {
            id: "g1-1".into(),
            group_key: "g1".into(),
            route: "default".into(),
            status,
            sequence: 1,
            labels: vec![("account".into(), "<script>alert(1)</script>".into())],
            new_alerts: alerts.len() as u64,
            total_alerts: 3,
            latest: json!({"summary": "latest one", "severity": "low", "evidence": {"sql": "SELECT 2"}}),
            alerts,
        }
    }

    fn alert() -> Value {
        json!({
            "id": "a1", "detector": "new_network", "category": "credential_misuse", "severity": "high",
            "account": "ci-<deploy>", "time": "2024-01-02T03:04:05Z",
            "window_start": "2024-01-02T03:00:00Z", "window_end": "2024-01-02T03:05:00Z",
            "observed": 12.0, "expected": 1.5, "score": 4.2, "summary": "Used from \"new\" & odd network",
            "evidence": {
                "event_ids": ["e1", "e2"], "baseline": {"networks": 2}, "new": ["203.0.113.0/24"],
                "sql": "SELECT * FROM events WHERE account = 'ci-<deploy>'", "runbook": "Rotate the key."
            }
        })
    }

    #[test]
    fn html_escapes_every_value() {
        let body = Body::of(&notification(vec![alert()], Status::Firing));
        let html = body.html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("ci-&lt;deploy&gt;"));
        assert!(html.contains("Used from &quot;new&quot; &amp; odd network"));
        assert!(html.contains("account = &#39;ci-&lt;deploy&gt;&#39;"));
    }

    #[test]
    fn text_holds_the_facts_unescaped() {
        let text = Body::of(&notification(vec![alert()], Status::Firing)).text();
        for needle in [
            "1 new alert, 3 in this group.",
            "Used from \"new\" & odd network",
            "12.0 (expected 1.5, score 4.2)",
            "2024-01-02T03:00:00Z – 2024-01-02T03:05:00Z",
            "e1, e2",
            "Baseline networks  2",
            "- 203.0.113.0/24",
            "Rotate the key.",
            "    SELECT * FROM events WHERE account = 'ci-<deploy>'",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }

    #[test]
    fn a_reminder_shows_the_latest_alert() {
        let text = Body::of(&notification(vec![], Status::Firing)).text();
        assert!(text.contains("Still open: no new alerts, 3 alerts in this group."), "{text}");
        assert!(text.contains("latest one") && text.contains("SELECT 2"), "{text}");
        let resolved = Body::of(&notification(vec![], Status::Resolved)).text();
        assert!(resolved.starts_with("[auditwatch] LOW : ") && resolved.contains("Resolved:"), "{resolved}");
    }

    #[test]
    fn subject_is_one_line() {
        let mut n = notification(vec![alert()], Status::Firing);
        n.alerts[0]["account"] = json!("evil\r\nBcc: x@example.com");
        assert_eq!(subject(&n), "[auditwatch] HIGH credential_misuse: evil  Bcc: x@example.com");
    }
}
