//! The detector files of `detectors/`, built into the binary, for the
//! deployed Lambdas (which have no repository beside them).

use super::{parse_detector, Detector};
use std::path::Path;

const FILES: [(&str, &str); 6] = [
    (
        "api-errors.toml",
        include_str!("../../detectors/api-errors.toml"),
    ),
    (
        "console-login-failures.toml",
        include_str!("../../detectors/console-login-failures.toml"),
    ),
    (
        "ebs-create-volume.toml",
        include_str!("../../detectors/ebs-create-volume.toml"),
    ),
    (
        "ec2-run-instances.toml",
        include_str!("../../detectors/ec2-run-instances.toml"),
    ),
    (
        "iam-changes.toml",
        include_str!("../../detectors/iam-changes.toml"),
    ),
    (
        "lambda-invoke.toml",
        include_str!("../../detectors/lambda-invoke.toml"),
    ),
];

/// The shipped detectors, parsed.
pub fn shipped() -> Vec<Detector> {
    FILES
        .iter()
        .map(|(name, text)| {
            parse_detector(&Path::new("detectors").join(name), text)
                .unwrap_or_else(|e| panic!("shipped detector {name} is invalid: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_in_detectors_is_built_in() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("detectors");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let built_in: Vec<String> = super::FILES.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(built_in, on_disk);
        assert_eq!(super::shipped().len(), on_disk.len());
    }
}
