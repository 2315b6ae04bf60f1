//! PLACEHOLDER: the HTTP client shared by the webhook, Slack and PagerDuty sinks.
