//! The retention limit: whole day partitions (`<table>/dt=YYYY-MM-DD/`) older than the limit
//! are deleted, at start and then at most once an hour from the writer thread. A day is kept
//! while any of it is inside the limit, so nothing younger than the limit is ever deleted.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{naming, Table};

const DAY: Duration = Duration::from_secs(86_400);

/// Delete the day partitions of every table whose whole day ended more than `keep` before
/// `now`; the deleted directories, each logged.
pub fn expire(dir: &Path, now: SystemTime, keep: Duration) -> std::io::Result<Vec<PathBuf>> {
    let cutoff = now.checked_sub(keep).unwrap_or(UNIX_EPOCH).duration_since(UNIX_EPOCH).unwrap_or_default();
    // The first day that still has an instant at or after the cutoff.
    let first_kept = (cutoff.as_secs() / DAY.as_secs()) as i64;
    let mut deleted = Vec::new();
    for table in Table::ALL {
        for day_dir in naming::day_dirs(&dir.join(table.dir_name()))? {
            let Some(day) = day_dir.file_name().and_then(|n| naming::parse_day_dir(&n.to_string_lossy())) else {
                continue;
            };
            if day < first_kept {
                std::fs::remove_dir_all(&day_dir)?;
                tracing::info!(partition = %day_dir.display(), "retention: deleted a day partition past the limit");
                deleted.push(day_dir);
            }
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_days_past_the_limit_go() {
        let dir = tempfile::tempdir().unwrap();
        let days = ["dt=2026-08-01", "dt=2026-08-30", "dt=2026-08-31", "dt=2026-09-01", "dt=2026-11-30"];
        for table in ["events", "alerts", "dead_letters"] {
            for day in days {
                let partition = dir.path().join(table).join(day);
                std::fs::create_dir_all(&partition).unwrap();
                std::fs::write(partition.join("f.parquet"), b"x").unwrap();
            }
        }
        std::fs::create_dir_all(dir.path().join("events/not-a-day")).unwrap();
        // 2026-11-30T12:00Z less 91 days is 2026-08-31T12:00Z: that day is partly inside.
        let now = UNIX_EPOCH + Duration::from_secs(1_796_040_000);
        let deleted = expire(dir.path(), now, 91 * DAY).unwrap();
        assert_eq!(deleted.len(), 6, "{deleted:?}");
        for table in ["events", "alerts", "dead_letters"] {
            let mut left: Vec<String> = std::fs::read_dir(dir.path().join(table))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("dt="))
                .collect();
            left.sort();
            assert_eq!(left, ["dt=2026-08-31", "dt=2026-09-01", "dt=2026-11-30"], "{table}");
        }
        assert!(dir.path().join("events/not-a-day").is_dir());
        assert!(expire(dir.path(), now, 91 * DAY).unwrap().is_empty(), "a second pass deletes nothing");
    }
}
