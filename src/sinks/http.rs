//! The HTTP client shared by the webhook, Slack and PagerDuty sinks, and what an answer means
//! for delivery.
//!
//! One blocking client per sink (the sink's worker thread is the only caller), with the
//! output's timeout for connecting and for the whole exchange, rustls, and a redirect policy
//! that only follows a method-preserving redirect (307, 308) to the same host without leaving
//! https: a receiver cannot bounce signed alerts or a routing key elsewhere, and a POST is
//! never silently turned into a GET that "succeeds".
//!
//! Answers: 2xx is delivered; 408, 429 and 5xx are outages, retried, honouring `Retry-After`;
//! any other status means the receiver refuses this message for good (the worker
//! dead-letters it); network errors and timeouts are retried. Reasons never hold a URL, since
//! a Slack webhook URL is itself a credential.

use std::io::Read;
use std::time::Duration;

use reqwest::blocking::{Client, Response};
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use reqwest::redirect::{Attempt, Policy};
use reqwest::Url;

use crate::sinks::DeliveryError;

/// Longest wait a `Retry-After` can ask for; a receiver saying "come back tomorrow" must not
/// park the sink for a day (the worker's backoff takes over after each attempt).
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// How much of a refusal's body goes into the reason.
const REASON_BODY_BYTES: usize = 200;

/// Redirects followed per request, at most.
const MAX_REDIRECTS: usize = 5;

/// Where one sink posts, and the client it posts with.
pub struct Endpoint {
    client: Client,
    url: Url,
}

impl Endpoint {
    /// A client for `url`, the value of config field `field`. Errors name the field but never
    /// quote the URL (it can be a secret).
    pub fn new(
        field: &str,
        url: &str,
        allow_http: bool,
        timeout: crate::detection::time::Duration,
    ) -> Result<Endpoint, String> {
        let url = Url::parse(url).map_err(|e| format!("`{field}` is not a URL: {e}"))?;
        match url.scheme() {
            "https" => {}
            "http" if allow_http => {}
            "http" => return Err(format!("`{field}` is plain http; use https, or set `allow_http = true`")),
            other => return Err(format!("`{field}` has scheme `{other}`; only https (and http when allowed) work")),
        }
        if url.host_str().is_none() {
            return Err(format!("`{field}` has no host"));
        }
        let timeout = Duration::from_millis(u64::try_from(timeout.0).unwrap_or(0).max(1));
        let client = Client::builder()
            .use_rustls_tls()
            .https_only(!allow_http)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(Policy::custom(same_host_redirect))
            .user_agent(concat!("auditwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for `{field}`: {}", error_text(e)))?;
        Ok(Endpoint { client, url })
    }

    /// POST `body` as JSON with `headers`; `Ok` on a 2xx answer. The error's `confirmed` is 0:
    /// batch senders set it.
    pub fn post_json(&self, body: Vec<u8>, headers: HeaderMap) -> Result<(), DeliveryError> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(headers)
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .map_err(|e| DeliveryError::transient(0, error_text(e)))?;
        judge(response)
    }
}

impl std::fmt::Debug for Endpoint {
    // Only the origin: a path or a query can carry a credential (Slack's URL does).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("origin", &self.url.origin().ascii_serialization()).finish()
    }
}

fn same_host_redirect(attempt: Attempt) -> reqwest::redirect::Action {
    let previous = attempt.previous();
    let Some(first) = previous.first() else { return attempt.stop() };
    let preserves_method = matches!(attempt.status().as_u16(), 307 | 308);
    let same_host = attempt.url().host_str() == first.host_str()
        && attempt.url().port_or_known_default() == first.port_or_known_default();
    let downgrade = previous.iter().any(|u| u.scheme() == "https") && attempt.url().scheme() != "https";
    if preserves_method && same_host && !downgrade && previous.len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        // The 3xx itself comes back and is judged a refusal.
        attempt.stop()
    }
}

/// At most `max` characters, with an ellipsis when cut (the APIs' field limits).
pub fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// What an answer means for delivery.
fn judge(response: Response) -> Result<(), DeliveryError> {
    let status = response.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(());
    }
    let retry_after =
        response.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut body = Vec::new();
    // A body that cannot be read only makes the reason shorter.
    let _ = response.take(REASON_BODY_BYTES as u64 * 4).read_to_end(&mut body);
    classify(status, retry_after.as_deref(), &body, chrono::Utc::now())
}

/// The outcome for an answer with `status` (the pure part of [`judge`]).
pub fn classify(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), DeliveryError> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let text = body_excerpt(body);
    let reason = if text.is_empty() { format!("HTTP {status}") } else { format!("HTTP {status}: {text}") };
    if status == 408 || status == 429 || (500..600).contains(&status) {
        let mut error = DeliveryError::transient(0, reason);
        error.retry_after = retry_after.and_then(|v| parse_retry_after(v, now));
        Err(error)
    } else if (300..400).contains(&status) {
        Err(DeliveryError::permanent(
            0,
            format!("{reason} (redirect not followed: only 307/308 to the same host over https are)"),
        ))
    } else {
        Err(DeliveryError::permanent(0, reason))
    }
}

/// The first bytes of a body as one line of text, cut at a character boundary.
fn body_excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(REASON_BODY_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = if end < text.len() { "..." } else { "" };
    format!("{}{cut}", text[..end].split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), capped at
/// [`MAX_RETRY_AFTER`]; a date in the past means no wait.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(seconds) = value.parse::<u64>() {
        Duration::from_secs(seconds)
    } else {
        let at = http_date(value)?;
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms recipients must
/// still accept (RFC 850 and asctime).
fn http_date(value: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDateTime, TimeZone, Utc};
    if let Ok(t) = chrono::DateTime::parse_from_rfc2822(value) {
        return Some(t.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|t| Utc.from_utc_datetime(&t))
}

/// A reqwest error as text, URL removed, with its causes (the useful part: "connection
/// refused", "certificate not valid", ...).
fn error_text(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    if timed_out && !text.contains("timed out") {
        text = format!("timed out: {text}");
    }
    text
}

/// `reason` with every occurrence of each secret replaced by `***`: a last guard in case a
/// library quotes what it was given.
pub fn redact(reason: String, secrets: &[&str]) -> String {
    secrets.iter().filter(|s| !s.is_empty()).fold(reason, |r, s| r.replace(s, "***"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z").unwrap().with_timezone(&chrono::Utc)
    }

    #[test]
    fn success_and_outages_and_refusals() {
        assert!(classify(200, None, b"ok", now()).is_ok());
        assert!(classify(202, None, b"", now()).is_ok());
        for status in [408, 429, 500, 502, 503, 504] {
            let e = classify(status, None, b"busy", now()).unwrap_err();
            assert!(!e.permanent, "{status} is an outage");
            assert_eq!(e.reason, format!("HTTP {status}: busy"));
        }
        for status in [400, 401, 403, 404, 410, 413, 422] {
            assert!(classify(status, None, b"", now()).unwrap_err().permanent, "{status} is a refusal");
        }
        let redirect = classify(302, None, b"", now()).unwrap_err();
        assert!(redirect.permanent && redirect.reason.starts_with("HTTP 302"), "{}", redirect.reason);
    }

    #[test]
    fn refusal_reason_holds_the_status_and_the_start_of_the_body() {
        let body = format!("{{\"error\": \"invalid_payload\"}}\n{}", "x".repeat(1000));
        let e = classify(400, None, body.as_bytes(), now()).unwrap_err();
        assert!(e.reason.starts_with("HTTP 400: {\"error\": \"invalid_payload\"} xxx"), "{}", e.reason);
        assert!(e.reason.len() < 220 && e.reason.ends_with("..."), "{}", e.reason);
        // A multi-byte character at the cut is not split.
        let e = classify(400, None, "é".repeat(150).as_bytes(), now()).unwrap_err();
        assert_eq!(e.reason, format!("HTTP 400: {}...", "é".repeat(100)));
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("86400", now()), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now()), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now()), Some(Duration::from_secs(60)));
        assert_eq!(parse_retry_after("Wed Oct 21 07:28:05 2015", now()), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now()), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now()), None);
        assert_eq!(parse_retry_after("-5", now()), None);
        let e = classify(429, Some("7"), b"", now()).unwrap_err();
        assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
        // Only outages carry a wait.
        assert_eq!(classify(400, Some("7"), b"", now()).unwrap_err().retry_after, None);
    }

    #[test]
    fn endpoint_checks_the_url_without_quoting_it() {
        let t = crate::detection::time::Duration(1000);
        let e = Endpoint::new("webhook_url", "http://hooks.example/T0/B0/sekrit", false, t).unwrap_err();
        assert!(e.contains("`webhook_url` is plain http") && !e.contains("sekrit"), "{e}");
        let e = Endpoint::new("url", "ftp://example.com/x", true, t).unwrap_err();
        assert!(e.contains("scheme `ftp`"), "{e}");
        let e = Endpoint::new("url", "not a url sekrit", false, t).unwrap_err();
        assert!(e.starts_with("`url` is not a URL") && !e.contains("sekrit"), "{e}");
        let endpoint = Endpoint::new("url", "https://hooks.example/T0/B0/sekrit?token=x", false, t).unwrap();
        let debug = format!("{endpoint:?}");
        assert!(debug.contains("https://hooks.example") && !debug.contains("sekrit"), "{debug}");
    }

    #[test]
    fn redact_replaces_every_secret() {
        assert_eq!(redact("a key1 b key2 key1".to_string(), &["key1", "key2", ""]), "a *** b *** ***");
    }
}
