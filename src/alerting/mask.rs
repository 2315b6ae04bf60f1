//! Masking: an output read by people need not show a full source address, a full email
//! address or a whole credential id. The alert's `id` and its `evidence.sql` are left whole, so
//! a responder can still deduplicate and run the query that finds the events.

use std::net::IpAddr;

use serde_json::Value;

use crate::config::MaskedField;

/// Credential ids keep this many characters, enough to tell keys apart.
const CREDENTIAL_PREFIX: usize = 8;

/// Mask `fields` everywhere they occur in `alert` (the alert contract as JSON), except in
/// `id`, `evidence.sql` and `evidence.event_ids`.
pub fn mask(alert: &mut Value, fields: &[MaskedField]) {
    if fields.is_empty() {
        return;
    }
    // Known values first, so they are replaced wherever a summary quotes them.
    let mut replacements: Vec<(String, String)> = Vec::new();
    if fields.contains(&MaskedField::SourceIp) {
        if let Some(ip) = alert["source_ip"].as_str() {
            if let Some(masked) = mask_ip(ip) {
                replacements.push((ip.to_string(), masked));
            }
        }
    }
    if fields.contains(&MaskedField::CredentialId) {
        if let Some(id) = alert["credential_id"].as_str() {
            replacements.push((id.to_string(), mask_credential(id)));
        }
    }
    let (ips, emails) = (fields.contains(&MaskedField::SourceIp), fields.contains(&MaskedField::Email));
    // Set aside what must stay whole, and put it back after.
    const KEPT: [&str; 3] = ["/id", "/evidence/sql", "/evidence/event_ids"];
    let kept: Vec<Option<Value>> = KEPT.iter().map(|p| alert.pointer_mut(p).map(Value::take)).collect();
    walk(alert, &mut |s| {
        for (from, to) in &replacements {
            if s.contains(from.as_str()) {
                *s = s.replace(from.as_str(), to);
            }
        }
        if ips {
            *s = mask_words(s, mask_ip);
        }
        if emails {
            *s = mask_emails(s);
        }
    });
    for (pointer, value) in KEPT.iter().zip(kept) {
        if let (Some(slot), Some(value)) = (alert.pointer_mut(pointer), value) {
            *slot = value;
        }
    }
}

fn walk(v: &mut Value, f: &mut impl FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter_mut().for_each(|i| walk(i, f)),
        Value::Object(map) => map.values_mut().for_each(|i| walk(i, f)),
        _ => {}
    }
}

/// `203.0.113.7` → `203.0.113.0/24`; `2001:db8:1:2::5` → `2001:db8:1::/48`.
pub fn mask_ip(text: &str) -> Option<String> {
    match text.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Some(format!("{}.{}.{}.0/24", o[0], o[1], o[2]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2]))
        }
    }
}

/// `AKIAIOSFODNN7EXAMPLE` → `AKIAIOSF…`.
pub fn mask_credential(id: &str) -> String {
    if id.chars().count() <= CREDENTIAL_PREFIX {
        return id.to_string();
    }
    let prefix: String = id.chars().take(CREDENTIAL_PREFIX).collect();
    format!("{prefix}…")
}

/// Replace every whitespace-, comma- or quote-delimited word for which `f` gives a mask.
fn mask_words(text: &str, f: fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let core = word.trim_end_matches(['.', ':', ';', ')']);
        match f(core) {
            Some(masked) => {
                out.push_str(&masked);
                out.push_str(&word[core.len()..]);
            }
            None => out.push_str(word),
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_whitespace() || matches!(c, ',' | '"' | '\'' | '(' | '[' | ']' | '=') {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// `jane.doe@example.com` → `j***@example.com`, wherever an address occurs in `text`.
pub fn mask_emails(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    let local = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let domain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-');
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < chars.len() {
        if chars[i] == '@' {
            let mut start = i;
            while start > copied && local(chars[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < chars.len() && domain(chars[end]) {
                end += 1;
            }
            let host: String = chars[i + 1..end].iter().collect();
            let host = host.trim_end_matches('.');
            if start < i && host.contains('.') {
                out.extend(&chars[copied..start]);
                out.push(chars[start]);
                out.push_str("***@");
                out.push_str(host);
                copied = i + 1 + host.chars().count();
                i = copied;
                continue;
            }
        }
        i += 1;
    }
    out.extend(&chars[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_every_occurrence_but_keeps_id_and_sql() {
        let mut alert = json!({
            "id": "abc",
            "account": "deploy-bot@example.com",
            "source_ip": "203.0.113.7",
            "credential_id": "AKIAIOSFODNN7EXAMPLE",
            "summary": "deploy-bot@example.com used AKIAIOSFODNN7EXAMPLE from 203.0.113.7, and 198.51.100.9.",
            "evidence": {
                "sql": "SELECT * FROM events WHERE account = 'deploy-bot@example.com' AND source_ip = '203.0.113.7'",
                "event_ids": ["e-203.0.113.7"],
                "new": ["network 203.0.113.0/24", "2001:db8:1:2::5"]
            }
        });
        let sql = alert["evidence"]["sql"].clone();
        mask(&mut alert, &[MaskedField::SourceIp, MaskedField::Email, MaskedField::CredentialId]);
        assert_eq!(alert["id"], "abc");
        assert_eq!(alert["evidence"]["sql"], sql);
        assert_eq!(alert["evidence"]["event_ids"], json!(["e-203.0.113.7"]));
        assert_eq!(alert["account"], "d***@example.com");
        assert_eq!(alert["source_ip"], "203.0.113.0/24");
        assert_eq!(alert["credential_id"], "AKIAIOSF…");
        assert_eq!(alert["summary"], "d***@example.com used AKIAIOSF… from 203.0.113.0/24, and 198.51.100.0/24.");
        assert_eq!(alert["evidence"]["new"], json!(["network 203.0.113.0/24", "2001:db8:1::/48"]));
        let mut rest = alert.clone();
        rest["evidence"]["sql"].take();
        rest["evidence"]["event_ids"].take();
        let text = rest.to_string();
        assert!(!text.contains("203.0.113.7") && !text.contains("deploy-bot") && !text.contains("EXAMPLE"), "{text}");
    }

    #[test]
    fn no_fields_changes_nothing() {
        let original = json!({"id": "a", "source_ip": "10.1.2.3", "account": "a@b.com"});
        let mut alert = original.clone();
        mask(&mut alert, &[]);
        assert_eq!(alert, original);
    }

    #[test]
    fn email_scanner_leaves_non_addresses_alone() {
        assert_eq!(mask_emails("user@localhost and @here"), "user@localhost and @here");
        assert_eq!(mask_emails("to a.b@x.org."), "to a***@x.org.");
        assert_eq!(mask_emails("two: x@y.io, zz@q.co"), "two: x***@y.io, z***@q.co");
    }
}
