//! `credential_misuse`: a key used after it was revoked (or after a rotation's grace period), a
//! key presented by an account other than its owner or usual user, and an established key used
//! from a new network in a new ASN or country.
//!
//! These are rule-like: they need no account warm-up. "Established" (`min_uses`, `min_age`) is
//! about the key, so a freshly rotated key learns its networks before it is judged. A new IP
//! inside a /24 (or /48) the key already uses is not new. A new network alone does not fire
//! (`require_new_asn_or_country`), because cloud clients change addresses all the time; but when
//! the event carries neither ASN nor country (even after enrichment), network distance decides
//! (`network_distance_fallback`): a /16 the key never used (IPv4, derived from the /24s its
//! profile keeps), or a /48 for IPv6 (the profile keeps only /48s). The evidence says which
//! rule judged (`judged_by`).

use std::net::IpAddr;

use serde_json::json;

use super::{facts, human_duration, Context, Finding};
use crate::detection::alert::sql_literal;
use crate::detection::baseline::{country_code, country_name, CredentialProfile, Network};
use crate::detection::definition::{ForeignCredentialParams, NewNetworkParams, RevokedCredentialParams};
use crate::detection::time::Rfc3339;

pub(super) fn key_filter(key: &str) -> String {
    format!("credential_id = {}", sql_literal(key))
}

pub fn revoked(
    ctx: &Context,
    params: &RevokedCredentialParams,
    key: &str,
    profile: &CredentialProfile,
) -> Option<Finding> {
    let (ended, why) = match (profile.revoked_at.get(), profile.rotated_at.get()) {
        (Some(revoked), _) if ctx.event.time >= revoked => (revoked, format!("it was revoked at {}", Rfc3339(revoked))),
        (_, Some(rotated)) if ctx.event.time >= rotated + params.rotation_grace.millis() => (
            rotated + params.rotation_grace.millis(),
            format!("it was rotated at {} and its {} grace period ended", Rfc3339(rotated), params.rotation_grace),
        ),
        _ => return None,
    };
    let from = ctx.event.source.ip.map(|ip| format!(" from {ip}")).unwrap_or_default();
    Some(Finding {
        subject: ctx.account_subject(),
        observed: 1.0,
        expected: 0.0,
        score: 1.0,
        window_start: ended,
        window_end: ctx.event.time,
        summary: format!(
            "Key {key} of {} was used{from} {} after {why}. Someone still holds the old secret: find where it is stored and block its use.",
            ctx.event.account,
            human_duration(ctx.event.time - ended),
        ),
        baseline: facts([
            ("revoked_at", json!(profile.revoked_at.get().map(|t| Rfc3339(t).to_string()))),
            ("rotated_at", json!(profile.rotated_at.get().map(|t| Rfc3339(t).to_string()))),
            ("last_seen", json!(Rfc3339(profile.last_seen).to_string())),
        ]),
        new: vec![format!("use of retired key {key}")],
        event_ids: Vec::new(),
        sql_filter: key_filter(key),
    })
}

/// A key presented by an account that is neither its owner nor one of its established users.
///
/// A key's users are learned over its life (see [`crate::detection::baseline::KeyUsers`]): an
/// account that used it in several distinct hours recently, or (when the log does not say who
/// owns the key) from the key's first hours, is one of its users. So a key several accounts
/// share from the start is a shared key, not a foreign one. The alert names the key's owner or
/// first user, never the account presenting it.
pub fn foreign(
    ctx: &Context,
    params: &ForeignCredentialParams,
    key: &str,
    account_key: u32,
    profile: Option<&CredentialProfile>,
) -> Option<Finding> {
    let account = ctx.event.account.as_ref();
    let t = ctx.event.time;
    let stated = ctx.event.credential.as_ref().and_then(|c| c.owner.as_deref());
    let min_hours = params.min_user_hours;
    // Users from the key's first hours count only while nobody said who owns it.
    let established =
        |p: &CredentialProfile| p.users.is_established(account_key, t, min_hours, !p.owner_stated && stated.is_none());
    let (owner, how) = match (stated, profile) {
        (Some(owner), _) if owner == account => return None,
        (Some(owner), p) => match p {
            Some(p) if established(p) => return None,
            _ => (owner.to_string(), Issued::To),
        },
        (None, None) => return None,
        (None, Some(p)) if p.owner == account_key || established(p) => return None,
        (None, Some(p)) if p.owner_stated && p.owner != 0 => {
            (p.owner_name.as_deref().unwrap_or("another account").to_string(), Issued::To)
        }
        (None, Some(p)) => {
            let learning = t - p.first_seen <= params.learn_users_for.millis();
            // An inferred owner named like the presenting account would be a hash collision.
            if p.owner_stated || learning || p.owner_name.as_deref() == Some(account) {
                return None;
            }
            let others = p.users.established_others(account_key, t, min_hours, true);
            let others = others.saturating_sub(usize::from(p.users.is_established(p.owner, t, min_hours, true)));
            (p.owner_name.as_deref().unwrap_or("another account").to_string(), Issued::UsedOnlyBy { others })
        }
    };
    let summary = match how {
        Issued::To => format!(
            "{account} presented key {key}, which was issued to {owner}. Check whether the key was copied between integrations or stolen."
        ),
        Issued::UsedOnlyBy { others: 0 } => format!(
            "{account} presented key {key}, which until now only {owner} used. Check whether the key was copied between integrations or stolen."
        ),
        Issued::UsedOnlyBy { others } => format!(
            "{account} presented key {key}, which until now only {owner} and {others} other account(s) used. Check whether the key was copied between integrations or stolen."
        ),
    };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: 1.0,
        expected: 0.0,
        score: 1.0,
        window_start: profile.map_or(t, |p| p.first_seen),
        window_end: t,
        summary,
        baseline: facts([("owner", json!(owner)), ("uses", json!(profile.map_or(0, |p| p.uses)))]),
        new: vec![format!("account {account} using this key")],
        event_ids: Vec::new(),
        sql_filter: key_filter(key),
    })
}

#[derive(Clone, Copy)]
enum Issued {
    /// The log says (now or before) who owns the key.
    To,
    /// The owner is the key's first user; `others` established users besides it.
    UsedOnlyBy { others: usize },
}

pub fn new_network(
    ctx: &Context,
    params: &NewNetworkParams,
    key: &str,
    profile: &CredentialProfile,
) -> Option<Finding> {
    let ip = ctx.event.source.ip?;
    let established = profile.uses >= params.min_uses && ctx.event.time - profile.first_seen >= params.min_age.millis();
    if !established || profile.knows_network(ip) {
        return None;
    }
    let source = &ctx.event.source;
    let new_asn = source.asn.filter(|&asn| !profile.asns.is_empty() && !profile.asns.contains(asn));
    let country = source.country.as_deref().map(country_code);
    let new_country = country.filter(|&c| !profile.countries.is_empty() && !profile.countries.contains(c));
    // Without ASN or country (even after enrichment), the only measure left is how far the new
    // network is from the key's known ones.
    let placeless = source.asn.is_none() && source.country.is_none();
    let by_distance = params.require_new_asn_or_country && placeless;
    let judged_by = if !params.require_new_asn_or_country {
        "a new network"
    } else if new_asn.is_some() || new_country.is_some() {
        "a new ASN or country"
    } else if by_distance && params.network_distance_fallback && !profile.knows_wide_network(ip) {
        match ip {
            IpAddr::V4(_) => "network distance: a /16 the key never used; no ASN or country known",
            IpAddr::V6(_) => "network distance: a /48 the key never used; no ASN or country known",
        }
    } else {
        return None;
    };
    let network = Network::describe(ip);
    let mut new = vec![format!("network {network}")];
    if by_distance {
        new.push(format!("network {}", Network::describe_wide(ip)));
    }
    new.extend(new_asn.map(|a| match source.as_org.as_deref() {
        Some(org) => format!("ASN {a} ({org})"),
        None => format!("ASN {a}"),
    }));
    new.extend(source.country.as_deref().filter(|_| new_country.is_some()).map(|c| format!("country {c}")));
    let usual_asns: Vec<String> = profile.asns.iter().map(|a| format!("AS{a}")).collect();
    let usual_countries: Vec<String> = profile.countries.iter().map(country_name).collect();
    let place = [
        source.asn.map(|a| format!("AS{a}")),
        source.as_org.as_deref().map(str::to_string),
        source.country.as_deref().map(str::to_string),
        source.provider.as_deref().map(|p| format!("provider {p}")),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>();
    let place = if place.is_empty() { "no ASN or country known".to_string() } else { place.join(", ") };
    let usual = if by_distance {
        format!("{} network(s), none in {}", profile.networks.len(), Network::describe_wide(ip))
    } else {
        format!("{} network(s) in {} ({})", profile.networks.len(), usual_asns.join(", "), usual_countries.join(", "))
    };
    Some(Finding {
        subject: ctx.account_subject(),
        observed: 1.0,
        expected: 0.0,
        score: f64::from(profile.uses).log10(),
        window_start: ctx.event.time,
        window_end: ctx.event.time,
        summary: format!(
            "Key {key} of {} was used from {network} ({place}) for the first time in {} uses; it is usually used from {usual}. Confirm the move with its owner or revoke the key.",
            ctx.event.account,
            profile.uses,
        ),
        baseline: facts([
            ("judged_by", json!(judged_by)),
            ("networks_known", json!(profile.networks.len())),
            ("usual_asns", json!(usual_asns)),
            ("usual_countries", json!(usual_countries)),
            ("asn", json!(source.asn)),
            ("as_org", json!(source.as_org)),
            ("country", json!(source.country)),
            ("provider", json!(source.provider)),
            ("uses", json!(profile.uses)),
            ("first_seen", json!(Rfc3339(profile.first_seen).to_string())),
        ]),
        new,
        event_ids: Vec::new(),
        sql_filter: key_filter(key),
    })
}
