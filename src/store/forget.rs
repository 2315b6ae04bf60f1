//! Erasure of one account from the store (`auditwatch forget`). Every file that holds a trace
//! is rewritten without it, under a temporary name and renamed over the old one, so after a
//! crash each file is either the old one or the new one; running `forget` again finishes.
//!
//! The account's keys are those its events presented. Then:
//! - `events`: rows of the account, rows of its keys (another account presenting one too),
//!   rows naming it as a key's owner, and rows whose original document names it or a key (a
//!   `credential.create` for its key, say) are removed.
//! - `dead_letters`: rows whose raw bytes name it or a key are removed.
//! - `alerts`: the account's alerts and its keys' are removed; in other alerts (a spray's list of
//!   targets, a key's other user) its name and keys become `[forgotten]` in `summary` and
//!   `evidence`. Names are replaced wherever they occur, so a longer name containing them is
//!   redacted too: erasure errs on the side of removing.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch, StringArray};
use arrow::compute::filter_record_batch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{file, naming, Table};

pub const REDACTED: &str = "[forgotten]";

/// Who to forget: an account name, in one tenant or in all.
pub struct Subject<'a> {
    pub account: &'a str,
    pub tenant: Option<&'a str>,
}

#[derive(Debug, Default)]
pub struct StoreForgotten {
    pub events: usize,
    pub dead_letters: usize,
    pub alerts: usize,
    /// Other accounts' alerts whose summary or evidence named the account.
    pub alerts_redacted: usize,
    pub files_rewritten: usize,
    pub files_removed: usize,
    /// The keys the account used, from its events (their engine state goes too).
    pub keys: Vec<String>,
    /// The tenants its removed events were in (`""` for none).
    pub tenants: Vec<String>,
}

/// Remove the account from every file of the store.
pub fn forget(dir: &Path, who: &Subject<'_>) -> io::Result<StoreForgotten> {
    let mut out = StoreForgotten::default();
    // First the keys it used, so that their uses by others go too.
    for path in files(dir, Table::Events)? {
        let batch = read(&path)?;
        let (account, tenant, key) =
            (strings(&batch, "account"), strings(&batch, "tenant"), strings(&batch, "credential_id"));
        for i in 0..batch.num_rows() {
            if text(account, i) == Some(who.account) && who.tenant.is_none_or(|t| text(tenant, i).unwrap_or("") == t) {
                out.keys.extend(text(key, i).map(str::to_string));
                out.tenants.push(text(tenant, i).unwrap_or("").to_string());
            }
        }
    }
    for list in [&mut out.keys, &mut out.tenants] {
        list.sort();
        list.dedup();
    }
    let names: Vec<String> = std::iter::once(who.account.to_string()).chain(out.keys.iter().cloned()).collect();
    for table in Table::ALL {
        for path in files(dir, table)? {
            forget_in_file(&path, table, who, &names, &mut out)?;
        }
    }
    Ok(out)
}

/// The store files of a table, in name order.
fn files(dir: &Path, table: Table) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for day in naming::day_dirs(&dir.join(table.dir_name()))? {
        for entry in fs::read_dir(&day)? {
            let path = entry?.path();
            if naming::parse(&path.file_name().unwrap_or_default().to_string_lossy()).is_some() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn forget_in_file(
    path: &Path,
    table: Table,
    who: &Subject<'_>,
    names: &[String],
    out: &mut StoreForgotten,
) -> io::Result<()> {
    let batch = read(path)?;
    let (keep, redact) = judge(&batch, table, who, names);
    let removed = keep.iter().filter(|&&k| !k).count();
    if removed == 0 && redact == 0 {
        return Ok(());
    }
    match table {
        Table::Events => out.events += removed,
        Table::DeadLetters => out.dead_letters += removed,
        Table::Alerts => {
            out.alerts += removed;
            out.alerts_redacted += redact;
        }
    }
    let mut kept = filter_record_batch(&batch, &BooleanArray::from(keep)).map_err(io::Error::other)?;
    if redact > 0 {
        kept = redact_alerts(&kept, names)?;
    }
    if kept.num_rows() == 0 {
        fs::remove_file(path)?;
        if let Some(day) = path.parent() {
            file::sync_dir(day)?;
        }
        out.files_removed += 1;
    } else {
        file::write_batches(path, table, kept.schema(), [Ok(kept)])?;
        out.files_rewritten += 1;
    }
    Ok(())
}

fn read(path: &Path) -> io::Result<RecordBatch> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path)?).map_err(io::Error::other)?;
    let schema = builder.schema().clone();
    let batches: Vec<RecordBatch> =
        builder.build().map_err(io::Error::other)?.collect::<Result<_, _>>().map_err(io::Error::other)?;
    arrow::compute::concat_batches(&schema, &batches).map_err(io::Error::other)
}

fn strings<'b>(batch: &'b RecordBatch, column: &str) -> Option<&'b StringArray> {
    batch.column_by_name(column).map(|c| c.as_string::<i32>())
}

fn text(array: Option<&StringArray>, i: usize) -> Option<&str> {
    array.filter(|a| a.is_valid(i)).map(|a| a.value(i))
}

/// Which rows stay, and how many kept alerts name the account or its keys (`names`).
fn judge(batch: &RecordBatch, table: Table, who: &Subject<'_>, names: &[String]) -> (Vec<bool>, usize) {
    // As JSON strings, so that `svc-a` does not match inside `svc-ab`.
    let quoted: Vec<String> = names.iter().map(|n| serde_json::to_string(n).unwrap_or_default()).collect();
    let keys = &names[1..];
    let (account, tenant) = (strings(batch, "account"), strings(batch, "tenant"));
    let in_tenant = |i: usize| who.tenant.is_none_or(|t| text(tenant, i).unwrap_or("") == t);
    let key_of_account =
        |i: usize| text(strings(batch, "credential_id"), i).is_some_and(|k| keys.iter().any(|x| x == k));
    let mut redact = 0;
    let keep = (0..batch.num_rows())
        .map(|i| match table {
            Table::Events => {
                let own = text(account, i) == Some(who.account) && in_tenant(i);
                let owned = text(strings(batch, "credential_owner"), i) == Some(who.account);
                let named =
                    text(strings(batch, "raw"), i).is_some_and(|raw| quoted.iter().any(|q| raw.contains(q.as_str())));
                !(own || owned || named || key_of_account(i))
            }
            Table::DeadLetters => {
                let raw = batch.column_by_name("raw").map(|c| c.as_binary::<i32>());
                !raw.is_some_and(|raw| raw.is_valid(i) && quoted.iter().any(|q| contains(raw.value(i), q.as_bytes())))
            }
            Table::Alerts => {
                if (text(account, i) == Some(who.account) && in_tenant(i)) || key_of_account(i) {
                    return false;
                }
                let mentions = |column| {
                    text(strings(batch, column), i).is_some_and(|t| names.iter().any(|n| t.contains(n.as_str())))
                };
                redact += usize::from(mentions("summary") || mentions("evidence"));
                true
            }
        })
        .collect();
    (keep, redact)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The alerts with the account's name and keys replaced in `summary` and `evidence`.
fn redact_alerts(batch: &RecordBatch, names: &[String]) -> io::Result<RecordBatch> {
    let schema = batch.schema();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| match field.name().as_str() {
            "summary" | "evidence" => {
                let values = column.as_string::<i32>();
                let redacted = values.iter().map(|v| {
                    v.map(|v| names.iter().fold(v.to_string(), |text, name| text.replace(name.as_str(), REDACTED)))
                });
                Arc::new(redacted.collect::<StringArray>()) as ArrayRef
            }
            _ => column.clone(),
        })
        .collect();
    RecordBatch::try_new(schema, columns).map_err(io::Error::other)
}
