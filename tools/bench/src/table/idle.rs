//! What epoll buys: a fixed open-loop load beside idle connections, and
//! what each server paid for them.

use std::fmt::Write;

use super::{footer, name, threads_line};
use crate::format::{count, latency, micros, times};
use crate::markdown::{Column, Table, left, right};
use crate::results::{Mode, Results, Sample, Scenario};
use crate::stats::{Cell, absent, cell_where, median};

/// CPU per request that grows by more than this from no idle connections
/// to the most counts as growing with them.
const GROWS: f64 = 2.0;

/// The models that should pay for every idle connection at every wait
/// (select and poll hand the kernel every descriptor), and those that
/// should pay next to nothing for one (epoll, io_uring and tokio, on
/// epoll, hear only of the ready ones): less than this share of what the
/// first pay per idle connection.
const PREDICT_GROWS: [&str; 2] = ["select", "poll"];
const PREDICT_FLAT: [&str; 4] = ["epoll", "epoll-edge", "uring", "tokio-tasks"];
const SHARE: f64 = 0.1;

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

/// What the kernel's TCP counters said of the runs, in a sentence (the
/// shared counters table is wider than the column of a chapter of its
/// own): the sums over every run, and the servers in whose runs they moved.
pub fn counters(results: &Results) -> String {
    let runs: Vec<&Sample> = results
        .samples
        .iter()
        .filter(|s| s.usable() && s.kernel.is_some())
        .collect();
    if runs.is_empty() {
        return String::new();
    }
    let mut sums = [0u64; 5];
    let mut servers: Vec<String> = Vec::new();
    for s in &runs {
        let k = s.kernel.expect("filtered");
        for (sum, n) in sums.iter_mut().zip(k.trouble()) {
            *sum += n;
        }
        let who = name(results, &s.server);
        if k.any_trouble() && !servers.contains(&who) {
            servers.push(who);
        }
    }
    if servers.is_empty() {
        return "\n**The kernel's TCP counters** moved for no listen overflow or drop, no SYN \
                or segment sent again and no retransmission timeout, in any run.\n"
            .into();
    }
    let [overflows, drops, syn, resent, timeouts] = sums.map(|n| count(n as f64));
    format!(
        "\n**The kernel's TCP counters**, summed over every run: {overflows} listen \
         overflows, {drops} drops at the listener, {syn} SYNs or SYN-ACKs sent again, \
         {resent} segments sent again, {timeouts} retransmission timeouts; they moved in \
         runs of {}. They count the whole machine's loopback; \
         [the JSON file](generated/{}.json) has them run by run.\n",
        servers.join(", "),
        results.scenario
    )
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
    let c = p.concurrency.first().copied().unwrap_or(0);
    let closers: Vec<String> = results
        .servers
        .iter()
        .filter(|s| !s.keep_alive)
        .map(|s| name(results, &s.name))
        .collect();
    let closers = if closers.is_empty() {
        String::new()
    } else {
        format!(" ({})", closers.join(", "))
    };
    let _ = writeln!(
        out,
        "\nThe load: the load generator in open loop at {} requests per second over {c} \
         keep-alive connections for {} s (`loadgen --rate {rate:.0} -d {} -c {c} -k`). \
         Each idle connection is a real established connection: to a server that keeps \
         connections alive it sends one request, reads the answer, and later sends one \
         more with all the others at once, just before the load starts; to a server that \
         closes after one answer{closers} it sends nothing, and the load starts once the \
         server holds them all. Either way the load starts right after and is over before \
         the servers' five-second head deadline (`wire::HEAD_TIMEOUT`) can close an idle \
         connection; each is then checked, still open or not.",
        count(rate),
        p.open_loop_seconds,
        p.open_loop_seconds,
    );
    out += &health(results, rate);
    out += &threads_line(results, results.samples.iter());
    let _ = writeln!(out, "\nLimits of the run: {}.", results.limits.describe());
    let _ = writeln!(out, "\n**The reading.**\n");
    out += &verdict(results);
    out += &counters(results);
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
    let droppers: Vec<String> = usable
        .iter()
        .filter(|s| s.slow_clients.is_some_and(|r| r.dropped > 0))
        .map(|s| {
            let r = s.slow_clients.expect("filtered");
            format!(
                "{} of {} in a run of {}",
                count(r.dropped as f64),
                count(r.connected as f64),
                name(results, &s.server)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        " Of the {} idle connections opened over all runs, the servers closed {} before \
         the run ended{}.",
        count(held as f64),
        count(dropped as f64),
        if droppers.is_empty() {
            String::new()
        } else {
            format!(" ({})", droppers.join("; "))
        }
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

/// Seconds of CPU each idle connection added to every request.
pub fn per_idle(results: &Results, server: &str) -> Option<f64> {
    growth(results, server).map(|(base, most, top)| (top - base) / most as f64)
}

/// "84 ns", "1.2 ns", "-3 ns".
pub fn nanos(seconds: f64) -> String {
    let ns = seconds * 1e9;
    if ns.abs() < 10.0 {
        format!("{ns:.1} ns")
    } else {
        format!("{} ns", count(ns))
    }
}

/// The generated reading: each server's growth, and the chapters'
/// prediction held against it.
pub fn verdict(results: &Results) -> String {
    let mut out = String::new();
    let first = results.params.idle.first().copied().unwrap_or(0);
    for s in results.measured() {
        let (Some((base, most, top)), Some(each)) = (growth(results, s), per_idle(results, s))
        else {
            continue;
        };
        let _ = writeln!(
            out,
            "- {}: {} of CPU per request beside {} idle connections, {} beside {} ({}): \
             each idle connection added {} to every request.",
            name(results, s),
            micros(base),
            count(first as f64),
            micros(top),
            count(most as f64),
            times(top / base),
            nanos(each),
        );
    }
    if out.is_empty() {
        return "Not enough runs to compare.\n".into();
    }
    let tested = |names: &[&'static str]| -> Vec<&'static str> {
        names
            .iter()
            .copied()
            .filter(|n| growth(results, n).is_some())
            .collect()
    };
    let listed = |names: &[&str]| {
        let mut all: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
        match all.pop() {
            Some(last) if !all.is_empty() => format!("{} and {last}", all.join(", ")),
            Some(last) => last,
            None => String::new(),
        }
    };
    let judged = |held: bool| {
        if held {
            "**borne out**"
        } else {
            "**not borne out**"
        }
    };
    let growers = tested(&PREDICT_GROWS);
    if growers.is_empty() {
        let _ = writeln!(
            out,
            "\nNeither `select` nor `poll` was measured beside idle connections: \
             nothing to hold the prediction against."
        );
        return out;
    }
    let grew = growers
        .iter()
        .all(|n| growth(results, n).is_some_and(|(base, _, top)| top > GROWS * base));
    let _ = writeln!(
        out,
        "\nThe prediction that {} pay for every idle connection at every wait (CPU per \
         request more than {} beside the most idle connections): {}.",
        listed(&growers),
        times(GROWS),
        judged(grew),
    );
    // What the cheaper of them paid per idle connection: the yardstick.
    let yardstick = growers
        .iter()
        .filter_map(|n| per_idle(results, n).map(|each| (*n, each)))
        .min_by(|a, b| a.1.total_cmp(&b.1));
    let flat = tested(&PREDICT_FLAT);
    if let (Some((by, each)), false) = (yardstick, flat.is_empty()) {
        let held = flat
            .iter()
            .all(|n| per_idle(results, n).is_some_and(|e| e < SHARE * each));
        let over: Vec<&str> = flat
            .iter()
            .copied()
            .filter(|n| per_idle(results, n).is_none_or(|e| e >= SHARE * each))
            .collect();
        let _ = writeln!(
            out,
            "That {} pay next to nothing for one (less than {:.0}% of the {} each idle \
             connection cost `{by}`): {}{}.",
            listed(&flat),
            SHARE * 100.0,
            nanos(each),
            judged(held),
            if over.is_empty() {
                String::new()
            } else {
                format!(" ({} paid more)", listed(&over))
            }
        );
    }
    out
}
