//! Parsing and printing the units users type: bit rates (`500k`, `2M`, `20mbit`) and
//! resolutions (`640x480`).

/// Parses a bit rate in bits per second: a number with an optional SI suffix `k`, `M`, `G`
/// (×1000ⁿ; case-insensitive), optionally followed by `bit`, `bps` or `b/s`.
/// `500k` = `500kbit` = 500 000; `2.5M` = 2 500 000.
pub fn parse_bitrate(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = ["bit/s", "bits", "bit", "bps", "b/s"]
        .iter()
        .find_map(|s| t.strip_suffix(s))
        .unwrap_or(&t);
    let (number, scale) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1e3),
        Some('m') => (&t[..t.len() - 1], 1e6),
        Some('g') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a bit rate (examples: 500k, 2M, 20mbit, 250000)"))?;
    let bps = value * scale;
    if !(bps.is_finite() && bps >= 1.0) {
        return Err(format!("`{text}`: a bit rate must be at least 1 bit/s"));
    }
    Ok(bps.round() as u64)
}

/// Prints a bit rate compactly: `500 kbit/s`, `2.5 Mbit/s`.
pub fn format_bitrate(bps: f64) -> String {
    let (value, unit, decimals) = if bps >= 1e6 {
        (bps / 1e6, "Mbit/s", 2)
    } else if bps >= 1e3 {
        (bps / 1e3, "kbit/s", 1)
    } else {
        (bps, "bit/s", 0)
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text} {unit}")
}

/// Parses a duration: a number with a unit `us`, `ms`, `s` or `min` (`25ms`, `0.5s`).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim().to_ascii_lowercase();
    let (number, scale) = [
        ("us", 1e-6),
        ("µs", 1e-6),
        ("ms", 1e-3),
        ("min", 60.0),
        ("s", 1.0),
    ]
    .iter()
    .find_map(|(suffix, scale)| t.strip_suffix(suffix).map(|n| (n, *scale)))
    .ok_or_else(|| format!("`{text}` needs a unit (examples: 25ms, 0.5s, 100us)"))?;
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (examples: 25ms, 0.5s)"))?;
    if !(value.is_finite() && value >= 0.0) {
        return Err(format!("`{text}`: a duration cannot be negative"));
    }
    Ok(std::time::Duration::from_secs_f64(value * scale))
}

/// Parses a probability: `1%` or `0.01`.
pub fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let value = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a fraction (examples: 1%, 0.01)"))?;
    if !(0.0..=1.0).contains(&value) {
        return Err(format!("`{text}` must be between 0 and 100%"));
    }
    Ok(value)
}

/// Parses `WIDTHxHEIGHT` (also `W×H`, `W*H`), both positive.
pub fn parse_resolution(text: &str) -> Result<(u32, u32), String> {
    let t = text.trim().to_ascii_lowercase().replace(['×', '*'], "x");
    let parsed = t
        .split_once('x')
        .and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(format!(
            "`{text}` is not a resolution (write WIDTHxHEIGHT, e.g. 640x480)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates() {
        for (text, bps) in [
            ("500k", 500_000),
            ("500K", 500_000),
            ("2M", 2_000_000),
            ("2.5m", 2_500_000),
            ("20mbit", 20_000_000),
            ("64kbps", 64_000),
            ("1g", 1_000_000_000),
            ("250000", 250_000),
            ("100 kbit/s", 100_000),
        ] {
            assert_eq!(parse_bitrate(text), Ok(bps), "{text}");
        }
        for bad in ["", "k", "fast", "-5k", "0", "nanm"] {
            assert!(parse_bitrate(bad).is_err(), "{bad}");
        }
        assert_eq!(format_bitrate(2_000_000.0), "2 Mbit/s");
        assert_eq!(format_bitrate(2_500_000.0), "2.5 Mbit/s");
        assert_eq!(format_bitrate(247_630.0), "247.6 kbit/s");
        assert_eq!(format_bitrate(2_476_000.0), "2.48 Mbit/s");
        assert_eq!(format_bitrate(500_000.0), "500 kbit/s");
        assert_eq!(format_bitrate(0.0), "0 bit/s");
        assert_eq!(format_bitrate(100.0), "100 bit/s");
    }

    #[test]
    fn durations_and_fractions() {
        use std::time::Duration;
        assert_eq!(parse_duration("25ms"), Ok(Duration::from_millis(25)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("25").is_err() && parse_duration("-1ms").is_err());
        assert_eq!(parse_fraction("1%"), Ok(0.01));
        assert_eq!(parse_fraction("0.25"), Ok(0.25));
        assert!(parse_fraction("150%").is_err());
    }

    #[test]
    fn resolutions() {
        assert_eq!(parse_resolution("640x480"), Ok((640, 480)));
        assert_eq!(parse_resolution("1280×720"), Ok((1280, 720)));
        assert!(parse_resolution("640").is_err());
        assert!(parse_resolution("0x480").is_err());
        assert!(parse_resolution("axb").is_err());
    }
}
