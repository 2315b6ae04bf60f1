//! `auditwatch review`: the access review as one report. "Now" is the newest event in the
//! store, so reviewing an archived store (or the demo's, whose traffic is generated) means the
//! same as reviewing a live one.

use std::io::Write;

use super::output::{self, OutputFormat};
use super::{Catalog, QueryError};

pub struct Section {
    pub title: &'static str,
    pub sql: &'static str,
}

pub const SECTIONS: [Section; 4] = [
    Section {
        title: "Keys unused for 30 days (candidates to revoke)",
        sql: "SELECT tenant, credential_id, owner, users, last_use, uses
              FROM credentials
              WHERE revoked IS NULL
                AND last_use < (SELECT max(time) FROM events) - INTERVAL '30 days'
              ORDER BY last_use, credential_id",
    },
    Section {
        title: "Keys not rotated for 90 days",
        sql: "SELECT tenant, credential_id, owner, coalesce(rotated, created, first_use) AS since, last_use
              FROM credentials
              WHERE revoked IS NULL
                AND coalesce(rotated, created, first_use) < (SELECT max(time) FROM events) - INTERVAL '90 days'
              ORDER BY since, credential_id",
    },
    Section {
        title: "Keys used from more than one network",
        sql: "SELECT tenant, credential_id, owner, networks, users, uses
              FROM credentials
              WHERE networks > 1
              ORDER BY networks DESC, credential_id",
    },
    Section {
        title: "Accounts that never write (could hold read-only keys)",
        sql: "SELECT tenant, account, events, first_seen, last_seen
              FROM accounts
              WHERE writes = 0
              ORDER BY account",
    },
];

/// Run every section and print it under its title.
pub async fn report<W: Write + Send>(catalog: &Catalog, format: OutputFormat, out: &mut W) -> Result<(), QueryError> {
    for section in &SECTIONS {
        let answer = catalog.run(section.sql).await?;
        writeln!(out, "== {} ==", section.title).map_err(|e| QueryError::Output(e.to_string()))?;
        output::write(&answer, format, &mut *out).map_err(|e| QueryError::Output(e.to_string()))?;
        writeln!(out).map_err(|e| QueryError::Output(e.to_string()))?;
    }
    Ok(())
}
