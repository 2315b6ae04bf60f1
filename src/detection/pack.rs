//! The shipped detector pack, built into the binary so `replay` and `demo` work from any
//! directory. The files live in `detectors/`; a test checks this list matches that directory.

use std::path::Path;

use crate::detection::definition::{load_sources, Detector, Problems};

pub const FILES: &[(&str, &str)] = &[
    ("detectors/audit-log-tampering.toml", include_str!("../../detectors/audit-log-tampering.toml")),
    ("detectors/bulk-deletion-rate.toml", include_str!("../../detectors/bulk-deletion-rate.toml")),
    ("detectors/bulk-export.toml", include_str!("../../detectors/bulk-export.toml")),
    ("detectors/compute-hijacking.toml", include_str!("../../detectors/compute-hijacking.toml")),
    ("detectors/credential-for-other.toml", include_str!("../../detectors/credential-for-other.toml")),
    ("detectors/denied-burst.toml", include_str!("../../detectors/denied-burst.toml")),
    ("detectors/discovery-burst.toml", include_str!("../../detectors/discovery-burst.toml")),
    ("detectors/failed-auth-burst.toml", include_str!("../../detectors/failed-auth-burst.toml")),
    ("detectors/foreign-key-use.toml", include_str!("../../detectors/foreign-key-use.toml")),
    ("detectors/iam-persistence.toml", include_str!("../../detectors/iam-persistence.toml")),
    ("detectors/key-new-network.toml", include_str!("../../detectors/key-new-network.toml")),
    ("detectors/model-hijacking.toml", include_str!("../../detectors/model-hijacking.toml")),
    ("detectors/off-hours.toml", include_str!("../../detectors/off-hours.toml")),
    ("detectors/password-spray.toml", include_str!("../../detectors/password-spray.toml")),
    ("detectors/public-sharing.toml", include_str!("../../detectors/public-sharing.toml")),
    ("detectors/reconnaissance.toml", include_str!("../../detectors/reconnaissance.toml")),
    ("detectors/remote-execution.toml", include_str!("../../detectors/remote-execution.toml")),
    ("detectors/revoked-key-use.toml", include_str!("../../detectors/revoked-key-use.toml")),
    ("detectors/secret-access.toml", include_str!("../../detectors/secret-access.toml")),
    ("detectors/secret-read-rate.toml", include_str!("../../detectors/secret-read-rate.toml")),
    ("detectors/session-off-origin.toml", include_str!("../../detectors/session-off-origin.toml")),
    ("detectors/sign-in-without-mfa.toml", include_str!("../../detectors/sign-in-without-mfa.toml")),
    ("detectors/slow-exfiltration.toml", include_str!("../../detectors/slow-exfiltration.toml")),
    ("detectors/sustained-exfiltration.toml", include_str!("../../detectors/sustained-exfiltration.toml")),
];

/// The shipped detectors, validated.
pub fn load() -> Result<Vec<Detector>, Problems> {
    load_sources(FILES.iter().map(|(path, text)| (Path::new(*path), *text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_pack_matches_the_detectors_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("detectors");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = FILES.iter().map(|(p, _)| p.trim_start_matches("detectors/").to_string()).collect();
        assert_eq!(embedded, on_disk);
        for (path, text) in FILES {
            assert_eq!(*text, std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap());
        }
    }

    #[test]
    fn every_category_has_a_detector_and_every_inline_test_passes() {
        let detectors = load().unwrap();
        for category in crate::detection::definition::Category::ALL {
            assert!(detectors.iter().any(|d| d.category == category), "{category:?}");
        }
        let mut failures = Vec::new();
        for d in &detectors {
            assert!(d.tests.iter().any(|t| !t.expect.is_empty()), "{} needs a positive test", d.name);
            assert!(d.tests.iter().any(|t| t.expect.is_empty()), "{} needs a negative test", d.name);
            for t in &d.tests {
                if let Err(e) = t.run(d) {
                    failures.push(format!("{} / {}: {e}", d.name, t.name));
                }
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
