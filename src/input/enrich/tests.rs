use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use super::mmdb::{Database, Found};
use super::ranges::RangesBuilder;
use super::*;
use crate::input::event::decode;

// ---------------------------------------------------------------------------------------------
// A minimal MaxMind DB writer (IPv4 tree, 24-bit records), enough to build test databases of
// each layout without files or tools.

enum Value {
    Str(&'static str),
    U32(u32),
    Map(Vec<(&'static str, Value)>),
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    assert!(size < 285, "test values are small");
    let (inline, extra) = if size < 29 { (size as u8, None) } else { (29, Some((size - 29) as u8)) };
    if kind <= 7 {
        out.push(kind << 5 | inline);
    } else {
        out.push(inline);
        out.push(kind - 7);
    }
    out.extend(extra);
}

fn uint(out: &mut Vec<u8>, kind: u8, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    control(out, kind, 8 - skip);
    out.extend(&bytes[skip..]);
}

fn encode(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            control(out, 2, s.len());
            out.extend(s.as_bytes());
        }
        Value::U32(v) => uint(out, 6, u64::from(*v)),
        Value::Map(pairs) => {
            control(out, 7, pairs.len());
            for (key, value) in pairs {
                encode(out, &Value::Str(key));
                encode(out, value);
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Slot {
    Empty,
    Node(usize),
    Data(usize),
}

/// An IPv4 database of `networks` (`"192.0.2.0/24"`) and their records.
fn mmdb(networks: &[(&str, Value)]) -> Vec<u8> {
    let mut nodes: Vec<[Slot; 2]> = vec![[Slot::Empty; 2]];
    let mut data = Vec::new();
    for (network, record) in networks {
        let (address, length) = network.split_once('/').unwrap();
        let address = u32::from(address.parse::<Ipv4Addr>().unwrap());
        let length: usize = length.parse().unwrap();
        let offset = data.len();
        encode(&mut data, record);
        let mut node = 0;
        for depth in 0..length {
            let bit = ((address >> (31 - depth)) & 1) as usize;
            if depth + 1 == length {
                nodes[node][bit] = Slot::Data(offset);
            } else {
                node = match nodes[node][bit] {
                    Slot::Node(next) => next,
                    _ => {
                        nodes.push([Slot::Empty; 2]);
                        nodes[node][bit] = Slot::Node(nodes.len() - 1);
                        nodes.len() - 1
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        for slot in node {
            let value = match *slot {
                Slot::Empty => count,
                Slot::Node(n) => n,
                Slot::Data(offset) => count + 16 + offset,
            };
            out.extend(&(value as u32).to_be_bytes()[1..]);
        }
    }
    out.extend([0u8; 16]);
    out.extend(data);
    out.extend(b"\xAB\xCD\xEFMaxMind.com");
    let mut meta = Vec::new();
    control(&mut meta, 7, 9);
    for (key, value) in [("node_count", count as u64), ("build_epoch", 1_767_571_200)] {
        encode(&mut meta, &Value::Str(key));
        uint(&mut meta, if key == "build_epoch" { 9 } else { 6 }, value);
    }
    for (key, value) in
        [("record_size", 24), ("ip_version", 4), ("binary_format_major_version", 2), ("binary_format_minor_version", 0)]
    {
        encode(&mut meta, &Value::Str(key));
        uint(&mut meta, 5, value);
    }
    encode(&mut meta, &Value::Str("database_type"));
    encode(&mut meta, &Value::Str("auditwatch-test"));
    encode(&mut meta, &Value::Str("languages"));
    control(&mut meta, 11, 0);
    encode(&mut meta, &Value::Str("description"));
    encode(&mut meta, &Value::Map(vec![("en", Value::Str("test"))]));
    out.extend(meta);
    out
}

/// GeoLite2-ASN layout.
fn asn_database() -> Database {
    Database::from_bytes(mmdb(&[
        (
            "203.0.113.0/24",
            Value::Map(vec![
                ("autonomous_system_number", Value::U32(64500)),
                ("autonomous_system_organization", Value::Str("Example Transit")),
            ]),
        ),
        ("198.51.100.0/24", Value::Map(vec![("autonomous_system_number", Value::U32(64501))])),
    ]))
    .unwrap()
}

/// GeoLite2-City layout (country with names, and a city).
fn city_database() -> Database {
    let country = |code| {
        Value::Map(vec![
            ("geoname_id", Value::U32(2750405)),
            ("iso_code", Value::Str(code)),
            ("names", Value::Map(vec![("en", Value::Str("Somewhere"))])),
        ])
    };
    Database::from_bytes(mmdb(&[
        (
            "203.0.113.0/24",
            Value::Map(vec![
                ("city", Value::Map(vec![("names", Value::Map(vec![("en", Value::Str("Town"))]))])),
                ("country", country("NL")),
                ("registered_country", country("BE")),
            ]),
        ),
        ("192.0.2.0/24", Value::Map(vec![("registered_country", country("SE"))])),
    ]))
    .unwrap()
}

/// ipinfo's ip-to-asn country_asn layout.
fn ipinfo_database() -> Database {
    Database::from_bytes(mmdb(&[(
        "100.64.0.0/10",
        Value::Map(vec![
            ("as_domain", Value::Str("cloud.example")),
            ("as_name", Value::Str("Example Cloud")),
            ("asn", Value::Str("AS64511")),
            ("continent", Value::Str("EU")),
            ("country", Value::Str("DE")),
            ("country_name", Value::Str("Germany")),
        ]),
    )]))
    .unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn each_layout_gives_what_it_holds() {
    assert_eq!(
        asn_database().lookup(ip("203.0.113.9")),
        Some(Found { asn: Some(64500), as_org: Some("Example Transit"), country: None })
    );
    assert_eq!(asn_database().lookup(ip("198.51.100.1")), Some(Found { asn: Some(64501), ..Found::default() }));
    assert_eq!(city_database().lookup(ip("203.0.113.9")), Some(Found { country: Some("NL"), ..Found::default() }));
    // Without `country`, the registered country.
    assert_eq!(city_database().lookup(ip("192.0.2.77")), Some(Found { country: Some("SE"), ..Found::default() }));
    assert_eq!(
        ipinfo_database().lookup(ip("100.100.1.2")),
        Some(Found { asn: Some(64511), as_org: Some("Example Cloud"), country: Some("DE") })
    );
    // No data, and an address of the other family, find nothing.
    assert_eq!(asn_database().lookup(ip("8.8.8.8")), None);
    assert_eq!(ipinfo_database().lookup(ip("2001:db8::1")), None);
}

fn enricher(databases: Vec<Database>) -> Enricher {
    Enricher { databases, ranges: Default::default() }
}

fn event(source: &str) -> Vec<u8> {
    format!(r#"{{"time":1767571200000,"account":"svc","action":"auth.login","outcome":"success","source":{source}}}"#)
        .into_bytes()
}

fn enriched<'a>(enricher: &'a Enricher, raw: &'a [u8]) -> crate::input::event::Source<'a> {
    let mut event = decode(raw, 1 << 20).unwrap();
    enricher.enrich(&mut event);
    event.source
}

#[test]
fn databases_fill_only_what_the_event_lacks_first_database_first() {
    let both = enricher(vec![asn_database(), city_database(), ipinfo_database()]);
    let raw = event(r#"{"ip":"203.0.113.9"}"#);
    let source = enriched(&both, &raw);
    assert_eq!(
        (source.asn, source.as_org.as_deref(), source.country.as_deref()),
        (Some(64500), Some("Example Transit"), Some("NL"))
    );
    assert!(matches!(source.as_org, Some(Cow::Borrowed(_))), "strings are borrowed from the database");

    // The producer's values win.
    let raw = event(r#"{"ip":"203.0.113.9","asn":64999,"country":"US"}"#);
    let source = enriched(&both, &raw);
    assert_eq!((source.asn, source.country.as_deref()), (Some(64999), Some("US")));
    assert_eq!(source.as_org, None, "an organisation is never attached to another ASN");
    let raw = event(r#"{"ip":"203.0.113.9","asn":64500,"as_org":"Producer Name"}"#);
    let source = enriched(&both, &raw);
    assert_eq!((source.asn, source.as_org.as_deref()), (Some(64500), Some("Producer Name")));
    assert_eq!(source.country.as_deref(), Some("NL"));
    // The carried ASN matches the database's: its organisation is taken.
    let raw = event(r#"{"ip":"203.0.113.9","asn":64500}"#);
    assert_eq!(enriched(&both, &raw).as_org.as_deref(), Some("Example Transit"));

    // A later database fills what an earlier one did not know.
    let raw = event(r#"{"ip":"100.64.3.3"}"#);
    let source = enriched(&both, &raw);
    assert_eq!(
        (source.asn, source.as_org.as_deref(), source.country.as_deref()),
        (Some(64511), Some("Example Cloud"), Some("DE"))
    );

    // No IP, or an unknown one: nothing changes.
    for raw in [event(r#"{"user_agent":"x"}"#), event(r#"{"ip":"8.8.8.8"}"#)] {
        let before = decode(&raw, 1 << 20).unwrap().source;
        assert_eq!(enriched(&both, &raw), before);
    }
    assert!(enricher(Vec::new()).is_empty());
}

const AWS: &str = r#"{"syncToken":"1767571200","createDate":"2026-01-05-00-00-00",
  "prefixes":[{"ip_prefix":"192.0.2.0/25","region":"eu-test-1","service":"AMAZON","network_border_group":"eu-test-1"},
              {"ip_prefix":"192.0.2.0/26","region":"eu-test-1","service":"EC2","network_border_group":"eu-test-1"},
              {"ip_prefix":"198.18.0.0/15","region":"us-test-2","service":"S3","network_border_group":"us-test-2"}],
  "ipv6_prefixes":[{"ipv6_prefix":"2001:db8:a000::/36","region":"eu-test-1","service":"AMAZON","network_border_group":"eu-test-1"}]}"#;
const GCP: &str = r#"{"syncToken":"1767571200000","creationTime":"2026-01-05T00:00:00.000",
  "prefixes":[{"ipv4Prefix":"192.0.2.128/26","service":"Google Cloud","scope":"test-east1"},
              {"ipv6Prefix":"2001:db8:b000::/36","service":"Google Cloud","scope":"test-east1"}]}"#;
const AZURE: &str = r#"{"changeNumber":7,"cloud":"Public","values":[
  {"name":"AzureCloud.testregion","id":"AzureCloud.testregion","properties":{"changeNumber":3,"region":"testregion",
   "regionId":99,"platform":"Azure","systemService":"","addressPrefixes":["203.0.113.0/24","2001:db8:c000::/36"],
   "networkFeatures":["API","NSG"]}},
  {"name":"Storage","id":"Storage","properties":{"changeNumber":1,"region":"","regionId":0,"platform":"Azure",
   "systemService":"AzureStorage","addressPrefixes":["203.0.113.64/26"],"networkFeatures":null}}]}"#;

fn all_ranges() -> ranges::ProviderRanges {
    let mut builder = RangesBuilder::default();
    builder.add(Provider::Aws, AWS).unwrap();
    builder.add(Provider::Gcp, GCP).unwrap();
    builder.add(Provider::Azure, AZURE).unwrap();
    builder.build()
}

#[test]
fn provider_ranges_in_each_published_format() {
    let ranges = all_ranges();
    let cases = [
        ("192.0.2.1", Some(Provider::Aws)),
        ("192.0.2.127", Some(Provider::Aws)),
        ("192.0.2.128", Some(Provider::Gcp)),
        ("192.0.2.191", Some(Provider::Gcp)),
        ("192.0.2.192", None),
        ("198.19.255.255", Some(Provider::Aws)),
        ("198.20.0.0", None),
        ("203.0.113.70", Some(Provider::Azure)),
        ("2001:db8:a123::1", Some(Provider::Aws)),
        ("2001:db8:b000::1", Some(Provider::Gcp)),
        ("2001:db8:cfff:ffff::1", Some(Provider::Azure)),
        ("2001:db8:d000::1", None),
        ("::ffff:192.0.2.130", Some(Provider::Gcp)),
        ("0.0.0.0", None),
        ("255.255.255.255", None),
    ];
    for (address, expected) in cases {
        assert_eq!(ranges.provider_of(ip(address)), expected, "{address}");
    }
}

#[test]
fn overlapping_prefixes_become_disjoint_spans() {
    let mut builder = RangesBuilder::default();
    // A big prefix, a prefix inside it that ends first, one of another provider overlapping
    // its end, and one adjacent to it.
    builder.add(Provider::Aws, r#"{"prefixes":[{"ip_prefix":"10.0.0.0/8"},{"ip_prefix":"10.1.0.0/16"}]}"#).unwrap();
    builder
        .add(Provider::Azure, r#"{"values":[{"properties":{"addressPrefixes":["10.255.0.0/16","11.0.0.0/8"]}}]}"#)
        .unwrap();
    let ranges = builder.build();
    // After the small prefix ended, the big one still holds the address.
    assert_eq!(ranges.provider_of(ip("10.2.0.1")), Some(Provider::Aws));
    assert_eq!(ranges.provider_of(ip("10.255.0.1")), Some(Provider::Aws), "the span that starts first keeps it");
    assert_eq!(ranges.provider_of(ip("11.0.0.1")), Some(Provider::Azure));
    assert_eq!(ranges.provider_of(ip("12.0.0.1")), None);
}

#[test]
fn enrich_marks_provider_addresses_without_overriding_the_producer() {
    let enricher = Enricher { databases: vec![asn_database()], ranges: all_ranges() };
    let raw = event(r#"{"ip":"203.0.113.9"}"#);
    let source = enriched(&enricher, &raw);
    assert_eq!((source.provider.as_deref(), source.asn), (Some("azure"), Some(64500)));
    let raw = event(r#"{"ip":"203.0.113.9","provider":"oracle"}"#);
    assert_eq!(enriched(&enricher, &raw).provider.as_deref(), Some("oracle"));
}

#[test]
fn bad_files_say_which_setting_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("GeoLite2-ASN.mmdb");
    let not_mmdb = dir.path().join("notes.mmdb");
    std::fs::write(&not_mmdb, "not a database").unwrap();
    let bad_ranges = dir.path().join("ip-ranges.json");
    std::fs::write(&bad_ranges, r#"{"prefixes":[{"ip_prefix":"192.0.2.0/33"}]}"#).unwrap();
    let gcp_as_aws = dir.path().join("cloud.json");
    std::fs::write(&gcp_as_aws, GCP).unwrap();
    let good = dir.path().join("good.mmdb");
    std::fs::write(&good, mmdb(&[("192.0.2.0/24", Value::Map(vec![("country", Value::Str("FR"))]))])).unwrap();

    let mut builder = Enricher::builder();
    builder
        .database("enrichment.databases[0]", &missing)
        .database("enrichment.databases[1]", &not_mmdb)
        .database("enrichment.databases[2]", &good)
        .provider_ranges(Provider::Aws, "enrichment.aws_ranges", &bad_ranges)
        .provider_ranges(Provider::Gcp, "enrichment.gcp_ranges", &gcp_as_aws);
    builder.provider_ranges(Provider::Azure, "--azure-ranges", &gcp_as_aws);
    let problems: Vec<String> = builder.build().unwrap_err().iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    let expect = [
        format!("enrichment.databases[0]: {}: cannot read it: ", missing.display()),
        format!("enrichment.databases[1]: {}: is not a MaxMind-format database (.mmdb): ", not_mmdb.display()),
        format!(
            "enrichment.aws_ranges: {}: prefixes[0].ip_prefix: `192.0.2.0/33` is not an address prefix",
            bad_ranges.display()
        ),
        format!("--azure-ranges: {}: is not an Azure Service Tags JSON file: ", gcp_as_aws.display()),
    ];
    for (problem, start) in problems.iter().zip(&expect) {
        assert!(problem.starts_with(start.as_str()), "{problem}\n  should start with\n{start}");
    }

    // The good database alone works, and the GCP file is a GCP file.
    let mut builder = Enricher::builder();
    builder.database("k", &good).provider_ranges(Provider::Gcp, "g", &gcp_as_aws);
    let enricher = builder.build().unwrap();
    let raw = event(r#"{"ip":"192.0.2.150"}"#);
    let source = enriched(&enricher, &raw);
    assert_eq!((source.country.as_deref(), source.provider.as_deref()), (Some("FR"), Some("gcp")));
}

#[test]
fn an_enricher_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Enricher>();
    shared::<std::sync::Arc<Enricher>>();
    // The decode threads of a batch share one enricher.
    let enricher = std::sync::Arc::new(enricher(vec![asn_database()]));
    let found: Vec<Option<u32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["203.0.113.1", "198.51.100.1"]
            .map(|address| {
                let enricher = &enricher;
                scope.spawn(move || {
                    let raw = event(&format!(r#"{{"ip":"{address}"}}"#));
                    enriched(enricher, &raw).asn
                })
            })
            .into_iter()
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(found, [Some(64500), Some(64501)]);
}
