//! PLACEHOLDER: replaced by the real sink.

use crate::config::WebhookOutput;
use crate::state::outbox::Entry;
use crate::sinks::DeliveryError;

pub struct WebhookSink;

impl WebhookSink {
    pub fn new(_config: &WebhookOutput, _env: &dyn Fn(&str) -> Option<String>) -> Result<WebhookSink, String> {
        Err("not built yet".to_string())
    }

    pub fn deliver(&mut self, _entries: &[Entry]) -> Result<(), DeliveryError> {
        Err(DeliveryError::transient(0, "not built yet"))
    }
}
