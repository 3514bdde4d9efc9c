//! Where durations are recorded: an HdrHistogram of nanoseconds, whose
//! size is fixed when it is made, so a run of an hour takes no more memory
//! than a run of a second, and recording is a few arithmetic operations
//! with no allocation.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::Latency;

/// The longest duration told apart from longer ones: an hour. Longer ones
/// are counted as an hour in the percentiles (the maximum stays exact).
const HIGHEST: u64 = 3_600 * 1_000_000_000;

/// Significant decimal digits kept of every value: a value is known to
/// within 0.1%, whatever its size.
const DIGITS: u8 = 3;

/// Durations recorded, and the longest exactly.
#[derive(Clone, Debug)]
pub(crate) struct Recorder {
    histogram: Histogram<u64>,
    /// Nanoseconds. The histogram knows its maximum only to its precision.
    max: u64,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            histogram: Histogram::new_with_bounds(1, HIGHEST, DIGITS)
                .expect("1 ns to an hour at 3 digits is a valid histogram"),
            max: 0,
        }
    }
}

impl Recorder {
    #[inline]
    pub(crate) fn record(&mut self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.histogram.saturating_record(nanos);
        self.max = self.max.max(nanos);
    }

    /// Adds `other`'s records to these.
    pub(crate) fn merge(&mut self, other: &Recorder) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms of the same bounds add up");
        self.max = self.max.max(other.max);
    }

    pub(crate) fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The percentiles: each the smallest recorded value (to three digits)
    /// with at least that share of all the values at or below it, and never
    /// more than the exact maximum. All zero when nothing was recorded.
    pub(crate) fn latency(&self) -> Latency {
        if self.count() == 0 {
            return Latency::default();
        }
        let at = |q: f64| Duration::from_nanos(self.histogram.value_at_quantile(q).min(self.max));
        Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            p999: at(0.999),
            max: Duration::from_nanos(self.max),
        }
    }
}
