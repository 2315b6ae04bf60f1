//! Fixed vocabulary of the synthetic world: business systems and their actions, account name
//! stems, time zones and their home networks, attacker networks, user agents.
//!
//! Everything an incident uses comes from these same tables (actions, user agents, reasons),
//! so no field value marks incident traffic. Order matters for determinism: append, never
//! reorder.

use super::clock::{self, Zone};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ActionKind {
    Read,
    Write,
    Export,
}

#[derive(Debug)]
pub(crate) struct ActionSpec {
    pub(crate) name: &'static str,
    /// Relative frequency in ordinary traffic.
    pub(crate) weight: u32,
    /// Size of a typical event of this action relative to the account's median.
    pub(crate) size: f64,
    pub(crate) kind: ActionKind,
}

#[derive(Debug)]
pub(crate) struct SystemCatalog {
    /// `target.system`.
    pub(crate) system: &'static str,
    pub(crate) actions: &'static [ActionSpec],
    /// `target.resource` stems; events append `/<number>`.
    pub(crate) resources: &'static [&'static str],
}

impl SystemCatalog {
    pub(crate) fn weights(&self) -> impl Iterator<Item = u32> + '_ {
        self.actions.iter().map(|a| a.weight)
    }

    /// Weighted mean of action sizes: turns the median into an expected event size.
    pub(crate) fn mean_size_factor(&self) -> f64 {
        let total: f64 = self.actions.iter().map(|a| f64::from(a.weight)).sum();
        self.actions.iter().map(|a| f64::from(a.weight) * a.size).sum::<f64>() / total
    }

    pub(crate) fn export_action(&self) -> &'static ActionSpec {
        let actions = self.actions;
        actions.iter().find(|a| a.kind == ActionKind::Export).unwrap_or(&actions[0])
    }
}

const fn action(name: &'static str, weight: u32, size: f64, kind: ActionKind) -> ActionSpec {
    ActionSpec { name, weight, size, kind }
}

use ActionKind::{Export, Read, Write};

pub(crate) const SYSTEMS: &[SystemCatalog] = &[
    SystemCatalog {
        system: "salesforce",
        actions: &[
            action("crm.contacts.read", 35, 1.0, Read),
            action("crm.contacts.update", 15, 0.15, Write),
            action("crm.accounts.read", 20, 1.0, Read),
            action("crm.opportunities.list", 15, 1.6, Read),
            action("contacts.export", 3, 5.0, Export),
        ],
        resources: &["contacts", "accounts", "opportunities", "leads"],
    },
    SystemCatalog {
        system: "hubspot",
        actions: &[
            action("hubspot.contacts.read", 40, 1.0, Read),
            action("hubspot.deals.update", 15, 0.2, Write),
            action("hubspot.companies.list", 25, 1.4, Read),
            action("hubspot.contacts.export", 3, 5.0, Export),
        ],
        resources: &["contacts", "deals", "companies"],
    },
    SystemCatalog {
        system: "billing",
        actions: &[
            action("billing.invoices.list", 30, 1.5, Read),
            action("billing.invoices.read", 30, 0.8, Read),
            action("billing.payments.read", 20, 1.0, Read),
            action("billing.customers.update", 10, 0.2, Write),
            action("billing.invoices.export", 3, 5.0, Export),
        ],
        resources: &["invoices", "payments", "customers"],
    },
    SystemCatalog {
        system: "warehouse",
        actions: &[
            action("warehouse.query", 40, 1.0, Read),
            action("warehouse.tables.read", 25, 1.5, Read),
            action("warehouse.tables.load", 25, 1.2, Write),
            action("warehouse.export", 3, 5.0, Export),
        ],
        resources: &["tables/orders", "tables/events", "tables/customers", "tables/ledger"],
    },
    SystemCatalog {
        system: "shop",
        actions: &[
            action("orders.list", 30, 1.2, Read),
            action("orders.read", 30, 0.6, Read),
            action("orders.update", 15, 0.2, Write),
            action("inventory.read", 20, 1.0, Read),
            action("orders.export", 3, 5.0, Export),
        ],
        resources: &["orders", "inventory", "products"],
    },
    SystemCatalog {
        system: "payments",
        actions: &[
            action("payments.events.read", 40, 0.8, Read),
            action("payments.charges.read", 30, 1.0, Read),
            action("payments.refunds.create", 5, 0.2, Write),
            action("payments.payouts.list", 15, 1.2, Read),
            action("payments.export", 2, 5.0, Export),
        ],
        resources: &["events", "charges", "refunds", "payouts"],
    },
    SystemCatalog {
        system: "slack",
        actions: &[
            action("chat.messages.post", 50, 0.3, Write),
            action("chat.channels.list", 20, 1.0, Read),
            action("users.read", 25, 1.0, Read),
            action("chat.history.export", 2, 5.0, Export),
        ],
        resources: &["channels", "users", "messages"],
    },
    SystemCatalog {
        system: "ledger",
        actions: &[
            action("ledger.entries.list", 35, 1.3, Read),
            action("ledger.entries.read", 30, 0.7, Read),
            action("ledger.reconcile.run", 10, 0.5, Write),
            action("ledger.reports.export", 3, 5.0, Export),
        ],
        resources: &["entries", "accounts", "reports"],
    },
    SystemCatalog {
        system: "workday",
        actions: &[
            action("hr.employees.read", 40, 0.8, Read),
            action("hr.employees.list", 30, 1.3, Read),
            action("hr.payroll.read", 10, 1.0, Read),
            action("hr.employees.export", 3, 5.0, Export),
        ],
        resources: &["employees", "payroll", "positions"],
    },
    SystemCatalog {
        system: "s3",
        actions: &[
            action("storage.objects.get", 40, 1.0, Read),
            action("storage.objects.put", 30, 1.0, Write),
            action("storage.objects.list", 25, 0.3, Read),
            action("storage.bucket.export", 2, 5.0, Export),
        ],
        resources: &["buckets/backups", "buckets/exports", "buckets/archive"],
    },
    SystemCatalog {
        system: "okta",
        actions: &[
            action("iam.users.list", 40, 1.0, Read),
            action("iam.groups.read", 30, 0.8, Read),
            action("iam.roles.read", 25, 0.6, Read),
            action("iam.audit.export", 3, 5.0, Export),
        ],
        resources: &["users", "groups", "roles"],
    },
    SystemCatalog {
        system: "zendesk",
        actions: &[
            action("tickets.read", 40, 1.0, Read),
            action("tickets.update", 25, 0.2, Write),
            action("tickets.list", 30, 1.3, Read),
            action("tickets.export", 3, 5.0, Export),
        ],
        resources: &["tickets", "users", "organizations"],
    },
];

/// Authentication and credential-lifecycle actions, shared by ordinary and incident traffic.
pub(crate) const AUTH_LOGIN: &str = "auth.login";
pub(crate) const AUTH_TOKEN: &str = "auth.token";
pub(crate) const CREDENTIAL_CREATE: &str = "credential.create";
pub(crate) const CREDENTIAL_ROTATE: &str = "credential.rotate";
pub(crate) const CREDENTIAL_REVOKE: &str = "credential.revoke";
/// `target.system` of authentication and credential events.
pub(crate) const IDENTITY_SYSTEM: &str = "iam";

pub(crate) const REASON_INVALID_SECRET: &str = "invalid secret";
pub(crate) const REASON_TOKEN_EXPIRED: &str = "token expired";
pub(crate) const REASON_INSUFFICIENT_SCOPE: &str = "insufficient scope";
pub(crate) const REASON_UNAVAILABLE: &str = "service unavailable";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProfileKind {
    BusinessHours,
    WeeklyReport,
    HourlyCron,
    NightlyJob,
    AlwaysOn,
}

use ProfileKind::{AlwaysOn, BusinessHours, HourlyCron, NightlyJob, WeeklyReport};

/// Share of accounts per profile, in percent.
pub(crate) const PROFILE_MIX: &[(ProfileKind, u32)] =
    &[(BusinessHours, 34), (WeeklyReport, 8), (HourlyCron, 20), (NightlyJob, 16), (AlwaysOn, 22)];

/// An account name stem; several profiles share a stem so the name hints but does not tell.
pub(crate) struct NameStem {
    pub(crate) stem: &'static str,
    /// Index into [`SYSTEMS`].
    pub(crate) system: usize,
    pub(crate) profiles: &'static [ProfileKind],
}

const fn stem(stem: &'static str, system: usize, profiles: &'static [ProfileKind]) -> NameStem {
    NameStem { stem, system, profiles }
}

pub(crate) const NAME_STEMS: &[NameStem] = &[
    stem("svc-crm-sync", 0, &[BusinessHours, HourlyCron, AlwaysOn]),
    stem("zap-hubspot", 1, &[BusinessHours, WeeklyReport, AlwaysOn]),
    stem("zap-salesforce-leads", 0, &[BusinessHours, AlwaysOn]),
    stem("svc-billing-etl", 2, &[NightlyJob, HourlyCron]),
    stem("svc-invoice-api", 2, &[BusinessHours, AlwaysOn]),
    stem("svc-dwh-load", 3, &[NightlyJob, HourlyCron]),
    stem("svc-bi-extract", 3, &[WeeklyReport, BusinessHours, NightlyJob]),
    stem("int-shopify-orders", 4, &[AlwaysOn, HourlyCron]),
    stem("svc-inventory-poll", 4, &[HourlyCron]),
    stem("svc-payments-webhook", 5, &[AlwaysOn]),
    stem("svc-payout-recon", 5, &[NightlyJob, HourlyCron]),
    stem("zap-slack-notify", 6, &[BusinessHours, AlwaysOn]),
    stem("svc-finance-report", 7, &[WeeklyReport, BusinessHours, NightlyJob]),
    stem("svc-ledger-reconcile", 7, &[HourlyCron, NightlyJob]),
    stem("svc-hr-sync", 8, &[BusinessHours, NightlyJob]),
    stem("svc-people-report", 8, &[WeeklyReport]),
    stem("svc-backup-export", 9, &[NightlyJob]),
    stem("svc-s3-archiver", 9, &[HourlyCron, NightlyJob]),
    stem("svc-access-review", 10, &[BusinessHours, WeeklyReport]),
    stem("svc-scim-provision", 10, &[HourlyCron, AlwaysOn]),
    stem("zap-zendesk-triage", 11, &[BusinessHours, AlwaysOn]),
    stem("svc-support-desk", 11, &[BusinessHours]),
];

/// Where accounts run, and the networks a region's accounts come from.
pub(crate) struct Region {
    pub(crate) zone: &'static Zone,
    pub(crate) weight: u32,
    pub(crate) country: &'static str,
    /// (ASN, first octets of its /24s, weight); cloud providers weigh more.
    pub(crate) providers: &'static [(u32, &'static [u8], u32)],
}

pub(crate) const REGIONS: &[Region] = &[
    Region {
        zone: &clock::NEW_YORK,
        weight: 30,
        country: "US",
        providers: &[
            (16509, &[3, 52, 54], 4),
            (15169, &[34, 35], 2),
            (8075, &[20, 40], 2),
            (7018, &[12], 1),
            (701, &[71], 1),
        ],
    },
    Region {
        zone: &clock::LOS_ANGELES,
        weight: 15,
        country: "US",
        providers: &[(16509, &[52, 54], 4), (15169, &[34], 2), (7018, &[12], 1)],
    },
    Region { zone: &clock::CHICAGO, weight: 10, country: "US", providers: &[(16509, &[3, 18], 3), (701, &[71], 1)] },
    Region {
        zone: &clock::BERLIN,
        weight: 15,
        country: "DE",
        providers: &[(16509, &[3, 18], 3), (3320, &[80, 217], 2), (24940, &[88, 116], 1), (8075, &[20], 1)],
    },
    Region {
        zone: &clock::LONDON,
        weight: 10,
        country: "GB",
        providers: &[(16509, &[18, 35], 3), (2856, &[81, 86], 2), (8075, &[51], 1)],
    },
    Region {
        zone: &clock::TOKYO,
        weight: 8,
        country: "JP",
        providers: &[(16509, &[13, 54], 3), (2516, &[106, 111], 2), (17676, &[126], 1)],
    },
    Region {
        zone: &clock::KOLKATA,
        weight: 8,
        country: "IN",
        providers: &[(16509, &[13, 65], 3), (55836, &[49], 2), (9498, &[122], 1)],
    },
    Region {
        zone: &clock::SINGAPORE,
        weight: 4,
        country: "SG",
        providers: &[(16509, &[13, 18], 3), (15169, &[34], 1), (9506, &[202], 1)],
    },
];

/// Networks no account calls home: hosting and ISP ranges an attacker or a stolen key might
/// come from. First octets are disjoint from every home provider's, so no /24 is shared.
pub(crate) const EXTERNAL_PROVIDERS: &[(u32, &str, &[u8])] = &[
    (14061, "NL", &[45, 95]),
    (16276, "FR", &[5, 91]),
    (9009, "RO", &[185]),
    (4134, "CN", &[14]),
    (12389, "RU", &[194]),
    (28573, "BR", &[177]),
    (7552, "VN", &[103]),
    (200019, "MD", &[37]),
    (49505, "RU", &[62]),
    (36352, "US", &[196]),
    (45102, "SG", &[47]),
    (8452, "EG", &[156]),
];

/// User agents of integration clients. Attackers use the same list: the UA marks nothing.
pub(crate) const USER_AGENTS: &[&str] = &[
    "python-requests/2.31.0",
    "python-requests/2.28.2",
    "Go-http-client/2.0",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "aws-sdk-java/2.25.16",
    "Apache-HttpClient/4.5.14 (Java/17.0.9)",
    "node-fetch/2.7.0",
    "axios/1.6.7",
    "Faraday v2.9.0",
    "curl/8.5.0",
    "Boto3/1.34.51 Python/3.11.8",
];

/// User agent of Zapier-style integrations (accounts whose stem starts with `zap-`).
pub(crate) const ZAPIER_USER_AGENT: &str = "Zapier";

pub(crate) const TENANT_MAIN: &str = "acme";
pub(crate) const TENANT_SMALL: &str = "globex";
/// Percent of accounts in [`TENANT_SMALL`].
pub(crate) const TENANT_SMALL_PERCENT: usize = 15;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_has_stems_and_every_stem_a_system() {
        for (profile, _) in PROFILE_MIX {
            assert!(NAME_STEMS.iter().any(|s| s.profiles.contains(profile)), "{profile:?}");
        }
        for s in NAME_STEMS {
            assert!(s.system < SYSTEMS.len(), "{}", s.stem);
        }
        for system in SYSTEMS {
            assert_eq!(system.export_action().kind, ActionKind::Export, "{}", system.system);
        }
    }

    #[test]
    fn external_networks_never_overlap_home_networks() {
        let home: Vec<u8> = REGIONS.iter().flat_map(|r| r.providers.iter().flat_map(|p| p.1.iter().copied())).collect();
        for (_, _, octets) in EXTERNAL_PROVIDERS {
            for octet in *octets {
                assert!(!home.contains(octet), "first octet {octet} is both home and external");
            }
        }
    }
}
