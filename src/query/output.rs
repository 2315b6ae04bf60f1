//! A query's rows as an aligned table, CSV, JSON lines or Parquet.

use std::io::Write;

use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;

use super::Answer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns, for a terminal.
    Table,
    /// CSV with a header row.
    Csv,
    /// One JSON object per row.
    Json,
    /// A Parquet file (zstd), for another engine.
    Parquet,
}

impl OutputFormat {
    /// A table on a terminal, CSV when piped.
    pub fn default_for(terminal: bool) -> OutputFormat {
        if terminal {
            OutputFormat::Table
        } else {
            OutputFormat::Csv
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            OutputFormat::Table => "text/plain; charset=utf-8",
            OutputFormat::Csv => "text/csv; charset=utf-8",
            OutputFormat::Json => "application/x-ndjson",
            OutputFormat::Parquet => "application/vnd.apache.parquet",
        }
    }
}

pub fn write<W: Write + Send>(answer: &Answer, format: OutputFormat, out: W) -> Result<(), ArrowError> {
    match format {
        OutputFormat::Table => write_table(answer, out),
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new().with_header(true).build(out);
            if answer.batches.is_empty() {
                // The header alone: a script still learns the columns.
                writer.write(&arrow::array::RecordBatch::new_empty(answer.schema.clone()))?;
            }
            answer.batches.iter().try_for_each(|batch| writer.write(batch))
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            answer.batches.iter().try_for_each(|batch| writer.write(batch))?;
            writer.finish()
        }
        OutputFormat::Parquet => {
            let properties = parquet::file::properties::WriterProperties::builder()
                .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
                .build();
            let mut writer = ArrowWriter::try_new(out, answer.schema.clone(), Some(properties))
                .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            for batch in &answer.batches {
                writer.write(batch).map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            }
            writer.close().map(drop).map_err(|e| ArrowError::ExternalError(Box::new(e)))
        }
    }
}

fn write_table<W: Write>(answer: &Answer, mut out: W) -> Result<(), ArrowError> {
    let table = if answer.batches.is_empty() {
        arrow::util::pretty::pretty_format_batches(&[arrow::array::RecordBatch::new_empty(answer.schema.clone())])?
    } else {
        arrow::util::pretty::pretty_format_batches(&answer.batches)?
    };
    writeln!(out, "{table}")?;
    let rows = answer.rows();
    let more = if answer.truncated { " (more rows were left out at the row limit)" } else { "" };
    writeln!(out, "{rows} row{}{more}", if rows == 1 { "" } else { "s" })?;
    Ok(())
}
