//! Percentiles and the printed summary.

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// The `p`-th percentile (nearest rank) of `values`.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// What the changes measured.
#[derive(Debug, Default)]
pub struct Summary {
    /// Per router and change: watch event received -> applied, in us.
    pub event_to_dataplane: Vec<f64>,
    /// Per router and change: the apply alone, in us.
    pub apply: Vec<f64>,
    /// Per change: request sent -> the last router applied, in ms.
    pub request_to_last_router: Vec<f64>,
    /// The largest router RSS seen, in bytes.
    pub router_rss: u64,
}

impl Summary {
    /// Prints the figures.
    pub fn print(&self, changes: usize, routers: usize) {
        let line = |what: &str, v: &[f64], unit: &str| {
            println!(
                "{what}: p50 {:.3} {unit}, p99 {:.3} {unit}, max {:.3} {unit} ({} samples)",
                percentile(v, 50.0),
                percentile(v, 99.0),
                percentile(v, 100.0),
                v.len()
            );
        };
        println!("{changes} endpoint changes, {routers} routers:");
        line(
            "  watch event -> data plane",
            &self.event_to_dataplane,
            "us",
        );
        line("  apply alone", &self.apply, "us");
        line(
            "  request -> last router",
            &self.request_to_last_router,
            "ms",
        );
        println!("  router RSS (largest): {}", mib(self.router_rss));
    }
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
