//! SQL functions the views and the review need, which plain SQL says badly:
//!
//! - `access_kind(action)`: `lifecycle` (`credential.*`), `auth` (`auth.*`, logins, tokens),
//!   `read` or `write`, judged by the action's verb (its last segment, or the first word of a
//!   CamelCase name such as CloudTrail's `GetObject`). Unknown verbs count as writes, so an
//!   account is called read-only only when every action it took reads.
//! - `network(source_ip, source_asn)`: `AS64500` when the ASN is known, else the address's
//!   /16 (IPv4) or /32 (IPv6), the same "network" `key-new-network` falls back to.

use std::net::IpAddr;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use arrow::datatypes::{DataType, UInt32Type};
use datafusion::common::Result;
use datafusion::logical_expr::{create_udf, ColumnarValue, ScalarUDF, Volatility};

/// Verbs of actions that only read (lowercase).
const READ_VERBS: [&str; 16] = [
    "get", "list", "read", "describe", "head", "export", "query", "search", "lookup", "view", "download", "select",
    "scan", "fetch", "show", "check",
];

pub fn access_kind_of(action: &str) -> &'static str {
    if action.starts_with("credential.") {
        return "lifecycle";
    }
    if action.starts_with("auth.") {
        return "auth";
    }
    let last = action.rsplit(['.', ':', '/']).next().unwrap_or(action);
    let lower = last.to_ascii_lowercase();
    if ["login", "logon", "signin", "authenticate", "assumerole", "token"].iter().any(|w| lower.contains(w)) {
        return "auth";
    }
    let verb = first_word(last.strip_prefix("Batch").unwrap_or(last)).to_ascii_lowercase();
    if READ_VERBS.contains(&verb.as_str()) {
        "read"
    } else {
        "write"
    }
}

/// `GetObject` → `Get`; `objects_get` → `objects`; `get` → `get`.
fn first_word(name: &str) -> &str {
    let end = name
        .char_indices()
        .skip(1)
        .find(|&(_, c)| c.is_ascii_uppercase() || c == '_' || c == '-')
        .map_or(name.len(), |(i, _)| i);
    &name[..end]
}

pub fn network_of(ip: Option<&str>, asn: Option<u32>) -> Option<String> {
    if let Some(asn) = asn {
        return Some(format!("AS{asn}"));
    }
    match ip?.parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            Some(format!("{a}.{b}.0.0/16"))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            Some(format!("{:x}:{:x}::/32", s[0], s[1]))
        }
    }
}

pub fn all() -> Vec<ScalarUDF> {
    vec![
        create_udf("access_kind", vec![DataType::Utf8], DataType::Utf8, Volatility::Immutable, Arc::new(access_kind)),
        create_udf(
            "network",
            vec![DataType::Utf8, DataType::UInt32],
            DataType::Utf8,
            Volatility::Immutable,
            Arc::new(network),
        ),
    ]
}

fn access_kind(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let actions = arrays[0].as_string::<i32>();
    let mut out = StringBuilder::with_capacity(actions.len(), actions.len() * 5);
    for action in actions.iter() {
        out.append_option(action.map(access_kind_of));
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
}

fn network(args: &[ColumnarValue]) -> Result<ColumnarValue> {
    let arrays = ColumnarValue::values_to_arrays(args)?;
    let ips = arrays[0].as_string::<i32>();
    let asns = arrays[1].as_primitive::<UInt32Type>();
    let mut out = StringBuilder::with_capacity(ips.len(), ips.len() * 14);
    for i in 0..ips.len() {
        let ip = ips.is_valid(i).then(|| ips.value(i));
        let asn = asns.is_valid(i).then(|| asns.value(i));
        out.append_option(network_of(ip, asn));
    }
    Ok(ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_judged_by_their_verb() {
        for (action, kind) in [
            ("storage.objects.get", "read"),
            ("billing.invoices.export", "read"),
            ("s3.GetObject", "read"),
            ("dynamodb.BatchGetItem", "read"),
            ("iam.ListUsers", "read"),
            ("storage.objects.put", "write"),
            ("iam.CreateAccessKey", "write"),
            ("crm.contacts.update", "write"),
            ("ledger.reconcile.run", "write"),
            ("auth.login", "auth"),
            ("signin.ConsoleLogin", "auth"),
            ("sts.AssumeRole", "auth"),
            ("credential.rotate", "lifecycle"),
        ] {
            assert_eq!(access_kind_of(action), kind, "{action}");
        }
    }

    #[test]
    fn a_network_is_the_asn_or_the_prefix() {
        assert_eq!(network_of(Some("203.0.113.9"), Some(64500)).as_deref(), Some("AS64500"));
        assert_eq!(network_of(Some("203.0.113.9"), None).as_deref(), Some("203.0.0.0/16"));
        assert_eq!(network_of(Some("2001:db8:1::5"), None).as_deref(), Some("2001:db8::/32"));
        assert_eq!(network_of(Some("not an address"), None), None);
        assert_eq!(network_of(None, None), None);
    }
}
