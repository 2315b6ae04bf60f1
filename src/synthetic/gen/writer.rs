//! Serializes generated events as JSON lines in the audit-event contract (`schemas/audit-event.schema.json`):
//!
//! ```json
//! {"id":"evt-1-2a","time":"2026-01-19T03:12:45.123Z","account":"svc-crm-sync-017",
//!  "action":"crm.contacts.read","outcome":"success",
//!  "credential":{"id":"AKIA...","type":"api_key","owner":"svc-crm-sync-017"},
//!  "source":{"ip":"52.14.203.17","country":"US","asn":16509,"user_agent":"python-requests/2.31.0"},
//!  "target":{"system":"salesforce","resource":"contacts/812"},"bytes":48213,"records":112,
//!  "tenant":"acme"}
//! ```
//!
//! `id` is `evt-<seed hex>-<counter hex>`, counting lines in write order, so ids are unique
//! within a run and stable for a seed. `reason` appears on failures and denials only;
//! `credential.owner` only for accounts whose log source records it.
//! Lines are built in memory and handed to the destination in large chunks: one `write_all`
//! per ~256 KiB, whatever buffering the caller did or did not add.

use std::fmt::Write as _;
use std::io::{self, Write};

use serde::Serialize;

use super::profiles::World;
use super::{Event, Resource};
use crate::detection::time::Rfc3339;

const FLUSH_THRESHOLD: usize = 256 * 1024;

#[derive(Serialize)]
struct EventLine<'a> {
    id: &'a str,
    time: &'a str,
    account: &'a str,
    action: &'a str,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential: Option<CredentialField<'a>>,
    source: SourceField<'a>,
    target: TargetField<'a>,
    bytes: u64,
    records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    tenant: &'a str,
}

#[derive(Serialize)]
struct CredentialField<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
}

#[derive(Serialize)]
struct SourceField<'a> {
    ip: &'a str,
    country: &'a str,
    asn: u32,
    user_agent: &'a str,
}

#[derive(Serialize)]
struct TargetField<'a> {
    system: &'a str,
    resource: &'a str,
}

pub(crate) struct EventWriter<'w> {
    out: &'w mut dyn Write,
    buffer: Vec<u8>,
    seed: u64,
    written: u64,
    // Scratch strings reused for every line.
    id: String,
    time: String,
    ip: String,
    resource: String,
}

impl<'w> EventWriter<'w> {
    pub(crate) fn new(seed: u64, out: &'w mut dyn Write) -> Self {
        EventWriter {
            out,
            buffer: Vec::with_capacity(FLUSH_THRESHOLD + 4096),
            seed,
            written: 0,
            id: String::with_capacity(32),
            time: String::with_capacity(24),
            ip: String::with_capacity(16),
            resource: String::with_capacity(48),
        }
    }

    pub(crate) fn write(&mut self, world: &World, event: &Event) -> io::Result<()> {
        // Writing into a String cannot fail; the results are ignored on purpose.
        self.id.clear();
        let _ = write!(self.id, "evt-{:x}-{:x}", self.seed, self.written);
        self.time.clear();
        let _ = write!(self.time, "{}", Rfc3339(event.time_ms));
        let network = &world.networks[event.network as usize];
        self.ip.clear();
        let [a, b, c] = network.prefix;
        let _ = write!(self.ip, "{a}.{b}.{c}.{}", event.host);
        self.resource.clear();
        match event.resource {
            Resource::Plain(text) => self.resource.push_str(text),
            Resource::Numbered(stem, number) => {
                let _ = write!(self.resource, "{stem}/{number}");
            }
            Resource::Credential(credential) => {
                self.resource.push_str("credentials/");
                if let Some(c) = world.credentials.get(credential as usize) {
                    self.resource.push_str(&c.id);
                }
            }
        }
        let account = &world.accounts[event.account as usize];
        let credential = event.credential.and_then(|c| world.credentials.get(c as usize)).map(|c| CredentialField {
            id: &c.id,
            kind: c.kind.as_str(),
            owner: event.show_owner.then(|| world.accounts[c.owner].name.as_str()),
        });
        let line = EventLine {
            id: &self.id,
            time: &self.time,
            account: &account.name,
            action: event.action,
            outcome: event.outcome.as_str(),
            credential,
            source: SourceField {
                ip: &self.ip,
                country: network.country,
                asn: network.asn,
                user_agent: event.user_agent,
            },
            target: TargetField { system: event.system, resource: &self.resource },
            bytes: event.bytes,
            records: event.records,
            reason: event.reason,
            tenant: account.tenant,
        };
        serde_json::to_writer(&mut self.buffer, &line)?;
        self.buffer.push(b'\n');
        self.written += 1;
        if self.buffer.len() >= FLUSH_THRESHOLD {
            self.out.write_all(&self.buffer)?;
            self.buffer.clear();
        }
        Ok(())
    }

    /// Writes what is left and flushes; returns the number of events written.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        self.out.write_all(&self.buffer)?;
        self.buffer.clear();
        self.out.flush()?;
        Ok(self.written)
    }
}
