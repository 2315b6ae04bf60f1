//! IP enrichment: what an address says about where a call came from, for logs that carry only
//! the IP (CloudTrail, most OCSF producers).
//!
//! An [`Enricher`] holds, all in memory and read-only once built:
//! - MaxMind-format databases (`.mmdb`, [`mmdb`]): the ASN, its organisation and the country
//!   of an address. GeoLite2-ASN (`autonomous_system_number`, `autonomous_system_organization`),
//!   GeoLite2-Country and -City (`country.iso_code`, else `registered_country.iso_code`) and
//!   the ip-to-asn layout of ipinfo's country_asn (`asn` as `"AS64500"`, `as_name`, `country`)
//!   are read; one database may give all three.
//! - Provider range files ([`ranges`]): AWS `ip-ranges.json`, GCP `cloud.json`, Azure Service
//!   Tags JSON, which mark an address as owned by that provider.
//!
//! Invariants: [`Enricher::enrich`] never overrides what the event carries (the producer's
//! values win, and an organisation is only taken together with its own ASN); it does no I/O and
//! allocates nothing (strings are borrowed from the databases); databases are asked in the
//! order configured and the first that knows a value gives it. It runs once per event, right
//! after decoding and before the engine, in `run` and in `replay` alike. Files are read when
//! the enricher is built, at start: a missing or unusable one is an [`EnrichError`] naming the
//! setting and the file.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::input::event::AuditEvent;

pub mod mmdb;
pub mod ranges;

pub use ranges::Provider;

/// Why an enrichment file cannot be used: the setting that names it, the file, the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnrichError {
    /// The config key or command-line option (`enrichment.databases[0]`, `--ip-database`).
    pub key: String,
    pub path: PathBuf,
    pub problem: String,
}

impl EnrichError {
    /// The message without the key (for a config [`crate::problem::Problem`], which has its own).
    pub fn message(&self) -> String {
        format!("{}: {}", self.path.display(), self.problem)
    }
}

impl fmt::Display for EnrichError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message())
    }
}

impl std::error::Error for EnrichError {}

/// Everything enrichment knows, shared read-only (`Send + Sync`; put it in an `Arc`).
#[derive(Debug, Default)]
pub struct Enricher {
    databases: Vec<mmdb::Database>,
    ranges: ranges::ProviderRanges,
}

/// Collects the files of an [`Enricher`], each with the setting that named it; every problem
/// is kept, so all of them are reported at once.
#[derive(Debug, Default)]
pub struct EnricherBuilder {
    databases: Vec<mmdb::Database>,
    ranges: ranges::RangesBuilder,
    problems: Vec<EnrichError>,
}

impl EnricherBuilder {
    /// A MaxMind-format database; `key` names the setting in errors.
    pub fn database(&mut self, key: &str, path: &Path) -> &mut Self {
        match mmdb::Database::open(path) {
            Ok(database) => self.databases.push(database),
            Err(problem) => self.problem(key, path, problem),
        }
        self
    }

    /// A provider's published range file, in that provider's format.
    pub fn provider_ranges(&mut self, provider: Provider, key: &str, path: &Path) -> &mut Self {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                self.problem(key, path, format!("cannot read it: {e}"));
                return self;
            }
        };
        if let Err(problem) = self.ranges.add(provider, &text) {
            self.problem(key, path, problem);
        }
        self
    }

    fn problem(&mut self, key: &str, path: &Path, problem: String) {
        self.problems.push(EnrichError { key: key.to_string(), path: path.to_path_buf(), problem });
    }

    pub fn build(self) -> Result<Enricher, Vec<EnrichError>> {
        if !self.problems.is_empty() {
            return Err(self.problems);
        }
        Ok(Enricher { databases: self.databases, ranges: self.ranges.build() })
    }
}

impl Enricher {
    pub fn builder() -> EnricherBuilder {
        EnricherBuilder::default()
    }

    /// Nothing configured: enriching changes no event.
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty() && self.ranges.is_empty()
    }

    /// Provider ranges are loaded: an address left without `source.provider` is no provider's.
    pub fn has_provider_ranges(&self) -> bool {
        !self.ranges.is_empty()
    }

    /// Fill in, from the address, what the event does not carry: `source.asn`, `source.as_org`,
    /// `source.country` and `source.provider`. An event without an IP is left as it is.
    pub fn enrich<'a>(&'a self, event: &mut AuditEvent<'a>) {
        let source = &mut event.source;
        let Some(ip) = source.ip else { return };
        if source.provider.is_none() {
            source.provider = self.ranges.provider_of(ip).map(|p| Cow::Borrowed(p.as_str()));
        }
        for database in &self.databases {
            if source.asn.is_some() && source.as_org.is_some() && source.country.is_some() {
                return;
            }
            let Some(found) = database.lookup(ip) else { continue };
            // The organisation belongs to the database's ASN: it is taken only with that ASN, or
            // when it is the ASN the event already names.
            let org_fits = match (source.asn, found.asn) {
                (None, _) => true,
                (Some(carried), Some(looked_up)) => carried == looked_up,
                (Some(_), None) => false,
            };
            if source.as_org.is_none() && org_fits {
                source.as_org = found.as_org.map(Cow::Borrowed);
            }
            if source.asn.is_none() {
                source.asn = found.asn;
            }
            if source.country.is_none() {
                source.country = found.country.map(Cow::Borrowed);
            }
        }
    }
}

#[cfg(test)]
mod tests;
