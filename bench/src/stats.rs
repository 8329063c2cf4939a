//! Order statistics of a sample of durations.

use serde::Serialize;

/// Summary of one measured quantity, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub n: usize,
    pub median_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

/// The value at quantile `permille`/1000 (nearest rank) of sorted `xs`.
fn quantile(xs: &[f64], permille: usize) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    // Nearest rank: the smallest rank r with r / n >= q.
    let n = xs.len();
    let rank = (permille.min(1000) * n).div_ceil(1000).max(1);
    xs[rank.min(n) - 1]
}

/// Summarises `samples` (milliseconds).
pub fn summarize(samples: &[f64]) -> Summary {
    let mut xs = samples.to_vec();
    xs.sort_by(f64::total_cmp);
    Summary {
        n: xs.len(),
        median_ms: quantile(&xs, 500),
        p95_ms: quantile(&xs, 950),
        p99_ms: quantile(&xs, 990),
        min_ms: xs.first().copied().unwrap_or(f64::NAN),
        max_ms: xs.last().copied().unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let s = summarize(&[5.0, 1.0, 4.0, 2.0, 3.0]);
        assert_eq!((s.median_ms, s.p95_ms, s.min_ms, s.max_ms), (3.0, 5.0, 1.0, 5.0));
        let s = summarize(&(1..=100).map(f64::from).collect::<Vec<_>>());
        assert_eq!((s.median_ms, s.p95_ms, s.p99_ms), (50.0, 95.0, 99.0));
    }
}
