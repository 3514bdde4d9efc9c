//! The sweep: per mode, rates, CPU per request and p99 latency at every
//! concurrency level.

use std::fmt::Write;

use super::{footer, kernel, mode_words, name, threads_line};
use crate::format::{count, latency, micros};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
use crate::stats::median;
use crate::stats::{Stats, absent, cell};

/// How a table shows one figure of a cell.
type Show = fn(&Stats) -> String;

pub fn sweep(results: &Results) -> String {
    let mut out = String::new();
    let levels = &results.params.concurrency;
    let figures: [(&str, Show); 3] = [
        ("Requests per second (median)", |s| count(s.rate)),
        ("Server CPU per request", |s| micros(s.server_cpu)),
        ("Latency p99", |s| latency(s.p99)),
    ];
    let mut closed_any = false;
    for mode in Mode::BOTH {
        let servers: Vec<_> = results
            .servers
            .iter()
            .filter(|s| mode == Mode::Close || s.keep_alive)
            .collect();
        for (title, show) in &figures {
            let _ = writeln!(out, "**{title}, {}:**\n", mode_words(mode));
            // The levels' delimiters all as short as Markdown takes.
            let columns = levels.iter().map(|c| right(c.to_string()).rule_width(3));
            let mut table = Table::new(std::iter::once(left("Server")).chain(columns));
            for s in &servers {
                let who = name(results, &s.name);
                if let Some(why) = absent(results, &s.name) {
                    table.row_without_figures(&[&who, why]);
                    continue;
                }
                let figures = levels.iter().map(|&c| {
                    let cell = cell(results, &s.name, "loadgen", mode, c, None);
                    let Some(st) = cell.stats() else {
                        return cell.absent();
                    };
                    let mut text = show(st);
                    if st.failed > 0 || st.broken > 0 {
                        text += " ‡";
                    }
                    if st.closed {
                        closed_any = true;
                        text += " †";
                    }
                    text
                });
                table.row(std::iter::once(who).chain(figures));
            }
            out += &table.finish();
            out += "\n";
        }
    }
    let _ = writeln!(
        out,
        "The book's load generator at each number of connections at once; {} \
         requests a run with a new connection for each, {} with keep-alive. \
         Listings that close every connection are not run with keep-alive. \
         ‡: some requests failed (see the results file).{}",
        count(results.params.requests as f64),
        count(
            results
                .params
                .keep_alive_requests
                .unwrap_or(results.params.requests) as f64
        ),
        if closed_any {
            " †: asked for keep-alive, the server closed the connection after every response."
        } else {
            ""
        }
    );
    out += &threads_line(results, results.samples.iter());
    out += &calibration(results);
    let _ = writeln!(
        out,
        "\nThe machine's limits: {}.",
        results.limits.describe()
    );
    out += &kernel(results, results.samples.iter());
    footer(&mut out, results, Scenario::Sweep);
    out
}

/// How the load generator's threads were chosen: its rate with each number
/// of threads tried, per server and mode, the chosen one in bold.
fn calibration(results: &Results) -> String {
    let Some(p) = &results.params.calibration else {
        return String::new();
    };
    let mut out = format!(
        "\n**The load generator's threads**, chosen for each server and mode before \
         the runs above: requests per second (median of {} round(s)) with {} \
         clients at once and {} requests a run ({} with keep-alive), with each number \
         of threads; the faster, in bold, ran every level of the sweep.\n\n",
        results.rounds,
        p.concurrency,
        count(p.requests as f64),
        count(p.keep_alive_requests as f64),
    );
    let mut columns = vec![left("Server")];
    for mode in Mode::BOTH {
        for t in &p.threads {
            let unit = if *t == 1 { "thread" } else { "threads" };
            columns.push(right(format!("{}, {t} {unit}", mode.name())));
        }
    }
    let mut table = Table::new(columns);
    for s in &results.servers {
        if absent(results, &s.name).is_some() {
            continue;
        }
        let mut row = vec![name(results, &s.name)];
        for mode in Mode::BOTH {
            let chosen = results.threads_chosen(&s.name, mode);
            for &t in &p.threads {
                let rates: Vec<f64> = results
                    .calibration
                    .iter()
                    .filter(|c| {
                        c.server == s.name
                            && c.mode == mode
                            && c.client == format!("loadgen -t {t}")
                            && c.usable()
                    })
                    .map(|c| c.requests_per_sec)
                    .collect();
                let text = if rates.is_empty() {
                    String::new()
                } else {
                    count(median(rates))
                };
                row.push(if chosen == Some(t) && !text.is_empty() {
                    format!("**{text}**")
                } else {
                    text
                });
            }
        }
        table.row(row);
    }
    out += &table.finish();
    out
}
