//! Markdown tables from a results file. Every figure the chapters show is
//! written here, from measured samples: medians over the rounds, with the
//! range beside them.

use std::fmt::Write;

use crate::Results;
use crate::run::Sample;

/// The samples of one server and client, over all rounds.
fn group<'a>(results: &'a Results, server: &str, client: &str) -> Vec<&'a Sample> {
    results
        .samples
        .iter()
        .filter(|s| s.server == server && s.client == client && s.installed)
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

fn range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

/// 12345.6 -> "12,346"
fn count(value: f64) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Seconds to microseconds, one decimal.
fn micros(seconds: f64) -> String {
    if seconds.is_finite() {
        format!("{:.1} µs", seconds * 1e6)
    } else {
        "—".into()
    }
}

/// Seconds to milliseconds, two decimals.
fn millis(seconds: Option<f64>) -> String {
    match seconds {
        Some(s) if s.is_finite() => format!("{:.2} ms", s * 1e3),
        _ => "—".into(),
    }
}

/// The median of what `f` reads from each sample.
fn med(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    median(samples.iter().map(|s| f(s)).collect())
}

fn rates(samples: &[&Sample]) -> (f64, String) {
    let rates: Vec<f64> = samples.iter().map(|s| s.requests_per_sec).collect();
    let (lo, hi) = range(&rates);
    (median(rates), format!("{}–{}", count(lo), count(hi)))
}

fn footer(out: &mut String, results: &Results, json: &str) {
    let _ = writeln!(
        out,
        "\nMeasured on {}. Reproduce with `{}`; every raw figure is in [{json}](generated/{json}).",
        results.machine.describe(),
        results.command
    );
}

/// The load clients side by side.
pub fn clients(results: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Client | Requests/s (median) | Range | vs `ab` | Client CPU per request | Server CPU per request | Failed |\n\
         | ------ | ------------------: | ----: | ------: | ---------------------: | ---------------------: | -----: |"
    );
    let ab_rate = rates(&group(results, "linear", "ab")).0;
    for client in ["ab", "loadgen", "wrk"] {
        let samples = group(results, "linear", client);
        if samples.is_empty() {
            let _ = writeln!(out, "| `{client}` | not installed | | | | | |");
            continue;
        }
        let (rate, spread) = rates(&samples);
        let _ = writeln!(
            out,
            "| `{client}` | {} | {spread} | {:.2}× | {} | {} | {} |",
            count(rate),
            rate / ab_rate,
            micros(med(&samples, Sample::client_cpu_per_request)),
            micros(med(&samples, Sample::server_cpu_per_request)),
            samples.iter().map(|s| s.failed).sum::<u64>(),
        );
    }
    let _ = writeln!(
        out,
        "\nAll three against the linear server (release build) on 127.0.0.1, \
         {} connections, a new connection for every request; `ab` and the load \
         generator send {} requests a run, `wrk` runs for a fixed time; {} \
         interleaved round(s), medians, range over the rounds. CPU times are \
         user plus system, read from the kernel.",
        results.concurrency,
        count(results.requests as f64),
        results.rounds
    );
    footer(&mut out, results, "clients.json");
    out
}

/// The post's benchmark, one row per server and client.
pub fn post(results: &Results, servers: &[&str]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Server | Client | Requests/s (median) | Range | Server CPU per request | Latency p50 | Latency p99 | Failed |\n\
         | ------ | ------ | ------------------: | ----: | ---------------------: | ----------: | ----------: | -----: |"
    );
    for server in servers {
        for client in ["ab", "loadgen"] {
            let samples = group(results, server, client);
            if samples.is_empty() {
                let _ = writeln!(out, "| {server} | `{client}` | not installed | | | | | |");
                continue;
            }
            let (rate, spread) = rates(&samples);
            let p = |f: fn(&Sample) -> Option<f64>| {
                let values: Vec<f64> = samples.iter().filter_map(|s| f(s)).collect();
                (!values.is_empty()).then(|| median(values))
            };
            // ab reports whole milliseconds: show no more than it knows.
            let latency = |v: Option<f64>| match (client, v) {
                ("ab", Some(s)) => format!("{:.0} ms", s * 1e3),
                _ => millis(v),
            };
            let _ = writeln!(
                out,
                "| {server} | `{client}` | {} | {spread} | {} | {} | {} | {} |",
                count(rate),
                micros(med(&samples, Sample::server_cpu_per_request)),
                latency(p(|s| s.p50)),
                latency(p(|s| s.p99)),
                samples.iter().map(|s| s.failed).sum::<u64>(),
            );
        }
    }
    let _ = writeln!(
        out,
        "\nThe post's benchmark: {} requests a run, {} at a time, a new \
         connection for each, on 127.0.0.1; {} interleaved round(s), \
         medians, range over the rounds. `ab` reports latency in whole \
         milliseconds.",
        count(results.requests as f64),
        results.concurrency,
        results.rounds
    );
    footer(&mut out, results, "post.json");
    out
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
    }

    #[test]
    fn medians() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(vec![]).is_nan());
    }
}
