//! `--link` specifications: `rate=20mbit,delay=25ms,jitter=5ms,loss=1%` or
//! `up=TRACE,down=TRACE,delay=40ms`.

use super::model::{DirectionSpec, Shaper, Trace};
use deepoffload_core::{format_bitrate, parse_bitrate, parse_duration, parse_fraction};
use std::path::Path;
use std::sync::Arc;

/// Both directions of an emulated link (up = device → server).
#[derive(Debug, Clone, Default)]
pub struct LinkSpec {
    pub up: DirectionSpec,
    pub down: DirectionSpec,
    /// The text it was parsed from, for logs and outputs.
    pub text: String,
}

/// A rate (`20mbit`) or a Mahimahi trace file.
pub fn parse_shaper(value: &str, burst_bytes: usize) -> Result<Shaper, String> {
    if let Ok(bps) = parse_bitrate(value) {
        return Ok(Shaper::token_bucket(bps as f64, burst_bytes));
    }
    let path = Path::new(value);
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "`{value}` is neither a rate (e.g. 20mbit) nor a readable Mahimahi trace file ({e})"
        )
    })?;
    Ok(Shaper::trace(Arc::new(Trace::parse(&text, value)?)))
}

impl LinkSpec {
    /// Parses the comma-separated form. Keys: `rate` (both directions), `up`, `down` (a rate or
    /// a trace file each), `delay` (one way, each direction), `jitter`, `loss`, `queue` (bytes,
    /// per direction), `burst` (token-bucket bytes).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` in --link must be key=value (keys: rate, up, down, delay, jitter, loss, queue, burst)"))?;
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let get = |key: &str| {
            fields
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        for (k, _) in &fields {
            if ![
                "rate", "up", "down", "delay", "jitter", "loss", "queue", "burst",
            ]
            .contains(&k.as_str())
            {
                return Err(format!("unknown --link key `{k}` (keys: rate, up, down, delay, jitter, loss, queue, burst)"));
            }
        }
        let burst = match get("burst") {
            Some(b) => parse_bytes(b)?,
            None => 16 * super::model::MTU,
        };
        let mut spec = DirectionSpec::default();
        if let Some(d) = get("delay") {
            spec.delay = parse_duration(d)?;
        }
        if let Some(j) = get("jitter") {
            spec.jitter = parse_duration(j)?;
        }
        if let Some(l) = get("loss") {
            spec.loss = parse_fraction(l)?;
        }
        if let Some(q) = get("queue") {
            spec.queue_bytes = parse_bytes(q)?;
        }
        let mut up = spec.clone();
        let mut down = spec;
        if let Some(r) = get("rate") {
            up.shaper = parse_shaper(r, burst)?;
            down.shaper = up.shaper.clone();
        }
        if let Some(u) = get("up") {
            up.shaper = parse_shaper(u, burst)?;
        }
        if let Some(d) = get("down") {
            down.shaper = parse_shaper(d, burst)?;
        }
        Ok(Self {
            up,
            down,
            text: text.to_string(),
        })
    }

    /// One line for logs: `up 20 Mbit/s, down 20 Mbit/s, delay 25 ms each way, …`.
    pub fn describe(&self) -> String {
        let shaper = |s: &Shaper| match s {
            Shaper::Unlimited => "unlimited".to_string(),
            Shaper::TokenBucket { bps, .. } => format_bitrate(*bps),
            Shaper::Trace { trace, .. } => format!(
                "trace {} (mean {})",
                trace.name,
                format_bitrate(trace.mean_bps())
            ),
        };
        format!(
            "up {}, down {}, delay {:?} each way, jitter ±{:?}, loss {}%",
            shaper(&self.up.shaper),
            shaper(&self.down.shaper),
            self.up.delay,
            self.up.jitter,
            self.up.loss * 100.0
        )
    }
}

/// `64k`, `1M` (×1024) or a plain number of bytes.
fn parse_bytes(text: &str) -> Result<usize, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (n, scale) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1024.0),
        Some('m') => (&t[..t.len() - 1], 1024.0 * 1024.0),
        _ => (t, 1.0),
    };
    let v: f64 = n
        .parse()
        .map_err(|_| format!("`{text}` is not a byte count (examples: 64k, 1M, 20000)"))?;
    if !(v.is_finite() && v >= 1.0) {
        return Err(format!("`{text}` must be at least one byte"));
    }
    Ok((v * scale) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn symmetric_rate_spec() {
        let s = LinkSpec::parse("rate=20mbit,delay=25ms,jitter=5ms,loss=1%").unwrap();
        assert!(matches!(s.up.shaper, Shaper::TokenBucket { bps, .. } if bps == 20e6));
        assert!(matches!(s.down.shaper, Shaper::TokenBucket { bps, .. } if bps == 20e6));
        assert_eq!(
            (s.up.delay, s.down.jitter, s.up.loss),
            (Duration::from_millis(25), Duration::from_millis(5), 0.01)
        );
    }

    #[test]
    fn trace_spec_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let trace = dir.path().join("up.trace");
        std::fs::write(&trace, "1\n2\n").unwrap();
        let s = LinkSpec::parse(&format!("up={},down=5mbit,delay=40ms", trace.display())).unwrap();
        assert!(matches!(s.up.shaper, Shaper::Trace { .. }));
        assert!(s.describe().contains("trace"));
        assert!(LinkSpec::parse("rate").unwrap_err().contains("key=value"));
        assert!(LinkSpec::parse("speed=1mbit")
            .unwrap_err()
            .contains("unknown --link key"));
        assert!(LinkSpec::parse("up=/no/such/trace")
            .unwrap_err()
            .contains("neither a rate"));
        assert!(LinkSpec::parse("delay=5").unwrap_err().contains("unit"));
    }
}
