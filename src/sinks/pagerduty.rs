//! PLACEHOLDER: replaced by the real sink.

use crate::config::PagerDutyOutput;
use crate::alerting::notification::Notification;
use crate::sinks::DeliveryError;

pub struct PagerDutySink;

impl PagerDutySink {
    pub fn new(_config: &PagerDutyOutput, _env: &dyn Fn(&str) -> Option<String>) -> Result<PagerDutySink, String> {
        Err("not built yet".to_string())
    }

    pub fn notify(&mut self, _notification: &Notification) -> Result<(), DeliveryError> {
        Err(DeliveryError::transient(0, "not built yet"))
    }
    pub fn sends_resolved(&self) -> bool {
        false
    }
}
