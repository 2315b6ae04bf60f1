//! `auditwatch replay`: run the engine over audit-log files, in order.
//!
//! Each input is read in one of two forms, chosen from its first non-blank line
//! ([`crate::input::form`]), after gzip decompression when it starts with the gzip magic bytes
//! (`1f 8b`, as CloudTrail writes its log files to S3):
//! - **JSON lines**, streamed a line at a time: each line is one message in the chosen input
//!   format ([`Decoding`]: native, CloudTrail, OCSF, Okta or auto, see
//!   [`crate::input::formats`]).
//! - **A whole JSON document**, when the input is one JSON value that spans lines, or one line
//!   that is a JSON array or a CloudTrail log file (`{"Records": [...]}`): each element of the
//!   array or of `Records` is one message ([`crate::input::documents`]); any other document is
//!   one message (a pretty-printed record). A document is held in memory, up to
//!   [`MAX_DOCUMENT_BYTES`]; a larger one stops the replay with an error.
//!
//! Alerts go out as JSON lines. A line or record that cannot be decoded (or arrives later than
//! the allowed lateness) goes to the dead-letter writer as one JSON object (the JSON-lines form
//! of [`crate::input::dead_letter`], with its line, or its index in the document) and the run
//! goes on. Only I/O errors stop a replay. Blank lines are skipped.
//!
//! With a [`Store`], every event and dead letter is retained as well, named by input and line
//! (or record) range: a segment is written once it reaches the roll size, the rest at the end of
//! each input, so replaying an input again gives the same files and replaces them. A dead
//! letter without an event time is filed under the day of the replay.

use std::cell::Cell;
use std::io::{self, BufRead, Cursor, Read, Write};
use std::sync::Arc;

use crate::detection::alert::Alert;
use crate::detection::engine::Engine;
use crate::input::dead_letter::{DeadLetter, Origin, Rejection};
use crate::input::documents;
use crate::input::enrich::Enricher;
use crate::input::event::{AuditEvent, DecodeError};
use crate::input::form::{self, read_form, read_line_bounded, Blank, Counting, Form, MAX_RAW_COPY};
use crate::input::formats::{decode_as, InputFormat};
use crate::store::{SourceId, SourceKind, Store};

/// How lines are decoded.
#[derive(Clone, Copy, Debug)]
pub struct Decoding<'e> {
    /// The format of every line or record.
    pub format: InputFormat,
    /// Largest accepted line or record, in bytes.
    pub max_event_bytes: usize,
    /// IP enrichment, applied to each event right after it is decoded.
    pub enricher: Option<&'e Arc<Enricher>>,
}

/// Counts for the summary.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplaySummary {
    /// Lines read from JSON lines, blank ones included.
    pub lines: u64,
    /// Records read from whole documents.
    pub records: u64,
    /// Events the engine processed.
    pub events: u64,
    /// Events decoded, also those then rejected as late.
    pub decoded: u64,
    /// Lines and records rejected (dead letters).
    pub rejected: u64,
    /// Bytes read, after decompression.
    pub bytes: u64,
    /// The first rejection.
    pub first_problem: Option<Problem>,
}

/// One rejection, for the summary.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// `line 3` or `record 0`.
    pub at: String,
    pub kind: &'static str,
    pub reason: String,
}

impl ReplaySummary {
    /// The first problem, when the input had lines or records but not one decoded.
    pub fn nothing_decoded(&self) -> Option<&Problem> {
        self.first_problem.as_ref().filter(|_| self.decoded == 0)
    }

    pub fn add(&mut self, other: &ReplaySummary) {
        self.lines += other.lines;
        self.records += other.records;
        self.events += other.events;
        self.decoded += other.decoded;
        self.rejected += other.rejected;
        self.bytes += other.bytes;
        if self.first_problem.is_none() {
            self.first_problem.clone_from(&other.first_problem);
        }
    }
}

/// The message for an input of which no event could be decoded: the first problem and a hint.
pub fn no_event_message(name: &str, problem: &Problem, format: InputFormat) -> String {
    let hint = if problem.kind == "invalid_utf8" {
        "the bytes are not UTF-8 text: the input looks compressed or binary (gzip is read when it starts with \
         its magic bytes 1f 8b; other compressions are not)"
            .to_string()
    } else {
        let names: Vec<&str> = InputFormat::ALL.iter().map(|f| f.as_str()).collect();
        format!("is this the right --format? (read as `{format}`; the formats are {})", names.join(", "))
    };
    format!("no event decoded from {name}: first problem, at {}: {}; hint: {hint}", problem.at, problem.reason)
}

/// Where bad lines and records go.
pub trait DeadLetterSink {
    fn reject(&mut self, origin: Origin<'_>, raw: &[u8], error: &Rejection) -> io::Result<()>;
}

/// Dead letters as JSON lines (see [`DeadLetter::json`]).
pub struct JsonLinesDeadLetter<W: Write>(pub W);

impl<W: Write> DeadLetterSink for JsonLinesDeadLetter<W> {
    fn reject(&mut self, origin: Origin<'_>, raw: &[u8], rejection: &Rejection) -> io::Result<()> {
        let dead = DeadLetter { rejection, origin, raw };
        serde_json::to_writer(&mut self.0, &dead.json())?;
        self.0.write_all(b"\n")
    }
}

/// Drops bad lines after counting them (no `--dead-letter` given).
pub struct CountOnly;

impl DeadLetterSink for CountOnly {
    fn reject(&mut self, _: Origin<'_>, _: &[u8], _: &Rejection) -> io::Result<()> {
        Ok(())
    }
}

/// Replays one input, in whichever form it has (see the module docs). `on_alert` receives each
/// alert as it fires; `on_progress` the bytes read from `input` (before decompression); `store`
/// retains the events and dead letters.
#[allow(clippy::too_many_arguments)]
pub fn replay_reader(
    engine: &mut Engine,
    name: &str,
    input: &mut dyn BufRead,
    decoding: Decoding<'_>,
    dead_letter: &mut dyn DeadLetterSink,
    mut store: Option<&mut Store>,
    on_alert: &mut dyn FnMut(Alert) -> io::Result<()>,
    on_progress: &mut dyn FnMut(u64),
) -> io::Result<ReplaySummary> {
    let consumed = Cell::new(0);
    let mut plain = form::decompressed(Counting { inner: input, consumed: &consumed })?;
    let mut run = Run {
        engine,
        name,
        decoding,
        dead_letter,
        store: store.as_deref_mut().map(|store| (store, None)),
        on_alert,
        on_progress,
        consumed: &consumed,
        alerts: Vec::new(),
        summary: ReplaySummary::default(),
    };
    let mut blank = Blank::default();
    let form = read_form(&mut *plain, &mut blank)?;
    (run.summary.lines, run.summary.bytes) = (blank.lines, blank.bytes);
    match form {
        Form::Empty => {}
        Form::Document(doc) => run.document(&doc)?,
        Form::Lines(pending, rest) => run.lines(&mut Cursor::new(pending).chain(rest))?,
    }
    (run.on_progress)(consumed.get());
    let summary = run.summary;
    if let Some(store) = store {
        store.write_all()?;
    }
    Ok(summary)
}

/// One replay of one input: decodes each line or record and feeds the engine.
struct Run<'a> {
    engine: &'a mut Engine,
    name: &'a str,
    decoding: Decoding<'a>,
    dead_letter: &'a mut dyn DeadLetterSink,
    /// The store, and this input's id in it once it has one.
    store: Option<(&'a mut Store, Option<SourceId>)>,
    on_alert: &'a mut dyn FnMut(Alert) -> io::Result<()>,
    on_progress: &'a mut dyn FnMut(u64),
    consumed: &'a Cell<u64>,
    alerts: Vec<Alert>,
    summary: ReplaySummary,
}

impl Run<'_> {
    fn lines(&mut self, input: &mut dyn BufRead) -> io::Result<()> {
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            let read = read_line_bounded(input, &mut line, MAX_RAW_COPY)?;
            if read == 0 {
                return Ok(());
            }
            self.summary.lines += 1;
            self.summary.bytes += read as u64;
            if self.summary.lines.is_multiple_of(4096) {
                (self.on_progress)(self.consumed.get());
            }
            let mut raw = line.as_slice();
            while let [rest @ .., b'\n' | b'\r'] = raw {
                raw = rest;
            }
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            // A line cut at MAX_RAW_COPY is judged by its real length.
            let too_large = (read > MAX_RAW_COPY).then_some(read);
            self.one(raw, too_large, At::Line(self.summary.lines))?;
        }
    }

    fn document(&mut self, doc: &[u8]) -> io::Result<()> {
        self.summary.bytes += doc.len() as u64;
        for (index, range) in documents::records(doc).into_iter().enumerate() {
            self.summary.records += 1;
            if self.summary.records.is_multiple_of(4096) {
                (self.on_progress)(self.consumed.get());
            }
            self.one(doc.get(range).unwrap_or_default(), None, At::Index(index as u64))?;
        }
        Ok(())
    }

    fn one(&mut self, raw: &[u8], too_large: Option<usize>, at: At) -> io::Result<()> {
        let decoding = self.decoding;
        let mut kept = None;
        let outcome = match too_large {
            Some(len) => Err(Rejection::Decode(DecodeError::too_large(len, decoding.max_event_bytes))),
            None => match decode_as(decoding.format, raw, decoding.max_event_bytes) {
                Ok(mut event) => {
                    if let Some(enricher) = decoding.enricher {
                        enricher.enrich(&mut event);
                    }
                    self.summary.decoded += 1;
                    let outcome = self.engine.process(&event, &mut self.alerts).map_err(Rejection::Late);
                    kept = Some(event);
                    outcome
                }
                Err(e) => Err(Rejection::Decode(e)),
            },
        };
        self.retain(raw, at, kept.as_ref(), outcome.as_ref().err())?;
        match outcome {
            Ok(()) => self.summary.events += 1,
            Err(rejection) => {
                self.summary.rejected += 1;
                let file = self.name;
                let origin = match at {
                    At::Line(line) => Origin::File { file, line },
                    At::Index(index) => Origin::Record { file, index },
                };
                if self.summary.first_problem.is_none() {
                    let at = match at {
                        At::Line(line) => format!("line {line}"),
                        At::Index(index) => format!("record {index}"),
                    };
                    self.summary.first_problem =
                        Some(Problem { at, kind: rejection.kind(), reason: rejection.reason() });
                }
                self.dead_letter.reject(origin, raw, &rejection)?;
            }
        }
        for alert in self.alerts.drain(..) {
            if let (Some((store, Some(source))), At::Line(position) | At::Index(position)) = (&mut self.store, at) {
                store.alert(*source, position as i64, &alert);
            }
            (self.on_alert)(alert)?;
        }
        Ok(())
    }
}

impl Run<'_> {
    /// Keep the line or record in the store, if there is one; a full segment is written now.
    /// `kept`: the event the bytes decoded to, as the engine saw it.
    fn retain(
        &mut self,
        raw: &[u8],
        at: At,
        kept: Option<&AuditEvent<'_>>,
        rejection: Option<&Rejection>,
    ) -> io::Result<()> {
        let Some((store, source)) = &mut self.store else { return Ok(()) };
        let (position, records) = match at {
            At::Line(line) => (line as i64, false),
            At::Index(index) => (index as i64, true),
        };
        let source = *source.get_or_insert_with(|| {
            store.source(SourceKind::File { name: self.name.to_string(), records }, self.decoding.format)
        });
        match (rejection, kept) {
            (None, Some(event)) => store.event(source, position, event, raw),
            (Some(rejection), kept) => store.dead_letter(source, position, kept.map(|e| e.time), rejection, raw),
            (None, None) => {}
        }
        if store.has_sealed() {
            store.write_sealed()?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum At {
    Line(u64),
    Index(u64),
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
            Decoding { format: InputFormat::Cloudtrail, max_event_bytes: 1 << 20, enricher: None },
            &mut dead,
            None,
            &mut |alert| {
                alerts.push(alert);
                Ok(())
            },
            &mut |_| {},
        )
        .expect("no I/O error");
        assert_eq!((summary.lines, summary.events, summary.rejected), (5, 3, 1));
        let detectors: Vec<&str> = alerts.iter().map(|a| a.detector.as_str()).collect();
        assert_eq!(detectors, STORY_ALERTS);
        let entry: serde_json::Value = serde_json::from_slice(&dead.0).expect("one JSON line");
        assert_eq!((entry["kind"].as_str(), entry["field"].as_str()), (Some("invalid_field"), Some("Records")));
        assert_eq!(entry["source"]["line"], 2);
    }

    /// Replays `input` as CloudTrail; the summary, the dead letters, and the alerts' detectors.
    fn replay_cloudtrail(input: &[u8]) -> (ReplaySummary, Vec<serde_json::Value>, Vec<String>) {
        let mut engine = Engine::new(crate::detection::pack::load().expect("built-in pack"), Default::default());
        let mut dead = JsonLinesDeadLetter(Vec::new());
        let mut detectors = Vec::new();
        let summary = replay_reader(
            &mut engine,
            "trail",
            &mut io::Cursor::new(input),
            Decoding { format: InputFormat::Cloudtrail, max_event_bytes: 1 << 20, enricher: None },
            &mut dead,
            None,
            &mut |alert| {
                detectors.push(alert.detector.to_string());
                Ok(())
            },
            &mut |_| {},
        )
        .expect("no I/O error");
        let dead = dead.0.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        (summary, dead.map(|l| serde_json::from_slice(l).expect("a JSON line")).collect(), detectors)
    }

    fn fixture(name: &str) -> serde_json::Value {
        let path = format!("{}/tests/fixtures/cloudtrail/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_slice(&std::fs::read(path).expect("fixture")).expect("fixture is JSON")
    }

    /// What the story raises: an admin creating a key for another user, then the key's use
    /// after its deletion.
    const STORY_ALERTS: [&str; 2] = ["credential-for-other", "revoked-key-use"];

    /// Create (an admin, for another user), delete, then use a key: `credential-for-other`,
    /// `revoked-key-use`.
    fn revoked_key_story() -> Vec<serde_json::Value> {
        let mut late_use = fixture("iam-user-get-object.json");
        late_use["eventTime"] = "2026-01-19T12:00:00Z".into();
        vec![fixture("create-access-key.json"), fixture("delete-access-key.json"), late_use]
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(bytes).expect("in memory");
        encoder.finish().expect("in memory")
    }

    #[test]
    fn a_log_file_on_one_line_plain_or_gzip_is_its_records() {
        let file = serde_json::json!({ "Records": revoked_key_story() }).to_string();
        for input in [file.clone().into_bytes(), gzip(file.as_bytes()), gzip(format!("\n{file}\n\n").as_bytes())] {
            let (summary, dead, detectors) = replay_cloudtrail(&input);
            assert_eq!((summary.records, summary.events, summary.rejected), (3, 3, 0), "{dead:?}");
            assert_eq!(detectors, STORY_ALERTS);
        }
    }

    #[test]
    fn a_pretty_printed_log_file_an_array_and_a_record_are_documents() {
        let story = revoked_key_story();
        let pretty = serde_json::to_string_pretty(&serde_json::json!({ "Records": story })).expect("JSON");
        let array = serde_json::to_string_pretty(&story).expect("JSON");
        for input in [pretty, array] {
            let (summary, _, detectors) = replay_cloudtrail(input.as_bytes());
            assert_eq!((summary.records, summary.events, summary.rejected), (3, 3, 0));
            assert_eq!(detectors, STORY_ALERTS);
        }
        let one = serde_json::to_string_pretty(&story[0]).expect("JSON");
        let (summary, _, _) = replay_cloudtrail(one.as_bytes());
        assert_eq!((summary.records, summary.events, summary.lines), (1, 1, 0));
    }

    #[test]
    fn a_record_failing_inside_a_document_is_dead_lettered_with_its_index() {
        let mut story = revoked_key_story();
        story[1].as_object_mut().expect("an object").remove("eventTime");
        let file = serde_json::to_string_pretty(&serde_json::json!({ "Records": story })).expect("JSON");
        let (summary, dead, _) = replay_cloudtrail(file.as_bytes());
        assert_eq!((summary.records, summary.events, summary.rejected), (3, 2, 1));
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0]["source"], serde_json::json!({"file": "trail", "index": 1}));
        assert_eq!((dead[0]["kind"].as_str(), dead[0]["field"].as_str()), (Some("missing_field"), Some("eventTime")));
        let raw: serde_json::Value = serde_json::from_str(dead[0]["raw"].as_str().expect("raw text")).expect("JSON");
        assert_eq!(raw, story[1], "the record's own bytes");
        assert_eq!(summary.first_problem.map(|p| p.at), Some("record 1".to_string()));
    }

    #[test]
    fn json_lines_stay_lines_whatever_their_first_line() {
        let story = revoked_key_story();
        let lines: String = story.iter().map(|r| format!("{r}\n")).collect();
        // A first line that opens a value it does not close, and a first line of many records.
        let cut = format!("{{\"eventTime\": \"2026-01-19T03:00:00Z\",\n{lines}");
        let records_first = format!("{}\n{lines}", serde_json::json!({ "Records": [story[0]] }));
        for (input, rejected_line) in [(cut, 1), (records_first, 1), (format!("\n\n{lines}[1]\n"), 6)] {
            let (summary, dead, detectors) = replay_cloudtrail(input.as_bytes());
            assert_eq!((summary.records, summary.events, summary.rejected), (0, 3, 1), "{input}");
            assert_eq!(dead[0]["source"]["line"], rejected_line, "{input}");
            assert_eq!(detectors, STORY_ALERTS);
        }
    }

    #[test]
    fn an_input_of_which_nothing_decodes_names_its_first_problem_and_a_hint() {
        let (summary, _, _) = replay_cloudtrail(b"\n{\"eventVersion\": \"1.08\"}\nnot json\n");
        let problem = summary.nothing_decoded().expect("nothing decoded");
        assert_eq!((problem.at.as_str(), problem.kind), ("line 2", "missing_field"));
        let message = no_event_message("a.json", problem, InputFormat::Cloudtrail);
        assert!(message.starts_with("no event decoded from a.json: first problem, at line 2: field `"), "{message}");
        assert!(message.contains("hint: is this the right --format? (read as `cloudtrail`"), "{message}");
        let (summary, _, _) = replay_cloudtrail(b"\xff\xfe\x00binary\n");
        let problem = summary.nothing_decoded().expect("nothing decoded");
        assert!(no_event_message("b", problem, InputFormat::Native).contains("looks compressed or binary"));
        // Empty input, or one good event among bad ones, is no such problem.
        assert_eq!(replay_cloudtrail(b"").0.nothing_decoded(), None);
        assert_eq!(replay_cloudtrail(b"{\"Records\": []}").0.nothing_decoded(), None);
        let mixed = format!("not json\n{}\n", revoked_key_story()[0]);
        assert_eq!(replay_cloudtrail(mixed.as_bytes()).0.nothing_decoded(), None);
    }

    #[test]
    fn a_broken_gzip_stream_is_an_io_error() {
        let mut input = gzip(b"{}\n");
        input.truncate(input.len() / 2);
        let mut engine = Engine::new(Vec::new(), Default::default());
        let result = replay_reader(
            &mut engine,
            "x.gz",
            &mut io::Cursor::new(input),
            Decoding { format: InputFormat::Native, max_event_bytes: 1 << 20, enricher: None },
            &mut CountOnly,
            None,
            &mut |_| Ok(()),
            &mut |_| {},
        );
        assert!(result.is_err());
    }
}
