//! Writing a store file so that no reader ever sees a part of one: the Parquet file is built
//! under a temporary name, fsynced, renamed into place, and its directory fsynced. Claims
//! remove the files an interrupted run left past the point a source resumes from.

use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::{naming, schema, Claim, Segment, Table};

/// Rows per row group: large enough for zstd and for readers to skip by statistics (small in
/// unit tests, so that they write files of several groups).
const ROW_GROUP_ROWS: usize = if cfg!(test) { 64 } else { 128 * 1024 };

/// Write a segment as its Parquet file; returns the file's path.
pub(super) fn write_segment(dir: &Path, segment: &Segment) -> io::Result<PathBuf> {
    let table = dir.join(segment.table.dir_name());
    let day = table.join(naming::day_dir(segment.day));
    let new_day = !day.exists();
    fs::create_dir_all(&day)?;
    if new_day {
        sync_dir(&table)?;
        sync_dir(dir)?;
    }
    let path = day.join(naming::file_name(&segment.source.name, segment.first, segment.last));
    // A batch per row group, so only one row group's columns are in memory at a time.
    let order = schema::row_order(segment);
    let schema = schema::of(segment.table);
    write_batches(&path, segment.table, schema, order.chunks(ROW_GROUP_ROWS).map(|rows| schema::batch(segment, rows)))?;
    Ok(path)
}

/// Write `batches` as the Parquet file `path` (in an existing day directory): under a
/// temporary name, fsynced, then renamed over whatever `path` held.
pub(super) fn write_batches(
    path: &Path,
    table: Table,
    schema: SchemaRef,
    batches: impl IntoIterator<Item = Result<RecordBatch, String>>,
) -> io::Result<()> {
    let (Some(day), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::other(format!("{} is not a file in a day directory", path.display())));
    };
    let temp = day.join(format!("{}{}", naming::TEMP_PREFIX, name.to_string_lossy()));
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_sorting_columns(schema::sorting(table));
    for &column in schema::distinct_columns(table) {
        props = props
            .set_column_dictionary_enabled(ColumnPath::from(column), false)
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::None);
    }
    let props = props.build();
    let written = (|| {
        let file = File::create(&temp)?;
        let mut writer = ArrowWriter::try_new(BufWriter::new(file), schema, Some(props)).map_err(io::Error::other)?;
        for batch in batches {
            writer.write(&batch.map_err(io::Error::other)?).map_err(io::Error::other)?;
        }
        let file =
            writer.into_inner().map_err(io::Error::other)?.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()
    })();
    if let Err(e) = written {
        // A batch that failed half-way leaves no temporary file behind (open removes them too).
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    fs::rename(&temp, path)?;
    sync_dir(day)
}

/// Remove every file of `claim.source` whose rows start at or after `claim.from`, in both
/// tables: they were written by an epoch that never committed (or by an earlier replay of the
/// input), and the rows are being written again.
pub(super) fn apply_claim(dir: &Path, claim: &Claim) -> io::Result<()> {
    for table in Table::ALL {
        for day in naming::day_dirs(&dir.join(table.dir_name()))? {
            let mut removed = false;
            for entry in fs::read_dir(&day)? {
                let entry = entry?;
                let name = entry.file_name();
                let stale = naming::parse(&name.to_string_lossy())
                    .is_some_and(|(source, first)| source == claim.source && first >= claim.from);
                if stale {
                    fs::remove_file(entry.path())?;
                    removed = true;
                }
            }
            if removed {
                sync_dir(&day)?;
            }
        }
    }
    Ok(())
}

/// Remove the temporary files a crash left behind.
pub(super) fn remove_temporaries(dir: &Path) -> io::Result<()> {
    for table in Table::ALL {
        for day in naming::day_dirs(&dir.join(table.dir_name()))? {
            for entry in fs::read_dir(&day)? {
                let entry = entry?;
                if entry.file_name().to_string_lossy().starts_with(naming::TEMP_PREFIX) {
                    fs::remove_file(entry.path())?;
                }
            }
        }
    }
    Ok(())
}

pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
