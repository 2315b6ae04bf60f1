//! `[enrichment]`: the files that enrich events from their `source.ip`.

use std::path::PathBuf;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Problem};
use crate::input::enrich::{Enricher, Provider};

/// Files that enrich an event from its `source.ip`, read once at start (see
/// `auditwatch::input::enrich`). An event's own values always win.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EnrichmentConfig {
    /// MaxMind-format databases (`.mmdb`): GeoLite2-ASN, GeoLite2-Country or -City, ipinfo's
    /// ip-to-asn country_asn. Asked in this order; the first that knows a value gives it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<PathBuf>,
    /// AWS `ip-ranges.json`: its addresses get `source.provider = "aws"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aws_ranges: Option<PathBuf>,
    /// GCP `cloud.json`: its addresses get `source.provider = "gcp"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp_ranges: Option<PathBuf>,
    /// Azure Service Tags JSON (`ServiceTags_Public_*.json`): `source.provider = "azure"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub azure_ranges: Option<PathBuf>,
}

impl EnrichmentConfig {
    /// Nothing configured.
    pub fn is_empty(&self) -> bool {
        self.databases.is_empty()
            && self.aws_ranges.is_none()
            && self.gcp_ranges.is_none()
            && self.azure_ranges.is_none()
    }

    /// Reads every file; `None` when nothing is configured. Each unusable file is a problem
    /// that names its key and path.
    pub fn open(&self) -> Result<Option<Arc<Enricher>>, ConfigError> {
        if self.is_empty() {
            return Ok(None);
        }
        let mut builder = Enricher::builder();
        for (i, path) in self.databases.iter().enumerate() {
            builder.database(&format!("enrichment.databases[{i}]"), path);
        }
        let ranges = [
            (Provider::Aws, "enrichment.aws_ranges", &self.aws_ranges),
            (Provider::Gcp, "enrichment.gcp_ranges", &self.gcp_ranges),
            (Provider::Azure, "enrichment.azure_ranges", &self.azure_ranges),
        ];
        for (provider, key, path) in ranges {
            if let Some(path) = path {
                builder.provider_ranges(provider, key, path);
            }
        }
        match builder.build() {
            Ok(enricher) => Ok(Some(Arc::new(enricher))),
            Err(errors) => {
                Err(ConfigError::Invalid(errors.iter().map(|e| Problem::new(e.key.clone(), e.message())).collect()))
            }
        }
    }
}
