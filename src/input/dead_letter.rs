//! Dead letters: input that could not be used, with why and where it came from, and the
//! original bytes. One record for every path: `replay` writes it as a JSON line, the service
//! sends it (through its outbox) to the dead-letter topic, original bytes as the payload and
//! the rest in headers.
//!
//! JSON-lines form: `{"reason", "kind", "field", "source": {"file", "line"}, {"file", "index"}
//! (a record of a whole JSON document, from 0) or {"topic", "partition", "offset"}, "raw"}`, plus
//! `raw_base64` when the bytes are not UTF-8.
//! Kafka headers: `auditwatch.reason`, `auditwatch.kind`, `auditwatch.field`,
//! `auditwatch.source.topic`, `auditwatch.source.partition`, `auditwatch.source.offset`.

use base64::Engine as _;
use serde_json::json;

use crate::detection::engine::LateEvent;
use crate::input::event::DecodeError;

/// Why an input was rejected.
#[derive(Debug)]
pub enum Rejection {
    Decode(DecodeError),
    Late(LateEvent),
}

impl Rejection {
    pub fn reason(&self) -> String {
        match self {
            Rejection::Decode(e) => e.to_string(),
            Rejection::Late(e) => e.to_string(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::Decode(e) => e.kind.as_str(),
            Rejection::Late(_) => "late",
        }
    }

    /// The field at fault, when one is.
    pub fn field(&self) -> Option<&str> {
        match self {
            Rejection::Decode(e) => e.field.as_deref(),
            Rejection::Late(_) => Some("time"),
        }
    }
}

/// Where a rejected input came from.
#[derive(Clone, Copy, Debug)]
pub enum Origin<'a> {
    /// A line of a JSON-lines file (from 1).
    File {
        file: &'a str,
        line: u64,
    },
    /// A record of a whole JSON document (`Records[index]` or `[index]`, from 0).
    Record {
        file: &'a str,
        index: u64,
    },
    Kafka {
        topic: &'a str,
        partition: i32,
        offset: i64,
    },
}

/// One dead letter.
pub struct DeadLetter<'a> {
    pub rejection: &'a Rejection,
    pub origin: Origin<'a>,
    pub raw: &'a [u8],
}

impl DeadLetter<'_> {
    /// Stable id: the same input position gives the same id, so a replay after a restart does
    /// not send it twice.
    pub fn id(&self) -> String {
        match self.origin {
            Origin::File { file, line } => format!("{file}:{line}"),
            Origin::Record { file, index } => format!("{file}#{index}"),
            Origin::Kafka { topic, partition, offset } => format!("{topic}/{partition}/{offset}"),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        let source = match self.origin {
            Origin::File { file, line } => json!({"file": file, "line": line}),
            Origin::Record { file, index } => json!({"file": file, "index": index}),
            Origin::Kafka { topic, partition, offset } => {
                json!({"topic": topic, "partition": partition, "offset": offset})
            }
        };
        let mut entry = json!({
            "reason": self.rejection.reason(),
            "kind": self.rejection.kind(),
            "field": self.rejection.field(),
            "source": source,
            "raw": String::from_utf8_lossy(self.raw),
        });
        if std::str::from_utf8(self.raw).is_err() {
            entry["raw_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(self.raw));
        }
        entry
    }

    /// Kafka headers; the payload is the original bytes.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("auditwatch.reason", self.rejection.reason()),
            ("auditwatch.kind", self.rejection.kind().to_string()),
            ("auditwatch.field", self.rejection.field().unwrap_or_default().to_string()),
        ];
        match self.origin {
            Origin::File { file, line } => {
                headers.push(("auditwatch.source.file", file.to_string()));
                headers.push(("auditwatch.source.line", line.to_string()));
            }
            Origin::Record { file, index } => {
                headers.push(("auditwatch.source.file", file.to_string()));
                headers.push(("auditwatch.source.index", index.to_string()));
            }
            Origin::Kafka { topic, partition, offset } => {
                headers.push(("auditwatch.source.topic", topic.to_string()));
                headers.push(("auditwatch.source.partition", partition.to_string()));
                headers.push(("auditwatch.source.offset", offset.to_string()));
            }
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_a_document_names_its_index() {
        let rejection = Rejection::Decode(DecodeError::too_large(10, 5));
        let dead =
            DeadLetter { rejection: &rejection, origin: Origin::Record { file: "trail.json", index: 3 }, raw: b"{}" };
        let entry = dead.json();
        assert_eq!(entry["source"], json!({"file": "trail.json", "index": 3}));
        assert_eq!((entry["kind"].as_str(), entry["raw"].as_str()), (Some("too_large"), Some("{}")));
        assert_eq!(dead.id(), "trail.json#3");
        assert!(dead.headers().contains(&("auditwatch.source.index", "3".to_string())));
    }
}
