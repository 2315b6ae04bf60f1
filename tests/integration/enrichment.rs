//! IP enrichment through the `auditwatch replay` binary: MaxMind-format databases written at
//! test time by mmdb-writer (`tests/peers/make_mmdb.py`, run with `AUDITWATCH_PYTHON`), and
//! provider ranges in AWS's published format, fill in what CloudTrail records lack, and
//! `key-new-network` reports it, in `replay` and in the service on the mock cluster; without any
//! database it falls back to network distance; a missing or broken file stops the start, naming
//! the option or config key.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::support::{binary, write_file};

/// The databases `make_mmdb.py` writes into `dir`.
fn make_databases(dir: &Path) -> Value {
    let python = std::env::var("AUDITWATCH_PYTHON").unwrap_or_else(|_| {
        panic!("AUDITWATCH_PYTHON is not set: run the tests with ./test.sh, which builds the venv of Python peers")
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/make_mmdb.py");
    let out = Command::new(python).arg(script).arg(dir).output().unwrap();
    assert!(out.status.success(), "make_mmdb.py failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// An S3 read by one IAM user's key from `ip` at `time`, as CloudTrail records it.
fn get_object(time: &str, ip: &str, n: usize) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLEREPORTS01", "accountId": "111122223333",
                         "arn": "arn:aws:iam::111122223333:user/svc-reports", "accessKeyId": "AKIAEXAMPLEREPORTS01",
                         "userName": "svc-reports"},
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "eu-central-1",
        "sourceIPAddress": ip,
        "userAgent": "reports-job/3.2 aws-sdk-go-v2/1.30.3",
        "requestParameters": {"bucketName": "reports-bucket", "key": format!("daily/{n}.csv")},
        "eventID": format!("00000000-0000-4000-8000-{n:012}"),
        "eventType": "AwsApiCall",
        "recipientAccountId": "111122223333"
    })
}

/// Two weeks of hourly reads from the office network (198.51.100.0/24), then `later`.
fn history_then(later: &[(&str, &str)]) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-05T00:00:00Z").unwrap();
    let mut lines = String::new();
    for hour in 0..14 * 24 {
        let time = (start + chrono::Duration::hours(hour)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let ip = if hour % 2 == 0 { "198.51.100.7" } else { "198.51.100.9" };
        lines.push_str(&format!("{}\n", get_object(&time, ip, hour as usize)));
    }
    for (i, (time, ip)) in later.iter().enumerate() {
        lines.push_str(&format!("{}\n", get_object(time, ip, 100_000 + i)));
    }
    lines
}

/// Replay CloudTrail `input`: (exit success, the alerts, stderr).
fn replay(args: &[&str], input: &str) -> (bool, Vec<Value>, String) {
    let args: Vec<&str> = ["--format", "cloudtrail"].into_iter().chain(args.iter().copied()).collect();
    let (ok, stdout, stderr) = crate::support::replay(&args, Some(input.as_bytes()));
    (ok, stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), stderr)
}

fn new_network_alerts(alerts: Vec<Value>) -> Vec<Value> {
    alerts.into_iter().filter(|a| a["detector"] == "key-new-network").collect()
}

fn path(databases: &Value, name: &str) -> String {
    databases[name].as_str().unwrap().to_string()
}

#[test]
fn replay_fills_asn_organisation_country_and_provider_from_databases() {
    let dir = tempfile::tempdir().unwrap();
    let databases = make_databases(dir.path());
    let aws = write_file(
        &dir.path().join("ip-ranges.json"),
        r#"{"syncToken":"1767571200","createDate":"2026-01-05-00-00-00","prefixes":[
            {"ip_prefix":"203.0.113.0/25","region":"eu-test-1","service":"AMAZON","network_border_group":"eu-test-1"},
            {"ip_prefix":"203.0.113.0/26","region":"eu-test-1","service":"EC2","network_border_group":"eu-test-1"}],
          "ipv6_prefixes":[]}"#,
    );
    let input = history_then(&[("2026-01-20T10:00:00Z", "203.0.113.7")]);
    let (asn, country) = (path(&databases, "asn.mmdb"), path(&databases, "country.mmdb"));
    let store = dir.path().join("store");
    let args = [
        "--ip-database",
        &asn,
        "--ip-database",
        &country,
        "--aws-ranges",
        aws.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ];
    let (ok, alerts, stderr) = replay(&args, &input);
    assert!(ok, "{stderr}");
    let alerts = new_network_alerts(alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["source_ip"], "203.0.113.7");
    assert_eq!(alert["credential_id"], "AKIAEXAMPLEREPORTS01");
    let baseline = &alert["evidence"]["baseline"];
    assert_eq!(baseline["asn"], 64510, "{alert:#}");
    assert_eq!(baseline["as_org"], "Example Hosting Ltd");
    assert_eq!(baseline["country"], "RO", "country.iso_code, not registered_country");
    assert_eq!(baseline["provider"], "aws");
    assert_eq!(baseline["judged_by"], "a new ASN or country");
    // The history was enriched too: its ASN and country are the usual ones.
    assert_eq!(baseline["usual_asns"], json!(["AS64500"]));
    assert_eq!(baseline["usual_countries"], json!(["US"]));
    let new = &alert["evidence"]["new"];
    assert_eq!(new, &json!(["network 203.0.113.0/24", "ASN 64510 (Example Hosting Ltd)", "country RO"]));
    let summary = alert["summary"].as_str().unwrap();
    assert!(summary.contains("(AS64510, Example Hosting Ltd, RO, provider aws)"), "{summary}");
    // The store's writer decodes each event again and enriches it the same way.
    let out = Command::new(binary())
        .args(["query", "--store", store.to_str().unwrap(), "--format", "csv"])
        .arg("SELECT source_asn, source_as_org, source_country, source_provider FROM events WHERE source_ip = '203.0.113.7'")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "source_asn,source_as_org,source_country,source_provider\n64510,Example Hosting Ltd,RO,aws\n"
    );
}

#[test]
fn one_ip_to_asn_database_gives_asn_organisation_and_country() {
    let dir = tempfile::tempdir().unwrap();
    let databases = make_databases(dir.path());
    let input = history_then(&[("2026-01-20T10:00:00Z", "192.0.2.50")]);
    let (ok, alerts, stderr) = replay(&["--ip-database", &path(&databases, "ipinfo.mmdb")], &input);
    assert!(ok, "{stderr}");
    let alerts = new_network_alerts(alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let baseline = &alerts[0]["evidence"]["baseline"];
    assert_eq!(
        (&baseline["asn"], &baseline["as_org"], &baseline["country"]),
        (&json!(64511), &json!("Example Cloud GmbH"), &json!("DE"))
    );
    assert_eq!(baseline["provider"], Value::Null);
    assert_eq!(baseline["usual_asns"], json!(["AS64500"]));
}

#[test]
fn without_a_database_a_new_16_fires_by_network_distance() {
    // A new /24 inside the known /16 first (quiet), then a far network.
    let input = history_then(&[("2026-01-20T09:00:00Z", "198.51.7.7"), ("2026-01-20T10:00:00Z", "203.0.113.7")]);
    let (ok, alerts, stderr) = replay(&[], &input);
    assert!(ok, "{stderr}");
    let alerts = new_network_alerts(alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["source_ip"], "203.0.113.7");
    let baseline = &alert["evidence"]["baseline"];
    assert_eq!(baseline["judged_by"], "network distance: a /16 the key never used; no ASN or country known");
    assert_eq!((&baseline["asn"], &baseline["country"]), (&Value::Null, &Value::Null));
    assert_eq!(alert["evidence"]["new"], json!(["network 203.0.113.0/24", "network 203.0.0.0/16"]));
    let summary = alert["summary"].as_str().unwrap();
    assert!(summary.contains("(no ASN or country known)") && summary.contains("none in 203.0.0.0/16"), "{summary}");

    // The same traffic from inside the known /16 only: nothing.
    let input = history_then(&[("2026-01-20T09:00:00Z", "198.51.7.7"), ("2026-01-20T10:00:00Z", "198.51.200.1")]);
    let (ok, alerts, stderr) = replay(&[], &input);
    assert!(ok, "{stderr}");
    assert_eq!(new_network_alerts(alerts), Vec::<Value>::new());
}

#[test]
fn a_missing_or_broken_file_stops_the_start_naming_its_option_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing: PathBuf = dir.path().join("GeoLite2-ASN.mmdb");
    let not_mmdb = write_file(&dir.path().join("notes.mmdb"), "these are not the addresses you are looking for\n");
    let input = history_then(&[]);

    let (ok, alerts, stderr) = replay(&["--ip-database", missing.to_str().unwrap()], &input);
    assert!(!ok && alerts.is_empty(), "{stderr}");
    assert!(stderr.contains(&format!("--ip-database: {}: cannot read it", missing.display())), "{stderr}");
    let (ok, _, stderr) = replay(&["--ip-database", not_mmdb.to_str().unwrap()], &input);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!("--ip-database: {}: is not a MaxMind-format database (.mmdb)", not_mmdb.display())),
        "{stderr}"
    );
    let (ok, _, stderr) = replay(&["--gcp-ranges", not_mmdb.to_str().unwrap()], &input);
    assert!(!ok && stderr.contains("--gcp-ranges: ") && stderr.contains("is not a GCP cloud.json"), "{stderr}");

    // The service's config: `config check` reads the files as `run` does at start.
    let config = format!(
        "[kafka]\nbrokers = \"localhost:9092\"\n\n[[topics]]\nname = \"audit\"\n\n[dead_letter]\ntopic = \"audit.dead\"\n\n\
         [enrichment]\ndatabases = [{:?}, {:?}]\n",
        not_mmdb.to_str().unwrap(),
        missing.to_str().unwrap()
    );
    let config = write_file(&dir.path().join("auditwatch.toml"), &config);
    let out = Command::new(binary()).args(["config", "check"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("enrichment.databases[0]: {}: is not a MaxMind-format", not_mmdb.display())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("enrichment.databases[1]: {}: cannot read it", missing.display())), "{stderr}");
}

/// The service path: `[enrichment]` in the config, CloudTrail from a topic on the mock cluster,
/// the alert on the alerts topic carries what the databases know.
#[test]
fn the_service_enriches_cloudtrail_from_its_topic() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use crate::support::{flush, produce, producer, read_all, run_until_done};
    use auditwatch::admin::metrics::Metrics;
    use auditwatch::pipeline::Control;

    let dir = tempfile::tempdir().unwrap();
    let databases = make_databases(dir.path());
    let cluster = rdkafka::mocking::MockCluster::new(1).unwrap();
    for topic in ["aws.cloudtrail", "audit.deadletter", "alerts"] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let state = dir.path().join("state");
    let text = format!(
        "[kafka]\nbrokers = \"{bootstrap}\"\ngroup_id = \"enrich\"\n[[topics]]\nname = \"aws.cloudtrail\"\nformat = \"cloudtrail\"\n\
         [dead_letter]\ntopic = \"audit.deadletter\"\n[state]\ndir = {:?}\n[[outputs]]\ntype = \"kafka\"\ntopic = \"alerts\"\n\
         [enrichment]\ndatabases = [{:?}, {:?}]\n",
        state.to_str().unwrap(),
        path(&databases, "asn.mmdb"),
        path(&databases, "country.mmdb"),
    );
    let config = auditwatch::config::load_from(&text, "test", &[]).unwrap();
    let input = history_then(&[("2026-01-20T10:00:00Z", "203.0.113.7")]);
    let producer = producer(&bootstrap);
    for line in input.lines() {
        produce(&producer, "aws.cloudtrail", b"svc-reports", line.as_bytes());
    }
    flush(&producer);
    let total = input.lines().count() as u64;

    let control = Control::default();
    let metrics = Arc::new(Metrics::new(&["aws.cloudtrail".to_string()]));
    let summary = run_until_done(&config, &control, metrics, || control.handled.load(Ordering::Relaxed) >= total);
    assert_eq!((summary.events, summary.dead_letters), (total, 0));
    let alerts: Vec<Value> = read_all(&bootstrap, "alerts", 1)
        .iter()
        .map(|a| serde_json::from_slice(&a.payload).unwrap())
        .filter(|a: &Value| a["detector"] == "key-new-network")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let baseline = &alerts[0]["evidence"]["baseline"];
    assert_eq!(
        (&baseline["asn"], &baseline["as_org"], &baseline["country"], &baseline["usual_asns"]),
        (&json!(64510), &json!("Example Hosting Ltd"), &json!("RO"), &json!(["AS64500"]))
    );
}

/// An instance role's fixture record, as one line.
fn instance_record(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cloudtrail").join(name);
    let record: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    format!("{record}\n")
}

fn session_alerts(alerts: Vec<Value>) -> Vec<Value> {
    alerts.into_iter().filter(|a| a["detector"] == "session-off-origin").collect()
}

/// The credentials EC2 delivered to an instance, used on it (an AWS address) and then off it:
/// with AWS's ranges loaded the use from outside them raises `session-off-origin`, even as the
/// key's very first use; without the ranges, the move to another network does.
#[test]
fn an_instance_roles_key_used_off_its_instance_is_found_with_no_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let aws = write_file(
        &dir.path().join("ip-ranges.json"),
        r#"{"syncToken":"1767571200","createDate":"2026-01-05-00-00-00","prefixes":[
            {"ip_prefix":"203.0.113.0/25","region":"eu-central-1","service":"EC2","network_border_group":"eu-central-1"}],
          "ipv6_prefixes":[]}"#,
    );
    let ranges = ["--aws-ranges", aws.to_str().unwrap()];
    let (on, off) =
        (instance_record("instance-role-on-instance.json"), instance_record("instance-role-off-instance.json"));

    let (ok, alerts, stderr) = replay(&ranges, &format!("{on}{off}"));
    assert!(ok, "{stderr}");
    let alerts = session_alerts(alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert["account"], "arn:aws:iam::111122223333:role/web-app");
    assert_eq!(alert["credential_id"], "ASIA5EXAMPLEWEBAPP01");
    assert_eq!(alert["source_ip"], "192.0.2.99");
    assert_eq!(alert["category"], "credential_misuse");
    let baseline = &alert["evidence"]["baseline"];
    assert_eq!(baseline["judged_by"], "instance role used outside every provider's ranges", "{alert:#}");
    assert_eq!(baseline["instance"], "i-0f1e2d3c4b5a69788");
    assert_eq!(baseline["uses"], 1);

    // On the instance only: quiet.
    let (ok, alerts, stderr) = replay(&ranges, &format!("{on}{on}"));
    assert!(ok, "{stderr}");
    assert_eq!(session_alerts(alerts), Vec::<Value>::new());

    // The stolen key's first use, seen alone: outside every range, so it fires with no history.
    let (ok, alerts, stderr) = replay(&ranges, &off);
    assert!(ok, "{stderr}");
    let alerts = session_alerts(alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["evidence"]["baseline"]["uses"], 0);

    // No ranges: the first use cannot be judged, the move off the instance's network can.
    let (ok, alerts, stderr) = replay(&[], &off);
    assert!(ok, "{stderr}");
    assert_eq!(session_alerts(alerts), Vec::<Value>::new());
    let (ok, alerts, stderr) = replay(&[], &format!("{on}{off}"));
    assert!(ok, "{stderr}");
    let alerts = session_alerts(alerts);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0]["evidence"]["baseline"]["judged_by"], "instance role used off its instance");
}
