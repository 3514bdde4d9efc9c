//! What epoll buys: a fixed open-loop load beside idle connections, and
//! what each server paid for them.

use std::fmt::Write;

use super::{footer, kernel, name};
use crate::format::{count, latency, micros, times};
use crate::markdown::{Column, Table, left, right};
use crate::results::{Mode, Results, Sample, Scenario};
use crate::stats::{Cell, absent, cell_where, median};

/// CPU per request that grows by more than this from no idle connections
/// to the most counts as growing with them; by less than `FLAT`, as not.
const GROWS: f64 = 2.0;
const FLAT: f64 = 1.5;

/// The models whose chapters predict each: select and poll hand the kernel
/// every descriptor at every wait; epoll, io_uring and tokio (on epoll)
/// are told only of the ready ones.
const PREDICT_GROWS: [&str; 2] = ["select", "poll"];
const PREDICT_FLAT: [&str; 4] = ["epoll", "epoll-edge", "uring", "tokio-tasks"];

/// The open-loop runs of one server beside `idle` idle connections.
pub fn runs<'a>(results: &'a Results, server: &str, idle: usize) -> Vec<&'a Sample> {
    results
        .samples
        .iter()
        .filter(|s| s.server == server && s.idle == Some(idle) && s.usable())
        .collect()
}

/// The median over the runs of a figure some runs may lack.
pub fn median_of(runs: &[&Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = runs.iter().filter_map(|s| f(s)).collect();
    (!v.is_empty()).then(|| median(v))
}

/// The p99 from when each request was due.
pub fn corrected_p99(s: &Sample) -> Option<f64> {
    s.open_loop.and_then(|o| o.corrected).map(|c| c.p99)
}

fn cell(results: &Results, server: &str, idle: usize) -> Cell {
    cell_where(results, server, Mode::KeepAlive, |s| s.idle == Some(idle))
}

/// A table with a column per number of idle connections.
fn by_level(results: &Results, figure: impl Fn(&Results, &str, usize) -> String) -> String {
    let levels = &results.params.idle;
    let mut columns: Vec<Column> = vec![left("Server")];
    columns.extend(levels.iter().map(|&n| right(count(n as f64))));
    let mut table = Table::new(columns);
    for s in &results.servers {
        let who = name(results, &s.name);
        if let Some(why) = absent(results, &s.name) {
            table.row_without_figures(&[&who, why]);
            continue;
        }
        let mut row = vec![who];
        row.extend(levels.iter().map(|&n| figure(results, &s.name, n)));
        table.row(row);
    }
    table.finish()
}

pub fn idle(results: &Results) -> String {
    let p = &results.params;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "**Server CPU per request** (median over the rounds), by idle connections \
         held open beside the load:\n"
    );
    out += &by_level(results, |r, s, n| match cell(r, s, n) {
        Cell::Stats(st) => micros(st.server_cpu),
        Cell::Absent(_) => "skipped".into(),
        Cell::Broken(_) => "failed".into(),
    });
    let _ = writeln!(
        out,
        "\n**p99 latency from when each request was due** (corrected for \
         coordinated omission; median over the rounds):\n"
    );
    out += &by_level(results, |r, s, n| {
        match median_of(&runs(r, s, n), corrected_p99) {
            Some(v) => latency(Some(v)),
            None if runs(r, s, n).is_empty() => "skipped".into(),
            None => "—".into(),
        }
    });
    let _ = writeln!(
        out,
        "\n**The server's memory** (PSS, the largest reading during the load; \
         median over the rounds):\n"
    );
    out += &by_level(results, |r, s, n| {
        match median_of(&runs(r, s, n), |x| x.pss_peak.map(|b| b as f64)) {
            Some(b) => format!("{} MiB", count(b / 1048576.0)),
            None if runs(r, s, n).is_empty() => "skipped".into(),
            None => "—".into(),
        }
    });
    let rate = p.rate.unwrap_or(f64::NAN);
    let _ = writeln!(
        out,
        "\nThe load: the load generator in open loop at {} requests per second over {} \
         keep-alive connections for {} s (`loadgen --rate {} -d {} -c {} -k`). Each idle \
         connection is a real established connection: to a server that keeps \
         connections alive it sends one request, reads the answer, and later sends \
         one more with all the others at once, just before the load starts; to a server \
         that closes after one answer (`thread-per-connection`) it sends nothing, and \
         the load starts once the server holds them all. Either way the load ends \
         within three seconds of the idle connections' last request (or of the server \
         taking them), before the servers' five-second head deadline can close them.",
        count(rate),
        p.concurrency.first().copied().unwrap_or(0),
        p.open_loop_seconds,
        count(rate),
        p.open_loop_seconds,
        p.concurrency.first().copied().unwrap_or(0),
    );
    out += &health(results, rate);
    let _ = writeln!(out, "\nLimits of the run: {}.", results.limits.describe());
    let _ = writeln!(out, "\n**The reading.**\n");
    out += &verdict(results);
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Idle);
    out
}

/// Whether the load was carried, and the idle connections kept, in every
/// run: what the figures above rely on.
fn health(results: &Results, rate: f64) -> String {
    let usable: Vec<&Sample> = results.samples.iter().filter(|s| s.usable()).collect();
    let short: Vec<String> = usable
        .iter()
        .filter(|s| s.requests_per_sec < 0.9 * rate)
        .map(|s| {
            format!(
                "{} beside {} ({} requests/s)",
                name(results, &s.server),
                count(s.idle.unwrap_or(0) as f64),
                count(s.requests_per_sec)
            )
        })
        .collect();
    let held: usize = usable
        .iter()
        .filter_map(|s| s.slow_clients)
        .map(|r| r.connected)
        .sum();
    let dropped: usize = usable
        .iter()
        .filter_map(|s| s.slow_clients)
        .map(|r| r.dropped)
        .sum();
    let mut out = String::new();
    if short.is_empty() {
        let _ = write!(
            out,
            "\nEvery run carried the load (at least 90% of the rate asked)."
        );
    } else {
        let _ = write!(
            out,
            "\nRuns that carried less than 90% of the rate asked: {}.",
            short.join(", ")
        );
    }
    let _ = writeln!(
        out,
        " Of the {} idle connections opened over all runs, the servers closed {} before \
         the run ended.",
        count(held as f64),
        count(dropped as f64)
    );
    let failed: Vec<String> = results
        .samples
        .iter()
        .filter(|s| !s.usable())
        .map(|s| {
            format!(
                "{} beside {}: {}",
                name(results, &s.server),
                count(s.idle.unwrap_or(0) as f64),
                super::short(s.error.as_deref().unwrap_or("not installed"))
            )
        })
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "\nRuns without figures: {}.", failed.join("; "));
    }
    out
}

/// CPU per request with no idle connections and with the most this server
/// was measured beside, and their ratio.
fn growth(results: &Results, server: &str) -> Option<(f64, usize, f64)> {
    let levels = &results.params.idle;
    let first = levels.first()?;
    let base = cell(results, server, *first).stats()?.server_cpu;
    let (most, top) = levels
        .iter()
        .rev()
        .find_map(|&n| cell(results, server, n).stats().map(|s| (n, s.server_cpu)))?;
    (most != *first).then_some((base, most, top))
}

/// The generated reading: each server's growth, and the chapters'
/// prediction held against it.
pub fn verdict(results: &Results) -> String {
    let mut out = String::new();
    let first = results.params.idle.first().copied().unwrap_or(0);
    let (mut grew, mut flat) = (Vec::new(), Vec::new());
    for s in results.measured() {
        let Some((base, most, top)) = growth(results, s) else {
            continue;
        };
        let ratio = top / base;
        let _ = writeln!(
            out,
            "- {}: {} of CPU per request beside {} idle connections, {} beside {} ({}).",
            name(results, s),
            micros(base),
            count(first as f64),
            micros(top),
            count(most as f64),
            times(ratio)
        );
        if ratio > GROWS {
            grew.push(s);
        } else if ratio < FLAT {
            flat.push(s);
        }
    }
    if out.is_empty() {
        return "Not enough runs to compare.\n".into();
    }
    let judge = |list: &[&str], expected: &[&str]| -> String {
        let tested: Vec<&&str> = expected
            .iter()
            .filter(|e| growth(results, e).is_some())
            .collect();
        if tested.is_empty() {
            return "not measured".into();
        }
        let held = tested.iter().all(|e| list.contains(e));
        let names: Vec<String> = tested.iter().map(|e| format!("`{e}`")).collect();
        format!(
            "{} ({})",
            if held {
                "**borne out**"
            } else {
                "**not borne out**"
            },
            names.join(", ")
        )
    };
    let _ = writeln!(
        out,
        "\nThe prediction that select and poll pay for every connection at every wait, \
         idle or not (CPU per request more than {} beside the most idle connections): {}. \
         That epoll, io_uring and tokio pay only for the ready ones (within {}): {}.",
        times(GROWS),
        judge(&grew, &PREDICT_GROWS),
        times(FLAT),
        judge(&flat, &PREDICT_FLAT),
    );
    out
}
