//! The load clients side by side: in closed loop, and in open loop at half
//! the load generator's closed-loop rate; and whether the load generator
//! meets its goals.

use std::fmt::Write;

use super::{RATE, footer, kernel, threads_line};
use crate::format::{count, latency, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{JsonLatency, Mode, Results, Sample, Scenario};
use crate::stats::{Cell, cell, median};

/// The closed-loop clients, in the table's order.
const CLOSED: [&str; 5] = ["ab", "loadgen", "loadgen -t 1", "wrk", "oha"];

/// The load generator's two closed-loop forms, and the peers it is judged
/// against.
const LOADGEN: [&str; 2] = ["loadgen", "loadgen -t 1"];
const PEERS: [&str; 3] = ["ab", "wrk", "oha"];

/// The open-loop clients: the load generator, and the peers' rate modes.
const OPEN: [&str; 3] = ["loadgen --rate", "oha -q", "wrk2 -R"];

/// The open-loop goals: the load generator's schedule lag at p99, and how
/// far the rate it sent may be from the rate asked.
const LAG_GOAL: f64 = 1e-3;
const RATE_GOAL: f64 = 0.01;

/// The clients with a new connection per request (for the chapter that
/// introduces the load generator, before keep-alive has been explained).
pub fn clients(results: &Results) -> String {
    part(results, Mode::Close)
}

/// The clients with keep-alive, for Results.
pub fn clients_keep_alive(results: &Results) -> String {
    part(results, Mode::KeepAlive)
}

/// One mode's tables, verdicts and notes.
fn part(results: &Results, mode: Mode) -> String {
    if !results.params.modes.contains(&mode) {
        return format!(
            "*Not measured yet with {}: run `cargo run --release -p bench -- clients`.*\n",
            super::mode_words(mode)
        );
    }
    let server = results
        .servers
        .first()
        .map_or("linear", |s| s.name.as_str());
    let mut table = Table::new([
        left("Client"),
        right("Load"),
        right(RATE),
        right("vs `ab`"),
        right("Client CPU per request"),
        right("Server CPU per request"),
        right("Failed"),
    ]);
    let mut verdicts = Vec::new();
    {
        for &c in &results.params.concurrency {
            let cells = CLOSED.map(|client| cell(results, server, client, mode, c, None));
            let ab = &cells[0];
            for (client, got) in CLOSED.iter().zip(&cells) {
                let (client, what) = (format!("`{client}`"), format!("{c}, {}", mode.name()));
                match got.stats() {
                    None => table.row_without_figures(&[&client, &what, &got.absent()]),
                    Some(s) => table.row([
                        client,
                        what,
                        s.rate_and_range(),
                        times(ab.stats().map_or(f64::NAN, |a| s.rate / a.rate)),
                        micros(s.client_cpu),
                        micros(s.server_cpu),
                        s.failed(),
                    ]),
                }
            }
            verdicts.push(closed_verdict(results, server, mode, c));
        }
    }
    let mut out = table.finish();
    let _ = writeln!(
        out,
        "\nAll against the `{server}` listing on 127.0.0.1, in closed loop (each \
         connection sends its next request when the last is answered), with the \
         connections at once and the mode under *Load*: `ab`, `oha` \
         and the load generator (with its default threads, one per core, and with \
         one thread) send {} requests a run, `wrk -t2` runs for {} s; medians over \
         the rounds, and the range of the rounds' rates in brackets. Client CPU is user plus system \
         time of the client process; server CPU, of the server's process group.",
        count(results.params.requests as f64),
        results.params.wrk_seconds,
    );
    out += &threads_line(
        results,
        results
            .samples
            .iter()
            .filter(|s| s.mode == mode && CLOSED.contains(&s.client.as_str())),
    );
    let _ = writeln!(
        out,
        "\n**The load generator's goal in closed loop**: at least the rate of every \
         peer installed, at no more client CPU per request, with the better of its \
         two thread counts:\n"
    );
    for v in verdicts {
        let _ = writeln!(out, "- {v}");
    }
    if results.params.open_loop_seconds > 0.0 {
        out += &open_loop(results, server, mode);
    }
    out += &kernel(results, results.samples.iter().filter(|s| s.mode == mode));
    footer(&mut out, results, Scenario::Clients);
    out
}

/// Whether the better of the load generator's two forms (by rate) met its
/// goal against every installed peer in one case.
fn closed_verdict(results: &Results, server: &str, mode: Mode, c: usize) -> String {
    let head = format!("{}, {c} connections:", mode.name());
    let forms = LOADGEN.map(|l| (l, cell(results, server, l, mode, c, None)));
    let Some((label, lg)) = forms
        .iter()
        .filter_map(|(l, cell)| cell.stats().map(|s| (*l, s)))
        .max_by(|a, b| a.1.rate.total_cmp(&b.1.rate))
    else {
        return format!("{head} the load generator gave no figures");
    };
    let mut met = true;
    let mut parts = Vec::new();
    for peer in PEERS {
        let other = cell(results, server, peer, mode, c, None);
        match other.stats() {
            Some(o) => {
                let (rate, cpu) = (lg.rate / o.rate, lg.client_cpu / o.client_cpu);
                met &= rate >= 1.0 && cpu <= 1.0;
                parts.push(format!(
                    "{} `{peer}`'s rate at {} its client CPU per request",
                    times(rate),
                    times(cpu)
                ));
            }
            None => parts.push(format!("`{peer}` {}", absent_words(&other))),
        }
    }
    let verdict = if met { "**met**" } else { "**not met**" };
    format!("{head} `{label}`, {verdict} ({})", parts.join("; "))
}

fn absent_words(cell: &Cell) -> String {
    match cell {
        Cell::Absent(why) => (*why).into(),
        other => other.absent(),
    }
}

/// The usable runs of one open-loop client in one mode.
fn runs<'a>(results: &'a Results, server: &str, client: &str, mode: Mode) -> Vec<&'a Sample> {
    results
        .samples
        .iter()
        .filter(|s| s.server == server && s.client == client && s.mode == mode && s.usable())
        .collect()
}

/// The median over runs of a figure some runs may lack.
fn med(runs: &[&Sample], f: impl Fn(&Sample) -> Option<f64>) -> Option<f64> {
    let v: Vec<f64> = runs
        .iter()
        .filter_map(|s| f(s))
        .filter(|v| v.is_finite())
        .collect();
    (!v.is_empty()).then(|| median(v))
}

fn corrected(s: &Sample) -> Option<JsonLatency> {
    s.open_loop.and_then(|o| o.corrected)
}

/// The open-loop table and the load generator's open-loop goal.
fn open_loop(results: &Results, server: &str, mode: Mode) -> String {
    let mut out = String::new();
    let share = results.params.rate_share.unwrap_or(0.5);
    let _ = writeln!(
        out,
        "\n**In open loop**, each client asked for {}% of the load generator's \
         closed-loop rate in the same case (the better of its two thread counts, in \
         the rounds so far), for {} s. *Corrected* latency runs from when a request \
         was due, whether or not a connection was free to send it; *uncorrected*, \
         from when it was sent; *schedule lag* is the load generator's own lateness \
         in sending a request that was due and had a free connection. `oha -q` \
         (with `--latency-correction`) and `wrk2 -R` report corrected latencies \
         only, and their achieved rate is the completed requests per second.\n",
        share * 100.0,
        results.params.open_loop_seconds,
    );
    // Two tables, so that each fits the book's column: the rates, then the
    // latencies.
    let mut table = Table::new([
        left("Client"),
        right("Load"),
        right("Requests/s asked"),
        right("Achieved"),
        right("Client CPU per request"),
    ]);
    let mut latencies = Table::new([
        left("Client"),
        right("Load"),
        right("Corrected p50"),
        right("p99"),
        right("Uncorrected p99"),
        right("Schedule lag p99"),
    ]);
    let mut goals = Vec::new();
    {
        let c = results.params.concurrency.last().copied().unwrap_or(0);
        for client in OPEN {
            let what = format!("{c}, {}", mode.name());
            let code = format!("`{client}`");
            let all: Vec<&Sample> = results
                .samples
                .iter()
                .filter(|s| s.server == server && s.client == client && s.mode == mode)
                .collect();
            let runs = runs(results, server, client, mode);
            if runs.is_empty() {
                let why = if all.is_empty() {
                    "not run".to_string()
                } else if all.iter().all(|s| !s.installed) {
                    "not installed".to_string()
                } else {
                    let e = all.iter().find_map(|s| s.error.clone()).unwrap_or_default();
                    format!("no figures: {}", super::short(&e))
                };
                table.row_without_figures(&[&code, &what, &why]);
                latencies.row_without_figures(&[&code, &what, &why]);
                continue;
            }
            let asked = med(&runs, |s| s.open_loop.map(|o| o.rate_asked));
            let achieved = med(&runs, |s| s.open_loop.map(|o| o.rate_achieved));
            let lag = med(&runs, |s| {
                s.open_loop.and_then(|o| o.schedule_lag).map(|l| l.p99)
            });
            table.row([
                code.clone(),
                what.clone(),
                asked.map_or("—".into(), count),
                achieved.map_or("—".into(), count),
                micros(median(
                    runs.iter().map(|s| s.client_cpu_per_request()).collect(),
                )),
            ]);
            latencies.row([
                code,
                what,
                latency(med(&runs, |s| corrected(s).map(|l| l.p50))),
                latency(med(&runs, |s| corrected(s).map(|l| l.p99))),
                latency(med(&runs, |s| s.p99)),
                latency(lag),
            ]);
            if client == "loadgen --rate" {
                goals.push(open_goal(mode, &runs));
            }
        }
    }
    out += &table.finish();
    out += "\nThe same runs' latencies:\n\n";
    out += &latencies.finish();
    out += &threads_line(
        results,
        results
            .samples
            .iter()
            .filter(|s| s.mode == mode && OPEN.contains(&s.client.as_str())),
    );
    let _ = writeln!(
        out,
        "\n**The load generator's goal in open loop**: at {}% of its closed-loop \
         rate, a schedule lag under {} at p99, and a rate sent within {}% of the \
         rate asked (medians over the rounds):\n",
        share * 100.0,
        latency(Some(LAG_GOAL)),
        RATE_GOAL * 100.0,
    );
    for g in goals {
        let _ = writeln!(out, "- {g}");
    }
    out
}

/// Whether the load generator kept to its schedule in one mode.
fn open_goal(mode: Mode, runs: &[&Sample]) -> String {
    let lag = med(runs, |s| {
        s.open_loop.and_then(|o| o.schedule_lag).map(|l| l.p99)
    });
    let off = med(runs, |s| {
        s.open_loop
            .filter(|o| o.rate_asked > 0.0)
            .map(|o| (o.rate_achieved / o.rate_asked - 1.0).abs())
    });
    match (lag, off) {
        (Some(lag), Some(off)) => {
            let met = lag < LAG_GOAL && off <= RATE_GOAL;
            format!(
                "{}: {} (schedule lag p99 {}; the rate sent {:.2}% from the rate asked)",
                mode.name(),
                if met { "**met**" } else { "**not met**" },
                latency(Some(lag)),
                off * 100.0
            )
        }
        _ => format!("{}: no figures", mode.name()),
    }
}
