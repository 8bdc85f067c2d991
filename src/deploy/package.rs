//! The Lambda package: the trailwatch binary itself, as `bootstrap` in a zip
//! (one multi-call binary; the template's `TRAILWATCH_FUNCTION` says which
//! handler runs). The zip is byte-for-byte the same for the same binary, and
//! its S3 key is its digest, so re-deploying an unchanged binary changes
//! nothing.

use sha2::{Digest, Sha256};
use std::io::Write;

/// The newest glibc symbol version `provided.al2023` offers.
pub const MAX_GLIBC: (u32, u32) = (2, 34);

/// Why a binary cannot be a Lambda bootstrap.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PackageError {
    #[error("not an ELF executable")]
    NotElf,
    #[error("built for {0}, but the Lambdas run on x86_64")]
    WrongMachine(String),
    #[error("needs GLIBC_{}.{}, newer than the {}.{} of provided.al2023; build on an older system or with cargo-zigbuild --target x86_64-unknown-linux-gnu.2.34", .0.0, .0.1, MAX_GLIBC.0, MAX_GLIBC.1)]
    GlibcTooNew((u32, u32)),
    #[error("cannot write the zip: {0}")]
    Zip(String),
}

/// A zip ready to upload.
#[derive(Debug, Clone)]
pub struct Package {
    pub zip: Vec<u8>,
    /// `lambda/trailwatch-<first 16 hex digits of the zip's SHA-256>.zip`.
    pub key: String,
    /// The newest glibc version the binary needs, if it links glibc.
    pub glibc: Option<(u32, u32)>,
}

/// Checks `binary` can run on `provided.al2023` (x86_64, glibc 2.34 at most)
/// and zips it as `bootstrap`.
pub fn package(binary: &[u8]) -> Result<Package, PackageError> {
    package_with(binary, &[])
}

/// The detector files of `dir` as the package carries them, so the
/// deployed Lambdas load the folder as `detect --detectors` does:
/// `detectors/<name>.toml`, its rule files `detectors/rules/<name>.toml`
/// and its Sigma rules `detectors/sigma/<name>.yml`.
pub fn detector_files(dir: &std::path::Path) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    let parts: [(&str, &[&str]); 3] = [
        ("", &["toml"]),
        ("rules/", &["toml"]),
        ("sigma/", &["yml", "yaml"]),
    ];
    for (sub, extensions) in parts {
        let folder = dir.join(sub);
        if !sub.is_empty() && !folder.is_dir() {
            continue;
        }
        for e in std::fs::read_dir(&folder)? {
            let path = e?.path();
            let wanted = path
                .extension()
                .is_some_and(|x| extensions.iter().any(|e| x == *e));
            if path.is_file() && wanted {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                files.push((format!("detectors/{sub}{name}"), std::fs::read(&path)?));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// [`package`], carrying `files` too (name, bytes; such as
/// `detectors/<file>.toml`, which the bootstrap Lambda applies in place of
/// the built-in set). The same files give the same zip.
pub fn package_with(binary: &[u8], files: &[(String, Vec<u8>)]) -> Result<Package, PackageError> {
    check_elf(binary)?;
    let glibc = newest_glibc(binary);
    if let Some(version) = glibc.filter(|v| *v > MAX_GLIBC) {
        return Err(PackageError::GlibcTooNew(version));
    }
    let zip = zip_bootstrap(binary, files).map_err(|e| PackageError::Zip(e.to_string()))?;
    let digest = Sha256::digest(&zip);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Ok(Package {
        zip,
        key: format!("lambda/trailwatch-{hex}.zip"),
        glibc,
    })
}

fn check_elf(binary: &[u8]) -> Result<(), PackageError> {
    if binary.len() < 20 || &binary[..4] != b"\x7fELF" {
        return Err(PackageError::NotElf);
    }
    // e_machine, little-endian at offset 18: 62 is x86-64.
    match u16::from_le_bytes([binary[18], binary[19]]) {
        62 => Ok(()),
        183 => Err(PackageError::WrongMachine("aarch64".into())),
        other => Err(PackageError::WrongMachine(format!("ELF machine {other}"))),
    }
}

/// The newest `GLIBC_x.y` version name in the binary's dynamic string table
/// (the version needs the loader checks), or `None` for a static binary.
pub fn newest_glibc(binary: &[u8]) -> Option<(u32, u32)> {
    const NAME: &[u8] = b"GLIBC_";
    let mut newest = None;
    let mut at = 0;
    while let Some(found) = find(&binary[at..], NAME) {
        let start = at + found + NAME.len();
        let digits: Vec<u8> = binary[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b'.')
            .copied()
            .collect();
        // A version name is NUL-terminated: skip text such as "GLIBC_PRIVATE".
        if binary.get(start + digits.len()) == Some(&0) {
            let text = String::from_utf8_lossy(&digits);
            let mut parts = text.split('.').map(|p| p.parse::<u32>());
            if let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) {
                newest = newest.max(Some((major, minor)));
            }
        }
        at = start;
    }
    newest
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn zip_bootstrap(binary: &[u8], files: &[(String, Vec<u8>)]) -> zip::result::ZipResult<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut writer = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(6))
        // A fixed time, so the same binary gives the same zip.
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o755);
    writer.start_file("bootstrap", options)?;
    writer.write_all(binary)?;
    let mut files: Vec<&(String, Vec<u8>)> = files.iter().collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, bytes) in files {
        writer.start_file(name.as_str(), options.unix_permissions(0o644))?;
        writer.write_all(bytes)?;
    }
    writer.finish()?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_package_carries_the_detector_files_and_stays_reproducible() {
        let binary = elf(62, &[]);
        let files = vec![
            ("detectors/b.toml".to_owned(), b"name = \"b\"\n".to_vec()),
            ("detectors/a.toml".to_owned(), b"name = \"a\"\n".to_vec()),
        ];
        let with = package_with(&binary, &files).unwrap();
        let reversed: Vec<_> = files.iter().rev().cloned().collect();
        assert_eq!(package_with(&binary, &reversed).unwrap().key, with.key);
        assert_ne!(package(&binary).unwrap().key, with.key);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(with.zip)).unwrap();
        let names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        assert_eq!(names, ["bootstrap", "detectors/a.toml", "detectors/b.toml"]);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut archive.by_name("detectors/a.toml").unwrap(), &mut text)
            .unwrap();
        assert_eq!(text, "name = \"a\"\n");
    }

    #[test]
    fn a_detector_folder_is_carried_with_its_rules_and_sigma_rules() {
        let dir = tempfile::tempdir().unwrap();
        for (path, text) in [
            ("d.toml", ""),
            ("notes.md", "not carried"),
            ("rules/r.toml", "description = \"r\""),
            ("sigma/s.yml", "title: s"),
            ("sigma/README", "not carried"),
        ] {
            let to = dir.path().join(path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(to, text).unwrap();
        }
        let names: Vec<String> = detector_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "detectors/d.toml",
                "detectors/rules/r.toml",
                "detectors/sigma/s.yml"
            ]
        );
    }

    fn elf(machine: u16, strings: &[&str]) -> Vec<u8> {
        let mut bytes = vec![0u8; 64];
        bytes[..4].copy_from_slice(b"\x7fELF");
        bytes[18..20].copy_from_slice(&machine.to_le_bytes());
        for s in strings {
            bytes.extend_from_slice(s.as_bytes());
            bytes.push(0);
        }
        bytes
    }

    #[test]
    fn the_newest_glibc_version_needed_is_found() {
        let binary = elf(
            62,
            &["GLIBC_2.2.5", "GLIBC_2.34", "GLIBC_2.17", "GLIBC_PRIVATE"],
        );
        assert_eq!(newest_glibc(&binary), Some((2, 34)));
        assert_eq!(newest_glibc(&elf(62, &["musl"])), None);
    }

    #[test]
    fn a_binary_needing_a_newer_glibc_is_refused() {
        let binary = elf(62, &["GLIBC_2.28", "GLIBC_2.39"]);
        let err = package(&binary).unwrap_err();
        assert_eq!(err, PackageError::GlibcTooNew((2, 39)));
        assert!(err.to_string().contains("GLIBC_2.39"), "{err}");
    }

    #[test]
    fn only_x86_64_elf_binaries_are_packaged() {
        assert_eq!(package(b"#!/bin/sh\n").unwrap_err(), PackageError::NotElf);
        assert_eq!(
            package(&elf(183, &[])).unwrap_err(),
            PackageError::WrongMachine("aarch64".into())
        );
    }

    #[test]
    fn the_zip_holds_an_executable_bootstrap_and_is_reproducible() {
        let binary = elf(62, &["GLIBC_2.17"]);
        let first = package(&binary).unwrap();
        let second = package(&binary).unwrap();
        assert_eq!(first.zip, second.zip);
        assert_eq!(first.key, second.key);
        assert!(first.key.starts_with("lambda/trailwatch-") && first.key.ends_with(".zip"));
        assert_eq!(first.glibc, Some((2, 17)));

        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(first.zip)).unwrap();
        assert_eq!(archive.len(), 1);
        let mut entry = archive.by_name("bootstrap").unwrap();
        assert_eq!(entry.unix_mode().map(|m| m & 0o777), Some(0o755));
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        assert_eq!(content, binary);

        let other = package(&elf(62, &["GLIBC_2.18"])).unwrap();
        assert_ne!(other.key, first.key);
    }
}
