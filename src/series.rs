//! `auditwatch series`: a `timestamp,value` CSV in, `timestamp,value,anomaly_score` out, each
//! row scored by [`crate::detection::series::SeriesModel`].
//!
//! Input: a header row naming `timestamp` and `value` (in that order, as the Numenta Anomaly
//! Benchmark's data files do), then one row per line. Timestamps are `2014-04-01 00:00:00`
//! (taken as UTC) or RFC 3339, in time order; values are non-negative numbers. The first bad
//! row stops the run with an error naming its line and field. Output echoes each row's
//! timestamp and value as written, with the score (6 decimals) added: the form NAB's scorer reads.

use std::io::{BufRead, Write};

use crate::detection::series::SeriesModel;
use crate::detection::time::{self, Millis};

#[derive(Debug, thiserror::Error)]
pub enum SeriesError {
    #[error("line 1: the header must be `timestamp,value`, found {0:?}")]
    Header(String),
    #[error("line {line}: {field}: {message}")]
    Row { line: usize, field: &'static str, message: String },
    #[error("the input has a header but no rows")]
    Empty,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Rows scored.
#[derive(Debug, PartialEq, Eq)]
pub struct SeriesSummary {
    pub rows: usize,
}

/// Score every row of `input` and write the scored rows to `output`.
pub fn score_csv(input: impl BufRead, mut output: impl Write) -> Result<SeriesSummary, SeriesError> {
    let mut lines = input.lines();
    let header = lines.next().transpose()?.unwrap_or_default();
    let names: Vec<String> = header.split(',').map(|f| unquote(f).to_ascii_lowercase()).collect();
    if names != ["timestamp", "value"] {
        return Err(SeriesError::Header(header));
    }
    writeln!(output, "timestamp,value,anomaly_score")?;
    let mut model = SeriesModel::default();
    let mut previous: Option<Millis> = None;
    let mut rows = 0;
    for (index, line) in lines.enumerate() {
        let line_number = index + 2;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |field, message: String| SeriesError::Row { line: line_number, field, message };
        let mut fields = line.split(',').map(unquote);
        let (Some(stamp), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad("row", format!("expected 2 fields (timestamp,value), found {:?}", line)));
        };
        let t = parse_timestamp(stamp).map_err(|why| bad("timestamp", format!("{stamp:?}: {why}")))?;
        if previous.is_some_and(|p| t < p) {
            return Err(bad(
                "timestamp",
                format!("{stamp:?} is earlier than the row before: rows must be in time order"),
            ));
        }
        let number: f64 = value.parse().map_err(|_| bad("value", format!("{value:?} is not a number")))?;
        if !number.is_finite() || number < 0.0 {
            return Err(bad("value", format!("{value:?}: must be a finite number ≥ 0 (the model is on a log scale)")));
        }
        let score = model.score(t, number);
        writeln!(output, "{stamp},{value},{score:.6}")?;
        previous = Some(t);
        rows += 1;
    }
    output.flush()?;
    if rows == 0 {
        return Err(SeriesError::Empty);
    }
    Ok(SeriesSummary { rows })
}

fn unquote(field: &str) -> &str {
    let field = field.trim();
    field.strip_prefix('"').and_then(|f| f.strip_suffix('"')).unwrap_or(field)
}

/// `2014-04-01 00:00:00` (UTC, NAB's form) or RFC 3339.
fn parse_timestamp(text: &str) -> Result<Millis, &'static str> {
    let b = text.as_bytes();
    if b.len() == 19 && b[10] == b' ' {
        return time::parse_rfc3339(&format!("{}T{}Z", &text[..10], &text[11..]));
    }
    time::parse_rfc3339(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str) -> Result<String, SeriesError> {
        let mut out = Vec::new();
        score_csv(input.as_bytes(), &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn echoes_rows_with_a_score() {
        let out = run("timestamp,value\n2014-04-01 00:00:00,20.5\n\"2014-04-01 00:05:00\",21\n").unwrap();
        assert_eq!(
            out,
            "timestamp,value,anomaly_score\n2014-04-01 00:00:00,20.5,0.000000\n2014-04-01 00:05:00,21,0.000000\n"
        );
    }

    #[test]
    fn bad_rows_name_their_line_and_field() {
        let error = |input: &str| run(input).unwrap_err().to_string();
        assert!(error("time,value\n").starts_with("line 1: the header"), "{}", error("time,value\n"));
        let e = error("timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n");
        assert!(e.starts_with("line 3: value: \"abc\" is not a number"), "{e}");
        let e = error("timestamp,value\n2014-04-01 25:00:00,1\n");
        assert!(e.starts_with("line 2: timestamp:"), "{e}");
        let e = error("timestamp,value\n2014-04-01 00:05:00,1\n2014-04-01 00:00:00,1\n");
        assert!(e.contains("line 3: timestamp:") && e.contains("time order"), "{e}");
        let e = error("timestamp,value\n2014-04-01 00:00:00,-1\n");
        assert!(e.starts_with("line 2: value:"), "{e}");
        let e = error("timestamp,value\n2014-04-01 00:00:00\n");
        assert!(e.starts_with("line 2: row: expected 2 fields"), "{e}");
        assert_eq!(error("timestamp,value\n"), "the input has a header but no rows");
    }

    #[test]
    fn timestamps_in_both_forms_agree() {
        assert_eq!(parse_timestamp("2014-04-01 10:30:00"), parse_timestamp("2014-04-01T10:30:00Z"));
        assert!(parse_timestamp("2014-04-01").is_err());
    }
}
