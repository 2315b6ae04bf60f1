"""Writes small MaxMind-format databases for the enrichment tests, with mmdb-writer.

Usage: make_mmdb.py OUT_DIR

Writes, with made-up values in documentation address ranges (RFC 5737) only:
- asn.mmdb      GeoLite2-ASN layout: autonomous_system_number, autonomous_system_organization
- country.mmdb  GeoLite2-Country layout: country.iso_code (and names), registered_country
- ipinfo.mmdb   ipinfo's ip-to-asn country_asn layout: asn "AS64511", as_name, country
Prints one JSON line naming the files.
"""

import json
import os
import sys

from mmdb_writer import MMDBWriter
from netaddr import IPSet


def country(code, name):
    return {"geoname_id": 1000 + len(name), "iso_code": code, "names": {"en": name}}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    asn = MMDBWriter(ip_version=4, database_type="GeoLite2-ASN", languages=["en"], description="auditwatch test ASN")
    asn.insert_network(
        IPSet(["203.0.113.0/24"]),
        {"autonomous_system_number": 64510, "autonomous_system_organization": "Example Hosting Ltd"},
    )
    asn.insert_network(
        IPSet(["198.51.100.0/24"]),
        {"autonomous_system_number": 64500, "autonomous_system_organization": "Example Office Net"},
    )
    asn.to_db_file(os.path.join(out, "asn.mmdb"))

    geo = MMDBWriter(ip_version=4, database_type="GeoLite2-Country", languages=["en"], description="auditwatch test country")
    geo.insert_network(
        IPSet(["203.0.113.0/24"]),
        {"continent": {"code": "EU", "names": {"en": "Europe"}}, "country": country("RO", "Romania"),
         "registered_country": country("NL", "Netherlands")},
    )
    geo.insert_network(IPSet(["198.51.100.0/24"]), {"country": country("US", "United States")})
    geo.to_db_file(os.path.join(out, "country.mmdb"))

    ipinfo = MMDBWriter(ip_version=4, database_type="ipinfo country_asn.mmdb", languages=["en"], description="auditwatch test ip-to-asn")
    ipinfo.insert_network(
        IPSet(["192.0.2.0/24"]),
        {"asn": "AS64511", "as_name": "Example Cloud GmbH", "as_domain": "cloud.example", "country": "DE",
         "country_name": "Germany", "continent": "EU", "continent_name": "Europe"},
    )
    ipinfo.insert_network(
        IPSet(["198.51.100.0/24"]),
        {"asn": "AS64500", "as_name": "Example Office Net", "as_domain": "office.example", "country": "US",
         "country_name": "United States", "continent": "NA", "continent_name": "North America"},
    )
    ipinfo.to_db_file(os.path.join(out, "ipinfo.mmdb"))

    print(json.dumps({name: os.path.join(out, name) for name in ["asn.mmdb", "country.mmdb", "ipinfo.mmdb"]}))


if __name__ == "__main__":
    main()
