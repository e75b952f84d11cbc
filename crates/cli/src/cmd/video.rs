//! `deepoffload video info | encode` and `deepoffload bench video`.

use crate::args::{BenchVideoArgs, VideoCommand, VideoEncodeArgs, VideoInputArgs, VideoReadArgs};
use anyhow::{bail, Context, Result};
use comfy_table::{presets, Table};
use deepoffload_assets::Store;
use deepoffload_core::{format_bitrate, Summary};
use deepoffload_video::{
    open, EncoderSettings, FrameKind, H264Decoder, H264Encoder, OpenOptions, Resizer, Sampler,
    VideoSource,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(command: VideoCommand) -> Result<ExitCode> {
    match command {
        VideoCommand::Info {
            input,
            decode,
            json,
        } => info(&input, decode, json),
        VideoCommand::Encode(args) => encode(args),
    }
}

impl VideoReadArgs {
    pub fn options(&self) -> OpenOptions {
        OpenOptions {
            image_fps: self.image_fps,
            force_ffmpeg: self.force_ffmpeg,
            ffmpeg: self.ffmpeg.clone(),
        }
    }
}

impl VideoInputArgs {
    pub fn open(&self, store: &Store) -> Result<Box<dyn VideoSource>> {
        Ok(open(&self.input, store, &self.read.options())?)
    }
}

fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} frames, {per_sec}, eta {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg} {pos} frames, {per_sec}")
                .expect("template"),
        ),
    };
    bar.set_message(what.to_string());
    bar
}

#[derive(Serialize)]
struct DecodeCheck {
    frames_decoded: u64,
    first_pts_s: f64,
    last_pts_s: f64,
    /// Largest gap between consecutive timestamps.
    max_gap_s: f64,
    ms_per_frame: f64,
}

fn info(input: &VideoInputArgs, decode: bool, json: bool) -> Result<ExitCode> {
    let store = Store::from_env();
    let mut source = input.open(&store)?;
    let info = source.info().clone();
    let check = if decode {
        let bar = progress(info.frames, "decoding");
        let (mut n, mut first, mut last, mut gap) = (0u64, None, 0.0f64, 0.0f64);
        let start = Instant::now();
        while let Some(frame) = source.next_frame()? {
            let t = frame.pts.as_secs_f64();
            if n > 0 {
                gap = gap.max(t - last);
            }
            first.get_or_insert(t);
            last = t;
            n += 1;
            bar.inc(1);
        }
        bar.finish_and_clear();
        Some(DecodeCheck {
            frames_decoded: n,
            first_pts_s: first.unwrap_or(0.0),
            last_pts_s: last,
            max_gap_s: gap,
            ms_per_frame: start.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64,
        })
    } else {
        None
    };
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            info: &'a deepoffload_video::VideoInfo,
            #[serde(skip_serializing_if = "Option::is_none")]
            decode: Option<DecodeCheck>,
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&Out {
                info: &info,
                decode: check
            })?
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    let opt = |v: Option<String>| v.unwrap_or_else(|| "unknown".into());
    let rows = [
        ("file", info.path.display().to_string()),
        ("container", info.container.clone()),
        ("codec", info.codec.clone()),
        ("size", format!("{}x{}", info.width, info.height)),
        ("frame rate", format!("{:.3} fps", info.fps)),
        ("frames", opt(info.frames.map(|n| n.to_string()))),
        (
            "duration",
            opt(info.duration.map(|d| format!("{:.3} s", d.as_secs_f64()))),
        ),
        (
            "bit rate",
            opt(info.bitrate_bps.map(|b| format_bitrate(b as f64))),
        ),
        (
            "B-frames",
            if info.reordered {
                "yes (frames reordered)"
            } else {
                "no"
            }
            .into(),
        ),
        ("decoder", info.decoder.clone()),
    ];
    for (k, v) in rows {
        table.add_row([k.to_string(), v]);
    }
    if let Some(c) = &check {
        table.add_row([
            "decoded".into(),
            format!(
                "{} frames, pts {:.3}..{:.3} s, largest gap {:.3} s, {:.2} ms/frame",
                c.frames_decoded, c.first_pts_s, c.last_pts_s, c.max_gap_s, c.ms_per_frame
            ),
        ]);
    }
    outln!("{table}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct EncodeSummary {
    input: String,
    size: [u32; 2],
    fps: f64,
    target_bps: u64,
    rate_control: deepoffload_video::RateControl,
    frames_read: u64,
    frames_analysed: u64,
    frames_encoded: u64,
    frames_skipped: u64,
    key_frames: u64,
    bytes: u64,
    /// bytes × 8 / (analysed frames / fps).
    actual_bps: f64,
    mean_psnr_y_db: Option<f64>,
    min_psnr_y_db: Option<f64>,
    encode_ms_per_frame: Option<Summary>,
}

fn encode(args: VideoEncodeArgs) -> Result<ExitCode> {
    let store = Store::from_env();
    let mut source = args.input.open(&store)?;
    let info = source.info().clone();
    let requested = args.fps.unwrap_or(info.fps);
    if !(requested.is_finite() && requested > 0.0) {
        bail!(
            "--fps must be positive (the source reports {:.3} fps; pass --fps)",
            info.fps
        );
    }
    // Sampling cannot add frames: above the source rate every frame is kept.
    let fps = if info.fps > 0.0 {
        requested.min(info.fps)
    } else {
        requested
    };
    if fps < requested {
        tracing::warn!("--fps {requested} is above the source's {:.3} fps: encoding every frame at {fps:.3} fps", info.fps);
    }
    let (width, height) = args.size.unwrap_or((info.width, info.height));
    if width % 2 != 0 || height % 2 != 0 {
        bail!(
            "--size {width}x{height}: H.264 4:2:0 needs even numbers (try {}x{})",
            width & !1,
            height & !1
        );
    }
    let bitrate = u32::try_from(args.bitrate).context("--bitrate above 4 Gbit/s")?;
    let mut encoder = H264Encoder::new(EncoderSettings {
        bitrate_bps: bitrate,
        max_fps: fps as f32,
        keyframe_interval: args.keyint,
        rate_control: args.rc,
        allow_skip: !args.no_skip,
        measure_psnr: !args.no_psnr,
        ..EncoderSettings::default()
    })?;
    let mut out = match &args.out {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => None,
    };
    let mut csv = match &args.per_frame {
        Some(p) => {
            let mut w = std::io::BufWriter::new(
                std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
            );
            writeln!(w, "index,pts_s,kind,bytes,psnr_y_db,encode_ms")?;
            Some(w)
        }
        None => None,
    };
    let expected = info.frames.map(|n| {
        ((n as f64 * (fps / info.fps).min(1.0)).round() as u64)
            .min(args.max_frames.unwrap_or(u64::MAX))
    });
    let bar = progress(
        expected,
        &format!(
            "encoding {width}x{height} @ {fps} fps, {}",
            format_bitrate(bitrate as f64)
        ),
    );
    let mut sampler = Sampler::new(fps);
    let mut resizer = Resizer::new();
    let (mut read, mut analysed, mut encoded, mut skipped, mut keys, mut bytes) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let (mut psnrs, mut times) = (Vec::new(), Vec::new());
    while let Some(frame) = source.next_frame()? {
        read += 1;
        if !sampler.keep(frame.pts) {
            continue;
        }
        if args.max_frames.is_some_and(|m| analysed >= m) {
            break;
        }
        analysed += 1;
        let scaled = resizer.resize(frame.image.view(), width, height)?;
        let result = encoder.encode(scaled.view(), frame.pts)?;
        times.push(result.encode_time.as_secs_f64() * 1e3);
        match result.kind {
            FrameKind::Skipped => skipped += 1,
            kind => {
                encoded += 1;
                keys += u64::from(kind == FrameKind::Idr || kind == FrameKind::I);
                bytes += result.data.len() as u64;
                psnrs.extend(result.psnr_y);
                if let Some(w) = &mut out {
                    w.write_all(&result.data)?;
                }
            }
        }
        if let Some(w) = &mut csv {
            writeln!(
                w,
                "{},{:.6},{:?},{},{},{:.3}",
                frame.index,
                frame.pts.as_secs_f64(),
                result.kind,
                result.data.len(),
                result.psnr_y.map_or(String::new(), |p| format!("{p:.3}")),
                result.encode_time.as_secs_f64() * 1e3
            )?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(mut w) = out {
        w.flush()?;
    }
    if let Some(mut w) = csv {
        w.flush()?;
    }
    if analysed == 0 {
        bail!("{}: no frames to encode", args.input.input.display());
    }
    let seconds = analysed as f64 / fps;
    let summary = EncodeSummary {
        input: args.input.input.display().to_string(),
        size: [width, height],
        fps,
        target_bps: args.bitrate,
        rate_control: args.rc,
        frames_read: read,
        frames_analysed: analysed,
        frames_encoded: encoded,
        frames_skipped: skipped,
        key_frames: keys,
        bytes,
        actual_bps: bytes as f64 * 8.0 / seconds,
        mean_psnr_y_db: (!psnrs.is_empty()).then(|| psnrs.iter().sum::<f64>() / psnrs.len() as f64),
        min_psnr_y_db: psnrs.iter().copied().reduce(f64::min),
        encode_ms_per_frame: Summary::of(&times),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(ExitCode::SUCCESS);
    }
    let s = &summary;
    let mut table = Table::new();
    table.load_preset(presets::NOTHING);
    let rows = [
        ("input", format!("{} ({}x{} {:.3} fps, {})", s.input, info.width, info.height, info.fps, info.decoder)),
        ("encoded as", format!("{width}x{height} at {fps} fps, H.264 rate control {}, target {}", s.rate_control, format_bitrate(s.target_bps as f64))),
        ("frames", format!("{read} read, {analysed} analysed, {encoded} encoded ({keys} key), {skipped} skipped by rate control ({:.1}%)", 100.0 * skipped as f64 / analysed as f64)),
        ("bit rate", format!("{} actual ({:+.1}% of target), {} bytes over {seconds:.1} s", format_bitrate(s.actual_bps), (s.actual_bps / s.target_bps as f64 - 1.0) * 100.0, bytes)),
        ("PSNR-Y", match (s.mean_psnr_y_db, s.min_psnr_y_db) {
            (Some(m), Some(lo)) => format!("{m:.2} dB mean, {lo:.2} dB worst (encoded frames)"),
            _ => "not measured".into(),
        }),
        ("encode", s.encode_ms_per_frame.map_or("-".into(), |t| format!("{:.2} ms/frame median, {:.2} p90 (incl. RGB→YUV)", t.median, t.p90))),
    ];
    for (k, v) in rows {
        table.add_row([k.to_string(), v]);
    }
    if let Some(p) = &args.out {
        table.add_row(["stream".to_string(), p.display().to_string()]);
    }
    outln!("{table}");
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct BenchRow {
    size: [u32; 2],
    bitrate_bps: u64,
    frames: usize,
    encode_ms: Summary,
    decode_ms: Summary,
    actual_bps: f64,
}

pub fn bench(args: BenchVideoArgs) -> Result<ExitCode> {
    if args.sizes.len() != args.bitrates.len() {
        bail!(
            "--sizes has {} entries but --bitrates {}: give one bit rate per size",
            args.sizes.len(),
            args.bitrates.len()
        );
    }
    if args.frames == 0 {
        bail!("--frames must be at least 1");
    }
    let store = Store::from_env();
    let path = match &args.video {
        Some(p) => p.clone(),
        None => deepoffload_video::DefaultVideo::Vtest.resolve(&store, "--video FILE")?,
    };
    let mut source = open(&path, &store, &OpenOptions::default())?;
    let mut frames = Vec::with_capacity(args.frames);
    while frames.len() < args.frames {
        match source.next_frame()? {
            Some(f) => frames.push(f),
            None => break,
        }
    }
    if frames.is_empty() {
        bail!("{}: no frames", path.display());
    }
    let fps = source.info().fps.max(1.0);
    let bar = ProgressBar::new((args.sizes.len() * frames.len()) as u64);
    let mut rows = Vec::new();
    let mut resizer = Resizer::new();
    for (&(w, h), &bitrate) in args.sizes.iter().zip(&args.bitrates) {
        let scaled: Vec<_> = frames
            .iter()
            .map(|f| resizer.resize(f.image.view(), w, h))
            .collect::<Result<_, _>>()?;
        let mut encoder = H264Encoder::new(EncoderSettings {
            bitrate_bps: u32::try_from(bitrate).context("bit rate above 4 Gbit/s")?,
            max_fps: fps as f32,
            ..EncoderSettings::default()
        })?;
        let mut decoder = H264Decoder::new()?;
        let (mut enc_ms, mut dec_ms, mut bytes) = (Vec::new(), Vec::new(), 0usize);
        for (frame, image) in frames.iter().zip(&scaled) {
            let out = encoder.encode(image.view(), frame.pts)?;
            enc_ms.push(out.encode_time.as_secs_f64() * 1e3);
            if out.kind != FrameKind::Skipped {
                bytes += out.data.len();
                let t = Instant::now();
                decoder.decode(&out.data)?;
                dec_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
            bar.inc(1);
        }
        rows.push(BenchRow {
            size: [w, h],
            bitrate_bps: bitrate,
            frames: frames.len(),
            encode_ms: Summary::of(&enc_ms).expect("frames"),
            decode_ms: Summary::of(&dec_ms).unwrap_or(Summary {
                n: 0,
                median: 0.0,
                p90: 0.0,
                mean: 0.0,
            }),
            actual_bps: bytes as f64 * 8.0 * fps / frames.len() as f64,
        });
    }
    bar.finish_and_clear();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table.load_preset(presets::UTF8_FULL_CONDENSED);
    table.set_header([
        "size",
        "target",
        "actual",
        "encode ms/frame",
        "decode ms/frame",
        "encode fps",
        "decode fps",
    ]);
    for r in &rows {
        table.add_row([
            format!("{}x{}", r.size[0], r.size[1]),
            format_bitrate(r.bitrate_bps as f64),
            format_bitrate(r.actual_bps),
            format!("{:.2} / {:.2}", r.encode_ms.median, r.encode_ms.p90),
            format!("{:.2} / {:.2}", r.decode_ms.median, r.decode_ms.p90),
            format!("{:.0}", 1e3 / r.encode_ms.median),
            format!("{:.0}", 1e3 / r.decode_ms.median.max(1e-9)),
        ]);
    }
    outln!("{table}");
    outln!(
        "median / p90 over {} frames of {} ({} fps), one thread; encode includes RGB→YUV, decode includes YUV→RGB; openh264 {}",
        frames.len(),
        path.display(),
        fps,
        if cfg!(target_arch = "x86_64") { "(x86-64; built with its assembly when nasm was present)" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
