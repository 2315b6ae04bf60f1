//! PLACEHOLDER: replaced by the real sink.

use crate::config::EmailOutput;
use crate::alerting::notification::Notification;
use crate::sinks::DeliveryError;

pub struct EmailSink;

impl EmailSink {
    pub fn new(_config: &EmailOutput, _env: &dyn Fn(&str) -> Option<String>) -> Result<EmailSink, String> {
        Err("not built yet".to_string())
    }

    pub fn notify(&mut self, _notification: &Notification) -> Result<(), DeliveryError> {
        Err(DeliveryError::transient(0, "not built yet"))
    }
}
