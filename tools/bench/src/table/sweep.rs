//! The sweep: per mode, rates, CPU per request and p99 latency at every
//! concurrency level.

use std::fmt::Write;

use super::{footer, mode_words, name};
use crate::format::{count, latency, micros};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
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
    let _ = writeln!(
        out,
        "\nThe machine's limits: {}.",
        results.limits.describe()
    );
    footer(&mut out, results, Scenario::Sweep);
    out
}
