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

/// Every listing on one line again, from the four questions: what each
/// idle connection adds to a request's CPU (`idle`), how many requests
/// blocked in a slow handler it serves at once (`handler`), and the
/// highest rate at which its p99 stayed under the bound (`load`), for each
/// recommendation of the page that lays the models side by side to cite.
pub fn questions(
    idle: Option<&Results>,
    handler: Option<&Results>,
    load: Option<&Results>,
) -> String {
    use super::handler::{cell as handler_cell, work};
    use super::idle::{nanos, per_idle};
    use super::load::knee;
    let sleep = handler.and_then(|h| h.params.paths.iter().find(|p| p.starts_with("/sleep/")));
    let bound = load.and_then(|l| l.params.p99_bound);
    let mut table = Table::new([
        left("Listing"),
        right("Each idle connection adds"),
        right(match sleep {
            Some(p) => format!("`{p}`: at once"),
            None => "Slow handler: at once".into(),
        }),
        right("Knee, keep-alive"),
        right("Knee, new connection"),
    ]);
    let dash = || "–".to_string();
    for spec in servers::LISTINGS.iter() {
        let server = spec.name;
        let in_any = [idle, handler, load]
            .iter()
            .flatten()
            .any(|r| r.server(server).is_some());
        if !in_any {
            continue;
        }
        let each = idle
            .and_then(|r| per_idle(r, server))
            .map_or_else(dash, |s| format!("{} of CPU", nanos(s)));
        let at_once = match (handler, sleep) {
            (Some(h), Some(p)) => handler_cell(h, server, p)
                .stats()
                .map(|st| format!("{:.1}", st.rate * work(p).unwrap_or(f64::NAN)))
                .unwrap_or_else(dash),
            _ => dash(),
        };
        let knee_in = |mode| match (load, bound) {
            (Some(l), Some(b)) if l.server(server).is_some() => knee(l, server, mode, b)
                .map_or_else(
                    || "none".into(),
                    |(_, rate)| format!("{} req/s", count(rate)),
                ),
            _ => dash(),
        };
        table.row([
            format!("[`{server}`]({}.md)", chapter(server)),
            each,
            at_once,
            if spec.keep_alive {
                knee_in(Mode::KeepAlive)
            } else {
                dash()
            },
            knee_in(Mode::Close),
        ]);
    }
    let mut out = table.finish();
    let _ = writeln!(
        out,
        "\n*Each idle connection adds*: the server CPU per request that every idle \
         keep-alive connection held open beside a fixed load added, from [What idle \
         connections cost](question-idle.md). *At once*: requests served per second times \
         the time each blocks, with {} clients, from [What a slow handler \
         does](question-handler.md). *Knee*: the highest rate asked, open loop, at which \
         p99 stayed under {} and no request failed, at that rate and every lower one \
         (*none*: not even at the lowest), from [Latency against offered \
         load](question-load.md). A dash: the listing was not in that experiment. \
         Medians over the rounds; each page has the ranges, the commands and the machine.",
        handler
            .and_then(|h| h.params.concurrency.first().copied())
            .map_or_else(|| "the experiment's".into(), |c| c.to_string()),
        bound.map_or_else(|| "the experiment's bound".into(), |b| latency(Some(b))),
    );
    out
}

/// The chapter a listing is in, as a file name without `.md`.
fn chapter(server: &str) -> &str {
    match server {
        "select" | "poll" => "select-poll",
        "uring" => "io-uring",
        "tokio-tasks" => "tokio",
        other => other,
    }
}
