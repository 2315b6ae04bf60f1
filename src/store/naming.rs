//! File names and places in the store. A file is named by the source coordinates of its rows
//! (`<source>-<first>-<last>.parquet`: a Kafka topic and partition, or an input file, then the
//! first and last offset or line), so writing the same rows again replaces the file instead of
//! adding a copy. Days are hive partitions: `<table>/dt=YYYY-MM-DD/`.

use std::path::{Path, PathBuf};

use crate::detection::time::Millis;

const DAY_MS: i64 = 86_400_000;
/// Prefix of a file being written; readers skip hidden files, and a crash leaves only these.
pub(super) const TEMP_PREFIX: &str = ".tmp-";
const EXTENSION: &str = ".parquet";

/// The day (days since the Unix epoch) an instant falls in, UTC.
pub(super) fn day_of(time: Millis) -> i64 {
    time.div_euclid(DAY_MS)
}

/// `dt=YYYY-MM-DD` of a day.
pub(super) fn day_dir(day: i64) -> String {
    let (year, month, day) = crate::detection::time::civil_from_days(day);
    format!("dt={year:04}-{month:02}-{day:02}")
}

/// The day of a `dt=YYYY-MM-DD` name; `None` for any other name.
pub(super) fn parse_day_dir(name: &str) -> Option<i64> {
    let date = name.strip_prefix("dt=")?;
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (year, month, day) = (parts.next()??, parts.next()??, parts.next()??);
    let days = crate::detection::time::days_from_civil(year as i64, month, day);
    (day_dir(days) == name).then_some(days)
}

/// The source part of the names of a Kafka partition's files.
pub(super) fn kafka_source(topic: &str, partition: i32) -> String {
    format!("{}-{partition}", sanitize(topic))
}

/// The source part of the names of an input file's files: its base name, readable, and a hash
/// of the name as given, so two inputs with one base name (`a/events.jsonl`, `b/events.jsonl`)
/// never replace each other's files.
pub(super) fn file_source(name: &str) -> String {
    let base = Path::new(name).file_name().map_or_else(|| name.into(), |b| b.to_string_lossy());
    format!("{}-{:08x}", sanitize(&base), xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as u32)
}

/// The file of the rows `first..=last` of `source`. Zero-padded, so names sort by position.
pub(super) fn file_name(source: &str, first: i64, last: i64) -> String {
    format!("{source}-{first:020}-{last:020}{EXTENSION}")
}

/// The source and first position of a store file's name; `None` for any other file.
pub(super) fn parse(name: &str) -> Option<(&str, i64)> {
    let stem = name.strip_suffix(EXTENSION)?;
    let mut parts = stem.rsplitn(3, '-');
    let (_last, first, source) = (parts.next()?, parts.next()?.parse().ok()?, parts.next()?);
    Some((source, first))
}

/// Names keep to `[A-Za-z0-9._-]`: safe on every file system and in a glob.
fn sanitize(text: &str) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' }).collect()
}

/// The day directories of a table, whatever their names.
pub(super) fn day_dirs(table: &Path) -> std::io::Result<Vec<PathBuf>> {
    match std::fs::read_dir(table) {
        Ok(entries) => {
            let mut dirs = Vec::new();
            for entry in entries {
                let entry = entry?;
                if entry.file_type()?.is_dir() {
                    dirs.push(entry.path());
                }
            }
            Ok(dirs)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        let t = crate::detection::time::parse_rfc3339("2026-01-19T23:59:59.999Z").unwrap();
        assert_eq!(day_dir(day_of(t)), "dt=2026-01-19");
        assert_eq!(day_dir(day_of(t + 1)), "dt=2026-01-20");
        assert_eq!(day_dir(day_of(-1)), "dt=1969-12-31");
    }

    #[test]
    fn names_round_trip_and_sort_by_position() {
        let source = kafka_source("audit.events", 3);
        let name = file_name(&source, 120, 4_000);
        assert_eq!(name, "audit.events-3-00000000000000000120-00000000000000004000.parquet");
        assert_eq!(parse(&name), Some(("audit.events-3", 120)));
        assert!(file_name(&source, 9, 9) < file_name(&source, 10, 10));
        assert_eq!(parse(".tmp-x.parquet"), None);
        assert_eq!(parse("notes.txt"), None);
    }

    #[test]
    fn input_files_are_named_by_base_name_and_a_hash_of_the_whole_name() {
        let (a, b) = (file_source("/data/a/events.jsonl"), file_source("/data/b/events.jsonl"));
        assert!(a.starts_with("events.jsonl-") && b.starts_with("events.jsonl-"));
        assert_ne!(a, b);
        assert_eq!(a, file_source("/data/a/events.jsonl"), "stable across runs");
        assert!(file_source("we ird/na me?.json").starts_with("na_me_.json-"));
        let name = file_name(&a, 1, 7);
        assert_eq!(parse(&name).map(|(s, f)| (s.to_string(), f)), Some((a, 1)));
    }
}
