//! Least-squares polynomial fits with R².
//!
//! Written out here (normal equations of degree ≤ 2, solved by Gaussian elimination with
//! partial pivoting) because a 3×3 system does not justify a linear-algebra dependency.

/// Coefficients `c` of `y = c0 + c1·x + … + c_d·x^d` minimising squared error, with R².
/// `None` with fewer distinct x values than coefficients.
pub fn polyfit(points: &[(f64, f64)], degree: usize) -> Option<(Vec<f64>, f64)> {
    let n = degree + 1;
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < n {
        return None;
    }
    // Scale x for conditioning (pixel counts are ~1e5).
    let scale = points
        .iter()
        .map(|p| p.0.abs())
        .fold(0.0, f64::max)
        .max(1e-12);
    let mut a = vec![vec![0.0; n + 1]; n];
    for &(x, y) in points {
        let x = x / scale;
        let powers: Vec<f64> = (0..2 * n).map(|k| x.powi(k as i32)).collect();
        for r in 0..n {
            for c in 0..n {
                a[r][c] += powers[r + c];
            }
            a[r][n] += y * powers[r];
        }
    }
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col].clone();
        for (row, values) in a.iter_mut().enumerate() {
            if row != col {
                let f = values[col] / pivot_row[col];
                for (v, p) in values.iter_mut().zip(&pivot_row).skip(col) {
                    *v -= f * p;
                }
            }
        }
    }
    let coefficients: Vec<f64> = (0..n)
        .map(|i| a[i][n] / a[i][i] / scale.powi(i as i32))
        .collect();
    let predict = |x: f64| {
        coefficients
            .iter()
            .enumerate()
            .map(|(i, c)| c * x.powi(i as i32))
            .sum::<f64>()
    };
    let mean = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let ss_tot: f64 = points.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let ss_res: f64 = points.iter().map(|p| (p.1 - predict(p.0)).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        1.0
    };
    Some((coefficients, r2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_an_exact_quadratic() {
        let pts: Vec<(f64, f64)> = [1e5, 2e5, 3e5, 4e5]
            .iter()
            .map(|&x| (x, 3.0 + 2e-4 * x + 5e-10 * x * x))
            .collect();
        let (c, r2) = polyfit(&pts, 2).unwrap();
        assert!(
            (c[0] - 3.0).abs() < 1e-6
                && (c[1] - 2e-4).abs() < 1e-12
                && (c[2] - 5e-10).abs() < 1e-16,
            "{c:?}"
        );
        assert!((r2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn line_through_noise_and_degenerate_input() {
        let pts = [(0.0, 1.0), (1.0, 2.9), (2.0, 5.1), (3.0, 7.0)];
        let (c, r2) = polyfit(&pts, 1).unwrap();
        assert!((c[1] - 2.0).abs() < 0.1 && r2 > 0.99);
        assert!(polyfit(&[(1.0, 1.0), (1.0, 2.0)], 1).is_none());
    }
}
