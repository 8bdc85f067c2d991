//! Finding inputs: files, folders walked recursively, `-` for standard
//! input, and records already in an OpenSearch index.

use crate::opensearch::scan::Scan;
use crate::opensearch::Target;
use std::io;
use std::path::{Path, PathBuf};

/// One thing to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    File {
        path: PathBuf,
        size: u64,
    },
    Stdin,
    /// The records of an OpenSearch index pattern (`detect --opensearch-url`).
    Search(Box<SearchInput>),
    /// A delivery already in memory: an S3 object (`s3://bucket/key`) at
    /// one version (its ETag).
    Object {
        name: String,
        version: String,
        bytes: std::sync::Arc<[u8]>,
    },
}

/// A cluster and what to read of it.
#[derive(Debug, Clone)]
pub struct SearchInput {
    pub target: Target,
    pub scan: Scan,
}

/// Two searches are the same input when they read the same index of the
/// same cluster (credentials aside).
impl PartialEq for SearchInput {
    fn eq(&self, other: &Self) -> bool {
        self.target.url == other.target.url && self.scan == other.scan
    }
}

impl Eq for SearchInput {}

impl Input {
    /// How problems name this input.
    pub fn name(&self) -> String {
        match self {
            Input::File { path, .. } => path.display().to_string(),
            Input::Stdin => "<stdin>".into(),
            Input::Search(s) => format!("{}/{}", s.target.url.trim_end_matches('/'), s.scan.index),
            Input::Object { name, .. } => name.clone(),
        }
    }

    /// What a pipeline remembers it read this input by: a file's path, an
    /// object's name and version; None for what cannot be read twice alike.
    pub fn key(&self) -> Option<String> {
        match self {
            Input::File { path, .. } => Some(path.display().to_string()),
            Input::Object { name, version, .. } => Some(format!("{name}#{version}")),
            Input::Stdin | Input::Search(_) => None,
        }
    }
}

/// File names read when a folder is walked; a file named on the command line
/// is read whatever its name.
const LOG_SUFFIXES: [&str; 5] = [".json", ".json.gz", ".jsonl", ".ndjson", ".gz"];

pub fn is_log_name(name: &str) -> bool {
    !name.starts_with('.')
        && LOG_SUFFIXES.iter().any(|s| name.ends_with(s))
        && name != "incidents.json"
}

/// Expands the command-line paths into inputs, folders sorted by path (the S3
/// layout then reads in time order). Digest folders are left out.
pub fn discover(paths: &[PathBuf]) -> io::Result<Vec<Input>> {
    let mut out = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            out.push(Input::Stdin);
            continue;
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            out.extend(
                found
                    .into_iter()
                    .map(|(path, size)| Input::File { path, size }),
            );
        } else {
            out.push(Input::File {
                path: path.clone(),
                size: meta.len(),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, u64)>) -> io::Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if name != "CloudTrail-Digest" && !name.starts_with('.') {
                walk(&entry.path(), out)?;
            }
        } else if is_log_name(&name) {
            out.push((entry.path(), entry.metadata()?.len()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_for_log_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("AWSLogs/1/CloudTrail/us-east-1/2023/07/10");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(dir.path().join("AWSLogs/1/CloudTrail-Digest")).unwrap();
        for f in [
            "b.json.gz",
            "a.json",
            "README.md",
            "LICENSE",
            ".hidden.json",
        ] {
            std::fs::write(deep.join(f), "{}").unwrap();
        }
        std::fs::write(
            dir.path().join("AWSLogs/1/CloudTrail-Digest/d.json.gz"),
            "x",
        )
        .unwrap();
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|i| i.name().rsplit('/').next().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["a.json", "b.json.gz"]);
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let err = discover(&[PathBuf::from("/no/such/place")]).unwrap_err();
        assert!(err.to_string().contains("/no/such/place"));
    }
}
