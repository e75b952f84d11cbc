//! The median-flow rule: a box moves by the median displacement of its points and scales by the
//! median ratio of their pairwise distances (Kalal et al., "Forward-Backward Error", ICPR 2010).
//! Medians, because a few points on the background or on an occluder must not drag the box.

/// How a box moved between two frames, in working pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BoxMotion {
    pub dx: f32,
    pub dy: f32,
    pub scale: f32,
}

/// The median-flow motion of points `from[i]` → `to[i]` (at least one pair). Pairs of points
/// closer than a tenth of a pixel say nothing about scale and are skipped; with no usable pair
/// the scale is 1.
pub(crate) fn median_flow(
    from: &[(f32, f32)],
    to: &[(f32, f32)],
    scratch: &mut Vec<f32>,
) -> Option<BoxMotion> {
    if from.is_empty() || from.len() != to.len() {
        return None;
    }
    scratch.clear();
    scratch.extend(from.iter().zip(to).map(|(a, b)| b.0 - a.0));
    let dx = median(scratch)?;
    scratch.clear();
    scratch.extend(from.iter().zip(to).map(|(a, b)| b.1 - a.1));
    let dy = median(scratch)?;
    scratch.clear();
    for i in 0..from.len() {
        for j in i + 1..from.len() {
            let before = distance(from[i], from[j]);
            if before > 0.1 {
                scratch.push(distance(to[i], to[j]) / before);
            }
        }
    }
    let scale = median(scratch).unwrap_or(1.0);
    Some(BoxMotion { dx, dy, scale })
}

fn distance(a: (f32, f32), b: (f32, f32)) -> f32 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

/// The median (mean of the middle two for an even count); `None` when empty. Reorders `values`.
pub(crate) fn median(values: &mut [f32]) -> Option<f32> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let (_, &mut upper, _) = values.select_nth_unstable_by(n / 2, f32::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..n / 2].iter().copied().fold(f32::MIN, f32::max);
    Some((lower + upper) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn recovers_shift_and_scale_despite_an_outlier() {
        let from: Vec<(f32, f32)> = (0..3)
            .flat_map(|i| (0..3).map(move |j| (10.0 * i as f32, 10.0 * j as f32)))
            .collect();
        // Scale 1.5 about (10, 10), then shift by (2, -1); one point flies off.
        let mut to: Vec<(f32, f32)> = from
            .iter()
            .map(|&(x, y)| (10.0 + 1.5 * (x - 10.0) + 2.0, 10.0 + 1.5 * (y - 10.0) - 1.0))
            .collect();
        to[0] = (300.0, -200.0);
        let motion = median_flow(&from, &to, &mut Vec::new()).unwrap();
        assert!((motion.dx - 2.0).abs() < 1e-4, "{motion:?}");
        assert!((motion.dy + 1.0).abs() < 1e-4, "{motion:?}");
        assert!((motion.scale - 1.5).abs() < 1e-4, "{motion:?}");
    }
}
