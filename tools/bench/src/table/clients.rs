//! The load clients side by side, and whether the load generator meets
//! its goal.

use std::fmt::Write;

use super::footer;
use crate::format::{count, micros, times};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario};
use crate::stats::{Cell, cell};

/// The clients, in the table's order.
const CLIENTS: [&str; 4] = ["ab", "loadgen", "loadgen -t 1", "wrk"];

pub fn clients(results: &Results) -> String {
    let server = results
        .servers
        .first()
        .map_or("linear", |s| s.name.as_str());
    let mut table = Table::new([
        left("Client"),
        right("Connections"),
        right("Requests/s (median)"),
        right("Range"),
        right("vs `ab`"),
        right("Client CPU per request"),
        right("Server CPU per request"),
        right("Failed"),
    ]);
    let mut verdicts = Vec::new();
    for &mode in &results.params.modes {
        for &c in &results.params.concurrency {
            let [ab, lg, lg1, wrk] =
                CLIENTS.map(|client| cell(results, server, client, mode, c, None));
            for (client, got) in CLIENTS.iter().zip([&ab, &lg, &lg1, &wrk]) {
                let (client, what) = (format!("`{client}`"), format!("{c}, {}", mode.name()));
                match got.stats() {
                    None => table.row_without_figures(&[&client, &what, &got.absent()]),
                    Some(s) => table.row([
                        client,
                        what,
                        count(s.rate),
                        s.range(),
                        times(ab.stats().map_or(f64::NAN, |a| s.rate / a.rate)),
                        micros(s.client_cpu),
                        micros(s.server_cpu),
                        s.failed(),
                    ]),
                }
            }
            verdicts.push(verdict(mode, c, "loadgen", &lg, &ab, &wrk));
            if !matches!(lg1, Cell::Absent(_)) {
                verdicts.push(verdict(mode, c, "loadgen -t 1", &lg1, &ab, &wrk));
            }
        }
    }
    let mut out = table.finish();
    let _ = writeln!(
        out,
        "\nAll against the `{server}` listing on 127.0.0.1: `ab` and the load \
         generator (with its default threads, one per core, and with one thread) \
         send {} requests a run, `wrk -t2` runs for {} s; medians over the \
         rounds, and the range of the rates. Client CPU is user plus system time of \
         the client process; server CPU, of the server's process group.",
        count(results.params.requests as f64),
        results.params.wrk_seconds,
    );
    let _ = writeln!(
        out,
        "\n**The load generator's goal**, at least `ab`'s and `wrk`'s rate at the same \
         concurrency, at a lower client CPU time per request:\n"
    );
    for v in verdicts {
        let _ = writeln!(out, "- {v}");
    }
    footer(&mut out, results, Scenario::Clients);
    out
}

/// Whether the load generator (`label`) beat `ab` and `wrk` in one case.
fn verdict(mode: Mode, c: usize, label: &str, lg: &Cell, ab: &Cell, wrk: &Cell) -> String {
    let head = format!("{}, {c} connections, `{label}`:", mode.name());
    let Some(l) = lg.stats() else {
        return format!("{head} the load generator gave no figures");
    };
    let mut met = true;
    let mut parts = Vec::new();
    for (name, other) in [("ab", ab), ("wrk", wrk)] {
        match other.stats() {
            Some(o) => {
                let (rate, cpu) = (l.rate / o.rate, l.client_cpu / o.client_cpu);
                met &= rate >= 1.0 && cpu < 1.0;
                parts.push(format!(
                    "{} `{name}`'s rate at {} its client CPU per request",
                    times(rate),
                    times(cpu)
                ));
            }
            None => parts.push(format!("`{name}` {}", other.absent())),
        }
    }
    let verdict = if met { "**met**" } else { "**not met**" };
    format!("{head} {verdict} ({})", parts.join("; "))
}
