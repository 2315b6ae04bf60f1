//! What comes in: the audit-event contract ([`event`]) and the foreign formats mapped onto it
//! ([`formats`]: CloudTrail, OCSF), chosen per topic or per replay by [`formats::decode_as`].

pub mod dead_letter;
pub mod event;
pub mod formats;
