//! The address ranges cloud providers publish, and which provider owns an address.
//!
//! Formats read (each provider's published JSON; other fields are ignored):
//! - AWS `ip-ranges.json`: `prefixes[].ip_prefix` and `ipv6_prefixes[].ipv6_prefix`.
//! - GCP `cloud.json`: `prefixes[].ipv4Prefix` or `prefixes[].ipv6Prefix`.
//! - Azure Service Tags (`ServiceTags_Public_*.json`): `values[].properties.addressPrefixes[]`.
//!
//! All prefixes become sorted, disjoint spans of addresses (overlapping prefixes of one provider
//! are merged; where two providers overlap, the one whose span starts first keeps the overlap),
//! so a lookup is one binary search. An IPv4-mapped IPv6 address is looked up as IPv4.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

/// A cloud provider whose published ranges mark an address as its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Aws,
    Gcp,
    Azure,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Aws, Provider::Gcp, Provider::Azure];

    /// The value of `source.provider`.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Gcp => "gcp",
            Provider::Azure => "azure",
        }
    }

    /// The name of the format its range file is in, for error messages.
    fn file_format(self) -> &'static str {
        match self {
            Provider::Aws => "an AWS ip-ranges.json",
            Provider::Gcp => "a GCP cloud.json",
            Provider::Azure => "an Azure Service Tags JSON file",
        }
    }
}

/// One run of addresses `first..=last` owned by `provider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span<T> {
    first: T,
    last: T,
    provider: Provider,
}

/// Every provider's ranges, by address family, sorted and disjoint.
#[derive(Debug, Default)]
pub struct ProviderRanges {
    v4: Vec<Span<u32>>,
    v6: Vec<Span<u128>>,
}

impl ProviderRanges {
    pub fn is_empty(&self) -> bool {
        self.v4.is_empty() && self.v6.is_empty()
    }

    pub fn provider_of(&self, ip: IpAddr) -> Option<Provider> {
        match ip {
            IpAddr::V4(v4) => find(&self.v4, u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => find(&self.v4, u32::from(v4)),
                None => find(&self.v6, u128::from(v6)),
            },
        }
    }
}

fn find<T: Copy + Ord>(spans: &[Span<T>], address: T) -> Option<Provider> {
    let after = spans.partition_point(|span| span.first <= address);
    let span = spans.get(after.checked_sub(1)?)?;
    (address <= span.last).then_some(span.provider)
}

/// Prefixes gathered from the range files, before sorting.
#[derive(Debug, Default)]
pub struct RangesBuilder {
    v4: Vec<Span<u32>>,
    v6: Vec<Span<u128>>,
}

impl RangesBuilder {
    /// Reads one provider's file; the error says what is wrong with it, naming the prefix.
    pub fn add(&mut self, provider: Provider, text: &str) -> Result<(), String> {
        let prefixes = prefixes_of(provider, text)?;
        if prefixes.is_empty() {
            return Err(format!("lists no address prefix; expected {}", provider.file_format()));
        }
        for (field, prefix) in prefixes {
            match parse_prefix(prefix) {
                Some(Prefix::V4(first, last)) => self.v4.push(Span { first, last, provider }),
                Some(Prefix::V6(first, last)) => self.v6.push(Span { first, last, provider }),
                None => return Err(format!("{field}: `{prefix}` is not an address prefix such as 192.0.2.0/24")),
            }
        }
        Ok(())
    }

    pub fn build(self) -> ProviderRanges {
        ProviderRanges { v4: disjoint(self.v4), v6: disjoint(self.v6) }
    }
}

/// Sorts the spans and makes them disjoint (see the module docs).
fn disjoint<T: Copy + Ord + Successor>(mut spans: Vec<Span<T>>) -> Vec<Span<T>> {
    spans.sort_by_key(|s| (s.first, std::cmp::Reverse(s.last)));
    let mut out: Vec<Span<T>> = Vec::with_capacity(spans.len());
    for mut span in spans {
        if let Some(previous) = out.last_mut() {
            if span.first <= previous.last || previous.last.successor() == Some(span.first) {
                if span.provider == previous.provider {
                    previous.last = previous.last.max(span.last);
                    continue;
                }
                if span.last <= previous.last {
                    continue;
                }
                match previous.last.successor() {
                    Some(next) if span.first < next => span.first = next,
                    Some(_) => {}
                    None => continue,
                }
            }
        }
        out.push(span);
    }
    out
}

trait Successor: Sized {
    fn successor(self) -> Option<Self>;
}

impl Successor for u32 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

impl Successor for u128 {
    fn successor(self) -> Option<Self> {
        self.checked_add(1)
    }
}

enum Prefix {
    V4(u32, u32),
    V6(u128, u128),
}

/// `192.0.2.0/24` or `2001:db8::/32` as its first and last address.
fn parse_prefix(text: &str) -> Option<Prefix> {
    let (address, length) = text.trim().split_once('/')?;
    let length: u32 = length.parse().ok()?;
    if let Ok(v4) = address.parse::<Ipv4Addr>() {
        let host_bits = 32u32.checked_sub(length)?;
        let mask = u32::MAX.checked_shl(host_bits).unwrap_or(0);
        let first = u32::from(v4) & mask;
        return Some(Prefix::V4(first, first | !mask));
    }
    let v6 = address.parse::<Ipv6Addr>().ok()?;
    let host_bits = 128u32.checked_sub(length)?;
    let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
    let first = u128::from(v6) & mask;
    Some(Prefix::V6(first, first | !mask))
}

/// Every prefix in one provider's file, with where it is (`prefixes[3].ip_prefix`).
fn prefixes_of(provider: Provider, text: &str) -> Result<Vec<(String, &str)>, String> {
    let not_format = |e: serde_json::Error| format!("is not {}: {e}", provider.file_format());
    Ok(match provider {
        Provider::Aws => {
            let file: AwsRanges = serde_json::from_str(text).map_err(not_format)?;
            let v4 =
                file.prefixes.into_iter().enumerate().map(|(i, p)| (format!("prefixes[{i}].ip_prefix"), p.ip_prefix));
            let v6 = file
                .ipv6_prefixes
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("ipv6_prefixes[{i}].ipv6_prefix"), p.ipv6_prefix));
            v4.chain(v6).collect()
        }
        Provider::Gcp => {
            let file: GcpRanges = serde_json::from_str(text).map_err(not_format)?;
            let mut out = Vec::new();
            for (i, p) in file.prefixes.into_iter().enumerate() {
                match (p.ipv4_prefix, p.ipv6_prefix) {
                    (Some(v4), _) => out.push((format!("prefixes[{i}].ipv4Prefix"), v4)),
                    (None, Some(v6)) => out.push((format!("prefixes[{i}].ipv6Prefix"), v6)),
                    (None, None) => return Err(format!("prefixes[{i}]: has neither `ipv4Prefix` nor `ipv6Prefix`")),
                }
            }
            out
        }
        Provider::Azure => {
            let file: AzureServiceTags = serde_json::from_str(text).map_err(not_format)?;
            let mut out = Vec::new();
            for (i, tag) in file.values.into_iter().enumerate() {
                for (j, prefix) in tag.properties.address_prefixes.into_iter().enumerate() {
                    out.push((format!("values[{i}].properties.addressPrefixes[{j}]"), prefix));
                }
            }
            out
        }
    })
}

#[derive(Deserialize)]
struct AwsRanges<'a> {
    #[serde(borrow)]
    prefixes: Vec<AwsV4<'a>>,
    #[serde(default, borrow)]
    ipv6_prefixes: Vec<AwsV6<'a>>,
}

#[derive(Deserialize)]
struct AwsV4<'a> {
    ip_prefix: &'a str,
}

#[derive(Deserialize)]
struct AwsV6<'a> {
    ipv6_prefix: &'a str,
}

#[derive(Deserialize)]
struct GcpRanges<'a> {
    #[serde(borrow)]
    prefixes: Vec<GcpPrefix<'a>>,
}

#[derive(Deserialize)]
struct GcpPrefix<'a> {
    #[serde(rename = "ipv4Prefix", default, borrow)]
    ipv4_prefix: Option<&'a str>,
    #[serde(rename = "ipv6Prefix", default, borrow)]
    ipv6_prefix: Option<&'a str>,
}

#[derive(Deserialize)]
struct AzureServiceTags<'a> {
    #[serde(borrow)]
    values: Vec<AzureTag<'a>>,
}

#[derive(Deserialize)]
struct AzureTag<'a> {
    #[serde(borrow)]
    properties: AzureTagProperties<'a>,
}

#[derive(Deserialize)]
struct AzureTagProperties<'a> {
    #[serde(rename = "addressPrefixes", default, borrow)]
    address_prefixes: Vec<&'a str>,
}
