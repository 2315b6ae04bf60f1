//! What comes in: the audit-event contract ([`event`]) and the foreign formats mapped onto it
//! ([`formats`]: CloudTrail, OCSF, Okta, or each message detected), chosen per topic or per
//! replay by [`formats::decode_as`]; whole JSON documents of many records split into their
//! records ([`documents`]), and a file told to be gzip, JSON lines or one document ([`form`]);
//! what an address says (ASN, organisation, country, cloud provider)
//! added right after decoding ([`enrich`]).

pub mod dead_letter;
pub mod documents;
pub mod enrich;
pub mod event;
pub mod form;
pub mod formats;
