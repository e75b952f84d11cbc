//! Any format ffmpeg reads, through an `ffmpeg` process writing raw RGB frames to a pipe.
//!
//! Frame timestamps come from ffmpeg's `showinfo` filter (one log line per frame on stderr,
//! read by a thread), so variable-frame-rate files keep their real times.

use super::{Frame, VideoInfo, VideoSource};
use crate::VideoError;
use deepoffload_assets::{Asset, PipPackage, Request, Source, Store};
use deepoffload_core::RgbBuffer;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

/// The static ffmpeg 7.0.2 build inside the `imageio-ffmpeg` wheel (Linux x86-64).
pub const FFMPEG: Asset = Asset {
    group: "ffmpeg-7.0.2",
    file_name: "ffmpeg",
    description: "ffmpeg 7.0.2 static build (linux x86_64)",
    sha256: "e7e7fb30477f717e6f55f9180a70386c62677ef8a4d4d1a5d948f4098aa3eb99",
    size: Some(79_826_272),
    shared_path: None,
    source: Source::Pip(PipPackage {
        name: "imageio-ffmpeg",
        version: "0.6.0",
        artifact: "imageio_ffmpeg-0.6.0-py3-none-manylinux2014_x86_64.whl",
        artifact_sha256: "c7e46fcec401dd990405049d2e2f475e2b397779df2519b544b8aab515195282",
        member: "imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v7.0.2",
        pip_args: &["--only-binary=:all:", "--platform", "manylinux2014_x86_64"],
    }),
    variants: &[],
};

/// Codecs ffmpeg offers for "text art" formats, which turn any file (random bytes included)
/// into a picture; a video pipeline must not mistake them for video.
/// How long ffmpeg may take to describe its output stream before we give up on the file: a
/// local file is probed in well under a second, so this only ends a stuck child (ffmpeg has no
/// timeout of its own for local files).
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(30);

const TEXT_ART_CODECS: &[&str] = &["bintext", "xbin", "ansi", "idf", "tty"];

/// Environment variable naming an ffmpeg binary to use.
pub const ENV_FFMPEG: &str = "DEEPOFFLOAD_FFMPEG";

/// Finds ffmpeg: an explicit path, `$DEEPOFFLOAD_FFMPEG`, `ffmpeg` on PATH, else the pinned
/// static build from the asset store (fetched if needed).
pub fn find_ffmpeg(store: &Store, explicit: Option<&Path>) -> Result<PathBuf, VideoError> {
    let from_env = std::env::var_os(ENV_FFMPEG)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    if let Some(path) = explicit.map(Path::to_path_buf).or(from_env) {
        return Ok(path);
    }
    let on_path = Command::new("ffmpeg")
        .arg("-version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if on_path {
        return Ok(PathBuf::from("ffmpeg"));
    }
    let found = store.resolve(Request {
        asset: &FFMPEG,
        explicit: None,
        flag: &format!("--ffmpeg or {ENV_FFMPEG} (or put ffmpeg on PATH)"),
    })?;
    make_executable(&found.path)?;
    Ok(found.path)
}

fn make_executable(path: &Path) -> Result<(), VideoError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| VideoError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.permissions().mode() & 0o111 == 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).map_err(
            |source| VideoError::Open {
                path: path.to_path_buf(),
                source,
            },
        )?;
    }
    Ok(())
}

/// What the stderr reader learns.
enum Event {
    /// The output stream: width, height, frame rate.
    Output { width: u32, height: u32, fps: f64 },
    /// One frame's presentation time, in order.
    Pts(Duration),
    /// Input facts from the banner.
    Input {
        codec: String,
        container: String,
        duration: Option<Duration>,
        bitrate: Option<u64>,
    },
    /// A line worth showing if things fail.
    Log(String),
}

/// `HH:MM:SS.ss` → duration.
fn parse_clock(s: &str) -> Option<Duration> {
    let mut parts = s.trim().split(':');
    let (h, m, sec) = (
        parts.next()?.parse::<f64>().ok()?,
        parts.next()?.parse::<f64>().ok()?,
        parts.next()?.parse::<f64>().ok()?,
    );
    Some(Duration::from_secs_f64(h * 3600.0 + m * 60.0 + sec))
}

/// Finds `WxH` and `N fps` in a stream description line.
fn parse_stream(line: &str) -> Option<(u32, u32, f64)> {
    let mut size = None;
    let mut fps = None;
    for part in line.split(',') {
        let part = part.trim();
        let first = part.split_whitespace().next().unwrap_or("");
        if size.is_none() {
            if let Some((w, h)) = first.split_once('x') {
                if let (Ok(w), Ok(h)) = (w.parse::<u32>(), h.parse::<u32>()) {
                    size = Some((w, h));
                }
            }
        }
        if let Some(v) = part.strip_suffix(" fps") {
            fps = v.trim().parse::<f64>().ok();
        }
    }
    let (w, h) = size?;
    Some((w, h, fps.unwrap_or(0.0)))
}

fn read_stderr(stderr: impl Read, tx: mpsc::Sender<Event>) {
    let mut in_output = false;
    let mut container = String::new();
    for line in BufReader::new(stderr).split(b'\n') {
        let Ok(line) = line else { break };
        let line = String::from_utf8_lossy(&line).into_owned();
        let event = if let Some(at) = line.find("pts_time:") {
            let value = line[at + 9..].split_whitespace().next().unwrap_or("");
            match value.parse::<f64>() {
                Ok(t) if t.is_finite() && t >= 0.0 => Event::Pts(Duration::from_secs_f64(t)),
                _ => continue,
            }
        } else if line.starts_with("Input #0") {
            container = line.split(',').nth(1).unwrap_or("").trim().to_string();
            continue;
        } else if line.starts_with("Output #0") {
            in_output = true;
            continue;
        } else if line.trim_start().starts_with("Duration:") {
            let rest = line.trim_start().trim_start_matches("Duration:");
            let duration = parse_clock(rest.split(',').next().unwrap_or(""));
            let bitrate = rest
                .split("bitrate:")
                .nth(1)
                .and_then(|b| b.split_whitespace().next()?.parse::<u64>().ok())
                .map(|kb| kb * 1000);
            Event::Input {
                codec: String::new(),
                container: container.clone(),
                duration,
                bitrate,
            }
        } else if line.contains("Stream #0") && line.contains("Video:") {
            let desc = line.split("Video:").nth(1).unwrap_or("");
            match (in_output, parse_stream(desc)) {
                (true, Some((width, height, fps))) => Event::Output { width, height, fps },
                (false, _) => {
                    let codec = desc.split(',').next().unwrap_or("").trim();
                    let codec = codec.split(" (avc1").next().unwrap_or(codec).to_string();
                    Event::Input {
                        codec,
                        container: container.clone(),
                        duration: None,
                        bitrate: None,
                    }
                }
                _ => Event::Log(line),
            }
        } else {
            Event::Log(line)
        };
        if tx.send(event).is_err() {
            break;
        }
    }
}

/// A file decoded by an ffmpeg child process.
pub struct FfmpegSource {
    path: PathBuf,
    child: Child,
    stdout: ChildStdout,
    events: Receiver<Event>,
    info: VideoInfo,
    log: Vec<String>,
    /// Timestamps that arrived before their frames were read.
    pending: std::collections::VecDeque<Duration>,
    next_index: u64,
    frame_bytes: usize,
    /// Frames the container promises (from our own MP4 probe); fewer is an error.
    expected_frames: Option<u64>,
}

impl FfmpegSource {
    /// Adopts what our own container probe knows (exact frame count, reordering, bit rate),
    /// keeping ffmpeg's decoded size; ending before that frame count is then reported as
    /// damage (ffmpeg itself quietly stops at a cut).
    pub fn with_probe(mut self, probe: VideoInfo) -> Self {
        self.expected_frames = probe.frames;
        self.info = VideoInfo {
            width: self.info.width,
            height: self.info.height,
            decoder: self.info.decoder.clone(),
            ..probe
        };
        self
    }

    pub fn open(path: &Path, ffmpeg: &Path) -> Result<Self, VideoError> {
        let fail = |message: String| VideoError::Ffmpeg {
            path: path.to_path_buf(),
            message,
        };
        let mut child = Command::new(ffmpeg)
            .args(["-hide_banner", "-nostdin", "-loglevel", "info", "-i"])
            .arg(path)
            .args([
                "-map",
                "0:v:0",
                "-vf",
                "showinfo",
                "-fps_mode",
                "passthrough",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                "pipe:1",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "cannot run {}: {e} (install ffmpeg, or pass --ffmpeg)",
                    ffmpeg.display()
                ))
            })?;
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || read_stderr(stderr, tx));
        let mut info = VideoInfo {
            path: path.to_path_buf(),
            container: String::new(),
            codec: String::new(),
            width: 0,
            height: 0,
            fps: 0.0,
            frames: None,
            duration: None,
            bitrate_bps: None,
            reordered: false,
            decoder: "ffmpeg".into(),
        };
        let mut log = Vec::new();
        let mut pending = std::collections::VecDeque::new();
        // Everything up to the output stream description arrives before the first frame.
        loop {
            match events.recv_timeout(DESCRIBE_TIMEOUT) {
                Ok(Event::Output { width, height, fps }) => {
                    (info.width, info.height, info.fps) = (width, height, fps);
                    break;
                }
                Ok(Event::Input {
                    codec,
                    container,
                    duration,
                    bitrate,
                }) => {
                    if !codec.is_empty() {
                        info.codec = codec;
                    }
                    info.container = container;
                    info.duration = info.duration.or(duration);
                    info.bitrate_bps = info.bitrate_bps.or(bitrate);
                }
                Ok(Event::Log(line)) => log.push(line),
                Ok(Event::Pts(t)) => pending.push_back(t),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "ffmpeg described no video stream within {} s (stuck on a damaged file?)",
                        DESCRIBE_TIMEOUT.as_secs()
                    )));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    let tail: Vec<&str> = log
                        .iter()
                        .rev()
                        .take(3)
                        .map(String::as_str)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    return Err(fail(format!(
                        "ffmpeg could not read it: {}",
                        tail.join(" | ")
                    )));
                }
            }
        }
        if info.width == 0 || info.height == 0 {
            let _ = child.kill();
            return Err(fail(format!(
                "ffmpeg reported a {}x{} video",
                info.width, info.height
            )));
        }
        let codec = info.codec.split_whitespace().next().unwrap_or("");
        if TEXT_ART_CODECS.contains(&codec) {
            let _ = child.kill();
            return Err(fail(format!(
                "not a video: ffmpeg reads it only as `{codec}` text art"
            )));
        }
        if let (Some(d), true) = (info.duration, info.fps > 0.0) {
            info.frames = Some((d.as_secs_f64() * info.fps).round() as u64);
        }
        let frame_bytes = info.width as usize * info.height as usize * 3;
        Ok(Self {
            path: path.to_path_buf(),
            child,
            stdout,
            events,
            info,
            log,
            pending,
            next_index: 0,
            frame_bytes,
            expected_frames: None,
        })
    }

    /// The next frame's timestamp from ffmpeg's log, or index / fps if the log has none.
    fn next_pts(&mut self) -> Duration {
        if let Some(t) = self.pending.pop_front() {
            return t;
        }
        loop {
            match self.events.recv_timeout(Duration::from_secs(10)) {
                Ok(Event::Pts(t)) => return t,
                Ok(Event::Log(line)) => self.log.push(line),
                Ok(_) => {}
                Err(_) => {
                    let fps = if self.info.fps > 0.0 {
                        self.info.fps
                    } else {
                        25.0
                    };
                    return Duration::from_secs_f64(self.next_index as f64 / fps);
                }
            }
        }
    }
}

impl VideoSource for FfmpegSource {
    fn info(&self) -> &VideoInfo {
        &self.info
    }

    fn next_frame(&mut self) -> Result<Option<Frame>, VideoError> {
        let mut data = vec![0u8; self.frame_bytes];
        let mut filled = 0;
        while filled < data.len() {
            match self.stdout.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(VideoError::Ffmpeg {
                        path: self.path.clone(),
                        message: format!("reading frames: {e}"),
                    })
                }
            }
        }
        if filled == 0 {
            let status = self.child.wait().map_err(|e| VideoError::Ffmpeg {
                path: self.path.clone(),
                message: e.to_string(),
            })?;
            // Drain the log so the last lines explain a failure.
            while let Ok(event) = self.events.recv_timeout(Duration::from_millis(200)) {
                if let Event::Log(line) = event {
                    self.log.push(line);
                }
            }
            if !status.success() {
                let tail: Vec<String> = self.log.iter().rev().take(3).rev().cloned().collect();
                return Err(VideoError::Ffmpeg {
                    path: self.path.clone(),
                    message: format!(
                        "ffmpeg stopped with {status} after {} frames: {}",
                        self.next_index,
                        tail.join(" | ")
                    ),
                });
            }
            if let Some(expected) = self.expected_frames.filter(|&n| self.next_index < n) {
                return Err(VideoError::Ffmpeg {
                    path: self.path.clone(),
                    message: format!("only {} of the {expected} frames the container lists could be decoded (file cut or damaged)", self.next_index),
                });
            }
            return Ok(None);
        }
        if filled < data.len() {
            return Err(VideoError::Ffmpeg {
                path: self.path.clone(),
                message: format!(
                    "frame {} is incomplete ({filled} of {} bytes)",
                    self.next_index,
                    data.len()
                ),
            });
        }
        let pts = self.next_pts();
        let index = self.next_index;
        self.next_index += 1;
        let image =
            RgbBuffer::from_raw(self.info.width, self.info.height, data).expect("size checked");
        Ok(Some(Frame { index, pts, image }))
    }
}

impl Drop for FfmpegSource {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stream_lines() {
        let line = " rawvideo (RGB[24] / 0x18424752), rgb24(pc, gbr/unknown/unknown, progressive), 640x272 [SAR 1:1 DAR 40:17], q=2-31, 104448 kb/s, 25 fps, 25 tbn";
        assert_eq!(parse_stream(line), Some((640, 272, 25.0)));
        assert_eq!(
            parse_clock("00:01:19.50"),
            Some(Duration::from_millis(79_500))
        );
    }
}
