//! Which detectors a run uses: the set built into the binary (the files of
//! `detectors/`), or a folder given with `--detectors`, which replaces it.
//! A folder is all or nothing: a file with an error fails the load, naming
//! file and key, so a typo never silently turns a detector off. Rules come
//! from the folder's `rules/` when it has one (an empty one turns them
//! off), else the built-in rules stay: a folder of rate detectors should
//! not silently stop `StopLogging` from paging.

use super::{
    load_dir, load_rules, load_sigma, shipped, shipped_rules, Detector, DetectorError, Rule,
};
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a set of detectors came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    BuiltIn,
    Dir(PathBuf),
}

/// The detectors of a run, and where they came from.
#[derive(Debug)]
pub struct DetectorSet {
    pub source: Source,
    pub detectors: Vec<Detector>,
    /// Where the rules came from: built in, or the folder's `rules/`.
    pub rules_source: Source,
    /// The rule files' rules, then the Sigma rules.
    pub rules: Vec<Rule>,
    /// Where Sigma rules were read from.
    pub sigma_dirs: Vec<PathBuf>,
    /// The Sigma files that could not be read, each with why.
    pub sigma_problems: Vec<DetectorError>,
}

/// Why a folder of detectors cannot be used: every problem in every file.
#[derive(Debug, thiserror::Error)]
pub enum SetError {
    #[error("{0}")]
    Folder(#[source] DetectorError),
    #[error("{} of the detector files in {} are invalid (all problems above); fix them, or leave out --detectors to use the built-in set", errors.len(), dir.display())]
    Invalid {
        dir: PathBuf,
        errors: Vec<DetectorError>,
    },
    #[error("no detector files (*.toml) in {}; leave out --detectors to use the built-in set", dir.display())]
    Empty { dir: PathBuf },
}

impl DetectorSet {
    /// The shipped detectors, built in.
    pub fn built_in() -> Self {
        DetectorSet {
            source: Source::BuiltIn,
            detectors: shipped(),
            rules_source: Source::BuiltIn,
            rules: shipped_rules(),
            sigma_dirs: Vec::new(),
            sigma_problems: Vec::new(),
        }
    }

    /// Every `*.toml` in `dir`; any invalid file fails the whole set.
    pub fn from_dir(dir: &Path) -> Result<Self, SetError> {
        let (detectors, errors) = load_dir(dir).map_err(SetError::Folder)?;
        if !errors.is_empty() {
            return Err(SetError::Invalid {
                dir: dir.to_path_buf(),
                errors,
            });
        }
        if detectors.is_empty() {
            return Err(SetError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        let rules_dir = dir.join("rules");
        let (rules_source, rules) = if rules_dir.is_dir() {
            let (rules, errors) = load_rules(&rules_dir).map_err(SetError::Folder)?;
            if !errors.is_empty() {
                return Err(SetError::Invalid {
                    dir: rules_dir,
                    errors,
                });
            }
            (Source::Dir(rules_dir), rules)
        } else {
            (Source::BuiltIn, shipped_rules())
        };
        let set = DetectorSet {
            source: Source::Dir(dir.to_path_buf()),
            detectors,
            rules_source,
            rules,
            sigma_dirs: Vec::new(),
            sigma_problems: Vec::new(),
        };
        let sigma = dir.join("sigma");
        if sigma.is_dir() {
            set.with_sigma(&[sigma])
        } else {
            Ok(set)
        }
    }

    /// `--detectors DIR` if given, else the built-in set.
    pub fn load(dir: Option<&Path>) -> Result<Self, SetError> {
        dir.map_or_else(|| Ok(Self::built_in()), Self::from_dir)
    }

    /// The set with the Sigma rules of `dirs` added. A folder that cannot
    /// be listed fails; a file that cannot be read, or whose rule has the
    /// name of one already loaded, is a problem and the rest load.
    pub fn with_sigma(mut self, dirs: &[PathBuf]) -> Result<Self, SetError> {
        for dir in dirs {
            let (rules, problems) = load_sigma(dir).map_err(SetError::Folder)?;
            self.sigma_problems.extend(problems);
            for rule in rules {
                match self.rules.iter().find(|r| r.name == rule.name) {
                    Some(other) => self.sigma_problems.push(DetectorError::Duplicate {
                        path: rule.source.clone(),
                        name: rule.name.clone(),
                        other: other.source.clone(),
                    }),
                    None => self.rules.push(rule),
                }
            }
            self.sigma_dirs.push(dir.clone());
        }
        Ok(self)
    }

    /// How many of the rules are Sigma rules.
    pub fn sigma_rules(&self) -> usize {
        self.rules.iter().filter(|r| r.sigma.is_some()).count()
    }
}

impl fmt::Display for DetectorSet {
    /// `the 6 built-in detectors`, `3 detectors from my-detectors`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::BuiltIn => write!(f, "the {} built-in detectors", self.detectors.len()),
            Source::Dir(dir) => write!(
                f,
                "{} detector(s) from {}",
                self.detectors.len(),
                dir.display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_with_one_bad_file_fails_whole_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.toml"), "").unwrap();
        std::fs::write(dir.path().join("bad.toml"), "shingle_size = 0\n").unwrap();
        let Err(SetError::Invalid { errors, .. }) = DetectorSet::from_dir(dir.path()) else {
            panic!("a bad file must fail the set");
        };
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("bad.toml"), "{}", errors[0]);
        assert!(
            errors[0].to_string().contains("shingle_size"),
            "{}",
            errors[0]
        );
        std::fs::remove_file(dir.path().join("bad.toml")).unwrap();
        let set = DetectorSet::from_dir(dir.path()).unwrap();
        assert_eq!(
            set.to_string(),
            format!("1 detector(s) from {}", dir.path().display())
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            DetectorSet::from_dir(empty.path()),
            Err(SetError::Empty { .. })
        ));
    }

    #[test]
    fn rules_come_from_the_folder_when_it_has_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.toml"), "").unwrap();
        let set = DetectorSet::from_dir(dir.path()).unwrap();
        assert_eq!(set.rules_source, Source::BuiltIn);
        assert_eq!(set.rules.len(), shipped_rules().len());
        let rules = dir.path().join("rules");
        std::fs::create_dir(&rules).unwrap();
        std::fs::write(
            rules.join("mine.toml"),
            "description = \"mine\"\nseverity = \"low\"\n[[match]]\nevent_names = [\"DeleteBucket\"]\n",
        )
        .unwrap();
        let set = DetectorSet::from_dir(dir.path()).unwrap();
        assert_eq!(set.rules_source, Source::Dir(rules.clone()));
        assert_eq!(set.rules.len(), 1);
        assert_eq!(set.rules[0].name, "mine");
        std::fs::write(rules.join("bad.toml"), "severity = 3\n").unwrap();
        let Err(e) = DetectorSet::from_dir(dir.path()) else {
            panic!("a bad rule must fail the set");
        };
        let text = format!("{e}");
        assert!(text.contains("rules"), "{text}");
        let SetError::Invalid { errors, .. } = e else {
            panic!("{text}")
        };
        assert!(errors[0].to_string().contains("bad.toml"), "{}", errors[0]);
    }

    #[test]
    fn without_a_folder_the_built_in_set_is_used() {
        let set = DetectorSet::load(None).unwrap();
        assert_eq!(set.source, Source::BuiltIn);
        assert_eq!(
            set.to_string(),
            format!("the {} built-in detectors", shipped().len())
        );
    }
}
