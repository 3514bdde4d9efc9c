//! How the tables and charts write a figure: counts with thousands
//! separators, CPU time in microseconds, latencies in the unit that reads
//! best, ratios. A figure that is not there (NaN, `None`) is a dash.

/// 12345.6 -> "12,346"
pub fn count(value: f64) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    if value < -0.5 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds of CPU per request, in microseconds.
pub fn micros(seconds: f64) -> String {
    if !seconds.is_finite() {
        "—".into()
    } else if seconds < 10e-6 {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        format!("{:.0} µs", seconds * 1e6)
    }
}

/// A latency, in the unit that reads best.
pub fn latency(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() && s >= 1.0 => format!("{s:.2} s"),
        Some(s) if s.is_finite() && s >= 0.01 => format!("{:.0} ms", s * 1e3),
        Some(s) if s.is_finite() && s >= 1e-5 => format!("{:.2} ms", s * 1e3),
        Some(s) if s.is_finite() => format!("{:.1} µs", s * 1e6),
        _ => "—".into(),
    }
}

/// A latency as `client` reports it: `ab` in whole milliseconds.
pub fn latency_of(client: &str, seconds: Option<f64>) -> String {
    match (client, seconds) {
        ("ab", Some(s)) if s.is_finite() => format!("{:.0} ms", s * 1e3),
        _ => latency(seconds),
    }
}

/// 1.234 -> "1.23×"
pub fn times(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}×")
    } else {
        "—".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(999.4), "999");
        assert_eq!(count(1000.0), "1,000");
        assert_eq!(count(21980.7), "21,981");
        assert_eq!(count(1234567.0), "1,234,567");
        assert_eq!(count(-1234.0), "-1,234");
        assert_eq!(count(f64::NAN), "—");
    }

    #[test]
    fn units() {
        assert_eq!(micros(15e-6), "15 µs");
        assert_eq!(micros(2.5e-6), "2.5 µs");
        assert_eq!(micros(f64::INFINITY), "—");
        assert_eq!(latency(Some(0.00025)), "0.25 ms");
        assert_eq!(latency(Some(0.25)), "250 ms");
        assert_eq!(latency(Some(5.031)), "5.03 s");
        assert_eq!(latency(None), "—");
        assert_eq!(latency(Some(4.2e-6)), "4.2 µs");
    }

    #[test]
    fn ab_latencies_in_whole_milliseconds() {
        assert_eq!(latency_of("ab", Some(0.00051)), "1 ms");
        assert_eq!(latency_of("ab", Some(0.0002)), "0 ms");
        assert_eq!(latency_of("loadgen", Some(0.00051)), "0.51 ms");
        assert_eq!(latency_of("ab", None), "—");
    }

    #[test]
    fn ratios() {
        assert_eq!(times(1.234), "1.23×");
        assert_eq!(times(0.5), "0.50×");
        assert_eq!(times(1.0 / 0.0), "—");
        assert_eq!(times(f64::NAN), "—");
    }
}
