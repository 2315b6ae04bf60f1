//! Alerts on standard output: the JSON contract, one per line, or a readable line for a person
//! at a terminal. Writes go through `write_all`, never `println!`, which panics when stdout is
//! closed; a closed stdout is a delivery failure like any other, retried by the worker.

use std::io::{self, Write};

use crate::config::StdoutFormat;
use crate::sinks::DeliveryError;
use crate::state::outbox::Entry;

pub struct StdoutSink {
    format: StdoutFormat,
}

impl StdoutSink {
    pub fn new(format: StdoutFormat) -> StdoutSink {
        StdoutSink { format }
    }

    pub fn deliver(&mut self, entries: &[Entry]) -> Result<(), DeliveryError> {
        let mut out = io::stdout().lock();
        for (i, entry) in entries.iter().enumerate() {
            let line = match self.format {
                StdoutFormat::Json => entry.body.clone(),
                StdoutFormat::Pretty => pretty(&entry.body).into_bytes(),
            };
            out.write_all(&line)
                .and_then(|()| out.write_all(b"\n"))
                .and_then(|()| out.flush())
                .map_err(|e| DeliveryError::transient(i, format!("writing to stdout: {e}")))?;
        }
        Ok(())
    }
}

/// One readable line: time, severity, category, detector, summary.
pub fn pretty(body: &[u8]) -> String {
    let alert: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let field = |name: &str| alert[name].as_str().unwrap_or("").to_string();
    format!(
        "{} [{:<8}] {:<17} {:<24} {}",
        field("time"),
        field("severity").to_uppercase(),
        field("category"),
        field("detector"),
        field("summary")
    )
}
