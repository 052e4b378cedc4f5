//! A fixed-bucket, log-linear latency histogram (HdrHistogram-like, no allocation per
//! sample). Each octave above 128 µs is split into 64 buckets, so a reported quantile is
//! within about 1.6 % of the true sample.

/// Sub-bucket bits: 2^6 = 64 buckets per octave.
const SUB_BITS: u32 = 6;
/// Values below this are stored exactly (one bucket per microsecond).
const LINEAR: u64 = 1 << (SUB_BITS + 1);
/// Enough buckets for values up to 2^40 µs (about 12 days).
const BUCKETS: usize = LINEAR as usize + 34 * (1 << SUB_BITS);

/// Latencies in microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_us: u128,
    max_us: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            sum_us: 0,
            max_us: 0,
        }
    }
}

/// The bucket of a value.
fn index_of(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let msb = 63 - v.leading_zeros();
    let shift = msb - SUB_BITS;
    let top = v >> shift; // in [64, 128)
    let idx = LINEAR as usize + (shift as usize - 1) * (1 << SUB_BITS) + (top as usize - 64);
    idx.min(BUCKETS - 1)
}

/// The value that represents a bucket: its midpoint.
fn value_of(idx: usize) -> u64 {
    if idx < LINEAR as usize {
        return idx as u64;
    }
    let rel = idx - LINEAR as usize;
    let shift = (rel >> SUB_BITS) as u32 + 1;
    let top = (rel & ((1 << SUB_BITS) - 1)) as u64 + 64;
    (top << shift) + ((1u64 << shift) >> 1)
}

impl Histogram {
    /// Records one latency.
    pub fn record(&mut self, us: u64) {
        self.counts[index_of(us)] += 1;
        self.total += 1;
        self.sum_us += u128::from(us);
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram's samples.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.sum_us += other.sum_us;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// The `q`-quantile (0..=1) in microseconds; 0 with no samples.
    pub fn quantile_us(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return value_of(i).min(self.max_us);
            }
        }
        self.max_us
    }

    /// Mean in microseconds.
    pub fn mean_us(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum_us as f64 / self.total as f64
        }
    }

    /// Largest sample in microseconds.
    pub fn max_us(&self) -> u64 {
        self.max_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_within_two_percent() {
        for v in [
            0u64,
            1,
            127,
            128,
            129,
            1000,
            4_321,
            99_999,
            1_234_567,
            1 << 39,
        ] {
            let back = value_of(index_of(v));
            let err = (back as f64 - v as f64).abs() / (v.max(1) as f64);
            assert!(err <= 0.016, "{v} -> {back}");
        }
    }

    #[test]
    fn indices_are_monotonic_and_in_range() {
        let mut last = 0;
        let mut v = 0u64;
        while v < (1 << 40) {
            let i = index_of(v);
            assert!(i >= last && i < BUCKETS);
            last = i;
            v = v * 17 / 16 + 1;
        }
    }

    #[test]
    fn quantiles_of_a_uniform_set() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v * 10);
        }
        let p50 = h.quantile_us(0.5) as f64;
        let p99 = h.quantile_us(0.99) as f64;
        assert!((p50 - 5000.0).abs() / 5000.0 < 0.02, "{p50}");
        assert!((p99 - 9900.0).abs() / 9900.0 < 0.02, "{p99}");
        assert_eq!(h.total, 1000);
        assert_eq!(h.max_us(), 10_000);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(5);
        b.record(500);
        a.merge(&b);
        assert_eq!(a.total, 2);
        assert_eq!(a.max_us(), 500);
        assert_eq!(a.quantile_us(1.0), 500);
    }
}
