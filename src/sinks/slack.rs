//! PLACEHOLDER: replaced by the real sink.

use crate::config::SlackOutput;
use crate::alerting::notification::Notification;
use crate::sinks::DeliveryError;

pub struct SlackSink;

impl SlackSink {
    pub fn new(_config: &SlackOutput, _env: &dyn Fn(&str) -> Option<String>) -> Result<SlackSink, String> {
        Err("not built yet".to_string())
    }

    pub fn notify(&mut self, _notification: &Notification) -> Result<(), DeliveryError> {
        Err(DeliveryError::transient(0, "not built yet"))
    }
}
