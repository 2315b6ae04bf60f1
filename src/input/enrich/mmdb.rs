//! One MaxMind-format database (`.mmdb`), read whole into memory with the `maxminddb` crate,
//! and the record layouts auditwatch reads from it.
//!
//! A record is decoded into [`Record`], which names the fields of every supported layout and
//! skips the rest without allocating: GeoLite2-ASN (`autonomous_system_number`,
//! `autonomous_system_organization`), GeoLite2-Country and -City (`country.iso_code`, else
//! `registered_country.iso_code`), and ipinfo's ip-to-asn country_asn (`asn` as `"AS64500"` or
//! a number, `as_name`, `country` as an ISO code string). A lookup that fails (no data, an
//! address of the other family, a record of another shape) finds nothing.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use maxminddb::Reader;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;

/// A database in memory.
pub struct Database {
    reader: Reader<Vec<u8>>,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database").field("database_type", &self.reader.metadata().database_type).finish()
    }
}

/// What one database says about an address; strings borrowed from the database.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Found<'a> {
    pub asn: Option<u32>,
    pub as_org: Option<&'a str>,
    /// ISO 3166-1 alpha-2 code.
    pub country: Option<&'a str>,
}

impl Database {
    /// Reads and checks the file; the error is a sentence for the user.
    pub fn open(path: &Path) -> Result<Database, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
        Database::from_bytes(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Result<Database, String> {
        let reader =
            Reader::from_source(bytes).map_err(|e| format!("is not a MaxMind-format database (.mmdb): {e}"))?;
        Ok(Database { reader })
    }

    pub fn lookup(&self, ip: IpAddr) -> Option<Found<'_>> {
        let result = self.reader.lookup(ip).ok()?;
        let record: Record<'_> = result.decode().ok()??;
        let found = Found {
            asn: record.autonomous_system_number.or(record.asn).map(|a| a.0).filter(|&a| a != 0),
            as_org: record.autonomous_system_organization.or(record.as_name).filter(|s| !s.is_empty()),
            country: record.country.or(record.registered_country).map(|c| c.0).filter(|c| !c.is_empty()),
        };
        (found != Found::default()).then_some(found)
    }
}

/// The fields of every supported layout; everything else in a record is skipped.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(default)]
    autonomous_system_number: Option<Asn>,
    #[serde(default, borrow)]
    autonomous_system_organization: Option<&'a str>,
    #[serde(default)]
    asn: Option<Asn>,
    #[serde(default, borrow)]
    as_name: Option<&'a str>,
    #[serde(default, borrow)]
    country: Option<Country<'a>>,
    #[serde(default, borrow)]
    registered_country: Option<Country<'a>>,
}

/// An AS number, as a number or as `"AS64500"`; anything else is none.
struct Asn(u32);

impl<'de> Deserialize<'de> for Asn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Asn;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an AS number or \"AS64500\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Asn, E> {
                u32::try_from(v).map(Asn).map_err(|_| E::custom("AS number over 32 bits"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Asn, E> {
                u32::try_from(v).map(Asn).map_err(|_| E::custom("AS number out of range"))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Asn, E> {
                let digits = v.strip_prefix("AS").or_else(|| v.strip_prefix("as")).unwrap_or(v);
                digits.parse().map(Asn).map_err(|_| E::custom("not an AS number"))
            }
        }
        d.deserialize_any(V)
    }
}

/// A country: a map with `iso_code` (GeoLite2) or the code itself (ip-to-asn).
struct Country<'a>(&'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Country<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Country<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a country code or a map with `iso_code`")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Country<'a>, E> {
                Ok(Country(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Country<'a>, A::Error> {
                let mut code = "";
                while let Some(key) = map.next_key::<&'de str>()? {
                    if key == "iso_code" {
                        code = map.next_value::<&'de str>()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Country(code))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}
