//! Detector definition files on disk (`detectors.dir`, `auditwatch detectors check DIR`): the
//! directory is read here, at the edge, and the texts go to the pure
//! [`definition::load_sources`].

use std::path::{Path, PathBuf};

use crate::detection::definition::{self, Detector, Problems};
use crate::problem::Problem;

/// Load every `*.toml` in a directory, in name order; all problems or all detectors. A file
/// that cannot be read is a problem like any other, so the rest are still checked; a directory
/// without any is a problem naming the directory.
pub fn load_dir(dir: &Path) -> Result<Vec<Detector>, Problems> {
    let problem = |file: &Path, message: String| Problem::new("", message).in_file(file);
    let entries =
        std::fs::read_dir(dir).map_err(|e| Problems(vec![problem(dir, format!("cannot read directory: {e}"))]))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Problems(vec![problem(dir, "no detector definitions (*.toml) found".into())]));
    }
    let mut problems = Vec::new();
    let mut readable = Vec::new();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => readable.push((path, text)),
            Err(e) => problems.push(problem(&path, format!("cannot read: {e}"))),
        }
    }
    match definition::load_sources(readable.iter().map(|(p, t)| (p.as_path(), t.as_str()))) {
        Ok(detectors) if problems.is_empty() => Ok(detectors),
        Ok(_) => Err(Problems(problems)),
        Err(Problems(more)) => {
            problems.extend(more);
            Err(Problems(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detection::pack;

    #[test]
    fn loads_the_toml_files_in_name_order_and_reports_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let (first, second) = (pack::FILES[1], pack::FILES[0]);
        std::fs::write(dir.path().join("b.toml"), first.1).unwrap();
        std::fs::write(dir.path().join("a.toml"), second.1).unwrap();
        std::fs::write(dir.path().join("notes.md"), "not a definition").unwrap();
        let loaded = load_dir(dir.path()).unwrap();
        let files: Vec<_> = loaded.iter().map(|d| d.file.file_name().unwrap().to_owned()).collect();
        assert_eq!(files, ["a.toml", "b.toml"]);

        std::fs::write(dir.path().join("c.toml"), "name = ").unwrap();
        std::fs::write(dir.path().join("d.toml"), first.1).unwrap();
        let problems = load_dir(dir.path()).unwrap_err().0;
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].file.as_deref().is_some_and(|f| f.ends_with("c.toml")), "{problems:?}");
        assert!(problems[1].file.as_deref().is_some_and(|f| f.ends_with("d.toml")), "{problems:?}");
        assert!(problems[1].message.contains("is also defined in"), "{problems:?}");
    }

    #[test]
    fn a_missing_directory_is_one_problem_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let problems = load_dir(&missing).unwrap_err().0;
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().starts_with(&format!("{}: cannot read directory", missing.display())));
    }

    #[test]
    fn an_empty_directory_has_no_detectors() {
        let dir = tempfile::tempdir().unwrap();
        let problems = load_dir(dir.path()).unwrap_err().0;
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].to_string(),
            format!("{}: no detector definitions (*.toml) found", dir.path().display())
        );
    }
}
