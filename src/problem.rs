//! One thing wrong with what a user wrote (the config file, a detector definition): where it
//! is and what to do about it. Validation collects every problem at once, so a user can fix
//! them all in one go; both [`crate::config`] and [`crate::detection::definition`] report them.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem, shown as `file: field: message` (each part left out when empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file at fault when the problem is in one of several (detector definitions); `None`
    /// for the config, whose error names its source once.
    pub file: Option<PathBuf>,
    /// Where in it: a dotted field (`kafka.batch_size`, `topics[1].name`, `params.min_count`),
    /// an env var name, `line 9`, or empty when the problem is with the file as a whole.
    pub field: String,
    /// What is wrong, as a sentence the user can act on.
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { file: None, field: field.into(), message: message.into() }
    }

    /// The same problem, located in `file`.
    pub fn in_file(self, file: &Path) -> Problem {
        Problem { file: Some(file.to_path_buf()), ..self }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_leaves_out_what_is_empty() {
        assert_eq!(Problem::new("kafka.brokers", "must not be empty").to_string(), "kafka.brokers: must not be empty");
        let in_file = Problem::new("params.min_count", "must be at least 2").in_file(Path::new("d/x.toml"));
        assert_eq!(in_file.to_string(), "d/x.toml: params.min_count: must be at least 2");
        assert_eq!(Problem::new("", "cannot read").in_file(Path::new("x.toml")).to_string(), "x.toml: cannot read");
    }
}
