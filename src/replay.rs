//! `auditwatch replay`: run the engine over JSON-lines history, in order.
//!
//! Each line is one message in the chosen input format ([`Decoding`]: native, CloudTrail or
//! OCSF, see [`crate::input::formats`]). Alerts go out as JSON lines. A line that cannot be decoded (or arrives later than the
//! allowed lateness) goes to the dead-letter writer as one JSON object (the JSON-lines form of
//! [`crate::input::dead_letter`]) and the run goes on. Only I/O errors stop
//! a replay. Blank lines are skipped.

use std::io::{self, BufRead, Write};

use crate::detection::alert::Alert;
use crate::detection::engine::Engine;
use crate::input::dead_letter::{DeadLetter, Origin, Rejection};
use crate::input::event::DecodeError;
use crate::input::formats::{decode_as, InputFormat};

/// Lines longer than this are cut in the dead-letter copy (they are rejected anyway).
const MAX_RAW_COPY: usize = 64 << 20;

/// How lines are decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoding {
    /// The format of every line.
    pub format: InputFormat,
    /// Largest accepted line, in bytes.
    pub max_event_bytes: usize,
}

/// Counts for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplaySummary {
    pub lines: u64,
    pub events: u64,
    pub bad_lines: u64,
    pub bytes: u64,
}

/// Where bad lines go.
pub trait DeadLetterSink {
    fn reject(&mut self, file: &str, line: u64, raw: &[u8], error: &Rejection) -> io::Result<()>;
}

/// Dead letters as JSON lines (see [`DeadLetter::json`]).
pub struct JsonLinesDeadLetter<W: Write>(pub W);

impl<W: Write> DeadLetterSink for JsonLinesDeadLetter<W> {
    fn reject(&mut self, file: &str, line: u64, raw: &[u8], rejection: &Rejection) -> io::Result<()> {
        let dead = DeadLetter { rejection, origin: Origin::File { file, line }, raw };
        serde_json::to_writer(&mut self.0, &dead.json())?;
        self.0.write_all(b"\n")
    }
}

/// Drops bad lines after counting them (no `--dead-letter` given).
pub struct CountOnly;

impl DeadLetterSink for CountOnly {
    fn reject(&mut self, _: &str, _: u64, _: &[u8], _: &Rejection) -> io::Result<()> {
        Ok(())
    }
}

/// Replays one input. `on_alert` receives each alert as it fires; `on_progress` the bytes read.
pub fn replay_reader(
    engine: &mut Engine,
    name: &str,
    input: &mut dyn BufRead,
    decoding: Decoding,
    dead_letter: &mut dyn DeadLetterSink,
    on_alert: &mut dyn FnMut(Alert) -> io::Result<()>,
    on_progress: &mut dyn FnMut(u64),
) -> io::Result<ReplaySummary> {
    let mut summary = ReplaySummary::default();
    let mut line = Vec::with_capacity(1024);
    let mut alerts = Vec::new();
    loop {
        line.clear();
        let read = read_line_bounded(input, &mut line, MAX_RAW_COPY)?;
        if read == 0 {
            break;
        }
        summary.lines += 1;
        summary.bytes += read as u64;
        if summary.lines % 4096 == 0 {
            on_progress(summary.bytes);
        }
        let mut raw = line.as_slice();
        while let [rest @ .., b'\n' | b'\r'] = raw {
            raw = rest;
        }
        if raw.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // A line cut at MAX_RAW_COPY is judged by its real length.
        let outcome = if read > MAX_RAW_COPY {
            Err(Rejection::Decode(DecodeError::too_large(read, decoding.max_event_bytes)))
        } else {
            match decode_as(decoding.format, raw, decoding.max_event_bytes) {
                Ok(event) => engine.process(&event, &mut alerts).map_err(Rejection::Late),
                Err(e) => Err(Rejection::Decode(e)),
            }
        };
        match outcome {
            Ok(()) => summary.events += 1,
            Err(rejection) => {
                summary.bad_lines += 1;
                dead_letter.reject(name, summary.lines, raw, &rejection)?;
            }
        }
        for alert in alerts.drain(..) {
            on_alert(alert)?;
        }
    }
    on_progress(summary.bytes);
    Ok(summary)
}

/// Read through the next newline, keeping at most `max` bytes; returns the bytes consumed.
fn read_line_bounded(input: &mut dyn BufRead, out: &mut Vec<u8>, max: usize) -> io::Result<usize> {
    let mut consumed = 0;
    loop {
        let (done, used) = {
            let buf = match input.fill_buf() {
                Ok(buf) => buf,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(consumed);
            }
            let (done, used) = match memchr(b'\n', buf) {
                Some(i) => (true, i + 1),
                None => (false, buf.len()),
            };
            let room = max.saturating_sub(out.len());
            out.extend_from_slice(&buf[..used.min(room)]);
            (done, used)
        };
        input.consume(used);
        consumed += used;
        if done {
            return Ok(consumed);
        }
    }
}

fn memchr(needle: u8, haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pretty-printed fixture as one line.
    fn line(pretty: &str) -> String {
        serde_json::from_str::<serde_json::Value>(pretty).expect("fixture is JSON").to_string()
    }

    #[test]
    fn replays_cloudtrail_lines_in_the_chosen_format() {
        let late_use = line(include_str!("../tests/fixtures/cloudtrail/iam-user-get-object.json"))
            .replace("2026-01-19T03:12:45Z", "2026-01-19T12:00:00Z");
        let input = format!(
            "{}\n{{\"Records\": []}}\n{}\n\n{late_use}\n",
            line(include_str!("../tests/fixtures/cloudtrail/create-access-key.json")),
            line(include_str!("../tests/fixtures/cloudtrail/delete-access-key.json")),
        );
        let mut engine = Engine::new(crate::detection::pack::load().expect("built-in pack"), Default::default());
        let mut dead = JsonLinesDeadLetter(Vec::new());
        let mut alerts = Vec::new();
        let summary = replay_reader(
            &mut engine,
            "trail.jsonl",
            &mut io::Cursor::new(input.as_bytes()),
            Decoding { format: InputFormat::Cloudtrail, max_event_bytes: 1 << 20 },
            &mut dead,
            &mut |alert| {
                alerts.push(alert);
                Ok(())
            },
            &mut |_| {},
        )
        .expect("no I/O error");
        assert_eq!((summary.lines, summary.events, summary.bad_lines), (5, 3, 1));
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, ["revoked-key-use"]);
        let entry: serde_json::Value = serde_json::from_slice(&dead.0).expect("one JSON line");
        assert_eq!((entry["kind"].as_str(), entry["field"].as_str()), (Some("invalid_field"), Some("Records")));
        assert_eq!(entry["source"]["line"], 2);
    }

    #[test]
    fn bounded_lines() {
        let mut input = io::Cursor::new(b"abc\ndefgh\n\nxy".to_vec());
        let mut out = Vec::new();
        assert_eq!(read_line_bounded(&mut input, &mut out, 2).unwrap(), 4);
        assert_eq!(out, b"ab");
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 6);
        assert_eq!(out, b"defgh\n");
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 1);
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 2);
        assert_eq!(out, b"xy");
        out.clear();
        assert_eq!(read_line_bounded(&mut input, &mut out, 100).unwrap(), 0);
    }
}
