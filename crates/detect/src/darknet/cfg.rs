//! Darknet `.cfg` text: sections of `key=value` lines, turned into typed layers.
//!
//! Follows Darknet's reader (`option_list.c`, `parser.c`): whitespace inside a line is
//! ignored, `#` and `;` start comment lines, `[name]` opens a section. Unlike Darknet we refuse
//! what it would silently misread — a line without `=`, a value that is not a number, an option
//! before the first section, a layer type we do not implement — and every error names the file,
//! the line and the fix.

use super::DarknetError;

/// One `[section]` with its options, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub kind: String,
    pub line: usize,
    pub options: Vec<CfgOption>,
}

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq)]
pub struct CfgOption {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Splits cfg text into sections. `source` names the file in errors.
pub fn parse_sections(text: &str, source: &str) -> Result<Vec<Section>, DarknetError> {
    let err = |line: usize, message: String| DarknetError::Cfg {
        file: source.to_string(),
        line,
        message,
    };
    let mut sections: Vec<Section> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        // Darknet strips every whitespace character, not just the ends ("mask = 0, 1").
        let stripped: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
        if stripped.is_empty() || stripped.starts_with('#') || stripped.starts_with(';') {
            continue;
        }
        if let Some(rest) = stripped.strip_prefix('[') {
            let Some(kind) = rest.strip_suffix(']') else {
                return Err(err(
                    line,
                    format!("section header `{}` is missing its closing `]`", raw.trim()),
                ));
            };
            if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(err(
                    line,
                    format!("`{}` is not a valid section name", raw.trim()),
                ));
            }
            sections.push(Section {
                kind: kind.to_ascii_lowercase(),
                line,
                options: Vec::new(),
            });
            continue;
        }
        // A trailing `#` comment after a value is not Darknet syntax, but is common in
        // hand-edited cfgs; drop it rather than fail to parse the number before it.
        let content = stripped.split('#').next().unwrap_or_default();
        let Some((key, value)) = content.split_once('=') else {
            return Err(err(
                line,
                format!(
                    "`{}` is neither a `[section]` nor a `key=value` option",
                    raw.trim()
                ),
            ));
        };
        if key.is_empty() {
            return Err(err(
                line,
                format!("`{}` has no option name before `=`", raw.trim()),
            ));
        }
        let Some(section) = sections.last_mut() else {
            return Err(err(
                line,
                format!("option `{key}` appears before any `[section]`; a cfg starts with `[net]`"),
            ));
        };
        section.options.push(CfgOption {
            key: key.to_ascii_lowercase(),
            value: value.to_string(),
            line,
        });
    }
    Ok(sections)
}

/// Typed access to one section's options, with errors that point at the line.
pub(crate) struct Options<'a> {
    pub section: &'a Section,
    pub source: &'a str,
    pub index: Option<usize>,
}

impl<'a> Options<'a> {
    fn find(&self, key: &str) -> Option<&'a CfgOption> {
        // Darknet takes the first occurrence.
        self.section.options.iter().find(|o| o.key == key)
    }

    pub fn error(&self, line: usize, message: String) -> DarknetError {
        let layer = match self.index {
            Some(i) => format!("[{}] (layer {i})", self.section.kind),
            None => format!("[{}]", self.section.kind),
        };
        DarknetError::Cfg {
            file: self.source.to_string(),
            line,
            message: format!("{layer}: {message}"),
        }
    }

    pub fn section_error(&self, message: String) -> DarknetError {
        self.error(self.section.line, message)
    }

    pub fn int(&self, key: &str, default: i64) -> Result<i64, DarknetError> {
        match self.find(key) {
            None => Ok(default),
            Some(o) => o.value.parse::<i64>().map_err(|_| {
                self.error(
                    o.line,
                    format!("`{}={}`: the value must be an integer", o.key, o.value),
                )
            }),
        }
    }

    pub fn float(&self, key: &str, default: f32) -> Result<f32, DarknetError> {
        match self.find(key) {
            None => Ok(default),
            Some(o) => parse_float(&o.value).ok_or_else(|| {
                self.error(
                    o.line,
                    format!("`{}={}`: the value must be a number", o.key, o.value),
                )
            }),
        }
    }

    pub fn string(&self, key: &str, default: &'a str) -> &'a str {
        self.find(key).map(|o| o.value.as_str()).unwrap_or(default)
    }

    pub fn has(&self, key: &str) -> bool {
        self.find(key).is_some()
    }

    /// A comma-separated integer list (`layers=-1,8`), `None` if absent.
    pub fn int_list(&self, key: &str) -> Result<Option<Vec<i64>>, DarknetError> {
        let Some(o) = self.find(key) else {
            return Ok(None);
        };
        o.value
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<i64>())
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
            .map_err(|_| {
                self.error(
                    o.line,
                    format!("`{}={}`: expected comma-separated integers", o.key, o.value),
                )
            })
    }

    /// A comma-separated number list (`anchors=10,14, 23,27`), `None` if absent.
    pub fn float_list(&self, key: &str) -> Result<Option<Vec<f32>>, DarknetError> {
        let Some(o) = self.find(key) else {
            return Ok(None);
        };
        o.value
            .split(',')
            .filter(|s| !s.is_empty())
            .map(parse_float)
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| {
                self.error(
                    o.line,
                    format!("`{}={}`: expected comma-separated numbers", o.key, o.value),
                )
            })
    }

    /// A positive integer option no larger than `max` (limits keep shape arithmetic far from
    /// overflow; real networks stay well inside them).
    pub fn positive(&self, key: &str, default: i64, max: usize) -> Result<usize, DarknetError> {
        let v = self.int(key, default)?;
        let line = self.find(key).map_or(self.section.line, |o| o.line);
        if v <= 0 {
            return Err(self.error(line, format!("`{key}` must be positive, got {v}")));
        }
        if v as u64 > max as u64 {
            return Err(self.error(
                line,
                format!("`{key}={v}` is larger than the supported {max}"),
            ));
        }
        Ok(v as usize)
    }

    /// Warns about options this importer does not know, so typos and unsupported features are
    /// visible instead of silently ignored (as Darknet itself does with "Unused field").
    pub fn warn_unknown(&self, known: &[&str]) {
        for o in &self.section.options {
            if !known.contains(&o.key.as_str()) && !TRAINING_ONLY.contains(&o.key.as_str()) {
                tracing::warn!(
                    "{}:{}: [{}] option `{}` is not used for inference and was ignored",
                    self.source,
                    o.line,
                    self.section.kind,
                    o.key
                );
            }
        }
    }
}

/// Numbers as Darknet writes them (`.3`, `1e-3`, `-1`), finite only.
fn parse_float(s: &str) -> Option<f32> {
    s.parse::<f32>().ok().filter(|v| v.is_finite())
}

/// Options that only matter for training; accepted silently.
const TRAINING_ONLY: &[&str] = &[
    "jitter",
    "ignore_thresh",
    "truth_thresh",
    "random",
    "iou_normalizer",
    "iou_loss",
    "cls_normalizer",
    "obj_normalizer",
    "beta_nms",
    "max_delta",
    "nms_kind",
    "resize",
    "rescore",
    "bias_match",
    "absolute",
    "thresh",
    "object_scale",
    "noobject_scale",
    "class_scale",
    "coord_scale",
    "counters_per_class",
    "label_smooth_eps",
    "stopbackward",
    "iou_thresh",
    "focal_loss",
    "learning_rate",
    "dont_update",
    "train_only_bn",
    "burn_in",
    "probability",
    "uc_normalizer",
    "objectness_smooth",
    "map",
    "tree",
    "log",
    "random_shift",
    "track_history_size",
    "sim_thresh",
    "dets_for_track",
    "dets_for_show",
    "track_ciou_norm",
    "embedding_layer",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_strips_whitespace() {
        let text = "# comment\n[net]\nwidth = 416\n; other\n\n[yolo]\nmask = 0, 1 ,2\n";
        let s = parse_sections(text, "t.cfg").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, "net");
        assert_eq!(s[0].options[0].value, "416");
        assert_eq!(s[1].options[0].value, "0,1,2");
        assert_eq!(s[1].options[0].line, 7);
    }

    #[test]
    fn rejects_malformed_lines_with_location() {
        let e = parse_sections("[net]\nwidth 416\n", "a.cfg")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.cfg:2:"), "{e}");
        let e = parse_sections("width=416\n", "a.cfg")
            .unwrap_err()
            .to_string();
        assert!(e.contains("before any `[section]`"), "{e}");
        let e = parse_sections("[net\n", "a.cfg").unwrap_err().to_string();
        assert!(e.contains("closing `]`"), "{e}");
        let e = parse_sections("[net]\n=3\n", "a.cfg")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no option name"), "{e}");
    }
}
