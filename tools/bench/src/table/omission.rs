//! Coordinated omission, shown: one constant-rate run with the server
//! stopped for about a second in the middle, its latencies from the send
//! and from when each request was due, and the verdict.

use std::fmt::Write;

use super::{footer, kernel, threads_line};
use crate::format::{count, latency, times};
use crate::markdown::{Table, left, right};
use crate::results::{JsonLatency, Results, Sample, Scenario};
use crate::stats::median;

/// The verdict: the corrected p99 at least this many times the
/// uncorrected one.
pub const GOAL: f64 = 10.0;

/// The percentiles of the table and the chart, by name.
pub const PERCENTILES: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

fn pick(l: &JsonLatency) -> [f64; 5] {
    [l.p50, l.p90, l.p99, l.p999, l.max]
}

/// The run's latencies from the send, as the others are kept.
fn uncorrected(s: &Sample) -> Option<JsonLatency> {
    Some(JsonLatency {
        p50: s.p50?,
        p90: s.p90?,
        p99: s.p99?,
        p999: s.p999?,
        max: s.max?,
    })
}

/// The four rows: name, and how to get its percentiles from a run.
type Row = (&'static str, fn(&Sample) -> Option<JsonLatency>);

pub const ROWS: [Row; 4] = [
    ("From the send (uncorrected)", uncorrected),
    ("From when due (corrected)", |s| {
        s.open_loop.and_then(|o| o.corrected)
    }),
    ("Sent late by", |s| s.open_loop.and_then(|o| o.send_delay)),
    ("Schedule lag", |s| s.open_loop.and_then(|o| o.schedule_lag)),
];

/// The usable runs.
pub fn runs(results: &Results) -> Vec<&Sample> {
    results
        .samples
        .iter()
        .filter(|s| s.usable() && s.completed > 0)
        .collect()
}

/// The median over the runs of each percentile of one row.
pub fn medians(runs: &[&Sample], row: fn(&Sample) -> Option<JsonLatency>) -> Option<[f64; 5]> {
    let all: Vec<[f64; 5]> = runs
        .iter()
        .filter_map(|s| row(s))
        .map(|l| pick(&l))
        .collect();
    (!all.is_empty()).then(|| std::array::from_fn(|i| median(all.iter().map(|p| p[i]).collect())))
}

pub fn omission(results: &Results) -> String {
    let p = &results.params;
    let runs = runs(results);
    let mut table = Table::new(
        std::iter::once(left("Latency"))
            .chain(PERCENTILES.iter().map(|&name| right(name).rule_width(5))),
    );
    for (name, row) in ROWS {
        match medians(&runs, row) {
            Some(values) => {
                table.row(std::iter::once(name.to_string()).chain(values.map(|v| latency(Some(v)))))
            }
            None => table.row_without_figures(&[name, "no figures"]),
        }
    }
    let mut out = table.finish();
    let server = results.servers.first().map_or("epoll", |s| s.name.as_str());
    let pause = median(runs.iter().filter_map(|s| s.pause).collect());
    let asked = median(
        runs.iter()
            .filter_map(|s| s.open_loop.map(|o| o.rate_asked))
            .collect(),
    );
    let achieved = median(
        runs.iter()
            .filter_map(|s| s.open_loop.map(|o| o.rate_achieved))
            .collect(),
    );
    let _ = writeln!(
        out,
        "\nThe load generator in open loop against the `{server}` listing: {} requests \
         a second for {} s over {} connections with keep-alive (it sent {} a second). \
         {} s into the run the benchmark stopped the server with SIGSTOP and \
         continued it with SIGCONT {} later (the pause as it happened, median over \
         the rounds). *From the send*: what a closed-loop client reports. *From when \
         due*: what a client arriving on schedule waited. *Sent late by*: how long \
         requests waited for a free connection; *schedule lag*: how late the load \
         generator itself was. Medians over the rounds of each percentile.",
        count(asked),
        p.open_loop_seconds,
        p.concurrency.first().copied().unwrap_or(0),
        count(achieved),
        p.pause_at.unwrap_or(f64::NAN),
        latency(pause.is_finite().then_some(pause)),
    );
    out += &threads_line(results, results.samples.iter());
    let _ = writeln!(out, "\n**{}**", verdict(results));
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Omission);
    out
}

/// Whether the pause shows in the corrected p99, at least [`GOAL`] times
/// the uncorrected one.
pub fn verdict(results: &Results) -> String {
    let runs = runs(results);
    let want = format!("The corrected p99 at least {GOAL:.0}× the uncorrected one");
    match (medians(&runs, ROWS[0].1), medians(&runs, ROWS[1].1)) {
        (Some(sent), Some(due)) => {
            let ratio = due[2] / sent[2];
            format!(
                "{want}: {} ({} against {}, {})",
                if ratio >= GOAL { "met" } else { "not met" },
                latency(Some(due[2])),
                latency(Some(sent[2])),
                if ratio >= 100.0 {
                    format!("{}×", count(ratio))
                } else {
                    times(ratio)
                }
            )
        }
        _ => format!("{want}: no figures"),
    }
}
