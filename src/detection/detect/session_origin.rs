//! `session_origin`: a temporary credential used from a network other than the one its session
//! began on. It needs no baseline of the account: a session key lives for hours, and where it
//! was first used is where it belongs.
//!
//! - An instance role's key (`session.instance`) belongs to that instance: it fires on a use
//!   from another /24 (IPv6 /48) than the key's first uses, and, when provider ranges are
//!   loaded, on any use from a public address outside every provider's ranges, even the first
//!   (the credential was taken off the instance). Private addresses are the instance's VPC.
//! - Any other session fires on a use from another network: a new ASN when the addresses have
//!   ASNs, else a /16 (IPv6 /48) the key never used. Provider-owned addresses without an ASN
//!   are not judged: hosted compute (functions, containers) moves between them.

use std::net::IpAddr;

use serde_json::json;

use super::credential::key_filter;
use super::{facts, Context, Finding};
use crate::detection::baseline::{CredentialProfile, Network};
use crate::detection::definition::SessionOriginParams;
use crate::detection::time::Rfc3339;

/// Why the use is off its session's origin.
enum Off {
    OutsideProvider,
    OtherAddress,
    OtherAsn(u32),
    FarNetwork,
}

pub fn check(
    ctx: &Context,
    params: &SessionOriginParams,
    key: &str,
    profile: Option<&CredentialProfile>,
    provider_ranges: bool,
) -> Option<Finding> {
    let event = ctx.event;
    let session = event.session.as_ref()?;
    let ip = event.source.ip?;
    let source = &event.source;
    let known = profile.filter(|p| !p.networks.is_empty());
    let new_network = known.is_some_and(|p| !p.knows_network(ip));
    let off = match &session.instance {
        Some(_)
            if params.instance_outside_provider && provider_ranges && source.provider.is_none() && is_public(ip) =>
        {
            Off::OutsideProvider
        }
        Some(_) if new_network => Off::OtherAddress,
        Some(_) => return None,
        None if !new_network => return None,
        None => match (source.asn, known) {
            (Some(asn), Some(p)) if !p.asns.is_empty() => match p.asns.contains(asn) {
                true => return None,
                false => Off::OtherAsn(asn),
            },
            _ if source.provider.is_some() => return None,
            (_, Some(p)) if !p.knows_wide_network(ip) => Off::FarNetwork,
            _ => return None,
        },
    };
    let network = Network::describe(ip);
    let (judged_by, why) = match off {
        Off::OutsideProvider => (
            "instance role used outside every provider's ranges",
            format!("an address outside every cloud provider's ranges ({network})"),
        ),
        Off::OtherAddress => {
            ("instance role used off its instance", format!("{network}, not the instance's own network"))
        }
        Off::OtherAsn(asn) => ("session used from another ASN", format!("{network} in AS{asn}")),
        Off::FarNetwork => ("session used from a far network", format!("{network}, in a /16 the session never used")),
    };
    let whose = match &session.instance {
        Some(instance) => format!("instance role session {} of {} (instance {instance})", session.name, event.account),
        None => format!("session {} of {}", session.name, event.account),
    };
    let uses = profile.map_or(0, |p| p.uses);
    let history = match uses {
        0 => "on the first use seen".to_string(),
        n => format!("after {n} use(s) from where the session began"),
    };
    Some(Finding {
        subject: format!("{}/{key}", ctx.account_subject()),
        observed: 1.0,
        expected: 0.0,
        score: 1.0 + f64::from(uses).log10().max(0.0),
        window_start: profile.map_or(event.time, |p| p.first_seen),
        window_end: event.time,
        summary: format!(
            "Temporary key {key} of {whose} was used from {why}, {history}. \
             A session key does not move: revoke the role's active sessions and find where the key leaked."
        ),
        baseline: facts([
            ("judged_by", json!(judged_by)),
            ("session", json!(session.name)),
            ("instance", json!(session.instance)),
            ("networks_known", json!(profile.map_or(0, |p| p.networks.len()))),
            ("asns_known", json!(profile.map(|p| p.asns.iter().collect::<Vec<_>>()).unwrap_or_default())),
            ("provider", json!(source.provider)),
            ("uses", json!(uses)),
            ("first_seen", json!(profile.map(|p| Rfc3339(p.first_seen).to_string()))),
        ]),
        new: vec![format!("network {network}")],
        event_ids: Vec::new(),
        sql_filter: key_filter(key),
    })
}

/// An address reachable from the internet: not private, loopback, link-local, shared (CGNAT)
/// or unique-local, where a provider's own network (a VPC) lives.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (v4.octets()[1] & 0xC0) == 64;
            !(v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || shared)
        }
        IpAddr::V6(v6) => {
            let unique_local = (v6.segments()[0] & 0xFE00) == 0xFC00;
            let link_local = (v6.segments()[0] & 0xFFC0) == 0xFE80;
            !(v6.is_loopback() || v6.is_unspecified() || unique_local || link_local)
        }
    }
}
