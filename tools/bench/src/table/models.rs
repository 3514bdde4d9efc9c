//! Every listing on one line, from three scenarios' results.

use std::fmt::Write;

use super::footer;
use crate::format::{count, latency, micros};
use crate::markdown::{Table, left, right};
use crate::results::{Mode, Results, Scenario, SlowKind};
use crate::servers;
use crate::stats::{Cell, Stats, cell};

/// The keep-alive column's clients at once, from the sweep.
const KEEP_ALIVE_CLIENTS: usize = 64;

/// Every listing on one line: the post's benchmark (a new connection per
/// request), keep-alive with 64 clients (from the sweep), and the normal
/// clients' latency beside silent ones (from the slow scenario). For the
/// page that lays all the models side by side; each figure is the same
/// median as in its scenario's table.
pub fn models(post: &Results, sweep: &Results, slow: &Results) -> String {
    let silent = slow
        .params
        .slow
        .iter()
        .find(|c| c.kind == SlowKind::Silent)
        .copied();
    // The column to weigh first comes first; the longest wait shares its
    // rate's cell, so that the table fits the book's column.
    let mut table = Table::new([
        left("Listing"),
        right("Beside silent clients: p99"),
        right("New connection each: requests/s"),
        right("CPU per request"),
        right(format!(
            "Keep-alive, {KEEP_ALIVE_CLIENTS} clients: requests/s (longest wait)"
        )),
        right("CPU per request"),
    ]);
    // Failed requests, if any, after a figure.
    let failed = |s: &Stats| {
        if s.failed > 0 || s.broken > 0 {
            format!(" ({} failed)", s.failed())
        } else {
            String::new()
        }
    };
    for spec in servers::LISTINGS.iter() {
        let server = spec.name;
        if post.server(server).is_none() {
            continue;
        }
        let [close_rate, close_cpu] = match cell(post, server, "loadgen", Mode::Close, 8, None) {
            Cell::Stats(s) => [count(s.rate) + &failed(&s), micros(s.server_cpu)],
            other => [other.absent(), String::new()],
        };
        let keep_alive = cell(
            sweep,
            server,
            "loadgen",
            Mode::KeepAlive,
            KEEP_ALIVE_CLIENTS,
            None,
        );
        let [ka_rate, ka_cpu] = match keep_alive {
            _ if !spec.keep_alive => ["closes every connection".into(), String::new()],
            Cell::Stats(s) => [
                format!("{}{} ({})", count(s.rate), failed(&s), latency(s.max)),
                micros(s.server_cpu),
            ],
            other => [other.absent(), String::new()],
        };
        let beside = silent.map(|case| cell(slow, server, "loadgen", Mode::Close, 8, Some(case)));
        let p99 = match beside {
            Some(Cell::Stats(s)) => latency(s.p99) + &failed(&s),
            Some(other) => other.absent(),
            None => "not run".into(),
        };
        table.row([
            format!("`{server}`"),
            p99,
            close_rate,
            close_cpu,
            ka_rate,
            ka_cpu,
        ]);
    }
    let mut out = table.finish();
    let silent = silent.map_or("silent clients".into(), |c| c.to_string());
    let _ = writeln!(
        out,
        "\nAll figures are the book's load generator's, medians over the rounds. \
         *New connection each*: the post's benchmark, 8 clients at a time, from \
         [post.json](generated/post.json). *Keep-alive*: the sweep's \
         {KEEP_ALIVE_CLIENTS} clients reusing their connections, from \
         [sweep.json](generated/sweep.json), with the longest any request \
         waited in brackets. *Beside silent clients*: {silent} hold connections open while \
         8 normal clients run, from [slow.json](generated/slow.json). The \
         tables of [Results](results.md) have the ranges and the rest."
    );
    // The load generator's threads in each column.
    let close = super::threads(post, post.samples.iter().filter(|s| s.client == "loadgen"));
    let keep_alive = super::threads(
        sweep,
        sweep.samples.iter().filter(|s| {
            s.client == "loadgen"
                && s.mode == Mode::KeepAlive
                && s.concurrency == KEEP_ALIVE_CLIENTS
        }),
    );
    if !close.is_empty() {
        let keep_alive = if keep_alive.is_empty() {
            vec!["not run".to_string()]
        } else {
            keep_alive
        };
        let chosen = if sweep.client_threads.is_empty() || keep_alive[0] == "not run" {
            ""
        } else {
            ", chosen for each server by calibration"
        };
        let _ = writeln!(
            out,
            "\nThreads of the load generator: with a new connection each and beside \
             silent clients, {}; with keep-alive, {}{chosen}.",
            close.join("; "),
            keep_alive.join("; "),
        );
    }
    footer(&mut out, post, Scenario::Post);
    out
}
