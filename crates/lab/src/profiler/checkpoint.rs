//! The checkpoint store of finished cells: a `.partial.jsonl` file whose first line is the
//! request's fingerprint and every further line one finished cell, appended and flushed as a
//! pass completes, so a crash loses at most the pass under way and a rerun resumes from the rest.
//!
//! It never measures anything, and never hands back cells written for another setup: a file
//! whose fingerprint differs is refused, not mixed in, and a line cut by a crash is not a cell.

use crate::LabError;
use deepoffload_core::profile::Cell;
use deepoffload_core::Config;
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// The key of a partial file's first line, which holds the request's fingerprint.
const PARTIAL_HEADER_KEY: &str = "deepoffload_partial_of";

/// Finished cells read back from a partial file, and the file new ones are appended to.
pub(super) struct PartialCells {
    file: Option<std::fs::File>,
    done: HashMap<String, Cell>,
}

fn cell_key(video: &str, c: &Config) -> String {
    format!(
        "{video}|{}|{}|{}|{}x{}|{}|{}",
        c.placement, c.model, c.input_size, c.width, c.height, c.fps, c.bitrate_bps
    )
}

impl PartialCells {
    /// Opens (or starts) the partial file at `path`, or keeps nothing when there is none. Its
    /// first line records the request's fingerprint; a file written for another setup is
    /// refused rather than silently mixed in.
    pub(super) fn open(path: Option<&Path>, fingerprint: &str) -> Result<Self, LabError> {
        let Some(path) = path else {
            return Ok(Self {
                file: None,
                done: HashMap::new(),
            });
        };
        let mut done = HashMap::new();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let mut lines = text.lines();
        let header = lines.next();
        if let Some(header) = header {
            let theirs = serde_json::from_str::<serde_json::Value>(header)
                .ok()
                .and_then(|v| v.get(PARTIAL_HEADER_KEY).map(|f| f.to_string()));
            if theirs.as_deref() != Some(fingerprint) {
                return Err(LabError::Usage(format!(
                    "{} holds cells from a different profile setup ({}; this run: {fingerprint}); \
                     delete it to start afresh, or pass another --partial path",
                    path.display(),
                    theirs.unwrap_or_else(|| "no header".into()),
                )));
            }
            for line in lines {
                // A line cut by a crash is simply not a finished cell.
                if let Ok(cell) = serde_json::from_str::<Cell>(line) {
                    done.insert(cell_key(&cell.video, &cell.config), cell);
                }
            }
            if !done.is_empty() {
                tracing::info!(
                    "resuming: {} finished cells in {}",
                    done.len(),
                    path.display()
                );
            }
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| LabError::Io(format!("{}: {e}", path.display())))?;
        if header.is_none() {
            writeln!(file, "{{\"{PARTIAL_HEADER_KEY}\":{fingerprint}}}")
                .map_err(|e| LabError::Io(format!("{}: {e}", path.display())))?;
        }
        Ok(Self {
            file: Some(file),
            done,
        })
    }

    /// The cells of `configs` on `video` when every one was finished by an earlier run (a pass
    /// measures its configurations together, so a pass is skipped whole or run whole).
    pub(super) fn finished(&self, video: &str, configs: &[Config]) -> Option<Vec<Cell>> {
        configs
            .iter()
            .map(|c| self.done.get(&cell_key(video, c)).cloned())
            .collect()
    }

    /// Appends the cells of a finished pass and flushes them, for a later run to resume from.
    pub(super) fn record(&mut self, cells: &[Cell]) -> Result<(), LabError> {
        if let Some(file) = &mut self.file {
            let mut text = String::new();
            for c in cells {
                text.push_str(&serde_json::to_string(c).expect("serialisable"));
                text.push('\n');
            }
            file.write_all(text.as_bytes())
                .and_then(|_| file.flush())
                .map_err(|e| LabError::Io(e.to_string()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deepoffload_core::Placement;

    const SETUP: &str = r#"{"device":"phone","max_lag":5}"#;

    fn cell(video: &str, fps: f64) -> Cell {
        Cell {
            video: video.into(),
            scale: None,
            config: Config {
                placement: Placement::Local,
                model: "yolov3-tiny".into(),
                input_size: 320,
                width: 640,
                height: 360,
                fps,
                bitrate_bps: 0,
            },
            accuracy: Default::default(),
            map50: Some(0.5),
            staleness_f1: vec![0.5, 0.25],
            tracked_staleness_f1: vec![0.5, 0.375],
            frames_analysed: 10,
            frames_skipped: 0,
            achieved_fps: fps,
            bytes_per_frame: 0.0,
            actual_bps: 0.0,
            latency_ms: Default::default(),
            energy: Default::default(),
        }
    }

    fn configs(cells: &[Cell]) -> Vec<Config> {
        cells.iter().map(|c| c.config.clone()).collect()
    }

    #[test]
    fn a_resumed_run_skips_finished_passes_and_ignores_a_cut_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.partial.jsonl");
        let pass = [cell("a.mp4", 5.0), cell("a.mp4", 2.0)];
        let unfinished = [cell("a.mp4", 1.0)];
        {
            let mut store = PartialCells::open(Some(&path), SETUP).unwrap();
            assert_eq!(store.finished("a.mp4", &configs(&pass)), None);
            store.record(&pass).unwrap();
        }
        // The crash cut the next pass's first line.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        write!(file, "{{\"video\":\"a.mp4\",\"config\":{{\"plac").unwrap();
        drop(file);

        let mut store = PartialCells::open(Some(&path), SETUP).unwrap();
        assert_eq!(
            store.finished("a.mp4", &configs(&pass)),
            Some(pass.to_vec())
        );
        assert_eq!(store.finished("b.mp4", &configs(&pass)), None);
        let mixed = [pass[0].clone(), unfinished[0].clone()];
        assert_eq!(store.finished("a.mp4", &configs(&mixed)), None);
        store.record(&unfinished).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches(PARTIAL_HEADER_KEY).count(), 1, "{text}");
    }

    #[test]
    fn a_file_of_another_setup_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.partial.jsonl");
        PartialCells::open(Some(&path), SETUP)
            .unwrap()
            .record(&[cell("a.mp4", 5.0)])
            .unwrap();
        let other = r#"{"device":"laptop","max_lag":5}"#;
        let err = PartialCells::open(Some(&path), other).err().unwrap();
        assert!(err.to_string().contains("different profile setup"), "{err}");
    }

    #[test]
    fn without_a_file_nothing_is_finished_or_kept() {
        let mut store = PartialCells::open(None, SETUP).unwrap();
        let pass = [cell("a.mp4", 5.0)];
        store.record(&pass).unwrap();
        assert_eq!(store.finished("a.mp4", &configs(&pass)), None);
    }
}
